//! What an RTSP reader over TCP is sent for the stream: RTP and RTCP interleaved on
//! the connection, one shared buffer per unit where the channels are the usual
//! 2 × track, the packets with this reader's channel headers otherwise.

use super::transport::TrackTransport;
use crate::core::{Encoder, Form, FormKey, StreamItem, UnitEntry};
use bytes::Bytes;
use std::collections::VecDeque;

pub(crate) struct PlayEncoder {
    /// Per stream track; `None` for tracks the client did not set up.
    pub(crate) tracks: Vec<Option<TrackTransport>>,
}

impl PlayEncoder {
    /// For a reader whose tracks all go over the connection.
    pub(crate) fn tcp_only(tracks: &[Option<TrackTransport>]) -> Option<PlayEncoder> {
        tracks
            .iter()
            .flatten()
            .all(|t| matches!(t, TrackTransport::Tcp { .. }))
            .then(|| PlayEncoder {
                tracks: tracks.to_vec(),
            })
    }
}

impl Encoder for PlayEncoder {
    fn encode(&mut self, item: &StreamItem, out: &mut VecDeque<Bytes>) {
        encode_tcp(&self.tracks, item, out);
    }
}

/// The unit's RTP packets with RTSP interleaved framing (`$`, channel, length) on
/// channel 2 × track, as almost every TCP reader sets up: one buffer for all of them.
pub struct Interleaved;

impl Form for Interleaved {
    type Out = Bytes;
    fn key() -> &'static FormKey {
        static KEY: FormKey = FormKey::new();
        &KEY
    }
    fn build(e: &UnitEntry) -> Bytes {
        let ch = (2 * e.unit.track) as u8;
        let mut out = Vec::with_capacity(e.rtp.iter().map(|p| p.len() + 4).sum());
        for p in &e.rtp {
            let len = p.len().min(usize::from(u16::MAX));
            out.push(b'$');
            out.push(ch);
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&p[..len]);
        }
        Bytes::from(out)
    }
}

/// The track, packets and kind (RTCP or not) of a stream item.
pub(crate) fn packets(item: &StreamItem) -> (usize, &[Bytes], bool) {
    match item {
        StreamItem::Unit(e) => (e.unit.track, &e.rtp, false),
        StreamItem::Rtcp { track, packet } => (*track, std::slice::from_ref(packet), true),
    }
}

/// Appends what goes out on the connection for `item`: its tracks over TCP only.
pub(crate) fn encode_tcp(
    tracks: &[Option<TrackTransport>],
    item: &StreamItem,
    out: &mut VecDeque<Bytes>,
) {
    let (track, packets, rtcp) = packets(item);
    match tracks.get(track).copied().flatten() {
        Some(TrackTransport::Tcp { rtp_channel, .. })
            if !rtcp && usize::from(rtp_channel) == 2 * track =>
        {
            if let StreamItem::Unit(e) = item {
                out.push_back(e.form::<Interleaved>().clone());
            }
        }
        Some(TrackTransport::Tcp {
            rtp_channel,
            rtcp_channel,
        }) => {
            let ch = if rtcp { rtcp_channel } else { rtp_channel };
            for pkt in packets {
                let len = (pkt.len().min(usize::from(u16::MAX)) as u16).to_be_bytes();
                out.push_back(Bytes::copy_from_slice(&[b'$', ch, len[0], len[1]]));
                out.push_back(pkt.clone());
            }
        }
        // UDP tracks go out of the shared RTP/RTCP sockets (see `conn`).
        Some(TrackTransport::Udp { .. }) => {}
        // The path's multicast sender writes the group's packets once for all.
        Some(TrackTransport::Multicast { .. }) | None => {}
    }
}
