//! Starts every enabled listener for a config, applies reloaded configs (only what
//! changed restarts) and stops everything together.

use crate::api::ApiServer;
use crate::config::Config;
use crate::core::PathManager;
use crate::http::HttpServer;
use crate::rtmp::RtmpServer;
use crate::rtsp::RtspServer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio_util::sync::CancellationToken;

mod config_source;
pub use config_source::{ConfigWriteError, SOURCE_LABEL};

#[derive(Debug, thiserror::Error)]
#[error("can't listen on {addr} ({what}): {source}")]
pub struct ListenError {
    pub what: &'static str,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// A running listener and the token that stops its accept loop (not its sessions).
struct Running {
    server: AnyServer,
    stop: CancellationToken,
}

enum AnyServer {
    Rtsp(RtspServer),
    Rtmp(RtmpServer),
    Http(HttpServer),
    Api(ApiServer),
    Metrics(crate::metrics::MetricsServer),
    Playback(crate::playback::PlaybackServer),
    WebRtc(crate::webrtc::WebRtcServer),
    Srt(crate::srt::SrtServer),
}

impl AnyServer {
    fn task(&mut self) -> &mut tokio::task::JoinHandle<()> {
        match self {
            AnyServer::Rtsp(s) => &mut s.task,
            AnyServer::Rtmp(s) => &mut s.task,
            AnyServer::Http(s) => &mut s.task,
            AnyServer::Api(s) => &mut s.task,
            AnyServer::Metrics(s) => &mut s.task,
            AnyServer::Playback(s) => &mut s.task,
            AnyServer::WebRtc(s) => &mut s.task,
            AnyServer::Srt(s) => &mut s.task,
        }
    }
}

impl Running {
    /// Stops the accept loop and waits until the socket is closed.
    async fn stop(mut self) -> AnyServer {
        self.stop.cancel();
        let _ = self.server.task().await;
        self.server
    }
}

/// The running server; listeners that act on it (the API's config writes) hold a weak
/// reference to its inside.
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::ops::Deref for Server {
    type Target = ServerInner;
    fn deref(&self) -> &ServerInner {
        &self.inner
    }
}

pub struct ServerInner {
    me: Weak<ServerInner>,
    pub started: std::time::SystemTime,
    /// The text the running config was read from, and its file.
    source: tokio::sync::Mutex<config_source::ConfigSource>,
    pub manager: PathManager,
    listeners: Mutex<HashMap<Listener, Running>>,
    relays: crate::push::Relays,
    recorders: crate::record::Recorders,
    stages: crate::transcode::Stages,
    /// Serializes reloads.
    reloading: tokio::sync::Mutex<()>,
    pub reloads: ReloadStats,
    shutdown: CancellationToken,
}

/// Which listener a group of global keys belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    Rtsp,
    Rtsps,
    Rtmp,
    Rtmps,
    Http,
    Api,
    Metrics,
    Playback,
    WebRtc,
    Srt,
}

