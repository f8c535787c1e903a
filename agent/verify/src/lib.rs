//! Smoke inference with candle: proves that a downloaded model file loads and produces finite
//! output (a few greedily decoded tokens for a causal LM, one normalised sentence embedding for a
//! BERT encoder). Owns path resolution, pre-load header checks and the report; it never panics
//! and never returns `Err` for a bad model — a bad model is a `failed` report with a clear detail.
//! It must not download, install or decide anything: the agent does that with the report.

mod bert;
mod gguf;
mod resolve;
mod spm;
pub mod synthetic;

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

pub use bert::embed;
pub use fleetfit_core::readiness::SmokeOutcome;

/// Errors of the helpers that return a value rather than a report ([`embed`], [`synthetic`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("i/o on `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Model(String),
}

/// Where the smoke inference runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmokeDevice {
    /// The CPU (threads: `CANDLE_NUM_THREADS`, read by candle itself).
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal.
    #[cfg(feature = "cuda")]
    Cuda(usize),
    /// A Metal GPU by ordinal.
    #[cfg(feature = "metal")]
    Metal(usize),
}

impl SmokeDevice {
    #[allow(clippy::unnecessary_wraps)] // `Err` with the cuda/metal features
    fn candle(self) -> Result<candle_core::Device, String> {
        match self {
            Self::Cpu => Ok(candle_core::Device::Cpu),
            #[cfg(feature = "cuda")]
            Self::Cuda(i) => candle_core::Device::new_cuda(i)
                .map_err(|e| format!("cannot open CUDA device {i}: {}", first_line(&e))),
            #[cfg(feature = "metal")]
            Self::Metal(i) => candle_core::Device::new_metal(i)
                .map_err(|e| format!("cannot open Metal device {i}: {}", first_line(&e))),
        }
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmokeOptions {
    /// The prompt [default: chosen from the GGUF's chat template, else "The capital of France is"].
    pub prompt: Option<String>,
    /// Greedy tokens to generate (stops early at end-of-sequence).
    pub max_new_tokens: usize,
    pub device: SmokeDevice,
    /// On the CPU, requantise tensors candle only runs on its scalar path (Q4_1, Q5_0, Q5_1) to
    /// Q8_0 when the file is at most this big. Q8_0 takes up to 2× their memory, so large files
    /// keep their type (slower, but the peak memory stays the file's) [default: 2 GiB].
    pub requantize_max_file_bytes: u64,
}

/// Default of [`SmokeOptions::requantize_max_file_bytes`].
pub const DEFAULT_REQUANTIZE_MAX_FILE_BYTES: u64 = 2 << 30;

impl Default for SmokeOptions {
    fn default() -> Self {
        Self {
            prompt: None,
            max_new_tokens: 8,
            device: SmokeDevice::Cpu,
            requantize_max_file_bytes: DEFAULT_REQUANTIZE_MAX_FILE_BYTES,
        }
    }
}

/// ★ What the smoke inference found (the JSON of `fleetfit-agent verify --format json`).
/// `outcome`, `detail`, `load_seconds`, `tokens_per_second` and `peak_rss_bytes` map one to one
/// onto [`fleetfit_core::readiness::Verification`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SmokeReport {
    /// `passed`, `failed` or `skipped` (skipped is never a pass); the readiness report's `smoke`.
    #[serde(alias = "smoke")]
    pub outcome: SmokeOutcome,
    /// The generated text, the embedding norm, or why it failed / was skipped.
    pub detail: String,
    /// The model file that was checked (after resolving a directory).
    pub path: String,
    /// `gguf`, `safetensors`, or `unknown`.
    pub format: String,
    /// `general.architecture`, or config.json's `model_type`.
    pub architecture: Option<String>,
    /// `gguf-embedded`, `tokenizer.json` or `fixed-ids`.
    pub tokenizer: Option<String>,
    pub load_seconds: f64,
    pub prompt_tokens: usize,
    pub prompt_tokens_per_second: f64,
    /// Decode speed: generated tokens per second after the prompt.
    pub tokens_per_second: f64,
    pub generated_text: Option<String>,
    pub generated_ids: Vec<u32>,
    /// Tensors converted at load time (e.g. `Q4_1→Q8_0 ×210`), which candle runs faster.
    pub requantized: Option<String>,
    pub embedding_dim: Option<usize>,
    /// The embedding's L2 norm before normalising.
    pub embedding_norm: Option<f64>,
    /// Peak resident memory of this process (VmHWM); 0 where unknown.
    pub peak_rss_bytes: u64,
    pub file_bytes: u64,
    /// Wall time of the whole check.
    pub total_seconds: f64,
}

impl SmokeReport {
    fn new(path: &Path) -> Self {
        Self {
            outcome: SmokeOutcome::Failed,
            detail: String::new(),
            path: path.display().to_string(),
            format: "unknown".to_owned(),
            architecture: None,
            tokenizer: None,
            load_seconds: 0.0,
            prompt_tokens: 0,
            prompt_tokens_per_second: 0.0,
            tokens_per_second: 0.0,
            generated_text: None,
            generated_ids: Vec::new(),
            requantized: None,
            embedding_dim: None,
            embedding_norm: None,
            peak_rss_bytes: 0,
            file_bytes: 0,
            total_seconds: 0.0,
        }
    }

