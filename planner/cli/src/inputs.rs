//! Reading the inputs of a command: catalog and policy directories (or the embedded defaults),
//! fleets of device profiles (a directory, a file, or the control plane's URL), this machine.

use crate::Failure;
use anyhow::{Context as _, anyhow};
use fleetfit_core::catalog::{Catalog, parse_catalog};
use fleetfit_core::defaults;
use fleetfit_core::diagnostic::{Diagnostic, Diagnostics};
use fleetfit_core::policy::{PolicySet, parse_policies};
use fleetfit_core::profile::DeviceProfile;
use std::path::{Path, PathBuf};

/// `(path as the user named it, file text)` pairs, in the order they are evaluated.
pub type Sources = Vec<(String, String)>;

/// `*.yaml`/`*.yml` files in `dir` (not recursive; `*.test.yaml` and hidden files skipped),
/// sorted: the same reader `fleetfit serve` uses.
pub fn read_yaml_dir(dir: &Path) -> Result<Sources, Failure> {
    fleetfit_server::config::read_yaml_dir(dir).map_err(|e| Failure::Error(anyhow!(e)))
}

/// The catalog from `dir`, or the embedded one.
pub fn load_catalog(dir: Option<&Path>) -> Result<(Catalog, Sources, Diagnostics), Failure> {
    let sources = match dir {
        Some(d) => read_yaml_dir(d)?,
        None => defaults::owned(defaults::CATALOG),
    };
    let (catalog, warnings) = parse_catalog(&sources).map_err(Failure::Invalid)?;
    Ok((catalog, sources, warnings))
}

/// Policies from `dir`, or the embedded default.
pub fn load_policies(
    dir: Option<&Path>,
    today: Option<&str>,
) -> Result<(PolicySet, Sources, Diagnostics), Failure> {
    let sources = match dir {
        Some(d) => read_yaml_dir(d)?,
        None => defaults::owned(defaults::POLICIES),
    };
    if sources.is_empty() {
        let path = dir.map_or_else(|| "<policies>".to_owned(), |d| d.display().to_string());
        return Err(Failure::Invalid(Diagnostics(vec![Diagnostic::error(
            &path,
            0,
            0,
            "empty-policies",
            "no policy files (`*.yaml`) found",
        )])));
    }
    let (set, warnings) = parse_policies(&sources, today).map_err(Failure::Invalid)?;
    Ok((set, sources, warnings))
}

/// Profiles from a directory, a file (one profile or a list) or an `http://` URL.
/// Returns the profiles sorted by id and the raw texts (for the fleet digest).
pub fn load_fleet(spec: &str) -> Result<(Vec<DeviceProfile>, Sources), Failure> {
    let mut texts: Vec<(String, String)> = Vec::new();
    if spec.starts_with("http://") || spec.starts_with("https://") {
        texts.push((spec.to_owned(), http_get(spec)?));
    } else {
        let path = Path::new(spec);
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read fleet directory `{spec}`"))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
                })
                .collect();
            files.sort();
            for f in files {
                let t = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read `{}`", f.display()))?;
                texts.push((f.display().to_string(), t));
            }
            if texts.is_empty() {
                return Err(Failure::Invalid(Diagnostics(vec![Diagnostic::error(
                    spec,
                    0,
                    0,
                    "empty-fleet",
                    "the fleet directory has no `*.json` or `*.yaml` device profiles",
                )])));
            }
        } else {
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read fleet file `{spec}`"))?;
            texts.push((spec.to_owned(), t));
        }
    }
    let mut diags = Diagnostics::default();
    let mut profiles = Vec::new();
    for (path, text) in &texts {
        match parse_profiles(path, text) {
            Ok(list) => {
                for p in list {
                    diags.0.extend(p.validate(path));
                    profiles.push(p);
                }
            }
            Err(d) => diags.push(d),
        }
    }
    profiles.sort_by(|a, b| a.id.cmp(&b.id));
    for w in profiles.windows(2) {
        if w[0].id == w[1].id {
            diags.push(Diagnostic::error(
                spec,
                0,
                0,
                "duplicate-id",
                format!(
                    "device id `{}` appears more than once in the fleet",
                    w[0].id
                ),
            ));
        }
    }
    if diags.has_errors() {
        return Err(Failure::Invalid(diags.sorted()));
    }
    Ok((profiles, texts))
}

