//! WHEP reader for the load tool (str0m, the engine the server uses): POST a
//! receive-only offer for video and audio, connect over ICE/DTLS from a UDP socket of
//! its own, then count RTP as the RTSP reader does. Loss is what never arrived: a
//! sequence number NACKs did not bring back by the end counts as a gap.

use crate::rtsp::TrackState;
use crate::stats::{Counter, DONE, MEASURE};
use anyhow::{anyhow, bail, Context, Result};
use http_body_util::BodyExt;
use mediarouter::http::client::{self as http, HttpConn};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;

/// Sequence numbers seen in the window, per SSRC: the span minus these is the loss.
#[derive(Default)]
struct Seen {
    seqs: std::collections::HashSet<u64>,
    lo: u64,
    hi: u64,
}

impl Seen {
    fn add(&mut self, seq: u64) {
        if self.seqs.is_empty() {
            (self.lo, self.hi) = (seq, seq);
        }
        self.lo = self.lo.min(seq);
        self.hi = self.hi.max(seq);
        self.seqs.insert(seq);
    }

    fn missing(&self) -> u64 {
        match self.seqs.is_empty() {
            true => 0,
            false => (self.hi - self.lo + 1).saturating_sub(self.seqs.len() as u64),
        }
    }
}

pub async fn read(url: &str, c: &mut Counter, timeout: Duration, drop: f64) -> Result<()> {
    let target = http::parse(url)?;
    let host = target.host().unwrap_or("127.0.0.1");
    let bind = if host.contains(':') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let sock = UdpSocket::bind(bind).await?;
    // The local address a datagram from the server arrives at (ICE matches on it).
    let probe = std::net::UdpSocket::bind(bind)?;
    let server_ip: std::net::IpAddr = host
        .trim_matches(['[', ']'])
        .parse()
        .context("a WHEP URL needs an IP host")?;
    probe.connect((server_ip, 9))?;
    let local = std::net::SocketAddr::new(probe.local_addr()?.ip(), sock.local_addr()?.port());

    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_h264(true)
        .enable_h265(true)
        .enable_opus(true, false)
        .enable_pcmu(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| anyhow!("{e}"))?);
    let mut api = rtc.sdp_api();
    let video = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;

    let answer = tokio::time::timeout(timeout, async {
        let mut conn = HttpConn::open(&target).await?;
        let resp = conn
            .post(&target, "application/sdp", offer.to_sdp_string().into())
            .await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if status.as_u16() != 201 {
            bail!(
                "POST {url}: {status}: {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    })
    .await
    .map_err(|_| anyhow!("WHEP POST timed out"))??;
    let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| anyhow!("bad answer: {e}"))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| anyhow!("answer not accepted: {e}"))?;

    let mut tracks: HashMap<u32, TrackState> = HashMap::new();
    let mut seen: HashMap<u32, Seen> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let mut last_data = Instant::now();
    let mut raw = Vec::with_capacity(1500);
    // `drop` stands for a lossy link once media flows: losing the ICE/DTLS handshake
    // too only makes connecting slow and the test of skipping ahead flaky.
    let mut connected = false;
    loop {
        let wait = loop {
            match rtc.poll_output().map_err(|e| anyhow!("{e}"))? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = sock.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => {
                    connected = true;
                    c.connected();
                }
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => {
                    bail!("ICE disconnected")
                }
                Output::Event(Event::RtpPacket(p)) => {
                    last_data = Instant::now();
                    let ssrc = *p.header.ssrc;
                    let is_video = rtc
                        .media(p.header.ext_vals.mid.unwrap_or(video))
                        .is_some_and(|m| m.kind() == MediaKind::Video);
                    let t = tracks.entry(ssrc).or_insert_with(|| {
                        let h265 = rtc.codec_config().params().iter().any(|q| {
                            q.pt() == p.header.payload_type
                                && q.spec().codec == str0m::format::Codec::H265
                        });
                        TrackState::new(is_video, if is_video { 90000 } else { 48000 }, h265)
                    });
                    // The fixed header the RTSP counter reads, then the payload.
                    raw.clear();
                    raw.push(0x80);
                    raw.push(u8::from(p.header.marker) << 7 | *p.header.payload_type);
                    raw.extend_from_slice(&p.header.sequence_number.to_be_bytes());
                    raw.extend_from_slice(&p.header.timestamp.to_be_bytes());
                    raw.extend_from_slice(&ssrc.to_be_bytes());
                    raw.extend_from_slice(&p.payload);
                    t.media(c, &raw);
                    if c.phase() == MEASURE {
                        seen.entry(ssrc).or_default().add(*p.seq_no);
                    }
                }
                Output::Event(_) => {}
            }
        };
        if c.phase() == DONE {
            c.gaps(seen.values().map(Seen::missing).sum());
            return Ok(());
        }
        if last_data.elapsed() > timeout {
            bail!("no media for {timeout:?}");
        }
        let wake =
            tokio::time::Instant::from_std(wait.min(Instant::now() + Duration::from_millis(100)));
        let input = tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, from) = r?;
                c.bytes(n);
                if connected && drop > 0.0 && rand::random::<f64>() < drop {
                    continue;
                }
                let Ok(contents) = buf[..n].try_into() else { continue };
                Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source: from, destination: local, contents })
            }
            _ = tokio::time::sleep_until(wake) => Input::Timeout(Instant::now()),
        };
        rtc.handle_input(input).map_err(|e| anyhow!("{e}"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_is_what_the_span_misses() {
        let mut s = Seen::default();
        for q in [10, 11, 13, 12, 15, 11] {
            s.add(q);
        }
        assert_eq!(s.missing(), 1);
        assert_eq!(Seen::default().missing(), 0);
    }
}
