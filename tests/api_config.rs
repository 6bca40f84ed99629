//! Config writes through the control API on the real binary: paths added, patched
//! (recording switched on and off), replaced and deleted while another path streams
//! to a reader that loses no frame; each change saved to the file, which loads to the
//! config the server runs; invalid writes refused with 400 and nothing changed; a file
//! edited behind the server's back refused with 409 until it is reloaded. In process:
//! reads redact passwords and a redacted password written back keeps the old one.

mod common;

use common::*;
use mediarouter::config::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `method path` with a JSON body: (status, JSON reply).
fn call(api: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (head, bytes) = match &body {
        Some(b) => (
            format!("{method} {path} HTTP/1.0\r\nContent-Type: application/json"),
            b.to_string().into_bytes(),
        ),
        None => (format!("{method} {path} HTTP/1.0"), Vec::new()),
    };
    let (status, _, reply) = http::request_from(None, api, &head, &bytes);
    let v = serde_json::from_slice(&reply).unwrap_or(Value::Null);
    (status, v)
}

/// What the API says the server runs, as `GET` gives it: global keys and every path.
fn running(api: SocketAddr) -> Value {
    let (s, mut global) = call(api, "GET", "/v3/config/global/get", None);
    assert_eq!(s, 200);
    let (s, paths) = call(api, "GET", "/v3/config/paths/list", None);
    assert_eq!(s, 200);
    global["paths"] = paths["items"].clone();
    global
}

/// The same view of a config file loaded from scratch.
fn loaded(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    let cfg = Config::parse(&text, "saved file").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut v = serde_json::to_value(&cfg).unwrap();
    mediarouter::config::edit::redact(&mut v);
    let m = v.as_object_mut().unwrap();
    m.remove("pathDefaults");
    let paths: Vec<Value> = m
        .remove("paths")
        .unwrap()
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, conf)| {
            let mut item = json!({ "name": name });
            for (k, v) in conf.as_object().cloned().unwrap_or_default() {
                item[k] = v;
            }
            item
        })
        .collect();
    v["paths"] = paths.into();
    v
}

struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    fn wait_log(&self, from: usize, needle: &str) -> String {
        wait_line_after(&self.lines, from, needle)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path, api: SocketAddr) -> Proc {
    let (child, lines) = spawn_server(config);
    wait_until(Duration::from_secs(10), "the API to listen", || {
        std::net::TcpStream::connect(api).is_ok()
    });
    Proc { child, lines }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.path().is_dir() {
                true => stack.push(e.path()),
                false => out.push(e.path()),
            }
        }
    }
    out
}

