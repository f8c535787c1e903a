//! Renderings of a [`DiffReport`]: Terraform-like text, and a markdown PR comment that stays
//! under GitHub's comment limit. Pure string building; JSON comes from serde.

use super::{Action, DiffGroup, DiffReport, Slot};
use crate::units::Bytes;
use std::fmt::Write as _;

/// The hidden marker that lets CI find and update its own PR comment.
pub const MARKER: &str = "<!-- fleetfit-diff -->";

/// GitHub rejects comments of 65,536 characters or more; the markdown stays below this.
pub const MARKDOWN_LIMIT: usize = 65_536;

/// Room kept for the truncation note and the footer.
const FOOTER_ROOM: usize = 1_024;

fn short(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

/// `a -> b`, or just `a` when both sides are the same.
fn pair(a: &str, b: &str, arrow: &str, quote: &str) -> String {
    if a == b {
        format!("{quote}{}{quote} (unchanged)", short(a))
    } else {
        format!(
            "{quote}{}{quote} {arrow} {quote}{}{quote}",
            short(a),
            short(b)
        )
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn rule_ref(rule: &str, source: &str) -> String {
    if source == "fleetfit" {
        format!("{rule}, built-in")
    } else {
        format!("{rule}, {source}")
    }
}

fn before_cell(g: &DiffGroup) -> String {
    match &g.before {
        Some(s) => s.to_string(),
        None if g.before_blocked => "blocked".to_owned(),
        None => "none".to_owned(),
    }
}

fn after_cell(g: &DiffGroup) -> String {
    match (&g.after, g.action) {
        (Some(s), _) => s.to_string(),
        (None, Action::Blocked) => "blocked".to_owned(),
        (None, _) => "none".to_owned(),
    }
}

fn examples(g: &DiffGroup) -> String {
    let mut s = g.examples.join(", ");
    if g.count > g.examples.len() {
        s.push_str(", …");
    }
    s
}

fn fit_line(g: &DiffGroup) -> Option<String> {
    g.fit.as_ref().map(|f| {
        format!(
            "{} of {} {} ({:.0}% used) · {:.1} tok/s",
            Bytes(f.pool_used_bytes),
            Bytes(f.pool_capacity_bytes),
            f.pool,
            100.0 * f.pool_used_bytes as f64 / f.pool_capacity_bytes.max(1) as f64,
            f.tokens_per_second
        )
    })
}

fn headline(r: &DiffReport) -> String {
    let s = &r.summary;
    format!(
        "{} to assign, {} to change, {} to unassign, {} blocked; {} of {} changed, {} unchanged.",
        s.assign,
        s.change,
        s.unassign,
        s.blocked,
        plural(s.changed, "device"),
        s.devices,
        s.unchanged
    )
}

/// Renders the diff as text: one entry per group with why, the nearest rejected alternatives
/// and the fit, then a summary line.
pub fn diff_text(r: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleetfit diff: policies {} · catalog {} · fleet {}",
        pair(&r.base.policies_digest, &r.head.policies_digest, "->", ""),
        pair(&r.base.catalog_digest, &r.head.catalog_digest, "->", ""),
        short(&r.head.fleet_digest)
    );
    let _ = writeln!(
        out,
        "Symbols: + assign  ~ change  - unassign  ! blocked (no compliant model)   ({} unchanged hidden)",
        plural(r.summary.unchanged, "device")
    );
    for g in &r.groups {
        let _ = writeln!(
            out,
            "\n  # {} [{}]: e.g. {}",
            plural(g.count, "device"),
            g.role.as_str(),
            examples(g)
        );
        let _ = writeln!(
            out,
            "  {} {} -> {}",
            g.action.symbol(),
            before_cell(g),
            after_cell(g)
        );
        let mut label = "why:     ";
        if let Some(reason) = &g.blocked_reason {
            let _ = writeln!(out, "      {label} {reason}");
            if !g.rules.is_empty() {
                let _ = writeln!(
                    out,
                    "                policy rules rejecting candidates: {}",
                    g.rules.join(", ")
                );
            }
            label = "         ";
        }
        for b in &g.why {
            let _ = writeln!(
                out,
                "      {label} {} ({})",
                b.message,
                rule_ref(&b.rule, &b.source)
            );
            label = "         ";
        }
        let mut label = "rejected:";
        for m in &g.rejected {
            let _ = writeln!(
                out,
                "      {label} {} {}: {} ({})",
                m.model,
                m.quant,
                m.message,
                rule_ref(&m.rule, &m.source)
            );
            label = "         ";
        }
        if let Some(f) = fit_line(g) {
            let _ = writeln!(out, "      fits:     {f}");
        }
    }
    if r.groups.is_empty() {
        let _ = writeln!(out, "\nNo changes: every device keeps its models.");
    }
    let _ = writeln!(out, "\nDiff: {}", headline(r));
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_slot(s: Option<&Slot>, blocked: bool) -> String {
    match s {
        Some(s) => format!(
            "`{}` {} ({}, ctx {})",
            s.model, s.quant, s.backend, s.context_tokens
        ),
        None if blocked => "**blocked**".to_owned(),
        None => "—".to_owned(),
    }
}

fn md_details(g: &DiffGroup) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code> {} [{}]: {} → {}</summary>\n",
        g.action.symbol(),
        plural(g.count, "device"),
        g.role.as_str(),
        md_escape(&before_cell(g)),
        md_escape(&after_cell(g))
    );
    let _ = writeln!(out, "Examples: {}\n", md_escape(&examples(g)));
    if let Some(reason) = &g.blocked_reason {
        let _ = writeln!(out, "**Blocked**: {}\n", md_escape(reason));
    }
    if !g.why.is_empty() {
        let _ = writeln!(out, "Why:\n");
        for b in &g.why {
            let _ = writeln!(
                out,
                "- {} — `{}`",
                md_escape(&b.message),
                rule_ref(&b.rule, &b.source)
            );
        }
        out.push('\n');
    }
    if !g.rejected.is_empty() {
        let _ = writeln!(out, "Nearest rejected alternatives:\n");
        for m in &g.rejected {
            let _ = writeln!(
                out,
                "- `{}` {}: {} — `{}`",
                m.model,
                m.quant,
                md_escape(&m.message),
                rule_ref(&m.rule, &m.source)
            );
        }
        out.push('\n');
    }
    if let Some(f) = fit_line(g) {
        let _ = writeln!(out, "Fits: {}\n", md_escape(&f));
    }
    let _ = writeln!(out, "</details>\n");
    out
}

/// Renders the diff as a GitHub PR comment: hidden marker, a warning when a device becomes
/// blocked, a summary table and one collapsed `<details>` per group. Groups that would push the
/// comment past [`MARKDOWN_LIMIT`] are cut, with a note saying how many.
pub fn diff_markdown(r: &DiffReport) -> String {
    let s = &r.summary;
    let budget = MARKDOWN_LIMIT - FOOTER_ROOM;
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let _ = writeln!(
        out,
        "### fleetfit diff: {} change ({} ~ change · {} + assign · {} - unassign · {} ! blocked)\n",
        plural(s.changed, "device"),
        s.change,
        s.assign,
        s.unassign,
        s.blocked
    );
    if s.blocked > 0 {
        let devices: usize = r
            .groups
            .iter()
            .filter(|g| g.action == Action::Blocked)
            .map(|g| g.count)
            .sum();
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **{} would have no compliant model** for a role after this change.\n",
            plural(devices, "device")
        );
    }
    if r.groups.is_empty() {
        let _ = writeln!(out, "No changes: every device keeps its models.\n");
    } else {
        let _ = writeln!(
            out,
            "| | Devices | Role | Examples | Before | After | Deciding rules |"
        );
        let _ = writeln!(out, "|---|---:|---|---|---|---|---|");
    }
    let mut rows_cut = 0;
    for g in &r.groups {
        let rules = if g.rules.is_empty() {
            "—".to_owned()
        } else {
            g.rules
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let row = format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            g.action.symbol(),
            g.count,
            g.role.as_str(),
            md_escape(&examples(g)),
            md_slot(g.before.as_ref(), g.before_blocked),
            md_slot(g.after.as_ref(), g.action == Action::Blocked),
            rules
        );
        // The table gets half the budget; the details the rest.
        if out.len() + row.len() > budget / 2 {
            rows_cut += 1;
            continue;
        }
        out.push_str(&row);
    }
    if rows_cut > 0 {
        let _ = writeln!(
            out,
            "\n_{} more {} not shown in the table; see the JSON output for all._",
            rows_cut,
            if rows_cut == 1 { "group" } else { "groups" }
        );
    }
    out.push('\n');
    let mut cut = 0;
    for g in &r.groups {
        let d = md_details(g);
        if cut > 0 || out.len() + d.len() > budget {
            cut += 1;
            continue;
        }
        out.push_str(&d);
    }
    if cut > 0 {
        let _ = writeln!(
            out,
            "> [!NOTE]\n> Truncated: details of {} not shown to stay under GitHub's comment limit; run `fleetfit diff --format json` for the full diff.\n",
            plural(cut, "group")
        );
    }
    let _ = writeln!(
        out,
        "<sub>{} · policies {} · catalog {} · fleet `{}`</sub>",
        headline(r),
        pair(&r.base.policies_digest, &r.head.policies_digest, "→", "`"),
        pair(&r.base.catalog_digest, &r.head.catalog_digest, "→", "`"),
        short(&r.head.fleet_digest)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{DIFF_SCHEMA, DiffSummary};
    use crate::plan::PlanInputs;
    use crate::policy::Role;

    fn slot(m: &str) -> Slot {
        Slot {
            model: m.into(),
            quant: "Q4_K_M".into(),
            context_tokens: 8192,
            backend: "cpu".into(),
        }
    }

    fn report(groups: usize) -> DiffReport {
        let groups: Vec<DiffGroup> = (0..groups)
            .map(|i| DiffGroup {
                action: if i == 0 {
                    Action::Blocked
                } else {
                    Action::Change
                },
                role: Role::Chat,
                count: 10,
                before: Some(slot(&format!("model-{i}"))),
                before_blocked: false,
                after: (i > 0).then(|| slot("other")),
                rules: vec!["rule-a".into()],
                examples: vec![format!("dev-{i:05}")],
                why: Vec::new(),
                blocked_reason: (i == 0).then(|| "nothing fits".to_owned()),
                rejected: Vec::new(),
                fit: None,
            })
            .collect();
        DiffReport {
            schema: DIFF_SCHEMA.into(),
            base: PlanInputs::default(),
            head: PlanInputs::default(),
            summary: DiffSummary {
                devices: 10 * groups.len(),
                changed: 10 * groups.len(),
                unchanged: 0,
                assign: 0,
                change: 10 * (groups.len() - 1),
                unassign: 0,
                blocked: 10,
            },
            groups,
        }
    }

    #[test]
    fn markdown_has_marker_warning_and_stays_under_the_limit() {
        let md = diff_markdown(&report(5_000));
        assert!(md.starts_with(MARKER));
        assert!(md.contains("> [!WARNING]"));
        assert!(md.len() < MARKDOWN_LIMIT, "{}", md.len());
        assert!(md.contains("Truncated: details of"));
        let small = diff_markdown(&report(3));
        assert!(!small.contains("Truncated"));
        assert_eq!(small.matches("<details>").count(), 3);
    }

    #[test]
    fn text_has_symbols_and_summary() {
        let t = diff_text(&report(2));
        assert!(t.contains("  ! model-0 Q4_K_M (ctx 8192, cpu) -> blocked"));
        assert!(t.contains("  ~ model-1 Q4_K_M (ctx 8192, cpu) -> other Q4_K_M"));
        assert!(t.contains("why:      nothing fits"));
        assert!(t.contains("Diff: 0 to assign, 10 to change, 0 to unassign, 10 blocked"));
    }
}
