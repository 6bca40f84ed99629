//! Logging set-up for the binary: tracing to stderr at `logLevel` (or `RUST_LOG`,
//! which wins), with a handle so that a reload changes the level live.

use crate::config::LogLevel;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber. Without `RUST_LOG`, `set_level` changes its level.
pub fn init(level: LogLevel) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let fixed = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| filter(level));
    let (filter, handle) = reload::Layer::new(filter);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_target(false)
                // Colours only on a terminal, not in journald or a piped log.
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .try_init()
        .is_ok();
    if installed && !fixed {
        let _ = HANDLE.set(handle);
    }
}

/// `logLevel` for this crate; libraries (retina, hyper, …) say only warnings and
/// errors, so `debug` shows our sessions, not their parsers' internals.
fn filter(level: LogLevel) -> EnvFilter {
    match level {
        LogLevel::Error | LogLevel::Warn => EnvFilter::new(level.as_str()),
        _ => EnvFilter::new(format!("warn,mediarouter={}", level.as_str())),
    }
}

/// Changes the level of the subscriber `init` installed; a no-op without one (tests,
/// or `RUST_LOG` set).
pub fn set_level(level: LogLevel) {
    if let Some(h) = HANDLE.get() {
        if let Err(e) = h.reload(filter(level)) {
            tracing::warn!("can't change logLevel: {e}");
        }
    }
}
