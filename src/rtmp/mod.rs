//! RTMP server (publish and play) on `rtmpAddress`, built on `rml_rtmp`'s sans-io
//! handshake and server session. `rtmp://host/<app>/<stream>` is path `<app>/<stream>`.

mod conn;
mod ingest;

use crate::config::Config;
use crate::core::PathManager;
use crate::server::ListenError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) struct Ctx {
    pub manager: PathManager,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub shutdown: CancellationToken,
}

pub struct RtmpServer {
    pub local_addr: SocketAddr,
}

impl RtmpServer {
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
    ) -> Result<RtmpServer, ListenError> {
        let addr = config.rtmp_address.0;
        let err = |source| ListenError {
            what: "RTMP",
            addr,
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(err)?;
        let local_addr = listener.local_addr().map_err(err)?;
        let ctx = Arc::new(Ctx {
            manager,
            read_timeout: config.read_timeout.0,
            write_timeout: config.write_timeout.0,
            shutdown,
        });
        tracing::info!("RTMP listener opened on {local_addr}");
        crate::net::spawn_accept_loop(listener, "RTMP", ctx.shutdown.clone(), move |sock, peer| {
            conn::serve(ctx.clone(), sock, peer)
        });
        Ok(RtmpServer { local_addr })
    }
}
