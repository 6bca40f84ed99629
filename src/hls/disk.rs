//! `hlsDirectory`: a muxer's segments, init sections and media playlist also written
//! under `<dir>/<path>/`, replaced atomically, and deleted as they leave the window,
//! so any web server can serve them (nginx-rtmp `hls_path` style).

use bytes::Bytes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct DiskWriter {
    dir: PathBuf,
    ext: &'static str,
    /// Files written and not removed yet, removed when the muxer closes.
    written: Mutex<BTreeSet<String>>,
}

impl DiskWriter {
    /// `None` when `root` is empty or the path name could escape it.
    pub fn new(root: &str, path: &str, ext: &'static str) -> Option<DiskWriter> {
        if root.is_empty()
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return None;
        }
        Some(DiskWriter {
            dir: Path::new(root).join(path),
            ext,
            written: Mutex::default(),
        })
    }

    async fn write(&self, name: &str, data: &[u8]) {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let r = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&tmp, data).await?;
            tokio::fs::rename(&tmp, self.dir.join(name)).await
        }
        .await;
        match r {
            Ok(()) => {
                self.files().insert(name.to_string());
            }
            Err(e) => tracing::warn!(
                "hlsDirectory: can't write {}: {e}",
                self.dir.join(name).display()
            ),
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn remove(&self, name: &str) {
        self.files().remove(name);
        if let Err(e) = tokio::fs::remove_file(self.dir.join(name)).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("hlsDirectory: can't remove {name}: {e}");
            }
        }
    }

    pub async fn init(&self, id: u64, data: &Bytes) {
        self.write(&format!("init{id}.mp4"), data).await;
    }

    /// A new segment, then the playlist naming it; segments and inits gone from the
    /// window are deleted after the playlist no longer names them.
    pub async fn segment(
        &self,
        seq: u64,
        data: &Bytes,
        playlist: &str,
        gone: &[u64],
        gone_inits: &[u64],
    ) {
        self.write(&format!("seg{seq}.{}", self.ext), data).await;
        self.write("stream.m3u8", playlist.as_bytes()).await;
        for s in gone {
            self.remove(&format!("seg{s}.{}", self.ext)).await;
        }
        for i in gone_inits {
            self.remove(&format!("init{i}.mp4")).await;
        }
    }

    /// The muxer closed: its files go, and the path's directory if that empties it.
    pub async fn clear(&self) {
        let names: Vec<String> = self.files().iter().cloned().collect();
        for n in names {
            self.remove(&n).await;
        }
        let _ = tokio::fs::remove_dir(&self.dir).await;
    }
}
