//! WebRTC readers (WHEP) and publishers (WHIP) on str0m: HTTP signalling and the pages
//! on `webrtcAddress`, every session's ICE, DTLS and SRTP on one UDP port
//! (`webrtcLocalUDPAddress`), each session a task of its own.

mod candidates;
mod codecs;
mod http;
pub mod mux;
mod negotiate;
mod payload;
mod session;
mod udp;

pub use negotiate::fuzz_offer;

use crate::config::Config;
use crate::core::PathManager;
use crate::server::ListenError;
use mux::{Mux, Route};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct WebRtcServer {
    pub local_addr: SocketAddr,
    /// The UDP port sessions use, when `webrtcLocalUDPAddress` isn't blank.
    pub udp_addr: Option<SocketAddr>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// A running session as the server sees it.
struct Handle {
    tx: mpsc::Sender<session::Msg>,
    secret: String,
}

/// What the HTTP handlers, the UDP reader and the sessions share.
pub(crate) struct Hub {
    manager: PathManager,
    shutdown: CancellationToken,
    /// The listener's own stop: its sessions end with it, so the port is free again.
    stop: CancellationToken,
    handshake_timeout: Duration,
    /// What sessions offer as host candidates, and this host's own addresses.
    offered: Vec<SocketAddr>,
    local_ips: Vec<IpAddr>,
    /// Taken away when the listener stops: only sessions keep it open then.
    port: Mutex<Option<Arc<udp::UdpPort>>>,
    mux: Mutex<Mux<u64>>,
    sessions: Mutex<HashMap<u64, Handle>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Datagrams dropped (no session, or its queue full), logged at most every 10 s.
    drops: Mutex<DropLog>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_from_a_shared_secret() {
        use base64::Engine;
        use hmac::Mac;
        let s = crate::config::IceServer {
            url: "turn:t.example.com:3478".into(),
            username: "AUTH_SECRET".into(),
            password: "shared".into(),
            client_only: false,
        };
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (user, pass) = ice_credentials(&s, now);
        let (expiry, rand) = user.split_once(':').unwrap();
        assert_eq!(expiry, "1086400");
        assert_eq!(rand.len(), 20);
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"shared").unwrap();
        mac.update(user.as_bytes());
        let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(pass, want);
        assert_ne!(ice_credentials(&s, now).0, user, "usernames are random");
        let plain = crate::config::IceServer {
            username: "u".into(),
            password: "p".into(),
            ..s
        };
        assert_eq!(ice_credentials(&plain, now), ("u".into(), "p".into()));
    }
}

#[derive(Default)]
struct DropLog {
    count: u64,
    last_log: Option<Instant>,
}

impl Hub {
    fn lock_sessions(&self) -> MutexGuard<'_, HashMap<u64, Handle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_mux(&self) -> MutexGuard<'_, Mux<u64>> {
        self.mux.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn learn(&self, id: u64, from: SocketAddr) {
        self.lock_mux().learn(&id, from);
    }

    fn remove(&self, id: u64) {
        self.lock_mux().remove(&id);
        self.lock_sessions().remove(&id);
    }

    /// The session whose resource is `secret`.
    fn by_secret(&self, secret: &str) -> Option<mpsc::Sender<session::Msg>> {
        use subtle::ConstantTimeEq;
        self.lock_sessions()
            .values()
            .find(|h| bool::from(h.secret.as_bytes().ct_eq(secret.as_bytes())))
            .map(|h| h.tx.clone())
    }

    /// Registers and starts a session; `false` once the listener is stopping.
    fn spawn(
        self: &Arc<Self>,
        ufrag: String,
        secret: String,
        make: impl FnOnce(u64, mpsc::Receiver<session::Msg>) -> session::Session,
    ) -> bool {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(session::QUEUE);
        self.lock_mux().add(ufrag, id);
        self.lock_sessions().insert(id, Handle { tx, secret });
        tasks.spawn(make(id, rx).run());
        true
    }

    fn dropped(&self, why: &str, from: SocketAddr) {
        let mut d = self.drops.lock().unwrap_or_else(|e| e.into_inner());
        d.count += 1;
        let now = Instant::now();
        if d.last_log
            .is_none_or(|t| now - t >= Duration::from_secs(10))
        {
            tracing::info!(
                "WebRTC UDP: dropped {} datagram(s) since the last report; latest from {from}: {why}",
                d.count
            );
            d.count = 0;
            d.last_log = Some(now);
        }
    }

    /// Routes datagrams to sessions until the listener stops.
    async fn read_udp(self: Arc<Self>, port: Arc<udp::UdpPort>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let r = tokio::select! {
                r = port.recv(&mut buf) => r,
                _ = self.stop.cancelled() => return,
            };
            let (n, from, to) = match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable and the like come back as errors on UDP.
                    tracing::debug!("WebRTC UDP: {e}");
                    continue;
                }
            };
            let data = &buf[..n];
            let route = self.lock_mux().route(from, data);
            match route {
                Route::To(id) => {
                    let tx = self.lock_sessions().get(&id).map(|h| h.tx.clone());
                    let msg = session::Msg::Datagram {
                        from,
                        to,
                        data: data.to_vec(),
                        at: Instant::now(),
                    };
                    if tx.is_none_or(|tx| tx.try_send(msg).is_err()) {
                        self.dropped("its session is gone or behind", from);
                    }
                }
                Route::Drop(why) => self.dropped(why, from),
            }
        }
    }

    /// The UDP port for a new session; `None` without one, or once stopping.
    fn port(&self) -> Option<Arc<udp::UdpPort>> {
        self.port.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ends every session and waits for them, so the port closes.
    async fn close(&self) {
        self.port.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut tasks = {
            let mut t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut *t)
        };
        while tasks.join_next().await.is_some() {}
    }
}

