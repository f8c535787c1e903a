//! Plan types: the ★ `fleetfit/plan/v1` JSON contract.

use crate::policy::Role;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// The schema tag of a plan.
pub const PLAN_SCHEMA: &str = "fleetfit/plan/v1";

/// A whole plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    pub schema: String,
    pub inputs: PlanInputs,
    pub summary: Summary,
    pub devices: Vec<DevicePlan>,
    /// Problems met while planning (a CEL condition failing on a device …), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Digests of the inputs: the same digests mean the same plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanInputs {
    pub catalog_digest: String,
    pub policies_digest: String,
    pub fleet_digest: String,
    /// The day expiry was evaluated against, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<String>,
}

/// Counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub devices: usize,
    pub assigned: usize,
    pub blocked: usize,
}

/// Assigned: every role has a model. Blocked: at least one role has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Assigned,
    Blocked,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Assigned => "assigned",
            Status::Blocked => "blocked",
        }
    }
}

/// One device's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DevicePlan {
    pub device: String,
    pub status: Status,
    pub assignments: Vec<Assignment>,
    /// Roles with no compliant model, each with its nearest miss.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<BlockedRole>,
    /// Settings in force and where they came from (shared by devices matched alike).
    pub settings: Arc<SettingsReport>,
    /// Candidates not chosen, nearest miss first (per role).
    #[schemars(with = "Vec<Rejection>")]
    pub rejections: Rejections,
}

/// The rejections of one device: per role, the fit and speed misses of that device, then the
/// policy rejections, which devices matched by the same rules share (not copied per device).
/// Serializes as one flat list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rejections {
    parts: Vec<Arc<Vec<Rejection>>>,
}

impl Rejections {
    /// Appends a part.
    pub fn push_part(&mut self, part: Arc<Vec<Rejection>>) {
        if !part.is_empty() {
            self.parts.push(part);
        }
    }

    /// All rejections, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Rejection> {
        self.parts.iter().flat_map(|p| p.iter())
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for Rejections {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Rejections {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let all = Vec::<Rejection>::deserialize(deserializer)?;
        let mut r = Rejections::default();
        r.push_part(Arc::new(all));
        Ok(r)
    }
}

/// Where each setting came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SettingsReport {
    pub roles: Vec<Role>,
    pub objective: String,
    pub headroom_pct: f64,
    pub context_target: u32,
    pub kv_cache_type: String,
    /// `setting = value (rule, file:line:col)` for each setting a rule or defaults block set.
    pub from: Vec<String>,
}

/// A role nothing could serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BlockedRole {
    pub role: Role,
    /// One line: how many candidates, and the nearest miss.
    pub reason: String,
}

/// The model chosen for one role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Assignment {
    pub role: Role,
    pub model: String,
    pub quant: String,
    pub context_tokens: u32,
    pub placement: PlacementReport,
    pub artifact: ArtifactRef,
    pub estimate: EstimateReport,
    /// Quality index after quantization loss, 0..1.
    pub quality: f64,
    pub because: Vec<Because>,
    /// Ready-to-run command lines for common runtimes (GGUF artifacts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<RunCommand>,
}

/// A command line that runs an assignment in one runtime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunCommand {
    /// `llama.cpp` or `ollama`.
    pub runtime: String,
    pub command: String,
}

/// Backend and offload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlacementReport {
    pub backend: crate::estimate::Backend,
    pub gpu_layers: u32,
    /// Indices into the profile's `gpus`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<usize>,
    /// Pool bytes used on each GPU (discrete), and system memory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_bytes: Vec<u64>,
    pub system_bytes: u64,
}

/// What to download.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactRef {
    pub repo: String,
    pub revision: String,
    pub file: String,
    pub format: String,
    pub size_bytes: u64,
    pub size_exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Download from this URL instead of the hub (the catalog's `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Estimate figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EstimateReport {
    pub memory_bytes: u64,
    pub weights_bytes: u64,
    pub kv_cache_bytes: u64,
    pub compute_bytes: u64,
    pub overhead_bytes: u64,
    pub tokens_per_second: f64,
    /// The tightest memory pool after placing: share left free.
    pub pool: String,
    pub pool_used_bytes: u64,
    pub pool_capacity_bytes: u64,
}

/// One reason for an assignment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Because {
    pub rule: String,
    pub source: String,
    pub message: String,
}

/// A candidate not chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rejection {
    pub role: Role,
    pub model: String,
    /// The quantization, or `*` when every quantization of the model was rejected alike.
    pub quant: String,
    pub rule: Cow<'static, str>,
    pub constraint: Cow<'static, str>,
    pub message: String,
    /// `path:line:col` of the rule, or `fleetfit` for built-in limits.
    pub source: Cow<'static, str>,
    /// `policy`, `memory` or `speed`.
    pub kind: Cow<'static, str>,
    /// Required / available for memory and speed misses (1.05 = 5 % short); 0 for policy.
    pub closeness: f64,
}
