//! The HTTP API (`/v1/…`, JSON; documented in `docs/openapi.yaml`): enrollment, the device
//! endpoints (profile, plan, readiness, heartbeat), the admin and fleet endpoints, health and
//! metrics. Handlers authenticate, parse, call the [`Store`] and the core's planner; they never
//! log secrets (token and credential ids only) and write nothing when a request is refused.

use crate::auth::{self, AdminToken};
use crate::config::{ConfigSource, unix_now};
use crate::metrics::Metrics;
use crate::store::{CredentialOwner, EnrollRefusal, NewEnrollment, NewReport, NewToken, Store};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use fleetfit_core::api::{
    ApiError, CreateTokenRequest, CreatedToken, DEVICE_CREDENTIAL_PREFIX, ENROLLMENT_TOKEN_PREFIX,
    EnrollRequest, EnrollResponse, FailedVerification, FleetDevice, FleetStatus, Heartbeat,
    HeartbeatAck, ProfileAccepted, ReadinessAck, TokenInfo,
};
use fleetfit_core::digest::digest_bytes;
use fleetfit_core::plan::{PlanInputs, PlanOptions, plan};
use fleetfit_core::profile::DeviceProfile;
use fleetfit_core::readiness::{ReadinessReport, ReadinessState, SmokeOutcome};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Plans cached before the cache is emptied (a plan is a few kB).
const PLAN_CACHE_MAX: usize = 50_000;

/// Everything a handler needs.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ConfigSource>,
    pub metrics: Arc<Metrics>,
    pub admin: AdminToken,
    /// Seconds without a call after which a device is listed as stale.
    pub stale_after: i64,
    plan_cache: Mutex<HashMap<String, Arc<CachedPlan>>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<ConfigSource>,
        metrics: Arc<Metrics>,
        admin: AdminToken,
        stale_after: i64,
    ) -> AppState {
        AppState {
            store,
            config,
            metrics,
            admin,
            stale_after,
            plan_cache: Mutex::new(HashMap::new()),
        }
    }
}

type St = State<Arc<AppState>>;

/// Every route, as `(method, path)` in axum's syntax: what [`router`] serves, and what the
/// OpenAPI test checks `docs/openapi.yaml` against.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/v1/enroll"),
    ("put", "/v1/devices/{id}/profile"),
    ("get", "/v1/devices/{id}/plan"),
    ("put", "/v1/devices/{id}/readiness"),
    ("post", "/v1/devices/{id}/heartbeat"),
    ("post", "/v1/admin/tokens"),
    ("get", "/v1/admin/tokens"),
    ("delete", "/v1/admin/tokens/{id}"),
    ("delete", "/v1/admin/devices/{id}"),
    ("get", "/v1/admin/reports"),
    ("get", "/v1/fleet/devices"),
    ("get", "/v1/fleet/status"),
    ("get", "/v1/fleet/profiles"),
];

/// The application: every route in [`ROUTES`], the body limit, metrics and request tracing.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/enroll", post(enroll))
        .route("/v1/devices/{id}/profile", put(put_profile))
        .route("/v1/devices/{id}/plan", get(get_plan))
        .route("/v1/devices/{id}/readiness", put(put_readiness))
        .route("/v1/devices/{id}/heartbeat", post(heartbeat))
        .route("/v1/admin/tokens", post(create_token).get(list_tokens))
        .route("/v1/admin/tokens/{id}", delete(revoke_token))
        .route("/v1/admin/devices/{id}", delete(revoke_device))
        .route("/v1/admin/reports", get(list_reports))
        .route("/v1/fleet/devices", get(fleet_devices))
        .route("/v1/fleet/status", get(fleet_status))
        .route("/v1/fleet/profiles", get(fleet_profiles))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn count_requests(State(s): St, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    s.metrics
        .request(&format!("{method} {route}"), resp.status().as_u16());
    resp
}

/// An error answer: a status and `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiErr(pub StatusCode, pub String);

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<crate::store::StoreError> for ApiErr {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!("store: {e}");
        ApiErr(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        )
    }
}

fn unauthorized(msg: &str) -> ApiErr {
    ApiErr(StatusCode::UNAUTHORIZED, msg.to_owned())
}

/// Parses a JSON body: malformed JSON is a 400, JSON of the wrong shape a 422.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiErr> {
    serde_json::from_slice(body).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        let kind = if status == StatusCode::BAD_REQUEST {
            "malformed JSON"
        } else {
            "wrong schema"
        };
        ApiErr(status, format!("{kind}: {e}"))
    })
}

/// Device ids: 1–200 characters of `[A-Za-z0-9._:@-]`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

