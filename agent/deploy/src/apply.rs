//! The deploy pipeline for one assignment: fetch (resumable, hashed on the fly) → integrity →
//! smoke inference → atomic install → readiness report. A failure at any step leaves the model
//! that was serving in place and says so in the report.

use crate::clock;
use crate::handoff;
use crate::smoke::{self, SmokeCommand};
use crate::state::{self, Attempt, Installed, StateError};
use fleetfit_core::plan::Assignment;
use fleetfit_core::readiness::{
    READINESS_SCHEMA, ReadinessReport, ReadinessState, ServingModel, SmokeOutcome, Verification,
};
use fleetfit_fetch::{FetchConfig, FetchRequest, Source};
use std::path::{Path, PathBuf};

/// How `apply` runs.
#[derive(Clone)]
pub struct ApplyOptions {
    /// The agent's state dir (state file, current-model links, reports, quarantine).
    pub state_dir: PathBuf,
    pub fetch: FetchConfig,
    pub smoke: SmokeCommand,
    /// Install a model whose smoke test was skipped (candle cannot run its architecture).
    /// Off by default: only `passed` installs.
    pub allow_smoke_skipped: bool,
    /// Fetch and verify again even when the planned model is already current.
    pub force: bool,
}

/// The outcome of one apply.
#[derive(Clone, Debug)]
pub struct Applied {
    pub report: ReadinessReport,
    /// A new model became current in this run.
    pub changed: bool,
    /// The Ollama Modelfile for the current model (GGUF), also written to the state dir.
    pub modelfile: Option<String>,
    /// The smoke child's whole JSON report, when one ran.
    pub smoke_raw: Option<serde_json::Value>,
}

/// What a dry run would do.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DryRun {
    pub device: String,
    pub role: String,
    pub model: String,
    pub quant: String,
    pub source: String,
    pub size_bytes: u64,
    pub destination: String,
    pub already_cached: bool,
    pub already_current: bool,
    pub free_bytes: Option<u64>,
    pub free_after_bytes: Option<u64>,
    pub run: Vec<fleetfit_core::plan::RunCommand>,
}

/// The fetch request for an assignment's artifact.
pub fn request_for(a: &Assignment) -> FetchRequest {
    let source = match &a.artifact.url {
        Some(url) => Source::Url(url.clone()),
        None => Source::Hub {
            repo: a.artifact.repo.clone(),
            revision: a.artifact.revision.clone(),
            file: a.artifact.file.clone(),
        },
    };
    FetchRequest {
        source,
        expected_sha256: a.artifact.sha256.clone(),
        expected_size: a.artifact.size_exact.then_some(a.artifact.size_bytes),
    }
}

/// Files a safetensors model needs beside its weights to load and tokenize (HF layout); fetched
/// from the same repo and revision, each checked against the hub's digest.
pub const SAFETENSORS_COMPANIONS: [&str; 2] = ["config.json", "tokenizer.json"];

/// The companion requests of `a` (none for single-file formats like GGUF).
pub fn companion_requests(a: &Assignment) -> Vec<FetchRequest> {
    if a.artifact.format != "safetensors" {
        return Vec::new();
    }
    SAFETENSORS_COMPANIONS
        .iter()
        .map(|name| {
            let source = match &a.artifact.url {
                Some(url) => Source::Url(match url.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => (*name).to_owned(),
                }),
                None => Source::Hub {
                    repo: a.artifact.repo.clone(),
                    revision: a.artifact.revision.clone(),
                    file: (*name).to_owned(),
                },
            };
            FetchRequest {
                source,
                expected_sha256: None,
                expected_size: None,
            }
        })
        .collect()
}

fn describe(req: &FetchRequest) -> String {
    match &req.source {
        Source::Hub {
            repo,
            revision,
            file,
        } => format!("hf://{repo}@{revision}/{file}"),
        Source::Url(u) => u.clone(),
    }
}

/// Whether `installed` is the planned artifact and its file is still there, whole.
fn is_current(installed: &Installed, a: &Assignment) -> bool {
    installed.model == a.model
        && installed.quant == a.quant
        && a.artifact
            .sha256
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&installed.sha256))
        && std::fs::metadata(&installed.path).is_ok_and(|m| m.len() == installed.size_bytes)
}

fn serving_of(i: &Installed) -> ServingModel {
    ServingModel {
        model: i.model.clone(),
        quant: i.quant.clone(),
        path: i.path.clone(),
        sha256: i.sha256.clone(),
    }
}

/// A report skeleton for `a`.
fn report(device: &str, a: &Assignment, state: ReadinessState) -> ReadinessReport {
    ReadinessReport {
        schema: READINESS_SCHEMA.to_owned(),
        device: device.to_owned(),
        state,
        model: a.model.clone(),
        quant: a.quant.clone(),
        path: String::new(),
        sha256: String::new(),
        verified: None,
        serving: None,
        error: None,
        estimated_memory_bytes: Some(a.estimate.memory_bytes),
        run: Vec::new(),
        report_id: clock::random_id(),
        generated_at: clock::now_rfc3339(),
    }
}

