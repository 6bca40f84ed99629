//! Hot reload of the real binary: the file edited in place, replaced by rename, swapped
//! behind a symlink (ConfigMap style), made invalid twice (kept running, errors with
//! line:column), reloaded by SIGHUP through a symlink chain no watch can see, and
//! environment overrides that hold across reloads.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A mediarouter process and its log lines.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
}

impl Proc {
    fn start(config: &Path, rtsp: u16, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mediarouter"));
        cmd.arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (l, err) = (lines.clone(), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[mediarouter] {line}");
                l.lock().unwrap().push(line);
            }
        });
        let addr: SocketAddr = format!("127.0.0.1:{rtsp}").parse().unwrap();
        wait_until(Duration::from_secs(10), "the server to listen", || {
            TcpStream::connect(addr).is_ok()
        });
        Proc { child, lines, addr }
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits for a line, logged after the first `from` lines, that contains `needle`.
    fn wait_log(&self, from: usize, needle: &str) -> String {
        let mut found = None;
        wait_until(Duration::from_secs(10), needle, || {
            found = self.lines.lock().unwrap()[from..]
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            found.is_some()
        });
        found.unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://{}/{path}", self.addr)
    }

    /// Whether DESCRIBE of `path` answers 200 (the path has a stream).
    fn has_stream(&self, path: &str) -> bool {
        let mut c = RawClient::connect(self.addr);
        c.request("DESCRIBE", &self.url(path), &[], b"").status == 200
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SDP: &[u8] = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n";

fn header(rtsp: u16) -> String {
    format!("rtspAddress: 127.0.0.1:{rtsp}\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: no\n")
}

/// Writes `text` to `path` through a temporary file and a rename.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Points the symlink `link` at `target` atomically (a new link renamed over it).
fn swap_link(link: &Path, target: &Path) {
    let tmp = link.with_extension("newlink");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

#[test]
fn file_edits_of_every_kind_apply_and_bad_files_are_refused() {
    if !have_ffmpeg() {
        return;
    }
    let (cams, _cam_publishers) = cameras("", &["cam1", "cam2"]);
    let clip = clip(Clip::H264Aac, 10);

    let dir = tempfile::tempdir().unwrap();
    let rtsp = free_port();
    let base = header(rtsp);
    let v1 = format!(
        "{base}paths:\n  a:\n  c:\n    source: {}\n",
        cams.url("cam1")
    );
    std::fs::write(dir.path().join("v1.yml"), &v1).unwrap();
    let config = dir.path().join("mediarouter.yml");
    std::os::unix::fs::symlink("v1.yml", &config).unwrap();
    let p = Proc::start(&config, rtsp, &[]);
    wait_until(Duration::from_secs(10), "c to pull cam1", || {
        cams.readers("cam1") == 1
    });

    let pub_a = publish(&clip, &p.url("a"), "tcp", true);
    wait_until(Duration::from_secs(10), "a's stream", || p.has_stream("a"));
    let out = dir.path().join("a.mkv");
    let mut reader = read_for(&p.url("a"), 10, &out);

    // 1. In place, through the symlink: b is added.
    let n = p.count();
    let saved = std::time::Instant::now();
    std::fs::write(&config, format!("{v1}  b:\n")).unwrap();
    let line = p.wait_log(n, "reload: ");
    assert!(line.contains("reload: +1 paths, -0, ~0"), "{line}");
    // Measured, not asserted (shared machines): save → b accepts a publisher.
    let mut b = RawClient::connect(p.addr);
    let announce = b.request(
        "ANNOUNCE",
        &p.url("b"),
        &[("Content-Type", "application/sdp")],
        SDP,
    );
    assert_eq!(announce.status, 200);
    eprintln!(
        "saved → b accepts a publisher: {:.0} ms",
        saved.elapsed().as_secs_f64() * 1000.0
    );
    drop(b);
    let mut pub_b = publish(&clip, &p.url("b"), "tcp", true);
    wait_until(Duration::from_secs(10), "b's stream", || p.has_stream("b"));

    // 2. Symlink swap: c's source moves to cam2, logLevel goes to debug.
    let v2 = format!(
        "logLevel: debug\n{base}paths:\n  a:\n  b:\n  c:\n    source: {}\n",
        cams.url("cam2")
    );
    std::fs::write(dir.path().join("v2.yml"), &v2).unwrap();
    let n = p.count();
    swap_link(&config, Path::new("v2.yml"));
    let line = p.wait_log(n, "reload: ");
    assert!(line.contains("~1 (c: source)"), "{line}");
    assert!(line.contains("logLevel info → debug"), "{line}");
    wait_until(Duration::from_secs(10), "c to pull cam2", || {
        cams.readers("cam1") == 0 && cams.readers("cam2") == 1
    });
    // Debug lines now show: a SIGHUP with nothing changed logs one.
    let n = p.count();
    kill(&p.child, "HUP");
    p.wait_log(n, "reload (SIGHUP): the config is unchanged");

    // 3. Rename over the link: d is added.
    let v3 = format!("{v2}  d:\n");
    let n = p.count();
    replace(&config, &v3);
    let line = p.wait_log(n, "reload: ");
    assert!(line.contains("reload: +1 paths, -0, ~0"), "{line}");

    // 4. Invalid YAML, then an unknown key: both refused with line:column, a keeps going.
    let n = p.count();
    replace(&config, &format!("{v3}  e: [\n"));
    let line = p.wait_log(n, "failed, keeping the running config");
    assert!(line.contains("line ") && line.contains("column "), "{line}");
    let n = p.count();
    replace(&config, &format!("{base}bogusKey: 1\npaths:\n  a:\n"));
    let line = p.wait_log(n, "failed, keeping the running config");
    assert!(
        line.contains("mediarouter.yml:8:1: unknown field `bogusKey`"),
        "{line}"
    );
    assert!(p.has_stream("b"), "b was dropped by a refused file");

    // 5. A valid file again: b and d go, b's publisher is closed.
    let n = p.count();
    replace(&config, &v2.replace("  b:\n", ""));
    let line = p.wait_log(n, "reload: ");
    assert!(line.contains("reload: +0 paths, -2, ~0"), "{line}");
    let st = wait_child(&mut pub_b, Duration::from_secs(10), "b's publisher");
    assert!(!st.success());
    p.wait_log(n, "publisher closed: the path was removed from the config");

    // a's reader saw none of it.
    assert!(wait_child(&mut reader, Duration::from_secs(30), "a's reader").success());
    let gap = max_video_gap(&out);
    eprintln!("a's reader across 5 reloads: largest gap between frames {gap:.3} s");
    assert!(gap < 1.5 / 30.0, "a frame was lost: gap {gap}");
    drop(Children(vec![pub_a]));
}

fn kill(child: &Child, signal: &str) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// mediarouter.yml → links/current.yml → real/v1.yml: the watch sees the first and the
/// last directory, not the middle one, so repointing the middle link needs SIGHUP.
#[test]
fn sighup_reloads_what_no_watch_can_see() {
    let dir = tempfile::tempdir().unwrap();
    let (links, real) = (dir.path().join("links"), dir.path().join("real"));
    std::fs::create_dir_all(&links).unwrap();
    std::fs::create_dir_all(&real).unwrap();
    let rtsp = free_port();
    let v1 = format!("{}paths:\n  a:\n", header(rtsp));
    std::fs::write(real.join("v1.yml"), &v1).unwrap();
    std::fs::write(real.join("v2.yml"), format!("{v1}  b:\n")).unwrap();
    std::os::unix::fs::symlink(real.join("v1.yml"), links.join("current.yml")).unwrap();
    let config = dir.path().join("mediarouter.yml");
    std::os::unix::fs::symlink(links.join("current.yml"), &config).unwrap();
    let p = Proc::start(&config, rtsp, &[]);
    swap_link(&links.join("current.yml"), &real.join("v2.yml"));
    let n = p.count();
    kill(&p.child, "HUP");
    let line = p.wait_log(n, "reload: ");
    assert!(line.contains("reload: +1 paths, -0, ~0"), "{line}");
}

/// MEDIAROUTER_RTSPADDRESS moves the listener the file names; MTX_PATHS_CAM_SOURCE
/// makes a publisher path pull; both still hold after the file is reloaded.
#[test]
fn environment_overrides_apply_on_every_load() {
    if !have_ffmpeg() {
        return;
    }
    let (cams, _cam_publishers) = cameras("", &["cam1"]);
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port) = (free_port(), free_port());
    let v1 = format!("{}paths:\n  cam:\n", header(file_port));
    let config = dir.path().join("mediarouter.yml");
    std::fs::write(&config, &v1).unwrap();
    let p = Proc::start(
        &config,
        env_port,
        &[
            ("MEDIAROUTER_RTSPADDRESS", &format!("127.0.0.1:{env_port}")),
            ("MTX_PATHS_CAM_SOURCE", &cams.url("cam1")),
        ],
    );
    assert!(TcpStream::connect(("127.0.0.1", file_port)).is_err());
    wait_until(Duration::from_secs(10), "cam to pull cam1", || {
        cams.readers("cam1") == 1 && p.has_stream("cam")
    });
    let n = p.count();
    replace(&config, &format!("{v1}  other:\n"));
    let line = p.wait_log(n, "reload: ");
    assert!(line.contains("reload: +1 paths, -0, ~0"), "{line}");
    assert!(line.contains("listeners unchanged"), "{line}");
    assert_eq!(cams.readers("cam1"), 1);
    assert!(p.has_stream("cam"));
}
