//! `fleetfit plan`: plan the fleet (or this machine) on a catalog and policies; print the plan.

use crate::Failure;
use crate::inputs::{load_catalog, load_fleet, load_policies, today_utc};
use anyhow::anyhow;
use clap::{Args, ValueEnum};
use fleetfit_core::digest::{digest_bytes, digest_files};
use fleetfit_core::plan::{PlanInputs, PlanOptions, Status, plan};
use fleetfit_core::render::{plan_markdown, plan_text};
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Yaml,
    Markdown,
}

/// `fleetfit plan` arguments.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Device profiles: a directory of `*.json`/`*.yaml`, one file (a profile or a list), or the
    /// control plane's URL. Without it, fleetfit probes this machine.
    #[arg(long, value_name = "DIR|FILE|URL")]
    pub fleet: Option<String>,
    /// Catalog directory (default: the embedded catalog).
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// Policy directory (default: the embedded `policies/default.yaml`).
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Only this device (the plan still uses the whole fleet's digest).
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
    /// Show every reason and the nearest rejected alternatives (text format).
    #[arg(long)]
    pub explain: bool,
    /// Exit 4 when a device has no compliant model.
    #[arg(long)]
    pub fail_on_blocked: bool,
    /// Evaluate rule expiry on this day (YYYY-MM-DD); default: today (UTC).
    #[arg(long, value_name = "DATE")]
    pub today: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the command.
pub fn run(args: &PlanArgs) -> Result<ExitCode, Failure> {
    let today = args.today.clone().unwrap_or_else(today_utc);
    let (catalog, catalog_src, mut warnings) = load_catalog(args.catalog.as_deref())?;
    let (policies, policy_src, pw) = load_policies(args.policies.as_deref(), Some(&today))?;
    warnings.extend(pw);
    let (mut devices, fleet_digest) = if let Some(spec) = &args.fleet {
        let (profiles, texts) = load_fleet(spec)?;
        (profiles, digest_files(&texts))
    } else {
        let profile = fleetfit_probe::probe(&fleetfit_probe::ProbeOptions {
            sysroot: PathBuf::from("/"),
            models_dir: None,
        });
        let json = serde_json::to_vec(&profile)
            .map_err(|e| anyhow!("cannot serialize the probed profile: {e}"))?;
        (vec![profile], digest_bytes(&json))
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    if let Some(id) = &args.device {
        devices.retain(|d| &d.id == id);
        if devices.is_empty() {
            return Err(anyhow!("no device `{id}` in the fleet").into());
        }
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let inputs = PlanInputs {
        catalog_digest: digest_files(&catalog_src),
        policies_digest: digest_files(&policy_src),
        fleet_digest,
        today: None,
    };
    let options = PlanOptions {
        today: Some(today),
        threads,
    };
    let plan = plan(&devices, &catalog, &policies, inputs, &options);
    let out = match args.format {
        PlanFormat::Text => plan_text(&plan, args.explain),
        PlanFormat::Markdown => plan_markdown(&plan),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&plan)
                .map_err(|e| anyhow!("cannot serialize the plan: {e}"))?;
            s.push('\n');
            s
        }
        PlanFormat::Yaml => {
            serde_saphyr::to_string(&plan).map_err(|e| anyhow!("cannot serialize the plan: {e}"))?
        }
    };
    print!("{out}");
    if args.fail_on_blocked && plan.devices.iter().any(|d| d.status == Status::Blocked) {
        return Ok(ExitCode::from(4));
    }
    Ok(ExitCode::SUCCESS)
}
