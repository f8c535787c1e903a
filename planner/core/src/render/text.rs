//! Text rendering: one table row per assignment, then why (with `--explain`, everything).

use super::{memory_cell, nearest_misses, placement_cell, rule_ref};
use crate::plan::{Plan, Status};
use std::fmt::Write as _;

fn short(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

/// Renders a plan as text. `explain` adds every reason and the nearest misses per device.
pub fn plan_text(plan: &Plan, explain: bool) -> String {
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "fleetfit plan: {} devices, {} assigned, {} blocked",
        s.devices, s.assigned, s.blocked
    );
    let _ = writeln!(
        out,
        "inputs: catalog {} · policies {} · fleet {}",
        short(&plan.inputs.catalog_digest),
        short(&plan.inputs.policies_digest),
        short(&plan.inputs.fleet_digest)
    );
    let _ = writeln!(out);
    let mut rows = vec![[
        "DEVICE".to_owned(),
        "ROLE".into(),
        "MODEL".into(),
        "QUANT".into(),
        "CTX".into(),
        "PLACEMENT".into(),
        "TOK/S".into(),
        "MEMORY".into(),
    ]];
    for d in &plan.devices {
        for a in &d.assignments {
            rows.push([
                d.device.clone(),
                a.role.as_str().into(),
                a.model.clone(),
                a.quant.clone(),
                a.context_tokens.to_string(),
                placement_cell(a),
                format!("{:.1}", a.estimate.tokens_per_second),
                memory_cell(a),
            ]);
        }
        for b in &d.blocked {
            rows.push([
                d.device.clone(),
                b.role.as_str().into(),
                "! blocked".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i == 7 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let blocked: Vec<_> = plan
        .devices
        .iter()
        .filter(|d| d.status == Status::Blocked)
        .collect();
    if !blocked.is_empty() {
        let _ = writeln!(out, "\nblocked:");
        for d in blocked {
            for b in &d.blocked {
                let _ = writeln!(out, "  {} [{}]: {}", d.device, b.role.as_str(), b.reason);
            }
        }
    }
    if explain {
        for d in &plan.devices {
            let _ = writeln!(out, "\n{} ({})", d.device, d.status.as_str());
            for f in &d.settings.from {
                let _ = writeln!(out, "  setting   {f}");
            }
            for a in &d.assignments {
                let _ = writeln!(
                    out,
                    "  {} -> {} {} ctx {} on {}",
                    a.role.as_str(),
                    a.model,
                    a.quant,
                    a.context_tokens,
                    placement_cell(a)
                );
                let _ = writeln!(
                    out,
                    "    fits:   weights {} + kv {} + compute {} + overhead {} = {}; {:.1} tok/s; quality {:.3}",
                    crate::Bytes(a.estimate.weights_bytes),
                    crate::Bytes(a.estimate.kv_cache_bytes),
                    crate::Bytes(a.estimate.compute_bytes),
                    crate::Bytes(a.estimate.overhead_bytes),
                    crate::Bytes(a.estimate.memory_bytes),
                    a.estimate.tokens_per_second,
                    a.quality
                );
                for b in &a.because {
                    let _ = writeln!(
                        out,
                        "    why:    {} ({})",
                        b.message,
                        rule_ref(&b.rule, &b.source)
                    );
                }
                for r in &a.run {
                    let _ = writeln!(out, "    run:    {}", r.command);
                }
            }
            let misses = nearest_misses(d, 5);
            if !misses.is_empty() {
                let _ = writeln!(out, "  rejected (nearest first):");
                for m in misses {
                    let _ = writeln!(out, "    - {m}");
                }
            }
        }
    } else if plan.devices.iter().any(|d| !d.rejections.is_empty()) {
        let _ = writeln!(
            out,
            "\n(run with --explain for the reasons and the nearest rejected alternatives)"
        );
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
