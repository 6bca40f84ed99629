//! Recording to disk and playing it back, with real clients: ffmpeg publishes over RTSP
//! into recorded paths (fMP4 and MPEG-TS; H.264 with B-frames + AAC, H.265 + Opus),
//! ffprobe counts what the segment files hold, the playback server's /list and /get
//! answer as MediaMTX's do and a /get range plays in ffmpeg and Chromium. Also: a server
//! killed with -9 leaves playable files, an unwritable directory costs one error line,
//! retention deletes only its own old segments, and a reload switches recording.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

const FPS: f64 = 30.0;
const SEGMENT_NAME: &str = r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}-\d{6}\.(mp4|ts)$";

/// The segment files under `dir` (one path's directory), oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let re = regex::Regex::new(SEGMENT_NAME).unwrap();
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| re.is_match(&p.file_name().unwrap().to_string_lossy()));
    v.sort();
    v
}

fn video_packets(file: &Path) -> u64 {
    probe(file)
        .iter()
        .filter(|p| p.width > 0)
        .map(|p| p.packets)
        .sum()
}

fn duration_of(file: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

fn json(addr: std::net::SocketAddr, uri: &str) -> (u16, serde_json::Value) {
    let (status, body) = common::http::get(addr, uri);
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_time(s: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
}

fn wait_log(needles: &[&str], what: &str) {
    wait_until(Duration::from_secs(30), what, || {
        !logs().lines_with("", needles).is_empty()
    });
}

/// One server records three paths, 12 s each, in 5 s segments; then its playback
/// server lists and serves them, and refuses what would read outside them.
#[test]
fn segments_hold_every_frame_and_play_back() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let hooks = root.join("hooks.log");
    let srv = TestServer::start(&format!(
        "playback: yes\nplaybackAddress: 127.0.0.1:0\n\
         pathDefaults:\n  record: yes\n  recordPath: {root}/%path/%Y-%m-%d_%H-%M-%S-%f\n  recordSegmentDuration: 5s\n\
         paths:\n  bf:\n    runOnRecordSegmentCreate: sh -c \"echo create $MTX_SEGMENT_PATH >> {hooks}\"\n\
         \x20   runOnRecordSegmentComplete: sh -c \"echo complete $MTX_SEGMENT_DURATION $MTX_SEGMENT_PATH >> {hooks}\"\n\
         \x20 ts:\n    recordFormat: mpegts\n  hevc: {{}}\n",
        root = root.display(),
        hooks = hooks.display(),
    ));
    let h264 = clip(Clip::H264BframesAac, 12);
    let hevc = clip(Clip::H265Opus, 12);
    let mut pubs = Children(vec![
        publish(&h264, &srv.url("bf"), "tcp", false),
        publish(&h264, &srv.url("ts"), "tcp", false),
        publish(&hevc, &srv.url("hevc"), "tcp", false),
    ]);
    for c in &mut pubs.0 {
        wait_child(c, Duration::from_secs(40), "publisher");
    }
    for p in ["bf", "ts", "hevc"] {
        wait_log(
            &["recording ended", &format!("path={p}")],
            "the recorder's end",
        );
    }
    let published = (12.0 * FPS) as u64;
    for (path, codec) in [("bf", "h264"), ("ts", "h264"), ("hevc", "hevc")] {
        let files = segments(&root.join(path));
        assert_eq!(files.len(), 3, "{path}: {files:?}");
        let mut frames = 0;
        for f in &files {
            let streams = probe(f);
            assert!(
                streams.iter().any(|s| s.codec == codec),
                "{f:?}: {streams:?}"
            );
            if path == "hevc" {
                assert!(
                    streams.iter().any(|s| s.codec == "opus" && s.packets > 0),
                    "{streams:?}"
                );
            }
            frames += video_packets(f);
        }
        assert!(
            frames <= published && frames + FPS as u64 >= published,
            "{path}: {frames} of {published} frames recorded"
        );
    }
    // The hooks ran for each segment, with the file and (when complete) its length.
    let text = std::fs::read_to_string(&hooks).unwrap_or_default();
    let bf = segments(&root.join("bf"));
    for f in &bf {
        let f = f.display().to_string();
        assert!(text.contains(&format!("create {f}")), "{text}");
        let done = text
            .lines()
            .find(|l| l.starts_with("complete") && l.ends_with(&f))
            .unwrap_or_else(|| panic!("no completion of {f}: {text}"));
        let secs: f64 = done.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(secs > 1.5 && secs < 5.6, "{done}");
    }

    // /list: the three segments of a path are one span of the 12 s.
    let pb = srv.server.playback_addr().unwrap();
    for path in ["bf", "ts"] {
        let (status, list) = json(pb, &format!("/list?path={path}"));
        assert_eq!(status, 200, "{list}");
        let spans = list.as_array().unwrap();
        assert_eq!(spans.len(), 1, "{list}");
        let d = spans[0]["duration"].as_f64().unwrap();
        assert!((d - 12.0).abs() < 1.0, "{list}");
        assert!(
            spans[0]["url"].as_str().unwrap().contains("/get?path="),
            "{list}"
        );
        // /get: 4 s across the first two segments' boundary, from the keyframe before.
        let start = parse_time(spans[0]["start"].as_str().unwrap()) + Duration::from_millis(3200);
        let uri = format!(
            "/get?path={path}&start={}&duration=4",
            rfc3339(start).replace('+', "%2B")
        );
        let (status, body) = common::http::get(pb, &uri);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let out = root.join(format!("get-{path}.mp4"));
        std::fs::write(&out, &body).unwrap();
        let got = duration_of(&out);
        assert!((3.9..=5.1).contains(&got), "{path}: /get gave {got} s");
        let decoded = ffmpeg_decoded(&["-i", out.to_str().unwrap()]).unwrap();
        assert!(
            decoded as f64 >= 3.9 * FPS,
            "{path}: {decoded} frames decode"
        );
        // The same range as a plain MP4.
        let (status, body) = common::http::get(pb, &format!("{uri}&format=mp4"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let plain = root.join(format!("get-{path}-plain.mp4"));
        std::fs::write(&plain, &body).unwrap();
        let got = duration_of(&plain);
        assert!(
            (3.9..=5.1).contains(&got),
            "{path}: format=mp4 gave {got} s"
        );
        let frames = ffmpeg_decoded(&["-i", plain.to_str().unwrap()]).unwrap();
        assert_eq!(frames, decoded, "{path}: the same frames as the fMP4");
    }
    // The page plays a range in Chromium.
    if have_browser(&[]) {
        let (ok, out) = node(
            "playback_page.mjs",
            &[&format!("http://{pb}/?path=bf"), "3", "5", "3"],
        );
        assert!(ok, "the playback page did not play: {out}");
        assert!(out.contains("\"width\":640"), "{out}");
    }

    // Nothing outside the path's own segments is read.
    std::os::unix::fs::symlink(
        "/etc/passwd",
        root.join("bf").join("2000-01-01_00-00-00-000000.mp4"),
    )
    .unwrap();
    let (status, list) = json(pb, "/list?path=bf");
    assert_eq!(
        (status, list.as_array().map(Vec::len)),
        (200, Some(1)),
        "a symlink is no segment: {list}"
    );
    let old = "start=2000-01-01T00:00:00Z&duration=10";
    for uri in [
        format!("/get?path=../etc&{old}"),
        format!("/get?path=%2e%2e%2fetc&{old}"),
        format!("/get?path=bf/../../etc&{old}"),
        format!("/get?path=/etc&{old}"),
        format!("/get?path=bf%00&{old}"),
        "/list?path=..%2F..%2Fetc".to_string(),
        "/list?path=%2Fetc%2Fpasswd".to_string(),
        format!("/get?path=bf&{old}"),
        format!("/get?path=nosuch&{old}"),
        "/get?path=bf&start=yesterday&duration=1".to_string(),
        "/get?path=bf&start=2000-01-01T00:00:00Z&duration=-1".to_string(),
    ] {
        let (status, body) = common::http::get(pb, &uri);
        assert!(matches!(status, 400 | 404), "{uri}: {status}");
        assert!(
            !String::from_utf8_lossy(&body).contains("root:"),
            "{uri} read a file"
        );
    }
}

/// The start time a segment's name gives (local time, as the server writes it).
fn named_start(file: &Path) -> SystemTime {
    let stem = file.file_stem().unwrap().to_string_lossy().to_string();
    let t = chrono::NaiveDateTime::parse_from_str(&stem, "%Y-%m-%d_%H-%M-%S-%6f").unwrap();
    let local: chrono::DateTime<chrono::Local> =
        chrono::TimeZone::from_local_datetime(&chrono::Local, &t)
            .earliest()
            .unwrap();
    local.into()
}

/// `kill -9` three seconds into a segment: every file plays to its last part.
#[test]
fn kill_9_leaves_playable_segments() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg = root.join("mediarouter.yml");
    let port = free_port();
    std::fs::write(
        &cfg,
        format!(
            "rtspAddress: 127.0.0.1:{port}\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\n\
             pathDefaults:\n  record: yes\n  recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n\
             paths:\n  mp4: {{}}\n  ts:\n    recordFormat: mpegts\n",
            root.display()
        ),
    )
    .unwrap();
    let (mut server, lines) = spawn_server(&cfg);
    listen_addr(&lines, "RTSP");
    let clip = clip(Clip::H264BframesAac, 12);
    let _pubs = Children(vec![
        publish(&clip, &format!("rtsp://127.0.0.1:{port}/mp4"), "tcp", true),
        publish(&clip, &format!("rtsp://127.0.0.1:{port}/ts"), "tcp", true),
    ]);
    wait_until(Duration::from_secs(30), "both segments", || {
        !segments(&root.join("mp4")).is_empty() && !segments(&root.join("ts")).is_empty()
    });
    let files: Vec<PathBuf> = ["mp4", "ts"]
        .iter()
        .map(|p| segments(&root.join(p)).remove(0))
        .collect();
    let latest = files.iter().map(|f| named_start(f)).max().unwrap();
    // The crash comes at a moment, not after something: nothing here waits on it.
    let at = latest + Duration::from_secs(3);
    std::thread::sleep(at.duration_since(SystemTime::now()).unwrap_or_default());
    server.kill().unwrap(); // SIGKILL
    let killed = SystemTime::now();
    server.wait().unwrap();
    for f in &files {
        ffmpeg_decoded(&["-i", f.to_str().unwrap()]).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        let elapsed = killed.duration_since(named_start(f)).unwrap().as_secs_f64();
        let kept = video_packets(f) as f64 / FPS;
        // What a crash may lose: the part being written (1 s) and up to a GOP (1 s).
        eprintln!("{f:?}: killed {elapsed:.2} s into the segment, which holds {kept:.2} s");
        assert!(kept >= elapsed - 2.0, "{f:?}: {kept} s kept of {elapsed}");
    }
}

/// The error lines of `path`'s recorder.
fn errors(path: &str) -> usize {
    logs()
        .lines_with("ERROR", &["recording stopped", &format!("path={path}")])
        .len()
}

/// Once `path`'s recording failed: one error line, even several keyframes (retries)
/// later, while a reader of the path gets every frame.
fn one_error_and_readers_unaffected(srv: &TestServer, path: &str, dir: &Path) {
    wait_log(
        &["ERROR", "recording stopped", &format!("path={path}")],
        "the error line",
    );
    let out = dir.join(format!("read-{path}.mkv"));
    let mut reader = read_for(&srv.url(path), 3, &out);
    wait_child(&mut reader, Duration::from_secs(30), "reader");
    assert!(
        video_packets(&out) as f64 >= 2.5 * FPS,
        "the reader got its frames"
    );
    assert_eq!(errors(path), 1);
}

/// A record directory that can't be written: one error line, readers unaffected, and
/// recording resumes by itself once it can.
#[test]
fn unwritable_directory_costs_one_error_and_recording_resumes() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A file where the path's directory belongs: root or not, nothing can be created.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let (srv, _pubs) = cameras(
        &format!(
            "pathDefaults:\n  record: yes\n  recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n  recordSegmentDuration: 1s\n",
            blocked.display()
        ),
        &["cam"],
    );
    one_error_and_readers_unaffected(&srv, "cam", dir.path());
    std::fs::remove_file(&blocked).unwrap();
    wait_log(&["recording resumed", "path=cam"], "recording to resume");
    wait_until(Duration::from_secs(20), "segments", || {
        segments(&blocked.join("cam")).len() >= 2
    });
    assert_eq!(errors("cam"), 1);
}

