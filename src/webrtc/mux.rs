//! Which session a datagram on the shared UDP port belongs to: a STUN binding
//! request by the server's ICE username fragment in its USERNAME, anything else by
//! its source address, which a session registers only once it has answered a check
//! from there (str0m answers only checks whose integrity holds), so a forged STUN
//! request can't point another client's traffic at a session.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Addresses one session may receive from (a browser tries a few candidate pairs).
pub const MAX_ADDRS: usize = 8;

#[derive(Debug, PartialEq, Eq)]
pub enum Route<K> {
    To(K),
    Drop(&'static str),
}

#[derive(Debug)]
pub struct Mux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
    addrs: HashMap<K, Vec<SocketAddr>>,
}

impl<K> Default for Mux<K> {
    fn default() -> Self {
        Mux {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            addrs: HashMap::new(),
        }
    }
}

/// RFC 7983: a first byte of 0–3 is STUN (then DTLS 20–63, RTP/RTCP 128–191).
fn is_stun(d: &[u8]) -> bool {
    d.first().is_some_and(|b| *b < 4)
}

impl<K: Clone + Eq + std::hash::Hash> Mux<K> {
    pub fn add(&mut self, ufrag: String, key: K) {
        self.by_ufrag.insert(ufrag, key.clone());
        self.addrs.entry(key).or_default();
    }

    pub fn remove(&mut self, key: &K) {
        self.by_ufrag.retain(|_, k| k != key);
        for a in self.addrs.remove(key).unwrap_or_default() {
            self.by_addr.remove(&a);
        }
    }

    /// `from` is a peer of `key`'s (it answered a check from there). The oldest of a
    /// session's addresses makes room for a new one; one taken by another session
    /// stays with it.
    pub fn learn(&mut self, key: &K, from: SocketAddr) {
        if self.by_addr.contains_key(&from) {
            return;
        }
        let Some(list) = self.addrs.get_mut(key) else {
            return;
        };
        if list.len() == MAX_ADDRS {
            let old = list.remove(0);
            self.by_addr.remove(&old);
        }
        list.push(from);
        self.by_addr.insert(from, key.clone());
    }

    pub fn route(&self, from: SocketAddr, data: &[u8]) -> Route<K> {
        if let Some(k) = self.by_addr.get(&from) {
            return Route::To(k.clone());
        }
        if !is_stun(data) {
            return Route::Drop("not STUN, from an address no session knows");
        }
        let Ok(msg) = str0m::ice::StunMessage::parse(data) else {
            return Route::Drop("malformed STUN");
        };
        if !msg.is_binding_request() {
            return Route::Drop("STUN that is not a binding request, from an unknown address");
        }
        // USERNAME is "<our ufrag>:<theirs>".
        let Some((ours, _)) = msg.split_username() else {
            return Route::Drop("STUN binding request without a USERNAME");
        };
        match self.by_ufrag.get(ours) {
            Some(k) => Route::To(k.clone()),
            None => Route::Drop("STUN binding request for no session"),
        }
    }

    #[cfg(test)]
    fn sessions(&self) -> usize {
        self.addrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::ice::{StunMessage, TransId};

    fn binding(username: &str) -> Vec<u8> {
        let msg = StunMessage::binding_request(username, TransId::new(), true, 0, 1, false);
        let mut buf = vec![0u8; 1500];
        // MESSAGE-INTEGRITY's value doesn't matter to routing.
        let n = msg
            .to_bytes(Some(b"password"), &mut buf, |_, _| [7; 20])
            .unwrap();
        buf.truncate(n);
        buf
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn stun_goes_by_ufrag_and_media_by_learnt_address() {
        let mut m = Mux::default();
        m.add("srvA".into(), 1);
        m.add("srvB".into(), 2);
        let c1 = a("10.0.0.1:5000");
        assert_eq!(m.route(c1, &binding("srvB:cli")), Route::To(2));
        // Media from an address no session has vouched for is dropped.
        assert!(matches!(m.route(c1, &[0x80, 0x60, 0, 1]), Route::Drop(_)));
        m.learn(&2, c1);
        assert_eq!(m.route(c1, &[0x80, 0x60, 0, 1]), Route::To(2));
        assert_eq!(m.route(c1, &[22, 0xfe, 0xfd]), Route::To(2));
        // Another session can't take a learnt address over.
        m.learn(&1, c1);
        assert_eq!(m.route(c1, &[0x80]), Route::To(2));
        assert!(matches!(
            m.route(a("10.0.0.2:1"), &binding("nobody:cli")),
            Route::Drop(_)
        ));
        m.remove(&2);
        assert!(matches!(m.route(c1, &[0x80]), Route::Drop(_)));
        assert!(matches!(m.route(c1, &binding("srvB:cli")), Route::Drop(_)));
        assert_eq!(m.sessions(), 1);
    }

    #[test]
    fn a_session_keeps_its_newest_addresses() {
        let mut m = Mux::default();
        m.add("u".into(), 1);
        for port in 0..(MAX_ADDRS as u16 + 3) {
            m.learn(&1, SocketAddr::from(([10, 0, 0, 1], port)));
        }
        assert_eq!(m.by_addr.len(), MAX_ADDRS);
        assert!(matches!(
            m.route(SocketAddr::from(([10, 0, 0, 1], 0)), &[0x80]),
            Route::Drop(_)
        ));
        assert_eq!(
            m.route(SocketAddr::from(([10, 0, 0, 1], 10)), &[0x80]),
            Route::To(1)
        );
    }

    #[test]
    fn junk_is_dropped_without_a_panic() {
        let mut m = Mux::default();
        m.add("u".into(), 1);
        let from = a("10.0.0.1:1");
        for junk in [
            &[][..],
            &[0],
            &[1, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42],
            &[0xff; 40],
            &[0; 20],
        ] {
            assert!(matches!(m.route(from, junk), Route::Drop(_)));
        }
    }
}
