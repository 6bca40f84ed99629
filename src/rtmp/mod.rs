//! RTMP server (publish and play) on `rtmpAddress`: rml_rtmp's sans-io handshake, then
//! our own chunk stream and message session (see `chunk` for why).
//! `rtmp://host/<app>/<stream>` is path `<app>/<stream>`.

mod auth;
pub mod chunk;
pub mod client;
mod conn;
pub(crate) mod ingest;
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
    pub async fn start(
        config: &Config,
        manager: PathManager,
        shutdown: CancellationToken,
        listen: CancellationToken,
    ) -> Result<RtmpServer, ListenError> {
        let (listener, local_addr) = crate::net::bind("RTMP", config.rtmp_address.0).await?;
        let ctx = Arc::new(Ctx {
            manager,
            read_timeout: config.read_timeout.0,
            write_timeout: config.write_timeout.0,
            shutdown,
        });
        tracing::info!("RTMP listener opened on {local_addr}");
        let task = crate::net::spawn_accept_loop(listener, "RTMP", listen, move |sock, peer| {
            conn::serve(ctx.clone(), sock, peer)
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