/// `recordDeleteAfter: 5s` deletes the path's old segments and nothing else.
#[test]
fn retention_deletes_old_segments_and_nothing_else() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let srv = TestServer::start(&format!(
        "pathDefaults:\n  record: yes\n  recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n  recordSegmentDuration: 1s\n  recordDeleteAfter: 5s\npaths:\n  old: {{}}\n",
        root.display()
    ));
    let cam = root.join("old");
    std::fs::create_dir_all(&cam).unwrap();
    let stray = cam.join("notes.txt");
    std::fs::write(&stray, b"keep me").unwrap();
    let other = root.join("elsewhere.mp4");
    std::fs::write(&other, b"keep me too").unwrap();
    let mut p = publish(&clip(Clip::H264Aac, 4), &srv.url("old"), "tcp", false);
    wait_child(&mut p, Duration::from_secs(30), "publisher");
    wait_log(&["recording ended", "path=old"], "the recorder's end");
    assert!(segments(&cam).len() >= 3, "{:?}", segments(&cam));
    wait_until(Duration::from_secs(30), "old segments deleted", || {
        segments(&cam).is_empty()
    });
    assert!(
        stray.exists() && other.exists(),
        "only segments are deleted"
    );
}

/// A reload turns recording on and off; the publisher stays connected throughout.
#[test]
fn reload_switches_recording_without_disconnecting() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let base = "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\n";
    let conf = |record: &str| {
        mediarouter::config::Config::parse(
            &format!(
                "{base}paths:\n  live:\n    record: {record}\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n",
                root.display()
            ),
            "t",
        )
        .unwrap()
    };
    let srv = TestServer::with_config(conf("no"));
    let _p = Children(vec![publish(
        &clip(Clip::H264Aac, 10),
        &srv.url("live"),
        "tcp",
        true,
    )]);
    let stream = srv.wait_stream("live");
    let summary = srv.rt.block_on(srv.server.reload(conf("yes")));
    assert_eq!(summary.recorders, (1, 0), "{summary}");
    wait_until(Duration::from_secs(20), "segments", || {
        segments(&root.join("live")).len() >= 2
    });
    let summary = srv.rt.block_on(srv.server.reload(conf("no")));
    assert_eq!(summary.recorders, (0, 1), "{summary}");
    wait_log(&["recording ended", "path=live"], "the recorder to stop");
    let files = segments(&root.join("live"));
    let sizes: Vec<u64> = files.iter().map(|f| f.metadata().unwrap().len()).collect();
    // Nothing is written after the stop, while the stream goes on (45 more frames).
    let frames = stream.units_per_track()[0];
    wait_until(Duration::from_secs(20), "more frames", || {
        stream.units_per_track()[0] >= frames + 45
    });
    assert_eq!(segments(&root.join("live")), files);
    let now: Vec<u64> = files.iter().map(|f| f.metadata().unwrap().len()).collect();
    assert_eq!(now, sizes);
    let now = srv.wait_stream("live");
    assert!(
        std::sync::Arc::ptr_eq(&stream, &now),
        "the publisher's stream went on"
    );
}

