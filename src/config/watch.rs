//! Watches the config file (notify + notify-debouncer-full). The directory holding
//! the file is watched, and that of its target when it is a symlink, so in-place
//! writes, write-then-rename and symlink swaps (Kubernetes ConfigMaps) are all seen.
//! One save can yield several events: callers compare parsed configs, not events.

use notify::RecommendedWatcher;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long events settle before a reload is tried.
const SETTLE: Duration = Duration::from_millis(200);

pub struct ConfigWatch {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    file: PathBuf,
    watched: Vec<PathBuf>,
    rx: mpsc::UnboundedReceiver<()>,
}

impl ConfigWatch {
    pub fn new(file: &Path) -> notify::Result<ConfigWatch> {
        let (tx, rx) = mpsc::unbounded_channel();
        let debouncer = new_debouncer(SETTLE, None, move |r: DebounceEventResult| match r {
            Ok(events) if !events.is_empty() => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(errors) => {
                for e in errors {
                    tracing::warn!("watching the config file: {e}");
                }
            }
        })?;
        let mut w = ConfigWatch {
            debouncer,
            file: std::path::absolute(file)?,
            watched: Vec::new(),
            rx,
        };
        w.refresh()?;
        Ok(w)
    }

    /// The directories to watch: the file's, and its resolved target's.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(d) = self.file.parent() {
            dirs.push(d.to_path_buf());
        }
        if let Ok(target) = std::fs::canonicalize(&self.file) {
            if let Some(d) = target.parent() {
                if !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_path_buf());
                }
            }
        }
        dirs
    }

    /// Follows a symlink that now points elsewhere.
    fn refresh(&mut self) -> notify::Result<()> {
        let dirs = self.dirs();
        for d in &self.watched {
            if !dirs.contains(d) {
                let _ = self.debouncer.unwatch(d);
            }
        }
        for d in &dirs {
            if !self.watched.contains(d) {
                self.debouncer
                    .watch(d, notify::RecursiveMode::NonRecursive)?;
            }
        }
        self.watched = dirs;
        Ok(())
    }

    /// Waits until something changed in the watched directories.
    pub async fn changed(&mut self) {
        if self.rx.recv().await.is_none() {
            // The debouncer is gone: nothing will come.
            std::future::pending::<()>().await;
        }
        while self.rx.try_recv().is_ok() {}
        if let Err(e) = self.refresh() {
            tracing::warn!("watching the config file: {e}");
        }
    }
}
