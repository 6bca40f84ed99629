//! `hlsDirectory`: a muxer's segments, init sections and media playlist also written
//! under `<dir>/<path>/`, replaced atomically, and deleted as they leave the window,
//! so any web server can serve them (nginx-rtmp `hls_path` style).

use bytes::Bytes;
use std::path::{Path, PathBuf};

pub struct DiskWriter {
    dir: PathBuf,
    ext: &'static str,
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
        if let Err(e) = r {
            tracing::warn!(
                "hlsDirectory: can't write {}: {e}",
                self.dir.join(name).display()
            );
        }
    }

    async fn remove(&self, name: &str) {
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
}
