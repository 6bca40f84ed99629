//! mediarouter: a live media router. One YAML file maps paths to publishers and
//! readers across protocols; this crate is the server, exposed as a library for tests.

pub mod api;
pub mod auth;
pub mod codec;
pub mod config;
pub mod core;
pub mod flv;
pub mod format;
pub mod hls;
pub mod hooks;
pub mod http;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod playback;
pub mod push;
pub mod record;
pub mod rtmp;
pub mod rtsp;
pub mod server;
pub mod source;
pub mod srt;
pub mod tls;
pub mod tls_server;
pub mod transcode;
pub mod webrtc;