/// Unmounts a test's tmpfs when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk (a 1 MiB tmpfs): one error line, readers unaffected, and recording
/// resumes once there is room again.
#[test]
fn full_disk_costs_one_error_and_recording_resumes() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present(
        mounted,
        "the full-disk test mounts a tmpfs (CI runs as root)",
        "skipping: can't mount a tmpfs (not root)",
    ) {
        return;
    }
    let _mount = Mount(small.clone());
    let (srv, _pubs) = cameras(
        &format!(
            "pathDefaults:\n  record: yes\n  recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n  recordSegmentDuration: 1s\n",
            small.display()
        ),
        &["full"],
    );
    one_error_and_readers_unaffected(&srv, "full", dir.path());
    // Every file written so far plays to its last complete part.
    let files = segments(&small.join("full"));
    assert!(!files.is_empty());
    for f in &files {
        ffmpeg_decoded(&["-i", f.to_str().unwrap()]).unwrap_or_else(|e| panic!("{f:?}: {e}"));
    }
    for f in files {
        std::fs::remove_file(f).unwrap();
    }
    wait_log(&["recording resumed", "path=full"], "recording to resume");
}

/// The playback server asks for the `playback` permission on the path.
#[test]
fn playback_needs_the_playback_permission() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(&format!(
        "playback: yes\nplaybackAddress: 127.0.0.1:0\nauthInternalUsers:\n\
         - user: viewer\n  pass: secret\n  permissions: [{{action: playback, path: cam}}]\n\
         - user: any\n  permissions: [{{action: read}}, {{action: publish}}]\n\
         paths:\n  cam:\n    record: yes\n    recordPath: {}/%path/%s-%f\n  other:\n    record: yes\n",
        dir.path().display()
    ));
    let pb = srv.server.playback_addr().unwrap();
    let ask = |uri: &str, auth: &str| {
        common::http::request_from(None, pb, &format!("GET {uri} HTTP/1.0{auth}"), b"").0
    };
    let viewer = "\r\nAuthorization: Basic dmlld2VyOnNlY3JldA==";
    assert_eq!(ask("/list?path=cam", ""), 401);
    assert_eq!(
        ask("/list?path=cam", viewer),
        404,
        "allowed, and nothing recorded yet"
    );
    assert_eq!(
        ask("/list?path=other", viewer),
        403,
        "another path's recordings"
    );
    assert_eq!(
        ask("/get?path=cam&start=2026-01-01T00:00:00Z&duration=1", ""),
        401
    );
}

