//! The control plane's persistence: a [`Store`] trait (devices, enrollment tokens, profiles,
//! readiness reports) and its SQLite implementation. The trait speaks in plain values and its
//! implementation in plain SQL (no SQLite-only features), so a PostgreSQL store can take over
//! without touching the HTTP layer. Secrets never reach the store: only their sha256 hashes.

pub mod sqlite;

use fleetfit_core::api::{StoredReport, TokenInfo};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

pub use sqlite::SqliteStore;

/// A boxed future, so [`Store`] can be used as `Arc<dyn Store>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What can go wrong in the store: always "could not compute" (a 500 for the caller).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data: {0}")]
    Data(String),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// A new enrollment token (its secret already hashed).
#[derive(Clone, Debug)]
pub struct NewToken {
    pub id: String,
    pub hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub uses: u32,
    pub labels: BTreeMap<String, String>,
}

/// An enrollment: the device and its new credential (hashed).
#[derive(Clone, Debug)]
pub struct NewEnrollment {
    pub device_id: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub credential_id: String,
    pub credential_hash: String,
}

/// Why an enrollment was refused. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollRefusal {
    /// No token with that hash.
    Unknown,
    Expired,
    Revoked,
    /// All uses spent.
    Exhausted,
    /// The device id exists and was revoked by an admin.
    DeviceRevoked,
}

/// The device a credential belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialOwner {
    pub device_id: String,
    pub credential_id: String,
    pub revoked: bool,
}

/// A device row as the fleet listings need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: String,
    pub hostname: String,
    pub state: String,
    pub model: Option<String>,
    pub quant: Option<String>,
    pub last_seen: Option<i64>,
    pub last_error: Option<String>,
    pub revoked: bool,
    pub profile_digest: Option<String>,
}

/// A readiness report to store.
#[derive(Clone, Debug)]
pub struct NewReport {
    pub device_id: String,
    pub report_id: String,
    pub state: String,
    pub model: String,
    pub quant: String,
    pub error: Option<String>,
    pub body: String,
    pub received_at: i64,
}

/// Persistence for the control plane. Every write is one transaction, committed before the
/// future resolves (so an acknowledged write survives a crash).
pub trait Store: Send + Sync {
    /// Reachable? (`/readyz`)
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>>;
    fn create_token(&self, token: NewToken) -> BoxFuture<'_, StoreResult<()>>;
    fn list_tokens(&self) -> BoxFuture<'_, StoreResult<Vec<TokenInfo>>>;
    /// `false` when no such token.
    fn revoke_token(&self, id: String, now: i64) -> BoxFuture<'_, StoreResult<bool>>;
    /// Atomically: check the token (by hash) is live, spend one use, create the device or
    /// rotate its credential. On refusal nothing is written. Returns the token's labels.
    fn enroll(
        &self,
        token_hash: String,
        now: i64,
        enrollment: NewEnrollment,
    ) -> BoxFuture<'_, StoreResult<Result<(), EnrollRefusal>>>;
    fn credential_owner(&self, hash: String)
    -> BoxFuture<'_, StoreResult<Option<CredentialOwner>>>;
    /// `false` when no such device.
    fn revoke_device(&self, id: String, now: i64) -> BoxFuture<'_, StoreResult<bool>>;
    fn put_profile(
        &self,
        device_id: String,
        profile_json: String,
        digest: String,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<()>>;
    /// `(profile JSON, digest)`.
    fn profile(&self, device_id: String) -> BoxFuture<'_, StoreResult<Option<(String, String)>>>;
    /// Every stored profile JSON of a non-revoked device, by device id.
    fn profiles(&self) -> BoxFuture<'_, StoreResult<Vec<String>>>;
    /// Stores the report unless `(device, report_id)` is already there; updates the device's
    /// state. `Ok(true)`: inserted, `Ok(false)`: a duplicate, nothing written.
    fn put_report(&self, report: NewReport) -> BoxFuture<'_, StoreResult<bool>>;
    fn heartbeat(
        &self,
        device_id: String,
        state: Option<String>,
        serving: Option<String>,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<()>>;
    /// Every device, sorted by id.
    fn devices(&self) -> BoxFuture<'_, StoreResult<Vec<DeviceRow>>>;
    /// Reports (all, or one device's), sorted by device then report id.
    fn reports(&self, device_id: Option<String>) -> BoxFuture<'_, StoreResult<Vec<StoredReport>>>;
}
