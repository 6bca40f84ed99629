//! What a running stage is doing, for the API: how it decodes, what each output
//! encodes with, and what it lost (input dropped while behind, damaged units, encoder
//! failures it survived).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Shared between the stage's pump, its thread and the API.
#[derive(Debug, Default)]
pub struct StageStatus {
    /// Input units dropped because the stage was behind (up to the next keyframe).
    pub dropped_units: AtomicU64,
    /// Input units the decoder refused (decoding resumed at the next keyframe).
    pub decode_errors: AtomicU64,
    /// Encoder failures an output survived by falling back.
    pub fallbacks: AtomicU64,
    info: Mutex<Info>,
}

#[derive(Debug, Default, Clone)]
struct Info {
    decision: String,
    decode: String,
    outputs: Vec<OutputStatus>,
}

/// One output of the stage.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OutputStatus {
    pub path: String,
    /// `libx264`, `h264_nvenc`, …; `copy` when passing the input through, `ended`.
    pub encoder: String,
    /// `1280x720`, once the encoder opened.
    pub size: String,
    /// Where frames are scaled: `swscale`, `scale_cuda, …`.
    pub scaling: String,
}

/// A stage as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSnapshot {
    /// The decision line (what was found on this host and why).
    pub decision: String,
    /// `nvdec` or `software`, once frames came out of the decoder.
    pub decode: String,
    pub outputs: Vec<OutputStatus>,
    pub dropped_units: u64,
    pub decode_errors: u64,
    pub fallbacks: u64,
}

impl StageStatus {
    fn info(&self) -> std::sync::MutexGuard<'_, Info> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_decision(&self, decision: &str) {
        self.info().decision = decision.to_string();
    }

    pub fn set_decode(&self, how: &str) {
        self.info().decode = how.to_string();
    }

    /// Sets output `i`'s line (outputs are numbered as the stage made them).
    pub fn set_output(&self, i: usize, out: OutputStatus) {
        let mut info = self.info();
        if info.outputs.len() <= i {
            info.outputs.resize(i + 1, OutputStatus::default());
        }
        info.outputs[i] = out;
    }

    pub fn snapshot(&self) -> StageSnapshot {
        let i = self.info().clone();
        StageSnapshot {
            decision: i.decision,
            decode: i.decode,
            outputs: i.outputs,
            dropped_units: self.dropped_units.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }
}
