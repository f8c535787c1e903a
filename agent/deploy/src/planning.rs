//! The agent's local planning step: the same core `plan()` as `fleetfit plan`, on this device's
//! profile, with the catalog/policies from directories (a git checkout) or the embedded defaults;
//! or a plan file written by `fleetfit plan --format json`.

use anyhow::{Context as _, anyhow};
use fleetfit_core::catalog::parse_catalog;
use fleetfit_core::defaults;
use fleetfit_core::digest::{digest_bytes, digest_files};
use fleetfit_core::plan::{Assignment, DevicePlan, Plan, PlanInputs, PlanOptions, plan};
use fleetfit_core::policy::parse_policies;
use fleetfit_core::profile::DeviceProfile;
use std::path::{Path, PathBuf};

/// `(path, text)` of the catalog/policy sources in `dir` (`fleetfit_core::yaml::is_yaml_source`),
/// sorted: the same files `fleetfit plan --catalog/--policies DIR` reads.
pub fn read_yaml_dir(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory `{}`", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| fleetfit_core::yaml::is_yaml_source(&n.to_string_lossy()))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read `{}`", p.display()))?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

/// Bad catalog or policy input: the diagnostics, one per line, `path:line:column: …`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Plans `profile` on the catalog/policies in the given directories (embedded defaults when
/// `None`), as of `today` (`YYYY-MM-DD`, for rule expiry).
pub fn plan_locally(
    profile: &DeviceProfile,
    catalog_dir: Option<&Path>,
    policies_dir: Option<&Path>,
    today: &str,
) -> anyhow::Result<Plan> {
    let catalog_src = match catalog_dir {
        Some(d) => read_yaml_dir(d)?,
        None => defaults::owned(defaults::CATALOG),
    };
    let policy_src = match policies_dir {
        Some(d) => read_yaml_dir(d)?,
        None => defaults::owned(defaults::POLICIES),
    };
    let (catalog, _) = parse_catalog(&catalog_src).map_err(|d| InvalidInput(d.to_string()))?;
    let (policies, _) =
        parse_policies(&policy_src, Some(today)).map_err(|d| InvalidInput(d.to_string()))?;
    let json = serde_json::to_vec(profile).context("cannot serialize the profile")?;
    let inputs = PlanInputs {
        catalog_digest: digest_files(&catalog_src),
        policies_digest: digest_files(&policy_src),
        fleet_digest: digest_bytes(&json),
        today: None,
    };
    let options = PlanOptions {
        today: Some(today.to_owned()),
        threads: 1,
    };
    Ok(plan(
        std::slice::from_ref(profile),
        &catalog,
        &policies,
        inputs,
        &options,
    ))
}

/// Reads a plan file (`fleetfit plan --format json`).
pub fn read_plan(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        InvalidInput(format!(
            "{}:{}:{}: not a fleetfit/plan/v1 JSON plan: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
        .into()
    })
}

/// This device's entry in `plan`: by id, or the only entry of a one-device plan.
pub fn device_plan<'p>(plan: &'p Plan, device: &str) -> anyhow::Result<&'p DevicePlan> {
    if let Some(d) = plan.devices.iter().find(|d| d.device == device) {
        return Ok(d);
    }
    match plan.devices.as_slice() {
        [only] => Ok(only),
        _ => Err(anyhow!(
            "the plan has no entry for this device `{device}` (it lists {} devices)",
            plan.devices.len()
        )),
    }
}

/// The assignment to install: the one for `role`, else the first (the plan lists chat first).
pub fn pick<'p>(d: &'p DevicePlan, role: Option<&str>) -> Option<&'p Assignment> {
    match role {
        Some(r) => d.assignments.iter().find(|a| a.role.as_str() == r),
        None => d.assignments.first(),
    }
}
