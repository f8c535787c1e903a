//! `fleetfit-agent apply`: probe → plan (local core, or a plan file) → fetch → verify → install →
//! report, for one role of this device. `--dry-run` prints what it would download and changes
//! nothing. The ReadinessReport goes to stdout (`--format json`), the state dir, and the control
//! plane when `--server` is given.

use crate::{ApplyArgs, OutputFormat};
use anyhow::{Context as _, anyhow};
use fleetfit_core::Bytes;
use fleetfit_core::readiness::{ReadinessReport, ReadinessState};
use fleetfit_deploy::planning::{self, InvalidInput};
use fleetfit_deploy::report::{self, ReportTarget};
use fleetfit_deploy::smoke::SmokeCommand;
use fleetfit_deploy::{ApplyOptions, DryRun, apply, clock, dry_run};
use fleetfit_fetch::FetchConfig;
use fleetfit_probe::ProbeOptions;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The agent's state dir: `--state-dir`, `FLEETFIT_STATE_DIR`, `/var/lib/fleetfit` for root,
/// else `$XDG_STATE_HOME/fleetfit` or `~/.local/state/fleetfit`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("FLEETFIT_STATE_DIR") {
        return PathBuf::from(p);
    }
    if std::env::var("USER").is_ok_and(|u| u == "root") || env("HOME").is_none() {
        return PathBuf::from("/var/lib/fleetfit");
    }
    env("XDG_STATE_HOME").map_or_else(
        || PathBuf::from(env("HOME").unwrap_or_default()).join(".local/state/fleetfit"),
        |x| PathBuf::from(x).join("fleetfit"),
    )
}

/// The fetch configuration from the environment, with `--models-dir` as the HF cache.
pub fn fetch_config(models_dir: Option<&Path>, state_dir: &Path) -> FetchConfig {
    let mut cfg = FetchConfig::from_env();
    if let Some(d) = models_dir {
        cfg.cache_dir = d.to_path_buf();
    }
    cfg.quarantine_dir = state_dir.join("quarantine");
    cfg
}

/// Runs the command.
pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let state_dir = state_dir(args.state_dir.as_deref());
    let fetch = fetch_config(args.models_dir.as_deref(), &state_dir);
    let profile = fleetfit_probe::probe(&ProbeOptions {
        sysroot: args.sysroot.clone(),
        models_dir: Some(fetch.cache_dir.clone()),
    });
    let plan = match &args.plan {
        Some(p) => planning::read_plan(p),
        None => planning::plan_locally(
            &profile,
            args.catalog.as_deref(),
            args.policies.as_deref(),
            &args.today.clone().unwrap_or_else(clock::today),
        ),
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) if e.is::<InvalidInput>() => {
            eprintln!("{e}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e),
    };
    let device = planning::device_plan(&plan, &profile.id)?;
    let Some(assignment) = planning::pick(device, args.role.as_deref()) else {
        let why = match &args.role {
            Some(r) => format!("the plan assigns no `{r}` model to this device"),
            None => "the plan assigns no model to this device (blocked)".to_owned(),
        };
        let r = fleetfit_deploy::apply::unassigned_report(&state_dir, &profile.id, &why);
        if !args.dry_run {
            finish(args, &state_dir, &r).await?;
        }
        print_report(args.format, &r, None)?;
        return Ok(ExitCode::from(4));
    };
    let opts = ApplyOptions {
        state_dir: state_dir.clone(),
        fetch,
        smoke: SmokeCommand::this_exe(Duration::from_secs(args.smoke_timeout_secs))
            .context("cannot find this executable for the smoke test")?,
        allow_smoke_skipped: args.allow_smoke_skipped,
        force: args.force,
    };
    if args.dry_run {
        let d = dry_run(&opts, &profile.id, assignment).await?;
        print_dry_run(args.format, &d)?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "fleetfit-agent: {} {} {} for {} ({}, {})",
        assignment.role.as_str(),
        assignment.model,
        assignment.quant,
        profile.id,
        Bytes(assignment.artifact.size_bytes),
        assignment.artifact.file
    );
    let on_phase = |s: ReadinessState| {
        let what = match s {
            ReadinessState::Fetching => "fetching",
            ReadinessState::Verifying => "verifying (integrity ok; smoke inference)",
            _ => return,
        };
        eprintln!("fleetfit-agent: {what}");
    };
    let applied = apply(&opts, &profile.id, assignment, Some(&on_phase)).await?;
    finish(args, &state_dir, &applied.report).await?;
    print_report(args.format, &applied.report, applied.modelfile.as_deref())?;
    Ok(if applied.report.state == ReadinessState::Ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Stores the report and sends it when a server is configured.
async fn finish(args: &ApplyArgs, state_dir: &Path, r: &ReadinessReport) -> anyhow::Result<()> {
    report::write_latest(state_dir, r)
        .with_context(|| format!("cannot write the report into `{}`", state_dir.display()))?;
    let Some(server) = &args.server else {
        return Ok(());
    };
    let credential = std::fs::read_to_string(state_dir.join("credential"))
        .ok()
        .map(|s| s.trim().to_owned());
    let target = ReportTarget {
        url: format!(
            "{}/v1/devices/{}/readiness",
            server.trim_end_matches('/'),
            r.device
        ),
        bearer: credential,
        max_elapsed: Duration::from_secs(args.report_timeout_secs),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| anyhow!("cannot build the HTTP client: {e}"))?;
    match report::deliver(&client, &target, state_dir, r).await {
        Ok(()) => eprintln!("fleetfit-agent: report acknowledged by {server}"),
        Err(e) => eprintln!("fleetfit-agent: warning: {e}"),
    }
    Ok(())
}

fn print_report(
    format: OutputFormat,
    r: &ReadinessReport,
    modelfile: Option<&str>,
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(r)?;
            s.push('\n');
            s
        }
        OutputFormat::Text => report_text(r, modelfile),
    };
    print!("{text}");
    Ok(())
}

