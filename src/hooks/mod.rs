//! MediaMTX's hooks (`runOnConnect`, `runOnInit`, `runOnDemand`, `runOnReady`,
//! `runOnRead`, …): the runner that starts them with MediaMTX's environment, stops them
//! when their reason ends, and waits for all of them at shutdown.

pub mod command;
mod demand;
pub mod webhook;

pub use command::Spec;
pub use demand::{Demand, OnDemand};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A hook's environment variables.
pub type Env = Vec<(String, String)>;

/// Starts hook commands; shared by the paths and listeners of one server.
pub struct Hooks {
    runtime: Option<tokio::runtime::Handle>,
    tracker: TaskTracker,
    stop: CancellationToken,
    /// The RTSP listener's port, for `RTSP_PORT` (the bound one when the config says 0).
    rtsp_port: AtomicU16,
    /// Running `runOnInit` commands, by path entry name.
    init: Mutex<HashMap<String, (Spec, Running)>>,
    pub(crate) on_demand: OnDemand,
    webhooks: webhook::Webhooks,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            runtime: tokio::runtime::Handle::try_current().ok(),
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            rtsp_port: AtomicU16::new(8554),
            init: Mutex::default(),
            on_demand: OnDemand::default(),
            webhooks: Default::default(),
        }
    }
}

/// A long-running hook: dropping it stops the command (and its process group).
#[must_use]
pub struct Running(CancellationToken);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A connection's hooks: `runOnConnect` runs while it is held, `runOnDisconnect`
/// when it is dropped.
pub struct ConnHooks {
    hooks: Arc<Hooks>,
    running: Option<Running>,
    disconnect: Spec,
}

impl Drop for ConnHooks {
    fn drop(&mut self) {
        self.running.take();
        self.hooks.run(self.disconnect.clone());
    }
}

impl Hooks {
    pub fn set_rtsp_port(&self, port: u16) {
        self.rtsp_port.store(port, Ordering::Relaxed);
    }

    /// The environment every hook gets: `MTX_PATH`, `RTSP_PORT`, `G1`… (the groups of
    /// a regex path entry).
    pub fn path_env(&self, path: &str, captures: &[String]) -> Vec<(String, String)> {
        let mut env = vec![
            ("MTX_PATH".to_string(), path.to_string()),
            ("RTSP_PORT".to_string(), self.rtsp_port().to_string()),
        ];
        for (i, g) in captures.iter().enumerate() {
            env.push((format!("G{}", i + 1), g.clone()));
        }
        env
    }

    pub fn rtsp_port(&self) -> u16 {
        self.rtsp_port.load(Ordering::Relaxed)
    }

    fn spawn(&self, spec: Spec, stop: CancellationToken) -> bool {
        let Some(rt) = &self.runtime else {
            tracing::warn!(hook = spec.hook, "no runtime to run {:?}", spec.cmd);
            return false;
        };
        if self.stop.is_cancelled() {
            return false;
        }
        rt.spawn(self.tracker.track_future(command::supervise(spec, stop)));
        true
    }

    /// Queues `payload` for the webhooks among `hooks` that want its event.
    pub fn notify(&self, hooks: &[crate::config::webhook::Webhook], payload: webhook::Payload) {
        if let Some(rt) = &self.runtime {
            self.webhooks.send(rt, &self.stop, hooks, &payload);
        }
    }

    /// Starts a command that runs until the returned handle is dropped (or the server
    /// stops). An empty command starts nothing.
    pub fn start(&self, spec: Spec) -> Option<Running> {
        if spec.cmd.trim().is_empty() {
            return None;
        }
        let stop = self.stop.child_token();
        self.spawn(spec, stop.clone()).then(|| Running(stop))
    }

    /// Runs a command to its end (`runOnUnread`, `runOnDisconnect`, …); only the
    /// server stopping stops it early.
    pub fn run(&self, spec: Spec) {
        if !spec.cmd.trim().is_empty() {
            self.spawn(spec, self.stop.child_token());
        }
    }

    /// A connection opened (`runOnConnect`); the guard runs `runOnDisconnect` when
    /// it is dropped. `None` when neither is set.
    pub fn connect(
        self: &Arc<Self>,
        config: &crate::config::Config,
        conn_type: &'static str,
    ) -> Option<ConnHooks> {
        if config.run_on_connect.trim().is_empty() && config.run_on_disconnect.trim().is_empty() {
            return None;
        }
        static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
        let env = vec![
            ("MTX_CONN_TYPE".to_string(), conn_type.to_string()),
            (
                "MTX_CONN_ID".to_string(),
                NEXT_CONN.fetch_add(1, Ordering::Relaxed).to_string(),
            ),
            ("RTSP_PORT".to_string(), self.rtsp_port().to_string()),
        ];
        let running = self.start(Spec {
            hook: "runOnConnect",
            cmd: config.run_on_connect.clone(),
            env: env.clone(),
            restart: config.run_on_connect_restart,
        });
        Some(ConnHooks {
            hooks: self.clone(),
            running,
            disconnect: Spec {
                hook: "runOnDisconnect",
                cmd: config.run_on_disconnect.clone(),
                env,
                restart: false,
            },
        })
    }

    /// Makes the running `runOnInit` commands those of `wanted` (path entry name →
    /// spec): new or changed ones start, gone or changed ones stop.
    pub fn set_init(&self, wanted: Vec<(String, Spec)>) {
        let mut init = self.init.lock().unwrap_or_else(|e| e.into_inner());
        init.retain(|name, (spec, _)| wanted.iter().any(|(n, s)| n == name && s == spec));
        for (name, spec) in wanted {
            if init.contains_key(&name) {
                continue;
            }
            if let Some(r) = self.start(spec.clone()) {
                init.insert(name, (spec, r));
            }
        }
    }

    /// Tells every hook to stop (their processes get SIGINT), starting no more.
    pub fn stop_all(&self) {
        self.stop.cancel();
    }

    /// Server shutdown: every hook is told to stop; resolves once all have exited
    /// (at most `command::GRACE` and a kill later).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.init.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.on_demand.clear();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