    /// The report as the core's ★ [`fleetfit_core::readiness::Verification`] (integrity is the
    /// caller's to fill).
    pub fn verification(&self, integrity: bool) -> fleetfit_core::readiness::Verification {
        fleetfit_core::readiness::Verification {
            integrity,
            integrity_source: None,
            smoke: self.outcome,
            detail: self.detail.clone(),
            load_seconds: self.load_seconds,
            tokens_per_second: self.tokens_per_second,
            peak_rss_bytes: self.peak_rss_bytes,
        }
    }
}

/// Why a check stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    Failed(String),
    Skipped(String),
}

pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Failed(msg.into()))
}

/// The first line of an error: candle appends a backtrace under `RUST_BACKTRACE=1`.
pub(crate) fn first_line(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// Runs the smoke inference on a GGUF file, a safetensors file (config.json and tokenizer.json
/// beside it) or a directory holding either (an HF snapshot; symlinks are followed).
pub fn verify_path(path: &Path, opts: &SmokeOptions) -> SmokeReport {
    let started = Instant::now();
    let mut report = SmokeReport::new(path);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(path, opts, &mut report)
    }));
    match result {
        Ok(Ok(())) => report.outcome = SmokeOutcome::Passed,
        Ok(Err(Stop::Failed(d))) => {
            report.outcome = SmokeOutcome::Failed;
            report.detail = d;
        }
        Ok(Err(Stop::Skipped(d))) => {
            report.outcome = SmokeOutcome::Skipped;
            report.detail = d;
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            report.outcome = SmokeOutcome::Failed;
            report.detail = format!("the inference engine panicked: {msg}");
        }
    }
    report.total_seconds = started.elapsed().as_secs_f64();
    report.peak_rss_bytes = peak_rss_bytes();
    report
}

fn run(path: &Path, opts: &SmokeOptions, report: &mut SmokeReport) -> Result<(), Stop> {
    let target = resolve::resolve(path)?;
    report.path = target.path().display().to_string();
    report.file_bytes = std::fs::metadata(target.path()).map_or(0, |m| m.len());
    let device = opts.device.candle().map_err(Stop::Failed)?;
    match target {
        resolve::Target::Gguf(p) => {
            report.format = "gguf".to_owned();
            gguf::run(&p, opts, &device, report)
        }
        resolve::Target::Safetensors(p) => {
            report.format = "safetensors".to_owned();
            bert::run(&p, &device, report)
        }
    }
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status); 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_vmhwm(&s))
        .unwrap_or(0)
}

fn parse_vmhwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Rate with a zero guard.
pub(crate) fn per_second(count: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmhwm_in_kilobytes() {
        let s = "Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vmhwm(s), Some(2048 * 1024));
        assert_eq!(parse_vmhwm("Name: x\n"), None);
    }

    #[test]
    fn own_peak_rss_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes() > 0);
        }
    }
}
