//! Keyed long-lived tasks (push relays, transcode stages): at most one per key, each
//! with a stop token under a parent; an ended task leaves the map unless a newer one
//! under the same key replaced it.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

type Map<K, V> = HashMap<K, (u64, CancellationToken, V)>;

pub struct Tasks<K, V> {
    running: Arc<Mutex<Map<K, V>>>,
    parent: CancellationToken,
}

impl<K, V> Clone for Tasks<K, V> {
    fn clone(&self) -> Self {
        Tasks {
            running: self.running.clone(),
            parent: self.parent.clone(),
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl<K, V> Tasks<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Send + 'static,
{
    /// Tasks stopped along with `parent`.
    pub fn new(parent: CancellationToken) -> Self {
        Tasks {
            running: Arc::default(),
            parent,
        }
    }

    fn running(&self) -> MutexGuard<'_, Map<K, V>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `task(stop)` under `key` unless one runs there; returns whether it did.
    pub fn start<F, Fut>(&self, key: K, value: V, task: F) -> bool
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let stop = self.parent.child_token();
        {
            let mut running = self.running();
            if running.contains_key(&key) {
                return false;
            }
            running.insert(key.clone(), (id, stop.clone(), value));
        }
        let fut = task(stop);
        let me = self.clone();
        tokio::spawn(async move {
            fut.await;
            let mut running = me.running();
            if running.get(&key).is_some_and(|(i, _, _)| *i == id) {
                running.remove(&key);
            }
        });
        true
    }

    /// Stops and forgets the tasks `keep` says no to; returns how many.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let mut stopped = 0;
        self.running().retain(|k, (_, stop, v)| {
            let kept = keep(k, v);
            if !kept {
                stop.cancel();
                stopped += 1;
            }
            kept
        });
        stopped
    }
}
