//! Policy file types, exactly as written in `policies/*.yaml` (see the README, "Policies").

use crate::catalog::Task;
use crate::estimate::KvType;
use crate::profile::{GpuVendor, NpuVendor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// The `apiVersion` every policy file carries.
pub const POLICY_API_VERSION: &str = "fleetfit/v1";

/// One policy file.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(rename = "apiVersion")]
    #[schemars(with = "String")]
    pub api_version: Spanned<String>,
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    pub metadata: Metadata,
    #[serde(default)]
    pub defaults: Option<Defaults>,
    #[serde(default)]
    #[schemars(with = "Vec<Rule>")]
    pub rules: Vec<Spanned<Rule>>,
}

/// Who owns the file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Settings and guardrails that apply to every device before any rule.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub objective: Option<Objective>,
    #[serde(default)]
    pub memory: Option<MemorySettings>,
    #[serde(default)]
    pub quantization: Option<QuantSettings>,
    #[serde(default)]
    pub context: Option<ContextSettings>,
    #[serde(default)]
    pub runtime: Option<RuntimeOverrides>,
    #[serde(default)]
    pub require: Option<Require>,
}

/// A role a device needs a model for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Chat,
    Code,
    Embedding,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Chat => "chat",
            Role::Code => "code",
            Role::Embedding => "embedding",
        }
    }

    /// The task a model needs to serve this role.
    pub fn task(self) -> Task {
        match self {
            Role::Chat => Task::Chat,
            Role::Code => Task::Code,
            Role::Embedding => Task::Embedding,
        }
    }
}

/// How candidates are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Highest quality after the quantization's loss.
    BestQuality,
    /// Most parameters, then quality.
    LargestThatFits,
    /// Most tokens/s.
    Fastest,
}

impl Objective {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::BestQuality => "best_quality",
            Objective::LargestThatFits => "largest_that_fits",
            Objective::Fastest => "fastest",
        }
    }
}

/// `effect: forbid` rules reject; the default constrains.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    #[default]
    Constrain,
    Forbid,
}

/// `mode: audit` rules are reported, not enforced.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

/// One rule.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub effect: Effect,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, rename = "match")]
    pub match_: Option<Match>,
    /// CEL condition over `device.*`; must evaluate to a bool.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// Only for these roles (all roles when absent).
    #[serde(default)]
    pub for_roles: Option<Vec<Role>>,
    /// For `forbid`: which models it forbids (all when absent).
    #[serde(default)]
    pub models: Option<ModelSelector>,
    #[serde(default)]
    pub require: Option<Require>,
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub objective: Option<Objective>,
    #[serde(default)]
    pub memory: Option<MemorySettings>,
    #[serde(default)]
    pub quantization: Option<QuantSettings>,
    #[serde(default)]
    pub context: Option<ContextSettings>,
    #[serde(default)]
    pub runtime: Option<RuntimeOverrides>,
    /// `YYYY-MM-DD`: the rule stops applying after this day.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A label value: one string or a list of accepted strings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// Whether `v` is accepted.
    pub fn accepts(&self, v: &str) -> bool {
        match self {
            OneOrMany::One(s) => s == v,
            OneOrMany::Many(list) => list.iter().any(|s| s == v),
        }
    }
}

/// Which devices a rule applies to. All given conditions must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    pub labels: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    pub hardware: Option<HardwareMatch>,
}

/// Hardware facts to match on.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HardwareMatch {
    /// Any GPU of these vendors.
    #[serde(default)]
    pub gpu_vendors: Vec<GpuVendor>,
    /// Any GPU whose name contains one of these (case-insensitive).
    #[serde(default)]
    pub gpu_names: Vec<String>,
    #[serde(default)]
    pub min_gpu_count: Option<u32>,
    #[serde(default)]
    pub min_memory_gib: Option<f64>,
    #[serde(default)]
    pub max_memory_gib: Option<f64>,
    /// Has (true) or lacks (false) a unified-memory GPU.
    #[serde(default)]
    pub unified_memory: Option<bool>,
    /// Has (true) or lacks (false) an NPU.
    #[serde(default)]
    pub npu: Option<bool>,
    #[serde(default)]
    pub npu_vendors: Vec<NpuVendor>,
    #[serde(default)]
    pub cpu_arch: Vec<String>,
    #[serde(default)]
    pub os: Vec<String>,
    /// Device classes (`dgx-spark`, `phone` …), prefix match.
    #[serde(default)]
    pub classes: Vec<String>,
}

/// Which catalog entries a `forbid` rule hits. All given conditions must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSelector {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub families: Vec<String>,
    #[serde(default)]
    pub licenses: Vec<String>,
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub quants: Vec<String>,
    #[serde(default)]
    pub min_params_b: Option<f64>,
}

/// Guardrails: every one must hold; several rules' guardrails all apply, so they only tighten.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Require {
    #[serde(default)]
    pub licenses: Option<Vec<String>>,
    #[serde(default)]
    pub families: Option<Vec<String>>,
    #[serde(default)]
    pub tasks: Option<Vec<Task>>,
    #[serde(default)]
    pub min_context_tokens: Option<u32>,
    #[serde(default)]
    pub min_tokens_per_second: Option<f64>,
    #[serde(default)]
    pub max_params_b: Option<f64>,
    #[serde(default)]
    pub quantizations: Option<Vec<String>>,
    /// 0..1, on the catalog's quality index after quantization loss.
    #[serde(default)]
    pub min_quality: Option<f64>,
    #[serde(default)]
    pub backends: Option<Vec<crate::estimate::Backend>>,
    /// Share of memory to keep free (percent); the largest required anywhere applies.
    #[serde(default)]
    pub min_headroom_pct: Option<f64>,
    /// `true`: a model on a discrete GPU must have every layer there (no partial offload to
    /// the CPU, whose prompt processing is an order of magnitude slower).
    #[serde(default)]
    pub full_gpu_offload: Option<bool>,
}

/// `memory:` setting.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    /// Percent of each memory pool kept free after loading.
    pub headroom_pct: f64,
}

/// `quantization:` setting.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantSettings {
    /// Preference order among candidates of near-equal score.
    pub prefer: Vec<String>,
}

/// `context:` setting.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextSettings {
    /// Context to aim for; the planner steps down to `require.min_context_tokens` to fit.
    pub target_tokens: u32,
}

/// `runtime:` setting.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeOverrides {
    #[serde(default)]
    pub kv_cache_type: Option<KvType>,
}