impl Listener {
    pub const ALL: [Listener; 10] = [
        Listener::Rtsp,
        Listener::Rtsps,
        Listener::Rtmp,
        Listener::Rtmps,
        Listener::Http,
        Listener::Api,
        Listener::Metrics,
        Listener::Playback,
        Listener::WebRtc,
        Listener::Srt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Listener::Rtsp => "rtsp",
            Listener::Rtsps => "rtsps",
            Listener::Rtmp => "rtmp",
            Listener::Rtmps => "rtmps",
            Listener::Http => "hls",
            Listener::Api => "api",
            Listener::Metrics => "metrics",
            Listener::Playback => "playback",
            Listener::WebRtc => "webrtc",
            Listener::Srt => "srt",
        }
    }

    /// Whether the settings this listener was started with differ between `a` and `b`
    /// (sessions copy timeouts when they start, so those count too).
    pub fn changed(self, a: &Config, b: &Config) -> bool {
        // The HTTP listeners hand these to hyper when they start; RTSP and RTMP
        // connections read the parsers' limits from the config as they open.
        let http_limits = |c: &Config| {
            (
                c.max_request_header_size,
                c.max_request_headers,
                c.http_max_requests_per_connection,
            )
        };
        let timeouts = (a.read_timeout, a.write_timeout, http_limits(a))
            != (b.read_timeout, b.write_timeout, http_limits(b));
        match self {
            Listener::Rtsp => {
                timeouts
                    || (
                        a.rtsp,
                        &a.rtsp_transports,
                        a.rtsp_address,
                        a.rtp_address,
                        a.rtcp_address,
                        (
                            a.multicast_ip_range,
                            a.multicast_rtp_port,
                            a.multicast_rtcp_port,
                        ),
                        a.udp_read_buffer_size,
                    ) != (
                        b.rtsp,
                        &b.rtsp_transports,
                        b.rtsp_address,
                        b.rtp_address,
                        b.rtcp_address,
                        (
                            b.multicast_ip_range,
                            b.multicast_rtp_port,
                            b.multicast_rtcp_port,
                        ),
                        b.udp_read_buffer_size,
                    )
            }
            Listener::Rtsps => {
                timeouts
                    || (a.rtsp, a.rtsps_address, a.rtsp_encryption)
                        != (b.rtsp, b.rtsps_address, b.rtsp_encryption)
                    || (&a.rtsp_server_key, &a.rtsp_server_cert)
                        != (&b.rtsp_server_key, &b.rtsp_server_cert)
            }
            Listener::Rtmp => {
                timeouts
                    || (a.rtmp, a.rtmp_address, a.rtmp_encryption)
                        != (b.rtmp, b.rtmp_address, b.rtmp_encryption)
            }
            Listener::Rtmps => {
                timeouts
                    || (a.rtmp, a.rtmps_address, a.rtmp_encryption)
                        != (b.rtmp, b.rtmps_address, b.rtmp_encryption)
                    || (&a.rtmp_server_key, &a.rtmp_server_cert)
                        != (&b.rtmp_server_key, &b.rtmp_server_cert)
            }
            Listener::Http => {
                timeouts
                    || (
                        a.hls,
                        a.hls_address,
                        &a.hls_allow_origins,
                        a.hls_segment_count,
                    ) != (
                        b.hls,
                        b.hls_address,
                        &b.hls_allow_origins,
                        b.hls_segment_count,
                    )
                    || (
                        a.hls_segment_duration,
                        a.hls_muxer_close_after,
                        a.hls_variant,
                    ) != (
                        b.hls_segment_duration,
                        b.hls_muxer_close_after,
                        b.hls_variant,
                    )
                    || (a.hls_part_duration, a.hls_always_remux, &a.hls_directory)
                        != (b.hls_part_duration, b.hls_always_remux, &b.hls_directory)
                    || (a.hls_encryption, &a.hls_server_key, &a.hls_server_cert)
                        != (b.hls_encryption, &b.hls_server_key, &b.hls_server_cert)
            }
            Listener::Api => {
                (a.api, a.api_address, a.api_encryption) != (b.api, b.api_address, b.api_encryption)
                    || (&a.api_server_key, &a.api_server_cert)
                        != (&b.api_server_key, &b.api_server_cert)
            }
            Listener::Metrics => {
                (a.metrics, a.metrics_address, a.metrics_encryption)
                    != (b.metrics, b.metrics_address, b.metrics_encryption)
                    || (&a.metrics_server_key, &a.metrics_server_cert)
                        != (&b.metrics_server_key, &b.metrics_server_cert)
            }
            // Origins and proxies are read per request.
            Listener::Playback => {
                timeouts
                    || (a.playback, a.playback_address, a.playback_encryption)
                        != (b.playback, b.playback_address, b.playback_encryption)
                    || (&a.playback_server_key, &a.playback_server_cert)
                        != (&b.playback_server_key, &b.playback_server_cert)
            }
            // Trusted proxies are read per request; the rest is fixed at the start.
            Listener::WebRtc => {
                timeouts
                    || (a.webrtc, a.webrtc_address, a.webrtc_encryption)
                        != (b.webrtc, b.webrtc_address, b.webrtc_encryption)
                    || (&a.webrtc_server_key, &a.webrtc_server_cert)
                        != (&b.webrtc_server_key, &b.webrtc_server_cert)
                    || (&a.webrtc_allow_origins, a.webrtc_local_udp_address)
                        != (&b.webrtc_allow_origins, b.webrtc_local_udp_address)
                    || (
                        a.webrtc_ips_from_interfaces,
                        &a.webrtc_ips_from_interfaces_list,
                        &a.webrtc_additional_hosts,
                    ) != (
                        b.webrtc_ips_from_interfaces,
                        &b.webrtc_ips_from_interfaces_list,
                        &b.webrtc_additional_hosts,
                    )
                    || (&a.webrtc_ice_servers2, a.webrtc_handshake_timeout)
                        != (&b.webrtc_ice_servers2, b.webrtc_handshake_timeout)
                    || a.udp_read_buffer_size != b.udp_read_buffer_size
            }
            // Passphrases and timeouts are read per connection.
            Listener::Srt => {
                (a.srt, a.srt_address, a.udp_read_buffer_size)
                    != (b.srt, b.srt_address, b.udp_read_buffer_size)
            }
        }
    }

    fn address(self, c: &Config) -> SocketAddr {
        match self {
            Listener::Rtsp => c.rtsp_address.0,
            Listener::Rtsps => c.rtsps_address.0,
            Listener::Rtmp => c.rtmp_address.0,
            Listener::Rtmps => c.rtmps_address.0,
            Listener::Http => c.hls_address.0,
            Listener::Api => c.api_address.0,
            Listener::Metrics => c.metrics_address.0,
            Listener::Playback => c.playback_address.0,
            Listener::WebRtc => c.webrtc_address.0,
            Listener::Srt => c.srt_address.0,
        }
    }

    fn enabled(self, c: &Config) -> bool {
        match self {
            Listener::Rtsp => c.rtsp && c.rtsp_encryption != crate::config::Encryption::Strict,
            Listener::Rtsps => c.rtsp && c.rtsp_encryption != crate::config::Encryption::No,
            Listener::Rtmp => c.rtmp && c.rtmp_encryption != crate::config::Encryption::Strict,
            Listener::Rtmps => c.rtmp && c.rtmp_encryption != crate::config::Encryption::No,
            Listener::Http => c.hls,
            Listener::Api => c.api,
            Listener::Metrics => c.metrics,
            Listener::Playback => c.playback,
            Listener::WebRtc => c.webrtc,
            Listener::Srt => c.srt,
        }
    }
}

