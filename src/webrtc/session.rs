//! One WebRTC session: a str0m `Rtc` in RTP mode driven by its own task, fed the
//! datagrams the UDP port routes to it. A reader (WHEP) sends the stream's shared
//! payloads under its own sequence numbers and SRTP; a publisher (WHIP) turns what it
//! receives into units through the RTSP ingest (same depacketizers and timeline).

use super::codecs::{self, ReadPlan};
use super::payload::Payloads;
use super::Hub;
use crate::core::{Publisher, Reader, SessionGuard, StreamItem, StreamReader};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::mpsc;

/// What the server hands a session.
pub(super) enum Msg {
    Datagram {
        from: SocketAddr,
        to: SocketAddr,
        data: Vec<u8>,
        at: Instant,
    },
    /// A trickled remote candidate (PATCH).
    Candidate(str0m::Candidate),
    /// DELETE of the session's resource.
    Close,
}

/// Datagrams queued for a session before it drops them (it fell behind).
pub(super) const QUEUE: usize = 512;

/// How often a WHIP publisher is asked for a keyframe: browsers send one only when
/// asked, and HLS segments and new readers start at keyframes.
const KEYFRAME_EVERY: Duration = Duration::from_secs(2);
/// Viewers' requests reach the publisher at most this often.
const KEYFRAME_MIN_GAP: Duration = Duration::from_millis(500);
/// Share of a second's video packets a viewer may lose before it skips to a keyframe.
const MAX_LOSS: f32 = 0.1;

/// One outgoing track of a reader: where and how its packets go.
pub(super) struct TxTrack {
    track: usize,
    mid: Mid,
    ssrc: Ssrc,
    pt: Pt,
    seq: u64,
    /// RTP time of pts 0 (random, as RFC 3550 asks).
    ts_offset: u32,
    video: bool,
}

impl TxTrack {
    /// The stream track it sends.
    pub(super) fn track(&self) -> usize {
        self.track
    }

    /// The media of the video among `tx`, if it sends video.
    pub(super) fn video_mid(tx: &[TxTrack]) -> Option<Mid> {
        tx.iter().find(|t| t.video).map(|t| t.mid)
    }
}

pub(super) enum Role {
    Read {
        slot: Reader,
        tx: Vec<TxTrack>,
        sub: Option<StreamReader>,
        /// The media the video goes out on (its egress stats say what the viewer lost).
        video_mid: Option<Mid>,
    },
    Publish {
        publisher: Publisher,
        /// Media index (for the ingest) of each payload type the publisher may send.
        by_pt: HashMap<Pt, usize>,
        tracks: Vec<crate::format::sdp::AnnouncedMedia>,
        ingest: Option<crate::rtsp::ingest::Ingest>,
        last_keyframe_ask: Option<Instant>,
        /// The SSRC the publisher's video comes with, once it does.
        video_ssrc: Option<Ssrc>,
    },
}

pub(super) struct Session {
    pub hub: Arc<Hub>,
    /// The listener's UDP port; sessions keep it open until the last one ends.
    pub port: Arc<super::udp::UdpPort>,
    pub id: u64,
    pub rtc: Rtc,
    pub role: Role,
    pub rx: mpsc::Receiver<Msg>,
    pub entry: SessionGuard,
    pub path: String,
    pub peer: SocketAddr,
    pub handshake_timeout: Duration,
    /// Addresses this session answered from; the mux routes them here.
    known: Vec<SocketAddr>,
    /// Where the latest datagram came from and which candidate it was sent to.
    last_pair: Option<(SocketAddr, SocketAddr)>,
    last_loss_log: Option<Instant>,
    connected: bool,
    bytes: crate::core::ByteCounter,
}

