//! Policy loading and validation: every file parsed, every rule checked, all problems at once.

use super::cel::Condition;
use super::model::{Effect, OneOrMany, POLICY_API_VERSION, PolicyFile};
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
            if let Some(why) = never_matches(&rule) {
                diags.push(Diagnostic::warning(
                    path,
                    p.line,
                    p.column,
                    "never-matches",
                    format!("rule `{}` can never match: {why}", rule.id),
                ));
            }
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
    check_interactions(&set, today, &mut diags);
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

/// Why a rule's conditions can never hold (beyond `min_memory_gib` > `max_memory_gib`).
fn never_matches(rule: &super::model::Rule) -> Option<String> {
    if rule.for_roles.as_ref().is_some_and(Vec::is_empty) {
        return Some("`for_roles: []` names no role".to_owned());
    }
    let m = rule.match_.as_ref()?;
    for (k, v) in &m.labels {
        match v {
            OneOrMany::Many(list) if list.is_empty() => {
                return Some(format!("`match.labels.{k}: []` accepts no value"));
            }
            OneOrMany::One(s) if s.is_empty() => {
                return Some(format!("`match.labels.{k}` is an empty string"));
            }
            _ => {}
        }
    }
    None
}

/// The match-relevant part of a rule, compared as JSON: `match`, `when` and `for_roles`.
fn scope(rule: &super::model::Rule) -> serde_json::Value {
    serde_json::json!({
        "match": rule.match_,
        "when": rule.when.as_ref().map(|w| w.value.trim().to_owned()),
        "for_roles": rule.for_roles,
    })
}

/// The settings a rule sets (`roles`, `objective`, `memory`, `quantization`, `context`,
/// `runtime.kv_cache_type`), by name.
fn settings_of(rule: &super::model::Rule) -> Vec<&'static str> {
    let mut out = Vec::new();
    if rule.roles.is_some() {
        out.push("roles");
    }
    if rule.objective.is_some() {
        out.push("objective");
    }
    if rule.memory.is_some() {
        out.push("memory");
    }
    if rule.quantization.is_some() {
        out.push("quantization");
    }
    if rule.context.is_some() {
        out.push("context");
    }
    if rule
        .runtime
        .as_ref()
        .is_some_and(|r| r.kv_cache_type.is_some())
    {
        out.push("runtime");
    }
    out
}