/// Reloads since the start, for the metrics: applied (from the file, SIGHUP or the
/// API), failed (a config that didn't load, or a listener that didn't restart).
#[derive(Default)]
pub struct ReloadStats {
    pub applied: AtomicU64,
    pub failed: AtomicU64,
    pub last_failed: AtomicBool,
}

impl ReloadStats {
    pub(crate) fn note(&self, ok: bool) {
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.last_failed.store(!ok, Ordering::Relaxed);
    }
}

/// What a reload did, for its one log line.
#[derive(Debug, Default)]
pub struct ReloadSummary {
    pub paths: crate::core::PathsDiff,
    pub restarted: Vec<&'static str>,
    /// Listeners whose restart failed (they keep their old settings), with why.
    pub failed: Vec<(&'static str, String)>,
    pub pushes: (usize, usize),
    /// Recorders (started, stopped).
    pub recorders: (usize, usize),
    /// Transcode stages (started, stopped).
    pub stages: (usize, usize),
    pub log_level: Option<(crate::config::LogLevel, crate::config::LogLevel)>,
    pub other: bool,
}

impl std::fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.paths;
        write!(
            f,
            "reload: +{} paths, -{}, ~{}",
            p.added,
            p.removed,
            p.changed.len()
        )?;
        if !p.changed.is_empty() {
            let what: Vec<String> = p
                .changed
                .iter()
                .map(|(n, keys)| format!("{n}: {}", keys.join(", ")))
                .collect();
            write!(f, " ({})", what.join("; "))?;
        }
        if !p.closed.is_empty() {
            write!(f, ", closed {}", p.closed.join(" "))?;
        }
        if !p.restarted.is_empty() {
            write!(f, ", sources restarted: {}", p.restarted.join(" "))?;
        }
        if self.pushes != (0, 0) {
            write!(f, ", push relays +{} -{}", self.pushes.0, self.pushes.1)?;
        }
        if self.recorders != (0, 0) {
            write!(f, ", recorders +{} -{}", self.recorders.0, self.recorders.1)?;
        }
        if self.stages != (0, 0) {
            write!(
                f,
                ", transcode stages +{} -{}",
                self.stages.0, self.stages.1
            )?;
        }
        match self.restarted.is_empty() {
            true => write!(f, ", listeners unchanged")?,
            false => write!(f, ", listeners restarted: {}", self.restarted.join(" "))?,
        }
        for (l, e) in &self.failed {
            write!(f, ", {l} listener NOT restarted ({e})")?;
        }
        if let Some((a, b)) = self.log_level {
            write!(f, ", logLevel {} → {}", a.as_str(), b.as_str())?;
        }
        if self.other {
            write!(
                f,
                ", new sessions and streams use the new timeouts and queue sizes"
            )?;
        }
        Ok(())
    }
}

