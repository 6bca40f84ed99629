//! The `mediarouter` binary: --check, clear listener errors, graceful SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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
    assert!(err.contains("maxReadres"), "{err}");
    assert!(err.contains("line 4 column 5"), "{err}");
    assert!(err.contains(cfg.to_str().unwrap()), "{err}");
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
            "rtspAddress: 127.0.0.1:{port}\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhls: no\nrtmp: no\napi: no\n"
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

/// Runs the binary and collects its log lines.
fn spawn_server(cfg: &std::path::Path) -> (Child, Arc<Mutex<Vec<String>>>) {
    spawn_in(Command::new(BIN).arg(cfg))
}

fn spawn_in(cmd: &mut Command) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = cmd
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[server] {line}");
            l.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

fn find_line(lines: &Mutex<Vec<String>>, needle: &str) -> Option<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains(needle))
        .cloned()
}

#[test]
fn sigterm_with_sessions_exits_zero_within_two_seconds() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\npaths:\n  all_others:\n",
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
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n",
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
        "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n",
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
