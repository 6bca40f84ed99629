//! TLS listeners: HLS/HTTP-FLV over https (`hlsEncryption`) read by ffmpeg checking the
//! test CA, the API, the playback server and the WebRTC pages over https
//! (`apiEncryption`, `playbackEncryption`, `webrtcEncryption`), and a certificate rotated on disk served to new connections
//! while an open one keeps streaming.

mod common;

use common::tls::Cert;
use common::*;
use mediarouter::tls::Fingerprint;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET over TLS, the server's certificate pinned to `fp`; the first `want` bytes of
/// the response, or the connection error.
async fn tls_get(
    port: u16,
    fp: &str,
    path: &str,
    want: usize,
) -> std::io::Result<(mediarouter::tls::ClientStream, Vec<u8>)> {
    let fp = Fingerprint::parse(fp).unwrap();
    let mut s = mediarouter::tls::connect("127.0.0.1", port, true, Some(fp)).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut got = vec![0; want];
    tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut got))
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    Ok((s, got))
}

#[test]
fn https_hls_flv_and_api_with_certificate_rotation() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = (dir.path().join("server.key"), dir.path().join("server.crt"));
    let first = common::tls::ca_signed();
    first.write_pem(&key, &crt);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &first.ca_pem).unwrap();
    let (k, c) = (key.display(), crt.display());
    let srv = TestServer::start(&format!(
        "hlsEncryption: yes\nhlsServerKey: {k}\nhlsServerCert: {c}\n\
         apiEncryption: yes\napiServerKey: {k}\napiServerCert: {c}\n\
         playback: yes\nplaybackAddress: 127.0.0.1:0\nplaybackEncryption: yes\nplaybackServerKey: {k}\nplaybackServerCert: {c}\n\
         webrtcEncryption: yes\nwebrtcServerKey: {k}\nwebrtcServerCert: {c}\n\
         paths:\n  all_others:\n"
    ));
    let _publisher = Children(vec![publish(
        &clip(Clip::H264Aac, 6),
        &srv.url("cam"),
        "tcp",
        true,
    )]);
    srv.wait_stream("cam");
    let http = srv.server.http_addr().unwrap();

    // ffmpeg checks the chain against the test's CA and the name against localhost.
    let url = format!("https://localhost:{}/cam/index.m3u8", http.port());
    let ca_file = ca.to_str().unwrap();
    let frames = ffmpeg_decoded(&[
        "-tls_verify",
        "1",
        "-ca_file",
        ca_file,
        "-t",
        "2",
        "-i",
        &url,
    ])
    .unwrap();
    assert!(frames >= 30, "{frames} frames over https HLS");

    let api = srv.server.api_addr().unwrap();
    srv.rt.block_on(async {
        let (_, head) = tls_get(api.port(), &first.fingerprint, "/v3/paths/list", 12)
            .await
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // The playback server too (its page).
        let pb = srv.server.playback_addr().unwrap();
        let (_, head) = tls_get(pb.port(), &first.fingerprint, "/", 12)
            .await
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // And the WebRTC reader page (signalling goes over the same listener).
        let web = srv.server.webrtc_addr().unwrap();
        let (_, head) = tls_get(web.port(), &first.fingerprint, "/cam/", 12)
            .await
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        // Plain HTTP on a TLS listener gets no answer.
        let mut plain = tokio::net::TcpStream::connect(http).await.unwrap();
        plain
            .write_all(b"GET /cam/index.m3u8 HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let mut b = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_secs(15), plain.read(&mut b)).await;
        assert!(
            !matches!(r, Ok(Ok(n)) if n >= 4 && &b == b"HTTP"),
            "plain HTTP answered"
        );

        // An HTTP-FLV reader open across the rotation keeps streaming.
        let (mut flv, _) = tls_get(http.port(), &first.fingerprint, "/cam.flv", 4096)
            .await
            .unwrap();
        let second: Cert = common::tls::ca_signed();
        second.write_pem(&key, &crt);
        let (_, head) = tls_get(api.port(), &second.fingerprint, "/v3/paths/list", 12)
            .await
            .expect("the new certificate is served without a restart");
        assert_eq!(&head, b"HTTP/1.1 200");
        assert!(
            tls_get(api.port(), &first.fingerprint, "/v3/paths/list", 12)
                .await
                .is_err(),
            "the old certificate is still served"
        );
        let mut more = vec![0; 64 * 1024];
        tokio::time::timeout(Duration::from_secs(10), flv.read_exact(&mut more))
            .await
            .expect("the open reader keeps receiving")
            .unwrap();
    });
}

