//! Server-added latency, aligned by content: a publisher notes when each video frame
//! has left it, a reader when the same frame arrives. Frames are matched by a hash of
//! their largest NAL unit (the coded slice, which every protocol carries unchanged,
//! whatever it does with parameter sets and delimiters); publisher and readers run in
//! one process, so one clock measures both ends.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// When each frame was last sent (a looped clip sends the same frame once per loop;
/// the latest send is the one a reader can be getting).
#[derive(Default)]
pub struct Clock {
    sent: Mutex<HashMap<u64, Instant>>,
}

pub static CLOCK: LazyLock<Clock> = LazyLock::new(Clock::default);

impl Clock {
    pub fn sent(&self, key: u64, at: Instant) {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, at);
    }

    /// How long after its send the frame `key` arrived at `at`; `None` for a frame
    /// no publisher of this run sent.
    pub fn latency(&self, key: u64, at: Instant) -> Option<Duration> {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.get(&key).and_then(|s| at.checked_duration_since(*s))
    }
}

fn hash(nal: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    nal.hash(&mut h);
    h.finish()
}

/// The key of an access unit of 4-byte length-prefixed NAL units (AVCC/HVCC).
pub fn key_length_prefixed(mut data: &[u8]) -> Option<u64> {
    let mut largest: &[u8] = &[];
    while data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let nal = data.get(4..4 + len)?;
        if nal.len() > largest.len() {
            largest = nal;
        }
        data = &data[4 + len..];
    }
    (!largest.is_empty()).then(|| hash(largest))
}

/// The key of an access unit in Annex B form (start codes: MPEG-TS PES payloads).
pub fn key_annex_b(data: &[u8]) -> Option<u64> {
    let mut largest: &[u8] = &[];
    let mut rest = data;
    while let Some(at) = find_start_code(rest) {
        rest = &rest[at + 3..];
        let end = find_start_code(rest).unwrap_or(rest.len());
        // Zeros before the next start code belong to it (its 4-byte form), not the NAL.
        let mut nal = &rest[..end];
        while let [head @ .., 0] = nal {
            nal = head;
        }
        if nal.len() > largest.len() {
            largest = nal;
        }
    }
    (!largest.is_empty()).then(|| hash(largest))
}

fn find_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1])
}

/// The key of an FLV video tag body holding a coded frame: classic AVC/HEVC (5-byte
/// header) or Enhanced RTMP (`CodedFrames` with a composition time, `CodedFramesX`
/// without).
pub fn key_flv(body: &[u8]) -> Option<u64> {
    let b0 = *body.first()?;
    let start = if b0 & 0x80 != 0 {
        match b0 & 0x0f {
            1 => 8,
            3 => 5,
            _ => return None,
        }
    } else {
        match (b0 & 0x0f, body.get(1)) {
            (7 | 12, Some(1)) => 5,
            _ => return None,
        }
    };
    key_length_prefixed(body.get(start..)?)
}

/// Rebuilds the largest NAL unit of each RTP access unit (H.264 RFC 6184 / H.265
/// RFC 7798: single NAL units, fragments; aggregates hold only small units).
#[derive(Default)]
pub struct RtpFrames {
    pub h265: bool,
    /// The fragmented NAL unit being put together.
    fragment: Vec<u8>,
    largest: Option<(usize, u64)>,
}

impl RtpFrames {
    pub fn new(h265: bool) -> RtpFrames {
        RtpFrames {
            h265,
            ..Default::default()
        }
    }

    /// One RTP payload; at the access unit's last packet (`marker`), its key.
    pub fn packet(&mut self, payload: &[u8], marker: bool) -> Option<u64> {
        // (NAL header length, fragment type, aggregate type)
        let (hdr, fu, aggregate) = if self.h265 { (2, 49, 48) } else { (1, 28, 24) };
        let typ = match (payload.first(), self.h265) {
            (None, _) => return None,
            (Some(b), true) => (b >> 1) & 0x3f,
            (Some(b), false) => b & 0x1f,
        };
        if typ == fu && payload.len() > hdr + 1 {
            let fu_header = payload[hdr];
            let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
            if start {
                self.fragment.clear();
                if self.h265 {
                    let t = fu_header & 0x3f;
                    self.fragment.push((payload[0] & 0x81) | (t << 1));
                    self.fragment.push(payload[1]);
                } else {
                    self.fragment.push((payload[0] & 0xe0) | (fu_header & 0x1f));
                }
            }
            self.fragment.extend_from_slice(&payload[hdr + 1..]);
            if end {
                let nal = std::mem::take(&mut self.fragment);
                self.offer(&nal);
            }
        } else if typ != aggregate {
            self.offer(payload);
        }
        if marker {
            return self.largest.take().map(|(_, k)| k);
        }
        None
    }

