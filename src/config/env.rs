//! Environment overrides, applied on every (re)load: `MEDIAROUTER_<KEY>` for global
//! keys and `MEDIAROUTER_PATHS_<NAME>_<KEY>` for path keys (MediaMTX's `MTX_` prefix
//! too). Keys and path names match case-insensitively; values are YAML (`yes`, `10s`,
//! `[udp, tcp]`). The file's document is merged with them and parsed again.

use super::{Config, PathConf};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

const PREFIXES: [&str; 2] = ["MEDIAROUTER_", "MTX_"];

/// One override: a global key, or a key of the path entry `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub var: String,
    pub path: Option<String>,
    pub key: &'static str,
    pub value: String,
}

/// Whether `word` is within 2 edits of a key: a typo, worth a warning, rather than
/// someone else's variable (Kubernetes gives every pod `MEDIAROUTER_SERVICE_HOST`,
/// `MEDIAROUTER_PORT_8554_TCP`, … when a Service is named `mediarouter`).
fn near(keys: &[&str], word: &str) -> Option<String> {
    let word = word.to_ascii_lowercase();
    keys.iter()
        .filter(|k| **k != "paths")
        .find(|k| strsim::levenshtein(&k.to_ascii_lowercase(), &word) <= 2)
        .map(|k| k.to_string())
}

/// The overrides among `vars`. A `MEDIAROUTER_` variable that names no key is
/// ignored: with a warning when it looks like a misspelt key, else with a debug line.
pub fn overrides(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, String> {
    let globals = fields::<Config>();
    let path_keys = fields::<PathConf>();
    let mut out = Vec::new();
    for (var, value) in vars {
        let Some(rest) = PREFIXES.iter().find_map(|p| var.strip_prefix(p)) else {
            continue;
        };
        let key_named = |keys: &'static [&'static str], s: &str| {
            keys.iter()
                .find(|k| k.eq_ignore_ascii_case(s) && **k != "paths")
                .copied()
        };
        if let Some(key) = key_named(globals, rest) {
            out.push(Override {
                var,
                path: None,
                key,
                value,
            });
            continue;
        }
        // PATHS_<NAME>_<KEY>: the key is the part after the last underscore that names one.
        let found = rest.strip_prefix("PATHS_").and_then(|p| {
            p.match_indices('_').find_map(|(i, _)| {
                let (name, key) = (&p[..i], &p[i + 1..]);
                key_named(path_keys, key)
                    .filter(|_| !name.is_empty())
                    .map(|k| (name.to_string(), k))
            })
        });
        match found {
            Some((name, key)) => out.push(Override {
                var,
                path: Some(name),
                key,
                value,
            }),
            // MTX_ variables may be meant for a MediaMTX on the same host.
            None if var.starts_with(PREFIXES[0]) => {
                let typo = match rest.strip_prefix("PATHS_") {
                    Some(p) => p
                        .match_indices('_')
                        .find_map(|(i, _)| near(path_keys, &p[i + 1..])),
                    None => near(globals, rest),
                };
                match typo {
                    Some(key) => {
                        tracing::warn!("{var} names no config key (did you mean {key}?); ignored")
                    }
                    None => tracing::debug!("{var} names no config key; ignored"),
                }
            }
            None => {}
        }
    }
    Ok(out)
}

/// `text` with `overrides` merged in, as YAML for the config parser.
pub fn apply(text: &str, overrides: &[Override]) -> Result<String, String> {
    let mut doc: Node =
        serde_saphyr::from_str(text).map_err(|e| format!("can't merge the overrides: {e}"))?;
    for o in overrides {
        let value: Node = serde_saphyr::from_str(&o.value)
            .map_err(|e| format!("{}: bad value {:?}: {e}", o.var, o.value))?;
        let target = match &o.path {
            None => &mut doc,
            Some(name) => {
                let paths = doc.entry("paths");
                let found = paths.keys().find(|k| env_name(k) == *name);
                let key = found.unwrap_or_else(|| name.to_lowercase());
                paths.entry(&key)
            }
        };
        target.set(o.key, value);
    }
    let mut out = String::new();
    doc.emit(&mut out);
    Ok(out)
}

/// A path name as it appears in a variable name: upper case, other characters `_`.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() => c.to_ascii_uppercase(),
            _ => '_',
        })
        .collect()
}

/// A YAML document with scalars kept as text, so they can be written back for the
/// typed parser to read (`yes` stays a word, `'*'` stays quoted where it must).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The node's entries; a node that wasn't a map becomes an empty one first.
    fn map_mut(&mut self) -> &mut Vec<(String, Node)> {
        if !matches!(self, Node::Map(_)) {
            *self = Node::Map(Vec::new());
        }
        match self {
            Node::Map(m) => m,
            // Made a map just above.
            _ => unreachable!(),
        }
    }

    /// The map value under `key` (made a map if it wasn't), created when missing.
    fn entry(&mut self, key: &str) -> &mut Node {
        let m = self.map_mut();
        let i = match m.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                m.push((key.to_string(), Node::Null));
                m.len() - 1
            }
        };
        let v = &mut m[i].1;
        v.map_mut();
        v
    }

    fn keys(&self) -> impl Iterator<Item = String> + '_ {
        let m: &[(String, Node)] = match self {
            Node::Map(m) => m,
            _ => &[],
        };
        m.iter().map(|(k, _)| k.clone())
    }

    /// Sets `key`, replacing an entry that names it in any case.
    fn set(&mut self, key: &str, value: Node) {
        let m = self.map_mut();
        m.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        m.push((key.to_string(), value));
    }

    /// Flow-style YAML. Words (`yes`, `10s`, `512`) stay plain so typed fields read
    /// them; everything else is single-quoted.
    fn emit(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Scalar(s) => scalar(s, out),
            Node::Seq(items) => {
                out.push('[');
                for (i, n) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    n.emit(out);
                }
                out.push(']');
            }
            Node::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    scalar(k, out);
                    out.push_str(": ");
                    v.emit(out);
                }
                out.push('}');
            }
        }
    }
}