/// A session's place in the hub (mux and resource), given back on drop.
struct Registered(Arc<Hub>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// Why a session ended, for its log line.
type End = Result<&'static str, String>;

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        hub: Arc<Hub>,
        port: Arc<super::udp::UdpPort>,
        id: u64,
        rtc: Rtc,
        role: Role,
        rx: mpsc::Receiver<Msg>,
        entry: SessionGuard,
        path: String,
        peer: SocketAddr,
    ) -> Session {
        let bytes = match &role {
            Role::Read { slot, .. } => entry.bytes_out.with_path(slot.path().bytes_sent_counter()),
            Role::Publish { .. } => entry.bytes_in.clone(),
        };
        Session {
            handshake_timeout: hub.handshake_timeout,
            hub,
            port,
            id,
            rtc,
            role,
            rx,
            entry,
            path,
            peer,
            known: Vec::new(),
            last_pair: None,
            last_loss_log: None,
            connected: false,
            bytes,
        }
    }

    pub(super) async fn run(mut self) {
        let what = match self.role {
            Role::Read { .. } => "WebRTC reader",
            Role::Publish { .. } => "WebRTC publisher",
        };
        let (peer, path) = (self.peer, self.path.clone());
        // Unregistered however the task ends (a panic included).
        let _registered = Registered(self.hub.clone(), self.id);
        let end = self.drive().await;
        self.rtc.disconnect();
        let _ = self.flush().await;
        let bytes = self.bytes.get();
        match end {
            Ok(why) => tracing::info!(%peer, %path, bytes, "{what} closed: {why}"),
            Err(why) => tracing::warn!(%peer, %path, bytes, "closing {what}: {why}"),
        }
    }

    async fn drive(&mut self) -> End {
        let deadline = Instant::now() + self.handshake_timeout;
        let shutdown = self.hub.shutdown.clone();
        let listener = self.hub.stop.clone();
        let replaced = match &self.role {
            Role::Publish { publisher, .. } => Some(publisher.cancelled().clone()),
            Role::Read { .. } => None,
        };
        let mut published: Option<Arc<crate::core::Stream>> = None;
        loop {
            let timeout = self.flush().await?;
            if !self.rtc.is_alive() {
                return Ok("closed by the peer");
            }
            let kicked = self.entry.kicked().clone();
            if published.is_none() {
                published = self.published_stream();
            }
            let reading = matches!(&self.role, Role::Read { sub: Some(_), .. });
            let wake = tokio::time::Instant::from_std(timeout);
            tokio::select! {
                m = self.rx.recv() => match m {
                    Some(Msg::Datagram { from, to, data, at }) => self.datagram(from, to, &data, at),
                    Some(Msg::Candidate(c)) => self.rtc.add_remote_candidate(c),
                    Some(Msg::Close) => return Ok("closed by the client (DELETE)"),
                    None => return Ok("server stopping"),
                },
                _ = tokio::time::sleep_until(wake) => {
                    self.input(Input::Timeout(Instant::now()));
                }
                item = next_item(&mut self.role), if reading => {
                    match item {
                        Ok(item) => self.send(item)?,
                        Err(crate::core::ReadEnd::Closed) => return Ok("stream ended"),
                        Err(crate::core::ReadEnd::TooSlow) => {
                            return Err("too slow: kept falling behind the stream".into())
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()), if !self.connected => {
                    return Err(format!(
                        "not connected within webrtcHandshakeTimeout ({:?})",
                        self.handshake_timeout
                    ));
                }
                _ = kicked.cancelled() => return Ok("kicked through the API"),
                _ = shutdown.cancelled() => return Ok("server shutting down"),
                _ = listener.cancelled() => return Ok("the WebRTC listener restarted"),
                why = crate::core::kicked(replaced.as_ref()) => return Ok(why),
                _ = keyframe_wanted(published.as_deref()) => self.ask_keyframe(true),
            }
        }
    }

    fn input(&mut self, input: Input) {
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(peer = %self.peer, "WebRTC input refused: {e}");
        }
    }

    fn datagram(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8], at: Instant) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let destination = super::candidates::arrived_at(to, &self.hub.offered, &self.hub.local_ips);
        self.last_pair = Some((destination, from));
        if let Role::Publish { .. } = self.role {
            self.bytes.add(data.len() as u64);
        }
        self.input(Input::Receive(
            at,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination,
                contents,
            },
        ));
    }

    /// Drains str0m's output (sends, events) until it names its next timeout.
    async fn flush(&mut self) -> Result<Instant, String> {
        loop {
            let out = self
                .rtc
                .poll_output()
                .map_err(|e| format!("WebRTC error: {e}"))?;
            match out {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    self.sending(t.destination, t.contents.len());
                    if let Err(e) = self.port.socket.send_to(&t.contents, t.destination).await {
                        tracing::debug!(peer = %self.peer, "WebRTC send to {}: {e}", t.destination);
                    }
                }
                Output::Event(e) => self.event(e)?,
            }
        }
    }

    /// Before each send: counts a reader's bytes, and lets the mux route a new peer
    /// here (str0m sends only to peers that passed a check).
    fn sending(&mut self, to: SocketAddr, len: usize) {
        if !self.known.contains(&to) {
            if self.known.len() == super::mux::MAX_ADDRS {
                self.known.remove(0);
            }
            self.known.push(to);
            self.hub.learn(self.id, to);
        }
        if let Role::Read { .. } = self.role {
            self.bytes.add(len as u64);
        }
    }

    fn event(&mut self, e: Event) -> Result<(), String> {
        match e {
            Event::Connected => {
                self.connected = true;
                let pair = self.last_pair;
                self.entry.update(|d| d.candidates = pair);
                tracing::info!(peer = %self.peer, path = %self.path, "WebRTC session connected");
                match &mut self.role {
                    Role::Read { slot, sub, .. } => {
                        let stream = slot.stream();
                        *sub = Some(
                            stream
                                .subscribe_live()
                                .ok_or("the stream ended before the session connected")?,
                        );
                        // It starts at the next keyframe: publishers that can (WHIP,
                        // RTSP clients that honour PLI) send one now.
                        stream.request_keyframe();
                    }
                    Role::Publish {
                        publisher,
                        tracks,
                        ingest,
                        ..
                    } => {
                        let stream_tracks = tracks.iter().map(|m| m.track.clone()).collect();
                        let manager = &self.hub.manager;
                        let stream =
                            crate::core::Stream::new(stream_tracks, manager.stream_config());
                        publisher
                            .start(stream.clone())
                            .map_err(|e| format!("can't publish: {e}"))?;
                        let index: Vec<Option<usize>> = (0..tracks.len()).map(Some).collect();
                        let counters = self.entry.rtp_in.clone();
                        *ingest = Some(
                            crate::rtsp::ingest::Ingest::new(stream, tracks, &index)
                                .reordering()
                                .counting(counters),
                        );
                        self.entry
                            .update(|d| d.state = crate::core::SessionState::Publish);
                    }
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err("ICE disconnected".into());
            }
            Event::RtpPacket(p) => self.received(p),
            Event::MediaEgressStats(st) => self.egress(&st),
            Event::KeyframeRequest(_) => {
                // A viewer lost a picture: a publisher that can (WHIP) sends a keyframe
                // now, others at their next one.
                if let Role::Read { slot, .. } = &self.role {
                    slot.stream().request_keyframe();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A viewer whose receiver reports say it loses more than `MAX_LOSS` of the video
    /// can't keep up (a slow link): it skips to the next keyframe, as a TCP reader
    /// that falls behind does, instead of being sent frames it will have to NACK.
    fn egress(&mut self, st: &str0m::stats::MediaEgressStats) {
        let Role::Read {
            sub: Some(sub),
            video_mid,
            ..
        } = &mut self.role
        else {
            return;
        };
        if Some(st.mid) != *video_mid || st.loss.is_none_or(|l| l <= MAX_LOSS) {
            return;
        }
        sub.skip_to_next_keyframe();
        sub.stream()
            .stats
            .reader_lags
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Instant::now();
        if self
            .last_loss_log
            .is_none_or(|t| now - t >= Duration::from_secs(10))
        {
            self.last_loss_log = Some(now);
            tracing::warn!(
                peer = %self.peer,
                path = %self.path,
                "WebRTC viewer loses {:.0} % of the video: skipping to the next keyframe",
                st.loss.unwrap_or(0.0) * 100.0
            );
        }
    }

    /// Writes one stream item's packets to the reader.
    fn send(&mut self, item: StreamItem) -> Result<(), String> {
        let StreamItem::Unit(e) = item else {
            return Ok(());
        };
        let Role::Read { tx, .. } = &mut self.role else {
            return Ok(());
        };
        let Some(t) = tx.iter_mut().find(|t| t.track == e.unit.track) else {
            return Ok(());
        };
        let time = (e.unit.pts as u32).wrapping_add(t.ts_offset);
        let now = Instant::now();
        let (ssrc, pt, video) = (t.ssrc, t.pt, t.video);
        let packets = e.form::<Payloads>();
        let first = t.seq;
        t.seq += packets.len() as u64;
        for (i, p) in packets.iter().enumerate() {
            let seq: SeqNo = (first + i as u64).into();
            let w = RtpWrite::new(pt, seq, time, now, p.data.clone())
                .marker(p.marker)
                .nackable(video);
            match self.rtc.direct_api().stream_tx(&ssrc) {
                Some(s) => s.write_rtp(w),
                None => return Err("the send stream is gone".into()),
            }
            // Each write is drained before the next (str0m's one-mutation rule).
            self.drain_now()?;
        }
        Ok(())
    }

    /// Drains str0m's output without awaiting: sends go out with `try_send_to` (UDP:
    /// a full socket buffer drops the packet, as the network would).
    fn drain_now(&mut self) -> Result<(), String> {
        loop {
            match self
                .rtc
                .poll_output()
                .map_err(|e| format!("WebRTC error: {e}"))?
            {
                Output::Timeout(_) => return Ok(()),
                Output::Transmit(t) => {
                    self.sending(t.destination, t.contents.len());
                    let _ = self.port.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.event(e)?,
            }
        }
    }

    fn received(&mut self, p: str0m::rtp::RtpPacket) {
        let Role::Publish {
            by_pt,
            ingest,
            last_keyframe_ask,
            tracks,
            video_ssrc,
            ..
        } = &mut self.role
        else {
            return;
        };
        let Some(ingest) = ingest else {
            return;
        };
        let Some(media) = by_pt.get(&p.header.payload_type).copied() else {
            return;
        };
        let pkt = crate::format::rtp::RtpIn {
            payload_type: *p.header.payload_type,
            seq: p.header.sequence_number,
            timestamp: p.header.timestamp,
            ssrc: *p.header.ssrc,
            marker: p.header.marker,
            payload: Bytes::copy_from_slice(&p.payload),
        };
        if let Err(e) = ingest.push_parsed(media, &pkt) {
            tracing::debug!(peer = %self.peer, "WebRTC publisher: {e}");
        }
        if tracks.get(media).is_some_and(|m| m.track.codec.is_video()) {
            *video_ssrc = Some(p.header.ssrc);
            if last_keyframe_ask.is_none_or(|t| t.elapsed() >= KEYFRAME_EVERY) {
                self.ask_keyframe(false);
            }
        }
    }

    /// The stream a publisher feeds, once it does.
    fn published_stream(&self) -> Option<Arc<crate::core::Stream>> {
        match &self.role {
            Role::Publish {
                ingest: Some(_),
                publisher,
                ..
            } => publisher.path().stream(),
            _ => None,
        }
    }

    /// Asks a WHIP publisher for a keyframe (PLI): every `KEYFRAME_EVERY`, and when a
    /// viewer asks (`now`), at most every `KEYFRAME_MIN_GAP`.
    fn ask_keyframe(&mut self, now: bool) {
        let Role::Publish {
            last_keyframe_ask,
            video_ssrc: Some(ssrc),
            ..
        } = &mut self.role
        else {
            return;
        };
        let gap = if now {
            KEYFRAME_MIN_GAP
        } else {
            KEYFRAME_EVERY
        };
        if last_keyframe_ask.is_some_and(|t| t.elapsed() < gap) {
            return;
        }
        *last_keyframe_ask = Some(Instant::now());
        let ssrc = *ssrc;
        if let Some(rx) = self.rtc.direct_api().stream_rx(&ssrc) {
            rx.request_keyframe(str0m::media::KeyframeRequestKind::Pli);
        }
    }
}

async fn keyframe_wanted(stream: Option<&crate::core::Stream>) {
    match stream {
        Some(s) => s.keyframe_wanted().await,
        None => std::future::pending().await,
    }
}

async fn next_item(role: &mut Role) -> Result<StreamItem, crate::core::ReadEnd> {
    match role {
        Role::Read { sub: Some(s), .. } => s.next().await,
        _ => std::future::pending().await,
    }
}

/// After the answer: the send streams of a reader's plan, one per media the browser
/// accepted, or why the offer can't be served.
pub(super) fn reader_tracks(
    rtc: &mut Rtc,
    medias: &[(Mid, MediaKind, Direction)],
    plan: &ReadPlan,
) -> Result<Vec<TxTrack>, String> {
    let mut out = Vec::new();
    for (kind, chosen) in [
        (MediaKind::Video, plan.video),
        (MediaKind::Audio, plan.audio),
    ] {
        let Some((track, s)) = chosen else {
            continue;
        };
        let Some((mid, ..)) = medias
            .iter()
            .find(|(_, k, d)| *k == kind && matches!(d, Direction::SendOnly | Direction::SendRecv))
        else {
            continue;
        };
        let negotiated: Vec<_> = match rtc.media(*mid) {
            Some(m) => {
                let pts = m.remote_pts().to_vec();
                rtc.codec_config()
                    .params()
                    .iter()
                    .filter(|p| pts.contains(&p.pt()))
                    .copied()
                    .collect()
            }
            None => continue,
        };
        let Some(pt) = codecs::pick_pt(&negotiated, s) else {
            continue;
        };
        let mut api = rtc.direct_api();
        let ssrc = match api.stream_tx_by_mid(*mid, None) {
            Some(s) => s.ssrc(),
            None => {
                let ssrc = api.new_ssrc();
                api.declare_stream_tx(ssrc, None, *mid, None);
                ssrc
            }
        };
        out.push(TxTrack {
            track,
            mid: *mid,
            ssrc,
            pt,
            // Below 2^15: the receiver's rollover counter starts at 0 (RFC 3711).
            seq: u64::from(rand::random::<u16>() & 0x7fff),
            ts_offset: rand::random(),
            video: s.is_video(),
        });
    }
    if out.is_empty() {
        return Err("the offer accepts none of the stream's codecs".into());
    }
    Ok(out)
}

/// After the answer: a publisher's tracks (H.264 video, Opus audio, one of each, as
/// the ingest's announced media) and the media index of each payload type it may
/// send; or why the offer can't be published.
pub(super) fn publish_tracks(
    rtc: &Rtc,
    medias: &[(Mid, MediaKind, Direction)],
) -> Result<PublishTracks, String> {
    use crate::core::{Codec, Track};
    use str0m::format::Codec as RtcCodec;
    let mut tracks = Vec::new();
    let mut by_pt = HashMap::new();
    for kind in [MediaKind::Video, MediaKind::Audio] {
        let Some(m) = medias
            .iter()
            .filter(|(_, k, d)| {
                *k == kind && matches!(d, Direction::RecvOnly | Direction::SendRecv)
            })
            .find_map(|(mid, ..)| rtc.media(*mid))
        else {
            continue;
        };
        let negotiated: Vec<&str0m::format::PayloadParams> = rtc
            .codec_config()
            .params()
            .iter()
            .filter(|p| m.remote_pts().contains(&p.pt()))
            .collect();
        // The payload types of the first codec the answer took: a publisher sends one.
        let Some(first) = negotiated.first() else {
            continue;
        };
        let codec = first.spec().codec;
        let pt = *first.pt();
        let track = match codec {
            RtcCodec::H264 => Track::new(
                Codec::H264 {
                    sps: None,
                    pps: None,
                },
                90000,
            ),
            RtcCodec::Opus => Track::new(Codec::Opus { channels: 2 }, 48000),
            RtcCodec::Vp8 | RtcCodec::Vp9 | RtcCodec::Av1 => Track::new(
                Codec::Other(crate::core::OtherCodec {
                    media: "video".into(),
                    payload_type: pt,
                    rtpmap: Some(format!("{}/90000", codec.to_string().to_ascii_uppercase())),
                    fmtp: None,
                }),
                90000,
            ),
            _ => continue,
        };
        for p in negotiated.iter().filter(|p| p.spec().codec == codec) {
            by_pt.insert(p.pt(), tracks.len());
        }
        tracks.push(crate::format::sdp::AnnouncedMedia {
            track,
            payload_type: pt,
            control: None,
            fmtp: Default::default(),
        });
    }
    if tracks.is_empty() {
        return Err(
            "the offer has no video (H.264, VP8, VP9, AV1) or Opus audio to publish".into(),
        );
    }
    Ok(PublishTracks { tracks, by_pt })
}

/// What a publisher sends: its tracks (as the ingest's announced media) and the media
/// index of each payload type.
pub(crate) struct PublishTracks {
    pub tracks: Vec<crate::format::sdp::AnnouncedMedia>,
    pub by_pt: HashMap<Pt, usize>,
}
