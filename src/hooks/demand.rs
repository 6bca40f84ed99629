//! `runOnDemand`: one command per path while someone asks for it. It stops
//! `runOnDemandCloseAfter` after the path last had a reader or a request (then
//! `runOnUnDemand` runs), when a reload changes or removes it, or at shutdown.

use super::{command, Hooks, Spec};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a running command looks at its path's readers.
const IDLE_CHECK: Duration = Duration::from_millis(250);

struct Entry {
    id: u64,
    spec: Spec,
    /// The last moment the path had a reader or a request.
    active: Arc<Mutex<Instant>>,
    stop: CancellationToken,
}

/// The running `runOnDemand` commands, by path name.
#[derive(Default)]
pub struct OnDemand {
    running: Mutex<HashMap<String, Entry>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl OnDemand {
    fn running(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.running().contains_key(name)
    }

    /// Stops the commands `keep` says no to (a reload removed or changed them).
    pub fn retain(&self, mut keep: impl FnMut(&str, &Spec) -> bool) {
        self.running().retain(|name, e| {
            let kept = keep(name, &e.spec);
            if !kept {
                e.stop.cancel();
            }
            kept
        });
    }

    pub(super) fn clear(&self) {
        self.retain(|_, _| false);
    }
}

/// What `Hooks::demand` starts for a path.
pub struct Demand {
    pub spec: Spec,
    pub close_after: Duration,
    /// Run once the command stopped for want of readers (or a reload).
    pub undemand: Spec,
    /// The path's readers now.
    pub readers: Box<dyn Fn() -> usize + Send>,
}

impl Hooks {
    /// A reader asks for `name`: starts its `runOnDemand` command unless it runs, and
    /// counts as activity either way.
    pub fn demand(self: &Arc<Self>, name: &str, d: Demand) {
        let mut running = self.on_demand.running();
        if let Some(e) = running.get(name) {
            *e.active.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            return;
        }
        let Some(rt) = &self.runtime else { return };
        if self.stop.is_cancelled() || d.spec.cmd.trim().is_empty() {
            return;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let active = Arc::new(Mutex::new(Instant::now()));
        let stop = self.stop.child_token();
        running.insert(
            name.to_string(),
            Entry {
                id,
                spec: d.spec.clone(),
                active: active.clone(),
                stop: stop.clone(),
            },
        );
        drop(running);
        tracing::info!(path = name, "runOnDemand: starting {:?}", d.spec.cmd);
        let name = name.to_string();
        let shutdown = self.stop.clone();
        let me = Arc::downgrade(self);
        let fut = async move {
            let cmd = command::supervise(d.spec, stop.clone());
            tokio::pin!(cmd);
            let mut tick = tokio::time::interval(IDLE_CHECK);
            loop {
                tokio::select! {
                    _ = &mut cmd => break,
                    _ = tick.tick() => {
                        let mut last = active.lock().unwrap_or_else(|e| e.into_inner());
                        if (d.readers)() > 0 {
                            *last = Instant::now();
                        } else if last.elapsed() >= d.close_after && !stop.is_cancelled() {
                            tracing::info!(path = %name, "runOnDemand: no readers for {:?}; stopping", d.close_after);
                            stop.cancel();
                        }
                    }
                }
            }
            if let Some(hooks) = me.upgrade() {
                let mut running = hooks.on_demand.running();
                if running.get(&name).is_some_and(|e| e.id == id) {
                    running.remove(&name);
                }
                drop(running);
                if stop.is_cancelled() && !shutdown.is_cancelled() {
                    hooks.run(d.undemand);
                }
            }
        };
        rt.spawn(self.tracker.track_future(fut));
    }
}