#[test]
fn a_listener_with_a_bad_certificate_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("missing.key");
    let cfg = mediarouter::config::Config::parse(
        &format!(
            "rtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nrtmpAddress: 127.0.0.1:0\napiAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0\nsrtAddress: 127.0.0.1:0\nhlsEncryption: yes\nhlsServerKey: {}\nhlsServerCert: {}\n",
            key.display(),
            key.display()
        ),
        "t",
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(mediarouter::server::Server::start(cfg))
        .err()
        .expect("the server starts without its certificate");
    assert!(err.to_string().contains("missing.key"), "{err}");
}

/// `rtmpEncryption: optional`: ffmpeg publishes over RTMPS and reads back over RTMPS
/// and plain RTMP; `strict` leaves only RTMPS open.
#[test]
fn rtmps_publish_and_read_with_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = (dir.path().join("server.key"), dir.path().join("server.crt"));
    common::tls::self_signed().write_pem(&key, &crt);
    let tls_keys = format!(
        "rtmpsAddress: 127.0.0.1:0\nrtmpServerKey: {}\nrtmpServerCert: {}\n",
        key.display(),
        crt.display()
    );
    let srv = TestServer::start(&format!(
        "rtmpEncryption: optional\n{tls_keys}paths:\n  all_others:\n"
    ));
    let rtmps = format!(
        "rtmps://localhost:{}/live/cam",
        srv.server.rtmps_addr().unwrap().port()
    );
    let _publisher = Children(vec![publish_rtmp(&clip(Clip::H264Aac, 6), &rtmps, true)]);
    srv.wait_stream("live/cam");
    for url in [rtmps.clone(), srv.rtmp_url("live/cam")] {
        let frames =
            ffmpeg_decoded(&["-t", "2", "-i", &url]).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(frames >= 30, "{url}: {frames} frames");
    }

    let strict = TestServer::start(&format!("rtmpEncryption: strict\n{tls_keys}"));
    assert!(strict.server.rtmps_addr().is_some());
    assert!(
        strict.server.rtmp_addr().is_none(),
        "strict leaves plain RTMP closed"
    );
}

/// `rtspEncryption: optional`: ffmpeg publishes and reads over RTSPS (TCP), and the
/// stream is readable over plain RTSP too; RTSPS offers no UDP (it would go in clear).
#[test]
fn rtsps_publish_and_read_with_ffmpeg() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = (dir.path().join("server.key"), dir.path().join("server.crt"));
    let cert = common::tls::self_signed();
    cert.write_pem(&key, &crt);
    let srv = TestServer::start(&format!(
        "rtspEncryption: optional\nrtspsAddress: 127.0.0.1:0\nrtspServerKey: {}\nrtspServerCert: {}\npaths:\n  all_others:\n",
        key.display(),
        crt.display()
    ));
    let rtsps = format!(
        "rtsps://localhost:{}/cam",
        srv.server.rtsps_addr().unwrap().port()
    );
    let _publisher = Children(vec![publish(&clip(Clip::H264Aac, 6), &rtsps, "tcp", true)]);
    srv.wait_stream("cam");
    for (url, transport) in [(rtsps.as_str(), "tcp"), (srv.url("cam").as_str(), "udp")] {
        let frames = ffmpeg_decoded(&["-rtsp_transport", transport, "-t", "2", "-i", url])
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(frames >= 30, "{url}: {frames} frames");
    }
    // ffmpeg asks for TCP on rtsps:// by itself; a client asking for UDP is refused.
    srv.rt.block_on(async {
        let fp = Fingerprint::parse(&cert.fingerprint).unwrap();
        let port = srv.server.rtsps_addr().unwrap().port();
        let mut s = mediarouter::tls::connect("127.0.0.1", port, true, Some(fp))
            .await
            .unwrap();
        let req = format!(
            "SETUP {rtsps}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&head, b"RTSP/1.0 461", "UDP over RTSPS");
    });
}
