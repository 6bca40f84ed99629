//! The wall-clock time at a stream's time 0, as a reader of the stream estimates it:
//! the earliest "now minus unit time" seen. Stream timelines start where publishers
//! put them (RTSP ingest starts a second ahead) and units replayed from the GOP cache
//! arrive late, so the earliest estimate is the least delayed one.

use std::time::{Duration, SystemTime};

#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock {
    epoch: Option<SystemTime>,
}

impl WallClock {
    /// Takes in a unit at `dts` (track clock `clock`) seen at `now`; returns the
    /// epoch when this unit moved it earlier.
    pub fn observe(&mut self, dts: i64, clock: u32, now: SystemTime) -> Option<SystemTime> {
        let secs = dts as f64 / f64::from(clock.max(1));
        let d = Duration::try_from_secs_f64(secs.abs()).ok()?;
        let candidate = if secs >= 0.0 {
            now.checked_sub(d)
        } else {
            now.checked_add(d)
        }?;
        if self.epoch.is_some_and(|e| candidate >= e) {
            return None;
        }
        self.epoch = Some(candidate);
        self.epoch
    }

    /// The estimate so far.
    pub fn epoch(&self) -> Option<SystemTime> {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_earliest_estimate() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut c = WallClock::default();
        assert_eq!(
            c.observe(90_000, 90_000, t0),
            Some(t0 - Duration::from_secs(1))
        );
        // Late by 0.5 s: not earlier, so no change.
        assert_eq!(
            c.observe(180_000, 90_000, t0 + Duration::from_millis(1500)),
            None
        );
        // Early: the estimate moves.
        let e = c.observe(180_000, 90_000, t0 + Duration::from_millis(900));
        assert_eq!(e, Some(t0 - Duration::from_millis(1100)));
        assert_eq!(c.epoch(), e);
    }
}