fn scalar(s: &str, out: &mut String) {
    let word = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
        && !s.starts_with('-');
    if word {
        out.push_str(s);
    } else {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = seq.next_element()? {
            v.push(n);
        }
        Ok(Node::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some((k, n)) = map.next_entry::<Node, Node>()? {
            let key = match k {
                Node::Scalar(s) => s,
                Node::Null => String::new(),
                _ => return Err(de::Error::custom("a key that isn't a scalar")),
            };
            v.push((key, n));
        }
        Ok(Node::Map(v))
    }
}

/// The field names serde knows for struct `T`.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut out: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn variables_name_global_and_path_keys() {
        let o = overrides(vars(&[
            ("MEDIAROUTER_RTSPADDRESS", ":9554"),
            ("MTX_LOGLEVEL", "debug"),
            ("MEDIAROUTER_PATHS_CAM_1_SOURCEONDEMAND", "yes"),
            ("HOME", "/root"),
            ("MTX_SOMETHING_ELSE", "x"),
        ]))
        .unwrap();
        let got: Vec<(Option<&str>, &str)> = o.iter().map(|o| (o.path.as_deref(), o.key)).collect();
        assert_eq!(
            got,
            [
                (None, "rtspAddress"),
                (None, "logLevel"),
                (Some("CAM_1"), "sourceOnDemand")
            ]
        );
        // Not keys: ignored, so that Kubernetes' service variables never stop the server.
        let k8s = overrides(vars(&[
            ("MEDIAROUTER_RTSPADRESS", "x"),
            ("MEDIAROUTER_SERVICE_HOST", "10.0.0.1"),
            ("MEDIAROUTER_SERVICE_PORT", "8554"),
            ("MEDIAROUTER_PORT", "tcp://10.0.0.1:8554"),
            ("MEDIAROUTER_PORT_8554_TCP", "tcp://10.0.0.1:8554"),
            ("MEDIAROUTER_PORT_8554_TCP_PROTO", "tcp"),
            ("MEDIAROUTER_PORT_8554_TCP_PORT", "8554"),
            ("MEDIAROUTER_PORT_8554_TCP_ADDR", "10.0.0.1"),
        ]))
        .unwrap();
        assert!(k8s.is_empty(), "{k8s:?}");
        let globals = fields::<Config>();
        assert_eq!(near(globals, "RTSPADRESS").as_deref(), Some("rtspAddress"));
        assert_eq!(
            near(fields::<PathConf>(), "SOURCEONDEMMAND").as_deref(),
            Some("sourceOnDemand")
        );
        for k8s in ["SERVICE_HOST", "SERVICE_PORT", "PORT", "PORT_8554_TCP_ADDR"] {
            assert_eq!(near(globals, k8s), None, "{k8s}");
        }
    }

    #[test]
    fn overrides_merge_into_the_document() {
        let text = "rtsp: no\nhlsAllowOrigins: ['*']\npaths:\n  cam_1:\n    source: rtsp://h/x\n  '~^live/(.+)$':\n  all_others:\n";
        let o = overrides(vars(&[
            ("MEDIAROUTER_RTSP", "yes"),
            ("MEDIAROUTER_RTSPTRANSPORTS", "[tcp]"),
            ("MEDIAROUTER_READTIMEOUT", "3s"),
            ("MEDIAROUTER_PATHS_CAM_1_SOURCEONDEMAND", "yes"),
            ("MEDIAROUTER_PATHS_NEW_SOURCE", "rtmp://h/app/s"),
        ]))
        .unwrap();
        let merged = apply(text, &o).unwrap();
        let c = Config::parse(&merged, "merged").unwrap();
        assert!(c.rtsp);
        assert_eq!(c.rtsp_transports, [super::super::RtspTransport::Tcp]);
        assert_eq!(c.read_timeout, super::super::ConfDuration::secs(3));
        assert_eq!(c.hls_allow_origins, ["*"]);
        let cam = c.find_path("cam_1").unwrap();
        assert!(cam.conf.source_on_demand);
        assert_eq!(
            cam.conf.source,
            super::super::Source::Url("rtsp://h/x".into())
        );
        let new = c.find_path("new").unwrap();
        assert_eq!(new.entry, "new");
        assert_eq!(
            new.conf.source,
            super::super::Source::Url("rtmp://h/app/s".into())
        );
        assert_eq!(c.find_path("live/x").unwrap().entry, "~^live/(.+)$");
        assert_eq!(c.find_path("other").unwrap().entry, "all_others");
    }
}