/// The report for a device the plan assigns nothing to (still naming what serves, if anything).
pub fn unassigned_report(state_dir: &Path, device: &str, why: &str) -> ReadinessReport {
    let serving = state::load(state_dir).ok().and_then(|s| {
        s.roles
            .values()
            .find_map(|r| r.current.as_ref().map(serving_of))
    });
    ReadinessReport {
        schema: READINESS_SCHEMA.to_owned(),
        device: device.to_owned(),
        state: ReadinessState::Unassigned,
        model: String::new(),
        quant: String::new(),
        path: String::new(),
        sha256: String::new(),
        verified: None,
        serving,
        error: Some(why.to_owned()),
        estimated_memory_bytes: None,
        run: Vec::new(),
        report_id: clock::random_id(),
        generated_at: clock::now_rfc3339(),
    }
}

/// What `apply` would download and where, changing nothing (one HEAD request unless cached).
pub async fn dry_run(
    opts: &ApplyOptions,
    device: &str,
    a: &Assignment,
) -> Result<DryRun, ApplyError> {
    let st = state::load(&opts.state_dir)?;
    let role = a.role.as_str();
    let already_current = st
        .roles
        .get(role)
        .and_then(|r| r.current.as_ref())
        .is_some_and(|i| is_current(i, a));
    let req = request_for(a);
    let remote = fleetfit_fetch::head(&opts.fetch, &req)
        .await
        .map_err(|e| ApplyError::Fetch(e.to_string()))?;
    let free = fs4::available_space(existing_ancestor(&remote.destination)).ok();
    let size = remote.size.unwrap_or(a.artifact.size_bytes);
    let need = if remote.already_cached { 0 } else { size };
    let link = opts.state_dir.join("models").join(role);
    Ok(DryRun {
        device: device.to_owned(),
        role: role.to_owned(),
        model: a.model.clone(),
        quant: a.quant.clone(),
        source: describe(&req),
        size_bytes: size,
        destination: remote.destination.display().to_string(),
        already_cached: remote.already_cached,
        already_current,
        free_bytes: free,
        free_after_bytes: free.map(|f| f.saturating_sub(need)),
        run: handoff::local_commands(a, &link).0,
    })
}

/// The nearest existing directory at or above `p` (free space is asked of a real path).
fn existing_ancestor(p: &Path) -> &Path {
    let mut cur = p;
    while !cur.exists() {
        match cur.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => cur = parent,
            _ => return Path::new("."),
        }
    }
    cur
}

/// Errors that stop `apply` before it can even record an attempt (the state dir).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Fetch(String),
    #[error("cannot write to the state dir: {0}")]
    Io(#[from] std::io::Error),
}

fn record_attempt(
    state_dir: &Path,
    role: &str,
    a: &Assignment,
    phase: &str,
    error: Option<String>,
) -> Result<(), StateError> {
    let mut st = state::load(state_dir)?;
    st.roles.entry(role.to_owned()).or_default().last_attempt = Some(Attempt {
        model: a.model.clone(),
        quant: a.quant.clone(),
        state: phase.to_owned(),
        error,
        at: clock::now_rfc3339(),
    });
    state::save(state_dir, &st)
}

/// Progress of one apply, for daemons that report `fetching`/`verifying`.
pub type OnPhase<'a> = &'a (dyn Fn(ReadinessState) + Send + Sync);