fn parse_profiles(path: &str, text: &str) -> Result<Vec<DeviceProfile>, Diagnostic> {
    let trimmed = text.trim_start();
    let is_json = Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || trimmed.starts_with('{')
        || trimmed.starts_with('[');
    if is_json {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| json_diag(path, &e))?;
        match value {
            // The control plane's inventory: `{ "profiles": [...] }`.
            serde_json::Value::Object(mut o)
                if o.contains_key("profiles") && !o.contains_key("schema") =>
            {
                match o.remove("profiles") {
                    Some(serde_json::Value::Array(items)) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            serde_json::from_value::<DeviceProfile>(v).map_err(|e| {
                                Diagnostic::error(
                                    path,
                                    0,
                                    0,
                                    "invalid-profile",
                                    format!("profiles[{i}]: {e}"),
                                )
                            })
                        })
                        .collect(),
                    _ => Err(Diagnostic::error(
                        path,
                        0,
                        0,
                        "wrong-type",
                        "`profiles` must be a list of device profiles",
                    )),
                }
            }
            // A list or one profile: parse the text again, typed, so errors carry line:column.
            serde_json::Value::Array(_) => {
                serde_json::from_str::<Vec<DeviceProfile>>(text).map_err(|e| json_diag(path, &e))
            }
            _ => serde_json::from_str::<DeviceProfile>(text)
                .map(|p| vec![p])
                .map_err(|e| json_diag(path, &e)),
        }
    } else if trimmed.starts_with('-') {
        fleetfit_core::yaml::parse::<Vec<DeviceProfile>>(path, text)
    } else {
        fleetfit_core::yaml::parse::<DeviceProfile>(path, text).map(|p| vec![p])
    }
}

fn json_diag(path: &str, e: &serde_json::Error) -> Diagnostic {
    let msg = e.to_string();
    let msg = msg
        .rsplit_once(" at line ")
        .map_or(msg.as_str(), |(m, _)| m)
        .to_owned();
    let code = if msg.starts_with("unknown field") {
        "unknown-field"
    } else if msg.starts_with("missing field") {
        "missing-field"
    } else if msg.starts_with("invalid type") {
        "wrong-type"
    } else {
        "json-syntax"
    };
    Diagnostic::error(
        path,
        u32::try_from(e.line()).unwrap_or(0),
        u32::try_from(e.column()).unwrap_or(0),
        code,
        msg,
    )
}

/// GET the control plane's inventory (`/v1/fleet/profiles` when the URL has no path) over
/// HTTP or HTTPS, with `Authorization: Bearer $FLEETFIT_ADMIN_TOKEN` when that is set.
/// (The URL's path defaults to `/v1/fleet/profiles`.)
fn http_get(url: &str) -> Result<String, Failure> {
    let url = match url.split_once("://") {
        Some((scheme, rest)) if !rest.trim_end_matches('/').contains('/') => {
            format!(
                "{scheme}://{}/v1/fleet/profiles",
                rest.trim_end_matches('/')
            )
        }
        _ => url.to_owned(),
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_mins(1))
        .build()
        .map_err(|e| anyhow!("http client: {e}"))?;
    let mut req = client.get(&url).header("Accept", "application/json");
    // `FLEETFIT_TOKEN` is the older name, still read.
    if let Ok(token) =
        std::env::var("FLEETFIT_ADMIN_TOKEN").or_else(|_| std::env::var("FLEETFIT_TOKEN"))
        && !token.trim().is_empty()
    {
        req = req.bearer_auth(token.trim());
    }
    let resp = req.send().map_err(|e| {
        if e.is_connect() {
            anyhow!("cannot connect to `{url}`: {e}")
        } else {
            anyhow!("cannot GET `{url}`: {e}")
        }
    })?;
    let status = resp.status();
    let body = resp
        .text()
        .with_context(|| format!("cannot read the answer of `{url}`"))?;
    if !status.is_success() {
        return Err(anyhow!("`{url}` answered HTTP {}: {}", status.as_u16(), body.trim()).into());
    }
    Ok(body)
}

/// Today's date as `YYYY-MM-DD` (UTC), for rule expiry.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    fleetfit_core::calendar::date(secs)
}