#[test]
fn config_writes_apply_persist_and_keep_other_paths_streaming() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rtsp, api_port) = (free_port(), free_port());
    let api: SocketAddr = format!("127.0.0.1:{api_port}").parse().unwrap();
    let rec = dir.path().join("rec");
    let config = dir.path().join("mediarouter.yml");
    let original = format!(
        "# cameras of the lobby\nrtspAddress: 127.0.0.1:{rtsp}\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: yes\napiAddress: {api}\npathDefaults:\n  recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\npaths:\n  a:\n",
        rec.display()
    );
    std::fs::write(&config, &original).unwrap();
    let p = start(&config, api);
    let url = |path: &str| format!("rtsp://127.0.0.1:{rtsp}/{path}");

    let clip = clip(Clip::H264Aac, 10);
    let pub_a = publish(&clip, &url("a"), "tcp", true);
    let ready = |path: &str| {
        let (s, v) = call(api, "GET", &format!("/v3/paths/get/{path}"), None);
        s == 200 && v["ready"] == true
    };
    wait_until(Duration::from_secs(15), "a's stream", || ready("a"));
    let out = dir.path().join("a.mkv");
    let mut reader = read_for(&url("a"), 12, &out);

    // Add: cam2 takes a publisher at once, and the file holds it.
    let (s, v) = call(
        api,
        "POST",
        "/v3/config/paths/add/cam2",
        Some(json!({"source": "publisher", "maxReaders": 5})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(loaded(&config), running(api));
    assert!(std::fs::read_to_string(&config).unwrap().contains("cam2:"));
    let pub_cam2 = publish(&clip, &url("cam2"), "tcp", true);
    wait_until(Duration::from_secs(15), "cam2's stream", || ready("cam2"));
    let (s, _) = call(api, "POST", "/v3/config/paths/add/cam2", Some(json!({})));
    assert_eq!(s, 400, "a second add of the same name");

    // Patch: recording on, then off (issue 20's switch through the API).
    let n = p.count();
    let (s, v) = call(
        api,
        "PATCH",
        "/v3/config/paths/patch/cam2",
        Some(json!({"record": true})),
    );
    assert_eq!(s, 200, "{v}");
    let line = p.wait_log(n, "config written through the API");
    assert!(line.contains("recorders +1 -0"), "{line}");
    wait_until(Duration::from_secs(20), "a cam2 segment on disk", || {
        files_under(&rec.join("cam2"))
            .iter()
            .any(|f| f.metadata().is_ok_and(|m| m.len() > 10_000))
    });
    assert_eq!(loaded(&config), running(api));
    let n = p.count();
    let (s, _) = call(
        api,
        "PATCH",
        "/v3/config/paths/patch/cam2",
        Some(json!({"record": false})),
    );
    assert_eq!(s, 200);
    let line = p.wait_log(n, "config written through the API");
    assert!(line.contains("recorders +0 -1"), "{line}");

    // Invalid writes: 400 with --check's message and no line numbers; nothing changes.
    let before = std::fs::read_to_string(&config).unwrap();
    for (body, needle) in [
        (json!({"maxReaders": "lots"}), "maxReaders"),
        (json!({"maxReaderz": 1}), "maxReaderz"),
        (json!({"source": "srt://x/y"}), "unsupported source"),
    ] {
        let (s, v) = call(api, "PATCH", "/v3/config/paths/patch/cam2", Some(body));
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        assert_eq!(s, 400, "{msg}");
        assert!(msg.contains(needle), "{msg}");
        assert!(
            !msg.contains("line ") && !msg.contains("API request:"),
            "{msg}"
        );
    }
    let (s, _) = call(api, "PATCH", "/v3/config/paths/patch/nope", Some(json!({})));
    assert_eq!(s, 404);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    assert!(ready("cam2"));

    // Replace: the entry is what was sent (record back to its default, maxReaders 1).
    let (s, _) = call(
        api,
        "POST",
        "/v3/config/paths/replace/cam2",
        Some(json!({"maxReaders": 1})),
    );
    assert_eq!(s, 200);
    let (_, conf) = call(api, "GET", "/v3/config/paths/get/cam2", None);
    assert_eq!(
        (conf["maxReaders"].as_u64(), &conf["record"]),
        (Some(1), &json!(false))
    );
    assert_eq!(loaded(&config), running(api));

    // A file edit the server couldn't load: API writes wait for it (409), not override it.
    std::fs::write(&config, format!("{before}bogusKey: 1\n")).unwrap();
    let n = p.count();
    p.wait_log(n, "failed, keeping the running config");
    let (s, v) = call(
        api,
        "PATCH",
        "/v3/config/global/patch",
        Some(json!({"logLevel": "debug"})),
    );
    assert_eq!(s, 409, "{v}");
    // Fixed by hand with a new path: loaded, and the next API write keeps it.
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("bogusKey: 1\n", "")
        .replace("paths:\n", "paths:\n  byhand:\n");
    let n = p.count();
    std::fs::write(&config, &edited).unwrap();
    p.wait_log(n, "reload: +1 paths");

    // Delete: cam2's publisher is closed; the hand-made path and a stay.
    let (s, _) = call(api, "DELETE", "/v3/config/paths/delete/cam2", None);
    assert_eq!(s, 200);
    let mut pub_cam2 = Children(vec![pub_cam2]);
    let st = wait_child(
        &mut pub_cam2.0[0],
        Duration::from_secs(15),
        "cam2's publisher",
    );
    assert!(!st.success());
    let (s, _) = call(api, "GET", "/v3/config/paths/get/cam2", None);
    assert_eq!(s, 404);
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(
        saved.contains("byhand:") && !saved.contains("cam2"),
        "{saved}"
    );
    assert_eq!(loaded(&config), running(api));
    // The text before the API's last write stays beside the file.
    let bak = std::fs::read_to_string(dir.path().join("mediarouter.yml.bak")).unwrap();
    assert!(bak.contains("cam2"), "{bak}");

    // a's reader saw none of it.
    assert!(wait_child(&mut reader, Duration::from_secs(30), "a's reader").success());
    let gap = max_video_gap(&out);
    eprintln!("a's reader across 6 API writes: largest gap between frames {gap:.3} s");
    assert!(gap < 1.5 / 30.0, "a frame was lost: gap {gap}");
    drop(Children(vec![pub_a]));
}

#[test]
fn reads_redact_passwords_and_writing_them_back_keeps_them() {
    let srv = TestServer::start(
        "authInternalUsers:\n  - user: admin\n    pass: admin-Secret-9\n    permissions: [{action: api}, {action: publish}]\n  - user: any\n    permissions: [{action: read}]\npaths:\n  cam:\n",
    );
    let api = srv.server.api_addr().unwrap();
    let auth = "Authorization: Basic YWRtaW46YWRtaW4tU2VjcmV0LTk=";
    let call = |method: &str, path: &str, body: Option<Value>| {
        let head = format!("{method} {path} HTTP/1.0\r\n{auth}\r\nContent-Type: application/json");
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, _, reply) = http::request_from(None, api, &head, &bytes);
        (
            status,
            serde_json::from_slice::<Value>(&reply).unwrap_or(Value::Null),
        )
    };
    let (s, global) = call("GET", "/v3/config/global/get", None);
    assert_eq!(s, 200, "{global}");
    assert!(!global.to_string().contains("admin-Secret-9"), "{global}");
    let users = global["authInternalUsers"].clone();
    assert_eq!(users[0]["pass"], mediarouter::auth::REDACTED);
    assert!(global.get("paths").is_none() && global["rtspAddress"].is_string());

    // Sent back as read, with one more user: the admin keeps the password.
    let mut users = users.as_array().unwrap().clone();
    users.push(
        json!({"user": "viewer", "pass": "view-Secret-1", "permissions": [{"action": "read"}]}),
    );
    let (s, v) = call(
        "PATCH",
        "/v3/config/global/patch",
        Some(json!({ "authInternalUsers": users, "logLevel": "debug" })),
    );
    assert_eq!(s, 200, "{v}");
    let running = srv.server.manager.config();
    assert_eq!(running.log_level, mediarouter::config::LogLevel::Debug);
    assert_eq!(running.auth_internal_users.len(), 3);
    let (s, _) = call("GET", "/v3/config/paths/list", None);
    assert_eq!(s, 200, "the admin's password still works");
    assert!(!logs().text().contains("view-Secret-1"));

    let (s, info) = call("GET", "/v3/info", None);
    assert_eq!(s, 200);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let (s, defaults) = call("GET", "/v3/config/pathdefaults/get", None);
    assert_eq!((s, defaults["recordFormat"].as_str()), (200, Some("fmp4")));
    let (s, _) = call(
        "PATCH",
        "/v3/config/pathdefaults/patch",
        Some(json!({"maxReaders": 7})),
    );
    assert_eq!(s, 200);
    let (_, cam) = call("GET", "/v3/config/paths/get/cam", None);
    assert_eq!(cam["maxReaders"], 7, "pathDefaults reach the entries");
}
