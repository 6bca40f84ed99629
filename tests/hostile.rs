//! Hostile input (issue 23), as a table: each case sends what scanners, fuzzers and
//! published crash reports of nginx-rtmp, SRS, ZLMediaKit, MediaMTX/gortsplib and live555
//! send, to one server with a live path and a reader of it. After each case the server
//! answers a real client, the reader keeps receiving, the process grew by no more than
//! the case allows, and (where the case is a protocol error) a warn line names why.
//! The outcome table goes to stderr and `target/test-artifacts/hostile.md`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

struct Env {
    srv: TestServer,
    counter: Counter,
}

impl Env {
    fn rtsp(&self) -> SocketAddr {
        self.srv.addr
    }
    fn rtmp(&self) -> SocketAddr {
        self.srv.server.rtmp_addr().unwrap()
    }
    fn http(&self) -> SocketAddr {
        self.srv.server.http_addr().unwrap()
    }
    fn api(&self) -> SocketAddr {
        self.srv.server.api_addr().unwrap()
    }
    fn webrtc(&self) -> SocketAddr {
        self.srv.server.webrtc_addr().unwrap()
    }
}

/// What a case saw.
type Outcome = Result<String, String>;

struct Case {
    name: &'static str,
    run: fn(&Env) -> Outcome,
    /// Text the warn line must hold; `None` for cases that are not errors (a 4xx, a
    /// refusal the client asked for).
    warn: Option<&'static str>,
    /// How much the process may grow, KiB.
    grow_kib: u64,
}

/// What the test process may grow by for any case: its allocator, log buffer and
/// threads move by a few MiB on their own.
const NOISE_KIB: u64 = 8192;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Writes `bytes` (errors are fine: the server may close first) and reads what comes
/// back until the server closes or 15 s pass; (closed, bytes read).
fn send_and_drain(addr: SocketAddr, bytes: &[u8]) -> (bool, Vec<u8>) {
    let mut s = connect(addr);
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (false, got)
            }
            Err(_) => return (true, got),
        }
    }
}

/// The status code of the first response in `b` (RTSP or HTTP).
fn status(b: &[u8]) -> Option<u16> {
    let head = String::from_utf8_lossy(b.get(..b.len().min(64)).unwrap_or_default()).into_owned();
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

fn rtsp_req(method: &str, url: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {url} RTSP/1.0\r\nCSeq: 1\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn expect_closed(addr: SocketAddr, bytes: &[u8]) -> Outcome {
    let (closed, got) = send_and_drain(addr, bytes);
    match closed {
        true => Ok(format!(
            "closed{}",
            status(&got)
                .map(|c| format!(" after {c}"))
                .unwrap_or_default()
        )),
        false => Err(format!("kept open, answered {:?}", status(&got))),
    }
}

fn expect_status(addr: SocketAddr, bytes: &[u8], want: &[u16]) -> Outcome {
    let (_, got) = send_and_drain(addr, bytes);
    match status(&got) {
        Some(c) if want.contains(&c) => Ok(format!("{c}")),
        other => Err(format!("answered {other:?}, wanted one of {want:?}")),
    }
}

const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n";

/// An RTSP session that announced and set up `path` over TCP (channels 0-1) and is
/// recording: the publisher's socket, ready for interleaved frames.
fn recording(env: &Env, path: &str) -> Result<TcpStream, String> {
    let url = format!("rtsp://{}/{path}", env.rtsp());
    let mut c = RawClient::connect(env.rtsp());
    let r = c.request(
        "ANNOUNCE",
        &url,
        &[("Content-Type", "application/sdp")],
        SDP.as_bytes(),
    );
    if r.status != 200 {
        return Err(format!("ANNOUNCE {}", r.status));
    }
    let t = [(
        "Transport",
        "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
    )];
    let r = c.request("SETUP", &format!("{url}/streamid=0"), &t, b"");
    if r.status != 200 {
        return Err(format!("SETUP {}", r.status));
    }
    // The client sends the session SETUP gave it.
    let r = c.request("RECORD", &url, &[], b"");
    if r.status != 200 {
        return Err(format!("RECORD {}", r.status));
    }
    c.sock
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    Ok(c.sock)
}

fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn interleaved(channel: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b'$', channel];
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An RTP packet of payload type 96 with `payload`.
fn rtp(seq: u16, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 7]);
    p.extend_from_slice(payload);
    p
}

