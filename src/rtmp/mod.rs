//! RTMP server (publish and play) on `rtmpAddress`: rml_rtmp's sans-io handshake, then
//! our own chunk stream and message session (see `chunk` for why).
//! `rtmp://host/<app>/<stream>` is path `<app>/<stream>`.

mod auth;
pub mod chunk;
pub mod client;
mod conn;
pub(crate) mod ingest;
mod play;
mod session;

use crate::config::Config;
use crate::core::PathManager;
use crate::server::ListenError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct Ctx {
    pub manager: PathManager,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub shutdown: CancellationToken,
}

pub struct RtmpServer {
    pub local_addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl RtmpServer {
    /// The plain listener, or with `tls` the RTMPS one (`rtmpsAddress`).
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
        listen: CancellationToken,
        tls: bool,
    ) -> Result<RtmpServer, ListenError> {
        let (what, addr) = match tls {
            false => ("RTMP", config.rtmp_address.0),
            true => ("RTMPS", config.rtmps_address.0),
        };
        let acceptor = match tls {
            true => Some(tokio_rustls::TlsAcceptor::from(crate::http::tls_config(
                what,
                addr,
                &config.rtmp_server_key,
                &config.rtmp_server_cert,
            )?)),
            false => None,
        };
        let (listener, local_addr) = crate::net::bind(what, addr).await?;
        let ctx = Arc::new(Ctx {
            manager,
            read_timeout: config.read_timeout.0,
            write_timeout: config.write_timeout.0,
            shutdown,
        });
        tracing::info!("{what} listener opened on {local_addr}");
        let admit = ctx.manager.admission(what);
        let task =
            crate::net::spawn_accept_loop(listener, what, listen, admit, move |sock, peer| {
                conn::serve(ctx.clone(), sock, peer, acceptor.clone())
            });
        Ok(RtmpServer { local_addr, task })
    }
}

/// Feeds bytes after the handshake through the chunk and message layers, answering
/// publish/play as a server would. For the fuzz targets; not a stable API.
#[doc(hidden)]
pub fn fuzz_session(data: &[u8]) {
    let mut s = session::Session::new();
    let mut ingest = ingest::Ingest::default();
    for piece in data.chunks(1024) {
        let Ok(events) = s.input(piece) else { return };
        for e in events {
            match e {
                session::Event::Publish { stream_id, .. } => s.accept_publish(stream_id),
                session::Event::Play { stream_id, .. } => s.accept_play(stream_id),
                session::Event::Media {
                    video,
                    timestamp,
                    data,
                } if ingest.push(video, timestamp, data.clone()).is_err() => return,
                _ => {}
            }
        }
        s.take_output();
    }
}
