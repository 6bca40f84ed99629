//! The PathManager owns the running config and the live paths: it maps a requested
//! name to its `paths:` entry, creates paths on first use and forgets idle ones.

use super::path::{Client, Path, PathError, Publisher, Reader};
use super::{Stream, StreamConfig};
use crate::config::{validate_path_name, Config};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

pub(super) struct Inner {
    pub(super) config: RwLock<Arc<Config>>,
    paths: Mutex<HashMap<String, Arc<Path>>>,
    ready: tokio::sync::broadcast::Sender<String>,
    pub(super) sources: crate::source::Registry,
    /// The running transcode stages' status, by the path they publish.
    stages: Mutex<HashMap<String, Arc<crate::transcode::StageStatus>>>,
    pub(super) auth: crate::auth::Gate,
    pub(super) hooks: Arc<crate::hooks::Hooks>,
    sessions: Arc<super::Sessions>,
    /// Every listener's TCP connections, for `maxConnections[PerIP]`.
    gate: Arc<crate::limits::ConnGate>,
}

impl Inner {
    pub(super) fn paths(&self) -> MutexGuard<'_, HashMap<String, Arc<Path>>> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
pub struct PathManager {
    pub(super) inner: Arc<Inner>,
}

impl PathManager {
    pub fn new(config: Arc<Config>) -> Self {
        PathManager {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                paths: Mutex::new(HashMap::new()),
                ready: tokio::sync::broadcast::channel(256).0,
                sources: Default::default(),
                stages: Default::default(),
                auth: Default::default(),
                hooks: Default::default(),
                sessions: Default::default(),
                gate: Default::default(),
            }),
        }
    }

    /// What a listener named `what` calls for each connection it accepts: a place under
    /// `maxConnections` and `maxConnectionsPerIP` (read at each accept, so a reload
    /// applies to the next connection), or `None` to close it.
    pub fn admission(&self, what: &'static str) -> crate::limits::Admit {
        let m = self.clone();
        std::sync::Arc::new(move |ip| {
            let c = m.config();
            let limits = crate::limits::Limits {
                total: c.max_connections,
                per_ip: c.max_connections_per_ip,
            };
            m.inner.gate.admit(ip, limits, what)
        })
    }

    /// Open TCP connections of every listener.
    pub fn open_connections(&self) -> usize {
        self.inner.gate.open()
    }

    /// Every protocol's live connections and sessions, for the API.
    pub fn sessions(&self) -> &Arc<super::Sessions> {
        &self.inner.sessions
    }

    /// Samples every live path's byte counts for its bitrates, once a second until
    /// `stop`.
    pub async fn sample_rates(self, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let paths: Vec<Arc<Path>> = self.inner.paths().values().cloned().collect();
            let now = std::time::Instant::now();
            for p in paths {
                p.sample_rates(now);
            }
        }
    }

    /// How publishers build their streams under the running config.
    pub fn stream_config(&self) -> StreamConfig {
        let c = self.config();
        StreamConfig {
            queue_size: c.write_queue_size.0,
            max_payload: (c.udp_max_payload_size as usize).saturating_sub(12),
            merge: c.write_merge.0,
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Checks a client's request against the running `authInternalUsers`; failures
    /// are logged per burst. `what` names the request in that log line.
    /// Runs `authMethod` over a request. Only the calling session waits (an auth server
    /// or a JWKS fetch is bounded by `readTimeout`).
    pub async fn authenticate(
        &self,
        req: &crate::auth::Request<'_>,
    ) -> Result<Option<String>, crate::auth::Denied> {
        let config = self.config();
        let who = self.inner.auth.check(&config, req).await?;
        if req.action == crate::auth::Action::Publish {
            self.ask_webhooks(&config, req).await?;
        }
        Ok(who)
    }

    /// A publish that the path's `allow: yes` webhooks must let through.
    async fn ask_webhooks(
        &self,
        config: &Config,
        req: &crate::auth::Request<'_>,
    ) -> Result<(), crate::auth::Denied> {
        use crate::config::webhook::Event;
        let Some(m) = config.find_path(req.path) else {
            return Ok(());
        };
        if !m.conf.webhooks.iter().any(|h| h.decides(Event::Publish)) {
            return Ok(());
        }
        let payload = crate::hooks::webhook::Payload {
            event: Event::Publish,
            path: req.path.to_string(),
            protocol: req.protocol,
            peer: Some(req.ip.to_canonical().to_string()),
            source_type: None,
            source_id: req.id.map(str::to_string),
            reader_type: None,
            reader_id: None,
            query: req.query.to_string(),
            time: crate::hooks::webhook::now_ms(),
            segment_path: None,
            segment_duration: None,
        };
        crate::hooks::webhook::ask(&m.conf.webhooks, &payload, config.read_timeout.0)
            .await
            .map_err(|why| {
                tracing::warn!(path = req.path, ip = %req.ip, protocol = req.protocol, "publish refused: {why}");
                crate::auth::Denied::Forbidden
            })
    }

    /// The HLS sessions that spare segment requests a credential check.
    pub fn hls_sessions(&self) -> &crate::auth::sessions::Sessions {
        &self.inner.auth.sessions
    }

    /// `POST /v3/auth/jwks/refresh`: the next JWT check fetches the key set again.
    pub async fn refresh_jwks(&self) {
        self.inner.auth.jwks.refresh().await
    }

    /// Names of paths whose publisher has just made a stream readable.
    pub fn subscribe_ready(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.ready.subscribe()
    }

    /// Calls `f` with the name of each path whose stream becomes readable, until `stop`.
    pub(crate) fn on_ready(
        &self,
        stop: tokio_util::sync::CancellationToken,
        f: impl Fn(&str) + Send + 'static,
    ) {
        let mut ready = self.subscribe_ready();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = ready.recv() => match r {
                        Ok(n) => n,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    },
                };
                f(&name);
            }
        });
    }

    /// The live path of that name, if any.
    pub fn path(&self, name: &str) -> Option<Arc<Path>> {
        self.inner.paths().get(name).cloned()
    }

    pub fn path_names(&self) -> Vec<String> {
        self.inner.paths().keys().cloned().collect()
    }

    fn get_or_create(&self, name: &str) -> Result<Arc<Path>, PathError> {
        validate_path_name(name).map_err(PathError::InvalidName)?;
        let found = self
            .config()
            .find_path(name)
            .ok_or_else(|| PathError::NotConfigured(name.to_string()))?;
        let mut paths = self.inner.paths();
        if let Some(p) = paths.get(name) {
            return Ok(p.clone());
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let path = Path::new(
            name.to_string(),
            found.entry,
            found.conf,
            Box::new(move |n: &str| {
                if let Some(inner) = weak.upgrade() {
                    let mut paths = inner.paths();
                    if paths.get(n).is_some_and(|p| p.is_idle()) {
                        paths.remove(n);
                    }
                }
            }),
            self.inner.ready.clone(),
            self.inner.hooks.clone(),
            found.captures,
        );
        paths.insert(name.to_string(), path.clone());
        Ok(path)
    }

    /// A client's publisher slot; refused on paths that pull from a source. On a
    /// transcoding path the publisher fills `<name>/source`.
    pub fn add_publisher(
        &self,
        name: &str,
        peer: impl Into<Client>,
    ) -> Result<Publisher, PathError> {
        let config = self.config();
        if config.rendition_of(name).is_some() || config.transcode_input_of(name).is_some() {
            return Err(PathError::StageOutput(name.to_string()));
        }
        if let Some(m) = config.find_path(name) {
            if matches!(m.conf.source, crate::config::Source::Urls(_)) {
                return Err(PathError::HasSource(name.to_string()));
            }
        }
        self.add_source_publisher(name, peer)
    }

    /// The publisher slot a path's source fills (`<name>/source` on a transcoding path).
    pub(crate) fn add_source_publisher(
        &self,
        name: &str,
        peer: impl Into<Client>,
    ) -> Result<Publisher, PathError> {
        let target = self.config().publish_target(name);
        self.add_publisher_exact(&target, peer)
    }

    /// The publisher slot of exactly `name` (the transcode stage fills its path's).
    pub(crate) fn add_publisher_exact(
        &self,
        name: &str,
        peer: impl Into<Client>,
    ) -> Result<Publisher, PathError> {
        let path = self.get_or_create(name)?;
        let r = path.add_publisher(peer.into());
        if r.is_err() {
            self.forget_if_idle(&path);
        }
        r
    }

    pub fn add_reader(&self, name: &str, peer: impl Into<Client>) -> Result<Reader, PathError> {
        let path = self.existing(name)?;
        path.add_reader(peer.into())
    }

    /// What the path's source is doing, if the path has one running.
    pub fn source_status(&self, name: &str) -> Option<crate::source::SourceStatus> {
        self.inner.sources.status(name)
    }

    /// What the path's transcode stage is doing, if one runs for it.
    pub fn stage_status(&self, name: &str) -> Option<crate::transcode::StageSnapshot> {
        self.stages().get(name).map(|s| s.snapshot())
    }

    fn stages(&self) -> MutexGuard<'_, HashMap<String, Arc<crate::transcode::StageStatus>>> {
        self.inner.stages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows a stage's status under the path it publishes.
    pub fn add_stage_status(&self, name: &str, status: Arc<crate::transcode::StageStatus>) {
        self.stages().insert(name.to_string(), status);
    }

    /// Removes `status` unless a newer stage replaced it.
    pub fn remove_stage_status(&self, name: &str, status: &Arc<crate::transcode::StageStatus>) {
        let mut stages = self.stages();
        if stages.get(name).is_some_and(|s| Arc::ptr_eq(s, status)) {
            stages.remove(name);
        }
    }

    pub(crate) fn sources(&self) -> &crate::source::Registry {
        &self.inner.sources
    }

    /// Starts the always-on sources (exact path names with `source:` a URL).
    pub fn start_sources(&self) {
        let config = self.config();
        for (pattern, conf) in &config.paths {
            let (crate::config::PathPattern::Exact(name), Some(conf)) = (pattern, conf) else {
                continue;
            };
            if conf.source_on_demand {
                continue;
            }
            if let Some(urls) = conf.source.urls_for(&[]) {
                crate::source::ensure(self, name, urls, Arc::new(conf.clone()));
            }
        }
    }

    /// The hook runner (for `runOnConnect`, the RTSP port hooks are told, shutdown).
    pub fn hooks(&self) -> &Arc<crate::hooks::Hooks> {
        &self.inner.hooks
    }

    /// Makes the running `runOnInit` commands those of the config's exact path names.
    pub fn start_hooks(&self) {
        let config = self.config();
        let hooks = &self.inner.hooks;
        let wanted = config
            .paths
            .iter()
            .filter_map(|(pattern, conf)| match (pattern, conf) {
                (crate::config::PathPattern::Exact(name), Some(c))
                    if !c.run_on_init.trim().is_empty() =>
                {
                    let spec = crate::hooks::Spec {
                        hook: "runOnInit",
                        cmd: c.run_on_init.clone(),
                        env: hooks.path_env(name, &[]),
                        restart: c.run_on_init_restart,
                    };
                    Some((name.clone(), spec))
                }
                _ => None,
            })
            .collect();
        hooks.set_init(wanted);
    }

    /// The `runOnDemand` and `runOnUnDemand` commands for `name`, if its entry has one
    /// (and clients publish to it).
    pub(super) fn demand_spec(
        &self,
        name: &str,
        m: &crate::config::PathMatch,
    ) -> Option<(crate::hooks::Spec, crate::hooks::Spec)> {
        let c = &m.conf;
        if c.run_on_demand.trim().is_empty()
            || !matches!(c.source, crate::config::Source::Publisher)
        {
            return None;
        }
        let env = self.inner.hooks.path_env(name, &m.captures);
        let spec = |hook, cmd: &String, restart| crate::hooks::Spec {
            hook,
            cmd: cmd.clone(),
            env: env.clone(),
            restart,
        };
        Some((
            spec("runOnDemand", &c.run_on_demand, c.run_on_demand_restart),
            spec("runOnUnDemand", &c.run_on_un_demand, false),
        ))
    }

    /// Stops every source (server shutdown).
    pub fn stop_sources(&self) {
        self.inner.sources.stop_all();
    }

    /// Before a reader looks for a path's stream: starts the path's on-demand source
    /// and waits for its stream, up to `sourceOnDemandStartTimeout`. Returns at once
    /// for other paths.
    pub async fn demand(&self, name: &str) {
        self.demand_with(name, "").await
    }

    /// `demand`, with the reader's URL query (`MTX_QUERY` of `runOnDemand`).
    pub async fn demand_with(&self, name: &str, query: &str) {
        if validate_path_name(name).is_err() {
            return;
        }
        // A transcode input or rendition comes from its path's source; the wait is for
        // the stream asked for.
        let config = self.config();
        let wanted = name;
        let name = config
            .transcode_input_of(name)
            .or_else(|| config.rendition_of(name).map(|(parent, _)| parent))
            .unwrap_or(name);
        let Some(m) = config.find_path(name) else {
            return;
        };
        let mut ready = self.subscribe_ready();
        let timeout = if let Some((mut spec, mut undemand)) = self.demand_spec(name, &m) {
            let q = (
                "MTX_QUERY".to_string(),
                super::path::without_credentials(query),
            );
            spec.env.push(q.clone());
            undemand.env.push(q);
            let weak = Arc::downgrade(&self.inner);
            let path = name.to_string();
            self.inner.hooks.demand(
                name,
                crate::hooks::Demand {
                    spec,
                    close_after: m.conf.run_on_demand_close_after.0,
                    undemand,
                    readers: Box::new(move || {
                        weak.upgrade()
                            .and_then(|i| i.paths().get(&path).map(|p| p.demanding_readers()))
                            .unwrap_or(0)
                    }),
                },
            );
            m.conf.run_on_demand_start_timeout.0
        } else {
            if !m.conf.source_on_demand {
                return;
            }
            let Some(urls) = m.conf.source.urls_for(&m.captures) else {
                return;
            };
            crate::source::ensure(self, name, urls, m.conf.clone());
            m.conf.source_on_demand_start_timeout.0
        };
        let deadline = tokio::time::Instant::now() + timeout;
        while self.stream(wanted).is_err() {
            match tokio::time::timeout_at(deadline, ready.recv()).await {
                Err(_) => return,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                Ok(_) => {}
            }
        }
    }

    /// The stream of a path that has a ready publisher (for RTSP DESCRIBE).
    pub fn stream(&self, name: &str) -> Result<Arc<Stream>, PathError> {
        self.existing(name)?
            .stream()
            .ok_or_else(|| PathError::NoPublisher(name.to_string()))
    }

    fn existing(&self, name: &str) -> Result<Arc<Path>, PathError> {
        validate_path_name(name).map_err(PathError::InvalidName)?;
        if self.config().find_path(name).is_none() {
            return Err(PathError::NotConfigured(name.to_string()));
        }
        self.path(name)
            .ok_or_else(|| PathError::NoPublisher(name.to_string()))
    }

    pub(super) fn forget_if_idle(&self, path: &Arc<Path>) {
        let mut paths = self.inner.paths();
        if path.is_idle() && paths.get(path.name()).is_some_and(|p| Arc::ptr_eq(p, path)) {
            paths.remove(path.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Codec, Peer, Track};

    fn manager(yaml: &str) -> PathManager {
        PathManager::new(Arc::new(Config::parse(yaml, "t").unwrap()))
    }

    fn stream() -> Arc<Stream> {
        Stream::new(
            vec![Track::new(Codec::Opus { channels: 2 }, 48000)],
            StreamConfig::default(),
        )
    }

    #[test]
    fn publish_read_and_cleanup() {
        let m = manager("paths:\n  cam:\n    maxReaders: 1\n");
        assert_eq!(
            m.add_publisher("other", Peer::RtspSession).err(),
            Some(PathError::NotConfigured("other".into()))
        );
        assert!(matches!(
            m.add_reader("cam", Peer::RtspSession),
            Err(PathError::NoPublisher(_))
        ));
        let p = m.add_publisher("cam", Peer::RtspSession).unwrap();
        // Not readable until the publisher has started its stream.
        assert!(matches!(
            m.add_reader("cam", Peer::RtspSession),
            Err(PathError::NoPublisher(_))
        ));
        p.start(stream()).unwrap();
        let r = m.add_reader("cam", Peer::RtspSession).unwrap();
        assert!(matches!(
            m.add_reader("cam", Peer::RtspSession),
            Err(PathError::TooManyReaders(_, 1))
        ));
        drop(r);
        let r = m.add_reader("cam", Peer::RtspSession).unwrap();
        let s = r.stream().clone();
        drop(p);
        assert!(s.is_closed());
        assert!(m.path("cam").is_some());
        drop(r);
        assert!(m.path("cam").is_none());
    }

    #[test]
    fn override_publisher() {
        let m = manager("paths:\n  a:\n  b:\n    overridePublisher: no\n");
        let p1 = m.add_publisher("a", Peer::RtspSession).unwrap();
        p1.start(stream()).unwrap();
        let s1 = m.stream("a").unwrap();
        let p2 = m.add_publisher("a", Peer::RtspSession).unwrap();
        assert!(p1.cancelled().is_cancelled());
        assert!(s1.is_closed());
        drop(p1); // the replaced publisher leaving must not end the new one
        p2.start(stream()).unwrap();
        assert!(m.stream("a").is_ok());

        let q1 = m.add_publisher("b", Peer::RtspSession).unwrap();
        assert_eq!(
            m.add_publisher("b", Peer::RtspSession).err(),
            Some(PathError::PublisherExists("b".into()))
        );
        assert!(!q1.cancelled().is_cancelled());
    }

    #[test]
    fn invalid_names() {
        let m = manager("paths:\n  all_others:\n");
        assert!(matches!(
            m.add_publisher("a/../b", Peer::RtspSession),
            Err(PathError::InvalidName(_))
        ));
        assert!(matches!(
            m.add_publisher("", Peer::RtspSession),
            Err(PathError::InvalidName(_))
        ));
        assert!(m.add_publisher("live/cam1", Peer::RtspSession).is_ok());
    }
}
