//! Markdown rendering for PR comments and reports.

use super::{memory_cell, nearest_misses, placement_cell, rule_ref};
use crate::plan::{Plan, Status};
use std::fmt::Write as _;

/// Renders a plan as GitHub-flavoured markdown.
pub fn plan_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(out, "## fleetfit plan\n");
    if s.blocked > 0 {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {} of {} devices have no compliant model.\n",
            s.blocked, s.devices
        );
    }
    let _ = writeln!(
        out,
        "**{} devices**: {} assigned, {} blocked\n",
        s.devices, s.assigned, s.blocked
    );
    let _ = writeln!(
        out,
        "| device | role | model | quant | ctx | placement | tok/s | memory |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---|---:|---|");
    for d in &plan.devices {
        for a in &d.assignments {
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}` | {} | {} | {} | {:.1} | {} |",
                d.device,
                a.role.as_str(),
                a.model,
                a.quant,
                a.context_tokens,
                placement_cell(a),
                a.estimate.tokens_per_second,
                memory_cell(a)
            );
        }
        for b in &d.blocked {
            let _ = writeln!(
                out,
                "| `{}` | {} | **blocked** | | | | | {} |",
                d.device,
                b.role.as_str(),
                b.reason.replace('|', "\\|")
            );
        }
    }
    for d in &plan.devices {
        let _ = writeln!(
            out,
            "\n<details><summary><code>{}</code>: {}</summary>\n",
            d.device,
            d.status.as_str()
        );
        for a in &d.assignments {
            let _ = writeln!(
                out,
                "- **{}** → `{}` {} ({} ctx)",
                a.role.as_str(),
                a.model,
                a.quant,
                a.context_tokens
            );
            for b in &a.because {
                let _ = writeln!(
                    out,
                    "  - {} — `{}`",
                    b.message,
                    rule_ref(&b.rule, &b.source)
                );
            }
        }
        let misses = nearest_misses(d, 5);
        if !misses.is_empty() {
            let _ = writeln!(out, "\nNearest rejected alternatives:\n");
            for m in misses {
                let _ = writeln!(out, "- {}", m.replace('|', "\\|"));
            }
        }
        if d.status == Status::Blocked {
            for b in &d.blocked {
                let _ = writeln!(out, "\n**{} blocked**: {}", b.role.as_str(), b.reason);
            }
        }
        let _ = writeln!(out, "\n</details>");
    }
    let _ = writeln!(
        out,
        "\n<sub>catalog `{}` · policies `{}` · fleet `{}`</sub>",
        plan.inputs.catalog_digest, plan.inputs.policies_digest, plan.inputs.fleet_digest
    );
    out
}
