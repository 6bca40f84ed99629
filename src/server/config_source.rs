//! The text and file the running config came from. File reloads and the API's config
//! writes both go through here, one at a time: a write to a file edited since it was
//! loaded is refused (409), so neither change is lost silently.

use super::{ReloadSummary, ServerInner};
use crate::config::edit::{self, Edit, EditError};
use crate::config::node::Node;
use crate::config::Config;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What errors of a config written through the API name as their file.
pub const SOURCE_LABEL: &str = "the API request";

#[derive(Debug, Default)]
pub(super) struct ConfigSource {
    file: Option<PathBuf>,
    /// Unknown for a server started from a `Config` alone: writes are refused.
    text: Option<String>,
    /// Whether `MEDIAROUTER_…`/`MTX_…` variables override the text, as at start.
    env: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigWriteError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Persist(String),
}

impl From<EditError> for ConfigWriteError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NotFound(m) => ConfigWriteError::NotFound(m),
            EditError::Invalid(m) => ConfigWriteError::Invalid(m),
        }
    }
}

impl ConfigSource {
    fn parse(&self, text: &str, label: &str) -> Result<Config, crate::config::ConfigError> {
        let vars: Vec<(String, String)> = match self.env {
            true => std::env::vars().collect(),
            false => Vec::new(),
        };
        Config::parse_with_env(text, label, vars)
    }
}

/// `--check`'s message without the file, line and column of a document the client
/// never saw: the first line, its position replaced by the key it names in `text`
/// (`paths.cam2.maxReaders: invalid u32`).
fn line_free(message: &str, text: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let at = regex::Regex::new(r"(?:error: )?(?:at )?line (\d+),? column \d+:? ?").expect("regex");
    let key = at
        .captures(first)
        .and_then(|c| c[1].parse::<usize>().ok())
        .and_then(|line| key_path(text, line));
    let rest = first
        .strip_prefix(SOURCE_LABEL)
        .map(|r| {
            let r = r.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit());
            match r.strip_prefix(" (") {
                Some(paren) => paren.split_once("):").map_or(r, |(_, after)| after),
                None => r,
            }
        })
        .unwrap_or(first);
    let rest = at.replace_all(rest.trim(), "").trim().to_string();
    match key {
        Some(k) if !rest.contains(&k) => format!("{k}: {rest}"),
        _ => rest,
    }
}

