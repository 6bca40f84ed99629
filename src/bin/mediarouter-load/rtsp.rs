//! RTSP reader for the load tool: DESCRIBE, SETUP every track (TCP interleaved or UDP),
//! PLAY, then count RTP: a video frame is a packet with the marker bit, an audio frame
//! a packet; a sequence-number jump is a gap.

use crate::stats::{Counter, DONE};
use anyhow::{anyhow, bail, Result};
use bytes::Buf;
use mediarouter::format::sdp;
pub(crate) use mediarouter::rtsp::client::{header, Conn};
use rtsp_types::Method;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

/// Keep-alive interval for UDP sessions, well inside the usual 60 s session timeout.
const KEEPALIVE: Duration = Duration::from_secs(20);

/// One RTP track being counted.
pub(crate) struct TrackState {
    video: bool,
    clock: u32,
    last_seq: Option<u16>,
    first_ts: Option<u32>,
    ts_base: i64,
    last_ts: u32,
    /// The access unit being received holds an IDR/IRAP picture.
    key: bool,
    h265: bool,
    /// Rebuilds each access unit's largest NAL unit, for latency.
    frames: crate::latency::RtpFrames,
}

impl TrackState {
    pub(crate) fn new(video: bool, clock: u32, h265: bool) -> TrackState {
        TrackState {
            video,
            clock,
            last_seq: None,
            first_ts: None,
            ts_base: 0,
            last_ts: 0,
            key: false,
            h265,
            frames: crate::latency::RtpFrames::new(h265),
        }
    }

    /// One RTP packet; a sequence-number jump counts as a gap.
    fn packet(&mut self, c: &mut Counter, p: &[u8]) {
        if p.len() < 12 || p[0] >> 6 != 2 {
            return;
        }
        let seq = u16::from_be_bytes([p[2], p[3]]);
        if let Some(last) = self.last_seq {
            let step = seq.wrapping_sub(last);
            if step != 1 {
                c.gaps(1);
            }
        }
        self.last_seq = Some(seq);
        self.media(c, p);
    }

    /// One RTP packet's frames, keyframes and latency, whatever its sequence number
    /// (WebRTC counts loss as what never arrived, retransmissions included).
    pub(crate) fn media(&mut self, c: &mut Counter, p: &[u8]) {
        if p.len() < 12 || p[0] >> 6 != 2 {
            return;
        }
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let marker = p[1] & 0x80 != 0;
        if self.video {
            let payload = p.get(rtp_header_len(p)..).unwrap_or_default();
            self.key |= self.keyframe_nal(payload);
            let frame = self.frames.packet(payload, marker);
            if marker {
                let ms = self.unwrap_ms(ts);
                c.video(Some(ms), false, std::mem::take(&mut self.key));
                c.arrived(frame);
            }
        } else {
            c.audio();
        }
    }

    /// Whether an H.264/H.265 RTP payload carries (part of) an IDR/IRAP NAL unit: a
    /// single NAL, any unit of an aggregate (STAP-A/AP), or a fragment's own type.
    fn keyframe_nal(&self, payload: &[u8]) -> bool {
        let (hdr, key, aggregate, fragment): (usize, fn(u8) -> bool, u8, u8) = if self.h265 {
            (2, |b| (16..=21).contains(&((b >> 1) & 0x3f)), 48, 49)
        } else {
            (1, |b| b & 0x1f == 5, 24, 28)
        };
        let Some(&b0) = payload.first() else {
            return false;
        };
        let typ = if self.h265 {
            (b0 >> 1) & 0x3f
        } else {
            b0 & 0x1f
        };
        if typ == aggregate {
            let mut pos = hdr;
            while pos + 2 < payload.len() {
                let len = usize::from(u16::from_be_bytes([payload[pos], payload[pos + 1]]));
                if key(payload[pos + 2]) {
                    return true;
                }
                pos += 2 + len;
            }
            false
        } else if typ == fragment {
            // The FU header's type sits where a NAL header's would (H.265: 6 low bits).
            payload.get(hdr).is_some_and(|b| {
                if self.h265 {
                    (16..=21).contains(&(b & 0x3f))
                } else {
                    b & 0x1f == 5
                }
            })
        } else {
            key(b0)
        }
    }

    /// RTP timestamp → milliseconds since the track's first packet, across wraps.
    fn unwrap_ms(&mut self, ts: u32) -> i64 {
        let first = *self.first_ts.get_or_insert(ts);
        if ts < self.last_ts && self.last_ts - ts > u32::MAX / 2 {
            self.ts_base += 1 << 32;
        }
        self.last_ts = ts;
        let ticks = self.ts_base + i64::from(ts) - i64::from(first);
        ticks * 1000 / i64::from(self.clock.max(1))
    }
}

fn control_url(base: &str, control: Option<&str>) -> String {
    match control {
        None | Some("") | Some("*") => base.to_string(),
        Some(c) if c.starts_with("rtsp://") => c.to_string(),
        Some(c) => format!(
            "{}/{}",
            base.trim_end_matches('/'),
            c.trim_start_matches('/')
        ),
    }
}

/// Receive buffer of a UDP reader's RTP socket: a keyframe burst (the GOP a new reader
/// gets at once) overflows the usual 208 KiB default and would count as loss.
const UDP_RCVBUF: usize = 4 << 20;