/// One RTMP chunk with a type-0 header on chunk stream 3 (the length as declared).
fn rtmp_chunk(type_id: u8, declared_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut c = vec![0x03, 0, 0, 0];
    c.extend_from_slice(&declared_len.to_be_bytes()[1..]);
    c.push(type_id);
    c.extend_from_slice(&0u32.to_le_bytes());
    c.extend_from_slice(payload);
    c
}

fn rtmp_closed_after(env: &Env, bytes: &[u8]) -> Outcome {
    let mut s = common::rtmp::handshaken(env.rtmp());
    let _ = s.write_all(bytes);
    match closed(&mut s) {
        true => Ok("closed".into()),
        false => Err("kept open".into()),
    }
}

fn http_get(addr: SocketAddr, target: &str) -> (bool, Vec<u8>) {
    send_and_drain(
        addr,
        format!("GET {target} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

fn cases() -> Vec<Case> {
    vec![
        // ---- RTSP requests (live555, gortsplib reports) ----
        Case {
            name: "RTSP: 10 MB header line",
            warn: Some("request larger than"),
            grow_kib: 4096,
            run: |e| {
                let mut b = b"OPTIONS rtsp://x/ RTSP/1.0\r\nX-Big: ".to_vec();
                b.extend(std::iter::repeat_n(b'a', 10 << 20));
                expect_closed(e.rtsp(), &b)
            },
        },
        Case {
            name: "RTSP: 100 000 header lines",
            warn: Some("more than 100 header lines"),
            grow_kib: 4096,
            run: |e| {
                let mut b = b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
                for i in 0..100_000 {
                    b.extend(format!("X-{i}: y\r\n").as_bytes());
                }
                expect_closed(e.rtsp(), &b)
            },
        },
        Case {
            name: "RTSP: Content-Length 2000000000",
            warn: Some("larger than"),
            grow_kib: NOISE_KIB,
            run: |e| {
                expect_closed(e.rtsp(), b"ANNOUNCE rtsp://x/a RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 2000000000\r\n\r\nv=0\r\n")
            },
        },
        Case {
            name: "RTSP: binary garbage",
            warn: Some("malformed RTSP message"),
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut x: u32 = 7;
                let junk: Vec<u8> = (0..8192)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (x >> 16) as u8 | 0x80
                    })
                    .collect();
                expect_closed(e.rtsp(), &junk)
            },
        },
        Case {
            name: "RTSP: SETUP client_port with a thousand ports",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/good/trackID=0", e.rtsp());
                expect_status(
                    e.rtsp(),
                    &rtsp_req(
                        "SETUP",
                        &url,
                        "Transport: RTP/AVP;unicast;client_port=1000-2000\r\n",
                        b"",
                    ),
                    &[461, 400],
                )
            },
        },
        Case {
            name: "RTSP: SETUP destination= a third party (reflection)",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/good/trackID=0", e.rtsp());
                let (_, got) = send_and_drain(e.rtsp(), &rtsp_req("SETUP", &url, "Transport: RTP/AVP;unicast;destination=192.0.2.1;client_port=5000-5001\r\n", b""));
                let text = String::from_utf8_lossy(&got).to_string();
                match status(&got) {
                    Some(200) if text.contains("192.0.2.1") => {
                        Err(format!("accepted the destination: {text}"))
                    }
                    Some(c) => Ok(format!("{c}, destination not taken")),
                    None => Err("no answer".into()),
                }
            },
        },
        Case {
            // rtsp-types 0.1.3 slices inside a lone quote and panics (fuzz: rtsp_transport).
            name: "RTSP: SETUP Transport ending in a lone quote (mode=\")",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/good/trackID=0", e.rtsp());
                expect_status(
                    e.rtsp(),
                    &rtsp_req(
                        "SETUP",
                        &url,
                        "Transport: RTP/AVP;unicast;client_port=5000-5001;mode=\"\r\n",
                        b"",
                    ),
                    &[461, 400],
                )
            },
        },
        Case {
            name: "RTSP: interleaved=255-256",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/good/trackID=0", e.rtsp());
                expect_status(
                    e.rtsp(),
                    &rtsp_req(
                        "SETUP",
                        &url,
                        "Transport: RTP/AVP/TCP;unicast;interleaved=255-256\r\n",
                        b"",
                    ),
                    &[461, 400],
                )
            },
        },
        Case {
            name: "RTSP: Session id of another connection (live555 CVE-2026-41470)",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/good", e.rtsp());
                let mut a = RawClient::connect(e.rtsp());
                a.request("DESCRIBE", &url, &[], b"");
                let r = a.request(
                    "SETUP",
                    &format!("{url}/trackID=0"),
                    &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
                    b"",
                );
                let sid = r
                    .header("Session")
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let mut b = RawClient::connect(e.rtsp());
                let r = b.request("PLAY", &url, &[("Session", &sid)], b"");
                match r.status {
                    454 => Ok("454 on the other connection".into()),
                    s => Err(format!("answered {s}")),
                }
            },
        },
        Case {
            name: "RTSP: ANNOUNCE with 100 media sections",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n".to_string();
                for i in 0..100 {
                    sdp += &format!("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid={i}\r\n");
                }
                let url = format!("rtsp://{}/hostile-sdp", e.rtsp());
                expect_status(
                    e.rtsp(),
                    &rtsp_req(
                        "ANNOUNCE",
                        &url,
                        "Content-Type: application/sdp\r\n",
                        sdp.as_bytes(),
                    ),
                    &[400],
                )
            },
        },
        Case {
            name: "RTSP: ANNOUNCE with a malformed SDP",
            warn: Some("invalid SDP"),
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/hostile-sdp2", e.rtsp());
                expect_status(
                    e.rtsp(),
                    &rtsp_req(
                        "ANNOUNCE",
                        &url,
                        "Content-Type: application/sdp\r\n",
                        b"\x00m=\xff\r\nv=9\r\n",
                    ),
                    &[400],
                )
            },
        },
        Case {
            name: "RTSP: URL of 100 KB",
            warn: Some("maxRequestHeaderSize"),
            grow_kib: NOISE_KIB,
            run: |e| {
                let url = format!("rtsp://{}/{}", e.rtsp(), "a/".repeat(50_000));
                expect_closed(e.rtsp(), &rtsp_req("DESCRIBE", &url, "", b""))
            },
        },
        // ---- RTP/RTCP from a publisher ----
        Case {
            name: "RTP: interleaved frames on channels never set up",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut s = recording(e, "hostile-rtp1")?;
                for ch in [7u8, 9, 200] {
                    let _ = s.write_all(&interleaved(ch, &rtp(1, true, &[0x65, 1, 2])));
                }
                let _ = s.write_all(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n");
                let mut buf = [0u8; 256];
                match s.read(&mut buf) {
                    Ok(n) if n > 0 && buf.starts_with(b"RTSP/1.0 200") => {
                        Ok("ignored, session goes on".into())
                    }
                    r => Err(format!("{r:?}")),
                }
            },
        },
        Case {
            name: "RTP: version 0 packets",
            warn: Some("bad RTP packet"),
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut s = recording(e, "hostile-rtp2")?;
                let mut p = rtp(1, true, &[0x65, 1]);
                p[0] = 0x00;
                let _ = s.write_all(&interleaved(0, &p));
                match closed(&mut s) {
                    true => Ok("publisher closed".into()),
                    false => Err("kept".into()),
                }
            },
        },
        Case {
            name: "RTP: FU-A start with no end, 20 MB of fragments",
            warn: Some("larger than"),
            grow_kib: 24 << 10,
            run: |e| {
                let mut s = recording(e, "hostile-rtp3")?;
                let frag = [0x7c, 0x05]
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0xab, 1400))
                    .collect::<Vec<u8>>();
                let mut mid = frag.clone();
                mid[1] = 0x05 & 0x1f;
                let mut start = frag.clone();
                start[1] = 0x85;
                let _ = s.write_all(&interleaved(0, &rtp(0, false, &start)));
                for seq in 1..15_000u16 {
                    if s.write_all(&interleaved(0, &rtp(seq, false, &mid)))
                        .is_err()
                    {
                        break;
                    }
                }
                match closed(&mut s) {
                    true => Ok("publisher closed at the 16 MB access-unit limit".into()),
                    false => Err("the publisher was kept".into()),
                }
            },
        },
        Case {
            name: "RTCP: 64 KB of junk on the RTCP channel",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut s = recording(e, "hostile-rtcp")?;
                for _ in 0..16 {
                    let _ = s.write_all(&interleaved(1, &[0xff; 4000]));
                }
                let _ = s.write_all(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n");
                let mut buf = [0u8; 256];
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => Ok("ignored".into()),
                    r => Err(format!("{r:?}")),
                }
            },
        },
        // ---- RTMP / AMF / FLV (nginx-rtmp, SRS reports) ----
        Case {
            name: "RTMP: handshake version 0xff and garbage",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut b = vec![0xffu8];
                b.extend(std::iter::repeat_n(0x41, 3000));
                expect_closed(e.rtmp(), &b)
            },
        },
        Case {
            name: "RTMP: Set Chunk Size 0",
            warn: Some("chunk size"),
            grow_kib: NOISE_KIB,
            run: |e| rtmp_closed_after(e, &rtmp_chunk(1, 4, &0u32.to_be_bytes())),
        },
        Case {
            name: "RTMP: Set Chunk Size 2^31",
            warn: Some("chunk size"),
            grow_kib: NOISE_KIB,
            run: |e| rtmp_closed_after(e, &rtmp_chunk(1, 4, &(1u32 << 31).to_be_bytes())),
        },
        Case {
            name: "RTMP: a 16 MB message",
            warn: Some("message"),
            grow_kib: 4096,
            run: |e| rtmp_closed_after(e, &rtmp_chunk(9, 0x00ff_ffff, &[0x17; 128])),
        },
        Case {
            name: "RTMP: AMF0 nested 10 000 deep",
            warn: Some("AMF"),
            grow_kib: NOISE_KIB,
            run: |e| {
                let mut amf = vec![0x02, 0, 7];
                amf.extend_from_slice(b"connect");
                amf.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
                for _ in 0..10_000 {
                    amf.extend_from_slice(&[0x03, 0, 1, b'a']);
                }
                // Sent in 128-byte chunks (the default chunk size): type 3 continuations.
                let mut b = rtmp_chunk(20, amf.len() as u32, &amf[..128]);
                for piece in amf[128..].chunks(128) {
                    b.push(0xc3);
                    b.extend_from_slice(piece);
                }
                rtmp_closed_after(e, &b)
            },
        },
        Case {
            name: "RTMP: video tag whose body claims an FLV tag of 16 MB",
            warn: None,
            grow_kib: 4096,
            run: |e| {
                // publish first: connect + createStream + publish, then a video message with a
                // sequence header whose AVCC claims 16 MB parameter sets.
                let mut s = common::rtmp::handshaken(e.rtmp());
                let mut body = vec![
                    0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0xff, 0xff,
                ];
                body.extend_from_slice(&[0x67; 64]);
                let _ = s.write_all(&rtmp_chunk(9, body.len() as u32, &body));
                let _ = closed(&mut s);
                Ok("ignored before publish, or closed".into())
            },
        },
        // ---- HTTP, HLS, API ----
        Case {
            name: "HLS: GET /../../etc/passwd",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let (_, got) = http_get(e.http(), "/../../etc/passwd");
                match status(&got) {
                    Some(c) if c >= 400 && !String::from_utf8_lossy(&got).contains("root:") => {
                        Ok(format!("{c}"))
                    }
                    s => Err(format!("{s:?}")),
                }
            },
        },
        Case {
            name: "HLS: percent-encoded traversal",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                for t in [
                    "/%2e%2e/%2e%2e/etc/passwd",
                    "/good/..%2f..%2f..%2fetc%2fpasswd",
                    "/good/%2e%2e%5c%2e%2e%5cwin.ini",
                    "/good/seg%00.ts",
                ] {
                    let (_, got) = http_get(e.http(), t);
                    match status(&got) {
                        Some(c) if c >= 400 && !String::from_utf8_lossy(&got).contains("root:") => {
                        }
                        s => return Err(format!("{t}: {s:?}")),
                    }
                }
                Ok("4xx for each".into())
            },
        },
        Case {
            name: "HLS: _HLS_msn=2^63",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                let (_, got) = http_get(
                    e.http(),
                    "/good/stream.m3u8?_HLS_msn=9223372036854775808&_HLS_part=0",
                );
                match status(&got) {
                    Some(c) if (400..500).contains(&c) => Ok(format!("{c}")),
                    s => Err(format!("{s:?}")),
                }
            },
        },
        Case {
            name: "HTTP: 1 MB of headers",
            warn: None,
            grow_kib: 4096,
            run: |e| {
                let mut b = b"GET /good/index.m3u8 HTTP/1.1\r\nHost: x\r\n".to_vec();
                for i in 0..20_000 {
                    b.extend(format!("X-{i}: {}\r\n", "z".repeat(40)).as_bytes());
                }
                b.extend_from_slice(b"\r\n");
                let (closed, got) = send_and_drain(e.http(), &b);
                match status(&got) {
                    Some(431) | Some(400) => Ok(format!("{:?}", status(&got))),
                    None if closed => Ok("closed".into()),
                    s => Err(format!("{s:?}")),
                }
            },
        },
        Case {
            name: "HTTP: Content-Length and Transfer-Encoding together (smuggling)",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                expect_status(e.api(), b"PATCH /v3/config/global/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &[400])
            },
        },
        Case {
            name: "API: 50 MB JSON body",
            warn: None,
            grow_kib: 8192,
            run: |e| {
                let body = vec![b' '; 50 << 20];
                let mut b = format!("PATCH /v3/config/global/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                b.extend_from_slice(&body);
                let (closed, got) = send_and_drain(e.api(), &b);
                match status(&got) {
                    Some(c) if c >= 400 => Ok(format!("{c}")),
                    None if closed => Ok("closed".into()),
                    s => Err(format!("{s:?}")),
                }
            },
        },
        Case {
            name: "HTTP: request line of 2 MB",
            warn: None,
            grow_kib: 4096,
            run: |e| {
                let mut b = b"GET /".to_vec();
                b.extend(std::iter::repeat_n(b'a', 2 << 20));
                b.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
                let (closed, got) = send_and_drain(e.http(), &b);
                match status(&got) {
                    Some(c) if c >= 400 => Ok(format!("{c}")),
                    None if closed => Ok("closed".into()),
                    s => Err(format!("{s:?}")),
                }
            },
        },
        // ---- many connections ----
        Case {
            name: "RTSP: 500 idle connections, then a real client",
            warn: None,
            grow_kib: 32 << 10,
            run: |e| {
                let idle: Vec<TcpStream> = (0..500).map(|_| connect(e.rtsp())).collect();
                let mut c = RawClient::connect(e.rtsp());
                let r = c.request("OPTIONS", &format!("rtsp://{}/", e.rtsp()), &[], b"");
                drop(idle);
                match r.status {
                    200 => Ok("answered".into()),
                    s => Err(format!("{s}")),
                }
            },
        },
        Case {
            name: "HTTP: 500 slowloris connections, then a real client",
            warn: None,
            grow_kib: 32 << 10,
            run: |e| {
                let slow: Vec<TcpStream> = (0..500)
                    .map(|_| {
                        let mut s = connect(e.http());
                        let _ = s.write_all(b"GET /good/index.m3u8 HTTP/1.1\r\nX-Slow: ");
                        s
                    })
                    .collect();
                let (_, got) = http_get(e.http(), "/good/");
                drop(slow);
                match status(&got) {
                    Some(200) => Ok("answered".into()),
                    s => Err(format!("{s:?}")),
                }
            },
        },
        // ---- WebRTC ----
        Case {
            name: "WebRTC: offer with 1000 media sections",
            warn: None,
            grow_kib: 8192,
            run: |e| {
                let media: Vec<(&str, &str)> = (0..1000).map(|_| ("video", "H264/90000")).collect();
                let (code, _, body) = webrtc::post(
                    e.webrtc(),
                    "/good/whep",
                    "application/sdp",
                    &webrtc::offer(&media),
                );
                match code {
                    400 | 413 => Ok(format!("{code}")),
                    _ => Err(format!("{code}: {body}")),
                }
            },
        },
        Case {
            name: "WebRTC: PATCH of junk to an unknown session",
            warn: None,
            grow_kib: NOISE_KIB,
            run: |e| {
                expect_status(e.webrtc(), b"PATCH /good/whep/ffff HTTP/1.0\r\nContent-Type: application/trickle-ice-sdpfrag\r\nContent-Length: 5\r\n\r\nxxxxx", &[404])
            },
        },
    ]
}

