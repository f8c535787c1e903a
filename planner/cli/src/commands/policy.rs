//! `fleetfit policy …`: policy tooling (`policy test`).
//!
//! `policy test` finds `*.test.yaml` files, loads each one's policies, catalog and devices
//! (paths relative to the test file), plans, runs the cases, and prints a table (or JSON, JUnit
//! XML, GitHub annotations). Exit 0 when every case passes; 3 when one fails, a test file is
//! invalid, or no case is found at all.

use crate::Failure;
use crate::inputs::{Sources, load_catalog, load_fleet, read_yaml_dir, today_utc};
use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use fleetfit_core::diagnostic::{Diagnostic, Diagnostics};
use fleetfit_core::plan::{PlanInputs, PlanOptions, plan};
use fleetfit_core::policy::parse_policies;
use fleetfit_core::policy_test::{CaseResult, PolicyTestFile, Totals, parse_test_file, run_tests};
use fleetfit_core::profile::DeviceProfile;
use fleetfit_core::yaml;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

/// `fleetfit policy` subcommands.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Run policy test files (`*.test.yaml`): exit 0 when every case passes, 3 otherwise.
    #[command(after_help = TEST_HELP)]
    Test(TestArgs),
}

const TEST_HELP: &str = "\
Exit codes:
  0  every case passed
  1  error: could not compute (I/O, internal)
  2  usage error
  3  a case failed, a test file is invalid, or no test case was found";

/// Output format of `policy test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// One line per case, reasons under failures, totals last.
    Table,
    /// Machine-readable results.
    Json,
    /// JUnit XML (CI test reports).
    Junit,
    /// GitHub Actions `::error` annotations.
    Github,
}

/// `fleetfit policy test` arguments.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Test files, or directories searched recursively for `*.test.yaml`.
    #[arg(value_name = "PATHS", default_value = "policies")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = TestFormat::Table)]
    pub format: TestFormat,
    /// Evaluate rule expiry on this day (YYYY-MM-DD); default: the file's `today`, else today (UTC).
    #[arg(long, value_name = "DATE")]
    pub today: Option<String>,
}

/// Runs the subcommand.
pub fn run(c: &PolicyCommand) -> Result<ExitCode, Failure> {
    match c {
        PolicyCommand::Test(a) => test(a),
    }
}

/// One test file's results.
#[derive(Debug, serde::Serialize)]
struct FileResults {
    path: String,
    cases: Vec<CaseResult>,
}

/// `--format json`: every file's results, then the totals.
#[derive(Debug, serde::Serialize)]
struct JsonReport<'a> {
    files: &'a [FileResults],
    summary: Totals,
}

