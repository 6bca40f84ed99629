//! The client matrix: each publisher and reader that users point at a media server,
//! one server per group of cells, every cell judged by the video frames its client
//! decodes (or, for rtmpdump, that ffmpeg decodes from what it saved). Cells of a group
//! run in parallel; each test prints its matrix. Covered by other files: ffmpeg and
//! GStreamer `rtspsrc` reading RTSP over UDP/TCP (rtsp_interop.rs, rtsp_gstreamer.rs)
//! and multicast (rtsp_multicast.rs), hls.js and mpegts.js (browser_*.rs), recording
//! (recording.rs). VLC reads no RTSP here: Debian builds it without live555.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Seconds of video each reader asks for, and the decoded frames a cell needs: the
/// window at 30 fps less one GOP.
const WINDOW: u32 = 3;
const MIN_FRAMES: usize = (WINDOW as usize - 1) * 30;
/// The most a cell may take; a reader that hangs fails its cell.
const CELL_TIMEOUT: Duration = Duration::from_secs(40);

type Cell<'a> = (
    String,
    Box<dyn FnOnce() -> Result<usize, String> + Send + 'a>,
);

fn cell<'a>(name: &str, f: impl FnOnce() -> Result<usize, String> + Send + 'a) -> Cell<'a> {
    (name.to_string(), Box::new(f))
}

/// Runs the cells in parallel, prints the matrix, and fails on any cell that errs or
/// decodes fewer than `MIN_FRAMES`.
fn run_matrix(title: &str, cells: Vec<Cell<'_>>) {
    let results: Vec<(String, Result<usize, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cells
            .into_iter()
            .map(|(name, f)| (name, s.spawn(f)))
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                let r = h.join().unwrap_or_else(|_| Err("panicked".into()));
                (name, r)
            })
            .collect()
    });
    let mut table = format!("client matrix, {title} (decoded video frames, need {MIN_FRAMES}):\n");
    let mut failed = Vec::new();
    for (name, r) in &results {
        let line = match r {
            Ok(n) if *n >= MIN_FRAMES => format!("  pass  {name}: {n}\n"),
            Ok(n) => format!("  FAIL  {name}: {n}\n"),
            Err(e) => format!("  FAIL  {name}: {e}\n"),
        };
        if line.starts_with("  FAIL") {
            failed.push(name.as_str());
        }
        table.push_str(&line);
    }
    eprintln!("{table}");
    assert!(failed.is_empty(), "failed cells {failed:?}\n{table}");
}

fn tool(name: &str, args: &[&str]) -> bool {
    Command::new(name)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// GStreamer with the elements the cells use, rtmpdump and VLC; required under `CI=true`.
fn have_clients() -> bool {
    let gst = [
        "rtspclientsink",
        "rtmp2sink",
        "rtmp2src",
        "hlsdemux",
        "souphttpsrc",
        "flvdemux",
        "avdec_h264",
    ]
    .iter()
    .all(|e| tool("gst-inspect-1.0", &[e]));
    have_ffmpeg()
        && present(
            gst && tool("rtmpdump", &["--help"])
                && vlc().arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
            "the client matrix needs GStreamer (-plugins-bad, -libav, gstreamer1.0-rtsp), rtmpdump, vlc-bin and vlc-plugin-base (.ci/run installs them)",
            "skipping: GStreamer elements, rtmpdump or VLC missing",
        )
}

/// Video frames ffmpeg decodes from `input` (a URL or a file), up to `WINDOW` seconds.
fn window_decoded(input: &str) -> Result<usize, String> {
    let window = WINDOW.to_string();
    let mut args = vec![];
    if input.starts_with("rtsp://") {
        args.extend(["-rtsp_transport", "tcp"]);
    }
    args.extend(["-t", &window, "-i", input]);
    ffmpeg_decoded(&args)
}

/// Runs gst-launch with `source ! decodebin ! video/x-raw ! fakesink` and counts the
/// decoded frames that reach the sink, until `MIN_FRAMES` of them or `CELL_TIMEOUT`.
fn gst_decoded(source: &str) -> Result<usize, String> {
    let pipeline =
        format!("{source} ! decodebin ! video/x-raw ! fakesink name=v sync=false silent=false");
    let mut child = Command::new("gst-launch-1.0")
        .arg("-v")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn gst-launch-1.0: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // fakesink's last-message, one per buffer: "chain ... (v:sink) ...".
            if line.contains("chain") && line.contains("(v:sink)") && tx.send(()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + CELL_TIMEOUT;
    let mut frames = 0;
    while frames < MIN_FRAMES {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(()) => frames += 1,
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    if frames == 0 {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        return Err(format!("no decoded frame: {}", err.trim()));
    }
    Ok(frames)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `cvlc`; as `nobody` when we are root, since VLC refuses to run as root.
fn vlc() -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "cvlc"]);
        c
    } else {
        Command::new("cvlc")
    }
}

