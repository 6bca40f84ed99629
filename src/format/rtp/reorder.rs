//! Puts RTP packets that came over a lossy, reordering path (UDP, WebRTC) back in
//! sequence order, drops duplicates and late packets, and counts the lost ones.
//! Sans-io: the caller passes the time. Written here: no crate does this alone.

use super::RtpIn;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets held waiting for a missing one, at most (bounds memory per track).
const CAPACITY: usize = 512;
/// A gap is declared lost once the oldest packet held behind it waited this long:
/// long enough for jitter and a retransmission on a short path, short enough not to
/// be seen in latency only when loss happens.
pub const MAX_WAIT: Duration = Duration::from_millis(100);
/// This many old packets in a row mean the sender restarted its sequence numbers.
const RESYNC_AFTER: u32 = 64;

#[derive(Debug, Default)]
pub struct Reorderer {
    /// Extended sequence number expected next.
    expected: Option<u64>,
    held: BTreeMap<u64, (RtpIn, Instant)>,
    old_in_a_row: u32,
}

impl Reorderer {
    /// Takes one packet; appends what is now in order to `out` and returns how many
    /// packets were given up as lost on the way.
    pub fn push(&mut self, pkt: RtpIn, now: Instant, out: &mut Vec<RtpIn>) -> u64 {
        let Some(expected) = self.expected else {
            self.expected = Some(u64::from(pkt.seq) + 1);
            out.push(pkt);
            return 0;
        };
        let rel = i64::from(pkt.seq.wrapping_sub(expected as u16) as i16);
        if rel < 0 {
            self.old_in_a_row += 1;
            if self.old_in_a_row < RESYNC_AFTER {
                return 0; // a duplicate, or later than we waited
            }
            let lost = self.flush_all(out);
            self.restart(pkt, out);
            return lost;
        }
        self.old_in_a_row = 0;
        if rel == 0 && self.held.is_empty() {
            // The usual case: the packet expected, nothing waiting.
            self.expected = Some(expected + 1);
            out.push(pkt);
            return 0;
        }
        let ext = expected + rel as u64;
        if rel as usize >= CAPACITY {
            // A jump further than we hold: the sender skipped ahead (or restarted).
            let lost = self.flush_all(out);
            self.restart(pkt, out);
            return lost;
        }
        self.held.entry(ext).or_insert((pkt, now));
        self.drain(out);
        let mut lost = 0;
        while self.held.len() >= CAPACITY || self.oldest_waited(now) >= MAX_WAIT {
            lost += self.skip_gap(out);
        }
        lost
    }

    fn restart(&mut self, pkt: RtpIn, out: &mut Vec<RtpIn>) {
        self.old_in_a_row = 0;
        self.expected = Some(u64::from(pkt.seq) + 1);
        out.push(pkt);
    }

    /// Emits the packets that follow the expected one without a gap.
    fn drain(&mut self, out: &mut Vec<RtpIn>) {
        while let Some(expected) = self.expected {
            let Some((pkt, _)) = self.held.remove(&expected) else {
                break;
            };
            out.push(pkt);
            self.expected = Some(expected + 1);
        }
    }

    /// Gives up on the first gap: counts it lost and emits what follows it.
    fn skip_gap(&mut self, out: &mut Vec<RtpIn>) -> u64 {
        let (Some(expected), Some(&first)) = (self.expected, self.held.keys().next()) else {
            return 0;
        };
        self.expected = Some(first);
        self.drain(out);
        first - expected
    }

    fn flush_all(&mut self, out: &mut Vec<RtpIn>) -> u64 {
        let mut lost = 0;
        while !self.held.is_empty() {
            lost += self.skip_gap(out);
        }
        lost
    }

    fn oldest_waited(&self, now: Instant) -> Duration {
        self.held
            .values()
            .map(|(_, t)| now.saturating_duration_since(*t))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> RtpIn {
        RtpIn {
            payload_type: 96,
            seq,
            timestamp: 0,
            ssrc: 1,
            marker: false,
            payload: bytes::Bytes::new(),
        }
    }

    fn run(r: &mut Reorderer, seqs: &[u16], now: Instant) -> (Vec<u16>, u64) {
        let mut out = Vec::new();
        let lost = seqs.iter().map(|&s| r.push(pkt(s), now, &mut out)).sum();
        (out.iter().map(|p| p.seq).collect(), lost)
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let mut r = Reorderer::default();
        let t = Instant::now();
        let (seqs, lost) = run(&mut r, &[10, 12, 13, 11, 15, 14, 16], t);
        assert_eq!(seqs, vec![10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(lost, 0);
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let mut r = Reorderer::default();
        let t = Instant::now();
        let (seqs, _) = run(&mut r, &[1, 2, 2, 3, 1], t);
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn a_gap_is_lost_after_the_wait_and_counted() {
        let mut r = Reorderer::default();
        let t = Instant::now();
        let (seqs, lost) = run(&mut r, &[1, 2, 5, 6], t);
        assert_eq!((seqs, lost), (vec![1, 2], 0));
        // The held packets go out once the oldest has waited long enough.
        let (seqs, lost) = run(&mut r, &[7], t + MAX_WAIT);
        assert_eq!((seqs, lost), (vec![5, 6, 7], 2));
        // 3 arriving now is too late.
        let (seqs, _) = run(&mut r, &[3, 8], t + MAX_WAIT);
        assert_eq!(seqs, vec![8]);
    }

    #[test]
    fn wraps_around_and_resyncs() {
        let mut r = Reorderer::default();
        let t = Instant::now();
        let (seqs, lost) = run(&mut r, &[65534, 0, 65535, 1], t);
        assert_eq!((seqs, lost), (vec![65534, 65535, 0, 1], 0));
        // A jump further than the buffer: the sender restarted; nothing is held back.
        let (seqs, _) = run(&mut r, &[30000, 30001], t);
        assert_eq!(seqs, vec![30000, 30001]);
        // A run of packets from "the past" is a restart too.
        let back: Vec<u16> = (100..100 + RESYNC_AFTER as u16 + 2).collect();
        let (seqs, _) = run(&mut r, &back, t);
        assert_eq!(seqs.first(), Some(&(100 + RESYNC_AFTER as u16 - 1)));
        assert_eq!(seqs.last(), back.last());
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Reorderer::default();
        let t = Instant::now();
        let mut out = Vec::new();
        r.push(pkt(0), t, &mut out);
        let mut lost = 0;
        for s in 2..2000u16 {
            lost += r.push(pkt(s), t, &mut out);
            assert!(r.held.len() < CAPACITY);
        }
        assert_eq!(lost, 1);
        assert_eq!(out.len(), 1999);
    }
}
