//! Writes a recorder's events to segment files: one file per `Open`, created with its
//! first part (so no file is ever only a header), each part appended and handed to the
//! kernel at once (so `kill -9` loses nothing written). A failing disk or directory
//! is logged once per path; the next keyframe tries again.

use super::cutter::Event;
use super::pattern::RecordPattern;
use crate::core::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

struct OpenFile {
    file: tokio::fs::File,
    name: String,
    start: SystemTime,
    end: SystemTime,
    /// Bytes of whole parts in the file.
    len: u64,
}

pub struct Writer {
    /// Whose hooks a segment fires (the live path of the stream being written).
    pub path: Arc<Path>,
    pattern: RecordPattern,
    open: Option<OpenFile>,
    /// A file to create with the next part: its name, start and header.
    next: Option<(String, SystemTime, bytes::Bytes)>,
    failing: bool,
    /// Bytes written, for the log and the benchmark.
    pub written: u64,
}

impl Writer {
    pub fn new(path: Arc<Path>, pattern: RecordPattern) -> Self {
        Writer {
            path,
            pattern,
            open: None,
            next: None,
            failing: false,
            written: 0,
        }
    }

    /// Applies one event; `false` when the file failed and the next one must start at
    /// a keyframe.
    pub async fn apply(&mut self, event: Event) -> bool {
        match event {
            Event::Open { start, header } => {
                self.close().await;
                let name = self.pattern.render(self.path.name(), start);
                self.next = Some((name, start, header));
                true
            }
            Event::Data { bytes, end } => {
                if let Some((name, start, header)) = self.next.take() {
                    return self.create(name, start, &header, &bytes, end).await;
                }
                let Some(o) = &mut self.open else {
                    return true;
                };
                // flush: tokio's File holds written bytes until flushed.
                let r = async {
                    o.file.write_all(&bytes).await?;
                    o.file.flush().await
                };
                match r.await {
                    Ok(()) => {
                        o.end = end;
                        o.len += bytes.len() as u64;
                        self.written += bytes.len() as u64;
                        true
                    }
                    Err(e) => {
                        // The file ends with its last whole part, so it plays as it is.
                        let _ = o.file.set_len(o.len).await;
                        let msg = format!("can't write {}: {e}", o.name);
                        self.close().await;
                        self.fail(&msg)
                    }
                }
            }
        }
    }

    async fn create(
        &mut self,
        name: String,
        start: SystemTime,
        header: &[u8],
        first: &[u8],
        end: SystemTime,
    ) -> bool {
        match create(&name, header, first).await {
            Ok(file) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!(path = %self.path.name(), "recording resumed into {name}");
                } else {
                    tracing::debug!(path = %self.path.name(), "recording segment {name}");
                }
                self.written += (header.len() + first.len()) as u64;
                self.path.record_segment(&name, None);
                self.open = Some(OpenFile {
                    file,
                    name,
                    start,
                    end,
                    len: (header.len() + first.len()) as u64,
                });
                true
            }
            Err(e) => self.fail(&format!("can't create {name}: {e}")),
        }
    }

    fn fail(&mut self, why: &str) -> bool {
        if !std::mem::replace(&mut self.failing, true) {
            tracing::error!(path = %self.path.name(), "recording stopped: {why}; the stream is still served, and recording resumes once it can write again");
        }
        false
    }

    /// Ends the open file: it is complete as it stands.
    pub async fn close(&mut self) {
        self.next = None;
        let Some(o) = self.open.take() else {
            return;
        };
        // Durable on disk, not only in the page cache, before it counts as complete.
        let _ = o.file.sync_data().await;
        let d = o.end.duration_since(o.start).unwrap_or(Duration::ZERO);
        self.path.record_segment(&o.name, Some(d));
    }
}

async fn create(name: &str, header: &[u8], first: &[u8]) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = std::path::Path::new(name).parent() {
        if !dir.as_os_str().is_empty() {
            tokio::fs::create_dir_all(dir).await?;
        }
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(name)
        .await?;
    let written = async {
        file.write_all(&[header, first].concat()).await?;
        file.flush().await
    };
    if let Err(e) = written.await {
        // Not even its first part made it (a full disk): no file is better than one
        // that doesn't play.
        drop(file);
        let _ = tokio::fs::remove_file(name).await;
        return Err(e);
    }
    Ok(file)
}
