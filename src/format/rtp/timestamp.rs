//! RTP timestamps (32-bit, random start) → unit timestamps on the stream timeline.

use std::time::Duration;

/// Unwraps a track's 32-bit RTP timestamps and places the track's first packet at
/// the time it arrived relative to the stream start, so tracks that start together
/// stay in sync although each RTP clock starts at a random value.
#[derive(Debug)]
pub struct TimestampMapper {
    clock_rate: u32,
    last: Option<(u32, i64)>,
}

impl TimestampMapper {
    pub fn new(clock_rate: u32) -> Self {
        TimestampMapper {
            clock_rate,
            last: None,
        }
    }

    /// `since_start` is only used for the first packet.
    pub fn map(&mut self, rtp_ts: u32, since_start: Duration) -> i64 {
        let ext = match self.last {
            None => (since_start.as_secs_f64() * f64::from(self.clock_rate)) as i64,
            Some((prev, prev_ext)) => prev_ext + i64::from(rtp_ts.wrapping_sub(prev) as i32),
        };
        self.last = Some((rtp_ts, ext));
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_and_offsets() {
        let mut m = TimestampMapper::new(90000);
        assert_eq!(m.map(u32::MAX - 100, Duration::from_secs(1)), 90000);
        assert_eq!(m.map(99, Duration::ZERO), 90000 + 200);
        // B-frames go backwards a little.
        assert_eq!(m.map(9, Duration::ZERO), 90000 + 110);
    }
}
