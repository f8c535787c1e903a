//! The catalog and policies the server plans with: read from two directories (a git checkout),
//! validated with the core's parsers, and swapped in atomically. A reload (SIGHUP, or a changed
//! file seen by the 2-second mtime poll) that fails validation is logged with `path:line:col`
//! and counted; the last good configuration stays in force.

use crate::metrics::Metrics;
use fleetfit_core::catalog::{Catalog, parse_catalog};
use fleetfit_core::digest::{digest_bytes, digest_files};
use fleetfit_core::policy::{PolicySet, parse_policies};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// A validated configuration.
pub struct Config {
    pub catalog: Catalog,
    pub policies: PolicySet,
    pub catalog_digest: String,
    pub policies_digest: String,
    /// Digest of both (and the day rule expiry is evaluated on): part of the plan cache key.
    pub digest: String,
    /// `YYYY-MM-DD` (UTC) the policies were parsed for.
    pub today: String,
}

/// Where the configuration comes from, and the one in force.
pub struct ConfigSource {
    pub catalog_dir: PathBuf,
    pub policies_dir: PathBuf,
    current: RwLock<Arc<Config>>,
}

/// `(path, text)` of every `*.yaml`/`*.yml` in `dir` (not recursive; `*.test.yaml` and hidden
/// files skipped), sorted — the same files `fleetfit plan --catalog/--policies DIR` reads.
pub fn read_yaml_dir(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut paths = yaml_paths(dir)?;
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p)
                .map(|t| (p.display().to_string(), t))
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
        })
        .collect()
}

fn yaml_paths(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory `{}`: {e}", dir.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| fleetfit_core::yaml::is_yaml_source(&n.to_string_lossy()))
        })
        .collect())
}

/// Loads and validates both directories for `today`. `Err` carries the diagnostics, one per
/// line, each naming `path:line:col`.
pub fn load(catalog_dir: &Path, policies_dir: &Path, today: &str) -> Result<Config, String> {
    let catalog_src = read_yaml_dir(catalog_dir)?;
    let policy_src = read_yaml_dir(policies_dir)?;
    if policy_src.is_empty() {
        return Err(format!(
            "{}:0:0: error: no policy files (`*.yaml`) found",
            policies_dir.display()
        ));
    }
    let (catalog, _) = parse_catalog(&catalog_src).map_err(|d| d.to_string())?;
    let (policies, _) = parse_policies(&policy_src, Some(today)).map_err(|d| d.to_string())?;
    let catalog_digest = digest_files(&catalog_src);
    let policies_digest = digest_files(&policy_src);
    let digest = digest_bytes(format!("{catalog_digest}\n{policies_digest}\n{today}").as_bytes());
    Ok(Config {
        catalog,
        policies,
        catalog_digest,
        policies_digest,
        digest,
        today: today.to_owned(),
    })
}

/// A fingerprint of the files: names, sizes and mtimes. A change means "try to reload".
pub fn fingerprint(dirs: &[&Path]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    for d in dirs {
        if let Ok(paths) = yaml_paths(d) {
            for p in paths {
                let meta = std::fs::metadata(&p).ok();
                out.push((
                    p,
                    meta.as_ref().map_or(0, std::fs::Metadata::len),
                    meta.and_then(|m| m.modified().ok()),
                ));
            }
        }
    }
    out.sort();
    out
}

impl ConfigSource {
    /// Loads the initial configuration; `Err` (with diagnostics) when it does not validate.
    pub fn open(catalog_dir: PathBuf, policies_dir: PathBuf) -> Result<ConfigSource, String> {
        let cfg = load(&catalog_dir, &policies_dir, &today_utc())?;
        Ok(ConfigSource {
            catalog_dir,
            policies_dir,
            current: RwLock::new(Arc::new(cfg)),
        })
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Re-reads both directories. On success the new configuration is in force; on failure the
    /// old one stays, the diagnostics are logged and `config_reload_failures_total` counts it.
    pub fn reload(&self, metrics: &Metrics, why: &str) -> bool {
        match load(&self.catalog_dir, &self.policies_dir, &today_utc()) {
            Ok(cfg) => {
                let changed = self.current().digest != cfg.digest;
                tracing::info!(
                    reason = why,
                    catalog_digest = %cfg.catalog_digest,
                    policies_digest = %cfg.policies_digest,
                    changed,
                    "configuration reloaded"
                );
                match self.current.write() {
                    Ok(mut g) => *g = Arc::new(cfg),
                    Err(p) => *p.into_inner() = Arc::new(cfg),
                }
                metrics.reload_ok();
                true
            }
            Err(diags) => {
                for line in diags.lines().filter(|l| !l.trim().is_empty()) {
                    tracing::error!(reason = why, "rejected configuration change: {line}");
                }
                tracing::error!(
                    reason = why,
                    "configuration reload failed; the last good configuration stays in force"
                );
                metrics.reload_failed();
                false
            }
        }
    }

    /// Polls the directories every `every` and reloads on SIGHUP or when a file changed (also
    /// at midnight UTC, when rule expiry may change). Runs until the task is dropped.
    pub async fn watch(self: Arc<Self>, metrics: Arc<Metrics>, every: Duration) {
        let mut last = fingerprint(&[&self.catalog_dir, &self.policies_dir]);
        let mut hup = hangup_signal();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let reason = tokio::select! {
                _ = tick.tick() => "file change",
                () = recv_hup(&mut hup) => "SIGHUP",
            };
            let now = fingerprint(&[&self.catalog_dir, &self.policies_dir]);
            let day_changed = self.current().today != today_utc();
            if reason == "SIGHUP" || now != last || day_changed {
                last = now;
                let this = Arc::clone(&self);
                let m = Arc::clone(&metrics);
                let why = if day_changed && reason != "SIGHUP" {
                    "new day"
                } else {
                    reason
                };
                let _ = tokio::task::spawn_blocking(move || this.reload(&m, why)).await;
            }
        }
    }
}

#[cfg(unix)]
type Hup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hup {
    None
}

#[cfg(unix)]
async fn recv_hup(h: &mut Hup) {
    match h {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
#[cfg(not(unix))]
async fn recv_hup(_: &mut Hup) {
    std::future::pending::<()>().await;
}

/// Today's date as `YYYY-MM-DD` (UTC), for rule expiry (the core never reads the clock).
pub fn today_utc() -> String {
    fleetfit_core::calendar::date(unix_now())
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
