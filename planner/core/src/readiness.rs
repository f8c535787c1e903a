//! ★ The ReadinessReport: what an agent says about the model it serves after fetch, integrity
//! check and smoke inference (`fleetfit-agent apply|verify --format json`, and the body the agent
//! sends to the control plane). Pure types; the agent fills them, the server stores them.

use serde::{Deserialize, Serialize};

/// The schema tag of a [`ReadinessReport`].
pub const READINESS_SCHEMA: &str = "fleetfit/readiness/v1";

/// Where a device stands with its planned model.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessState {
    /// The model is installed, intact and ran its smoke inference.
    Ready,
    /// The last attempt failed; `serving` says what still runs.
    Failed,
    /// Downloading.
    Fetching,
    /// Checking integrity or running the smoke inference.
    Verifying,
    /// The plan assigns nothing to this device (blocked, or no assignment).
    Unassigned,
}

/// The smoke-inference outcome. `skipped` is never a pass.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SmokeOutcome {
    Passed,
    Failed,
    Skipped,
}

/// What was verified about the file, and how it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verification {
    /// The file's sha256 matched the catalog (or the hub's `X-Linked-Etag`).
    pub integrity: bool,
    /// Where the expected digest came from: `catalog`, `x-linked-etag`, `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity_source: Option<String>,
    pub smoke: SmokeOutcome,
    /// Human-readable: the generated text, the embedding norm, or why it failed / was skipped.
    pub detail: String,
    pub load_seconds: f64,
    pub tokens_per_second: f64,
    /// Peak resident memory of the smoke inference process.
    pub peak_rss_bytes: u64,
}

/// A model the device still serves while a newer one failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServingModel {
    pub model: String,
    pub quant: String,
    pub path: String,
    pub sha256: String,
}

/// ★ One device's readiness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReadinessReport {
    /// `fleetfit/readiness/v1`.
    #[serde(default = "readiness_schema")]
    pub schema: String,
    pub device: String,
    pub state: ReadinessState,
    /// The model this report is about (the planned one).
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub quant: String,
    /// The installed file (a snapshot path in the HF cache).
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verification>,
    /// The model still serving: the new one when ready, the last good one after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingModel>,
    /// Why the last attempt failed (failed state only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The estimate the plan made, for comparison with `verified.peak_rss_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_memory_bytes: Option<u64>,
    /// Ready-to-run command lines for the installed file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<crate::plan::RunCommand>,
    /// A unique id per report (the agent's idempotency key; the server deduplicates on it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub report_id: String,
    /// RFC 3339 time the agent produced the report (the core never reads the clock).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generated_at: String,
}

fn readiness_schema() -> String {
    READINESS_SCHEMA.to_owned()
}