/// Fetches, verifies and installs `a` for `device`. A failed attempt is `Ok` with a `failed`
/// report (naming the model still serving); `Err` only when the state dir itself is unusable.
pub async fn apply(
    opts: &ApplyOptions,
    device: &str,
    a: &Assignment,
    on_phase: Option<OnPhase<'_>>,
) -> Result<Applied, ApplyError> {
    let role = a.role.as_str();
    std::fs::create_dir_all(&opts.state_dir)?;
    let st = state::load(&opts.state_dir)?;
    let current = st.roles.get(role).and_then(|r| r.current.clone());
    let link = opts.state_dir.join("models").join(role);

    if let Some(cur) = &current
        && !opts.force
        && is_current(cur, a)
    {
        let (run, modelfile) = handoff::local_commands(a, &link);
        let mut r = report(device, a, ReadinessState::Ready);
        r.path = cur.path.clone();
        r.sha256 = cur.sha256.clone();
        r.verified = Some(cur.verified.clone());
        r.serving = Some(serving_of(cur));
        r.run = run;
        return Ok(Applied {
            report: r,
            changed: false,
            modelfile,
            smoke_raw: None,
        });
    }

    // A failed attempt: recorded, reported as failed, naming the model that still serves.
    let give_up = |mut r: ReadinessReport,
                   msg: String,
                   smoke_raw: Option<serde_json::Value>|
     -> Result<Applied, ApplyError> {
        r.state = ReadinessState::Failed;
        r.error = Some(msg.clone());
        r.serving = current.as_ref().map(serving_of);
        record_attempt(&opts.state_dir, role, a, "failed", Some(msg))?;
        Ok(Applied {
            report: r,
            changed: false,
            modelfile: None,
            smoke_raw,
        })
    };

    // Fetch.
    record_attempt(&opts.state_dir, role, a, "fetching", None)?;
    if let Some(cb) = on_phase {
        cb(ReadinessState::Fetching);
    }
    let req = request_for(a);
    let fetched = match fleetfit_fetch::fetch(&opts.fetch, &req).await {
        Ok(f) => f,
        Err(e) => {
            let mut r = report(device, a, ReadinessState::Failed);
            let msg = format!("fetch {}: {e}", describe(&req));
            if let fleetfit_fetch::FetchError::IntegrityMismatch { .. } = e {
                r.verified = Some(Verification {
                    integrity: false,
                    integrity_source: None,
                    smoke: SmokeOutcome::Skipped,
                    detail: "not run: the file failed its integrity check".into(),
                    load_seconds: 0.0,
                    tokens_per_second: 0.0,
                    peak_rss_bytes: 0,
                });
            }
            return give_up(r, msg, None);
        }
    };
    for companion in companion_requests(a) {
        if let Err(e) = fleetfit_fetch::fetch(&opts.fetch, &companion).await {
            let r = report(device, a, ReadinessState::Failed);
            let msg = format!("fetch {}: {e}", describe(&companion));
            return give_up(r, msg, None);
        }
    }
    let integrity_source = match fetched.integrity_source {
        fleetfit_fetch::IntegritySource::Catalog => "catalog",
        fleetfit_fetch::IntegritySource::LinkedEtag => "x-linked-etag",
        fleetfit_fetch::IntegritySource::GitBlobSha1 => "git-blob-sha1",
        fleetfit_fetch::IntegritySource::None => "none",
    }
    .to_owned();
    let mut r = report(device, a, ReadinessState::Verifying);
    r.path = fetched.path.display().to_string();
    r.sha256 = fetched.sha256.clone();
    if integrity_source == "none" {
        let msg = format!(
            "no sha256 to check {} against (the catalog has none and the source gave none); not installed",
            describe(&req)
        );
        return give_up(r, msg, None);
    }

    // Smoke inference.
    record_attempt(&opts.state_dir, role, a, "verifying", None)?;
    if let Some(cb) = on_phase {
        cb(ReadinessState::Verifying);
    }
    // Safetensors models are a directory (weights + config + tokenizer); GGUF is one file.
    let smoke_path = if a.artifact.format == "safetensors" {
        fetched.path.parent().unwrap_or(&fetched.path).to_path_buf()
    } else {
        fetched.path.clone()
    };
    let smoke = smoke::run(&opts.smoke, &smoke_path, device).await;
    let verification = Verification {
        integrity: true,
        integrity_source: Some(integrity_source),
        smoke: smoke.outcome,
        detail: smoke.detail.clone(),
        load_seconds: smoke.load_seconds,
        tokens_per_second: smoke.tokens_per_second,
        peak_rss_bytes: smoke.peak_rss_bytes,
    };
    r.verified = Some(verification.clone());
    let accepted = smoke.outcome == SmokeOutcome::Passed
        || (smoke.outcome == SmokeOutcome::Skipped && opts.allow_smoke_skipped);
    if !accepted {
        let msg = match smoke.outcome {
            SmokeOutcome::Skipped => format!(
                "smoke test skipped ({}); not installed (pass --allow-smoke-skipped to accept)",
                smoke.detail
            ),
            _ => format!("smoke test failed: {}", smoke.detail),
        };
        return give_up(r, msg, Some(smoke.raw));
    }

    // Install: the state file and the stable link switch together, the file is already in place.
    let installed = Installed {
        model: a.model.clone(),
        quant: a.quant.clone(),
        format: a.artifact.format.clone(),
        path: fetched.path.display().to_string(),
        sha256: fetched.sha256.clone(),
        size_bytes: fetched.size,
        context_tokens: a.context_tokens,
        verified: verification,
        installed_at: clock::now_rfc3339(),
        estimated_memory_bytes: a.estimate.memory_bytes,
    };
    let mut st = state::load(&opts.state_dir)?;
    let entry = st.roles.entry(role.to_owned()).or_default();
    if let Some(old) = entry.current.take()
        && old.sha256 != installed.sha256
    {
        entry.previous = Some(old);
    }
    entry.current = Some(installed.clone());
    entry.last_attempt = Some(Attempt {
        model: a.model.clone(),
        quant: a.quant.clone(),
        state: "ready".into(),
        error: None,
        at: clock::now_rfc3339(),
    });
    state::save(&opts.state_dir, &st)?;
    state::link_current(&opts.state_dir, role, &fetched.path)?;
    let (run, modelfile) = handoff::local_commands(a, &link);
    if let Some(text) = &modelfile {
        state::write_atomic(
            &opts
                .state_dir
                .join("runtimes")
                .join(format!("{role}.Modelfile")),
            text.as_bytes(),
        )?;
    }
    r.state = ReadinessState::Ready;
    r.serving = Some(serving_of(&installed));
    r.run = run;
    Ok(Applied {
        report: r,
        changed: true,
        modelfile,
        smoke_raw: Some(smoke.raw),
    })
}
