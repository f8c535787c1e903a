//! The agent's client for the control plane (`fleetfit serve`, API `/v1/…`): enroll, put the
//! profile, get the plan (ETag-aware), heartbeat. Readiness reports go through
//! [`crate::report`], which queues and retries them.

use crate::report::ReportTarget;
use fleetfit_core::api::{EnrollRequest, EnrollResponse, Heartbeat, HeartbeatAck, ProfileAccepted};
use fleetfit_core::plan::Plan;
use fleetfit_core::profile::DeviceProfile;
use std::time::Duration;

/// A control-plane call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, reset, timed out: try again later.
    #[error("control plane unreachable: {0}")]
    Unreachable(String),
    /// An HTTP error answer (`401`: the credential is no longer valid).
    #[error("control plane answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("control plane sent an unreadable answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// Whether retrying later can help (network trouble, 408/429/5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            ClientError::Decode(_) => false,
        }
    }
}

/// One control plane.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    base: String,
    http: reqwest::Client,
    credential: Option<String>,
}

fn unreachable(e: &reqwest::Error) -> ClientError {
    // reqwest's message names the URL; ours carry no secrets (tokens go in headers).
    ClientError::Unreachable(e.to_string())
}

/// Sends `req` and decodes a 2xx JSON answer; anything else is a [`ClientError`].
async fn call<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> Result<T, ClientError> {
    let resp = req.send().await.map_err(|e| unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(status_error(resp).await);
    }
    resp.json()
        .await
        .map_err(|e| ClientError::Decode(e.to_string()))
}

async fn status_error(resp: reqwest::Response) -> ClientError {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<fleetfit_core::api::ApiError>(&text)
        .map_or_else(|_| text.chars().take(200).collect(), |e| e.error);
    ClientError::Status { status, message }
}

impl ControlPlane {
    /// A client for `base` (`http://host:port`), with a device credential once enrolled.
    pub fn new(base: &str, credential: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("fleetfit-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            credential,
        })
    }

    /// The same client with a (new) credential.
    #[must_use]
    pub fn with_credential(mut self, credential: String) -> Self {
        self.credential = Some(credential);
        self
    }

    /// The underlying HTTP client (for report delivery).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credential {
            Some(c) => req.bearer_auth(c),
            None => req,
        }
    }

    /// `POST /v1/enroll`.
    pub async fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        call(self.http.post(format!("{}/v1/enroll", self.base)).json(req)).await
    }

    /// `PUT /v1/devices/{id}/profile`.
    pub async fn put_profile(
        &self,
        profile: &DeviceProfile,
    ) -> Result<ProfileAccepted, ClientError> {
        call(
            self.auth(
                self.http
                    .put(format!("{}/v1/devices/{}/profile", self.base, profile.id)),
            )
            .json(profile),
        )
        .await
    }

    /// `GET /v1/devices/{id}/plan`; `Ok(None)` when it is unchanged since `etag` (304).
    pub async fn get_plan(
        &self,
        device: &str,
        etag: Option<&str>,
    ) -> Result<Option<(Plan, Option<String>)>, ClientError> {
        let mut req = self.auth(
            self.http
                .get(format!("{}/v1/devices/{device}/plan", self.base)),
        );
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let resp = req.send().await.map_err(|e| unreachable(&e))?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let plan = resp
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Some((plan, etag)))
    }

    /// `POST /v1/devices/{id}/heartbeat`.
    pub async fn heartbeat(
        &self,
        device: &str,
        hb: &Heartbeat,
    ) -> Result<HeartbeatAck, ClientError> {
        call(
            self.auth(
                self.http
                    .post(format!("{}/v1/devices/{device}/heartbeat", self.base)),
            )
            .json(hb),
        )
        .await
    }

    /// Where this device's readiness reports go.
    pub fn readiness_target(&self, device: &str, max_elapsed: Duration) -> ReportTarget {
        ReportTarget {
            url: format!("{}/v1/devices/{device}/readiness", self.base),
            bearer: self.credential.clone(),
            max_elapsed,
        }
    }
}