impl Server {
    pub async fn start(config: Config) -> Result<Server, ListenError> {
        let config = Arc::new(config);
        let manager = PathManager::new(config.clone());
        let shutdown = CancellationToken::new();
        // Dropping the guard on an error stops whatever already started.
        let guard = shutdown.clone().drop_guard();
        let relays = crate::push::start(manager.clone(), shutdown.clone());
        let recorders = crate::record::start(manager.clone(), shutdown.clone());
        let stages = crate::transcode::start(manager.clone(), shutdown.clone());
        crate::transcode::warn_if_unbuilt(&config);
        tokio::spawn(manager.clone().sample_rates(shutdown.clone()));
        let inner = Arc::new_cyclic(|me| ServerInner {
            me: me.clone(),
            started: std::time::SystemTime::now(),
            source: Default::default(),
            manager: manager.clone(),
            listeners: Mutex::new(HashMap::new()),
            relays,
            recorders,
            stages,
            reloading: tokio::sync::Mutex::new(()),
            reloads: Default::default(),
            shutdown: shutdown.clone(),
        });
        let server = Server { inner };
        for l in Listener::ALL {
            if l.enabled(&config) {
                let running = server.start_listener(l, &config, None).await?;
                server.listeners().insert(l, running);
            }
        }
        guard.disarm();
        manager.start_sources();
        manager.start_hooks();
        Ok(server)
    }
}

