//! The `mediarouter` binary: --check, clear listener errors, graceful SIGTERM.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mediarouter");

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("mediarouter.yml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_reports_a_typo_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "logLevel: info\npaths:\n  cam:\n    maxReadres: 2\n",
    );
    let out = Command::new(BIN).arg("--check").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let at = format!(
        "{}:4:5: unknown field `maxReadres` (did you mean maxReaders?)",
        cfg.display()
    );
    assert!(err.contains(&at), "{err}");
}

/// The keys of a YAML mapping, in order.
fn keys_of(v: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// A file with every MediaMTX key at its default loads: one warning per key mediarouter
/// doesn't implement (and per deprecated name), nothing else; one typo fails it.
#[test]
fn check_accepts_every_mediamtx_key_and_still_catches_typos() {
    use mediarouter::config::mediamtx::{Scope, Status, GLOBAL, PATH};
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mediamtx-all-keys.yml"
    );
    let text = std::fs::read_to_string(fixture).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let mut expected = Vec::new();
    let mut seen_global = Vec::new();
    let mut seen_path = Vec::new();
    for (k, v) in keys_of(&doc) {
        let status = Scope::Global.status(&k).unwrap_or_else(|| panic!("{k}"));
        seen_global.push(k.clone());
        if status != Status::Implemented {
            expected.push(k.clone());
        }
        let confs: Vec<serde_json::Value> = match k.as_str() {
            "pathDefaults" => vec![v],
            "paths" => keys_of(&v).into_iter().map(|(_, c)| c).collect(),
            _ => continue,
        };
        for (pk, _) in confs.iter().flat_map(keys_of) {
            seen_path.push(pk.clone());
            if Scope::Path.status(&pk).unwrap_or_else(|| panic!("{pk}")) != Status::Implemented {
                expected.push(pk);
            }
        }
    }
    // Every key of the table is in the fixture, but those that turn authentication on.
    let auth = [
        "externalAuthenticationURL",
        "publishUser",
        "publishPass",
        "publishIPs",
        "readUser",
        "readPass",
        "readIPs",
    ];
    for (table, seen) in [(GLOBAL, &seen_global), (PATH, &seen_path)] {
        for (k, _) in table {
            assert!(
                seen.iter().any(|s| s == k) || auth.contains(k),
                "{k} is not in the fixture"
            );
        }
    }

    let out = Command::new(BIN)
        .args(["--check", fixture])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        err.lines()
            .all(|l| l.contains(" WARN ") || l.ends_with(": ok")),
        "{err}"
    );
    let named: Vec<String> = warnings
        .iter()
        .map(|l| {
            l.split(": ")
                .nth(1)
                .and_then(|w| w.split(' ').next())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let (mut named, mut expected) = (named, expected);
    named.sort();
    expected.sort();
    assert_eq!(named, expected, "{err}");
    // The warning names the file and the line: mediamtx-all-keys.yml:8: logDestinations …
    let line = text
        .lines()
        .position(|l| l.starts_with("logDestinations:"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("{fixture}:{line}: logDestinations is a MediaMTX key that mediarouter does not implement yet; ignored")),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let typo = write_config(
        dir.path(),
        &text.replace("\n  rtspAnyPort:", "\n  rtspAnyPrt:"),
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("  rtspAnyPort:"))
        .unwrap()
        + 1;
    let out = Command::new(BIN)
        .arg("--check")
        .arg(&typo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "{}:{line}:3: unknown field `rtspAnyPrt` (did you mean rtspAnyPort?)",
            typo.display()
        )),
        "{err}"
    );
}

#[test]
fn check_accepts_the_shipped_config() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/mediarouter.yml");
    let out = Command::new(BIN)
        .args(["--check", shipped])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(concat!("mediarouter ", env!("CARGO_PKG_VERSION")))
    );
    // The transcode stage: the FFmpeg it links, or that this build has none.
    let transcode = lines.next().unwrap_or_default();
    if cfg!(feature = "transcode") {
        assert!(transcode.starts_with("transcode: ffmpeg "), "{text}");
        assert!(transcode.contains("libavcodec "), "{text}");
    } else {
        assert_eq!(
            transcode,
            "transcode: not built (cargo feature `transcode`)"
        );
    }
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "rtspAddress: 127.0.0.1:{port}\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhls: no\nwebrtc: no\nsrt: no\nrtmp: no\napi: no\n"
        ),
    );
    let mut child = Command::new(BIN)
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_child(&mut child, Duration::from_secs(10), "mediarouter");
    assert!(!st.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&format!("can't listen on 127.0.0.1:{port} (RTSP)")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("in use"), "{err}");
}

