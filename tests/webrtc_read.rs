//! WebRTC readers (WHEP): headless Chromium opens the reader page while ffmpeg publishes
//! over RTSP, and getStats() must show frames decoded in every second of a 5 s window;
//! the page names what it can't play (AAC, B-frames). Junk on the UDP port and bad
//! offers get drops and clear 4xx answers while a session plays on.

mod common;

use common::webrtc::{h264_offer, location, offer, post, rose, stats};
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A server (config `extra`) with `clip` published over RTSP to `path`.
fn live(clip: Clip, path: &str, extra: &str) -> (TestServer, Children) {
    let srv = TestServer::start(&format!("{extra}paths:\n  all_others:\n"));
    let publisher = Children(vec![publish(
        &common::clip(clip, 6),
        &srv.url(path),
        "tcp",
        true,
    )]);
    srv.wait_stream(path);
    (srv, publisher)
}

/// Junk a hostile or broken peer sends to the shared UDP port until `stop`.
fn flood(to: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sent = 0u64;
        // A binding request for no session, a DTLS record, RTP, and noise.
        let stun: &[u8] = &[
            0, 1, 0, 12, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 6, 0, 8,
            b'x', b'x', b'x', b'x', b':', b'y', b'y', b'y',
        ];
        let junk: [&[u8]; 4] = [
            stun,
            &[22, 0xfe, 0xfd, 0, 0, 0, 0],
            &[0x80, 0x60, 0, 1, 0, 0],
            &[0xff; 300],
        ];
        while !stop.load(Ordering::Relaxed) {
            for j in junk {
                let _ = s.send_to(j, to);
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        sent
    })
}

#[test]
fn whep_page_plays_h264_in_chromium_while_junk_hits_the_udp_port() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let (srv, _publisher) = live(Clip::H264Aac, "cam", "");
    let web = srv.server.webrtc_addr().unwrap();
    let udp = srv.server.webrtc_udp_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let junk = flood(udp, stop.clone());
    let shot = artifact("webrtc-read.png");
    let _ = std::fs::remove_file(&shot);
    let (ok, out) = node(
        "webrtc_read.mjs",
        &[&format!("http://{web}/cam/"), "5", shot.to_str().unwrap()],
    );
    stop.store(true, Ordering::Relaxed);
    let sent = junk.join().unwrap();
    eprintln!("browser: {out}; junk datagrams: {sent}");
    assert!(ok, "frames were not decoded in every second: {out}");
    let r = stats(&out);
    assert_eq!(r["width"], 640, "{out}");
    assert!(r["note"].as_str().unwrap().contains("AAC audio"), "{out}");
    assert!(shot.exists(), "no screenshot");
    assert!(sent > 100, "the flood sent {sent}");
    // The page is gone: its session leaves the path's readers.
    wait_until(
        Duration::from_secs(20),
        "the WebRTC reader to leave",
        || srv.readers("cam") == 0,
    );
    let log = logs().text();
    assert!(log.contains("WebRTC session connected"), "{log}");
    assert!(
        log.contains("WebRTC UDP: dropped"),
        "junk not reported: {log}"
    );
}

#[test]
fn pcmu_audio_plays_with_the_video() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let (srv, _publisher) = live(Clip::H264Pcmu, "phone", "");
    let web = srv.server.webrtc_addr().unwrap();
    let (ok, out) = node("webrtc_read.mjs", &[&format!("http://{web}/phone/"), "3"]);
    assert!(ok, "{out}");
    let r = stats(&out);
    assert!(
        rose(&r, "audioSamples"),
        "audio samples did not rise every second: {out}"
    );
    assert_eq!(r["note"], "", "{out}");
}

#[test]
fn a_b_frame_stream_goes_out_and_the_page_says_why_it_stutters() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let (srv, _publisher) = live(Clip::H264BframesAac, "b", "");
    let web = srv.server.webrtc_addr().unwrap();
    let (_, out) = node("webrtc_read.mjs", &[&format!("http://{web}/b/"), "2"]);
    let r = stats(&out);
    let note = r["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("B-frames") && note.contains("AAC audio"),
        "{out}"
    );
    assert!(
        r["decoded"][0].as_u64().unwrap_or(0) > 0,
        "nothing decoded: {out}"
    );
}

#[test]
fn bad_offers_get_clear_answers() {
    if !have_ffmpeg() {
        return;
    }
    let (srv, _publisher) = live(Clip::H264Aac, "cam", "");
    let web = srv.server.webrtc_addr().unwrap();
    let sdp = "application/sdp";
    let (code, _, body) = post(web, "/cam/whep", sdp, "this is not SDP");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid SDP offer"), "{body}");
    let (code, _, body) = post(
        web,
        "/cam/whep",
        "text/plain",
        &offer(&[("video", "H264/90000")]),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Content-Type"), "{body}");
    let (code, _, body) = post(web, "/cam/whep", sdp, &offer(&[]));
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = post(web, "/cam/whep", sdp, &offer(&[("video", "VP8/90000")]));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("codecs"), "{body}");
    let (code, _, body) = post(web, "/nobody/whep", sdp, &offer(&[("video", "H264/90000")]));
    assert_eq!(code, 404, "{body}");
    let huge = "a".repeat(100 * 1024);
    let (code, _, _) = post(web, "/cam/whep", sdp, &huge);
    assert_eq!(code, 413);
    // A H.264 offer is answered: 201, a session resource, the answer.
    let (code, head, body) = post(web, "/cam/whep", sdp, &h264_offer());
    assert_eq!(code, 201, "{body}");
    assert!(
        body.starts_with("v=0") && body.contains("a=ice-lite"),
        "{body}"
    );
    let location = location(&head).unwrap_or_else(|| panic!("no Location: {head}"));
    assert!(location.starts_with("/cam/whep/"), "{location}");
    assert_eq!(srv.readers("cam"), 1);
    let (code, _, _) = common::http::request_from(None, web, "GET /cam/whep HTTP/1.0", b"");
    assert_eq!(code, 405);
    let (code, _, _) = common::http::request_from(None, web, "DELETE /cam/whep/0000 HTTP/1.0", b"");
    assert_eq!(code, 404);
    let (code, _, _) =
        common::http::request_from(None, web, &format!("DELETE {location} HTTP/1.0"), b"");
    assert_eq!(code, 200);
    wait_until(
        Duration::from_secs(5),
        "the deleted session to leave",
        || srv.readers("cam") == 0,
    );
    assert!(logs()
        .text()
        .contains("WebRTC reader closed: closed by the client (DELETE)"));
}

