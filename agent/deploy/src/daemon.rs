//! The agent daemon (`fleetfit-agent run`): enroll once, then loop — probe, put the profile when
//! it changed, heartbeat, fetch the plan when its digest changed, apply it, report readiness —
//! with exponential backoff and jitter while the control plane is away. The model that serves
//! is only ever replaced by a verified one, so the device keeps serving throughout.

use crate::apply::{self, ApplyOptions};
use crate::client::{ClientError, ControlPlane};
use crate::report;
use crate::state::write_atomic;
use crate::{clock, planning};
use fleetfit_core::api::{EnrollRequest, Heartbeat};
use fleetfit_core::plan::Plan;
use fleetfit_core::profile::DeviceProfile;
use fleetfit_core::readiness::{ReadinessReport, ReadinessState};
use fleetfit_probe::ProbeOptions;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the daemon runs.
#[derive(Clone)]
pub struct DaemonOptions {
    /// `http(s)://host:port` of `fleetfit serve`.
    pub server: String,
    /// The enrollment token (only needed until the device holds a credential).
    pub enroll_token: Option<String>,
    pub sysroot: PathBuf,
    /// Heartbeat period.
    pub interval: Duration,
    /// Longest wait between attempts while the server is unreachable.
    pub max_backoff: Duration,
    /// Re-send the profile at least this often (free memory and disk drift).
    pub profile_refresh: Duration,
    /// Wait this long before retrying a plan whose install failed.
    pub retry_failed_after: Duration,
    /// Which assignment to install (default: the plan's first).
    pub role: Option<String>,
    /// Run one cycle and return (cron, tests).
    pub once: bool,
    pub apply: ApplyOptions,
}

/// Logs one line to stderr (journald and kubectl logs add their own timestamps; we add ours).
pub fn log(msg: &str) {
    eprintln!("{} fleetfit-agent: {msg}", clock::now_rfc3339());
}

/// What the daemon keeps between cycles.
struct Session {
    cp: ControlPlane,
    device: String,
    profile_digest: Option<String>,
    profile_sent: Option<Instant>,
    plan: Option<Plan>,
    plan_etag: Option<String>,
    plan_digest: Option<String>,
    /// The plan digest whose install last failed, and when.
    failed: Option<(String, Instant)>,
    /// The plan digest an `unassigned` report was sent for.
    unassigned_reported: Option<String>,
    state: ReadinessState,
    serving: Option<String>,
}