/// The dotted key path of the block-YAML line `line` (1-based): its key and those of
/// the less indented lines above it.
fn key_path(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ");
        let k = t.split(':').next()?.trim().trim_matches('\'');
        (!k.is_empty() && t.contains(':')).then(|| k.to_string())
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut at = line.checked_sub(1)?;
    let mut path = vec![key_of(lines.get(at)?)?];
    let mut level = indent(lines[at]);
    while level > 0 && at > 0 {
        at -= 1;
        let l = lines[at];
        if indent(l) < level && !l.trim().is_empty() {
            level = indent(l);
            if let Some(k) = key_of(l).filter(|_| !l.trim_start().starts_with("- ")) {
                path.push(k);
            }
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// Writes `text` to `file` so that a crash leaves the old file or the new one: a
/// temporary file beside it, synced, renamed over it, with the old one's permissions.
/// The previous text stays as `<file>.bak` (comments are not kept in the new text); a
/// symlink stays a symlink.
fn write_atomic(file: &Path, text: &str, previous: &str) -> std::io::Result<()> {
    // Through a symlink (a ConfigMap's, a `v2.yml` swapped in): write what it points at.
    let file = &std::fs::canonicalize(file)?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let bak = dir.join(format!("{name}.bak"));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(file) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::write(&bak, previous)?;
        std::fs::rename(&tmp, file)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl ServerInner {
    /// Where the running config came from: its file (none for the embedded default or
    /// a test's text) and text; `env`: variables override it as at start.
    pub async fn set_config_source(&self, file: Option<PathBuf>, text: String, env: bool) {
        *self.source.lock().await = ConfigSource {
            file,
            text: Some(text),
            env,
        };
    }

    /// Loads the file again and applies it; a bad file leaves the running config as is.
    pub async fn reload_file(&self, why: &str) {
        let mut src = self.source.lock().await;
        let Some(file) = src.file.clone() else {
            tracing::info!("{why}: running on the embedded default config, nothing to reload");
            return;
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(
                    "reload ({why}) failed, keeping the running config: can't read {}: {e}",
                    file.display()
                );
                self.reloads.note(false);
                return;
            }
        };
        if src.text.as_deref() == Some(text.as_str()) {
            tracing::debug!(
                "reload ({why}): the config is unchanged (the file is what the server runs)"
            );
            return;
        }
        match src.parse(&text, &file.display().to_string()) {
            Err(e) => {
                tracing::error!("reload ({why}) failed, keeping the running config: {e}");
                self.reloads.note(false);
            }
            Ok(new) => {
                src.text = Some(text);
                if new == *self.manager.config() {
                    tracing::debug!("reload ({why}): the config is unchanged");
                    return;
                }
                let summary = self.reload(new).await;
                tracing::info!("{summary}");
            }
        }
    }

    /// Applies a config write of the API: edits the document as written, validates it
    /// as a file reload would, writes the file back (unless `apiPersist: no`), then
    /// applies the difference.
    ///
    /// Boxed: the API listener this runs from is restarted by it, and the future's
    /// `Send` can't be inferred through that cycle.
    pub fn write_config(
        &self,
        edit: Edit,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ReloadSummary, ConfigWriteError>> + Send + '_>,
    > {
        Box::pin(self.write_config_now(edit))
    }

    async fn write_config_now(&self, edit: Edit) -> Result<ReloadSummary, ConfigWriteError> {
        let mut src = self.source.lock().await;
        let Some(text) = src.text.clone() else {
            return Err(ConfigWriteError::Unavailable(
                "this server was started without a config text to edit".into(),
            ));
        };
        let persist = self.manager.config().api_persist;
        let file = src.file.clone().filter(|_| persist);
        if let Some(file) = &file {
            let on_disk = std::fs::read_to_string(file).map_err(|e| {
                ConfigWriteError::Persist(format!("can't read {}: {e}", file.display()))
            })?;
            if on_disk != text {
                return Err(ConfigWriteError::Conflict(format!(
                    "{} was edited since the server loaded it; once it is reloaded (the watcher, SIGHUP, or a fix if it doesn't load), retry",
                    file.display()
                )));
            }
        }
        let mut doc = match text.trim() {
            "" => Node::Null,
            _ => Node::parse(&text).map_err(|e| ConfigWriteError::Invalid(line_free(&e, &text)))?,
        };
        let old = doc.clone();
        edit::apply(&mut doc, edit)?;
        edit::restore_redacted(&mut doc, &old)?;
        let new_text = doc.to_block_yaml();
        let new = src
            .parse(&new_text, SOURCE_LABEL)
            .map_err(|e| ConfigWriteError::Invalid(line_free(&e.to_string(), &new_text)))?;
        if let Some(file) = &file {
            write_atomic(file, &new_text, &text).map_err(|e| {
                ConfigWriteError::Persist(format!("can't write {}: {e}", file.display()))
            })?;
        }
        src.text = Some(new_text);
        let summary = self.reload(new).await;
        tracing::info!("config written through the API; {summary}");
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::line_free;

    #[test]
    fn messages_lose_the_generated_documents_position() {
        let text = "logLevel: info\npaths:\n  cam2:\n    maxReaders: lots\n";
        for (m, want) in [
            (
                "the API request:3:5: unknown field `maxReaderz`, expected one of …",
                "unknown field `maxReaderz`, expected one of …",
            ),
            (
                "the API request (pathDefaults and renamed keys applied): error: line 4 column 17: invalid u32\n --> <input>:4:17\n  |",
                "paths.cam2.maxReaders: invalid u32",
            ),
            ("the API request: invalid queue size 0", "invalid queue size 0"),
        ] {
            assert_eq!(line_free(m, text), want);
        }
    }
}
