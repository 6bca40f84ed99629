//! Starts every enabled listener for a config and stops them together.

use crate::api::ApiServer;
use crate::config::Config;
use crate::core::PathManager;
use crate::http::HttpServer;
use crate::rtmp::RtmpServer;
use crate::rtsp::RtspServer;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
#[error("can't listen on {addr} ({what}): {source}")]
pub struct ListenError {
    pub what: &'static str,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

pub struct Server {
    pub manager: PathManager,
    pub rtsp: Option<RtspServer>,
    pub rtmp: Option<RtmpServer>,
    pub http: Option<HttpServer>,
    pub api: Option<ApiServer>,
    shutdown: CancellationToken,
}

impl Server {
    pub async fn start(config: Config) -> Result<Server, ListenError> {
        let config = Arc::new(config);
        let manager = PathManager::new(config.clone());
        let shutdown = CancellationToken::new();
        // Dropping the guard on an error stops whatever already started.
        let guard = shutdown.clone().drop_guard();
        let rtsp = match config.rtsp {
            true => Some(RtspServer::start(&config, manager.clone(), shutdown.clone()).await?),
            false => None,
        };
        let rtmp = match config.rtmp {
            true => Some(RtmpServer::start(&config, manager.clone(), shutdown.clone()).await?),
            false => None,
        };
        let http = match config.hls {
            true => Some(HttpServer::start(&config, manager.clone(), shutdown.clone()).await?),
            false => None,
        };
        let api = match config.api {
            true => Some(ApiServer::start(&config, manager.clone(), shutdown.clone()).await?),
            false => None,
        };
        guard.disarm();
        crate::push::start(manager.clone(), shutdown.clone());
        manager.start_sources();
        Ok(Server {
            manager,
            rtsp,
            rtmp,
            http,
            api,
            shutdown,
        })
    }

    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.rtmp.as_ref().map(|r| r.local_addr)
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.local_addr)
    }

    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().map(|a| a.local_addr)
    }

    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        self.rtsp.as_ref().map(|r| r.local_addr)
    }

    /// Stops listeners and tells every connection to close.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        self.manager.stop_sources();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