fn test(args: &TestArgs) -> Result<ExitCode, Failure> {
    if let Some(t) = &args.today
        && !yaml::is_date(t)
    {
        return Err(Failure::Invalid(Diagnostics(vec![Diagnostic::error(
            "--today",
            0,
            0,
            "wrong-type",
            format!("`{t}`: expected a date `YYYY-MM-DD`"),
        )])));
    }
    let mut files = Vec::new();
    let mut diags = Diagnostics::default();
    for p in &args.paths {
        if p.is_dir() {
            find_tests(p, &mut files)?;
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            diags.push(Diagnostic::error(
                &p.display().to_string(),
                0,
                0,
                "not-found",
                "no such file or directory",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|f| seen.insert(f.clone()));
    let mut results = Vec::new();
    for f in &files {
        match run_file(f, args.today.as_deref()) {
            Ok(r) => results.push(r),
            Err(Failure::Invalid(d)) => diags.extend(d),
            Err(e) => return Err(e),
        }
    }
    if diags.has_errors() {
        return Err(Failure::Invalid(diags.sorted()));
    }
    let totals = Totals::of(results.iter().flat_map(|r| &r.cases));
    if totals.cases == 0 {
        let under = args
            .paths
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", ");
        let what = if files.is_empty() {
            "no `*.test.yaml` file"
        } else {
            "test files without cases"
        };
        return Err(Failure::Invalid(Diagnostics(vec![Diagnostic::error(
            &args
                .paths
                .first()
                .map_or_else(String::new, |p| p.display().to_string()),
            0,
            0,
            "no-test-cases",
            format!(
                "no policy test cases found under {under} ({what}); a test run must run at least one case"
            ),
        )])));
    }
    let out = match args.format {
        TestFormat::Table => table(&results, totals),
        TestFormat::Json => {
            let doc = JsonReport {
                files: &results,
                summary: totals,
            };
            let mut s = serde_json::to_string_pretty(&doc)
                .map_err(|e| anyhow!("cannot serialize the results: {e}"))?;
            s.push('\n');
            s
        }
        TestFormat::Junit => junit(&results, totals),
        TestFormat::Github => github(&results, totals),
    };
    print!("{out}");
    Ok(if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `*.test.yaml` under `dir`, recursively (hidden entries and `target` skipped), sorted.
fn find_tests(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Failure> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory `{}`", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            find_tests(&p, out)?;
        } else if name.ends_with(".test.yaml") || name.ends_with(".test.yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// `base/rel` with `.` and `..` resolved lexically, so paths in output stay readable.
fn resolve(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Loads, plans and runs one test file.
fn run_file(file: &Path, today: Option<&str>) -> Result<FileResults, Failure> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{path}`"))?;
    let spec = parse_test_file(&path, &text).map_err(Failure::Invalid)?;
    let base = file.parent().unwrap_or_else(|| Path::new(""));
    check_paths(&path, &text, &spec, base)?;
    let today = today
        .map(str::to_owned)
        .or_else(|| spec.today.clone())
        .unwrap_or_else(today_utc);
    let catalog_dir = spec.catalog.as_deref().map(|c| resolve(base, c));
    let (catalog, _, _) = load_catalog(catalog_dir.as_deref())?;
    let mut sources: Sources = Vec::new();
    for p in &spec.policies {
        let p = resolve(base, p);
        if p.is_dir() {
            sources.extend(read_yaml_dir(&p)?);
        } else {
            let t = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read `{}`", p.display()))?;
            sources.push((p.display().to_string(), t));
        }
    }
    if sources.is_empty() {
        let at = yaml::find_key(&text, "policies", 0);
        return Err(Failure::Invalid(Diagnostics(vec![Diagnostic::error(
            &path,
            at.line,
            at.column,
            "empty-policies",
            "`policies` names no policy file (`*.yaml`)",
        )])));
    }
    let (policies, _) = parse_policies(&sources, Some(&today)).map_err(Failure::Invalid)?;
    let devices = devices(&path, &text, &spec, base)?;
    let options = PlanOptions {
        today: Some(today),
        threads: 1,
    };
    let plan = plan(
        &devices,
        &catalog,
        &policies,
        PlanInputs::default(),
        &options,
    );
    let cases = run_tests(&path, &spec, &plan, &catalog).map_err(Failure::Invalid)?;
    Ok(FileResults { path, cases })
}

/// Every path the file names must exist: an error at its key otherwise.
fn check_paths(path: &str, text: &str, spec: &PolicyTestFile, base: &Path) -> Result<(), Failure> {
    let mut diags = Diagnostics::default();
    let named = spec
        .policies
        .iter()
        .map(|p| ("policies", p))
        .chain(spec.catalog.iter().map(|p| ("catalog", p)))
        .chain(spec.devices_from.iter().map(|p| ("devices_from", p)));
    for (key, p) in named {
        let full = resolve(base, p);
        if !full.exists() {
            let at = yaml::find_key(text, key, 0);
            diags.push(Diagnostic::error(
                path,
                at.line,
                at.column,
                "not-found",
                format!("`{key}`: `{p}` (`{}`) does not exist", full.display()),
            ));
        }
    }
    if diags.has_errors() {
        Err(Failure::Invalid(diags))
    } else {
        Ok(())
    }
}

/// The file's devices: `devices_from` then inline, sorted by id, ids unique.
fn devices(
    path: &str,
    text: &str,
    spec: &PolicyTestFile,
    base: &Path,
) -> Result<Vec<DeviceProfile>, Failure> {
    let mut devices = Vec::new();
    for p in &spec.devices_from {
        let (list, _) = load_fleet(&resolve(base, p).display().to_string())?;
        devices.extend(list);
    }
    let mut diags = Diagnostics::default();
    for d in &spec.devices {
        diags.0.extend(d.validate(path));
    }
    devices.extend(spec.devices.iter().cloned());
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    for w in devices.windows(2) {
        if w[0].id == w[1].id {
            let at = yaml::find_key(text, "devices", 0);
            diags.push(Diagnostic::error(
                path,
                at.line,
                at.column,
                "duplicate-id",
                format!("device id `{}` appears more than once", w[0].id),
            ));
        }
    }
    if devices.is_empty() {
        let at = yaml::find_key(text, "devices", 0);
        diags.push(Diagnostic::error(
            path,
            at.line,
            at.column,
            "missing-field",
            "no devices: give `devices` (inline profiles) or `devices_from` (profile files)",
        ));
    }
    if diags.has_errors() {
        return Err(Failure::Invalid(diags.sorted()));
    }
    Ok(devices)
}

fn table(results: &[FileResults], totals: Totals) -> String {
    let mut s = String::new();
    for f in results {
        let n = f.cases.len();
        let _ = writeln!(s, "{} ({n} case{})", f.path, if n == 1 { "" } else { "s" });
        let name_w = f.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let dev_w = f.cases.iter().map(|c| c.device.len()).max().unwrap_or(0);
        for c in &f.cases {
            let status = if c.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(
                s,
                "  {status}  {:name_w$}  {:dev_w$} -> {}",
                c.name, c.device, c.got
            );
            for why in &c.failures {
                let _ = writeln!(s, "        {why}");
            }
        }
    }
    let _ = writeln!(
        s,
        "{} cases, {} passed, {} failed",
        totals.cases, totals.passed, totals.failed
    );
    s
}

/// Escapes text for an XML attribute value (`attr`: newlines too) or element content.
fn xml_escape_with(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' if !attr => out.push('\n'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    xml_escape_with(s, true)
}

fn junit(results: &[FileResults], totals: Totals) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"fleetfit policy test\" tests=\"{}\" failures=\"{}\">",
        totals.cases, totals.failed
    );
    for f in results {
        let t = Totals::of(&f.cases);
        let file = xml_escape(&f.path);
        let _ = writeln!(
            s,
            "  <testsuite name=\"{file}\" tests=\"{}\" failures=\"{}\">",
            t.cases, t.failed
        );
        for c in &f.cases {
            let _ = write!(
                s,
                "    <testcase name=\"{}\" classname=\"{file}\" file=\"{file}\" line=\"{}\"",
                xml_escape(&c.name),
                c.line
            );
            if c.passed {
                s.push_str("/>\n");
            } else {
                s.push_str(">\n");
                let first = c.failures.first().map_or("", String::as_str);
                let _ = writeln!(
                    s,
                    "      <failure message=\"{}\">{}</failure>",
                    xml_escape(first),
                    xml_escape_with(
                        &format!("{} -> {}\n{}", c.device, c.got, c.failures.join("\n")),
                        false
                    )
                );
                s.push_str("    </testcase>\n");
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// GitHub workflow-command escaping: `data` escapes `%`, CR, LF; properties also `:` and `,`.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn github(results: &[FileResults], totals: Totals) -> String {
    let mut s = String::new();
    for f in results {
        for c in f.cases.iter().filter(|c| !c.passed) {
            for why in &c.failures {
                let _ = writeln!(
                    s,
                    "::error file={},line={},col={},title={}::{}",
                    gh_prop(&f.path),
                    c.line,
                    c.column,
                    gh_prop(&format!("policy test: {}", c.name)),
                    gh_data(&format!("{} -> {}: {why}", c.device, c.got))
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "{} cases, {} passed, {} failed",
        totals.cases, totals.passed, totals.failed
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_parent_components_lexically() {
        assert_eq!(
            resolve(Path::new("policies/examples/tests"), "../corp.yaml"),
            PathBuf::from("policies/examples/corp.yaml")
        );
        assert_eq!(
            resolve(
                Path::new("policies/examples/tests"),
                "../../../tests/fixtures"
            ),
            PathBuf::from("tests/fixtures")
        );
        assert_eq!(resolve(Path::new("a"), "../../b"), PathBuf::from("../b"));
    }

    #[test]
    fn github_escapes_properties() {
        assert_eq!(gh_prop("a: b, 100%"), "a%3A b%2C 100%25");
    }
}
