//! The config document as an untyped YAML tree that remembers where each key is: the
//! key check (MediaMTX keys, typos) reads it, and `pathDefaults`, deprecated keys and
//! environment overrides are merged into it before the typed parse.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML value with scalars kept as text, so they can be written back for the typed
/// parser to read (`yes` stays a word, `'*'` stays quoted where it must).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One key of a mapping, with its line and column (0 when it wasn't in the file).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub line: u64,
    pub column: u64,
    pub value: Node,
}

impl Node {
    pub fn parse(text: &str) -> Result<Node, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The node's entries; a node that wasn't a map becomes an empty one first.
    pub fn map_mut(&mut self) -> &mut Vec<Entry> {
        if !matches!(self, Node::Map(_)) {
            *self = Node::Map(Vec::new());
        }
        match self {
            Node::Map(m) => m,
            // Made a map just above.
            _ => unreachable!(),
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match self {
            Node::Map(m) => m,
            _ => &[],
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(m) => m.iter_mut().find(|e| e.key == key).map(|e| &mut e.value),
            _ => None,
        }
    }

    /// The map value under `key` (made a map if it wasn't), created when missing.
    pub fn entry(&mut self, key: &str) -> &mut Node {
        let m = self.map_mut();
        let i = match m.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => {
                m.push(Entry::new(key, Node::Null));
                m.len() - 1
            }
        };
        let v = &mut m[i].value;
        v.map_mut();
        v
    }

    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.entries().iter().map(|e| e.key.clone())
    }

    /// Sets `key`, replacing an entry that names it in any case.
    /// The entry keeps its place, so a rewritten file reads in the user's order.
    pub fn set(&mut self, key: &str, value: Node) {
        let m = self.map_mut();
        let same = |e: &Entry| e.key.eq_ignore_ascii_case(key);
        match m.iter().position(same) {
            Some(i) => {
                m[i] = Entry {
                    key: key.to_string(),
                    value,
                    ..m[i].clone()
                };
                let mut seen = 0;
                m.retain(|e| {
                    !same(e) || {
                        seen += 1;
                        seen == 1
                    }
                });
            }
            None => m.push(Entry::new(key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let m = self.map_mut();
        let i = m.iter().position(|e| e.key == key)?;
        Some(m.remove(i).value)
    }

    /// Whether the value says "nothing": null, empty, `no`/`false`, `[]`. What a key
    /// left at MediaMTX's default for an off feature looks like.
    pub fn is_off(&self) -> bool {
        match self {
            Node::Null => true,
            Node::Scalar(s) => matches!(s.as_str(), "" | "false" | "no" | "0"),
            Node::Seq(v) => v.is_empty(),
            Node::Map(m) => m.is_empty(),
        }
    }

    /// The scalar as a boolean, YAML 1.1 words included.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Scalar(s) => match s.as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// Flow-style YAML. Words (`yes`, `10s`, `512`) stay plain so typed fields read
    /// them; everything else is single-quoted.
    pub fn emit(&self, out: &mut String) {
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
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    scalar(&e.key, out);
                    out.push_str(": ");
                    e.value.emit(out);
                }
                out.push('}');
            }
        }
    }

    /// Removes keys whose value is null, which in MediaMTX's files (`authHTTPAddress:`)
    /// mean "the default", as Go's decoder leaves such fields alone; the names of path
    /// entries (`all_others:`) stay. Returns where the removed keys were.
    pub fn drop_nulls(&mut self) -> Vec<(u64, u64)> {
        let mut at = Vec::new();
        self.drop_nulls_in(&mut at, false);
        at
    }

    fn drop_nulls_in(&mut self, at: &mut Vec<(u64, u64)>, keep_keys: bool) {
        match self {
            Node::Map(m) => {
                if !keep_keys {
                    m.retain(|e| {
                        let null = e.value == Node::Null;
                        if null && e.line > 0 {
                            at.push((e.line, e.column));
                        }
                        !null
                    });
                }
                for e in m.iter_mut() {
                    let entries = !keep_keys && e.key == "paths";
                    e.value.drop_nulls_in(at, entries);
                }
            }
            Node::Seq(items) => items.iter_mut().for_each(|n| n.drop_nulls_in(at, false)),
            Node::Null | Node::Scalar(_) => {}
        }
    }

    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        self.emit(&mut out);
        out
    }

    /// Block-style YAML for a file people read: maps and lists of maps one key a
    /// line, lists of scalars in flow style (`[udp, tcp]`), nulls as `key:`.
    pub fn to_block_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Node::Map(m) if !m.is_empty() => block_map(m, 0, false, &mut out),
            other => {
                other.emit(&mut out);
                out.push('\n');
            }
        }
        out
    }
}