fn require_admin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiErr> {
    let presented = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    match presented {
        Some(t) if s.admin.matches(t) => Ok(()),
        Some(_) => {
            tracing::warn!("admin call with a wrong token");
            Err(unauthorized("wrong admin token"))
        }
        None => Err(unauthorized(
            "missing admin token (Authorization: Bearer …)",
        )),
    }
}

/// The device a credential belongs to, which must be `path_id` (401 unknown, 403 another).
async fn require_device(
    s: &AppState,
    headers: &HeaderMap,
    path_id: &str,
) -> Result<CredentialOwner, ApiErr> {
    let Some(secret) = auth::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    ) else {
        return Err(unauthorized(
            "missing device credential (Authorization: Bearer …)",
        ));
    };
    if !secret.starts_with(DEVICE_CREDENTIAL_PREFIX) {
        return Err(unauthorized("unknown device credential"));
    }
    let Some(owner) = s.store.credential_owner(auth::hash_secret(secret)).await? else {
        tracing::warn!(device = path_id, "unknown device credential");
        return Err(unauthorized("unknown device credential"));
    };
    if owner.revoked {
        tracing::warn!(device = %owner.device_id, credential = %owner.credential_id, "revoked device called");
        return Err(unauthorized("this device was revoked"));
    }
    if owner.device_id != path_id {
        tracing::warn!(device = %owner.device_id, target = path_id, "device touched another device");
        return Err(ApiErr(
            StatusCode::FORBIDDEN,
            format!(
                "credential of `{}` cannot act for `{path_id}`",
                owner.device_id
            ),
        ));
    }
    Ok(owner)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): St) -> Response {
    let cfg = s.config.current();
    let db = s.store.ping().await;
    let body = serde_json::json!({
        "status": if db.is_ok() { "ready" } else { "not ready" },
        "database": db.as_ref().map_or_else(ToString::to_string, |()| "ok".to_owned()),
        "catalog_digest": cfg.catalog_digest,
        "policies_digest": cfg.policies_digest,
        "config_digest": cfg.digest,
        "config_reload_failures_total": s.metrics.reload_failures(),
    });
    let status = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(s): St) -> Result<Response, ApiErr> {
    let devices = s.store.devices().await?;
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for d in &devices {
        *by_state.entry(d.state.clone()).or_default() += 1;
    }
    let cfg = s.config.current();
    let text = s.metrics.render(
        &by_state,
        &[
            ("catalog_digest", &cfg.catalog_digest),
            ("policies_digest", &cfg.policies_digest),
        ],
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response())
}

async fn enroll(State(s): St, body: Bytes) -> Result<Response, ApiErr> {
    let req: EnrollRequest = parse_json(&body)?;
    if !valid_id(&req.device_id) {
        return Err(ApiErr(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`device_id` must be 1-200 characters of A-Z a-z 0-9 . _ : @ -".to_owned(),
        ));
    }
    if !req.enrollment_token.starts_with(ENROLLMENT_TOKEN_PREFIX) {
        return Err(unauthorized("unknown enrollment token"));
    }
    let token_hash = auth::hash_secret(&req.enrollment_token);
    let credential = auth::new_secret(DEVICE_CREDENTIAL_PREFIX).map_err(random_failed)?;
    let credential_id = auth::new_id("cred_").map_err(random_failed)?;
    let outcome = s
        .store
        .enroll(
            token_hash.clone(),
            unix_now(),
            NewEnrollment {
                device_id: req.device_id.clone(),
                hostname: req.hostname,
                labels: req.labels,
                credential_id: credential_id.clone(),
                credential_hash: auth::hash_secret(&credential),
            },
        )
        .await?;
    let token_ref = &token_hash[..8];
    match outcome {
        Ok(()) => {
            tracing::info!(device = %req.device_id, credential = %credential_id, token_sha256_prefix = token_ref, "device enrolled");
            Ok((
                StatusCode::CREATED,
                Json(EnrollResponse {
                    device_id: req.device_id,
                    credential,
                    credential_id,
                }),
            )
                .into_response())
        }
        Err(refusal) => {
            tracing::warn!(device = %req.device_id, token_sha256_prefix = token_ref, ?refusal, "enrollment refused");
            Err(match refusal {
                EnrollRefusal::Unknown => unauthorized("unknown enrollment token"),
                EnrollRefusal::Expired => unauthorized("enrollment token expired"),
                EnrollRefusal::Revoked => unauthorized("enrollment token revoked"),
                EnrollRefusal::Exhausted => unauthorized("enrollment token has no uses left"),
                EnrollRefusal::DeviceRevoked => ApiErr(
                    StatusCode::FORBIDDEN,
                    format!("device `{}` was revoked", req.device_id),
                ),
            })
        }
    }
}

