//! `fleetfit lint`: validate a catalog and policies, printing every diagnostic at once.

use crate::Failure;
use crate::inputs::{read_yaml_dir, today_utc};
use clap::{Args, ValueEnum};
use fleetfit_core::defaults;
use fleetfit_core::diagnostic::Diagnostics;
use std::path::PathBuf;
use std::process::ExitCode;

/// Diagnostic format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
}

/// `fleetfit lint` arguments.
#[derive(Args, Debug)]
pub struct LintArgs {
    /// Catalog directory (default: the embedded catalog).
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// Policy directory (default: the embedded default policy).
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
}

/// Runs the command: exit 0 when clean (warnings allowed), 3 when any error.
pub fn run(args: &LintArgs) -> Result<ExitCode, Failure> {
    let catalog = match &args.catalog {
        Some(d) => read_yaml_dir(d)?,
        None => defaults::owned(defaults::CATALOG),
    };
    let policies = match &args.policies {
        Some(d) => read_yaml_dir(d)?,
        None => defaults::owned(defaults::POLICIES),
    };
    let today = today_utc();
    let mut all = Diagnostics::default();
    let models = match fleetfit_core::catalog::parse_catalog(&catalog) {
        Ok((c, w)) => {
            all.extend(w);
            c.models.len()
        }
        Err(d) => {
            all.extend(d);
            0
        }
    };
    let rules = match fleetfit_core::policy::parse_policies(&policies, Some(&today)) {
        Ok((p, w)) => {
            all.extend(w);
            p.rules.len()
        }
        Err(d) => {
            all.extend(d);
            0
        }
    };
    let all = all.sorted();
    match args.format {
        LintFormat::Json => {
            let s = serde_json::to_string_pretty(&all).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{s}");
        }
        LintFormat::Text => {
            eprint!("{all}");
            let errors = all
                .iter()
                .filter(|d| d.severity == fleetfit_core::Severity::Error)
                .count();
            let warnings = all.0.len() - errors;
            eprintln!(
                "checked {} catalog file(s) ({models} models) and {} policy file(s) ({rules} rules): {errors} error(s), {warnings} warning(s)",
                catalog.len(),
                policies.len()
            );
        }
    }
    Ok(if all.has_errors() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
