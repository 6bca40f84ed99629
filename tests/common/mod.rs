//! Shared test harness: an in-process server on free ports, generated media clips,
//! ffmpeg/ffprobe helpers, a raw RTSP client for byte-level cases and a log capture.
#![allow(dead_code)]

pub mod http;
pub mod netns;
pub mod nginx;
pub mod rtmp;
pub mod tls;
pub mod webrtc;

use mediarouter::config::Config;
use mediarouter::core::Stream;
use mediarouter::server::Server;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `ok`, after saying why a test skips; a missing tool fails the test under `CI=true`.
pub fn present(ok: bool, ci_message: &str, skip_message: &str) -> bool {
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{ci_message}");
        eprintln!("{skip_message}");
    }
    ok
}

/// True when headless Chromium, node and tests/browser's npm packages (`modules`
/// besides playwright-core) are there. Under `CI=true` their absence fails the test.
pub fn have_browser(modules: &[&str]) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let ok = Path::new("/usr/bin/chromium").exists()
        && std::iter::once("playwright-core")
            .chain(modules.iter().copied())
            .all(|m| dir.join("node_modules").join(m).exists())
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    present(
        ok,
        "browser tests need chromium, node and `npm ci` in tests/browser (.ci/run installs them)",
        "skipping: chromium, node or tests/browser/node_modules missing",
    )
}

/// Runs a script of tests/browser with node (within 90 s): whether it succeeded, its stdout.
pub fn node(script: &str, args: &[&str]) -> (bool, String) {
    node_with(script, args, &[])
}

/// One headless Chromium at a time per test binary: several at once on CI's two cores
/// starve each other (and the server) of whole seconds, which timing checks read as
/// failures. Tests that drive a browser themselves hold it too.
pub fn browser_lock() -> std::sync::MutexGuard<'static, ()> {
    static BROWSER: Mutex<()> = Mutex::new(());
    BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

/// `node` with environment variables (HTTP_USER/HTTP_PASS answer a Basic prompt).
pub fn node_with(script: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let _one = browser_lock();
    node_holding_lock(script, args, env)
}

