//! TLS sources and push: an `https://` HLS source and an `rtmps://` source behind a
//! TLS front with a self-signed certificate pinned by `sourceFingerprint`, an
//! `rtsps://` source from an RTSPS server that asks for Digest, certificates and
//! credentials that must be refused, and an `rtmps://` push that trusts a CA through
//! the system's roots (`SSL_CERT_FILE`).

mod common;

use common::*;
use std::net::TcpStream;
use std::time::Duration;

/// An RTSP reader of `path` on `edge` gets ≥ 90 % of the frames, both tracks.
fn assert_plays(edge: &TestServer, path: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mkv");
    let mut reader = read_for(&edge.url(path), 5, &out);
    assert!(wait_child(&mut reader, Duration::from_secs(40), "RTSP reader").success());
    let probed = probe(&out);
    assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
    let video = probed.iter().find(|s| s.codec == "h264").expect("video");
    let complete = video_completeness(&out, 30.0);
    eprintln!(
        "{what} → rtsp: {} frames, completeness {complete:.3}",
        video.packets
    );
    assert!(complete >= 0.9, "{what}: {complete}");
}

/// Each path's source fails at least twice, every time for `reason`, and never plays.
fn assert_refused(edge: &TestServer, cases: &[(&str, &str)]) {
    for (path, reason) in cases {
        let needles = ["source failed", &format!("path={path}")];
        wait_until(Duration::from_secs(30), "two retry cycles", || {
            logs().lines_with("WARN", &needles).len() >= 2
        });
        for l in logs().lines_with("WARN", &needles) {
            assert!(l.contains(reason), "{path}: {l}");
        }
        assert!(edge.stream(path).is_none(), "{path} has a stream");
    }
}

#[test]
fn an_https_hls_source_with_a_pinned_self_signed_certificate() {
    if !have_ffmpeg() {
        return;
    }
    let (cam, _publishers) = cameras("hlsVariant: mpegts\nhlsAlwaysRemux: yes\n", &["cam"]);
    let cert = tls::self_signed();
    let front = tls::front(cam.server.http_addr().unwrap(), &cert);
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: https://localhost:{}/cam/index.m3u8\n    sourceFingerprint: {}\n",
        front.port(),
        cert.fingerprint
    ));
    edge.wait_stream("pulled");
    assert_plays(&edge, "pulled", "https hls source");
}

#[test]
fn an_rtmps_source_with_a_pinned_self_signed_certificate() {
    if !have_ffmpeg() {
        return;
    }
    let (cam, _publishers) = cameras("", &["live/cam"]);
    let cert = tls::self_signed();
    let front = tls::front(cam.server.rtmp_addr().unwrap(), &cert);
    let edge = TestServer::start(&format!(
        "paths:\n  pulled:\n    source: rtmps://127.0.0.1:{}/live/cam\n    sourceFingerprint: {}\n",
        front.port(),
        cert.fingerprint
    ));
    edge.wait_stream("pulled");
    assert_plays(&edge, "pulled", "rtmps source");
}

#[test]
fn an_rtsps_source_answers_digest_over_a_pinned_certificate() {
    if !have_ffmpeg() {
        return;
    }
    let cert = tls::self_signed();
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    cert.write_pem(&key, &crt);
    let (cam, _publishers) = cameras(
        &format!(
            "rtspEncryption: optional\nrtspsAddress: 127.0.0.1:0\nrtspServerKey: {}\nrtspServerCert: {}\nrtspAuthMethods: [digest]\nauthInternalUsers:\n  - user: any\n    permissions: [{{action: publish}}]\n  - user: puller\n    pass: Pull-Rtsps-Secret\n    permissions: [{{action: read}}]\n",
            key.display(),
            crt.display()
        ),
        &["cam"],
    );
    let port = cam.server.rtsps_addr().unwrap().port();
    let other = tls::self_signed();
    // Longer than the 1-3 s a wrong password waits for its 401.
    let edge = TestServer::start(&format!(
        "readTimeout: 6s\npaths:\n  pulled:\n    source: rtsps://puller:Pull-Rtsps-Secret@127.0.0.1:{port}/cam\n    sourceFingerprint: {}\n  rtspswrongpass:\n    source: rtsps://puller:wrong-Pass@127.0.0.1:{port}/cam\n    sourceFingerprint: {}\n  rtspswrongcert:\n    source: rtsps://puller:Pull-Rtsps-Secret@127.0.0.1:{port}/cam\n    sourceFingerprint: {}\n",
        cert.fingerprint, cert.fingerprint, other.fingerprint
    ));
    edge.wait_stream("pulled");
    assert_plays(&edge, "pulled", "rtsps source");
    assert_refused(
        &edge,
        &[
            ("rtspswrongpass", "401"),
            ("rtspswrongcert", "is not sourceFingerprint"),
        ],
    );
    let text = logs().text();
    assert!(!text.contains("Pull-Rtsps-Secret") && !text.contains("wrong-Pass"));
}

#[test]
fn tls_sources_refuse_a_wrong_or_untrusted_certificate() {
    if !have_ffmpeg() {
        return;
    }
    let (cam, _publishers) = cameras("hlsVariant: mpegts\nhlsAlwaysRemux: yes\n", &["live/cam"]);
    let cert = tls::self_signed();
    let other = tls::self_signed();
    let https = tls::front(cam.server.http_addr().unwrap(), &cert);
    let rtmps = tls::front(cam.server.rtmp_addr().unwrap(), &cert);
    let edge = TestServer::start(&format!(
        "readTimeout: 2s\npaths:\n  tlswrong:\n    source: https://localhost:{}/live/cam/index.m3u8\n    sourceFingerprint: {}\n  tlsuntrusted:\n    source: rtmps://localhost:{}/live/cam\n",
        https.port(),
        other.fingerprint,
        rtmps.port()
    ));
    assert_refused(
        &edge,
        &[
            ("tlswrong", "is not sourceFingerprint"),
            ("tlsuntrusted", "invalid peer certificate"),
        ],
    );
}

/// The pushing server runs as its own process, so that `SSL_CERT_FILE` (read by the
/// system-roots loader) names the test's CA for it alone.
#[test]
fn an_rtmps_push_trusts_a_ca_from_the_system_roots() {
    if !have_ffmpeg() {
        return;
    }
    let sink = TestServer::start("paths:\n  all_others:\n");
    let cert = tls::ca_signed();
    let front = tls::front(sink.server.rtmp_addr().unwrap(), &cert);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.ca_pem).unwrap();
    let rtsp = free_port();
    let cfg = dir.path().join("pusher.yml");
    std::fs::write(
        &cfg,
        format!(
            "rtspAddress: 127.0.0.1:{rtsp}\nrtspTransports: [tcp]\nrtmp: no\nhls: no\nwebrtc: no\nsrt: no\napi: no\npaths:\n  cam:\n    push: [rtmps://localhost:{}/live/x]\n",
            front.port()
        ),
    )
    .unwrap();
    let mut pusher = std::process::Command::new(env!("CARGO_BIN_EXE_mediarouter"))
        .arg(&cfg)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("SSL_CERT_DIR")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), "the pusher to listen", || {
        TcpStream::connect(("127.0.0.1", rtsp)).is_ok()
    });
    let mut publisher = publish(
        &clip(Clip::H264Aac, 10),
        &format!("rtsp://127.0.0.1:{rtsp}/cam"),
        "tcp",
        true,
    );
    sink.wait_stream("live/x");
    assert_plays(&sink, "live/x", "rtmps push");
    let _ = publisher.kill();
    let _ = publisher.wait();
    let _ = pusher.kill();
    let _ = pusher.wait();
}