/// Two UDP sockets on consecutive ports (RTP even, RTCP odd), as RFC 3550 asks.
async fn udp_pair() -> Result<(UdpSocket, UdpSocket)> {
    for _ in 0..64 {
        let rtp = UdpSocket::bind("127.0.0.1:0").await?;
        let _ = socket2::SockRef::from(&rtp).set_recv_buffer_size(UDP_RCVBUF);
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)).await {
            return Ok((rtp, rtcp));
        }
    }
    bail!("no free UDP port pair")
}

pub async fn read(url: &str, udp: bool, c: &mut Counter, timeout: Duration) -> Result<()> {
    let (mut conn, mut tracks, (sockets, _rtcp)) = tokio::time::timeout(timeout, setup(url, udp))
        .await
        .map_err(|_| anyhow!("DESCRIBE/SETUP/PLAY timed out"))??;
    c.connected();
    if udp {
        read_udp(&mut conn, url, &mut tracks, &sockets, c, timeout).await
    } else {
        read_tcp(&mut conn, &mut tracks, c, timeout).await
    }
}

type Sockets = (Vec<UdpSocket>, Vec<UdpSocket>);

/// The RTSP session up to PLAY; with UDP, the RTP sockets per track and the RTCP ones
/// (held so the ports stay ours; sender reports are not counted).
async fn setup(url: &str, udp: bool) -> Result<(Conn, Vec<TrackState>, Sockets)> {
    let mut conn = Conn::open(url).await?;
    let d = conn
        .request(
            Method::Describe,
            url,
            &[("Accept", "application/sdp".into())],
        )
        .await?;
    let base = header(&d, "Content-Base").unwrap_or_else(|| url.to_string());
    let medias = sdp::parse_announce(d.body(), 64).map_err(|e| anyhow!("{e}"))?;
    let mut tracks = Vec::new();
    let mut sockets = Vec::new();
    let mut rtcp_sockets = Vec::new();
    for (i, m) in medias.iter().enumerate() {
        let transport = if udp {
            let (rtp, rtcp) = udp_pair().await?;
            let p = rtp.local_addr()?.port();
            sockets.push(rtp);
            rtcp_sockets.push(rtcp);
            format!("RTP/AVP;unicast;client_port={}-{}", p, p + 1)
        } else {
            format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * i, 2 * i + 1)
        };
        conn.setup(&control_url(&base, m.control.as_deref()), transport)
            .await?;
        tracks.push(TrackState::new(
            m.track.codec.is_video(),
            m.track.clock_rate,
            matches!(m.track.codec, mediarouter::core::Codec::H265 { .. }),
        ));
    }
    conn.request(Method::Play, &base, &[]).await?;
    Ok((conn, tracks, (sockets, rtcp_sockets)))
}

async fn read_tcp(
    conn: &mut Conn,
    tracks: &mut [TrackState],
    c: &mut Counter,
    timeout: Duration,
) -> Result<()> {
    // Media may have arrived with the PLAY response: count what is buffered first.
    c.bytes(conn.buf.len());
    loop {
        loop {
            let b = &conn.buf;
            if b.is_empty() {
                break;
            }
            if b[0] != b'$' {
                // A response (keep-alive) or something else: let the RTSP parser take it.
                match conn.response()? {
                    Some(_) => continue,
                    None => break,
                }
            }
            if b.len() < 4 {
                break;
            }
            let ch = b[1];
            let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
            if b.len() < 4 + len {
                break;
            }
            if ch.is_multiple_of(2) {
                if let Some(t) = tracks.get_mut(usize::from(ch / 2)) {
                    t.packet(c, &b[4..4 + len]);
                }
            }
            conn.buf.advance(4 + len);
        }
        if c.phase() == DONE {
            return Ok(());
        }
        let n = tokio::time::timeout(timeout, conn.sock.read_buf(&mut conn.buf))
            .await
            .map_err(|_| anyhow!("no data for {timeout:?}"))??;
        if n == 0 {
            bail!("server closed the connection");
        }
        c.bytes(n);
    }
}

async fn read_udp(
    conn: &mut Conn,
    url: &str,
    tracks: &mut [TrackState],
    sockets: &[UdpSocket],
    c: &mut Counter,
    timeout: Duration,
) -> Result<()> {
    let mut buf = vec![0u8; 2048];
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let mut last_data = tokio::time::Instant::now();
    loop {
        if c.phase() == DONE {
            return Ok(());
        }
        // Drain every socket without waiting, then wait for any of them.
        let mut got = false;
        for (i, s) in sockets.iter().enumerate() {
            while let Ok(n) = s.try_recv(&mut buf) {
                got = true;
                c.bytes(n);
                tracks[i].packet(c, &buf[..n]);
            }
        }
        if got {
            last_data = tokio::time::Instant::now();
        } else if last_data.elapsed() > timeout {
            bail!("no data for {timeout:?}");
        }
        let readable =
            futures_util::future::select_all(sockets.iter().map(|s| Box::pin(s.readable())));
        tokio::select! {
            _ = readable => {}
            _ = keepalive.tick() => {
                conn.request(Method::GetParameter, url, &[]).await?;
            }
            _ = tokio::time::sleep(timeout) => {}
        }
    }
}

/// RTP fixed header plus CSRCs and extension.
fn rtp_header_len(p: &[u8]) -> usize {
    let mut n = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 && p.len() >= n + 4 {
        n += 4 + 4 * usize::from(u16::from_be_bytes([p[n + 2], p[n + 3]]));
    }
    n.min(p.len())
}
