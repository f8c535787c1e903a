//! Policy test file types, exactly as written in `*.test.yaml`.

use crate::policy::Role;
use crate::profile::DeviceProfile;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The `apiVersion` every policy test file carries.
pub const POLICY_TEST_API_VERSION: &str = "fleetfit/v1";

/// The `kind` every policy test file carries.
pub const POLICY_TEST_KIND: &str = "PolicyTest";

/// One `*.test.yaml` file: the policies under test, the devices, and the cases.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyTestFile {
    /// Always `fleetfit/v1`.
    #[serde(rename = "apiVersion")]
    #[schemars(with = "String")]
    pub api_version: Spanned<String>,
    /// Always `PolicyTest`.
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    /// Policy directories or files, relative to the test file, evaluated in the order given.
    pub policies: Vec<String>,
    /// Catalog directory, relative to the test file (default: the embedded catalog).
    #[serde(default)]
    pub catalog: Option<String>,
    /// Device profile files or directories, relative to the test file.
    #[serde(default)]
    pub devices_from: Vec<String>,
    /// Inline device profiles (`fleetfit/device-profile/v1` objects).
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub devices: Vec<DeviceProfile>,
    /// `YYYY-MM-DD` to evaluate rule expiry on (`--today` overrides it).
    #[serde(default)]
    pub today: Option<String>,
    /// The cases; a file must have at least one.
    #[serde(default)]
    #[schemars(with = "Vec<Case>")]
    pub cases: Vec<Spanned<Case>>,
}

/// One case: a device (or `*` for every device) and what the plan must say about it.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Shown in the output.
    pub name: String,
    /// A device id, or `*` for every device of the file.
    #[schemars(with = "String")]
    pub device: Spanned<String>,
    /// The expectations; every one given must hold.
    pub expect: Expect,
}

/// What a case expects. Every field is optional; at least one must be given.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Whether the role gets a model (`assigned`) or none (`blocked`).
    #[serde(default)]
    pub decision: Option<Decision>,
    /// The role the expectations are about (default `chat`; `never` covers every role).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub role: Option<Role>,
    /// Properties the assigned model must have.
    #[serde(default)]
    pub model: Option<ModelExpect>,
    /// Rule ids that must be among the assignment's reasons (a subset check).
    #[serde(default)]
    pub reasons_include: Vec<String>,
    /// Models that must be rejected, and by which rule.
    #[serde(default)]
    pub rejected: Vec<RejectedExpect>,
    /// Models that must not be assigned to any role.
    #[serde(default)]
    pub never: Option<NeverExpect>,
}

impl Expect {
    /// Whether no expectation was given.
    pub fn is_empty(&self) -> bool {
        self.decision.is_none()
            && self.model.is_none()
            && self.reasons_include.is_empty()
            && self.rejected.is_empty()
            && self.never.is_none()
    }
}

/// The decision for a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The role has a model.
    Assigned,
    /// No compliant model fits.
    Blocked,
}

impl Decision {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Assigned => "assigned",
            Decision::Blocked => "blocked",
        }
    }
}

/// Properties of the assigned model; every one given must hold.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelExpect {
    /// Exactly this catalog id (pin only where the intent is exact).
    #[serde(default)]
    pub id: Option<String>,
    /// The model's family is one of these.
    #[serde(default)]
    pub families: Vec<String>,
    /// The model's licence is one of these.
    #[serde(default)]
    pub licenses: Vec<String>,
    /// At most this many parameters, in billions.
    #[serde(default)]
    pub max_params_b: Option<f64>,
    /// At least this much planned context.
    #[serde(default)]
    pub min_context_tokens: Option<u32>,
    /// The quantization is one of these.
    #[serde(default)]
    pub quantizations: Vec<String>,
    /// The backend is one of these (`cuda`, `metal`, `cpu`, `npu` …).
    #[serde(default)]
    pub backends: Vec<String>,
}

/// A model that must be rejected by a rule.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedExpect {
    /// Catalog id.
    pub model: String,
    /// The rule id that rejects it.
    pub by: String,
    /// The constraint, e.g. `require.licenses` (any when not given).
    #[serde(default)]
    pub constraint: Option<String>,
}

/// Models no role may get.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeverExpect {
    /// Catalog ids.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Families.
    #[serde(default)]
    pub families: Vec<String>,
    /// Licences.
    #[serde(default)]
    pub licenses: Vec<String>,
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Where the case was written (1-based; 0 when unknown).
    pub line: u32,
    /// Column of the case.
    pub column: u32,
    /// The device id, or `*`.
    pub device: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// What the plan decided, in a few words (`qwen3-8b Q4_K_M`, `blocked`, `9 devices`).
    pub got: String,
    /// One line per expectation that did not hold.
    pub failures: Vec<String>,
}