fn random_failed(e: getrandom::Error) -> ApiErr {
    tracing::error!("os random source: {e}");
    ApiErr(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error".to_owned(),
    )
}

async fn put_profile(
    State(s): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ProfileAccepted>, ApiErr> {
    require_device(&s, &headers, &id).await?;
    let profile: DeviceProfile = parse_json(&body)?;
    if profile.id != id {
        return Err(ApiErr(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("profile id `{}` is not the device `{id}`", profile.id),
        ));
    }
    let errors: Vec<String> = profile
        .validate("profile")
        .iter()
        .filter(|d| d.severity == fleetfit_core::Severity::Error)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Err(ApiErr(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid profile: {}", errors.join("; ")),
        ));
    }
    let json = serde_json::to_string(&profile).map_err(|e| {
        ApiErr(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the profile: {e}"),
        )
    })?;
    let digest = digest_bytes(json.as_bytes());
    s.store
        .put_profile(id.clone(), json, digest.clone(), unix_now())
        .await?;
    tracing::info!(device = %id, profile_digest = %digest, "profile stored");
    Ok(Json(ProfileAccepted {
        profile_digest: digest,
    }))
}

/// A computed plan: the JSON text and its digest (the ETag).
pub struct CachedPlan {
    pub json: String,
    pub digest: String,
}

/// The plan of one device for its stored profile under the configuration in force, from the
/// cache (keyed by profile digest + configuration digest) or computed by the core.
async fn device_plan(
    s: &Arc<AppState>,
    profile_json: String,
    profile_digest: &str,
) -> Result<Arc<CachedPlan>, ApiErr> {
    let cfg = s.config.current();
    let key = format!("{profile_digest}|{}", cfg.digest);
    if let Some(hit) = s.plan_cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let fleet_digest = profile_digest.to_owned();
    let metrics = Arc::clone(&s.metrics);
    let computed = tokio::task::spawn_blocking(move || -> Result<CachedPlan, String> {
        let started = Instant::now();
        let profile: DeviceProfile = serde_json::from_str(&profile_json)
            .map_err(|e| format!("stored profile does not parse: {e}"))?;
        let p = plan(
            std::slice::from_ref(&profile),
            &cfg.catalog,
            &cfg.policies,
            PlanInputs {
                catalog_digest: cfg.catalog_digest.clone(),
                policies_digest: cfg.policies_digest.clone(),
                fleet_digest,
                today: None,
            },
            &PlanOptions {
                today: Some(cfg.today.clone()),
                threads: 1,
            },
        );
        let mut json = serde_json::to_string_pretty(&p).map_err(|e| e.to_string())?;
        json.push('\n');
        metrics.plan_computed(started.elapsed().as_secs_f64());
        let digest = digest_bytes(json.as_bytes());
        Ok(CachedPlan { json, digest })
    })
    .await
    .map_err(|e| ApiErr(StatusCode::INTERNAL_SERVER_ERROR, format!("planner: {e}")))?
    .map_err(|e| ApiErr(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let computed = Arc::new(computed);
    if let Ok(mut c) = s.plan_cache.lock() {
        if c.len() >= PLAN_CACHE_MAX {
            c.clear();
        }
        c.insert(key, Arc::clone(&computed));
    }
    Ok(computed)
}

async fn get_plan(
    State(s): St,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiErr> {
    require_device(&s, &headers, &id).await?;
    let Some((profile, digest)) = s.store.profile(id.clone()).await? else {
        return Err(ApiErr(
            StatusCode::NOT_FOUND,
            format!("device `{id}` has not sent a profile yet"),
        ));
    };
    let p = device_plan(&s, profile, &digest).await?;
    let etag = format!("\"{}\"", p.digest);
    let etag_value = HeaderValue::from_str(&etag)
        .map_err(|e| ApiErr(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let digest_value = HeaderValue::from_str(&p.digest)
        .map_err(|e| ApiErr(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag || t.trim() == p.digest || t.trim() == "*")
        });
    if not_modified {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag_value),
                (PLAN_DIGEST_HEADER, digest_value),
            ],
        )
            .into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_value),
            (PLAN_DIGEST_HEADER, digest_value),
        ],
        p.json.clone(),
    )
        .into_response())
}

/// The header that repeats the plan digest (the ETag without quotes).
pub const PLAN_DIGEST_HEADER: header::HeaderName =
    header::HeaderName::from_static("fleetfit-plan-digest");

