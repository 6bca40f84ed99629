//! Failed authentications: the pause before a wrong guess is answered, and one warn
//! per burst of failures from an address, in a format fail2ban can match
//! (packaging/fail2ban/): `authentication failed from <ip>: …`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one address less than this apart form a burst.
const BURST_GAP: Duration = Duration::from_secs(10);
/// Addresses remembered at most; the oldest bursts go first.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct Failures {
    bursts: Mutex<HashMap<IpAddr, Burst>>,
}

struct Burst {
    last: Instant,
    count: u64,
    logged: u64,
}

impl Failures {
    /// Records a failure of `what` (e.g. "rtsp read cam") from `ip`. The first of a
    /// burst is logged at once; the burst's count when it ends (logged with the next
    /// failure from anywhere) and at 16, 32, 64… failures.
    pub fn record(&self, ip: IpAddr, what: &str) {
        let ip = ip.to_canonical();
        let now = Instant::now();
        let mut bursts = self.bursts.lock().unwrap_or_else(|e| e.into_inner());
        bursts.retain(|other, b| {
            let over = now.duration_since(b.last) >= BURST_GAP;
            if over && b.count > b.logged {
                tracing::warn!(
                    "authentication failed from {other}: {} failures in a burst, ended",
                    b.count
                );
            }
            !over
        });
        if bursts.len() >= MAX_TRACKED && !bursts.contains_key(&ip) {
            return;
        }
        let b = bursts.entry(ip).or_insert(Burst {
            last: now,
            count: 0,
            logged: 0,
        });
        b.last = now;
        b.count += 1;
        if b.count == 1 || (b.count >= 10 && b.count.is_power_of_two() && b.count > b.logged) {
            b.logged = b.count;
            tracing::warn!(
                "authentication failed from {ip}: {what}, {} failure{} in this burst",
                b.count,
                if b.count == 1 { "" } else { "s" }
            );
        }
    }

    /// How long to hold a wrong guess before answering: 1 to 3 s, at random, so
    /// guessing is slow and timing says nothing.
    pub fn delay() -> Duration {
        Duration::from_millis(rand::random_range(1000..3000))
    }
}