/// `node_with` for a test that already holds `browser_lock` (it runs another browser).
pub fn node_holding_lock(script: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let mut child = Command::new("node")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(
        &mut child,
        Duration::from_secs(90),
        script.to_str().unwrap(),
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    (status.success(), out)
}

/// H.264 640x360 with its parameter sets, for in-process publishers.
pub fn h264_track() -> mediarouter::core::Track {
    let hex = |s: &str| bytes::Bytes::from(mediarouter::codec::aac::decode_hex(s).unwrap());
    mediarouter::core::Track::new(
        mediarouter::core::Codec::H264 {
            sps: Some(hex("6742c01eda0280bfe5c044000003000400000300f03c58ba80")),
            pps: Some(hex("68ce0fc8")),
        },
        90000,
    )
}

/// Frame `i` at 30 fps for `h264_track`: one NAL unit (an IDR every 30 frames) that
/// carries the frame number in bytes 2..6. The server doesn't decode it.
pub fn numbered_frame(i: u32) -> mediarouter::core::Unit {
    let key = i.is_multiple_of(30);
    let mut nal = vec![if key { 0x65 } else { 0x41 }, 0x88];
    nal.extend_from_slice(&i.to_be_bytes());
    nal.extend_from_slice(&[0x55; 200]);
    mediarouter::core::Unit {
        track: 0,
        pts: i64::from(i) * 3000,
        dts: i64::from(i) * 3000,
        keyframe: key,
        payload: mediarouter::core::Payload::Nalus(vec![bytes::Bytes::from(nal)]),
    }
}

/// True when ffmpeg and ffprobe can run. Under `CI=true` a missing ffmpeg fails the test
/// instead of skipping it.
pub fn have_ffmpeg() -> bool {
    let ok = ["ffmpeg", "ffprobe"].iter().all(|b| {
        Command::new(b)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    present(
        ok,
        "ffmpeg/ffprobe are required in CI (install the ffmpeg package)",
        "skipping: ffmpeg/ffprobe not installed",
    )
}

/// GStreamer 1.22's rtspsrc, shutting down after EOS, sends PAUSE while its CLOSE tears the
/// connection down and reports the EOF of its own close as an error (upstream ignores
/// EOF during CLOSE since). Only that error is forgiven; the media is checked either way.
pub fn gst_shutdown_race(stderr: &str) -> bool {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ERROR")).collect();
    !errors.is_empty()
        && errors
            .iter()
            .all(|l| l.contains("Could not write to resource"))
        && stderr.contains("Could not send message. (Received end-of-file)")
        && !stderr.contains("Could not receive message")
}

/// True when GStreamer's `gst-launch-1.0` with `rtspsrc` is installed; required under `CI=true`.
pub fn have_gstreamer() -> bool {
    let ok = Command::new("gst-inspect-1.0")
        .args(["rtspsrc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    present(
        ok,
        "GStreamer (gstreamer1.0-tools, -plugins-good, -plugins-bad) is required in CI",
        "skipping: GStreamer rtspsrc not installed",
    )
}

/// Polls `cond` until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- log capture

#[derive(Clone, Default)]
pub struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        std::io::stderr().write_all(b)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<LogBuf> = OnceLock::new();

/// Captures this test binary's server logs (all tests share one buffer).
pub fn logs() -> &'static LogBuf {
    LOGS.get_or_init(|| {
        let buf = LogBuf::default();
        let w = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || w.clone())
            .try_init();
        buf
    })
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    /// Log lines at `level` that contain every needle.
    pub fn lines_with(&self, level: &str, needles: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(level) && needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
            .collect()
    }
}

// ---------------------------------------------------------------- server

/// A free TCP port on loopback (for configs that must name one, such as a child
/// process's).
/// An even UDP port on loopback whose odd neighbour is free too (`rtpAddress` and
/// `rtcpAddress`).
pub fn even_pair() -> u16 {
    loop {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p.is_multiple_of(2) && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes killed (and reaped) when dropped.
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A "camera": a server (`extra` + `all_others`) with ffmpeg publishing a looped
/// H.264 + AAC clip over RTSP to each of `paths`, their streams up. The publishers stop
/// when the returned `Children` drop.
pub fn cameras(extra: &str, paths: &[&str]) -> (TestServer, Children) {
    let srv = TestServer::start(&format!("{extra}paths:\n  all_others:\n"));
    let clip = clip(Clip::H264Aac, 10);
    let publishers = paths
        .iter()
        .map(|p| publish(&clip, &srv.url(p), "tcp", true))
        .collect();
    let publishers = Children(publishers);
    for p in paths {
        srv.wait_stream(p);
    }
    (srv, publishers)
}

pub struct TestServer {
    pub server: Server,
    pub rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
}

impl TestServer {
    /// `extra` is appended to a config that listens on loopback with free ports.
    pub fn start(extra: &str) -> TestServer {
        logs();
        // The API is off by default (as in MediaMTX); the tests read it.
        let api = match extra.starts_with("api:") || extra.contains("\napi:") {
            true => "",
            false => "api: yes\n",
        };
        let yaml = format!(
            "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\n{api}{extra}"
        );
        let srv = TestServer::with_config(Config::parse(&yaml, "test").expect("test config"));
        // API config writes edit this text (in memory: there is no file).
        srv.rt
            .block_on(srv.server.set_config_source(None, yaml, false));
        srv
    }

    /// A server on exactly this config.
    pub fn with_config(cfg: Config) -> TestServer {
        logs();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(Server::start(cfg)).expect("server starts");
        let addr = server.rtsp_addr().unwrap();
        TestServer { server, rt, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}/{path}", self.addr)
    }

    pub fn rtmp_url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.server.rtmp_addr().unwrap())
    }

    pub fn flv_url(&self, path: &str) -> String {
        format!("http://{}/{path}.flv", self.server.http_addr().unwrap())
    }

    pub fn stream(&self, path: &str) -> Option<Arc<Stream>> {
        self.server.manager.path(path).and_then(|p| p.stream())
    }

    pub fn readers(&self, path: &str) -> usize {
        self.server.manager.path(path).map_or(0, |p| p.readers())
    }

    pub fn wait_stream(&self, path: &str) -> Arc<Stream> {
        let mut s = None;
        wait_until(Duration::from_secs(20), "the publisher's stream", || {
            s = self.stream(path);
            s.as_ref()
                .is_some_and(|s| s.units_per_track().iter().all(|n| *n > 0))
        });
        s.unwrap()
    }
}

/// Every unit the stream at `path` carries, from its latest keyframe until the
/// publisher ends, with the tracks as they were when reading started.
pub fn stream_units(
    server: &TestServer,
    path: &str,
) -> (Vec<mediarouter::core::Track>, Vec<mediarouter::core::Unit>) {
    let stream = server.wait_stream(path);
    let mut sub = stream.subscribe().expect("stream open");
    let tracks = stream.tracks().to_vec();
    let mut units = Vec::new();
    server.rt.block_on(async {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(20), sub.next())
                .await
                .expect("stream keeps flowing until the publisher ends");
            match item {
                Ok(mediarouter::core::StreamItem::Unit(e)) => units.push(e.unit.clone()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (tracks, units)
}

// ---------------------------------------------------------------- media

#[derive(Clone, Copy, Debug)]
pub enum Clip {
    /// 640x360 30 fps H.264 (1 s GOP) + AAC 44.1 kHz stereo.
    H264Aac,
    /// 320x240 30 fps H.265 (1 s closed GOP, no B-frames) + Opus 48 kHz.
    H265Opus,
    /// 320x240 30 fps H.264 + G.711 µ-law 8 kHz mono: a codec the server passes through.
    H264Pcmu,
    /// 640x360 30 fps H.264 with 2 B-frames (1 s GOP) + AAC 44.1 kHz.
    H264BframesAac,
    /// 1920x1080 30 fps H.264 (1 s GOP) + AAC 44.1 kHz: transcode input.
    H264Aac1080,
    /// 320x240 30 fps H.265 (1 s closed GOP, no B-frames) + AAC: what RTMP/FLV/TS carry.
    H265Aac,
    /// 320x240 30 fps H.265 with 3 B-frames (b-pyramid, 1 s closed GOP) + AAC.
    H265BframesAac,
    /// 640x360 30 fps H.264 with a single keyframe + AAC: a reader that joins late
    /// still gets every frame from the first (the GOP cache holds them all).
    H264AacOneGop,
}

impl Clip {
    pub fn file_name(self, secs: u32) -> String {
        match self {
            Clip::H264Aac => format!("h264-aac-{secs}s.mp4"),
            Clip::H265Opus => format!("h265-opus-{secs}s.mkv"),
            Clip::H264Pcmu => format!("h264-pcmu-{secs}s.mkv"),
            Clip::H264BframesAac => format!("h264-bf2-aac-{secs}s.mp4"),
            Clip::H264AacOneGop => format!("h264-onegop-aac-{secs}s.mp4"),
            Clip::H264Aac1080 => format!("h264-1080-aac-{secs}s.mp4"),
            Clip::H265Aac => format!("h265-aac-{secs}s.mp4"),
            Clip::H265BframesAac => format!("h265-bf3-aac-{secs}s.mp4"),
        }
    }
}

static MEDIA_LOCK: Mutex<()> = Mutex::new(());

/// Generates (once) a test clip of `secs` seconds with ffmpeg and returns its path.
pub fn clip(kind: Clip, secs: u32) -> PathBuf {
    let _g = MEDIA_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(kind.file_name(secs));
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!("tmp-{}", kind.file_name(secs)));
    let video = "-f lavfi -i testsrc2=size=320x240:rate=30";
    let spec = match kind {
        Clip::H264Aac => format!(
            "-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 -t {secs} \
             -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -b:v 1500k -c:a aac -ac 2 -b:a 96k"
        ),
        // Closed GOP without B-frames: ffmpeg's RTSP reader leaves the first video packet
        // without timestamps, which its muxers refuse when B-frames follow.
        Clip::H265Opus => format!(
            "{video} -f lavfi -i sine=frequency=440:sample_rate=48000 -t {secs} -c:v libx265 -preset ultrafast \
             -x265-params keyint=30:open-gop=0:bframes=0:log-level=error -pix_fmt yuv420p -c:a libopus -b:a 64k"
        ),
        Clip::H265Aac | Clip::H265BframesAac => format!(
            "{video} -f lavfi -i sine=frequency=440:sample_rate=44100 -t {secs} -c:v libx265 -preset ultrafast \
             -x265-params keyint=30:open-gop=0:bframes={}:log-level=error -pix_fmt yuv420p -c:a aac -ac 2 -b:a 64k",
            if matches!(kind, Clip::H265Aac) { 0 } else { 3 }
        ),
        Clip::H264BframesAac => format!(
            "-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 -t {secs} \
             -c:v libx264 -preset veryfast -bf 2 -g 30 -pix_fmt yuv420p -b:v 1500k -c:a aac -ac 2 -b:a 96k"
        ),
        Clip::H264Aac1080 => format!(
            "-f lavfi -i testsrc2=size=1920x1080:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 -t {secs} \
             -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -b:v 4000k -c:a aac -ac 2 -b:a 96k"
        ),
        Clip::H264AacOneGop => format!(
            "-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 -t {secs} \
             -c:v libx264 -preset ultrafast -g 100000 -pix_fmt yuv420p -b:v 1000k -c:a aac -ac 2 -b:a 96k"
        ),
        Clip::H264Pcmu => format!(
            "{video} -f lavfi -i sine=frequency=440:sample_rate=8000 -t {secs} -c:v libx264 -preset ultrafast \
             -g 30 -pix_fmt yuv420p -c:a pcm_mulaw -ar 8000 -ac 1"
        ),
    };
    let mut args: Vec<&str> = vec!["-hide_banner", "-loglevel", "error", "-y"];
    args.extend(spec.split_whitespace());
    let tmp_s = tmp.to_str().unwrap().to_string();
    args.push(&tmp_s);
    let st = Command::new("ffmpeg")
        .args(&args)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "generating {kind:?} failed");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// ffmpeg reading `clip` in real time (optionally looped) with output arguments `out`.
fn ffmpeg_publisher(clip: &Path, looped: bool, out: &[&str]) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"]);
    if looped {
        cmd.args(["-stream_loop", "-1"]);
    }
    cmd.arg("-i").arg(clip).args(["-c", "copy"]).args(out);
    cmd.stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg publisher")
}

/// ffmpeg publishing `clip` in real time to an RTSP `url`.
pub fn publish(clip: &Path, url: &str, transport: &str, looped: bool) -> Child {
    publish_with(clip, url, transport, looped, &[])
}

/// Like `publish`, with output options such as `-an` before the URL.
pub fn publish_with(
    clip: &Path,
    url: &str,
    transport: &str,
    looped: bool,
    extra: &[&str],
) -> Child {
    let mut out = extra.to_vec();
    out.extend(["-f", "rtsp", "-rtsp_transport", transport, url]);
    ffmpeg_publisher(clip, looped, &out)
}

/// ffmpeg publishing `clip` in real time over RTMP (FLV).
pub fn publish_rtmp(clip: &Path, url: &str, looped: bool) -> Child {
    ffmpeg_publisher(clip, looped, &["-f", "flv", url])
}

/// Publishes `clip` for ever in real time as MPEG-TS over SRT to `url`.
pub fn publish_srt(clip: &Path, url: &str) -> Child {
    ffmpeg_publisher(clip, true, &["-f", "mpegts", url])
}

/// First timestamps (seconds) of each stream of a recording, in file stream order.
pub fn first_pts(file: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe");
    let mut first: Vec<Option<f64>> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut it = line.split(',');
        let (Some(i), Some(t)) = (it.next(), it.next()) else {
            continue;
        };
        let (Ok(i), Ok(t)) = (i.parse::<usize>(), t.parse::<f64>()) else {
            continue;
        };
        if first.len() <= i {
            first.resize(i + 1, None);
        }
        first[i].get_or_insert(t);
    }
    first.into_iter().map(|t| t.unwrap_or(f64::NAN)).collect()
}

/// ffprobe's CSV of `entries` for every packet of the first video stream.
fn ffprobe_video_packets(file: &Path, entries: &str) -> std::process::Output {
    Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            entries,
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe")
}

/// `pts - dts` of each video packet, in milliseconds, in file order.
pub fn video_reorder(file: &Path) -> Vec<i64> {
    let out = ffprobe_video_packets(file, "packet=pts_time,dts_time");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',').map(|v| v.trim().parse::<f64>());
            let (Some(Ok(pts)), Some(Ok(dts))) = (it.next(), it.next()) else {
                return None;
            };
            Some(((pts - dts) * 1000.0).round() as i64)
        })
        .collect()
}