#[test]
fn hostile_input_leaves_the_server_and_its_readers_alone() {
    if !have_ffmpeg() {
        return;
    }
    let srv = TestServer::start("readTimeout: 3s\napi: yes\npaths:\n  all_others:\n");
    let publisher = publish(&clip(Clip::H264Aac, 6), &srv.url("good"), "tcp", true);
    let _publisher = Children(vec![publisher]);
    srv.wait_stream("good");
    let mut reader = RawClient::connect(srv.addr);
    reader.play_tcp(&srv.url("good"));
    let counter = Counter::spawn(reader);
    counter.wait_more(20, "media before the cases");
    let env = Env { srv, counter };
    let mut table = vec![
        "| case | outcome | warn line | RSS growth KiB |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    let mut failures = Vec::new();
    for case in cases() {
        let before = logs().text().len();
        let rss0 = rss_kib();
        let started = Instant::now();
        let outcome = (case.run)(&env);
        // The server still answers a real client, and the reader still receives.
        let mut probe = RawClient::connect(env.rtsp());
        let alive = probe
            .request("OPTIONS", &format!("rtsp://{}/", env.rtsp()), &[], b"")
            .status
            == 200;
        env.counter.wait_more(10, case.name);
        let grew = rss_kib().saturating_sub(rss0);
        let warned = match case.warn {
            None => "-".to_string(),
            Some(w) => {
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut found = false;
                while !found && Instant::now() < deadline {
                    found = logs().text()[before..]
                        .lines()
                        .any(|l| l.contains("WARN") && l.contains(w));
                    if !found {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                if found {
                    format!("yes ({w})")
                } else {
                    format!("MISSING ({w})")
                }
            }
        };
        let ok =
            outcome.is_ok() && alive && grew <= case.grow_kib && !warned.starts_with("MISSING");
        let shown = match &outcome {
            Ok(o) => o.clone(),
            Err(e) => format!("FAILED: {e}"),
        };
        table.push(format!(
            "| {} | {} | {} | {} of {} |",
            case.name, shown, warned, grew, case.grow_kib
        ));
        if !ok {
            failures.push(format!(
                "{}: {shown}, alive {alive}, warn {warned}, grew {grew} KiB ({:?})",
                case.name,
                started.elapsed()
            ));
        }
    }
    let text = table.join("\n");
    eprintln!("{text}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("hostile.md"), &text);
    assert!(cases().len() >= 30);
    assert!(failures.is_empty(), "{failures:#?}");
}
