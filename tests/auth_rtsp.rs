//! RTSP authentication with real clients: ffmpeg and GStreamer publishing and reading
//! with Basic and Digest credentials against a locked-down user list (plain, argon2
//! and sha256 passwords, path regexes, networks); refusals, the delay after a wrong
//! password, and no password in the logs.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const PUB_PASS: &str = "pub-Secret-1";
const VIEW_PASS: &str = "view-Secret-2";

fn locked(methods: &str, viewer_pass: &str) -> TestServer {
    TestServer::start(&format!(
        r#"rtspAuthMethods: [{methods}]
authInternalUsers:
  - user: publisher
    pass: {PUB_PASS}
    permissions:
      - action: publish
  - user: viewer
    pass: "{viewer_pass}"
    permissions:
      - action: read
        path: ~^cam
  - user: lan
    pass: lan-Secret-3
    ips: [10.0.0.0/8]
    permissions:
      - action: read
paths:
  all_others:
"#
    ))
}

fn with_creds(url: &str, user: &str, pass: &str) -> String {
    url.replacen("rtsp://", &format!("rtsp://{user}:{pass}@"), 1)
}

/// Video frames ffmpeg decodes from `url` in 2 s, or its error output.
fn ffmpeg_reads(url: &str, transport: &str) -> Result<usize, String> {
    ffmpeg_decoded(&["-rtsp_transport", transport, "-t", "2", "-i", url])
}

/// ffmpeg publishing a looped clip; `Ok` once its stream is up, `Err` when it exits.
fn ffmpeg_publishes(srv: &TestServer, url: &str, path: &str) -> Result<Children, String> {
    // Video only: gst-launch linking only the video pad of rtspsrc races the audio one.
    let mut p = publish_with(&clip(Clip::H264Aac, 6), url, "tcp", true, &["-an"]);
    let start = Instant::now();
    loop {
        if srv
            .stream(path)
            .is_some_and(|s| s.units_per_track().iter().all(|n| *n > 0))
        {
            return Ok(Children(vec![p]));
        }
        if let Some(st) = p.try_wait().unwrap() {
            return Err(format!("publisher exited: {st}"));
        }
        assert!(start.elapsed() < Duration::from_secs(20), "publisher hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// GStreamer decoding 30 frames from `url` with `user-id`/`user-pw`; its error output
/// when it fails.
fn gst_reads(url: &str, user: &str, pass: &str) -> Result<(), String> {
    let pipeline = format!(
        "rtspsrc location={url} user-id={user} user-pw={pass} protocols=tcp ! rtph264depay ! h264parse ! avdec_h264 ! identity eos-after=30 ! fakesink"
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-e").args(pipeline.split_whitespace());
    match output_within(&mut cmd, Duration::from_secs(30))? {
        (true, _, _) => Ok(()),
        (false, _, err) if gst_shutdown_race(&err) => Ok(()),
        (false, out, err) => Err(format!(
            "gst-launch failed: {}{}",
            String::from_utf8_lossy(&out).trim(),
            err.trim()
        )),
    }
}

fn no_secret_in_logs() {
    let text = logs().text();
    for secret in [PUB_PASS, VIEW_PASS, "lan-Secret-3", "wrong-Pass"] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}

#[test]
fn basic_auth_publish_and_read_with_ffmpeg_and_gstreamer() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let hashed = mediarouter::auth::hash_password(VIEW_PASS);
    let srv = locked("basic", &hashed);
    let url = srv.url("cam1");

    let err = ffmpeg_publishes(&srv, &url, "cam1")
        .err()
        .expect("anonymous publish refused");
    eprintln!("anonymous: {err}");
    let start = Instant::now();
    let wrong = with_creds(&url, "publisher", "wrong-Pass");
    assert!(
        ffmpeg_publishes(&srv, &wrong, "cam1").is_err(),
        "wrong password accepted"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "a wrong password is answered after a delay"
    );
    let viewer_pub = with_creds(&url, "viewer", VIEW_PASS);
    assert!(
        ffmpeg_publishes(&srv, &viewer_pub, "cam1").is_err(),
        "viewer may not publish"
    );
    let _publisher = ffmpeg_publishes(&srv, &with_creds(&url, "publisher", PUB_PASS), "cam1")
        .expect("publisher publishes");

    for transport in ["tcp", "udp"] {
        let frames = ffmpeg_reads(&with_creds(&url, "viewer", VIEW_PASS), transport)
            .unwrap_or_else(|e| panic!("viewer over {transport}: {e}"));
        assert!(frames >= 30, "{transport}: {frames} frames");
    }
    assert!(ffmpeg_reads(&url, "tcp").is_err(), "anonymous read");
    assert!(
        ffmpeg_reads(&with_creds(&url, "publisher", PUB_PASS), "tcp").is_err(),
        "publisher may not read"
    );
    // lan may read everything, but only from 10/8.
    assert!(ffmpeg_reads(&with_creds(&url, "lan", "lan-Secret-3"), "tcp").is_err());
    if let Err(e) = gst_reads(&url, "viewer", VIEW_PASS) {
        panic!("GStreamer with user-id/user-pw: {e}");
    }
    assert!(gst_reads(&url, "viewer", "wrong-Pass").is_err());

    // The viewer's regex: not other paths.
    let _other = ffmpeg_publishes(
        &srv,
        &with_creds(&srv.url("lobby"), "publisher", PUB_PASS),
        "lobby",
    )
    .unwrap();
    assert!(ffmpeg_reads(&with_creds(&srv.url("lobby"), "viewer", VIEW_PASS), "tcp").is_err());

    let failures = logs().lines_with("WARN", &["authentication failed from 127.0.0.1"]);
    assert!(!failures.is_empty());
    no_secret_in_logs();
}

#[test]
fn digest_auth_with_ffmpeg_and_gstreamer() {
    if !have_ffmpeg() || !have_gstreamer() {
        return;
    }
    let srv = locked("digest", VIEW_PASS);
    let url = srv.url("cam2");
    assert!(ffmpeg_publishes(&srv, &url, "cam2").is_err());
    let _publisher = ffmpeg_publishes(&srv, &with_creds(&url, "publisher", PUB_PASS), "cam2")
        .expect("Digest publish");
    let frames = ffmpeg_reads(&with_creds(&url, "viewer", VIEW_PASS), "tcp").expect("Digest read");
    assert!(frames >= 30);
    assert!(ffmpeg_reads(&with_creds(&url, "viewer", "wrong-Pass"), "tcp").is_err());
    if let Err(e) = gst_reads(&url, "viewer", VIEW_PASS) {
        // A CI run saw this fail once, quickly; say whether the publisher was gone.
        let live = srv.stream("cam2").is_some();
        panic!("GStreamer Digest (cam2 live: {live}): {e}");
    }
    no_secret_in_logs();
}

#[test]
fn digest_with_hashed_passwords_is_refused_at_load() {
    let yaml = "rtspAuthMethods: [digest]\nauthInternalUsers:\n  - user: a\n    pass: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n    permissions: [{action: read}]\n";
    let err = mediarouter::config::Config::parse(yaml, "t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest") && err.contains("hashed"), "{err}");
}