impl ServerInner {
    fn listeners(&self) -> MutexGuard<'_, HashMap<Listener, Running>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start_listener(
        &self,
        l: Listener,
        config: &Config,
        previous: Option<&AnyServer>,
    ) -> Result<Running, ListenError> {
        let stop = self.shutdown.child_token();
        let (m, s, st) = (self.manager.clone(), self.shutdown.clone(), stop.clone());
        let server = match l {
            Listener::Rtsp => {
                let previous = match previous {
                    Some(AnyServer::Rtsp(r)) => Some(r),
                    _ => None,
                };
                let r = RtspServer::start(config, m, s, st, previous, false).await?;
                // Hooks publish back to us at $RTSP_PORT: the port bound, not asked.
                self.manager.hooks().set_rtsp_port(r.local_addr.port());
                AnyServer::Rtsp(r)
            }
            Listener::Rtsps => {
                AnyServer::Rtsp(RtspServer::start(config, m, s, st, None, true).await?)
            }
            Listener::Rtmp => AnyServer::Rtmp(RtmpServer::start(config, m, s, st, false).await?),
            Listener::Rtmps => AnyServer::Rtmp(RtmpServer::start(config, m, s, st, true).await?),
            Listener::Http => AnyServer::Http(HttpServer::start(config, m, s, st).await?),
            Listener::Api => {
                AnyServer::Api(ApiServer::start(config, m, self.me.clone(), st).await?)
            }
            Listener::Metrics => AnyServer::Metrics(
                crate::metrics::MetricsServer::start(config, m, self.me.clone(), st).await?,
            ),
            Listener::Playback => {
                AnyServer::Playback(crate::playback::PlaybackServer::start(config, m, st).await?)
            }
            Listener::WebRtc => {
                AnyServer::WebRtc(crate::webrtc::WebRtcServer::start(config, m, s, st).await?)
            }
            Listener::Srt => AnyServer::Srt(crate::srt::SrtServer::start(config, m, s, st).await?),
        };
        Ok(Running { server, stop })
    }

    /// Applies a new config: paths are diffed (untouched ones keep streaming), push
    /// relays follow their paths' lists, and only listeners whose settings changed
    /// restart (their sessions go on under the old settings).
    pub async fn reload(&self, new: Config) -> ReloadSummary {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.manager.config();
        let new = Arc::new(new);
        let mut summary = ReloadSummary {
            paths: self.manager.reconfigure(new.clone()).await,
            ..Default::default()
        };
        summary.pushes = self.relays.reconcile(&self.manager);
        summary.recorders = self.recorders.reconcile(&self.manager);
        summary.stages = self.stages.reconcile(&self.manager);
        crate::transcode::warn_if_unbuilt(&new);
        if old.log_level != new.log_level {
            crate::logging::set_level(new.log_level);
            summary.log_level = Some((old.log_level, new.log_level));
        }
        summary.other = (
            old.write_queue_size,
            old.write_merge,
            old.udp_max_payload_size,
        ) != (
            new.write_queue_size,
            new.write_merge,
            new.udp_max_payload_size,
        );
        for l in Listener::ALL {
            // One that should be open and isn't (it failed to bind on an earlier
            // reload) is tried again on every reload, changed or not.
            let missing = l.enabled(&new) && !self.listeners().contains_key(&l);
            if !l.changed(&old, &new) && !missing {
                continue;
            }
            summary.restarted.push(l.name());
            if let Err(e) = self.restart_listener(l, &old, &new).await {
                tracing::error!(
                    "reload: {e}; the {} listener keeps its old settings",
                    l.name()
                );
                summary.failed.push((l.name(), e.to_string()));
            }
        }
        self.reloads.applied.fetch_add(1, Ordering::Relaxed);
        self.reloads.note(summary.failed.is_empty());
        summary
    }

    async fn restart_listener(
        &self,
        l: Listener,
        old: &Config,
        new: &Config,
    ) -> Result<(), ListenError> {
        let current = self.listeners().remove(&l);
        let Some(current) = current else {
            if l.enabled(new) {
                let running = self.start_listener(l, new, None).await?;
                self.listeners().insert(l, running);
            }
            return Ok(());
        };
        if !l.enabled(new) {
            current.stop().await;
            return Ok(());
        }
        // WebRTC has two sockets (HTTP, UDP); either may be the one kept.
        if l.address(old) == l.address(new) || l == Listener::WebRtc {
            // The address can only be bound again once the old socket is closed.
            let stopped = current.stop().await;
            let running = self.start_listener(l, new, Some(&stopped)).await?;
            self.listeners().insert(l, running);
            return Ok(());
        }
        // A new address is bound first: if that fails the old listener keeps serving.
        match self.start_listener(l, new, Some(&current.server)).await {
            Ok(running) => {
                self.listeners().insert(l, running);
                current.stop().await;
                Ok(())
            }
            Err(e) => {
                self.listeners().insert(l, current);
                Err(e)
            }
        }
    }

    /// The listeners the config enables that aren't open (for `/v3/health`).
    pub fn listeners_down(&self) -> Vec<&'static str> {
        let config = self.manager.config();
        let open = self.listeners();
        Listener::ALL
            .into_iter()
            .filter(|l| l.enabled(&config) && !open.contains_key(l))
            .map(Listener::name)
            .collect()
    }

    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Rtmp)?.server {
            AnyServer::Rtmp(r) => Some(r.local_addr),
            _ => None,
        }
    }

    pub fn rtsps_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Rtsps)?.server {
            AnyServer::Rtsp(r) => Some(r.local_addr),
            _ => None,
        }
    }

    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Rtmps)?.server {
            AnyServer::Rtmp(r) => Some(r.local_addr),
            _ => None,
        }
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Http)?.server {
            AnyServer::Http(h) => Some(h.local_addr),
            _ => None,
        }
    }

    pub fn api_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Api)?.server {
            AnyServer::Api(a) => Some(a.local_addr),
            _ => None,
        }
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Metrics)?.server {
            AnyServer::Metrics(m) => Some(m.local_addr),
            _ => None,
        }
    }

    pub fn playback_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Playback)?.server {
            AnyServer::Playback(p) => Some(p.local_addr),
            _ => None,
        }
    }

    pub fn webrtc_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::WebRtc)?.server {
            AnyServer::WebRtc(w) => Some(w.local_addr),
            _ => None,
        }
    }

    /// The WebRTC listener's UDP port (ICE and media).
    pub fn webrtc_udp_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::WebRtc)?.server {
            AnyServer::WebRtc(w) => w.udp_addr,
            _ => None,
        }
    }

    /// The SRT listener's UDP address (`None` without libsrt).
    pub fn srt_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Srt)?.server {
            AnyServer::Srt(s) => s.local_addr,
            _ => None,
        }
    }

    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        match &self.listeners().get(&Listener::Rtsp)?.server {
            AnyServer::Rtsp(r) => Some(r.local_addr),
            _ => None,
        }
    }

    /// The RTSP listener's bound RTP and RTCP ports, when UDP is enabled.
    pub fn rtsp_udp_ports(&self) -> Option<(u16, u16)> {
        match &self.listeners().get(&Listener::Rtsp)?.server {
            AnyServer::Rtsp(r) => r.udp_ports,
            _ => None,
        }
    }

    /// The HLS muxers of the HTTP listener.
    pub fn hls(&self) -> Option<crate::hls::HlsMuxers> {
        match &self.listeners().get(&Listener::Http)?.server {
            AnyServer::Http(h) => Some(h.hls.clone()),
            _ => None,
        }
    }

    /// Stops listeners and tells every connection to close, and every hook to stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        self.manager.stop_sources();
        self.manager.hooks().stop_all();
    }

    /// `shutdown`, then waits for the hooks' processes to be gone (SIGINT, and SIGKILL
    /// for those still there after the grace period).
    pub async fn stop(&self) {
        self.shutdown();
        self.manager.hooks().shutdown().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