fn state_name(state: ReadinessState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn put_readiness(
    State(s): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReadinessAck>, ApiErr> {
    require_device(&s, &headers, &id).await?;
    let report: ReadinessReport = parse_json(&body)?;
    if report.device != id {
        return Err(ApiErr(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("report device `{}` is not `{id}`", report.device),
        ));
    }
    if report.report_id.len() > 200 {
        return Err(ApiErr(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`report_id` is longer than 200 characters".to_owned(),
        ));
    }
    let json = serde_json::to_string(&report)
        .map_err(|e| ApiErr(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // No id from the agent: the content is the id, so a resent identical report is one report.
    let report_id = if report.report_id.is_empty() {
        digest_bytes(json.as_bytes())
    } else {
        report.report_id.clone()
    };
    let error = report.error.clone().or_else(|| {
        report
            .verified
            .as_ref()
            .filter(|v| !v.integrity || v.smoke == SmokeOutcome::Failed)
            .map(|v| v.detail.clone())
    });
    let state = state_name(report.state);
    let inserted = s
        .store
        .put_report(NewReport {
            device_id: id.clone(),
            report_id: report_id.clone(),
            state: state.clone(),
            model: report.model,
            quant: report.quant,
            error,
            body: json,
            received_at: unix_now(),
        })
        .await?;
    s.metrics.report(!inserted);
    tracing::debug!(device = %id, report_id = %report_id, state = %state, duplicate = !inserted, "readiness report");
    Ok(Json(ReadinessAck {
        acknowledged: true,
        duplicate: !inserted,
    }))
}

async fn heartbeat(
    State(s): St,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HeartbeatAck>, ApiErr> {
    require_device(&s, &headers, &id).await?;
    let hb: Heartbeat = if body.iter().all(u8::is_ascii_whitespace) {
        Heartbeat::default()
    } else {
        parse_json(&body)?
    };
    s.store
        .heartbeat(
            id.clone(),
            hb.state.map(state_name),
            hb.serving_model,
            unix_now(),
        )
        .await?;
    let plan_digest = match s.store.profile(id).await? {
        Some((profile, digest)) => Some(device_plan(&s, profile, &digest).await?.digest.clone()),
        None => None,
    };
    Ok(Json(HeartbeatAck { plan_digest }))
}

async fn create_token(State(s): St, headers: HeaderMap, body: Bytes) -> Result<Response, ApiErr> {
    require_admin(&s, &headers)?;
    let req: CreateTokenRequest = parse_json(&body)?;
    if req.uses == 0 {
        return Err(ApiErr(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`uses` must be at least 1".to_owned(),
        ));
    }
    let now = unix_now();
    let ttl = i64::try_from(req.ttl_seconds).unwrap_or(i64::MAX / 2);
    let id = auth::new_id("tok_").map_err(random_failed)?;
    let token = auth::new_secret(ENROLLMENT_TOKEN_PREFIX).map_err(random_failed)?;
    let new = NewToken {
        id: id.clone(),
        hash: auth::hash_secret(&token),
        created_at: now,
        expires_at: now.saturating_add(ttl),
        uses: req.uses,
        labels: req.labels.clone(),
    };
    let info = TokenInfo {
        id: id.clone(),
        created_at: new.created_at,
        expires_at: new.expires_at,
        uses: req.uses,
        uses_left: req.uses,
        labels: req.labels,
        revoked: false,
    };
    s.store.create_token(new).await?;
    tracing::info!(token = %id, uses = req.uses, ttl_seconds = req.ttl_seconds, "enrollment token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })).into_response())
}

async fn list_tokens(State(s): St, headers: HeaderMap) -> Result<Json<Vec<TokenInfo>>, ApiErr> {
    require_admin(&s, &headers)?;
    Ok(Json(s.store.list_tokens().await?))
}

async fn revoke_token(
    State(s): St,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiErr> {
    require_admin(&s, &headers)?;
    if s.store.revoke_token(id.clone(), unix_now()).await? {
        tracing::info!(token = %id, "enrollment token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiErr(StatusCode::NOT_FOUND, format!("no token `{id}`")))
    }
}

async fn revoke_device(
    State(s): St,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiErr> {
    require_admin(&s, &headers)?;
    if s.store.revoke_device(id.clone(), unix_now()).await? {
        tracing::info!(device = %id, "device revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiErr(StatusCode::NOT_FOUND, format!("no device `{id}`")))
    }
}

#[derive(serde::Deserialize)]
struct ReportQuery {
    device: Option<String>,
}

async fn list_reports(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiErr> {
    require_admin(&s, &headers)?;
    Ok(Json(s.store.reports(q.device).await?).into_response())
}

async fn fleet_devices(State(s): St, headers: HeaderMap) -> Result<Json<Vec<FleetDevice>>, ApiErr> {
    require_admin(&s, &headers)?;
    Ok(Json(list_devices(&s).await?))
}

async fn list_devices(s: &AppState) -> Result<Vec<FleetDevice>, ApiErr> {
    let now = unix_now();
    Ok(s.store
        .devices()
        .await?
        .into_iter()
        .map(|d| FleetDevice {
            stale: !d.revoked && d.last_seen.is_none_or(|t| now - t > s.stale_after),
            id: d.id,
            hostname: d.hostname,
            state: d.state,
            model: d.model,
            quant: d.quant,
            last_seen: d.last_seen,
            last_error: d.last_error,
            revoked: d.revoked,
            profile_digest: d.profile_digest,
        })
        .collect())
}

/// The fleet summary from the device listing (pure, deterministic).
pub fn fleet_status_of(devices: &[FleetDevice]) -> FleetStatus {
    let mut st = FleetStatus::default();
    for d in devices.iter().filter(|d| !d.revoked) {
        st.devices += 1;
        *st.by_state.entry(d.state.clone()).or_default() += 1;
        if d.state == "ready"
            && let Some(m) = &d.model
        {
            let key = match &d.quant {
                Some(q) if !q.is_empty() => format!("{m}:{q}"),
                _ => m.clone(),
            };
            *st.models_in_use.entry(key).or_default() += 1;
        }
        if d.stale {
            st.stale.push(d.id.clone());
        }
        if d.state == "failed" {
            st.failed.push(FailedVerification {
                device: d.id.clone(),
                model: d.model.clone().filter(|m| !m.is_empty()),
                reason: d
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no reason given".to_owned()),
            });
        }
    }
    st.stale.sort();
    st.failed.sort_by(|a, b| a.device.cmp(&b.device));
    st
}

async fn fleet_status(State(s): St, headers: HeaderMap) -> Result<Json<FleetStatus>, ApiErr> {
    require_admin(&s, &headers)?;
    Ok(Json(fleet_status_of(&list_devices(&s).await?)))
}

async fn fleet_profiles(State(s): St, headers: HeaderMap) -> Result<Response, ApiErr> {
    require_admin(&s, &headers)?;
    let profiles = s.store.profiles().await?;
    // The stored texts are serialized DeviceProfiles: join them into a JSON array as they are.
    let mut out = String::from("[");
    out.push_str(&profiles.join(",\n"));
    out.push_str("]\n");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, state: &str, model: Option<&str>, stale: bool, revoked: bool) -> FleetDevice {
        FleetDevice {
            id: id.to_owned(),
            hostname: String::new(),
            state: state.to_owned(),
            model: model.map(str::to_owned),
            quant: model.map(|_| "Q4_K_M".to_owned()),
            last_seen: Some(0),
            stale,
            last_error: (state == "failed").then(|| "sha256 mismatch".to_owned()),
            revoked,
            profile_digest: None,
        }
    }

    #[test]
    fn fleet_status_counts_states_models_stale_and_failures_in_order() {
        let st = fleet_status_of(&[
            dev("c", "failed", Some("qwen3-8b"), true, false),
            dev("a", "ready", Some("qwen3-8b"), false, false),
            dev("b", "ready", Some("gemma-3-4b-it"), true, false),
            dev("d", "ready", Some("qwen3-8b"), false, true),
        ]);
        assert_eq!(st.devices, 3);
        assert_eq!(st.by_state["ready"], 2);
        assert_eq!(st.by_state["failed"], 1);
        assert_eq!(st.models_in_use["qwen3-8b:Q4_K_M"], 1);
        assert_eq!(st.models_in_use["gemma-3-4b-it:Q4_K_M"], 1);
        assert_eq!(st.stale, vec!["b", "c"]);
        assert_eq!(st.failed.len(), 1);
        assert_eq!(st.failed[0].reason, "sha256 mismatch");
    }

    #[test]
    fn json_errors_are_400_when_malformed_and_422_when_mis_shaped() {
        let e = parse_json::<Heartbeat>(b"{").unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        let e = parse_json::<Heartbeat>(b"{\"state\": \"on fire\"}").unwrap_err();
        assert_eq!(e.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(valid_id("ws-rtx4090.lab:1"));
        assert!(!valid_id("a/b") && !valid_id("") && !valid_id(&"x".repeat(201)));
    }
}
