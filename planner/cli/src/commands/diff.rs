//! `fleetfit diff`: plan base and head on the same fleet and show what changes.
//!
//! Base and head each have policies and a catalog (the embedded catalog when none is given).
//! The base policies come from `--base-policies DIR` or, with `--base-ref REV`, from the git
//! history of the head policy directory (`git ls-tree` + `git show`, no checkout).

use crate::Failure;
use crate::inputs::{Sources, load_catalog, load_fleet, load_policies, today_utc};
use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};
use fleetfit_core::diagnostic::{Diagnostic, Diagnostics};
use fleetfit_core::diff::{diff, diff_markdown, diff_text};
use fleetfit_core::digest::digest_files;
use fleetfit_core::plan::{PlanInputs, PlanOptions, plan};
use fleetfit_core::policy::{PolicySet, parse_policies};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

/// `fleetfit diff` arguments.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Base (before) policy directory.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "base_ref",
        conflicts_with = "base_ref"
    )]
    pub base_policies: Option<PathBuf>,
    /// Base policies from this git revision of the `--policies` directory (e.g. `origin/main`).
    #[arg(long, value_name = "REV")]
    pub base_ref: Option<String>,
    /// Head (after) policy directory.
    #[arg(long, value_name = "DIR")]
    pub policies: PathBuf,
    /// Base catalog directory (default: `--catalog`, else the embedded catalog).
    #[arg(long, value_name = "DIR")]
    pub base_catalog: Option<PathBuf>,
    /// Head catalog directory (default: the embedded catalog).
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// Device profiles (a directory of `*.json`/`*.yaml`, one file, or the control plane's URL);
    /// both sides are planned on this same snapshot.
    #[arg(long, value_name = "DIR|FILE|URL")]
    pub fleet: String,
    /// `text` (Terraform-like), `markdown` (a PR comment) or `json` (`fleetfit/diff/v1`).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Exit 5 when any device changes, 0 when none does.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Evaluate rule expiry on this day (YYYY-MM-DD); default: today (UTC).
    #[arg(long, value_name = "DATE")]
    pub today: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the command.
pub fn run(args: &DiffArgs) -> Result<ExitCode, Failure> {
    let today = args.today.clone().unwrap_or_else(today_utc);
    let (devices, fleet_texts) = load_fleet(&args.fleet)?;
    let fleet_digest = digest_files(&fleet_texts);

    let (head_catalog, head_catalog_src, mut warnings) = load_catalog(args.catalog.as_deref())?;
    let base_catalog = match args.base_catalog.as_deref() {
        Some(dir) => {
            let (c, src, w) = load_catalog(Some(dir))?;
            warnings.extend(w);
            Some((c, src))
        }
        None => None,
    };

    // Both sides are validated before either is reported, so one run names every problem.
    let head = load_policies(Some(&args.policies), Some(&today));
    let base = match (&args.base_ref, &args.base_policies) {
        (Some(rev), _) => policies_at_rev(rev, &args.policies).and_then(|src| {
            parse_sources(src, &format!("{rev}:{}", args.policies.display()), &today)
        }),
        (None, Some(dir)) => load_policies(Some(dir), Some(&today)),
        (None, None) => Err(anyhow!("give --base-policies DIR or --base-ref REV").into()),
    };
    let ((head_set, head_src, hw), (base_set, base_src, bw)) = match (head, base) {
        (Ok(h), Ok(b)) => (h, b),
        (Err(Failure::Invalid(mut h)), Err(Failure::Invalid(b))) => {
            h.0.extend(b.0);
            return Err(Failure::Invalid(h.sorted()));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    warnings.extend(bw);
    warnings.extend(hw);
    let warnings = warnings.sorted();
    for w in &warnings {
        eprintln!("{w}");
    }

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let options = PlanOptions {
        today: Some(today),
        threads,
    };
    let head_catalog_digest = digest_files(&head_catalog_src);
    let (base_cat, base_catalog_digest) = match &base_catalog {
        Some((c, src)) => (c, digest_files(src)),
        None => (&head_catalog, head_catalog_digest.clone()),
    };
    let base_plan = plan(
        &devices,
        base_cat,
        &base_set,
        PlanInputs {
            catalog_digest: base_catalog_digest,
            policies_digest: digest_files(&base_src),
            fleet_digest: fleet_digest.clone(),
            today: None,
        },
        &options,
    );
    let head_plan = plan(
        &devices,
        &head_catalog,
        &head_set,
        PlanInputs {
            catalog_digest: head_catalog_digest,
            policies_digest: digest_files(&head_src),
            fleet_digest,
            today: None,
        },
        &options,
    );
    let report = diff(&base_plan, &head_plan);
    let out = match args.format {
        DiffFormat::Text => diff_text(&report),
        DiffFormat::Markdown => diff_markdown(&report),
        DiffFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report)
                .map_err(|e| anyhow!("cannot serialize the diff: {e}"))?;
            s.push('\n');
            s
        }
    };
    print!("{out}");
    if args.detailed_exitcode && report.summary.has_changes() {
        return Ok(ExitCode::from(5));
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses policy sources read from git, with the same empty-set check as a directory.
fn parse_sources(
    sources: Sources,
    label: &str,
    today: &str,
) -> Result<(PolicySet, Sources, Diagnostics), Failure> {
    if sources.is_empty() {
        return Err(Failure::Invalid(Diagnostics(vec![Diagnostic::error(
            label,
            0,
            0,
            "empty-policies",
            "no policy files (`*.yaml`) found at this revision",
        )])));
    }
    let (set, warnings) = parse_policies(&sources, Some(today)).map_err(Failure::Invalid)?;
    Ok((set, sources, warnings))
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Failure> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .with_context(|| "cannot run `git` (is it installed?)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "`git {}` failed in `{}`: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    String::from_utf8(out.stdout)
        .map_err(|_| anyhow!("`git {}` printed text that is not UTF-8", args.join(" ")).into())
}

/// The policy files of `dir` as tracked at `rev`: `(REV:dir/file.yaml, text)`, sorted.
fn policies_at_rev(rev: &str, dir: &Path) -> Result<Sources, Failure> {
    if rev.starts_with('-') {
        return Err(anyhow!("`{rev}` is not a git revision").into());
    }
    let listing = git(dir, &["ls-tree", "--name-only", rev, "--", "."])?;
    let mut names: Vec<&str> = listing
        .lines()
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml")
                && !n.ends_with(".test.yaml")
        })
        .collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| {
            let text = git(dir, &["show", &format!("{rev}:./{name}")])?;
            Ok((format!("{rev}:{}/{name}", dir.display()), text))
        })
        .collect()
}
