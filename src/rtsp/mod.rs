//! RTSP server (RFC 2326, with RFC 7826 parsing via `rtsp-types`): publishers use
//! ANNOUNCE/SETUP/RECORD, readers DESCRIBE/SETUP/PLAY, over TCP-interleaved or UDP RTP.

mod auth;
pub mod client;
mod conn;
pub mod framing;
pub(crate) mod ingest;
pub mod multicast;
mod play;
mod session;
pub mod transport;
mod udp;
pub mod url;

use crate::config::{Config, RtspTransport};
use crate::core::PathManager;
use crate::server::ListenError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use udp::UdpPair;

pub use play::Interleaved;

/// What every connection of the server shares.
pub(crate) struct Ctx {
    pub manager: PathManager,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub transports: Vec<RtspTransport>,
    pub udp: Option<Arc<UdpPair>>,
    pub multicast: Option<Arc<multicast::Multicast>>,
    pub shutdown: CancellationToken,
}

/// A running RTSP server; it stops when `shutdown` is cancelled.
pub struct RtspServer {
    pub local_addr: SocketAddr,
    /// Bound RTP and RTCP ports when UDP is enabled.
    pub udp_ports: Option<(u16, u16)>,
    udp: Option<Arc<UdpPair>>,
    /// Multicast groups and their senders, with `rtspTransports: multicast`.
    pub multicast: Option<Arc<multicast::Multicast>>,
    /// The configured RTP and RTCP addresses (ports may be 0).
    udp_addrs: (SocketAddr, SocketAddr),
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl RtspServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
        listen: CancellationToken,
        previous: Option<&RtspServer>,
        tls: bool,
    ) -> Result<RtspServer, ListenError> {
        let (what, addr) = match tls {
            false => ("RTSP", config.rtsp_address.0),
            true => ("RTSPS", config.rtsps_address.0),
        };
        let acceptor = match tls {
            true => Some(tokio_rustls::TlsAcceptor::from(crate::http::tls_config(
                what,
                addr,
                &config.rtsp_server_key,
                &config.rtsp_server_cert,
            )?)),
            false => None,
        };
        let (listener, local_addr) = crate::net::bind(what, addr).await?;
        // RTSPS carries media interleaved in the TLS connection only: RTP over UDP or
        // multicast would go out in clear.
        let transports = match tls {
            true => vec![RtspTransport::Tcp],
            false => config.rtsp_transports.clone(),
        };
        let wants_udp = transports.contains(&RtspTransport::Udp);
        let same_udp = previous.and_then(|p| {
            p.udp
                .as_ref()
                .filter(|_| p.udp_addrs == (config.rtp_address.0, config.rtcp_address.0))
        });
        let udp = if let Some(pair) = same_udp.filter(|_| wants_udp) {
            // A restart keeps the UDP pair: its sessions go on, and the ports stay bound.
            Some(pair.clone())
        } else if wants_udp {
            let rcvbuf = config.udp_read_buffer_size as usize;
            let pair = UdpPair::bind(config.rtp_address.0, config.rtcp_address.0, rcvbuf)
                .await
                .map_err(|source| ListenError {
                    what: "RTP/RTCP",
                    addr: config.rtp_address.0,
                    source,
                })?;
            pair.spawn_receivers(shutdown.clone());
            Some(pair)
        } else {
            None
        };
        let udp_ports = udp.as_ref().map(|u| u.ports());
        let multicast = if transports.contains(&RtspTransport::Multicast) {
            let mc = multicast::Multicast::new(
                config.multicast_ip_range,
                config.multicast_rtp_port,
                config.multicast_rtcp_port,
            )
            .map_err(|source| ListenError {
                what: "RTSP multicast",
                addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            Some(mc)
        } else {
            None
        };
        let ctx = Arc::new(Ctx {
            manager,
            read_timeout: config.read_timeout.0,
            write_timeout: config.write_timeout.0,
            transports,
            udp,
            multicast: multicast.clone(),
            shutdown: shutdown.clone(),
        });
        match udp_ports {
            Some((rtp, rtcp)) => tracing::info!(
                "RTSP listener opened on {local_addr} (TCP), UDP RTP :{rtp}, RTCP :{rtcp}"
            ),
            None => tracing::info!("{what} listener opened on {local_addr} (TCP)"),
        }
        let udp = ctx.udp.clone();
        let admit = ctx.manager.admission(what);
        let task =
            crate::net::spawn_accept_loop(listener, what, listen, admit, move |sock, peer| {
                conn::serve(ctx.clone(), sock, peer, acceptor.clone())
            });
        Ok(RtspServer {
            local_addr,
            udp_ports,
            udp,
            multicast,
            udp_addrs: (config.rtp_address.0, config.rtcp_address.0),
            task,
        })
    }
}

/// Feeds raw connection bytes through framing and the session handler, as a connection
/// would, without sockets. For the fuzz targets; not a stable API.
#[doc(hidden)]
pub fn fuzz_session(data: &[u8]) {
    use std::sync::OnceLock;
    static MANAGER: OnceLock<PathManager> = OnceLock::new();
    let manager = MANAGER
        .get_or_init(|| {
            let cfg = Config::parse("paths:\n  all_others:\n", "fuzz").unwrap_or_default();
            PathManager::new(Arc::new(cfg))
        })
        .clone();
    let ctx = Arc::new(Ctx {
        manager,
        read_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        transports: vec![RtspTransport::Tcp, RtspTransport::Udp],
        udp: None,
        multicast: None,
        shutdown: CancellationToken::new(),
    });
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let entry = ctx
        .manager
        .sessions()
        .open(crate::core::SessionKind::RtspConn, peer);
    let mut handler = session::Handler::new(ctx, peer, tx, entry);
    let mut buf = bytes::BytesMut::from(data);
    let limits = handler.limits;
    while let Ok(Some(msg)) = framing::next_message(&mut buf, &limits) {
        match msg {
            framing::Incoming::Request(req) => {
                let (resp, _action) = handler.handle(&req);
                let _ = resp.write(&mut Vec::new());
            }
            framing::Incoming::Interleaved(ch, data) => {
                if handler.on_interleaved(ch, data).is_err() {
                    return;
                }
            }
            framing::Incoming::Other => {}
        }
    }
    handler.end_session("fuzz input ended", 0, 0);
}