/// The recorder is no client: it takes no `maxReaders` slot, and an on-demand source
/// still closes after the last client left (recording what was watched).
#[test]
fn the_recorder_is_no_client() {
    if !have_ffmpeg() {
        return;
    }
    let (cam, _pubs) = cameras("", &["cam"]);
    let dir = tempfile::tempdir().unwrap();
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: rtsp://{}/cam\n    sourceOnDemand: yes\n    sourceOnDemandCloseAfter: 1s\n\
         \x20   maxReaders: 1\n    record: yes\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n",
        cam.addr,
        dir.path().display()
    ));
    let out = dir.path().join("read.mkv");
    let mut reader = read_for(&edge.url("pulled"), 3, &out);
    assert!(wait_child(&mut reader, Duration::from_secs(40), "reader").success());
    assert!(
        video_packets(&out) as f64 >= 2.5 * FPS,
        "one client fits beside the recorder"
    );
    assert!(
        !segments(&dir.path().join("pulled")).is_empty(),
        "what was watched is recorded"
    );
    wait_until(
        Duration::from_secs(15),
        "the on-demand source to let go",
        || cam.readers("cam") == 0,
    );
    wait_log(&["recording ended", "path=pulled"], "the recorder's end");
}

/// A loop-mounted ext4 image, frozen on demand (`fsfreeze`); thawed and unmounted when
/// dropped, whatever happened.
struct Frozen {
    dir: PathBuf,
    frozen: bool,
}

