//! RTSP multicast (`rtspTransports: multicast`): each track of a read path gets a group
//! from `multicastIPRange`, and one sender per path writes every RTP packet once to its
//! track's group, whatever the number of readers. The groups go back to the range when
//! the path's last multicast reader leaves.

use super::udp::send_all;
use crate::config::MulticastRange;
use crate::core::{Stream, StreamItem};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Hops a multicast packet may take, as MediaMTX advertises.
pub const TTL: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum MulticastError {
    #[error("multicastIPRange has no free address left")]
    RangeExhausted,
    #[error("the stream has ended")]
    StreamClosed,
}

/// The server's multicast side: the range's free addresses and the sending sockets.
pub struct Multicast {
    range: MulticastRange,
    pub rtp_port: u16,
    pub rtcp_port: u16,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    used: Mutex<HashSet<Ipv4Addr>>,
    paths: Mutex<HashMap<String, Weak<PathGroups>>>,
}

/// One path's groups and sender; held by its multicast readers.
pub struct PathGroups {
    /// Group of each stream track.
    pub groups: Vec<Ipv4Addr>,
    stream: Weak<Stream>,
    owner: Arc<Multicast>,
    stop: CancellationToken,
    /// Cancelled at the first PLAY: the sender waits for it, so the GOP it starts with
    /// reaches a reader that has joined the groups.
    playing: CancellationToken,
}

impl PathGroups {
    pub fn play(&self) {
        self.playing.cancel();
    }
}

impl Drop for PathGroups {
    fn drop(&mut self) {
        self.stop.cancel();
        let mut used = self.owner.used.lock().unwrap_or_else(|e| e.into_inner());
        for g in &self.groups {
            used.remove(g);
        }
    }
}

fn sender_socket() -> std::io::Result<Arc<UdpSocket>> {
    let s = std::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0)))?;
    s.set_multicast_ttl_v4(TTL)?;
    s.set_multicast_loop_v4(true)?;
    s.set_nonblocking(true)?;
    Ok(Arc::new(UdpSocket::from_std(s)?))
}

impl Multicast {
    pub fn new(range: MulticastRange, rtp_port: u16, rtcp_port: u16) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Multicast {
            range,
            rtp_port,
            rtcp_port,
            rtp: sender_socket()?,
            rtcp: sender_socket()?,
            used: Mutex::new(HashSet::new()),
            paths: Mutex::new(HashMap::new()),
        }))
    }

    /// The groups of `path`'s `stream`, allocated and sending from the first caller on.
    pub fn join(
        self: &Arc<Self>,
        path: &str,
        stream: &Arc<Stream>,
    ) -> Result<Arc<PathGroups>, MulticastError> {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = paths.get(path).and_then(Weak::upgrade) {
            if g.stream.upgrade().is_some_and(|s| Arc::ptr_eq(&s, stream)) {
                return Ok(g);
            }
        }
        paths.retain(|_, g| g.strong_count() > 0);
        if stream.is_closed() {
            return Err(MulticastError::StreamClosed);
        }
        let groups = {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            let mut free = self.range.hosts().filter(|ip| !used.contains(ip));
            let groups: Vec<Ipv4Addr> = free.by_ref().take(stream.tracks().len()).collect();
            if groups.len() < stream.tracks().len() {
                return Err(MulticastError::RangeExhausted);
            }
            used.extend(groups.iter().copied());
            groups
        };
        let g = Arc::new(PathGroups {
            groups: groups.clone(),
            stream: Arc::downgrade(stream),
            owner: self.clone(),
            stop: CancellationToken::new(),
            playing: CancellationToken::new(),
        });
        tracing::info!(%path, groups = ?groups, "RTSP multicast started");
        tokio::spawn(send(
            self.clone(),
            stream.clone(),
            groups,
            g.stop.clone(),
            g.playing.clone(),
        ));
        paths.insert(path.to_string(), Arc::downgrade(&g));
        Ok(g)
    }
}

/// Writes the stream's RTP and RTCP to the groups until the stream ends or the last
/// reader leaves. Loss on the way is the network's, as with any multicast.
async fn send(
    mc: Arc<Multicast>,
    stream: Arc<Stream>,
    groups: Vec<Ipv4Addr>,
    stop: CancellationToken,
    playing: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = playing.cancelled() => {}
    }
    // Start at the GOP as of the first PLAY, not as of SETUP.
    let Some(mut reader) = stream.subscribe_with_lead() else {
        return;
    };
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return,
            item = reader.next() => item,
        };
        let (track, pkts, sock, port) = match &item {
            Ok(StreamItem::Unit(e)) => (e.unit.track, &e.rtp[..], &mc.rtp, mc.rtp_port),
            Ok(StreamItem::Rtcp { track, packet }) => {
                (*track, std::slice::from_ref(packet), &mc.rtcp, mc.rtcp_port)
            }
            Err(_) => return,
        };
        let Some(group) = groups.get(track) else {
            continue;
        };
        send_all(sock, SocketAddr::from((*group, port)), pkts).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, StreamConfig};

    #[tokio::test]
    async fn groups_per_track_shared_by_readers_and_released_with_the_last() {
        let range: MulticastRange = "224.1.0.0/30".parse().unwrap();
        let mc = Multicast::new(range, 8002, 8003).unwrap();
        let tracks = vec![fixtures::h264(), fixtures::h264()];
        let a = Stream::new(tracks.clone(), StreamConfig::default());
        let first = mc.join("a", &a).unwrap();
        let second = mc.join("a", &a).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(
            first.groups,
            [Ipv4Addr::new(224, 1, 0, 1), Ipv4Addr::new(224, 1, 0, 2)]
        );
        // Three usable addresses in a /30: another two-track path doesn't fit.
        let b = Stream::new(tracks, StreamConfig::default());
        assert!(matches!(
            mc.join("b", &b),
            Err(MulticastError::RangeExhausted)
        ));
        drop((first, second));
        let g = mc.join("b", &b).unwrap();
        assert_eq!(
            g.groups,
            [Ipv4Addr::new(224, 1, 0, 1), Ipv4Addr::new(224, 1, 0, 2)]
        );
    }

    #[test]
    fn range_parsing() {
        let r: MulticastRange = "224.1.7.9/16".parse().unwrap();
        assert_eq!((r.base, r.prefix), (Ipv4Addr::new(224, 1, 0, 0), 16));
        assert!("10.0.0.0/8".parse::<MulticastRange>().is_err());
        assert!("224.1.0.0".parse::<MulticastRange>().is_err());
        assert!("224.1.0.0/40".parse::<MulticastRange>().is_err());
    }
}