/// Runs until `shutdown` resolves (or after one cycle with `once`).
pub async fn run(opts: DaemonOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.apply.state_dir)?;
    tokio::pin!(shutdown);
    let mut session: Option<Session> = None;
    let mut backoff = opts.interval.min(Duration::from_secs(1));
    loop {
        let cycle = cycle(&opts, &mut session);
        let result = tokio::select! {
            () = &mut shutdown => {
                log("shutting down (an interrupted download resumes on the next start)");
                return Ok(());
            }
            r = cycle => r,
        };
        let wait = match result {
            Ok(()) => {
                backoff = opts.interval.min(Duration::from_secs(1));
                if opts.once {
                    return Ok(());
                }
                report::jittered(opts.interval)
            }
            Err(e) => {
                if opts.once {
                    return Err(e);
                }
                log(&format!("{e:#}; retrying in {backoff:?}"));
                let w = report::jittered(backoff);
                backoff = (backoff * 2).min(opts.max_backoff);
                w
            }
        };
        tokio::select! {
            () = &mut shutdown => {
                log("shutting down");
                return Ok(());
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

fn credential_path(state_dir: &Path) -> PathBuf {
    state_dir.join("credential")
}

/// Writes the credential readable by its owner only.
fn save_credential(state_dir: &Path, credential: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = credential_path(state_dir);
    write_atomic(&path, format!("{credential}\n").as_bytes())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
}

fn probe(opts: &DaemonOptions) -> DeviceProfile {
    fleetfit_probe::probe(&ProbeOptions {
        sysroot: opts.sysroot.clone(),
        models_dir: Some(opts.apply.fetch.cache_dir.clone()),
    })
}

/// The profile's digest without the fields that drift every second (free memory and disk), so
/// "changed" means the hardware or labels changed.
fn stable_digest(profile: &DeviceProfile) -> String {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in ["available_bytes", "free_bytes", "memory_free_bytes"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(profile).unwrap_or_default();
    strip(&mut v);
    fleetfit_core::digest::digest_bytes(v.to_string().as_bytes())
}

async fn ensure_session(
    opts: &DaemonOptions,
    session: &mut Option<Session>,
    profile: &DeviceProfile,
) -> anyhow::Result<()> {
    if session.is_some() {
        return Ok(());
    }
    let state_dir = &opts.apply.state_dir;
    let saved = std::fs::read_to_string(credential_path(state_dir))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let cp = ControlPlane::new(&opts.server, None)?;
    let cp = if let Some(c) = saved {
        cp.with_credential(c)
    } else {
        let Some(token) = &opts.enroll_token else {
            anyhow::bail!(
                "not enrolled: no credential in `{}` and no --enroll-token",
                credential_path(state_dir).display()
            );
        };
        let resp = cp
            .enroll(&EnrollRequest {
                enrollment_token: token.clone(),
                device_id: profile.id.clone(),
                hostname: profile.hostname.clone(),
                labels: profile.labels.clone(),
            })
            .await?;
        save_credential(state_dir, &resp.credential)?;
        log(&format!(
            "enrolled as `{}` (credential {})",
            resp.device_id, resp.credential_id
        ));
        cp.with_credential(resp.credential)
    };
    let st = crate::state::load(state_dir)?;
    let serving = st.roles.values().find_map(|r| {
        r.current
            .as_ref()
            .map(|c| format!("{}:{}", c.model, c.quant))
    });
    *session = Some(Session {
        cp,
        device: profile.id.clone(),
        profile_digest: None,
        profile_sent: None,
        plan: None,
        plan_etag: None,
        plan_digest: None,
        failed: None,
        unassigned_reported: None,
        state: if serving.is_some() {
            ReadinessState::Ready
        } else {
            ReadinessState::Unassigned
        },
        serving,
    });
    Ok(())
}

/// Delivers queued reports, oldest first; stops at the first that is not acknowledged.
async fn flush_outbox(cp: &ControlPlane, state_dir: &Path, device: &str) {
    for (path, r) in report::queued(state_dir) {
        let target = cp.readiness_target(device, Duration::from_secs(5));
        match report::send(cp.http(), &target, &r).await {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(report::ReportError::Refused { status, body }) => {
                log(&format!(
                    "queued report {} refused ({status}): {body}",
                    r.report_id
                ));
                let _ = std::fs::rename(&path, path.with_extension("refused"));
            }
            Err(_) => return,
        }
    }
}

async fn deliver(s: &Session, opts: &DaemonOptions, r: &ReadinessReport) {
    let target = s.cp.readiness_target(&s.device, Duration::from_secs(10));
    let _ = report::write_latest(&opts.apply.state_dir, r);
    match report::deliver(s.cp.http(), &target, &opts.apply.state_dir, r).await {
        Ok(()) => log(&format!(
            "reported {:?} for {} {} (acknowledged)",
            r.state, r.model, r.quant
        )),
        Err(e) => log(&format!("report not yet delivered: {e}")),
    }
}

fn auth_hint(e: ClientError, state_dir: &Path) -> anyhow::Error {
    if let ClientError::Status { status: 401, .. } = e {
        anyhow::anyhow!(
            "{e}: the device credential was refused (revoked?); remove `{}` and restart with a new --enroll-token",
            credential_path(state_dir).display()
        )
    } else {
        e.into()
    }
}

async fn cycle(opts: &DaemonOptions, session: &mut Option<Session>) -> anyhow::Result<()> {
    let profile = {
        let o = opts.clone();
        tokio::task::spawn_blocking(move || probe(&o)).await?
    };
    ensure_session(opts, session, &profile).await?;
    let Some(s) = session.as_mut() else {
        return Ok(());
    };
    let state_dir = opts.apply.state_dir.clone();

    // Profile, when it changed (or is due for a refresh).
    let digest = stable_digest(&profile);
    let due = s
        .profile_sent
        .is_none_or(|t| t.elapsed() >= opts.profile_refresh);
    if s.profile_digest.as_deref() != Some(digest.as_str()) || due {
        s.cp.put_profile(&profile)
            .await
            .map_err(|e| auth_hint(e, &state_dir))?;
        s.profile_digest = Some(digest);
        s.profile_sent = Some(Instant::now());
    }

    flush_outbox(&s.cp, &state_dir, &s.device).await;

    // Heartbeat; it says whether the plan changed.
    let ack =
        s.cp.heartbeat(
            &s.device,
            &Heartbeat {
                state: Some(s.state),
                serving_model: s.serving.clone(),
            },
        )
        .await
        .map_err(|e| auth_hint(e, &state_dir))?;
    if s.plan.is_none() || (ack.plan_digest.is_some() && ack.plan_digest != s.plan_digest) {
        if let Some((plan, etag)) =
            s.cp.get_plan(&s.device, s.plan_etag.as_deref())
                .await
                .map_err(|e| auth_hint(e, &state_dir))?
        {
            s.plan = Some(plan);
            s.plan_etag = etag;
        }
        s.plan_digest = ack.plan_digest.clone().or_else(|| s.plan_etag.clone());
    }
    let Some(plan) = s.plan.clone() else {
        return Ok(());
    };
    let digest = s.plan_digest.clone().unwrap_or_default();
    let device_plan = planning::device_plan(&plan, &s.device)?;
    let Some(assignment) = planning::pick(device_plan, opts.role.as_deref()).cloned() else {
        if s.unassigned_reported.as_deref() != Some(digest.as_str()) {
            let r = apply::unassigned_report(
                &state_dir,
                &s.device,
                "the plan assigns no model to this device",
            );
            deliver(s, opts, &r).await;
            s.unassigned_reported = Some(digest);
        }
        return Ok(());
    };
    if let Some((d, at)) = &s.failed
        && *d == digest
        && at.elapsed() < opts.retry_failed_after
    {
        return Ok(());
    }

    // Apply (a no-op when the assignment is already current), heartbeating meanwhile.
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let p2 = phase.clone();
    let on_phase = move |st: ReadinessState| {
        let code = match st {
            ReadinessState::Fetching => 1,
            ReadinessState::Verifying => 2,
            _ => 0,
        };
        p2.store(code, std::sync::atomic::Ordering::Relaxed);
    };
    let applied = {
        let fut = apply::apply(&opts.apply, &s.device, &assignment, Some(&on_phase));
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(opts.interval);
        tick.tick().await;
        loop {
            tokio::select! {
                r = &mut fut => break r,
                _ = tick.tick() => {
                    let st = match phase.load(std::sync::atomic::Ordering::Relaxed) {
                        1 => ReadinessState::Fetching,
                        2 => ReadinessState::Verifying,
                        _ => s.state,
                    };
                    let _ = s.cp.heartbeat(&s.device, &Heartbeat { state: Some(st), serving_model: s.serving.clone() }).await;
                }
            }
        }
    }?;
    let r = applied.report;
    if applied.changed || r.state != ReadinessState::Ready || s.state != ReadinessState::Ready {
        deliver(s, opts, &r).await;
    }
    s.state = r.state;
    s.serving = r
        .serving
        .as_ref()
        .map(|sv| format!("{}:{}", sv.model, sv.quant));
    if r.state == ReadinessState::Failed {
        log(&format!(
            "install of {} {} failed: {}",
            r.model,
            r.quant,
            r.error.as_deref().unwrap_or("")
        ));
        s.failed = Some((digest, Instant::now()));
    } else {
        s.failed = None;
    }
    Ok(())
}
