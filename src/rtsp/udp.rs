//! The server's shared RTP/RTCP UDP sockets (`rtpAddress`, `rtcpAddress`): incoming
//! packets are routed by source address to the session that set that address up.

use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A packet received for a session.
#[derive(Debug)]
pub struct UdpIn {
    pub track: usize,
    pub rtcp: bool,
    pub data: Bytes,
}

type Routes = Mutex<HashMap<SocketAddr, (usize, mpsc::Sender<UdpIn>)>>;

pub struct UdpPair {
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    rtp_routes: Routes,
    rtcp_routes: Routes,
}

fn lock(r: &Routes) -> MutexGuard<'_, HashMap<SocketAddr, (usize, mpsc::Sender<UdpIn>)>> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

impl UdpPair {
    /// Binds both sockets, with a kernel receive buffer of `rcvbuf` bytes (0: the OS's
    /// default; `udpReadBufferSize`). With port 0 for both, finds a free even/odd pair.
    pub async fn bind(
        rtp: SocketAddr,
        rtcp: SocketAddr,
        rcvbuf: usize,
    ) -> std::io::Result<Arc<UdpPair>> {
        let (a, b) = if rtp.port() == 0 {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let a = UdpSocket::bind(rtp).await?;
                let port = a.local_addr()?.port();
                if port % 2 == 0 && port < u16::MAX {
                    let mut r = rtcp;
                    r.set_port(port + 1);
                    if let Ok(b) = UdpSocket::bind(r).await {
                        break (a, b);
                    }
                }
                if attempt > 100 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        "no free RTP/RTCP port pair",
                    ));
                }
            }
        } else {
            (UdpSocket::bind(rtp).await?, UdpSocket::bind(rtcp).await?)
        };
        if rcvbuf > 0 {
            for s in [&a, &b] {
                socket2::SockRef::from(s).set_recv_buffer_size(rcvbuf)?;
            }
        }
        Ok(Arc::new(UdpPair {
            rtp: Arc::new(a),
            rtcp: Arc::new(b),
            rtp_routes: Mutex::new(HashMap::new()),
            rtcp_routes: Mutex::new(HashMap::new()),
        }))
    }

    pub fn ports(&self) -> (u16, u16) {
        let p = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
        (p(&self.rtp), p(&self.rtcp))
    }

    /// Routes packets from `from` (on the RTP or RTCP socket) to a session until the guard drops.
    pub fn route(
        self: &Arc<Self>,
        from: SocketAddr,
        rtcp: bool,
        track: usize,
        tx: mpsc::Sender<UdpIn>,
    ) -> RouteGuard {
        let routes = if rtcp {
            &self.rtcp_routes
        } else {
            &self.rtp_routes
        };
        lock(routes).insert(from, (track, tx));
        RouteGuard {
            pair: self.clone(),
            from,
            rtcp,
        }
    }

    /// Receive loops for both sockets; they end with `shutdown`.
    pub fn spawn_receivers(self: &Arc<Self>, shutdown: CancellationToken) {
        for rtcp in [false, true] {
            let pair = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = pair.recv_loop(rtcp) => {}
                }
            });
        }
    }

    async fn recv_loop(&self, rtcp: bool) {
        let (sock, routes) = if rtcp {
            (&self.rtcp, &self.rtcp_routes)
        } else {
            (&self.rtp, &self.rtp_routes)
        };
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            buf.clear();
            buf.reserve(65536);
            let from = match sock.recv_buf_from(&mut buf).await {
                Ok((_, from)) => from,
                Err(e) => {
                    // ICMP port unreachable from a vanished reader shows up here on Linux.
                    tracing::trace!("UDP receive error: {e}");
                    continue;
                }
            };
            let data = buf.split().freeze();
            let route = lock(routes).get(&from).map(|(t, tx)| (*t, tx.clone()));
            if let Some((track, tx)) = route {
                // A session that can't keep up loses packets, as UDP would.
                let _ = tx.try_send(UdpIn { track, rtcp, data });
            } else {
                tracing::trace!(%from, "UDP packet from unknown source ignored");
            }
        }
    }
}

pub struct RouteGuard {
    pair: Arc<UdpPair>,
    from: SocketAddr,
    rtcp: bool,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let routes = if self.rtcp {
            &self.pair.rtcp_routes
        } else {
            &self.pair.rtp_routes
        };
        lock(routes).remove(&self.from);
    }
}

/// Packets per `sendmmsg` call.
const MMSG_BATCH: usize = 64;

/// Sends `packets` to `to` in as few system calls as the OS allows (`sendmmsg` on
/// Linux: a reader's batch of RTP packets costs one call, not one per packet). Waits
/// while the socket buffer is full; other errors drop the rest, as UDP loss would.
/// Returns the bytes sent.
pub async fn send_all(sock: &UdpSocket, to: SocketAddr, packets: &[Bytes]) -> usize {
    let mut sent = 0;
    let mut bytes = 0;
    while sent < packets.len() {
        let batch = &packets[sent..packets.len().min(sent + MMSG_BATCH)];
        match send_batch(sock, to, batch).await {
            Ok(n) if n > 0 => {
                bytes += batch[..n].iter().map(Bytes::len).sum::<usize>();
                sent += n;
            }
            _ => break,
        }
    }
    bytes
}

#[cfg(target_os = "linux")]
async fn send_batch(sock: &UdpSocket, to: SocketAddr, batch: &[Bytes]) -> std::io::Result<usize> {
    let addr = socket2::SockAddr::from(to);
    loop {
        sock.writable().await?;
        match sock.try_io(tokio::io::Interest::WRITABLE, || {
            sendmmsg(sock, &addr, batch)
        }) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

#[cfg(target_os = "linux")]
fn sendmmsg(sock: &UdpSocket, addr: &socket2::SockAddr, batch: &[Bytes]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut iov: Vec<libc::iovec> = batch
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths).
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch.len()];
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
        m.msg_hdr.msg_namelen = addr.len();
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: msgs, iov, the packets and addr outlive the call; vlen is msgs.len().
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(not(target_os = "linux"))]
async fn send_batch(sock: &UdpSocket, to: SocketAddr, batch: &[Bytes]) -> std::io::Result<usize> {
    for (i, p) in batch.iter().enumerate() {
        if let Err(e) = sock.send_to(p, to).await {
            return if i == 0 { Err(e) } else { Ok(i) };
        }
    }
    Ok(batch.len())
}
