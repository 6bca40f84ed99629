//! Starts every enabled listener for a config and stops them together.

use crate::config::Config;
use crate::core::PathManager;
use crate::rtsp::{ListenError, RtspServer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct Server {
    pub manager: PathManager,
    pub rtsp: Option<RtspServer>,
    shutdown: CancellationToken,
}

impl Server {
    pub async fn start(config: Config) -> Result<Server, ListenError> {
        let config = Arc::new(config);
        let manager = PathManager::new(config.clone());
        let shutdown = CancellationToken::new();
        let rtsp = if config.rtsp {
            match RtspServer::start(&config, manager.clone(), shutdown.clone()).await {
                Ok(s) => Some(s),
                Err(e) => {
                    shutdown.cancel();
                    return Err(e);
                }
            }
        } else {
            None
        };
        Ok(Server {
            manager,
            rtsp,
            shutdown,
        })
    }

    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        self.rtsp.as_ref().map(|r| r.local_addr)
    }

    /// Stops listeners and tells every connection to close.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
