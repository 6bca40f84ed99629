//! HTTP-FLV readers of an RTSP publisher: ffmpeg reads H.264 + AAC; H.265 comes out as
//! Enhanced RTMP FLV (ffmpeg 5.1 can't read it), checked with our own demuxer.

mod common;

use bytes::Bytes;
use common::*;
use mediarouter::codec::config_record;
use mediarouter::format::flv;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn ffmpeg_reads_h264_aac_over_http_flv() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("paths:\n  all_others:\n");
    let clip = clip(Clip::H264Aac, 6);
    let source = probe(&clip);
    let mut publisher = publish(&clip, &srv.url("live/room"), "tcp", false);
    let stream = srv.wait_stream("live/room");
    let dir = tempfile::tempdir().unwrap();
    let mut readers: Vec<_> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("r{i}.mkv"));
            (
                out.clone(),
                read_to_file(&srv.flv_url("live/room"), "tcp", &out),
            )
        })
        .collect();
    wait_until(Duration::from_secs(15), "the HTTP-FLV readers", || {
        srv.readers("live/room") == 2
    });
    let at_connect = stream.units_per_track();
    assert!(wait_child(&mut publisher, Duration::from_secs(40), "publisher").success());
    let total = stream.units_per_track();
    for (out, child) in &mut readers {
        assert!(wait_child(child, Duration::from_secs(20), "HTTP-FLV reader").success());
        let got = probe(out);
        assert_eq!(got.len(), 2, "{got:?}");
        for (i, (g, s)) in got.iter().zip(&source).enumerate() {
            assert_eq!(g.codec, s.codec);
            assert_eq!(
                (g.width, g.height, g.sample_rate),
                (s.width, s.height, s.sample_rate)
            );
            let sent = total[i] - at_connect[i];
            eprintln!(
                "HTTP-FLV track {i} ({}): received {} of {sent} sent while connected",
                g.codec, g.packets
            );
            assert!(
                g.packets as f64 >= 0.95 * sent as f64,
                "track {i}: {} of {sent}",
                g.packets
            );
        }
        let starts = first_pts(out);
        assert!(
            (starts[0] - starts[1]).abs() <= 0.1,
            "audio/video start {starts:?}"
        );
    }
}

/// GET over a raw socket; returns the status line, headers and up to `want` body bytes
/// (chunked transfer decoded).
fn http_get(addr: std::net::SocketAddr, path: &str, want: usize) -> (String, String, Vec<u8>) {
    http_get_version(addr, path, want, "1.1")
}

fn http_get_version(
    addr: std::net::SocketAddr,
    path: &str,
    want: usize,
    version: &str,
) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/{version}\r\nHost: x\r\nOrigin: http://example.com\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    let mut rest = raw[head_end + 4..].to_vec();
    let mut body = Vec::new();
    if !headers
        .to_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Close-delimited (HTTP/1.0) or sized.
        while rest.len() < want {
            match s.read(&mut tmp).unwrap() {
                0 => break,
                n => rest.extend_from_slice(&tmp[..n]),
            }
        }
        return (status.to_string(), headers.to_string(), rest);
    }
    while body.len() < want {
        if let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..p]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            if rest.len() >= p + 2 + size + 2 {
                body.extend_from_slice(&rest[p + 2..p + 2 + size]);
                rest.drain(..p + 2 + size + 2);
                continue;
            }
        }
        let n = s.read(&mut tmp).unwrap();
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&tmp[..n]);
    }
    (status.to_string(), headers.to_string(), body)
}

#[test]
fn h265_is_served_as_enhanced_rtmp_flv() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("hlsAllowOrigins: ['http://example.com']\npaths:\n  all_others:\n");
    let clip = clip(Clip::H265Opus, 6);
    let mut publisher = publish(&clip, &srv.url("hevc"), "tcp", true);
    srv.wait_stream("hevc");
    let track_sps = match &srv.stream("hevc").unwrap().tracks()[0].codec {
        mediarouter::core::Codec::H265 { sps, .. } => sps.clone().unwrap(),
        c => panic!("{c:?}"),
    };
    let addr = srv.server.http_addr().unwrap();
    let (status, headers, body) = http_get(addr, "/hevc.flv", 64 * 1024);
    assert!(status.contains("200"), "{status}");
    let lower = headers.to_lowercase();
    assert!(lower.contains("content-type: video/x-flv"), "{headers}");
    assert!(
        lower.contains("access-control-allow-origin: http://example.com"),
        "{headers}"
    );

    check_hevc_flv(&body, &track_sps);
    let warns = logs().lines_with("WARN", &["path=\"hevc\"", "HTTP-FLV reader gets no Opus"]);
    assert_eq!(
        warns.len(),
        1,
        "one warn names the track left out: {warns:?}"
    );

    // HTTP/1.0 has no chunks: the body is the bare FLV file, ended by closing.
    let (status, headers, body) = http_get_version(addr, "/hevc.flv", 64 * 1024, "1.0");
    assert!(status.starts_with("HTTP/1.0 200"), "{status}");
    assert!(
        !headers.to_lowercase().contains("transfer-encoding"),
        "{headers}"
    );
    check_hevc_flv(&body, &track_sps);

    let (status, _, _) = http_get(addr, "/nobody.flv", 0);
    assert!(status.contains("404"), "{status}");
    let (status, _, _) = http_get(addr, "/hevc", 0);
    assert!(status.contains("404"), "{status}");
    publisher.kill().unwrap();
    publisher.wait().unwrap();
}

/// A video-only Enhanced RTMP FLV file: the hvc1 sequence start with `sps`, then ten
/// or more frames, a keyframe among them.
fn check_hevc_flv(body: &[u8], track_sps: &Bytes) {
    assert_eq!(&body[..4], b"FLV\x01");
    assert_eq!(body[4], 0x01, "video only: Opus has no FLV mapping");
    let mut rest = &body[13..];
    let mut seen_header = false;
    let mut frames = 0;
    let mut keyframes = 0;
    while let Ok(Some((tag, used))) = flv::parse_tag(rest) {
        if tag.typ == 9 {
            match flv::parse_video(&Bytes::copy_from_slice(tag.body)).unwrap() {
                Some((flv::VideoCodec::Hevc, flv::VideoPacket::SequenceHeader(record))) => {
                    assert_eq!(&tag.body[..5], b"\x90hvc1");
                    let sets = config_record::parse_hvcc(&record).unwrap();
                    assert_eq!(&sets.sps[0], track_sps);
                    seen_header = true;
                }
                Some((flv::VideoCodec::Hevc, flv::VideoPacket::Frame { keyframe, data, .. })) => {
                    assert!(seen_header, "a frame before the sequence start");
                    assert!(!flv::split_nalus(&data, 4).unwrap().is_empty());
                    frames += 1;
                    keyframes += usize::from(keyframe);
                }
                other => panic!("unexpected video tag {other:?}"),
            }
        }
        rest = &rest[used..];
    }
    assert!(
        frames >= 10 && keyframes >= 1,
        "{frames} frames, {keyframes} keyframes"
    );
}
