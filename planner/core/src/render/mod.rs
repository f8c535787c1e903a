//! Human renderings of a plan: a text table with the reasons, and markdown for PR comments.
//! Pure string building; JSON and YAML come from serde.

mod markdown;
mod text;

pub use markdown::plan_markdown;
pub use text::plan_text;

use crate::plan::{Assignment, DevicePlan};
use crate::units::Bytes;

/// `12.3 of 110.0 GiB` style memory figure for an assignment.
pub(crate) fn memory_cell(a: &Assignment) -> String {
    format!(
        "{} ({:.0}% of {} used)",
        Bytes(a.estimate.memory_bytes),
        100.0 * a.estimate.pool_used_bytes as f64 / a.estimate.pool_capacity_bytes.max(1) as f64,
        a.estimate.pool
    )
}

/// `cuda 36/36 layers`, `cpu`.
pub(crate) fn placement_cell(a: &Assignment) -> String {
    match a.placement.backend.as_str() {
        "cpu" | "npu" => a.placement.backend.as_str().to_owned(),
        b if a.placement.gpus.len() > 1 => format!("{b} ×{} GPUs", a.placement.gpus.len()),
        b => format!("{b} {} layers", a.placement.gpu_layers),
    }
}

/// The nearest few rejections for a device, one line each.
pub(crate) fn nearest_misses(d: &DevicePlan, n: usize) -> Vec<String> {
    d.rejections
        .iter()
        .filter(|r| r.kind != "policy")
        .take(n)
        .chain(d.rejections.iter().filter(|r| r.kind == "policy").take(n))
        .map(|r| {
            format!(
                "{} {} [{}]: {} ({})",
                r.model,
                r.quant,
                r.role.as_str(),
                r.message,
                rule_ref(&r.rule, &r.source)
            )
        })
        .collect()
}

pub(crate) fn rule_ref(rule: &str, source: &str) -> String {
    if source == "fleetfit" {
        format!("{rule}, built-in")
    } else {
        format!("{rule}, {source}")
    }
}
