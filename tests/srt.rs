//! SRT (issue 25) with ffmpeg (libsrt) as caller: publish → every protocol, SRT
//! readers of an RTSP publisher, per-path passphrases, the API's `srtconns`, and bad
//! input on the SRT port. The lossy-link test is in `srt_loss.rs`.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn srt_url(srv: &TestServer, stream_id: &str, extra: &str) -> String {
    let addr = srv.server.srt_addr().expect("SRT listener (libsrt)");
    format!("srt://{addr}?streamid={stream_id}&pkt_size=1316{extra}")
}

fn publish_srt_clip(kind: Clip, url: &str) -> Child {
    common::publish_srt(&clip(kind, 10), url)
}

fn publish_srt_default(url: &str) -> Child {
    publish_srt_clip(Clip::H264Aac, url)
}

/// Whether this host can do SRT at all; under CI it must.
fn have_srt(srv: &TestServer) -> bool {
    have_ffmpeg()
        && present(
            srv.server.srt_addr().is_some(),
            "the SRT listener did not start (libsrt missing?)",
            "skipping: no libsrt",
        )
}

fn api_get(srv: &TestServer, path: &str) -> serde_json::Value {
    let (status, body) = common::http::get(srv.server.api_addr().unwrap(), path);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn an_srt_publisher_is_read_over_every_protocol() {
    let srv = TestServer::start(
        "hlsVariant: mpegts\nmetrics: yes\nmetricsAddress: 127.0.0.1:0\npaths:\n  all_others:\n",
    );
    if !have_srt(&srv) {
        return;
    }
    let _publisher = Children(vec![publish_srt_default(&srt_url(&srv, "publish:cam", ""))]);
    srv.wait_stream("cam");
    let tracks: Vec<String> = srv
        .stream("cam")
        .unwrap()
        .tracks()
        .iter()
        .map(|t| t.codec.name().to_string())
        .collect();
    assert_eq!(tracks, ["H264", "AAC"]);

    let dir = tempfile::tempdir().unwrap();
    let http = srv.server.http_addr().unwrap();
    let urls = [
        ("rtsp", srv.url("cam")),
        ("rtmp", srv.rtmp_url("cam")),
        ("http-flv", srv.flv_url("cam")),
        ("hls", format!("http://{http}/cam/index.m3u8")),
        ("srt", srt_url(&srv, "read:cam", "")),
    ];
    let mut readers: Vec<(&str, std::path::PathBuf, Child)> = urls
        .iter()
        .map(|(name, url)| {
            let out = dir.path().join(format!("{name}.mkv"));
            let child = read_for(url, 4, &out);
            (*name, out, child)
        })
        .collect();
    for (name, out, child) in &mut readers {
        let st = wait_child(child, Duration::from_secs(60), name);
        assert!(st.success(), "{name} reader failed");
        let probed = probe(out);
        assert!(
            probed.iter().any(|s| s.codec == "h264"),
            "{name}: {probed:?}"
        );
        assert!(
            probed.iter().any(|s| s.codec == "aac"),
            "{name}: {probed:?}"
        );
        let complete = video_completeness(out, 30.0);
        eprintln!("srt publisher → {name}: video completeness {complete:.3}");
        assert!(
            (0.9..=1.05).contains(&complete),
            "{name}: completeness {complete}"
        );
    }

    // The API lists the publisher with libsrt's counters, and can kick it.
    let list = api_get(&srv, "/v3/srtconns/list");
    let items = list["items"].as_array().unwrap();
    let publisher = items
        .iter()
        .find(|i| i["state"] == "publish")
        .unwrap_or_else(|| panic!("no publishing srtConn: {list}"));
    assert_eq!(publisher["path"], "cam");
    assert!(
        publisher["packetsReceived"].as_i64().unwrap() > 100,
        "{publisher}"
    );
    assert!(publisher["inboundBytes"].as_u64().unwrap() > 100_000);
    let (_, metrics) = common::http::get(srv.server.metrics_addr().unwrap(), "/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    for m in [
        "srt_conns{",
        "srt_conns_packets_received{",
        "srt_conns_ms_rtt{",
        "srt_conns_packets_retrans{",
    ] {
        assert!(metrics.contains(m), "no {m} in the metrics:\n{metrics}");
    }
    let path = api_get(&srv, "/v3/paths/get/cam");
    assert_eq!(path["source"]["type"], "srtConn", "{path}");
    let id = publisher["id"].as_str().unwrap();
    let (status, _, _) = common::http::request_from(
        None,
        srv.server.api_addr().unwrap(),
        &format!("POST /v3/srtconns/kick/{id} HTTP/1.0"),
        b"",
    );
    assert_eq!(status, 200);
    wait_until(
        Duration::from_secs(10),
        "the kicked publisher's stream to end",
        || srv.stream("cam").is_none(),
    );
}

#[test]
fn an_h265_srt_publisher_is_read_over_rtsp() {
    let srv = TestServer::start("paths:\n  all_others:\n");
    if !have_srt(&srv) {
        return;
    }
    let _publisher = Children(vec![publish_srt_clip(
        Clip::H265Aac,
        &srt_url(&srv, "publish:hevc", ""),
    )]);
    srv.wait_stream("hevc");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hevc.mkv");
    let mut reader = read_for(&srv.url("hevc"), 3, &out);
    assert!(wait_child(&mut reader, Duration::from_secs(40), "RTSP reader").success());
    let probed = probe(&out);
    assert!(probed.iter().any(|s| s.codec == "hevc"), "{probed:?}");
    let complete = video_completeness(&out, 30.0);
    eprintln!("H.265 srt publisher → rtsp: video completeness {complete:.3}");
    assert!((0.9..=1.05).contains(&complete), "{complete}");
}

#[test]
fn an_rtsp_publisher_is_read_over_srt() {
    let (srv, _cams) = cameras("", &["cam"]);
    if !have_srt(&srv) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outs: Vec<_> = (0..2)
        .map(|i| dir.path().join(format!("srt{i}.ts")))
        .collect();
    // Two readers: they share one TS feed.
    let mut readers: Vec<Child> = outs
        .iter()
        .map(|o| read_for(&srt_url(&srv, "read:cam", "&latency=120000"), 4, o))
        .collect();
    for (r, out) in readers.iter_mut().zip(&outs) {
        let st = wait_child(r, Duration::from_secs(40), "SRT reader");
        assert!(st.success());
        let probed = probe(out);
        assert!(probed.iter().any(|s| s.codec == "aac"), "{probed:?}");
        let complete = video_completeness(out, 30.0);
        eprintln!("rtsp publisher → srt: video completeness {complete:.3}");
        assert!(complete >= 0.95, "{complete}");
    }
    // The reader slot was counted while reading and is given back.
    wait_until(Duration::from_secs(10), "the SRT readers to leave", || {
        srv.readers("cam") == 0
    });
}

#[test]
fn passphrases_are_checked_per_path_and_action() {
    let pubpass = "Publish-Secret-77";
    let readpass = "Read-Secret-4242";
    let srv = TestServer::start(&format!(
        "paths:\n  vault:\n    srtPublishPassphrase: {pubpass}\n    srtReadPassphrase: {readpass}\n  all_others:\n"
    ));
    if !have_srt(&srv) {
        return;
    }
    let run = |url: String, publish: bool| -> bool {
        let clip = clip(Clip::H264Aac, 10);
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "quiet"]);
        if publish {
            cmd.args(["-re", "-t", "1", "-i"])
                .arg(&clip)
                .args(["-c", "copy", "-f", "mpegts", &url]);
        } else {
            cmd.args(["-i", &url, "-t", "1", "-c", "copy", "-f", "null", "-"]);
        }
        let mut child = cmd.stdin(Stdio::null()).spawn().unwrap();
        wait_child(&mut child, Duration::from_secs(30), "ffmpeg").success()
    };
    let before = logs().text().len();
    assert!(!run(
        srt_url(&srv, "publish:vault", "&passphrase=Wrong-Secret-000"),
        true
    ));
    assert!(!run(srt_url(&srv, "publish:vault", ""), true));
    // The read passphrase doesn't let one publish.
    assert!(!run(
        srt_url(&srv, "publish:vault", &format!("&passphrase={readpass}")),
        true
    ));
    assert!(srv.stream("vault").is_none());

    let _publisher = Children(vec![publish_srt_default(&srt_url(
        &srv,
        "publish:vault",
        &format!("&passphrase={pubpass}"),
    ))]);
    srv.wait_stream("vault");
    assert!(run(
        srt_url(&srv, "read:vault", &format!("&passphrase={readpass}")),
        false
    ));
    assert!(!run(
        srt_url(&srv, "read:vault", &format!("&passphrase={pubpass}")),
        false
    ));
    assert!(!run(srt_url(&srv, "read:vault", ""), false));
    // Paths without passphrases take unencrypted callers, as before.
    let _other = Children(vec![publish_srt_default(&srt_url(
        &srv,
        "publish:open",
        "",
    ))]);
    srv.wait_stream("open");

    let log = logs().text()[before..].to_string();
    for why in ["wrong passphrase", "passphrase missing"] {
        assert!(
            log.contains(&format!("SRT publish refused: {why}")),
            "no '{why}' for the publisher in:\n{log}"
        );
        assert!(
            log.contains(&format!("SRT read refused: {why}")),
            "no '{why}' for the reader in:\n{log}"
        );
    }
    for secret in [pubpass, readpass, "Wrong-Secret-000"] {
        assert!(!log.contains(secret), "a passphrase reached the log");
    }
    // Nor the API.
    let (_, body) = common::http::get(srv.server.api_addr().unwrap(), "/v3/config/paths/get/vault");
    let body = String::from_utf8_lossy(&body);
    assert!(
        !body.contains(pubpass) && !body.contains(readpass),
        "{body}"
    );
}