/// VLC plays `url` for `WINDOW` (+2) seconds, decoding the video and re-encoding it (MPEG-2)
/// into a file: the frames in that file are frames VLC decoded.
fn vlc_decoded(url: &str, dir: &Path, name: &str) -> Result<usize, String> {
    let out = dir.join(format!("{name}.ts"));
    let sout = format!(
        "#transcode{{vcodec=mp2v,vb=800,acodec=none}}:std{{access=file,mux=ts,dst={}}}",
        out.display()
    );
    let mut cmd = vlc();
    // VLC's run time counts its start-up (HLS: playlist, parts, its 1 s cache), which
    // on a loaded 2-core machine beside 15 other cells took over a second of WINDOW.
    cmd.args(["-q", "--aout=dummy", "--no-video-title-show"])
        .arg(format!("--run-time={}", WINDOW + 2))
        .args([url, "--sout", &sout, "vlc://quit"]);
    let (_, _, err) = output_within(&mut cmd, CELL_TIMEOUT)?;
    if !out.exists() {
        return Err(format!("VLC wrote nothing: {}", err.trim()));
    }
    Ok(probe(&out)
        .iter()
        .find(|s| s.codec == "mpeg2video")
        .map_or(0, |s| s.packets as usize))
}

/// Video tags in an FLV byte stream (file header included), as far as it is complete.
fn flv_video_tags(flv: &[u8]) -> usize {
    let mut rest = flv.get(13..).unwrap_or_default();
    let mut n = 0;
    while let Ok(Some((tag, used))) = mediarouter::format::flv::parse_tag(rest) {
        n += usize::from(tag.typ == 9);
        rest = &rest[used..];
    }
    n
}