fn block_map(entries: &[Entry], indent: usize, first_inline: bool, out: &mut String) {
    for (i, e) in entries.iter().enumerate() {
        if !(first_inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        scalar(&e.key, out);
        out.push(':');
        block_value(&e.value, indent, out);
    }
}

/// `v` after `key:` at `indent`.
fn block_value(v: &Node, indent: usize, out: &mut String) {
    match v {
        Node::Null => out.push('\n'),
        Node::Map(m) if !m.is_empty() => {
            out.push('\n');
            block_map(m, indent + 2, false, out);
        }
        Node::Seq(items)
            if items
                .iter()
                .any(|n| matches!(n, Node::Map(m) if !m.is_empty())) =>
        {
            out.push('\n');
            for item in items {
                out.push_str(&" ".repeat(indent + 2));
                out.push_str("- ");
                match item {
                    Node::Map(m) if !m.is_empty() => block_map(m, indent + 4, true, out),
                    other => {
                        other.emit(out);
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push(' ');
            other.emit(out);
            out.push('\n');
        }
    }
}

impl Entry {
    pub fn new(key: &str, value: Node) -> Entry {
        Entry {
            key: key.to_string(),
            line: 0,
            column: 0,
            value,
        }
    }
}

/// `text` with the keys at `at` (line, column) blanked out to the end of their line,
/// where that line holds just the key and a null (`key:`, `key: ~`, a comment): the
/// typed parse then reads the file as written, at the same lines and columns.
pub fn blank_keys(text: &str, at: &[(u64, u64)]) -> String {
    let null_rest = regex::Regex::new(r"^[^:#]+:\s*(~|null|Null|NULL)?\s*(#.*)?$").expect("regex");
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for &(line, column) in at {
        let Some(l) = lines.get_mut(line.saturating_sub(1) as usize) else {
            continue;
        };
        let start: usize = l
            .chars()
            .take(column.saturating_sub(1) as usize)
            .map(char::len_utf8)
            .sum();
        if l.get(start..).is_some_and(|rest| null_rest.is_match(rest)) {
            let blank = " ".repeat(l[start..].chars().count());
            l.replace_range(start.., &blank);
        }
    }
    lines.join("\n")
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
        while let Some((k, value)) = map.next_entry::<Spanned<Node>, Node>()? {
            let key = match k.value {
                Node::Scalar(s) => s,
                Node::Null => String::new(),
                _ => return Err(de::Error::custom("a key that isn't a scalar")),
            };
            v.push(Entry {
                key,
                line: k.referenced.line(),
                column: k.referenced.column(),
                value,
            });
        }
        Ok(Node::Map(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_position() {
        let n = Node::parse("a: 1\npaths:\n  cam:\n    source: x\n  '~^x$':\n").unwrap();
        let e = &n.entries()[1];
        assert_eq!((e.key.as_str(), e.line, e.column), ("paths", 2, 1));
        let cam = &e.value.entries()[0];
        assert_eq!((cam.key.as_str(), cam.line), ("cam", 3));
        let src = &cam.value.entries()[0];
        assert_eq!((src.key.as_str(), src.line, src.column), ("source", 4, 5));
        assert_eq!(e.value.entries()[1].key, "~^x$");
        assert_eq!(e.value.entries()[1].value, Node::Null);
    }

    #[test]
    fn block_yaml_reads_back_to_the_same_tree() {
        let text = "logLevel: info\nrtspTransports: [udp, tcp]\nempty: []\nauthInternalUsers:\n  - user: any\n    pass: ''\n    permissions:\n      - action: publish\n      - {action: read, path: '~^cam$'}\npaths:\n  cam:\n    source: 'rtsp://h/x y'\n    runOnReady: \"it's: here\"\n  all_others:\n";
        let n = Node::parse(text).unwrap();
        let block = n.to_block_yaml();
        assert!(block.contains("rtspTransports: [udp, tcp]\n"), "{block}");
        assert!(block.contains("  - user: any\n    pass: ''\n"), "{block}");
        assert!(block.contains("  all_others:\n"), "{block}");
        let strip = |n: &Node| n.to_yaml();
        assert_eq!(strip(&Node::parse(&block).unwrap()), strip(&n), "{block}");
    }

    #[test]
    fn null_keys_go_but_path_entries_stay() {
        let text = "a:\nb: ~ # off\nusers:\n  - user: any\n    pass:\npaths:\n  cam:\n    x: null\n  all_others:\n";
        let mut n = Node::parse(text).unwrap();
        let at = n.drop_nulls();
        assert_eq!(at, [(1, 1), (2, 1), (5, 5), (8, 5)]);
        assert_eq!(
            n.to_yaml(),
            "{users: [{user: any}], paths: {cam: {}, all_others: null}}"
        );
        let blanked = blank_keys(text, &at);
        assert_eq!(blanked, "  \n          \nusers:\n  - user: any\n         \npaths:\n  cam:\n           \n  all_others:\n");
    }
}
