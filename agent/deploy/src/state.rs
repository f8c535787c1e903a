//! The agent's state file (`<state dir>/state.json`): per role, the model currently serving, the
//! one before it, and the last attempt. Written atomically (temp file, fsync, rename, fsync dir),
//! so a crash at any point leaves either the old or the new state, never half of one.

use fleetfit_core::readiness::Verification;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The schema tag of the state file.
pub const STATE_SCHEMA: &str = "fleetfit/agent-state/v1";

/// A model installed and verified on this device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    pub model: String,
    pub quant: String,
    pub format: String,
    /// The file runtimes load (a snapshot path in the HF cache, or the URL store).
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub context_tokens: u32,
    pub verified: Verification,
    /// RFC 3339.
    pub installed_at: String,
    /// The plan's estimate, for comparison with `verified.peak_rss_bytes`.
    #[serde(default)]
    pub estimated_memory_bytes: u64,
}

/// The last attempt to install something for a role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub model: String,
    pub quant: String,
    /// `fetching`, `verifying`, `ready`, `failed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// One role's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Installed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Installed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Attempt>,
}

/// The whole state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub schema: String,
    /// By role (`chat`, `code`, `embedding`), sorted.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleState>,
}

impl Default for AgentState {
    fn default() -> Self {
        Self {
            schema: STATE_SCHEMA.to_owned(),
            roles: BTreeMap::new(),
        }
    }
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the agent state `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the agent state `{path}` is not valid ({message}); it was left untouched: fix or remove it"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot write the agent state `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The state file's path in `state_dir`.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("state.json")
}

/// Reads the state; a missing file is the empty state. A corrupt one is an error that names the
/// file and leaves it in place (nothing is lost by starting over silently).
pub fn load(state_dir: &Path) -> Result<AgentState, StateError> {
    let path = state_path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AgentState::default()),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    let state: AgentState = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        message: format!("line {} column {}: {e}", e.line(), e.column()),
    })?;
    if state.schema != STATE_SCHEMA {
        return Err(StateError::Corrupt {
            path,
            message: format!("schema `{}`, expected `{STATE_SCHEMA}`", state.schema),
        });
    }
    Ok(state)
}

/// Writes the state atomically.
pub fn save(state_dir: &Path, state: &AgentState) -> Result<(), StateError> {
    let path = state_path(state_dir);
    let mut text = serde_json::to_string_pretty(state).map_err(|e| StateError::Write {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_atomic(&path, text.as_bytes()).map_err(|source| StateError::Write { path, source })
}

pub use fleetfit_fetch::fsutil::write_atomic;

/// Points `<state dir>/models/<role>` at `target` atomically, so runtimes configured with that
/// stable path switch models in one step.
pub fn link_current(state_dir: &Path, role: &str, target: &Path) -> std::io::Result<PathBuf> {
    let link = state_dir.join("models").join(role);
    fleetfit_fetch::fsutil::replace_symlink(target, &link)?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetfit_core::readiness::SmokeOutcome;

    fn installed(model: &str) -> Installed {
        Installed {
            model: model.into(),
            quant: "Q8_0".into(),
            format: "gguf".into(),
            path: "/models/x.gguf".into(),
            sha256: "ab".repeat(32),
            size_bytes: 10,
            context_tokens: 4096,
            verified: Verification {
                integrity: true,
                integrity_source: Some("catalog".into()),
                smoke: SmokeOutcome::Passed,
                detail: "ok".into(),
                load_seconds: 0.1,
                tokens_per_second: 10.0,
                peak_rss_bytes: 1,
            },
            installed_at: "2026-11-24T00:00:00Z".into(),
            estimated_memory_bytes: 0,
        }
    }

    #[test]
    fn round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), AgentState::default());
        let mut s = AgentState::default();
        s.roles.entry("chat".into()).or_default().current = Some(installed("a"));
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn corrupt_state_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(state_path(dir.path()), "{\"schema\": 3").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("state.json") && err.contains("line 1"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(state_path(dir.path())).unwrap(),
            "{\"schema\": 3"
        );
    }

    #[test]
    fn current_link_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.gguf");
        let b = dir.path().join("b.gguf");
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let link = link_current(dir.path(), "chat", &a).unwrap();
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "a");
        link_current(dir.path(), "chat", &b).unwrap();
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "b");
    }
}