/// Read access over WebRTC asks as the other HTTP listeners do: the page and the WHEP
/// endpoint answer 401 with a Basic challenge, and the browser's credentials (the
/// prompt answered) play the page; a wrong password doesn't.
#[test]
fn whep_asks_for_credentials_and_the_answered_page_plays() {
    if !have_ffmpeg() || !have_browser(&[]) {
        return;
    }
    let (srv, _publisher) = live(Clip::H264Aac, "cam", "authInternalUsers:\n  - user: any\n    permissions: [{action: publish}]\n  - user: viewer\n    pass: rtc-Secret\n    permissions: [{action: read}]\n");
    let web = srv.server.webrtc_addr().unwrap();
    let (code, head, _) = post(web, "/cam/whep", "application/sdp", &h264_offer());
    assert_eq!(code, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    let (code, _, _) = common::http::request_from(None, web, "GET /cam/ HTTP/1.0", b"");
    assert_eq!(code, 401);
    assert_eq!(srv.readers("cam"), 0);
    let page = format!("http://{web}/cam/");
    let (ok, out) = node_with(
        "webrtc_read.mjs",
        &[&page, "2"],
        &[("HTTP_USER", "viewer"), ("HTTP_PASS", "rtc-Secret")],
    );
    assert!(ok, "the page did not play with credentials: {out}");
    let (ok, out) = node_with(
        "webrtc_read.mjs",
        &[&page, "1"],
        &[("HTTP_USER", "viewer"), ("HTTP_PASS", "wrong")],
    );
    assert!(!ok, "the page played with a wrong password: {out}");
    assert!(
        !logs().text().contains("rtc-Secret"),
        "the password reached the log"
    );
}

/// A WebRTC viewer starts at a keyframe, and asks the publisher for one: an RTSP
/// publisher whose encoder makes a keyframe only every 100 s (GStreamer's openh264enc,
/// over UDP) gets the viewer's request as RTCP PLI and answers it, so the viewer plays
/// at once instead of after up to 100 s.
#[test]
fn a_new_viewer_gets_a_keyframe_from_an_rtsp_publisher_that_honours_pli() {
    if !have_gstreamer() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let gst = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "is-live=true",
            "!",
            "video/x-raw,width=320,height=240,framerate=30/1",
        ])
        .args([
            "!",
            "openh264enc",
            "gop-size=3000",
            "!",
            "h264parse",
            "!",
            "rtspclientsink",
        ])
        .arg(format!("location={}", srv.url("cam")))
        .arg("protocols=udp")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run gst-launch-1.0");
    let _publisher = Children(vec![gst]);
    srv.wait_stream("cam");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let web = srv.server.webrtc_addr().unwrap();
    let mut tool = Children(vec![std::process::Command::new(env!(
        "CARGO_BIN_EXE_mediarouter-load"
    ))
    .args([
        "-n", "1", "--warmup", "1", "-d", "3", "--fps", "30", "--json",
    ])
    .arg(&json)
    .arg(format!("http://{web}/cam/whep"))
    .stdin(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("spawn mediarouter-load")]);
    assert!(wait_child(&mut tool.0[0], Duration::from_secs(40), "mediarouter-load").success());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &report["summary"];
    assert!(
        s["frames_min"].as_u64().unwrap() >= 60,
        "no keyframe came: {s}"
    );
}

/// `webrtcAllowOrigins`: a page of an allowed origin may send WHEP requests from the
/// browser (the preflight says so); one of another origin gets no CORS headers.
#[test]
fn only_allowed_origins_pass_the_preflight() {
    let srv =
        TestServer::start("webrtcAllowOrigins: ['http://good.example']\npaths:\n  all_others:\n");
    let web = srv.server.webrtc_addr().unwrap();
    let preflight = |origin: &str| {
        let head = format!(
            "OPTIONS /cam/whep HTTP/1.0\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST"
        );
        common::http::request_from(None, web, &head, b"")
            .1
            .to_ascii_lowercase()
    };
    let good = preflight("http://good.example");
    assert!(
        good.contains("access-control-allow-origin: http://good.example"),
        "{good}"
    );
    assert!(good.contains("access-control-allow-methods"), "{good}");
    let evil = preflight("http://evil.example");
    assert!(!evil.contains("access-control-allow-origin"), "{evil}");
}