/// ffmpeg reading `url` into `out` with stream copy; `transport` applies to rtsp:// URLs.
pub fn read_to_file(url: &str, transport: &str, out: &Path) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error"]);
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", transport]);
    }
    cmd.args(["-i", url, "-c", "copy", "-y"])
        .arg(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg reader")
}

/// ffmpeg reading `url` (RTSP over TCP) and dropping what it reads, until killed or
/// the server ends the stream.
pub fn read_to_null(url: &str) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error"]);
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    cmd.args(["-i", url, "-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg reader")
}

/// ffmpeg reading `url` for `secs` seconds into `out` (RTSP over TCP).
pub fn read_for(url: &str, secs: u32, out: &Path) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error"]);
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    cmd.args(["-i", url, "-t", &secs.to_string(), "-c", "copy", "-y"])
        .arg(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg reader")
}

/// Waits for a child with a bound; kills it on timeout and panics.
pub fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug, Default, Clone)]
pub struct Probed {
    pub codec: String,
    pub width: u64,
    pub height: u64,
    pub sample_rate: u64,
    pub packets: u64,
}

/// Streams of a media file as ffprobe counts them: [video, audio] in file order.
pub fn probe(file: &Path) -> Vec<Probed> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .arg("stream=codec_name,codec_type,width,height,sample_rate,nb_read_packets")
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {file:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |s: &serde_json::Value, k: &str| -> u64 {
        match &s[k] {
            serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
            serde_json::Value::String(t) => t.parse().unwrap_or(0),
            _ => 0,
        }
    };
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Probed {
            codec: s["codec_name"].as_str().unwrap_or("").to_string(),
            width: num(s, "width"),
            height: num(s, "height"),
            sample_rate: num(s, "sample_rate"),
            packets: num(s, "nb_read_packets"),
        })
        .collect()
}