/// Warnings about rules read together: a rule whose settings a later rule with the same scope
/// always overrides (`shadowed-rule`), a later rule that loosens `memory.headroom_pct`
/// (`loosened-setting`), and a later `require.min_context_tokens` lower than an earlier one
/// (`no-effect`: guardrails only tighten).
/// Expired and `effect: forbid` rules are left out.
fn check_interactions(set: &PolicySet, today: Option<&str>, diags: &mut Diagnostics) {
    let expired = |r: &CompiledRule| {
        r.rule
            .expires
            .as_deref()
            .zip(today)
            .is_some_and(|(e, t)| t > e)
    };
    let rules: Vec<&CompiledRule> = set
        .rules
        .iter()
        .filter(|r| r.rule.effect == Effect::Constrain && !expired(r))
        .collect();
    for (i, early) in rules.iter().enumerate() {
        let early_scope = scope(&early.rule);
        let early_settings = settings_of(&early.rule);
        let warn = |diags: &mut Diagnostics, code: &str, msg: String, at: &Source| {
            diags.push(Diagnostic::warning(&at.path, at.line, at.column, code, msg));
        };
        for late in &rules[i + 1..] {
            let same = scope(&late.rule) == early_scope;
            let late_settings = settings_of(&late.rule);
            if same
                && !early_settings.is_empty()
                && early_settings.iter().all(|s| late_settings.contains(s))
            {
                warn(
                    diags,
                    "shadowed-rule",
                    format!(
                        "rule `{}` is shadowed: later rule `{}` ({}) matches the same devices and sets {} too, so these settings never take effect",
                        early.rule.id,
                        late.rule.id,
                        late.source,
                        early_settings.join(", ")
                    ),
                    &early.source,
                );
            }
            if !same {
                continue;
            }
            if let (Some(a), Some(b)) = (&early.rule.memory, &late.rule.memory)
                && b.headroom_pct < a.headroom_pct
            {
                warn(
                    diags,
                    "loosened-setting",
                    format!(
                        "rule `{}` lowers `memory.headroom_pct` from {} (rule `{}`, {}) to {}: use `require.min_headroom_pct` for a floor later rules cannot loosen",
                        late.rule.id, a.headroom_pct, early.rule.id, early.source, b.headroom_pct
                    ),
                    &late.source,
                );
            }
            if let (Some(a), Some(b)) = (
                early
                    .rule
                    .require
                    .as_ref()
                    .and_then(|r| r.min_context_tokens),
                late.rule
                    .require
                    .as_ref()
                    .and_then(|r| r.min_context_tokens),
            ) && b < a
            {
                warn(
                    diags,
                    "no-effect",
                    format!(
                        "rule `{}` sets `require.min_context_tokens: {b}`, below {a} from rule `{}` ({}): this has no effect: guardrails only tighten",
                        late.rule.id, early.rule.id, early.source
                    ),
                    &late.source,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(body: &str) -> Diagnostics {
        let text = format!(
            "apiVersion: {POLICY_API_VERSION}\nkind: FleetPolicy\nmetadata: {{name: t}}\n{body}"
        );
        match parse_policies(&[("p.yaml".to_owned(), text)], Some("2026-11-24")) {
            Ok((_, d)) | Err(d) => d,
        }
    }

    fn codes(d: &Diagnostics) -> Vec<(u32, String)> {
        d.iter().map(|d| (d.line, d.code.clone())).collect()
    }

    #[test]
    fn empty_label_lists_strings_and_roles_never_match() {
        let d = lint(
            "rules:\n  - id: a\n    match: {labels: {dept: []}}\n  - id: b\n    match: {labels: {dept: \"\"}}\n  - id: c\n    for_roles: []\n",
        );
        assert_eq!(
            codes(&d),
            vec![
                (5, "never-matches".to_owned()),
                (7, "never-matches".to_owned()),
                (9, "never-matches".to_owned())
            ],
            "{d}"
        );
    }

    #[test]
    fn a_rule_overridden_by_a_later_identical_one_is_shadowed() {
        let d = lint(
            "rules:\n  - id: a\n    match: {labels: {dept: x}}\n    objective: fastest\n  - id: b\n    match: {labels: {dept: x}}\n    objective: best_quality\n    context: {target_tokens: 8192}\n",
        );
        assert_eq!(codes(&d), vec![(5, "shadowed-rule".to_owned())], "{d}");
        assert!(d.0[0].message.contains("later rule `b`"), "{d}");
    }

    #[test]
    fn different_scopes_do_not_shadow() {
        let d = lint(
            "rules:\n  - id: a\n    match: {labels: {dept: x}}\n    objective: fastest\n  - id: b\n    match: {labels: {dept: z}}\n    objective: best_quality\n",
        );
        assert!(d.is_empty(), "{d}");
    }

    #[test]
    fn lowered_headroom_and_context_floor_are_reported() {
        let d = lint(
            "rules:\n  - id: a\n    memory: {headroom_pct: 20}\n    require: {min_context_tokens: 8192}\n  - id: b\n    memory: {headroom_pct: 5}\n    require: {min_context_tokens: 4096}\n",
        );
        let c = codes(&d);
        assert!(c.contains(&(8, "loosened-setting".to_owned())), "{d}");
        assert!(c.contains(&(8, "no-effect".to_owned())), "{d}");
        assert!(d.to_string().contains("guardrails only tighten"), "{d}");
    }

    #[test]
    fn expired_rules_neither_shadow_nor_are_shadowed() {
        let d = lint(
            "rules:\n  - id: a\n    objective: fastest\n  - id: b\n    objective: best_quality\n    expires: 2020-01-01\n",
        );
        assert_eq!(codes(&d), vec![(7, "expired-rule".to_owned())], "{d}");
    }

    #[test]
    fn misspelled_enum_value_suggests_the_nearest() {
        let d = lint("rules:\n  - id: a\n    mode: enforse\n");
        assert!(d.to_string().contains("did you mean `enforce`"), "{d}");
    }
}
