//! The control plane's HTTP API types (`/v1/…`): request and response bodies that the server
//! (`fleetfit serve`) and the agent daemon (`fleetfit-agent run`) share. Pure serde + schemars
//! types, no I/O. Documented endpoint by endpoint in `docs/openapi.yaml`.
//!
//! Bodies that are ★ contracts elsewhere are not repeated here: `PUT /v1/devices/{id}/profile`
//! takes a [`crate::profile::DeviceProfile`], `PUT /v1/devices/{id}/readiness` a
//! [`crate::readiness::ReadinessReport`], `GET /v1/devices/{id}/plan` returns a
//! [`crate::plan::Plan`] and `GET /v1/fleet/profiles` a `Vec<DeviceProfile>`.
//!
//! The agent's conversation (`fleetfit-agent run`), every call but enrollment with
//! `Authorization: Bearer <credential>`:
//! 1. `POST /v1/enroll` [`EnrollRequest`] → 201 [`EnrollResponse`]; keep the credential in the
//!    state dir (0600). The enrollment token is spent; never send it again once enrolled.
//! 2. `PUT /v1/devices/{id}/profile` the probed profile (its `id` = the enrolled id) →
//!    [`ProfileAccepted`]; again whenever the probe result changes.
//! 3. `GET /v1/devices/{id}/plan` → the one-device plan, `ETag: "<plan_digest>"`; later calls
//!    send `If-None-Match` and get 304 when nothing changed.
//! 4. Every interval: `POST /v1/devices/{id}/heartbeat` [`Heartbeat`] → [`HeartbeatAck`]; when
//!    its `plan_digest` differs from the plan held, go to 3.
//! 5. After fetch/verify: `PUT /v1/devices/{id}/readiness` with a fresh `report_id` → 200
//!    [`ReadinessAck`] once committed. On a network error or 5xx, retry with the SAME
//!    `report_id` (stored once). 401: the credential was revoked or rotated — stop, or re-enroll
//!    with a new token; 403: wrong device id; 400/413/422: a bug, do not retry.

use crate::readiness::ReadinessState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The HTTP header a device credential, enrollment-free call or admin call carries:
/// `Authorization: Bearer <secret>`.
pub const AUTHORIZATION_SCHEME: &str = "Bearer";
/// The prefix of enrollment tokens (`ffe_` + 64 hex digits = 256 random bits).
pub const ENROLLMENT_TOKEN_PREFIX: &str = "ffe_";
/// The prefix of device credentials (`ffd_` + 64 hex digits = 256 random bits).
pub const DEVICE_CREDENTIAL_PREFIX: &str = "ffd_";

/// `POST /v1/enroll`: exchange an enrollment token for a per-device credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token from `fleetfit token create` (shown once).
    pub enrollment_token: String,
    /// The device id the agent will use (its profile's `id`).
    pub device_id: String,
    #[serde(default)]
    pub hostname: String,
    /// Labels the agent reports; the token's labels are merged over them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `201` answer to [`EnrollRequest`]. The credential is shown this once; the server keeps only
/// its sha256. Re-enrolling the same device id with a valid token rotates the credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnrollResponse {
    pub device_id: String,
    /// `ffd_…`: send as `Authorization: Bearer <credential>` on every device call.
    pub credential: String,
    /// The credential's public id (safe to log).
    pub credential_id: String,
}

/// `200` answer to `PUT /v1/devices/{id}/profile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProfileAccepted {
    /// `sha256:…` of the stored profile JSON.
    pub profile_digest: String,
}

/// `200` answer to `PUT /v1/devices/{id}/readiness`, sent only after the report is committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReadinessAck {
    pub acknowledged: bool,
    /// `true` when this `report_id` was already stored (a retry): nothing new was written.
    pub duplicate: bool,
}

/// `POST /v1/devices/{id}/heartbeat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ReadinessState>,
    /// `model:quant` (or just the model) the device serves now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_model: Option<String>,
}

/// `200` answer to a [`Heartbeat`]: when `plan_digest` differs from the one the agent holds,
/// it fetches `GET /v1/devices/{id}/plan` again. `null` until the device has put a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HeartbeatAck {
    pub plan_digest: Option<String>,
}

/// `POST /v1/admin/tokens`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Lifetime in seconds (0: already expired, useful in tests).
    pub ttl_seconds: u64,
    /// How many enrollments the token allows (default 1).
    #[serde(default = "one")]
    pub uses: u32,
    /// Labels given to devices enrolled with this token.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// `201` answer to [`CreateTokenRequest`]: the token is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// `ffe_…`: the secret; only its sha256 is stored.
    pub token: String,
}

/// An enrollment token as `GET /v1/admin/tokens` lists it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfo {
    /// Public id (`tok_…`), safe to log.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    pub uses: u32,
    pub uses_left: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub revoked: bool,
}

/// One device as `GET /v1/fleet/devices` lists it, sorted by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FleetDevice {
    pub id: String,
    pub hostname: String,
    /// The last reported state (`ready`, `failed`, …), `enrolled` before any report.
    pub state: String,
    pub model: Option<String>,
    pub quant: Option<String>,
    /// Unix seconds of the last call from the device (enrollment, profile, report, heartbeat).
    pub last_seen: Option<i64>,
    /// No call for longer than the server's `--stale-after`.
    pub stale: bool,
    pub last_error: Option<String>,
    pub revoked: bool,
    pub profile_digest: Option<String>,
}

/// A failed verification, as `GET /v1/fleet/status` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailedVerification {
    pub device: String,
    pub model: Option<String>,
    pub reason: String,
}

/// `GET /v1/fleet/status`: the fleet at a glance. Every list is sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FleetStatus {
    pub devices: usize,
    /// Count per state (revoked devices are not counted).
    pub by_state: BTreeMap<String, usize>,
    /// `model:quant` → devices serving it (state `ready`).
    pub models_in_use: BTreeMap<String, usize>,
    pub stale: Vec<String>,
    pub failed: Vec<FailedVerification>,
}

/// One stored readiness report, as `GET /v1/admin/reports` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredReport {
    pub device: String,
    pub report_id: String,
    pub state: String,
    /// Unix seconds.
    pub received_at: i64,
}

/// Every error answer: `{"error": "…"}` with a lowercase message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiError {
    pub error: String,
}