/// An SRT induction handshake (HSv4 form, as callers start) from socket `id`.
fn induction(id: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&0x8000_0000u32.to_be_bytes()); // control, type handshake
    p.extend_from_slice(&[0; 4]); // type-specific
    p.extend_from_slice(&[0; 4]); // timestamp
    p.extend_from_slice(&[0; 4]); // destination socket
    p.extend_from_slice(&4u32.to_be_bytes()); // version
    p.extend_from_slice(&2u32.to_be_bytes()); // encryption 0, extension: UDT_DGRAM
    p.extend_from_slice(&id.wrapping_mul(7919).to_be_bytes()); // initial sequence
    p.extend_from_slice(&1500u32.to_be_bytes()); // MTU
    p.extend_from_slice(&8192u32.to_be_bytes()); // flow window
    p.extend_from_slice(&1u32.to_be_bytes()); // induction
    p.extend_from_slice(&id.to_be_bytes()); // socket id
    p.extend_from_slice(&[0; 4]); // cookie
    p.extend_from_slice(&[127, 0, 0, 1]);
    p.extend_from_slice(&[0; 12]);
    p
}

#[test]
fn bad_input_on_the_srt_port_harms_no_session() {
    let srv = TestServer::start("paths:\n  all_others:\n");
    if !have_srt(&srv) {
        return;
    }
    let _publisher = Children(vec![publish_srt_default(&srt_url(&srv, "publish:cam", ""))]);
    srv.wait_stream("cam");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("during.ts");
    let mut reader = read_for(&srt_url(&srv, "read:cam", ""), 6, &out);
    wait_until(Duration::from_secs(10), "the SRT reader", || {
        srv.readers("cam") == 1
    });

    let addr: SocketAddr = srv.server.srt_addr().unwrap();
    let before = logs().text().len();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Random datagrams of every size, data and control.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..5000 {
        let len = 1 + (i * 37) % 1500;
        let d: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = sock.send_to(&d, addr);
    }
    // A handshake flood: 5000 inductions from as many socket ids.
    for id in 1..=5000u32 {
        let _ = sock.send_to(&induction(id), addr);
    }
    // Stream ids libsrt passes to us that we refuse: oversized, malformed, no path.
    let long = format!("publish:{}", "x".repeat(600));
    for bad in ["nonsense", "play:cam", long.as_str(), "#!::m=publish,x=1"] {
        let mut c = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "quiet", "-i"])
            .arg(srt_url(&srv, bad, ""))
            .args(["-t", "1", "-f", "null", "-"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            !wait_child(&mut c, Duration::from_secs(20), "bad caller").success(),
            "{bad}"
        );
    }

    let st = wait_child(&mut reader, Duration::from_secs(40), "SRT reader");
    assert!(st.success());
    let complete = video_completeness(&out, 30.0);
    eprintln!("SRT reader during the flood: completeness {complete:.3}");
    assert!(complete >= 0.95, "{complete}");
    assert!(srv.stream("cam").is_some(), "the publisher survived");
    // A new caller still gets in.
    let out2 = dir.path().join("after.ts");
    let mut after = read_for(&srt_url(&srv, "read:cam", ""), 2, &out2);
    assert!(wait_child(&mut after, Duration::from_secs(30), "SRT reader after").success());

    let log = logs().text()[before..].to_string();
    let refusals = log
        .lines()
        .filter(|l| l.contains("SRT connection refused"))
        .count();
    assert!(refusals >= 1, "refusals are logged:\n{log}");
    assert!(
        refusals <= 4,
        "logged once per burst, not per caller ({refusals}):\n{log}"
    );
}