/// The report for people.
pub fn report_text(r: &ReadinessReport, modelfile: Option<&str>) -> String {
    let mut s = String::new();
    let state = match r.state {
        ReadinessState::Ready => "READY",
        ReadinessState::Failed => "FAILED",
        ReadinessState::Fetching => "fetching",
        ReadinessState::Verifying => "verifying",
        ReadinessState::Unassigned => "UNASSIGNED",
    };
    let _ = writeln!(s, "{}: {state} {} {}", r.device, r.model, r.quant);
    if !r.path.is_empty() {
        let _ = writeln!(s, "  file:      {}", r.path);
        let _ = writeln!(s, "  sha256:    {}", r.sha256);
    }
    if let Some(v) = &r.verified {
        let _ = writeln!(
            s,
            "  integrity: {} ({})",
            if v.integrity { "ok" } else { "FAILED" },
            v.integrity_source.as_deref().unwrap_or("-")
        );
        let smoke = match v.smoke {
            fleetfit_core::readiness::SmokeOutcome::Passed => "passed",
            fleetfit_core::readiness::SmokeOutcome::Failed => "FAILED",
            fleetfit_core::readiness::SmokeOutcome::Skipped => "SKIPPED (not a pass)",
        };
        let _ = writeln!(s, "  smoke:     {smoke}: {}", v.detail);
        let _ = writeln!(
            s,
            "  measured:  load {:.2} s, {:.1} tokens/s, peak RSS {}{}",
            v.load_seconds,
            v.tokens_per_second,
            Bytes(v.peak_rss_bytes),
            r.estimated_memory_bytes
                .map(|e| format!(" (plan estimated {})", Bytes(e)))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  error:     {e}");
    }
    if let Some(sv) = &r.serving {
        let _ = writeln!(s, "  serving:   {} {} ({})", sv.model, sv.quant, sv.path);
    } else if r.state != ReadinessState::Ready {
        let _ = writeln!(s, "  serving:   nothing");
    }
    for c in &r.run {
        let _ = writeln!(s, "  run ({}): {}", c.runtime, c.command);
    }
    if let Some(m) = modelfile {
        let _ = writeln!(s, "  Ollama Modelfile:");
        for line in m.lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
    s
}

fn print_dry_run(format: OutputFormat, d: &DryRun) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(d)?),
        OutputFormat::Text => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "{}: would install {} {} for role {} (dry run: nothing changed)",
                d.device, d.model, d.quant, d.role
            );
            let _ = writeln!(s, "  source:      {}", d.source);
            let _ = writeln!(
                s,
                "  download:    {}{}",
                if d.already_cached {
                    Bytes(0)
                } else {
                    Bytes(d.size_bytes)
                },
                if d.already_current {
                    " (already installed and current)"
                } else if d.already_cached {
                    " (already in the cache; verify only)"
                } else {
                    ""
                }
            );
            let _ = writeln!(s, "  destination: {}", d.destination);
            let fmt =
                |b: Option<u64>| b.map_or_else(|| "unknown".to_owned(), |b| Bytes(b).to_string());
            let _ = writeln!(
                s,
                "  free space:  {} now, {} after",
                fmt(d.free_bytes),
                fmt(d.free_after_bytes)
            );
            for c in &d.run {
                let _ = writeln!(s, "  run ({}): {}", c.runtime, c.command);
            }
            print!("{s}");
        }
    }
    Ok(())
}
