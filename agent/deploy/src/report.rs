//! The readiness report's I/O: written to the state dir, queued in an outbox, and sent to the
//! control plane with retries until it is acknowledged (the server deduplicates on `report_id`,
//! so a retry after a lost acknowledgement is harmless).

use crate::state::write_atomic;
use fleetfit_core::readiness::ReadinessReport;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where reports go.
#[derive(Clone, Debug)]
pub struct ReportTarget {
    /// The full URL the report is `PUT` to (`{server}/v1/devices/{id}/readiness`).
    pub url: String,
    /// The device credential, sent as `Authorization: Bearer`.
    pub bearer: Option<String>,
    /// Give up (and leave the report in the outbox) after this long.
    pub max_elapsed: Duration,
}

/// Why a report was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the control plane refused the report ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error(
        "the control plane did not acknowledge the report within {waited:?} (last error: {last}); it stays queued in {queued}"
    )]
    Unacknowledged {
        waited: Duration,
        last: String,
        queued: String,
    },
    #[error("cannot queue the report in `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `report` as `<state dir>/readiness.json` (the device's latest word).
pub fn write_latest(state_dir: &Path, report: &ReadinessReport) -> std::io::Result<PathBuf> {
    let path = state_dir.join("readiness.json");
    let mut text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    text.push('\n');
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// The outbox directory: reports written before sending, removed once acknowledged.
pub fn outbox_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("outbox")
}

/// Queues `report` in the outbox (named so that `ls` order is send order).
pub fn enqueue(state_dir: &Path, report: &ReadinessReport) -> Result<PathBuf, ReportError> {
    let dir = outbox_dir(state_dir);
    let name = format!(
        "{}-{}.json",
        report.generated_at.replace([':', '-'], ""),
        report.report_id
    );
    let path = dir.join(name);
    let text = serde_json::to_vec_pretty(report).map_err(|e| ReportError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    write_atomic(&path, &text).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The queued reports, oldest first. Unreadable entries are skipped (and left in place).
pub fn queued(state_dir: &Path) -> Vec<(PathBuf, ReadinessReport)> {
    let Ok(entries) = std::fs::read_dir(outbox_dir(state_dir)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read(&p).ok()?;
            let report = serde_json::from_slice(&text).ok()?;
            Some((p, report))
        })
        .collect()
}

/// Sends one report until acknowledged (2xx), retrying connection errors, timeouts, 408, 429
/// and 5xx with exponential backoff and jitter; other statuses are refusals (not retried).
pub async fn send(
    client: &reqwest::Client,
    target: &ReportTarget,
    report: &ReadinessReport,
) -> Result<(), ReportError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let last;
        let mut req = client
            .put(&target.url)
            .timeout(Duration::from_secs(15))
            .json(report);
        if let Some(token) = &target.bearer {
            req = req.bearer_auth(token);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                if !(status == 408 || status == 429 || status >= 500) {
                    return Err(ReportError::Refused {
                        status,
                        body: body.chars().take(300).collect(),
                    });
                }
                last = format!("HTTP {status}");
            }
            Err(e) => last = without_url_secrets(&e.to_string()),
        }
        if start.elapsed() + delay > target.max_elapsed {
            return Err(ReportError::Unacknowledged {
                waited: start.elapsed(),
                last,
                queued: String::new(),
            });
        }
        tokio::time::sleep(jittered(delay)).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Queues, sends, and removes from the queue once acknowledged.
pub async fn deliver(
    client: &reqwest::Client,
    target: &ReportTarget,
    state_dir: &Path,
    report: &ReadinessReport,
) -> Result<(), ReportError> {
    let queued_at = enqueue(state_dir, report)?;
    match send(client, target, report).await {
        Ok(()) => {
            let _ = std::fs::remove_file(&queued_at);
            Ok(())
        }
        Err(ReportError::Unacknowledged { waited, last, .. }) => Err(ReportError::Unacknowledged {
            waited,
            last,
            queued: queued_at.display().to_string(),
        }),
        Err(e) => {
            // A refusal will not get better by resending: keep it aside for inspection.
            let _ = std::fs::rename(&queued_at, queued_at.with_extension("refused"));
            Err(e)
        }
    }
}

/// `d` ± 25 %, from the clock's sub-second noise (no RNG dependency needed for jitter).
pub fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(factor)
}

/// reqwest errors print the URL; URLs here never carry secrets, but strip any query anyway.
fn without_url_secrets(s: &str) -> String {
    s.split('?').next().unwrap_or(s).to_owned()
}
