//! Fetch settings resolved from the environment the way huggingface_hub does it (endpoint, token, cache, offline),
//! plus fleetfit's own knobs (retries, timeouts, free-space margin, progress). Reads env and token files; no network.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The public hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Free space kept on the cache disk after a download: 1 GiB, the same margin the planner keeps per device.
pub const DEFAULT_KEEP_FREE_BYTES: u64 = 1 << 30;

/// A progress callback: `(bytes done, bytes total)`; `total` is 0 when unknown.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Whether to draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar on stderr (bytes, bytes/s, ETA), only when stderr is a terminal.
    Auto,
    /// Never draw.
    Never,
}

/// Everything a download needs to know; every field is public so callers and tests can override it.
#[derive(Clone)]
pub struct FetchConfig {
    /// Hub base URL without a trailing slash (`HF_ENDPOINT`).
    pub endpoint: String,
    /// Bearer token sent to the endpoint's host only (never to a redirect target on another host).
    pub token: Option<String>,
    /// The huggingface_hub cache (`.../huggingface/hub`), shared with transformers, llama.cpp and huggingface-cli.
    pub cache_dir: PathBuf,
    /// Only the local cache is used (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Attempts per request, the first one included.
    pub max_attempts: u32,
    /// First backoff; attempt n waits `backoff_base * 2^n` plus up to 50 % jitter, at most `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// A body read that sees no byte for this long aborts (and is retried with `Range`); slow streams go on.
    pub read_timeout: Duration,
    /// Bytes that must stay free on the cache disk after the download.
    pub keep_free_bytes: u64,
    pub progress: Progress,
    /// Where files that fail their integrity check are moved (`<timestamp>-<file>`).
    pub quarantine_dir: PathBuf,
    /// Called as bytes arrive (at most every 4 MiB and at the end).
    pub on_progress: Option<ProgressFn>,
    pub user_agent: String,
}

impl fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("max_attempts", &self.max_attempts)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("keep_free_bytes", &self.keep_free_bytes)
            .field("progress", &self.progress)
            .field("quarantine_dir", &self.quarantine_dir)
            .finish_non_exhaustive()
    }
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl FetchConfig {
    /// Resolves the settings from the process environment.
    pub fn from_env() -> FetchConfig {
        FetchConfig::from_env_with(|k| std::env::var(k).ok())
    }

    /// Resolves the settings from `lookup` (an environment stand-in), in huggingface_hub's order:
    /// endpoint `HF_ENDPOINT`; token `HF_TOKEN`, then the file `HF_TOKEN_PATH`, then `$HF_HOME/token`
    /// (none when `HF_HUB_DISABLE_IMPLICIT_TOKEN` is set); cache `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`,
    /// `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`; offline `HF_HUB_OFFLINE`.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> FetchConfig {
        let get = |k: &str| non_empty(lookup(k));
        let endpoint = get("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let home = get("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        let xdg_cache = get("XDG_CACHE_HOME").map_or_else(|| home.join(".cache"), PathBuf::from);
        let hf_home = get("HF_HOME").map_or_else(|| xdg_cache.join("huggingface"), PathBuf::from);
        let cache_dir = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map_or_else(|| hf_home.join("hub"), PathBuf::from);
        let token = if truthy(lookup("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
            None
        } else {
            get("HF_TOKEN").or_else(|| {
                let path =
                    get("HF_TOKEN_PATH").map_or_else(|| hf_home.join("token"), PathBuf::from);
                non_empty(std::fs::read_to_string(path).ok())
            })
        };
        let quarantine_dir = cache_dir.parent().map_or_else(
            || cache_dir.join("fleetfit-quarantine"),
            |p| p.join("fleetfit-quarantine"),
        );
        FetchConfig {
            endpoint,
            token,
            offline: truthy(lookup("HF_HUB_OFFLINE")),
            cache_dir,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_mins(1),
            keep_free_bytes: DEFAULT_KEEP_FREE_BYTES,
            progress: Progress::Auto,
            quarantine_dir,
            on_progress: None,
            user_agent: format!("fleetfit-fetch/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Backoff before retry number `attempt` (0-based): `base * 2^attempt`, capped, plus up to 50 % jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.backoff_max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = base.mul_f64(f64::from(nanos % 500) / 1000.0);
        (base + jitter).min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> FetchConfig {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        FetchConfig::from_env_with(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let c = cfg(&[("HOME", "/home/u")]);
        assert_eq!(c.endpoint, "https://huggingface.co");
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert!(!c.offline);
        assert_eq!(c.max_attempts, 5);
        assert_eq!(c.keep_free_bytes, 1 << 30);
    }

    #[test]
    fn cache_dir_order() {
        let c = cfg(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(c.cache_dir, PathBuf::from("/x/huggingface/hub"));
        let c = cfg(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/hf")]);
        assert_eq!(c.cache_dir, PathBuf::from("/hf/hub"));
        let c = cfg(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/old")]);
        assert_eq!(c.cache_dir, PathBuf::from("/old"));
        let c = cfg(&[("HF_HUB_CACHE", "/new"), ("HUGGINGFACE_HUB_CACHE", "/old")]);
        assert_eq!(c.cache_dir, PathBuf::from("/new"));
    }

    #[test]
    fn endpoint_offline_and_token() {
        let c = cfg(&[
            ("HF_ENDPOINT", "http://hub.local:8080/"),
            ("HF_HUB_OFFLINE", "yes"),
            ("HF_TOKEN", "hf_x"),
        ]);
        assert_eq!(c.endpoint, "http://hub.local:8080");
        assert!(c.offline);
        assert_eq!(c.token.as_deref(), Some("hf_x"));
        assert!(!format!("{c:?}").contains("hf_x"));
        let c = cfg(&[("HF_TOKEN", "hf_x"), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]);
        assert_eq!(c.token, None);
    }

    #[test]
    fn token_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_home\n").unwrap();
        std::fs::write(dir.path().join("other"), "hf_path").unwrap();
        let home = dir.path().to_str().unwrap();
        assert_eq!(cfg(&[("HF_HOME", home)]).token.as_deref(), Some("hf_home"));
        let other = dir.path().join("other");
        assert_eq!(
            cfg(&[
                ("HF_HOME", home),
                ("HF_TOKEN_PATH", other.to_str().unwrap())
            ])
            .token
            .as_deref(),
            Some("hf_path")
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = cfg(&[]);
        assert!(
            c.backoff(0) >= Duration::from_millis(500) && c.backoff(0) < Duration::from_millis(751)
        );
        assert!(c.backoff(2) >= Duration::from_secs(2));
        assert!(c.backoff(20) <= Duration::from_secs(30));
    }
}
