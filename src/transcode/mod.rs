//! The per-path transcode stage (`transcode:`): a reader of `<path>/source` that
//! publishes `<path>`, one per transcoding path while its input has a stream. Decoding,
//! scaling and encoding run on a thread of their own (ffmpeg-next, cargo feature
//! `transcode`); a stage that can't keep up drops input up to the next keyframe.

#[cfg(feature = "transcode")]
mod audio;
#[cfg(feature = "transcode")]
pub mod bench;
#[cfg(feature = "transcode")]
mod decode;
#[cfg(feature = "transcode")]
mod encode;
#[cfg(feature = "transcode")]
mod hw;
#[cfg(feature = "transcode")]
mod pipeline;
mod status;
#[cfg(feature = "transcode")]
mod transcoder;

pub use status::{OutputStatus, StageSnapshot, StageStatus};

use crate::config::transcode::TranscodeConf;
use crate::config::Config;
use crate::core::{PathManager, Tasks};
use tokio_util::sync::CancellationToken;

/// What `--version` says about the transcode stage: the FFmpeg it runs on, or that
/// this build has none.
pub fn build_info() -> String {
    #[cfg(feature = "transcode")]
    {
        // SAFETY: av_version_info returns a static NUL-terminated string.
        let release = unsafe { std::ffi::CStr::from_ptr(ffmpeg_next::ffi::av_version_info()) };
        let v = ffmpeg_next::codec::version();
        format!(
            "transcode: ffmpeg {} (libavcodec {}.{}.{}; cuda, nvdec, nvenc: runtime-detected)",
            release.to_string_lossy(),
            v >> 16,
            (v >> 8) & 0xff,
            v & 0xff
        )
    }
    #[cfg(not(feature = "transcode"))]
    {
        "transcode: not built (cargo feature `transcode`)".to_string()
    }
}

/// Says once per transcoding path that this build can't transcode (the path then
/// serves its input untouched).
pub fn warn_if_unbuilt(config: &Config) {
    if cfg!(feature = "transcode") {
        return;
    }
    for (pattern, conf) in &config.paths {
        if conf.as_ref().is_some_and(|c| c.transcode.is_some()) {
            tracing::warn!(
                "paths: '{}': transcode is ignored: this build has no transcode stage \
                 (cargo feature `transcode`); the path serves its input untouched",
                pattern.entry_name()
            );
        }
    }
}

/// The running stages by path, each with the settings it started with.
#[derive(Clone)]
pub struct Stages(Tasks<String, TranscodeConf>);

/// Starts a path's stage each time its input (`<path>/source`) gets a stream.
pub fn start(manager: PathManager, shutdown: CancellationToken) -> Stages {
    let stages = Stages(Tasks::new(shutdown.clone()));
    if !cfg!(feature = "transcode") {
        return stages;
    }
    warm_up_cuda(&manager.config());
    let (s, m) = (stages.clone(), manager.clone());
    manager.on_ready(shutdown, move |name| {
        if let Some(parent) = m.config().transcode_input_of(name) {
            s.start_for(&m, parent);
        }
    });
    stages
}

impl Stages {
    /// Starts `name`'s stage unless one runs; returns whether it started.
    fn start_for(&self, manager: &PathManager, name: &str) -> bool {
        let Some(conf) = manager
            .config()
            .find_path(name)
            .and_then(|m| m.conf.transcode.clone())
        else {
            return false;
        };
        let (manager, path) = (manager.clone(), name.to_string());
        let c = conf.clone();
        self.0
            .start(name.to_string(), conf, move |stop| async move {
                run(&manager, &path, c, &stop).await;
            })
    }

    /// After a reload: stops stages whose path no longer transcodes or transcodes
    /// differently, and starts the stages of inputs that have a stream.
    /// Returns (started, stopped).
    pub fn reconcile(&self, manager: &PathManager) -> (usize, usize) {
        let config = manager.config();
        warm_up_cuda(&config);
        let stopped = self.0.retain(|name, conf| {
            let now = config
                .find_path(name)
                .and_then(|m| m.conf.transcode.clone());
            now.as_ref() == Some(conf)
        });
        let started = manager
            .path_names()
            .iter()
            .filter_map(|n| config.transcode_input_of(n))
            .filter(|parent| self.start_for(manager, parent))
            .count();
        (started, stopped)
    }
}

/// When a path may transcode on the GPU, has the driver compile FFmpeg's CUDA kernels
/// now, on a thread of its own, rather than when the first stream arrives. Once per
/// process: at start, or at the reload that adds the first such path.
#[cfg(feature = "transcode")]
fn warm_up_cuda(config: &Config) {
    use crate::config::transcode::HwAccel;
    let gpu = config.paths.values().flatten().any(|c| {
        c.transcode
            .as_ref()
            .is_some_and(|t| t.hwaccel != HwAccel::None)
    });
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !gpu || STARTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("cuda warm-up".into())
        .spawn(|| match hw::warm_up() {
            Ok(took) => tracing::info!("transcode: CUDA kernels ready in {took:.1?}"),
            Err(e) => tracing::info!("transcode: no CUDA device ({e})"),
        });
}

#[cfg(not(feature = "transcode"))]
fn warm_up_cuda(_: &Config) {}

#[cfg(feature = "transcode")]
async fn run(manager: &PathManager, name: &str, conf: TranscodeConf, stop: &CancellationToken) {
    pipeline::run(manager, name, conf, stop).await
}

#[cfg(not(feature = "transcode"))]
async fn run(
    _: &PathManager,
    _: &str,
    _: crate::config::transcode::TranscodeConf,
    _: &CancellationToken,
) {
}
