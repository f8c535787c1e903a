//! Policy test files: cases that pin what policies decide for given devices.
//!
//! A `*.test.yaml` file names the policies under test, the devices (inline profiles or profile
//! files) and the cases. Each case names a device (or `*` for all of them) and expectations: the
//! decision, properties of the assigned model, the rules among its reasons (a subset check, as
//! in Cedar's `run-tests`), rejections by rule, and models never assigned. This module parses
//! and checks the file and runs the cases against a plan; reading files and planning is the
//! caller's job.

mod model;

pub use model::*;

use crate::catalog::{Catalog, Model, did_you_mean};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::plan::{Assignment, DevicePlan, Plan};
use crate::policy::Role;
use crate::yaml::{self, Pos};

/// Parses a test file and checks what needs no other input (version, kind, date, empty cases).
pub fn parse_test_file(path: &str, text: &str) -> Result<PolicyTestFile, Diagnostics> {
    let file = yaml::parse::<PolicyTestFile>(path, text).map_err(|d| Diagnostics(vec![d]))?;
    let mut diags = Diagnostics::default();
    if file.api_version.value != POLICY_TEST_API_VERSION {
        let p = Pos::from_location(&file.api_version.referenced);
        diags.push(Diagnostic::error(
            path,
            p.line,
            p.column,
            "schema-version",
            format!(
                "`apiVersion: {}` is not supported: expected `{POLICY_TEST_API_VERSION}`",
                file.api_version.value
            ),
        ));
    }
    if file.kind.value != POLICY_TEST_KIND {
        let p = Pos::from_location(&file.kind.referenced);
        diags.push(Diagnostic::error(
            path,
            p.line,
            p.column,
            "unknown-value",
            format!("`kind: {}`: expected `{POLICY_TEST_KIND}`", file.kind.value),
        ));
    }
    if let Some(t) = &file.today
        && !yaml::is_date(t)
    {
        let p = yaml::find_key(text, "today", 0);
        diags.push(Diagnostic::error(
            path,
            p.line,
            p.column,
            "wrong-type",
            format!("`today: {t}`: expected a date `YYYY-MM-DD`"),
        ));
    }
    if file.policies.is_empty() {
        let p = yaml::find_key(text, "policies", 0);
        diags.push(Diagnostic::error(
            path,
            p.line,
            p.column,
            "missing-field",
            "`policies` is empty: name at least one policy directory or file",
        ));
    }
    for case in &file.cases {
        if case.value.expect.is_empty() {
            let p = Pos::from_location(&case.referenced);
            diags.push(Diagnostic::error(
                path,
                p.line,
                p.column,
                "empty-expect",
                format!(
                    "case `{}` expects nothing: give `decision`, `model`, `reasons_include`, `rejected` or `never`",
                    case.value.name
                ),
            ));
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(file)
}

/// Runs every case of `file` (read from `path`) against `plan`, which was computed from the
/// file's devices and policies. A case naming a device or model that does not exist is an
/// error in the file (all such errors at once), not a failed case.
pub fn run_tests(
    path: &str,
    file: &PolicyTestFile,
    plan: &Plan,
    catalog: &Catalog,
) -> Result<Vec<CaseResult>, Diagnostics> {
    check_references(path, file, plan, catalog)?;
    Ok(file
        .cases
        .iter()
        .map(|c| {
            let case = &c.value;
            let pos = Pos::from_location(&c.referenced);
            let role = case.expect.role.unwrap_or(Role::Chat);
            let (got, failures) = if case.device.value == "*" {
                let mut failures = Vec::new();
                for dp in &plan.devices {
                    failures.extend(
                        check_device(&case.expect, role, dp, catalog)
                            .into_iter()
                            .map(|f| format!("{}: {f}", dp.device)),
                    );
                }
                (format!("{} devices", plan.devices.len()), failures)
            } else {
                match plan.devices.iter().find(|d| d.device == case.device.value) {
                    Some(dp) => (got(dp, role), check_device(&case.expect, role, dp, catalog)),
                    None => (String::new(), vec!["device not planned".to_owned()]),
                }
            };
            CaseResult {
                name: case.name.clone(),
                line: pos.line,
                column: pos.column,
                device: case.device.value.clone(),
                passed: failures.is_empty(),
                got,
                failures,
            }
        })
        .collect())
}

/// Devices and models named by the cases must exist.
fn check_references(
    path: &str,
    file: &PolicyTestFile,
    plan: &Plan,
    catalog: &Catalog,
) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::default();
    let device_ids = || plan.devices.iter().map(|d| d.device.as_str());
    for c in &file.cases {
        let case = &c.value;
        let dev = &case.device.value;
        if dev != "*" && !device_ids().any(|d| d == dev) {
            let p = Pos::from_location(&case.device.referenced);
            let known = device_ids().collect::<Vec<_>>().join(", ");
            diags.push(Diagnostic::error(
                path,
                p.line,
                p.column,
                "unknown-device",
                format!(
                    "case `{}`: no device `{dev}` in this test file's devices{}; known: [{known}]",
                    case.name,
                    did_you_mean(dev, device_ids())
                ),
            ));
        }
        let e = &case.expect;
        let models = e
            .model
            .iter()
            .filter_map(|m| m.id.as_deref())
            .chain(e.rejected.iter().map(|r| r.model.as_str()))
            .chain(
                e.never
                    .iter()
                    .flat_map(|n| n.ids.iter().map(String::as_str)),
            );
        for m in models {
            if catalog.model(m).is_none() {
                let p = Pos::from_location(&c.referenced);
                diags.push(Diagnostic::error(
                    path,
                    p.line,
                    p.column,
                    "unknown-model",
                    format!(
                        "case `{}`: no model `{m}` in the catalog{}",
                        case.name,
                        did_you_mean(m, catalog.models.iter().map(|x| x.id.as_str()))
                    ),
                ));
            }
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(())
    }
}

fn assignment(dp: &DevicePlan, role: Role) -> Option<&Assignment> {
    dp.assignments.iter().find(|a| a.role == role)
}

/// What the plan decided for the role, in a few words.
fn got(dp: &DevicePlan, role: Role) -> String {
    match assignment(dp, role) {
        Some(a) => format!("{} {}", a.model, a.quant),
        None if dp.blocked.iter().any(|b| b.role == role) => "blocked".to_owned(),
        None => format!("no {} role", role.as_str()),
    }
}

/// Why the role has no model, for failure lines.
fn no_model_reason(dp: &DevicePlan, role: Role) -> String {
    match dp.blocked.iter().find(|b| b.role == role) {
        Some(b) => format!("blocked: {}", b.reason),
        None => format!("the device has no `{}` role", role.as_str()),
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn check_device(e: &Expect, role: Role, dp: &DevicePlan, catalog: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let a = assignment(dp, role);
    if let Some(d) = e.decision {
        match (d, a) {
            (Decision::Assigned, None) => out.push(format!(
                "expected decision assigned for {}, got none ({})",
                role.as_str(),
                no_model_reason(dp, role)
            )),
            (Decision::Blocked, Some(a)) => out.push(format!(
                "expected decision blocked for {}, got {} {}",
                role.as_str(),
                a.model,
                a.quant
            )),
            _ => {}
        }
    }
    let needs_assignment = e.model.is_some() || !e.reasons_include.is_empty();
    match a {
        Some(a) => {
            if let Some(m) = &e.model {
                check_model(m, a, catalog.model(&a.model), &mut out);
            }
            let rules: Vec<String> = a.because.iter().map(|b| b.rule.clone()).collect();
            for r in &e.reasons_include {
                if !rules.contains(r) {
                    out.push(format!(
                        "expected rule `{r}` among the reasons for {} {}, got {}",
                        a.model,
                        a.quant,
                        list(&rules)
                    ));
                }
            }
        }
        None if needs_assignment && e.decision != Some(Decision::Assigned) => out.push(format!(
            "expected a model for {}, got none ({})",
            role.as_str(),
            no_model_reason(dp, role)
        )),
        None => {}
    }
    for r in &e.rejected {
        check_rejected(r, dp, &mut out);
    }
    if let Some(n) = &e.never {
        for a in &dp.assignments {
            let m = catalog.model(&a.model);
            let hit = if n.ids.contains(&a.model) {
                Some(format!("id `{}`", a.model))
            } else if let Some(m) = m.filter(|m| n.families.contains(&m.family)) {
                Some(format!("family `{}`", m.family))
            } else {
                m.filter(|m| n.licenses.contains(&m.license))
                    .map(|m| format!("license `{}`", m.license))
            };
            if let Some(why) = hit {
                out.push(format!(
                    "expected never assigned, got {} {} for {} ({why})",
                    a.model,
                    a.quant,
                    a.role.as_str()
                ));
            }
        }
    }
    out
}

fn check_model(m: &ModelExpect, a: &Assignment, model: Option<&Model>, out: &mut Vec<String>) {
    let name = format!("{} {}", a.model, a.quant);
    if let Some(id) = &m.id
        && &a.model != id
    {
        out.push(format!("expected model.id = {id}, got {name}"));
    }
    if let Some(model) = model {
        if !m.families.is_empty() && !m.families.contains(&model.family) {
            out.push(format!(
                "expected model.families in {}, got `{}` ({name})",
                list(&m.families),
                model.family
            ));
        }
        if !m.licenses.is_empty() && !m.licenses.contains(&model.license) {
            out.push(format!(
                "expected model.licenses in {}, got `{}` ({name})",
                list(&m.licenses),
                model.license
            ));
        }
        if let Some(max) = m.max_params_b
            && model.params_b() > max
        {
            out.push(format!(
                "expected model.max_params_b <= {max}, got {:.2}B ({name})",
                model.params_b()
            ));
        }
    }
    if let Some(min) = m.min_context_tokens
        && a.context_tokens < min
    {
        out.push(format!(
            "expected model.min_context_tokens >= {min}, got {} ({name})",
            a.context_tokens
        ));
    }
    if !m.quantizations.is_empty()
        && !m
            .quantizations
            .iter()
            .any(|q| q.eq_ignore_ascii_case(&a.quant))
    {
        out.push(format!(
            "expected model.quantizations in {}, got {name}",
            list(&m.quantizations)
        ));
    }
    let backend = a.placement.backend.as_str();
    if !m.backends.is_empty() && !m.backends.iter().any(|b| b.eq_ignore_ascii_case(backend)) {
        out.push(format!(
            "expected model.backends in {}, got `{backend}` ({name})",
            list(&m.backends)
        ));
    }
}

fn check_rejected(r: &RejectedExpect, dp: &DevicePlan, out: &mut Vec<String>) {
    let of_model: Vec<_> = dp
        .rejections
        .iter()
        .filter(|x| x.model == r.model)
        .collect();
    let found = of_model.iter().any(|x| {
        x.rule == r.by.as_str() && r.constraint.as_deref().is_none_or(|c| x.constraint == c)
    });
    if found {
        return;
    }
    let want = match &r.constraint {
        Some(c) => format!("`{}` ({c})", r.by),
        None => format!("`{}`", r.by),
    };
    if let Some(a) = dp.assignments.iter().find(|a| a.model == r.model) {
        out.push(format!(
            "expected {} rejected by {want}, but it was assigned ({} {} for {})",
            r.model,
            a.model,
            a.quant,
            a.role.as_str()
        ));
    } else if of_model.is_empty() {
        out.push(format!(
            "expected {} rejected by {want}, got no rejection of it",
            r.model
        ));
    } else {
        let mut by: Vec<String> = of_model
            .iter()
            .map(|x| format!("{} ({})", x.rule, x.constraint))
            .collect();
        by.sort();
        by.dedup();
        out.push(format!(
            "expected {} rejected by {want}, got rejected by {}",
            r.model,
            list(&by)
        ));
    }
}

/// Totals over many results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Totals {
    /// Cases run.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
}

impl Totals {
    /// Counts `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Totals {
        let mut t = Totals::default();
        for r in results {
            t.cases += 1;
            if r.passed {
                t.passed += 1;
            } else {
                t.failed += 1;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: fleetfit/v1\nkind: PolicyTest\npolicies: [../]\n";

    #[test]
    fn parses_a_case_with_its_location() {
        let text = format!(
            "{HEAD}cases:\n  - name: phone\n    device: p1\n    expect: {{decision: assigned, model: {{max_params_b: 4}}}}\n"
        );
        let f = parse_test_file("t.test.yaml", &text).unwrap();
        let c = &f.cases[0];
        assert_eq!(c.value.device.value, "p1");
        assert_eq!(c.value.expect.decision, Some(Decision::Assigned));
        assert_eq!(Pos::from_location(&c.referenced).line, 5);
        assert_eq!(Pos::from_location(&c.value.device.referenced).line, 6);
    }

    #[test]
    fn rejects_wrong_kind_bad_date_and_empty_expectations() {
        let text = "apiVersion: fleetfit/v1\nkind: Test\npolicies: [../]\ntoday: tomorrow\ncases:\n  - {name: x, device: p1, expect: {}}\n";
        let d = parse_test_file("t.test.yaml", text).unwrap_err();
        let codes: Vec<_> = d.iter().map(|x| (x.line, x.code.as_str())).collect();
        assert_eq!(
            codes,
            vec![(2, "unknown-value"), (4, "wrong-type"), (6, "empty-expect")]
        );
    }

    #[test]
    fn unknown_fields_in_expectations_are_errors() {
        let text = format!("{HEAD}cases:\n  - {{name: x, device: p1, expect: {{modle: {{}}}}}}\n");
        let d = parse_test_file("t.test.yaml", &text).unwrap_err();
        assert_eq!(d.0[0].code, "unknown-field");
        assert_eq!(d.0[0].line, 5);
    }

    #[test]
    fn the_file_format_has_a_json_schema() {
        let schema = serde_json::to_value(schemars::schema_for!(PolicyTestFile)).unwrap();
        let props = &schema["properties"];
        for key in [
            "apiVersion",
            "kind",
            "policies",
            "devices_from",
            "devices",
            "cases",
        ] {
            assert!(props.get(key).is_some(), "{key} missing: {schema}");
        }
        assert_eq!(schema["additionalProperties"], false);
    }
}
