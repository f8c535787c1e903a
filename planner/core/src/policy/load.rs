//! Policy loading and validation: every file parsed, every rule checked, all problems at once.

use super::cel::Condition;
use super::model::{Effect, POLICY_API_VERSION, PolicyFile};
use super::{CompiledDefaults, CompiledRule, PolicySet, Source};
use crate::catalog::{did_you_mean, quant};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::yaml::{self, Pos};
use std::collections::BTreeMap;

/// Parses and validates policy files, given as `(path, text)` in evaluation order.
/// `today` (`YYYY-MM-DD`), when given, turns expired rules into warnings.
pub fn parse_policies(
    sources: &[(String, String)],
    today: Option<&str>,
) -> Result<(PolicySet, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut set = PolicySet::default();
    let mut ids: BTreeMap<String, Source> = BTreeMap::new();
    for (path, text) in sources {
        let file = match yaml::parse::<PolicyFile>(path, text) {
            Ok(f) => f,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let at = |p: &serde_saphyr::Location| Pos::from_location(p);
        if file.api_version.value != POLICY_API_VERSION {
            let p = at(&file.api_version.referenced);
            diags.push(Diagnostic::error(
                path,
                p.line,
                p.column,
                "schema-version",
                format!(
                    "`apiVersion: {}` is not supported: expected `{POLICY_API_VERSION}`",
                    file.api_version.value
                ),
            ));
        }
        if file.kind.value != "FleetPolicy" {
            let p = at(&file.kind.referenced);
            diags.push(Diagnostic::error(
                path,
                p.line,
                p.column,
                "unknown-value",
                format!("`kind: {}`: expected `FleetPolicy`", file.kind.value),
            ));
        }
        if let Some(d) = file.defaults {
            let p = yaml::find_key(text, "defaults", 0);
            if let Some(req) = &d.require {
                check_quants(path, p, req.quantizations.as_deref(), &mut diags);
            }
            check_headroom(
                path,
                p,
                d.memory.as_ref().map(|m| m.headroom_pct),
                &mut diags,
            );
            set.defaults.push(CompiledDefaults {
                defaults: d,
                source: Source {
                    path: path.clone(),
                    line: p.line,
                    column: p.column,
                },
            });
        }
        for spanned in file.rules {
            let p = at(&spanned.referenced);
            let rule = spanned.value;
            let source = Source {
                path: path.clone(),
                line: p.line,
                column: p.column,
            };
            let mut err = |code: &str, msg: String| {
                diags.push(Diagnostic::error(path, p.line, p.column, code, msg));
            };
            let id_ok = !rule.id.is_empty()
                && rule
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !rule.id.starts_with('-');
            if !id_ok {
                err(
                    "invalid-id",
                    format!(
                        "rule id `{}` must be lowercase kebab-case (a-z, 0-9, -)",
                        rule.id
                    ),
                );
            }
            if rule.id == "defaults" || rule.id == "builtin" {
                err("invalid-id", format!("rule id `{}` is reserved", rule.id));
            }
            if let Some(first) = ids.get(&rule.id) {
                err(
                    "duplicate-id",
                    format!("rule id `{}` is already used at {first}", rule.id),
                );
            } else {
                ids.insert(rule.id.clone(), source.clone());
            }
            if let Some(exp) = &rule.expires {
                if !crate::yaml::is_date(exp) {
                    err(
                        "invalid-date",
                        format!("`expires: {exp}` is not a date: expected YYYY-MM-DD"),
                    );
                } else if let Some(today) = today
                    && today > exp.as_str()
                {
                    diags.push(Diagnostic::warning(
                        path,
                        p.line,
                        p.column,
                        "expired-rule",
                        format!("rule `{}` expired on {exp} and no longer applies", rule.id),
                    ));
                }
            }
            if rule.effect == Effect::Forbid && rule.require.is_some() {
                diags.push(Diagnostic::warning(
                    path,
                    p.line,
                    p.column,
                    "ignored-field",
                    format!("rule `{}` is `effect: forbid`: its `require` is ignored; use `models:` to say what it forbids", rule.id),
                ));
            }
            if let Some(h) = rule.match_.as_ref().and_then(|m| m.hardware.as_ref())
                && let (Some(lo), Some(hi)) = (h.min_memory_gib, h.max_memory_gib)
                && lo > hi
            {
                diags.push(Diagnostic::warning(
                    path,
                    p.line,
                    p.column,
                    "never-matches",
                    format!(
                        "rule `{}` can never match: `min_memory_gib` {lo} > `max_memory_gib` {hi}",
                        rule.id
                    ),
                ));
            }
            if let Some(req) = &rule.require {
                check_quants(path, p, req.quantizations.as_deref(), &mut diags);
                if let Some(q) = req.min_quality
                    && !(0.0..=1.0).contains(&q)
                {
                    diags.push(Diagnostic::error(
                        path,
                        p.line,
                        p.column,
                        "impossible-number",
                        format!("`min_quality: {q}` is outside 0..1"),
                    ));
                }
            }
            if let Some(q) = &rule.quantization {
                check_quants(path, p, Some(&q.prefer), &mut diags);
            }
            check_headroom(
                path,
                p,
                rule.memory.as_ref().map(|m| m.headroom_pct),
                &mut diags,
            );
            if rule.roles.as_ref().is_some_and(Vec::is_empty) {
                diags.push(Diagnostic::error(
                    path,
                    p.line,
                    p.column,
                    "missing-value",
                    format!("rule `{}` sets `roles: []`", rule.id),
                ));
            }
            let when = match &rule.when {
                None => None,
                Some(w) => match Condition::compile(&w.value) {
                    Ok(c) => Some(c),
                    Err(errors) => {
                        let wp = at(&w.referenced);
                        for e in errors {
                            let (line, column) = if e.line <= 1 {
                                (wp.line, wp.column + e.column.saturating_sub(1))
                            } else {
                                (wp.line + e.line - 1, e.column)
                            };
                            diags.push(Diagnostic::error(
                                path,
                                line,
                                column,
                                "cel",
                                format!("in `when`: {}", e.message),
                            ));
                        }
                        None
                    }
                },
            };
            set.rules.push(CompiledRule { rule, source, when });
        }
    }
    if diags.has_errors() {
        return Err(diags.sorted());
    }
    let mut fields = Some(std::collections::BTreeSet::new());
    for cond in set.rules.iter().filter_map(|r| r.when.as_ref()) {
        match (&mut fields, &cond.fields) {
            (Some(all), Some(f)) => all.extend(f.iter().cloned()),
            _ => fields = None,
        }
    }
    set.cel_fields = fields;
    Ok((set, diags.sorted()))
}

fn check_quants(path: &str, p: Pos, names: Option<&[String]>, diags: &mut Diagnostics) {
    for q in names.unwrap_or_default() {
        let n = quant::normalize(q);
        if !quant::is_known(&n) {
            let hint = did_you_mean(&n, quant::known_names());
            diags.push(Diagnostic::error(
                path,
                p.line,
                p.column,
                "unknown-value",
                format!("unknown quantization `{q}`{hint}"),
            ));
        }
    }
}

fn check_headroom(path: &str, p: Pos, h: Option<f64>, diags: &mut Diagnostics) {
    if let Some(h) = h
        && !(0.0..90.0).contains(&h)
    {
        diags.push(Diagnostic::error(
            path,
            p.line,
            p.column,
            "impossible-number",
            format!("`headroom_pct: {h}` must be in 0..90"),
        ));
    }
}
