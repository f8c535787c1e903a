//! `fleetfit lint`: validate a catalog and policies, printing every diagnostic at once.

use crate::Failure;
use crate::inputs::{read_yaml_dir, today_utc};
use clap::{Args, ValueEnum};
use fleetfit_core::defaults;
use fleetfit_core::diagnostic::Diagnostics;
use std::fmt::Write as _;
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
    /// `json` prints the diagnostics as a JSON list on stdout (same as `--error-format json`).
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// How text diagnostics look: `human` (source line and a caret), `plain`
    /// (`path:line:col: severity[code]: message`) or `json`.
    #[arg(long, value_enum, default_value_t = ErrorFormat::Human, env = "FLEETFIT_ERROR_FORMAT")]
    pub error_format: ErrorFormat,
}

/// Diagnostic rendering for `--error-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ErrorFormat {
    Human,
    Plain,
    Json,
}

/// rustc-style rendering: the header, the location, the source line and a caret.
fn human(d: &fleetfit_core::Diagnostic, sources: &[&(String, String)]) -> String {
    let level = match d.severity {
        fleetfit_core::Severity::Warning => "warning",
        fleetfit_core::Severity::Error => "error",
    };
    let mut out = format!(
        "{level}[{}]: {}\n  --> {}\n",
        d.code,
        d.message,
        d.location()
    );
    let line = sources
        .iter()
        .find(|(p, _)| *p == d.path)
        .and_then(|(_, text)| {
            usize::try_from(d.line)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| text.lines().nth(i))
        });
    if let Some(src) = line {
        let num = d.line.to_string();
        let pad = " ".repeat(num.len());
        let col = usize::try_from(d.column.max(1)).unwrap_or(1) - 1;
        let indent: String = src
            .chars()
            .take(col)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = write!(out, "{pad} |\n{num} | {src}\n{pad} | {indent}^\n");
    }
    out
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
    let json = matches!(args.format, LintFormat::Json) || args.error_format == ErrorFormat::Json;
    match if json {
        LintFormat::Json
    } else {
        LintFormat::Text
    } {
        LintFormat::Json => {
            let s = serde_json::to_string_pretty(&all).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{s}");
        }
        LintFormat::Text => {
            if args.error_format == ErrorFormat::Human {
                let sources: Vec<&(String, String)> = catalog.iter().chain(&policies).collect();
                for d in &all.0 {
                    eprintln!("{}", human(d, &sources));
                }
            } else {
                eprint!("{all}");
            }
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
