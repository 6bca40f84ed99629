//! Where a path's media sequence starts: above every number an earlier muxer of the
//! path used, so that a player or a cache holding a playlist never sees numbers go back
//! when the muxer restarts (idle close, a listener restart, the server's restart).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The next unused number of paths whose muxer ended ahead of the clock.
static AHEAD: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

/// Seconds since 1970: the floor of every first number. A muxer cuts at most one
/// segment a second at the shortest usual `hlsSegmentDuration`, so a muxer started
/// later (in this process or the next) starts above the numbers of one that ended.
fn clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first media sequence number for a new muxer of `path`.
pub fn first(path: &str) -> u64 {
    let ahead = AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    let remembered = ahead.as_ref().and_then(|m| m.get(path)).copied();
    remembered.unwrap_or(0).max(clock())
}

/// Records that a muxer of `path` ended with `next` as its first unused number.
pub fn ended(path: &str, next: u64) {
    let now = clock();
    let mut ahead = AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    let map = ahead.get_or_insert_with(HashMap::new);
    // Only numbers ahead of the clock need remembering; the rest go (bounds the map).
    map.retain(|_, n| *n > now);
    match next > now {
        true => map.insert(path.to_string(), next),
        false => map.remove(path),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_clock() {
        let c = clock();
        let f = first("seq-test/clock");
        assert!(f >= c && f <= c + 1, "{f} vs {c}");
    }

    #[test]
    fn a_later_muxer_starts_above_one_that_ran_ahead() {
        let far = clock() + 1000;
        ended("seq-test/ahead", far);
        assert_eq!(first("seq-test/ahead"), far);
        assert!(first("seq-test/other") < far);
        // Behind the clock: forgotten, the clock is above it anyway.
        ended("seq-test/ahead", 5);
        assert!(first("seq-test/ahead") >= clock());
    }
}
