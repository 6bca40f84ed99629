//! Environment overrides, applied on every (re)load: `MEDIAROUTER_<KEY>` for global
//! keys, `MEDIAROUTER_PATHDEFAULTS_<KEY>` and `MEDIAROUTER_PATHS_<NAME>_<KEY>` for path
//! keys (MediaMTX's `MTX_` prefix too). Keys and path names match case-insensitively;
//! values are YAML (`yes`, `10s`, `[udp, tcp]`), merged into the file's document.

use super::mediamtx::{self, Scope};
use super::node::Node;

const PREFIXES: [&str; 2] = ["MEDIAROUTER_", "MTX_"];

/// Where an override goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Global,
    PathDefaults,
    /// The path entry whose name, as a variable spells it, is this.
    Path(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub var: String,
    pub target: Target,
    pub key: &'static str,
    pub value: String,
}

/// Whether `word` is within 2 edits of a key: a typo, worth a warning, rather than
/// someone else's variable (Kubernetes gives every pod `MEDIAROUTER_SERVICE_HOST`,
/// `MEDIAROUTER_PORT_8554_TCP`, … when a Service is named `mediarouter`).
fn near(scope: Scope, word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    scope
        .keys()
        .filter(|k| !matches!(*k, "paths" | "pathDefaults"))
        .find(|k| close(k, &word))
}

/// Within 2 edits, and fewer for short keys (`PORT` isn't a typo of `srt`).
pub(super) fn close(key: &str, word: &str) -> bool {
    let d = strsim::levenshtein(&key.to_ascii_lowercase(), &word.to_ascii_lowercase());
    d <= 2 && d * 4 <= key.len()
}

fn key_named(scope: Scope, s: &str) -> Option<&'static str> {
    scope
        .keys()
        .find(|k| k.eq_ignore_ascii_case(s) && !matches!(*k, "paths" | "pathDefaults"))
}

