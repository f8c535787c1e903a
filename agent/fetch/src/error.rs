//! The errors a download can end with; each message says what to do and names the URL (never the token).

use std::path::PathBuf;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "offline (HF_HUB_OFFLINE is set) and `{what}` is not in the cache `{cache}`: fetch it once online or copy the cache over"
    )]
    Offline { what: String, cache: PathBuf },
    #[error(
        "unauthorized ({status}) at {url}: set HF_TOKEN (or run `huggingface-cli login`) with a token that can read this repo; gated repos also need their terms accepted on the hub"
    )]
    Unauthorized { status: u16, url: String },
    #[error("not found (404) at {url}: {what}")]
    NotFound { url: String, what: String },
    #[error("HTTP {status} at {url} after {attempts} attempt(s)")]
    Http {
        status: u16,
        url: String,
        attempts: u32,
    },
    #[error("network error at {url} after {attempts} attempt(s): {detail}")]
    Network {
        url: String,
        attempts: u32,
        detail: String,
    },
    #[error(
        "not enough free space in `{dir}`: need {needed} bytes (file plus the keep-free margin), {available} available: free some space or lower keep_free_bytes"
    )]
    InsufficientSpace {
        needed: u64,
        available: u64,
        dir: PathBuf,
    },
    #[error(
        "integrity check failed for {url}: expected {expected}, got {actual}; the file was moved to `{quarantined}` and nothing was linked"
    )]
    IntegrityMismatch {
        url: String,
        expected: String,
        actual: String,
        quarantined: PathBuf,
    },
    #[error("malformed response from {url}: {detail}")]
    MalformedResponse { url: String, detail: String },
    #[error("invalid source `{source_text}`: {detail}")]
    InvalidSource { source_text: String, detail: String },
    #[error("`{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FetchError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FetchError {
        let path = path.into();
        move |source| FetchError::Io { path, source }
    }
}