/// How long credentials made from an `AUTH_SECRET` stay valid (MediaMTX's figure).
const TURN_SECRET_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The username and password a client gets for an ICE server: as written or, for
/// `username: AUTH_SECRET`, a short-lived pair from the shared secret as coturn's
/// `use-auth-secret` checks them: `<expiry>:<random>` and
/// base64(HMAC-SHA1(secret, username)).
pub(crate) fn ice_credentials(
    s: &crate::config::IceServer,
    now: std::time::SystemTime,
) -> (String, String) {
    use base64::Engine;
    use hmac::Mac;
    if s.username != "AUTH_SECRET" {
        return (s.username.clone(), s.password.clone());
    }
    let expiry = (now + TURN_SECRET_VALIDITY)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz1234567890";
    let user: String = (0..20)
        .map(|_| CHARS[rand::random_range(0..CHARS.len())] as char)
        .collect();
    let username = format!("{expiry}:{user}");
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(s.password.as_bytes()) else {
        return (username, String::new());
    };
    mac.update(username.as_bytes());
    let pass = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, pass)
}

impl WebRtcServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
        listen: CancellationToken,
    ) -> Result<WebRtcServer, ListenError> {
        let tls = match config.webrtc_encryption {
            true => Some(crate::http::tls_config(
                "WebRTC",
                config.webrtc_address.0,
                &config.webrtc_server_key,
                &config.webrtc_server_cert,
            )?),
            false => None,
        };
        let port = match config.webrtc_local_udp_address.0 {
            Some(addr) => Some(Arc::new(
                udp::UdpPort::bind(addr, config.udp_read_buffer_size as usize).map_err(
                    |source| ListenError {
                        what: "WebRTC UDP",
                        addr,
                        source,
                    },
                )?,
            )),
            None => None,
        };
        let (listener, local_addr) = crate::net::bind("WebRTC", config.webrtc_address.0).await?;
        let udp_addr = port.as_ref().map(|p| p.local);
        let offered = match udp_addr {
            Some(a) => candidates::gather(config, a).await,
            None => Vec::new(),
        };
        let local_ips = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.ip())
            .collect();
        let hub = Arc::new(Hub {
            manager,
            shutdown,
            stop: listen.clone(),
            handshake_timeout: config.webrtc_handshake_timeout.0,
            offered,
            local_ips,
            port: Mutex::new(port.clone()),
            mux: Mutex::new(Mux::default()),
            sessions: Mutex::new(HashMap::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            drops: Mutex::new(DropLog::default()),
        });
        match udp_addr {
            Some(u) => tracing::info!(
                "WebRTC listener opened on {local_addr} (HTTP), {u} (UDP/ICE); candidates {:?}",
                hub.offered
            ),
            None => tracing::warn!(
                "WebRTC listener opened on {local_addr} without a UDP port (webrtcLocalUDPAddress is blank): no session can connect"
            ),
        }
        let app = http::router(hub.clone(), config);
        let (write_timeout, limits) = (
            config.write_timeout.0,
            crate::http::serve::ServeLimits::of(config),
        );
        let admit = hub.manager.admission("WebRTC");
        let task = tokio::spawn(async move {
            let udp = port.map(|p| tokio::spawn(hub.clone().read_udp(p)));
            match crate::http::conn::TimeoutListener::new(listener, write_timeout, tls, admit) {
                Ok(l) => crate::http::serve::serve(l, app, limits, listen.clone()).await,
                Err(e) => tracing::error!("WebRTC listener failed: {e}"),
            }
            listen.cancel();
            hub.close().await;
            if let Some(u) = udp {
                let _ = u.await;
            }
        });
        Ok(WebRtcServer {
            local_addr,
            udp_addr,
            task,
        })
    }
}