/// rtmpdump saves a live RTMP stream to stdout until `WINDOW` seconds of video tags
/// have come (its `--stop` asks the server for a play duration, which live servers
/// ignore); ffmpeg then decodes what it saved.
fn rtmpdump_decoded(url: &str, dir: &Path) -> Result<usize, String> {
    let mut child = Command::new("rtmpdump")
        .args(["--live", "-q", "-r", url, "-o", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn rtmpdump: {e}"))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + CELL_TIMEOUT;
    let mut flv = Vec::new();
    let want = WINDOW as usize * 30 + 30;
    while flv_video_tags(&flv) < want {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => flv.extend(chunk),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = dir.join("rtmpdump.flv");
    std::fs::write(&out, &flv).unwrap();
    window_decoded(out.to_str().unwrap())
}

/// A scratch directory VLC (as `nobody`) can write in.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// GStreamer publishing the video of an MP4 clip, in real time.
fn gst_publish(sink: &str, clip: &Path) -> std::process::Child {
    let pipeline = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! h264parse ! {sink}",
        clip.display()
    );
    Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn gst-launch-1.0")
}

/// Publishers (ffmpeg and GStreamer, RTSP over UDP and TCP, RTMP), each read back by
/// ffmpeg; readers of an RTSP-published H.264 + AAC path over RTMP (ffmpeg, GStreamer
/// rtmp2src, rtmpdump, VLC), HTTP-FLV (ffmpeg, GStreamer, VLC) and LL-HLS (ffmpeg,
/// GStreamer hlsdemux, VLC). Also: H.265 asked for by a classic RTMP player is refused.
#[test]
fn publishers_and_rtmp_flv_ll_hls_readers() {
    if !have_clients() {
        return;
    }
    let srv = TestServer::start("hlsAlwaysRemux: yes\npaths:\n  all_others:\n");
    let looped = clip(Clip::H264Aac, 10);
    let long = clip(Clip::H264Aac, 30);
    let rtmp = |p: &str| srv.rtmp_url(p);
    let _publishers = Children(vec![
        publish(&looped, &srv.url("live/cam"), "tcp", true),
        publish(&clip(Clip::H265Aac, 10), &srv.url("live/hevc"), "tcp", true),
        publish(&looped, &srv.url("pub/ffmpeg-udp"), "udp", true),
        publish(&looped, &srv.url("pub/ffmpeg-tcp"), "tcp", true),
        publish_rtmp(&looped, &rtmp("pub/ffmpeg-rtmp"), true),
        gst_publish(
            &format!(
                "rtspclientsink location={} protocols=udp",
                srv.url("pub/gst-udp")
            ),
            &long,
        ),
        gst_publish(
            &format!(
                "rtspclientsink location={} protocols=tcp",
                srv.url("pub/gst-tcp")
            ),
            &long,
        ),
        gst_publish(
            &format!(
                "flvmux streamable=true ! rtmp2sink location={}",
                rtmp("pub/gst-rtmp")
            ),
            &long,
        ),
    ]);
    let publishers = [
        "ffmpeg-udp",
        "ffmpeg-tcp",
        "ffmpeg-rtmp",
        "gst-udp",
        "gst-tcp",
        "gst-rtmp",
    ];
    srv.wait_stream("live/cam");
    srv.wait_stream("live/hevc");
    for p in publishers {
        srv.wait_stream(&format!("pub/{p}"));
    }
    let dir = shared_dir();
    let d = dir.path();
    let http = srv.server.http_addr().unwrap();
    let flv = srv.flv_url("live/cam");
    let hls = format!("http://{http}/live/cam/index.m3u8");
    let cam_rtmp = rtmp("live/cam");
    let mut cells: Vec<Cell> = publishers
        .iter()
        .map(|p| {
            let url = srv.url(&format!("pub/{p}"));
            cell(&format!("publish {p} → ffmpeg RTSP"), move || {
                window_decoded(&url)
            })
        })
        .collect();
    cells.extend([
        cell("RTMP → ffmpeg", || window_decoded(&cam_rtmp)),
        cell("RTMP → GStreamer rtmp2src", || {
            gst_decoded(&format!(
                "rtmp2src location={cam_rtmp} ! flvdemux name=d d.video"
            ))
        }),
        cell("RTMP → rtmpdump --live", || {
            rtmpdump_decoded(&cam_rtmp, d)
        }),
        cell("RTMP → VLC", || vlc_decoded(&cam_rtmp, d, "vlc-rtmp")),
        cell("HTTP-FLV → ffmpeg", || window_decoded(&flv)),
        cell("HTTP-FLV → GStreamer souphttpsrc ! flvdemux", || {
            gst_decoded(&format!(
                "souphttpsrc location={flv} ! flvdemux name=d d.video"
            ))
        }),
        cell("HTTP-FLV → VLC", || vlc_decoded(&flv, d, "vlc-flv")),
        cell("LL-HLS → ffmpeg", || window_decoded(&hls)),
        cell("LL-HLS → GStreamer hlsdemux", || {
            gst_decoded(&format!("souphttpsrc location={hls} ! hlsdemux"))
        }),
        cell("LL-HLS → VLC", || vlc_decoded(&hls, d, "vlc-llhls")),
    ]);
    run_matrix(
        "RTSP/RTMP publishers, RTMP, HTTP-FLV and LL-HLS readers",
        cells,
    );

    // ffmpeg 5.1 and rtmpdump are classic RTMP players: they can't decode H.265 and say
    // so in no message, so the server refuses them with a reason and one warn each.
    let hevc = rtmp("live/hevc");
    let err = window_decoded(&hevc).expect_err("ffmpeg got H.265 over classic RTMP");
    assert!(
        err.contains("Enhanced RTMP"),
        "ffmpeg's error names the reason: {err}"
    );
    let out = d.join("hevc.flv");
    let mut rtmpdump = Command::new("rtmpdump");
    rtmpdump
        .args(["--live", "-q", "-r", &hevc, "--stop", "2", "-o"])
        .arg(&out);
    let (ok, _, _) = output_within(&mut rtmpdump, CELL_TIMEOUT).unwrap();
    assert!(!ok, "rtmpdump was not refused");
    let warns = logs().lines_with("WARN", &["live/hevc", "RTMP play refused", "fourCcList"]);
    assert_eq!(warns.len(), 2, "one warn per refused player: {warns:?}");
}

/// HLS readers (ffmpeg, GStreamer hlsdemux, VLC) of one non-low-latency variant.
fn hls_readers(variant: &str) {
    if !have_clients() {
        return;
    }
    let srv = TestServer::start(&format!(
        "hlsAlwaysRemux: yes\nhlsVariant: {variant}\npaths:\n  all_others:\n"
    ));
    let _publisher = Children(vec![publish(
        &clip(Clip::H264Aac, 10),
        &srv.url("cam"),
        "tcp",
        true,
    )]);
    srv.wait_stream("cam");
    let http = srv.server.http_addr().unwrap();
    let hls = format!("http://{http}/cam/index.m3u8");
    let dir = shared_dir();
    let d = dir.path();
    run_matrix(
        &format!("{variant} HLS readers"),
        vec![
            cell("HLS → ffmpeg", || window_decoded(&hls)),
            cell("HLS → GStreamer hlsdemux", || {
                gst_decoded(&format!("souphttpsrc location={hls} ! hlsdemux"))
            }),
            cell("HLS → VLC", || vlc_decoded(&hls, d, "vlc-hls")),
        ],
    );
}

#[test]
fn mpegts_hls_readers() {
    hls_readers("mpegts");
}

#[test]
fn fmp4_hls_readers() {
    hls_readers("fmp4");
}

/// Readers with credentials against a locked-down server: each client puts them where
/// it can (VLC and rtmpdump: RTMP `?user=&pass=`, HTTP `user:pass@` answered after the
/// 401; GStreamer: `user-id`/`user-pw`). Anonymous VLC gets nothing.
#[test]
fn readers_with_credentials() {
    if !have_clients() {
        return;
    }
    let viewer = mediarouter::auth::hash_password("Matrix-View-Secret");
    let srv = TestServer::start(&format!(
        "hlsAlwaysRemux: yes\nhlsVariant: mpegts\nauthInternalUsers:\n  - user: cam\n    pass: Matrix-Pub-Secret\n    permissions: [{{action: publish}}]\n  - user: viewer\n    pass: \"{viewer}\"\n    permissions: [{{action: read}}]\npaths:\n  all_others:\n"
    ));
    let url = srv
        .url("live/cam")
        .replace("rtsp://", "rtsp://cam:Matrix-Pub-Secret@");
    let _publisher = Children(vec![publish(&clip(Clip::H264Aac, 10), &url, "tcp", true)]);
    srv.wait_stream("live/cam");
    let http = srv.server.http_addr().unwrap();
    let creds = "viewer:Matrix-View-Secret@";
    let rtmp = format!(
        "{}?user=viewer&pass=Matrix-View-Secret",
        srv.rtmp_url("live/cam")
    );
    let flv = format!("http://{creds}{http}/live/cam.flv");
    let hls = format!("http://{creds}{http}/live/cam/index.m3u8");
    let gst_auth = "user-id=viewer user-pw=Matrix-View-Secret";
    let dir = shared_dir();
    let d = dir.path();
    run_matrix(
        "readers with credentials (Basic over HTTP, ?user=&pass= over RTMP)",
        vec![
            cell("RTMP → VLC", || vlc_decoded(&rtmp, d, "vlc-auth-rtmp")),
            cell("RTMP → rtmpdump --live", || rtmpdump_decoded(&rtmp, d)),
            cell("HTTP-FLV → VLC", || vlc_decoded(&flv, d, "vlc-auth-flv")),
            cell("HLS → VLC", || vlc_decoded(&hls, d, "vlc-auth-hls")),
            cell("HTTP-FLV → GStreamer souphttpsrc", || {
                gst_decoded(&format!(
                    "souphttpsrc location=http://{http}/live/cam.flv {gst_auth} ! flvdemux name=d d.video"
                ))
            }),
            cell("HLS → GStreamer hlsdemux", || {
                gst_decoded(&format!(
                    "souphttpsrc location=http://{http}/live/cam/index.m3u8 {gst_auth} ! hlsdemux"
                ))
            }),
        ],
    );
    let anonymous = format!("http://{http}/live/cam.flv");
    let frames = vlc_decoded(&anonymous, d, "vlc-anon").unwrap_or(0);
    assert_eq!(frames, 0, "anonymous VLC decoded HTTP-FLV");
    let text = logs().text();
    assert!(!text.contains("Matrix-View-Secret") && !text.contains("Matrix-Pub-Secret"));
}