/// Share of the frames between a recording's first and last video frame that it holds
/// (1.0 = no frame lost). The first two timestamps are skipped: ffmpeg's RTSP reader
/// leaves the first packet unstamped and its muxer invents one.
/// Presentation times (seconds) of a recording's video keyframes, in order.
pub fn keyframe_times(file: &Path) -> Vec<f64> {
    let out = ffprobe_video_packets(file, "packet=pts_time,flags");
    let mut t: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('K'))
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// A recording's video presentation times (seconds), sorted; at least four.
fn video_pts(file: &Path) -> Vec<f64> {
    let out = ffprobe_video_packets(file, "packet=pts_time");
    let mut pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    pts.sort_by(f64::total_cmp);
    assert!(pts.len() > 3, "{file:?} has {} video packets", pts.len());
    pts
}

/// The longest time between consecutive video frames of a recording (seconds): a lost
/// frame shows as a gap of two frame durations or more.
pub fn max_video_gap(file: &Path) -> f64 {
    let pts = video_pts(file);
    pts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

pub fn video_completeness(file: &Path, fps: f64) -> f64 {
    let pts = video_pts(file);
    let expected = ((pts[pts.len() - 1] - pts[2]) * fps).round() + 3.0;
    pts.len() as f64 / expected
}

// ---------------------------------------------------------------- raw RTSP client

/// A minimal RTSP client for byte-level tests.
pub struct RawClient {
    pub sock: TcpStream,
    cseq: u32,
    buf: Vec<u8>,
    pub session: Option<String>,
}

pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        Self::connect_with(TcpStream::connect(addr).unwrap())
    }

    pub fn connect_with(sock: TcpStream) -> RawClient {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawClient {
            sock,
            cseq: 0,
            buf: Vec::new(),
            session: None,
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        self.cseq += 1;
        let mut req = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        if let Some(s) = &self.session {
            req += &format!("Session: {s}\r\n");
        }
        if !body.is_empty() {
            req += &format!("Content-Length: {}\r\n", body.len());
        }
        req += "\r\n";
        self.sock.write_all(req.as_bytes()).unwrap();
        self.sock.write_all(body).unwrap();
        let resp = self.read_response();
        if let Some(s) = resp.header("Session") {
            self.session = Some(s.split(';').next().unwrap().to_string());
        }
        resp
    }

    fn fill(&mut self) {
        let mut tmp = [0u8; 65536];
        let n = self.sock.read(&mut tmp).expect("read from server");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&tmp[..n]);
    }

    /// Reads the next response, skipping interleaved frames.
    pub fn read_response(&mut self) -> RawResponse {
        loop {
            if self.buf.first() == Some(&b'$') {
                if self.buf.len() >= 4 {
                    let len = 4 + u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                    if self.buf.len() >= len {
                        self.buf.drain(..len);
                        continue;
                    }
                }
                self.fill();
                continue;
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status: u16 = lines
                    .next()
                    .unwrap()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| {
                        l.split_once(':')
                            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                while self.buf.len() < end + 4 + len {
                    self.fill();
                }
                let body = self.buf[end + 4..end + 4 + len].to_vec();
                self.buf.drain(..end + 4 + len);
                return RawResponse {
                    status,
                    headers,
                    body,
                };
            }
            self.fill();
        }
    }

    /// DESCRIBE, then SETUP every track over TCP (channels 2i, 2i+1); the SETUP replies.
    pub fn setup_tcp(&mut self, url: &str) -> Vec<RawResponse> {
        let d = self.request("DESCRIBE", url, &[("Accept", "application/sdp")], b"");
        assert_eq!(d.status, 200, "DESCRIBE {url}");
        let tracks = String::from_utf8_lossy(&d.body).matches("m=").count();
        (0..tracks)
            .map(|i| {
                let t = format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * i, 2 * i + 1);
                let r = self.request(
                    "SETUP",
                    &format!("{url}/trackID={i}"),
                    &[("Transport", &t)],
                    b"",
                );
                assert_eq!(r.status, 200, "SETUP track {i}");
                r
            })
            .collect()
    }

    /// DESCRIBE, SETUP every track over TCP, PLAY. Returns the number of tracks.
    pub fn play_tcp(&mut self, url: &str) -> usize {
        let tracks = self.setup_tcp(url).len();
        let r = self.request("PLAY", url, &[], b"");
        assert_eq!(r.status, 200, "PLAY");
        tracks
    }

    /// Reads interleaved frames for `dur`, starting with what is already buffered;
    /// returns (channel, payload) pairs.
    pub fn read_frames(&mut self, dur: Duration) -> Vec<(u8, Vec<u8>)> {
        self.sock
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut out = Vec::new();
        let start = Instant::now();
        let mut tmp = [0u8; 65536];
        loop {
            while self.buf.len() >= 4 && self.buf[0] == b'$' {
                let len = 4 + u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < len {
                    break;
                }
                out.push((self.buf[1], self.buf[4..len].to_vec()));
                self.buf.drain(..len);
            }
            if start.elapsed() >= dur {
                break;
            }
            match self.sock.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(_) => {}
            }
        }
        self.sock
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        out
    }

    /// True once the server has closed the connection (EOF or reset).
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        self.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let start = Instant::now();
        let mut tmp = [0u8; 65536];
        while start.elapsed() < timeout {
            match self.sock.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Reads interleaved media in a thread and counts RTP packets, until the connection ends.
pub struct Counter {
    pub packets: Arc<std::sync::atomic::AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
    sock: Option<TcpStream>,
}

impl Counter {
    pub fn spawn(mut client: RawClient) -> Counter {
        let packets = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let p = packets.clone();
        let sock = client.sock.try_clone().ok();
        let handle = std::thread::spawn(move || {
            let mut buf = std::mem::take(&mut client.buf);
            let mut tmp = [0u8; 65536];
            loop {
                while buf.len() >= 4 && buf[0] == b'$' {
                    let len = 4 + u16::from_be_bytes([buf[2], buf[3]]) as usize;
                    if buf.len() < len {
                        break;
                    }
                    if buf[1].is_multiple_of(2) {
                        p.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    buf.drain(..len);
                }
                match client.sock.read(&mut tmp) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            }
        });
        Counter {
            packets,
            handle: Some(handle),
            sock,
        }
    }

    /// Hangs up (the reading thread then ends).
    pub fn close(&mut self) {
        if let Some(s) = self.sock.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn count(&self) -> u64 {
        self.packets.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the server ended the connection (the reading thread saw its end).
    pub fn ended(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits until at least `more` further packets arrive.
    pub fn wait_more(&self, more: u64, what: &str) {
        let start = self.count();
        wait_until(Duration::from_secs(10), what, || {
            self.count() >= start + more
        });
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        // The thread ends when the server closes the connection; don't block on it.
        drop(self.handle.take());
    }
}

// ---------------------------------------------------------------- the binary

/// Runs the binary and collects its log lines.
pub fn spawn_server(cfg: &std::path::Path) -> (Child, Arc<Mutex<Vec<String>>>) {
    spawn_in(Command::new(env!("CARGO_BIN_EXE_mediarouter")).arg(cfg))
}

pub fn spawn_in(cmd: &mut Command) -> (Child, Arc<Mutex<Vec<String>>>) {
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
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            eprintln!("[server] {line}");
            l.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

pub fn find_line(lines: &Mutex<Vec<String>>, needle: &str) -> Option<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains(needle))
        .cloned()
}

/// Waits (15 s) for a line, logged after the first `from` lines, that contains `needle`.
pub fn wait_line_after(lines: &Mutex<Vec<String>>, from: usize, needle: &str) -> String {
    let mut found = None;
    wait_until(Duration::from_secs(15), needle, || {
        found = lines.lock().unwrap()[from..]
            .iter()
            .find(|l| l.contains(needle))
            .cloned();
        found.is_some()
    });
    found.unwrap_or_default()
}

/// The address a listener of the binary's log says it opened (`RTSP`, `RTMP`, `HTTP`…),
/// waited for.
pub fn listen_addr(lines: &Mutex<Vec<String>>, what: &str) -> SocketAddr {
    let needle = format!("{what} listener opened on ");
    let mut line = None;
    wait_until(Duration::from_secs(10), &needle, || {
        line = find_line(lines, &needle);
        line.is_some()
    });
    let line = line.unwrap_or_default();
    let addr = line
        .split(&needle)
        .nth(1)
        .and_then(|r| r.split_whitespace().next());
    addr.and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

// ---------------------------------------------------------------- bounded runs

/// Runs `cmd` to its end within `timeout`: whether it succeeded, its stdout and stderr.
/// `Err` when it was still running (it is killed).
pub fn output_within(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<(bool, Vec<u8>, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = err.join().unwrap_or_default();
    Ok((
        status.success(),
        out.join().unwrap_or_default(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

/// Reads one second of video from `url` (ffmpeg input options `opts` first); fails
/// the test unless frames came.
pub fn read_a_second(opts: &[&str], url: &str) {
    let mut args = opts.to_vec();
    args.extend(["-t", "1", "-i", url]);
    let frames = ffmpeg_decoded(&args).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(frames > 0, "{url}: no frames");
}

/// Video frames ffmpeg decodes from the input its `input` arguments open (input
/// options, then `-i URL`), within 40 s; `Err` with ffmpeg's message when it fails.
pub fn ffmpeg_decoded(input: &[&str]) -> Result<usize, String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(input)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"]);
    let (ok, out, err) = output_within(&mut cmd, Duration::from_secs(40))?;
    if !ok {
        return Err(format!("ffmpeg failed: {}", err.trim()));
    }
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count())
}

/// A fixed-seed pseudo-random sequence (64-bit LCG): tests that drop or delay packets
/// by chance do it the same way on every run.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next value in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