/// The overrides among `vars`. A `MEDIAROUTER_` variable that names no key is
/// ignored: with a warning when it looks like a misspelt key, else with a debug line.
pub fn overrides(vars: impl IntoIterator<Item = (String, String)>) -> Vec<Override> {
    let mut out = Vec::new();
    for (var, value) in vars {
        let Some(rest) = PREFIXES.iter().find_map(|p| var.strip_prefix(p)) else {
            continue;
        };
        let found = if let Some(key) = key_named(Scope::Global, rest) {
            Some((Target::Global, key))
        } else if let Some(key) = rest.strip_prefix("PATHDEFAULTS_") {
            key_named(Scope::Path, key).map(|k| (Target::PathDefaults, k))
        } else {
            // PATHS_<NAME>_<KEY>: the key is the part after the first underscore that
            // leaves a key.
            rest.strip_prefix("PATHS_").and_then(|p| {
                p.match_indices('_').find_map(|(i, _)| {
                    let (name, key) = (&p[..i], &p[i + 1..]);
                    key_named(Scope::Path, key)
                        .filter(|_| !name.is_empty())
                        .map(|k| (Target::Path(name.to_string()), k))
                })
            })
        };
        match found {
            Some((target, key)) => out.push(Override {
                var,
                target,
                key,
                value,
            }),
            // MTX_ variables may be meant for a MediaMTX on the same host.
            None if var.starts_with(PREFIXES[0]) => {
                let typo = match rest.strip_prefix("PATHS_") {
                    Some(p) => p
                        .match_indices('_')
                        .find_map(|(i, _)| near(Scope::Path, &p[i + 1..])),
                    None => rest
                        .strip_prefix("PATHDEFAULTS_")
                        .map_or_else(|| near(Scope::Global, rest), |k| near(Scope::Path, k)),
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
    out
}

/// Merges `overrides` into the document; returns the warnings their keys give (a
/// MediaMTX key mediarouter ignores), or an error (a bad value, a refused key).
pub fn apply(doc: &mut Node, overrides: &[Override]) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for o in overrides {
        let value = Node::parse(&o.value)
            .map_err(|e| format!("{}: bad value {:?}: {e}", o.var, o.value))?;
        let scope = match o.target {
            Target::Global => Scope::Global,
            _ => Scope::Path,
        };
        warnings.extend(mediamtx::check_key(scope, o.key, &value, &o.var, &o.var)?);
        let target = match &o.target {
            Target::Global => &mut *doc,
            Target::PathDefaults => doc.entry("pathDefaults"),
            Target::Path(name) => {
                let paths = doc.entry("paths");
                let found = paths.keys().find(|k| env_name(k) == *name);
                let key = found.unwrap_or_else(|| name.to_lowercase());
                paths.entry(&key)
            }
        };
        target.set(o.key, value);
    }
    Ok(warnings)
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

/// The field names serde knows for struct `T`.
#[cfg(test)]
pub(super) fn fields<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Deserializer, Visitor};
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
    use crate::config::Config;

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
            ("MTX_PATHDEFAULTS_MAXREADERS", "3"),
            ("HOME", "/root"),
            ("MTX_SOMETHING_ELSE", "x"),
        ]));
        let got: Vec<(Target, &str)> = o.iter().map(|o| (o.target.clone(), o.key)).collect();
        assert_eq!(
            got,
            [
                (Target::Global, "rtspAddress"),
                (Target::Global, "logLevel"),
                (Target::Path("CAM_1".into()), "sourceOnDemand"),
                (Target::PathDefaults, "maxReaders"),
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
        ]));
        assert!(k8s.is_empty(), "{k8s:?}");
        assert_eq!(near(Scope::Global, "RTSPADRESS"), Some("rtspAddress"));
        assert_eq!(near(Scope::Path, "SOURCEONDEMMAND"), Some("sourceOnDemand"));
        for k8s in ["SERVICE_HOST", "SERVICE_PORT", "PORT", "PORT_8554_TCP_ADDR"] {
            assert_eq!(near(Scope::Global, k8s), None, "{k8s}");
        }
    }

    #[test]
    fn overrides_merge_into_the_document() {
        let text = "rtsp: no\nhlsAllowOrigins: ['*']\npaths:\n  cam_1:\n    source: rtsp://h/x\n  '~^live/(.+)$':\n  all_others:\n";
        let env = vars(&[
            ("MEDIAROUTER_RTSP", "yes"),
            ("MEDIAROUTER_RTSPTRANSPORTS", "[tcp]"),
            ("MEDIAROUTER_READTIMEOUT", "3s"),
            ("MEDIAROUTER_PATHS_CAM_1_SOURCEONDEMAND", "yes"),
            ("MEDIAROUTER_PATHS_NEW_SOURCE", "rtmp://h/app/s"),
            ("MEDIAROUTER_PATHDEFAULTS_MAXREADERS", "4"),
        ]);
        let c = Config::parse_with_env(text, "f", env).unwrap();
        assert!(c.rtsp);
        assert_eq!(c.rtsp_transports, [crate::config::RtspTransport::Tcp]);
        assert_eq!(c.read_timeout, crate::config::ConfDuration::secs(3));
        assert_eq!(c.hls_allow_origins, ["*"]);
        let cam = c.find_path("cam_1").unwrap();
        assert!(cam.conf.source_on_demand);
        assert_eq!(cam.conf.max_readers, 4);
        assert_eq!(
            cam.conf.source,
            crate::config::Source::Urls(vec!["rtsp://h/x".into()])
        );
        let new = c.find_path("new").unwrap();
        assert_eq!(new.entry, "new");
        assert_eq!(
            new.conf.source,
            crate::config::Source::Urls(vec!["rtmp://h/app/s".into()])
        );
        assert_eq!(c.find_path("live/x").unwrap().entry, "~^live/(.+)$");
        assert_eq!(c.find_path("other").unwrap().entry, "all_others");
        assert_eq!(c.find_path("other").unwrap().conf.max_readers, 4);

        // A MediaMTX key set from the environment is checked like one in the file.
        let refused = Config::parse_with_env("", "f", vars(&[("MTX_RECORD", "yes")]));
        let msg = refused.unwrap_err().to_string();
        assert!(
            msg.contains("MTX_RECORD: record is a MediaMTX key"),
            "{msg}"
        );
    }
}
