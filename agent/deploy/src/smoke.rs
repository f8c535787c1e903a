//! Runs the smoke inference in a child process (`fleetfit-agent verify --format json PATH`), so
//! a crash, an abort or an out-of-memory kill inside the inference engine fails the check instead
//! of the agent, and the peak memory measured is the inference's own.

use fleetfit_core::readiness::SmokeOutcome;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// What the child reported.
#[derive(Clone, Debug, PartialEq)]
pub struct SmokeResult {
    pub outcome: SmokeOutcome,
    pub detail: String,
    pub load_seconds: f64,
    pub tokens_per_second: f64,
    pub peak_rss_bytes: u64,
    /// The child's whole JSON report, kept for `--format json` output.
    pub raw: serde_json::Value,
}

/// How to start the smoke test: the program and the arguments before the path
/// (normally this executable and `verify --format json`).
#[derive(Clone, Debug)]
pub struct SmokeCommand {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub timeout: Duration,
}

impl SmokeCommand {
    /// This executable's `verify --format json`.
    pub fn this_exe(timeout: Duration) -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?.into_os_string(),
            args: vec!["verify".into(), "--format".into(), "json".into()],
            timeout,
        })
    }
}

fn failed(detail: String) -> SmokeResult {
    SmokeResult {
        outcome: SmokeOutcome::Failed,
        detail,
        load_seconds: 0.0,
        tokens_per_second: 0.0,
        peak_rss_bytes: 0,
        raw: serde_json::Value::Null,
    }
}

/// Runs the smoke test on `path` for `device` (passed as `--device`, so the child need not
/// probe). Never errors: anything that goes wrong is a failed check.
pub async fn run(cmd: &SmokeCommand, path: &Path, device: &str) -> SmokeResult {
    let mut command = tokio::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .args(["--device", device])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // candle's matmuls run on rayon's pool, its own pool reads CANDLE_NUM_THREADS: pin both the
    // same way (an unpinned pool spin-waits badly on a busy machine).
    if std::env::var_os("RAYON_NUM_THREADS").is_none()
        && let Some(n) = std::env::var_os("CANDLE_NUM_THREADS")
    {
        command.env("RAYON_NUM_THREADS", n);
    }
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return failed(format!(
                "cannot start the smoke test `{}`: {e}",
                cmd.program.to_string_lossy()
            ));
        }
    };
    let output = match tokio::time::timeout(cmd.timeout, child.wait_with_output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return failed(format!("the smoke test process failed: {e}")),
        Err(_) => {
            return failed(format!(
                "the smoke test did not finish within {:?} (killed)",
                cmd.timeout
            ));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Ok(raw) = serde_json::from_str::<serde_json::Value>(stdout.trim()) else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let how = if let Some(code) = output.status.code() {
            format!("exited with {code}")
        } else {
            use std::os::unix::process::ExitStatusExt as _;
            format!(
                "was killed by signal {}",
                output.status.signal().unwrap_or(0)
            )
        };
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return failed(format!(
            "the smoke test process {how} without a report: {tail}"
        ));
    };
    let outcome = raw
        .get("outcome")
        .or_else(|| raw.get("smoke"))
        .and_then(|v| serde_json::from_value::<SmokeOutcome>(v.clone()).ok())
        .unwrap_or(SmokeOutcome::Failed);
    let num = |k: &str| {
        raw.get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let detail = raw
        .get("detail")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_owned();
    // A child that printed a passing report but exited non-zero is not trusted.
    let outcome = if outcome == SmokeOutcome::Passed && !output.status.success() {
        SmokeOutcome::Failed
    } else {
        outcome
    };
    SmokeResult {
        outcome,
        detail,
        load_seconds: num("load_seconds"),
        tokens_per_second: num("tokens_per_second"),
        peak_rss_bytes: raw
            .get("peak_rss_bytes")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        raw,
    }
}