impl Frozen {
    fn mount(image: &Path, dir: &Path) -> Option<Frozen> {
        let run = |cmd: &mut Command| {
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        std::fs::create_dir_all(dir).ok()?;
        let ok = run(Command::new("truncate").args(["-s", "64M"]).arg(image))
            && run(Command::new("mkfs.ext4").arg("-q").arg(image))
            && run(Command::new("mount")
                .args(["-o", "loop"])
                .arg(image)
                .arg(dir));
        ok.then(|| Frozen {
            dir: dir.to_path_buf(),
            frozen: false,
        })
    }

    fn freeze(&mut self, on: bool) {
        let flag = if on { "-f" } else { "-u" };
        let st = Command::new("fsfreeze")
            .arg(flag)
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success(), "fsfreeze {flag}");
        self.frozen = on;
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if self.frozen {
            let _ = Command::new("fsfreeze").arg("-u").arg(&self.dir).status();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A disk that stops taking writes holds up neither the publisher nor other readers;
/// once it takes them again the recorder goes on from a keyframe, in a new segment,
/// and says it fell behind.
#[test]
fn a_stalled_disk_holds_nothing_up() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("disk");
    let Some(mut disk) = Frozen::mount(&dir.path().join("disk.img"), &mnt) else {
        present(
            false,
            "the stalled-disk test loop-mounts an ext4 image (CI runs as root)",
            "skipping: can't loop-mount an image (not root)",
        );
        return;
    };
    let (srv, _pubs) = cameras(
        &format!(
            "writeQueueSize: 64\npathDefaults:\n  record: yes\n  recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n  recordSegmentDuration: 1s\n",
            mnt.display()
        ),
        &["stall"],
    );
    let stream = srv.wait_stream("stall");
    wait_until(Duration::from_secs(20), "a segment", || {
        !segments(&mnt.join("stall")).is_empty()
    });
    disk.freeze(true);
    let out = dir.path().join("read.mkv");
    let mut reader = read_for(&srv.url("stall"), 3, &out);
    wait_child(&mut reader, Duration::from_secs(30), "reader");
    assert!(
        video_packets(&out) as f64 >= 2.5 * FPS,
        "a reader plays while the disk stalls"
    );
    let before = segments(&mnt.join("stall")).len();
    disk.freeze(false);
    wait_log(
        &["WARN", "recording fell behind", "path=stall"],
        "the recorder to say it fell behind",
    );
    wait_until(Duration::from_secs(20), "a new segment", || {
        segments(&mnt.join("stall")).len() > before
    });
    assert!(
        std::sync::Arc::ptr_eq(&stream, &srv.wait_stream("stall")),
        "the publisher went on"
    );
}