#[test]
fn sigterm_with_sessions_exits_zero_within_two_seconds() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\npaths:\n  all_others:\n",
    );
    let (mut server, lines) = spawn_server(&cfg);
    let mut listen = None;
    wait_until(Duration::from_secs(10), "the RTSP listener", || {
        listen = find_line(&lines, "RTSP listener opened on ");
        listen.is_some()
    });
    let line = listen.unwrap();
    let addr = line
        .split("opened on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let url = format!("rtsp://{addr}/live/sig");

    let clip = clip(Clip::H264Aac, 6);
    let mut publisher = publish(&clip, &url, "tcp", true);
    wait_until(Duration::from_secs(15), "the publisher", || {
        find_line(&lines, "RTSP publisher started").is_some()
    });
    let out = dir.path().join("r.mkv");
    let mut reader = read_to_file(&url, "udp", &out);
    wait_until(Duration::from_secs(15), "the reader", || {
        find_line(&lines, "RTSP reader started").is_some()
    });

    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let start = Instant::now();
    let st = wait_child(
        &mut server,
        Duration::from_secs(5),
        "mediarouter after SIGTERM",
    );
    let took = start.elapsed();
    assert_eq!(st.code(), Some(0), "exit status {st:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(find_line(&lines, "received SIGTERM").is_some());
    for c in [&mut publisher, &mut reader] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn config_in_the_working_directory_is_used_without_arguments() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n",
    );
    let (mut child, lines) = spawn_in(Command::new(BIN).current_dir(dir.path()));
    wait_until(Duration::from_secs(10), "the listener", || {
        find_line(&lines, "RTSP listener opened on 127.0.0.1:").is_some()
    });
    assert!(
        find_line(&lines, "using config mediarouter.yml").is_some(),
        "{:?}",
        lines.lock().unwrap()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `--hash-password` turns stdin's first line into an `argon2:` credential that the
/// config accepts and that checks against the password.
#[test]
fn hash_password_prints_an_argon2_credential() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"c0rrect horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let cred: mediarouter::auth::Credential = line.trim().parse().unwrap();
    assert!(line.starts_with("argon2:$argon2id$"), "{line}");
    assert!(cred.check("c0rrect horse") && !cred.check("c0rrect horse\n"));
}

/// Kubernetes puts `MEDIAROUTER_SERVICE_HOST`, `MEDIAROUTER_PORT`, … into every pod of a
/// namespace with a Service named `mediarouter`: they name no key, and the server starts.
#[test]
fn kubernetes_service_variables_do_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n",
    );
    let (mut child, lines) = spawn_in(
        Command::new(BIN)
            .arg(&cfg)
            .env("MEDIAROUTER_SERVICE_HOST", "10.0.0.1")
            .env("MEDIAROUTER_PORT", "tcp://10.0.0.1:8554")
            .env("MEDIAROUTER_PORT_8554_TCP_PORT", "8554")
            .env("MEDIAROUTER_RTSPADRESS", ":1"),
    );
    wait_until(Duration::from_secs(10), "the listener", || {
        find_line(&lines, "RTSP listener opened on 127.0.0.1:").is_some()
    });
    let typo = find_line(&lines, "MEDIAROUTER_RTSPADRESS").expect("a warning for the typo");
    assert!(
        typo.contains("WARN") && typo.contains("rtspAddress"),
        "{typo}"
    );
    assert!(
        find_line(&lines, "MEDIAROUTER_SERVICE_HOST").is_none(),
        "k8s variables are not warned of"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

const FREE_PORTS: &str = "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n";

#[test]
fn without_libsrt_the_server_runs_with_srt_off() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("{FREE_PORTS}srtAddress: 127.0.0.1:0\npaths:\n  all_others:\n"),
    );
    let (server, lines) = spawn_in(
        Command::new(BIN)
            .arg(&cfg)
            .env("MEDIAROUTER_LIBSRT", "/nonexistent/libsrt.so.1.5"),
    );
    let _server = Children(vec![server]);
    let rtsp = listen_addr(&lines, "RTSP");
    wait_until(Duration::from_secs(10), "the SRT warning", || {
        find_line(&lines, "SRT listener off: libsrt 1.5 not found").is_some()
    });
    // The rest serves.
    let mut c = RawClient::connect(rtsp);
    let r = c.request("OPTIONS", &format!("rtsp://{rtsp}/x"), &[], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn an_srt_port_in_use_is_a_clear_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("{FREE_PORTS}srtAddress: 127.0.0.1:{port}\n"),
    );
    let mut child = Command::new(BIN)
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_child(&mut child, Duration::from_secs(10), "mediarouter");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    if err.contains("SRT listener off") {
        // No libsrt here: nothing binds the port (CI has libsrt, so this can't hide).
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{err}");
        return;
    }
    assert!(!st.success());
    assert!(
        err.contains(&format!("can't listen on 127.0.0.1:{port} (srt)")),
        "{err}"
    );
}
