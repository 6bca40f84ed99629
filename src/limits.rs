//! Connection limits every TCP listener applies as it accepts (`maxConnections` over
//! the whole server, `maxConnectionsPerIP` per client address): a connection over a
//! limit is closed at once, logged once per burst with the address and the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Refusals are reported at most this often (a flood is one line, not thousands).
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The server's open connections, overall and per client address.
#[derive(Default)]
pub struct ConnGate {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refused: BurstLog,
}

/// Counts events that are each worth a log line alone but not a thousand of them in a
/// flood: the first is reported, then at most one report per `REPORT_EVERY`.
#[derive(Default)]
pub struct BurstLog(Mutex<Burst>);

#[derive(Default)]
struct Burst {
    since_report: u64,
    last_report: Option<Instant>,
}

impl BurstLog {
    pub const fn new() -> Self {
        BurstLog(Mutex::new(Burst {
            since_report: 0,
            last_report: None,
        }))
    }

    /// Counts one event; `Some(n)` when it is time to report the `n` since the last.
    pub fn hit(&self) -> Option<u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).hit()
    }
}

impl Burst {
    fn hit(&mut self) -> Option<u64> {
        self.since_report += 1;
        let now = Instant::now();
        if self.last_report.is_some_and(|t| now - t < REPORT_EVERY) {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.since_report))
    }
}

/// A `BurstLog` per key (say a client address and a reason): a flood from one client is
/// one line, and each distinct client or reason is still seen. Keys idle for longer
/// than a report period are forgotten once many are held, and all of them in a flood.
pub struct KeyedBurstLog<K>(Mutex<Option<HashMap<K, Burst>>>);

/// Keys held before idle ones are dropped.
const KEYS: usize = 4096;

impl<K: std::hash::Hash + Eq> Default for KeyedBurstLog<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: std::hash::Hash + Eq> KeyedBurstLog<K> {
    pub const fn new() -> Self {
        KeyedBurstLog(Mutex::new(None))
    }

    /// Counts one event of `key`; `Some(n)` when it is time to report the `n` since the
    /// last report of that key.
    pub fn hit(&self, key: K) -> Option<u64> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let map = seen.get_or_insert_with(HashMap::new);
        if map.len() >= KEYS {
            map.retain(|_, b| b.last_report.is_some_and(|t| t.elapsed() < REPORT_EVERY));
            if map.len() >= KEYS {
                // A flood of distinct keys: their counts are lost, the memory is bounded.
                map.clear();
            }
        }
        map.entry(key).or_default().hit()
    }
}

/// The limits in force; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub total: usize,
    pub per_ip: usize,
}

/// An admitted connection's place; given back when dropped (the connection ended).
pub struct Admitted {
    gate: Arc<ConnGate>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.gate.lock();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// What a listener calls for each accepted connection (`None`: close it).
pub type Admit = Arc<dyn Fn(IpAddr) -> Option<Admitted> + Send + Sync>;

impl ConnGate {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a place for a connection from `ip` under `limits`; `None` (logged once per
    /// burst, naming `what` listener) when one is full.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limits: Limits, what: &str) -> Option<Admitted> {
        let mut m = self.lock();
        let total = self.total.load(Ordering::Relaxed);
        let from_ip = m.get(&ip).copied().unwrap_or(0);
        let full = if limits.total > 0 && total >= limits.total {
            Some(format!("maxConnections ({})", limits.total))
        } else if limits.per_ip > 0 && from_ip >= limits.per_ip {
            Some(format!("maxConnectionsPerIP ({})", limits.per_ip))
        } else {
            None
        };
        if let Some(limit) = full {
            drop(m);
            self.refuse(ip, &limit, what);
            return None;
        }
        *m.entry(ip).or_default() += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            gate: self.clone(),
            ip,
        })
    }

    fn refuse(&self, ip: IpAddr, limit: &str, what: &str) {
        if let Some(n) = self.refused.hit() {
            tracing::warn!(
                peer = %ip,
                "{what}: connection refused, {limit} reached ({n} refused since the last report)"
            );
        }
    }
}

/// Raises the soft limit on open files to the hard one: a server of thousands of
/// readers needs more than the usual 1024. Returns the limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: get/setrlimit on a local struct.
        unsafe {
            let mut l = std::mem::zeroed::<libc::rlimit>();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return None;
            }
            if l.rlim_cur < l.rlim_max {
                let mut raised = l;
                raised.rlim_cur = l.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    return Some(raised.rlim_cur as u64);
                }
            }
            Some(l.rlim_cur as u64)
        }
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keyed_bursts_report_each_key_once_then_count() {
        let log = KeyedBurstLog::new();
        assert_eq!(log.hit((ip("10.0.0.1"), "bad")), Some(1));
        assert_eq!(log.hit((ip("10.0.0.1"), "bad")), None);
        assert_eq!(log.hit((ip("10.0.0.1"), "bad")), None);
        // Another reason, another address: each seen at once.
        assert_eq!(log.hit((ip("10.0.0.1"), "worse")), Some(1));
        assert_eq!(log.hit((ip("10.0.0.2"), "bad")), Some(1));
        // A flood of distinct keys is held to a bound.
        for i in 0..(KEYS as u32 * 2) {
            log.hit((IpAddr::from(i.to_be_bytes()), "scan"));
        }
        let held = log.0.lock().unwrap().as_ref().map_or(0, |m| m.len());
        assert!(held <= KEYS, "{held}");
    }

    #[test]
    fn limits_overall_and_per_address_and_places_come_back() {
        let gate = Arc::new(ConnGate::default());
        let limits = Limits {
            total: 3,
            per_ip: 2,
        };
        let a1 = gate.admit(ip("10.0.0.1"), limits, "t").unwrap();
        let _a2 = gate.admit(ip("10.0.0.1"), limits, "t").unwrap();
        assert!(
            gate.admit(ip("10.0.0.1"), limits, "t").is_none(),
            "per address"
        );
        let _b1 = gate.admit(ip("10.0.0.2"), limits, "t").unwrap();
        assert!(gate.admit(ip("10.0.0.3"), limits, "t").is_none(), "overall");
        assert_eq!(gate.open(), 3);
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit(ip("10.0.0.1"), limits, "t").unwrap();
        let unlimited = Limits::default();
        let many: Vec<_> = (0..100)
            .map(|_| gate.admit(ip("10.0.0.9"), unlimited, "t").unwrap())
            .collect();
        assert_eq!(gate.open(), 103);
        drop(many);
        assert_eq!(gate.open(), 3);
        assert_eq!(
            gate.lock().len(),
            2,
            "addresses without connections are forgotten"
        );
    }
}
