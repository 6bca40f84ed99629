//! What the control API's config writes do to the document as written (not to the
//! effective config, so `pathDefaults`, comments' keys and env overrides keep their
//! meaning): set or remove top-level keys, add, patch, replace or delete a path
//! entry, and put back the passwords that a read gave out redacted.

use super::node::{Entry, Node};
use crate::auth::REDACTED;
use serde_json::{Map, Value};

/// One config write, with MediaMTX's JSON bodies.
#[derive(Debug, Clone)]
pub enum Edit {
    Global(Map<String, Value>),
    PathDefaults(Map<String, Value>),
    AddPath(String, Map<String, Value>),
    PatchPath(String, Map<String, Value>),
    ReplacePath(String, Map<String, Value>),
    DeletePath(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// A JSON value as a document node (scalars as their text, as the YAML parser keeps
/// them).
pub fn json_to_node(v: &Value) -> Node {
    match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Scalar(b.to_string()),
        Value::Number(n) => Node::Scalar(n.to_string()),
        Value::String(s) => Node::Scalar(s.clone()),
        Value::Array(a) => Node::Seq(a.iter().map(json_to_node).collect()),
        Value::Object(o) => Node::Map(
            o.iter()
                .map(|(k, v)| Entry::new(k, json_to_node(v)))
                .collect(),
        ),
    }
}

/// Sets each key of `body` in `node`; a `null` removes it (back to its default).
fn patch(node: &mut Node, body: &Map<String, Value>) {
    node.map_mut();
    for (k, v) in body {
        match v {
            Value::Null => {
                node.remove(k);
            }
            v => node.set(k, json_to_node(v)),
        }
    }
}

/// A path body without the `name` a read of it includes.
fn path_body(mut body: Map<String, Value>) -> Map<String, Value> {
    body.remove("name");
    body
}

pub fn apply(doc: &mut Node, edit: Edit) -> Result<(), EditError> {
    let missing = || EditError::NotFound("path configuration not found".into());
    doc.map_mut();
    match edit {
        Edit::Global(body) => {
            if let Some(k) = ["paths", "pathDefaults"]
                .iter()
                .find(|k| body.contains_key(**k))
            {
                return Err(EditError::Invalid(format!(
                    "{k} can't be patched as a global key: use /v3/config/paths/… or /v3/config/pathdefaults/patch"
                )));
            }
            patch(doc, &body);
        }
        Edit::PathDefaults(body) => patch(doc.entry("pathDefaults"), &path_body(body)),
        Edit::AddPath(name, body) => {
            let paths = doc.entry("paths");
            if paths.get(&name).is_some() {
                return Err(EditError::Invalid("path already exists".into()));
            }
            paths
                .map_mut()
                .push(Entry::new(&name, json_to_node(&path_body(body).into())));
        }
        Edit::PatchPath(name, body) => {
            let entry = doc.entry("paths").get_mut(&name).ok_or_else(missing)?;
            patch(entry, &path_body(body));
        }
        Edit::ReplacePath(name, body) => {
            let node = json_to_node(&path_body(body).into());
            let paths = doc.entry("paths");
            match paths.get_mut(&name) {
                Some(entry) => *entry = node,
                None => paths.map_mut().push(Entry::new(&name, node)),
            }
        }
        Edit::DeletePath(name) => {
            doc.entry("paths").remove(&name).ok_or_else(missing)?;
        }
    }
    Ok(())
}

/// Puts back, from `old`, each password `new` holds as the redacted marker a read
/// gives out: a user's `pass` by user name, a path's deprecated `publishPass` /
/// `readPass` by path. A marker with nothing to put back is an error, not a password.
pub fn restore_redacted(new: &mut Node, old: &Node) -> Result<(), EditError> {
    let redacted = |n: Option<&Node>| matches!(n, Some(Node::Scalar(s)) if s == REDACTED);
    if let Some(Node::Seq(users)) = new.get_mut("authInternalUsers") {
        for u in users.iter_mut() {
            if !redacted(u.get("pass")) {
                continue;
            }
            let name = u.get("user").cloned();
            let was = match old.get("authInternalUsers") {
                Some(Node::Seq(o)) => o
                    .iter()
                    .find(|o| o.get("user") == name.as_ref())
                    .and_then(|o| o.get("pass"))
                    .cloned(),
                _ => None,
            };
            match was {
                Some(pass) => u.set("pass", pass),
                None => {
                    return Err(EditError::Invalid(
                        "authInternalUsers: a pass is the redacted marker and the user had no password to keep: write the password".into(),
                    ))
                }
            }
        }
    }
    // TURN passwords, by the server's url and username.
    if let Some(Node::Seq(servers)) = new.get_mut("webrtcICEServers2") {
        for s in servers.iter_mut() {
            if !redacted(s.get("password")) {
                continue;
            }
            let key = (s.get("url").cloned(), s.get("username").cloned());
            let was = match old.get("webrtcICEServers2") {
                Some(Node::Seq(o)) => o
                    .iter()
                    .find(|o| (o.get("url").cloned(), o.get("username").cloned()) == key)
                    .and_then(|o| o.get("password"))
                    .cloned(),
                _ => None,
            };
            match was {
                Some(pass) => s.set("password", pass),
                None => {
                    return Err(EditError::Invalid(
                        "webrtcICEServers2: a password is the redacted marker and that server had no password to keep: write the password".into(),
                    ))
                }
            }
        }
    }
    let mut entries: Vec<(Option<&str>, &mut Node)> = Vec::new();
    let (defaults, paths) = split_path_nodes(new);
    if let Some(d) = defaults {
        entries.push((None, d));
    }
    for e in paths {
        entries.push((Some(e.key.as_str()), &mut e.value));
    }
    for (name, node) in entries {
        for key in PATH_SECRETS {
            if !redacted(node.get(key)) {
                continue;
            }
            let was = match name {
                None => old.get("pathDefaults"),
                Some(n) => old.get("paths").and_then(|p| p.get(n)),
            }
            .and_then(|o| o.get(key))
            .cloned()
            .ok_or_else(|| {
                EditError::Invalid(format!(
                    "{key} is the redacted marker and there is no password to keep: write the password"
                ))
            })?;
            node.set(key, was);
        }
    }
    Ok(())
}

fn split_path_nodes(doc: &mut Node) -> (Option<&mut Node>, Vec<&mut Entry>) {
    let mut defaults = None;
    let mut paths = Vec::new();
    if let Node::Map(m) = doc {
        for e in m.iter_mut() {
            match e.key.as_str() {
                "pathDefaults" => defaults = Some(&mut e.value),
                "paths" => {
                    if let Node::Map(p) = &mut e.value {
                        paths.extend(p.iter_mut());
                    }
                }
                _ => {}
            }
        }
    }
    (defaults, paths)
}

/// A path's keys that hold secrets.
const PATH_SECRETS: [&str; 4] = [
    "publishPass",
    "readPass",
    "srtPublishPassphrase",
    "srtReadPassphrase",
];

/// A config as the API shows it: every password redacted.
pub fn redact(v: &mut Value) {
    if let Some(users) = v.get_mut("authInternalUsers").and_then(Value::as_array_mut) {
        for u in users {
            if let Some(p) = u.get_mut("pass") {
                if p.as_str().is_some_and(|s| !s.is_empty()) {
                    *p = REDACTED.into();
                }
            }
        }
    }
    if let Some(servers) = v.get_mut("webrtcICEServers2").and_then(Value::as_array_mut) {
        for s in servers {
            if let Some(p) = s.get_mut("password") {
                if p.as_str().is_some_and(|s| !s.is_empty()) {
                    *p = REDACTED.into();
                }
            }
        }
    }
    redact_path(v);
    if let Some(d) = v.get_mut("pathDefaults") {
        redact_path(d);
    }
    if let Some(Value::Object(paths)) = v.get_mut("paths") {
        paths.values_mut().for_each(redact_path);
    }
}

/// A path config's passwords and passphrases redacted.
pub fn redact_path(v: &mut Value) {
    for key in PATH_SECRETS {
        if let Some(p) = v.get_mut(key) {
            if p.as_str().is_some_and(|s| !s.is_empty()) {
                *p = REDACTED.into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn doc(text: &str) -> Node {
        Node::parse(text).unwrap()
    }

    #[test]
    fn global_patch_sets_and_removes_keys() {
        let mut d = doc("logLevel: info\nreadTimeout: 5s\npaths:\n  cam:\n");
        let body = obj(json!({"logLevel": "debug", "readTimeout": null, "rtsp": false}));
        apply(&mut d, Edit::Global(body)).unwrap();
        assert_eq!(
            d.to_yaml(),
            "{logLevel: debug, paths: {cam: null}, rtsp: false}"
        );
        let err = apply(&mut d, Edit::Global(obj(json!({"paths": {}})))).unwrap_err();
        assert!(matches!(err, EditError::Invalid(_)));
    }

    #[test]
    fn path_entries_add_patch_replace_delete() {
        let mut d = doc("paths:\n  cam:\n    source: publisher\n    record: no\n");
        let add = Edit::AddPath("cam2".into(), obj(json!({"name": "cam2", "maxReaders": 3})));
        apply(&mut d, add.clone()).unwrap();
        assert_eq!(
            apply(&mut d, add),
            Err(EditError::Invalid("path already exists".into()))
        );
        let patch = Edit::PatchPath("cam".into(), obj(json!({"record": true})));
        apply(&mut d, patch).unwrap();
        let replace = Edit::ReplacePath("cam2".into(), obj(json!({"sourceOnDemand": true})));
        apply(&mut d, replace).unwrap();
        assert_eq!(
            d.to_yaml(),
            "{paths: {cam: {source: publisher, record: true}, cam2: {sourceOnDemand: true}}}"
        );
        apply(&mut d, Edit::DeletePath("cam".into())).unwrap();
        assert!(matches!(
            apply(&mut d, Edit::DeletePath("cam".into())),
            Err(EditError::NotFound(_))
        ));
        assert!(matches!(
            apply(&mut d, Edit::PatchPath("nope".into(), Map::new())),
            Err(EditError::NotFound(_))
        ));
        // A bare `name:` entry (null) takes a patch.
        let mut d = doc("paths:\n  bare:\n");
        apply(
            &mut d,
            Edit::PatchPath("bare".into(), obj(json!({"record": true}))),
        )
        .unwrap();
        assert_eq!(d.to_yaml(), "{paths: {bare: {record: true}}}");
    }

    #[test]
    fn redacted_passwords_are_kept_or_refused() {
        let old = doc(
            "authInternalUsers:\n  - user: a\n    pass: secret\npaths:\n  cam:\n    readPass: rp\n",
        );
        let mut new = old.clone();
        let users = json!([{"user": "a", "pass": REDACTED}, {"user": "b", "pass": "new"}]);
        apply(
            &mut new,
            Edit::Global(obj(json!({ "authInternalUsers": users }))),
        )
        .unwrap();
        apply(
            &mut new,
            Edit::PatchPath("cam".into(), obj(json!({"readPass": REDACTED}))),
        )
        .unwrap();
        restore_redacted(&mut new, &old).unwrap();
        let text = new.to_yaml();
        assert!(text.contains("{user: a, pass: secret}"), "{text}");
        assert!(text.contains("readPass: rp"), "{text}");
        let mut bad = old.clone();
        let users = json!([{"user": "c", "pass": REDACTED}]);
        apply(
            &mut bad,
            Edit::Global(obj(json!({ "authInternalUsers": users }))),
        )
        .unwrap();
        assert!(restore_redacted(&mut bad, &old).is_err());

        let mut out = json!({"authInternalUsers": [{"user": "a", "pass": "secret"}, {"user": "any", "pass": ""}],
            "paths": {"cam": {"readPass": "rp"}}});
        redact(&mut out);
        assert_eq!(out["authInternalUsers"][0]["pass"], REDACTED);
        assert_eq!(out["authInternalUsers"][1]["pass"], "");
        assert_eq!(out["paths"]["cam"]["readPass"], REDACTED);
    }

    #[test]
    fn turn_passwords_are_redacted_and_kept() {
        let old = doc(
            "webrtcICEServers2:\n  - url: turn:t.example:3478\n    username: u\n    password: tp\n",
        );
        let mut out = json!({"webrtcICEServers2": [{"url": "turn:t.example:3478", "username": "u", "password": "tp"},
            {"url": "stun:s.example:3478", "username": "", "password": ""}]});
        redact(&mut out);
        assert_eq!(out["webrtcICEServers2"][0]["password"], REDACTED);
        assert_eq!(out["webrtcICEServers2"][1]["password"], "");
        let mut new = old.clone();
        let servers = out["webrtcICEServers2"].clone();
        apply(
            &mut new,
            Edit::Global(obj(json!({ "webrtcICEServers2": servers }))),
        )
        .unwrap();
        restore_redacted(&mut new, &old).unwrap();
        assert!(new.to_yaml().contains("password: tp"), "{}", new.to_yaml());
        let mut bad = old.clone();
        let servers = json!([{"url": "turn:other:3478", "username": "u", "password": REDACTED}]);
        apply(
            &mut bad,
            Edit::Global(obj(json!({ "webrtcICEServers2": servers }))),
        )
        .unwrap();
        assert!(restore_redacted(&mut bad, &old).is_err());
    }
}