    fn offer(&mut self, nal: &[u8]) {
        if self.largest.is_none_or(|(n, _)| nal.len() > n) {
            self.largest = Some((nal.len(), hash(nal)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn flv_and_rtp_forms_of_a_frame_share_a_key() {
        let sps: &[u8] = &[0x67, 1, 2, 3];
        let slice: Vec<u8> = std::iter::once(0x65)
            .chain((0..3000).map(|i| i as u8))
            .collect();
        let mut body = vec![0x17, 1, 0, 0, 0];
        body.extend(avcc(&[sps, &slice]));
        let flv = key_flv(&body).unwrap();
        // Enhanced RTMP CodedFramesX of the same frame, without the parameter set.
        let mut ex = vec![0x93, b'a', b'v', b'c', b'1'];
        ex.extend(avcc(&[&slice]));
        assert_eq!(key_flv(&ex), Some(flv));
        // Sequence headers aren't frames.
        assert_eq!(key_flv(&[0x17, 0, 0, 0, 0, 1]), None);

        // RTP: the SPS alone, then the slice in three FU-A fragments.
        let mut rtp = RtpFrames::default();
        assert_eq!(rtp.packet(sps, false), None);
        let body = &slice[1..];
        let parts = [&body[..1000], &body[1000..2000], &body[2000..]];
        let mut key = None;
        for (i, p) in parts.iter().enumerate() {
            let fu_header =
                (slice[0] & 0x1f) | if i == 0 { 0x80 } else { 0 } | if i == 2 { 0x40 } else { 0 };
            let mut pkt = vec![(slice[0] & 0xe0) | 28, fu_header];
            pkt.extend_from_slice(p);
            key = rtp.packet(&pkt, i == 2);
        }
        assert_eq!(key, Some(flv));
        // The next access unit starts afresh.
        assert_eq!(rtp.packet(sps, true), Some(hash(sps)));
    }

    #[test]
    fn annex_b_and_length_prefixed_forms_share_a_key() {
        let aud: &[u8] = &[0x09, 0xf0];
        let sps: &[u8] = &[0x67, 0x42, 0, 0x1e];
        let slice: Vec<u8> = std::iter::once(0x41)
            .chain((1..2000).map(|i| (i % 251 + 1) as u8))
            .collect();
        let want = key_length_prefixed(&avcc(&[sps, &slice]));
        let mut ts = vec![0, 0, 0, 1];
        ts.extend_from_slice(aud);
        ts.extend_from_slice(&[0, 0, 0, 1]);
        ts.extend_from_slice(sps);
        ts.extend_from_slice(&[0, 0, 1]);
        ts.extend_from_slice(&slice);
        assert_eq!(key_annex_b(&ts), want);
        // The slice's trailing zero before a 4-byte start code isn't part of it.
        ts.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
        assert_eq!(key_annex_b(&ts), want);
        assert_eq!(key_annex_b(&[1, 2, 3]), None);
    }

    #[test]
    fn h265_fragments_rebuild_the_nal_header() {
        let nal: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain((0..2000).map(|i| (i * 7) as u8))
            .collect();
        let want = key_length_prefixed(&avcc(&[&nal])).unwrap();
        let mut rtp = RtpFrames::new(true);
        let typ = (nal[0] >> 1) & 0x3f;
        let payload_hdr = [(nal[0] & 0x81) | (49 << 1), nal[1]];
        let body = &nal[2..];
        let mut key = None;
        for (i, chunk) in body.chunks(900).enumerate() {
            let last = (i + 1) * 900 >= body.len();
            let fu = typ | if i == 0 { 0x80 } else { 0 } | if last { 0x40 } else { 0 };
            let mut pkt = payload_hdr.to_vec();
            pkt.push(fu);
            pkt.extend_from_slice(chunk);
            key = rtp.packet(&pkt, last);
        }
        assert_eq!(key, Some(want));
    }

    #[test]
    fn latency_is_arrival_minus_the_latest_send() {
        let c = Clock::default();
        let t0 = Instant::now();
        c.sent(7, t0);
        assert_eq!(
            c.latency(7, t0 + Duration::from_millis(12)),
            Some(Duration::from_millis(12))
        );
        // The next loop of the clip sends the frame again: that send counts.
        c.sent(7, t0 + Duration::from_secs(10));
        assert_eq!(
            c.latency(7, t0 + Duration::from_millis(10_005)),
            Some(Duration::from_millis(5))
        );
        assert_eq!(c.latency(8, t0), None);
        // An arrival before the send it would match (a clock step) gives nothing.
        assert_eq!(c.latency(7, t0), None);
    }
}
