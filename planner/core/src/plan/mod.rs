//! Planning: for each device and role, the best candidate that passes every guardrail and fits
//! with headroom, ranked by the objective; plus the rejections, nearest miss first.
//!
//! Pure: devices in, plan out. Work that does not depend on the device (candidate table,
//! policy checks for a given set of matching rules) is computed once and shared.

mod candidates;
mod device;
mod model;
pub mod runtime;

pub use candidates::{Candidate, CandidateTable};
pub use model::*;

use crate::catalog::Catalog;
use crate::policy::PolicySet;
use crate::profile::DeviceProfile;

/// Knobs that are not policy.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `YYYY-MM-DD`: rules past their `expires` stop applying. The core never reads the clock.
    pub today: Option<String>,
    /// Worker threads (0 or 1: plan on the calling thread).
    pub threads: usize,
}

/// Plans every device. Output order follows `devices`, which callers sort by id.
pub fn plan(
    devices: &[DeviceProfile],
    catalog: &Catalog,
    policies: &PolicySet,
    inputs: PlanInputs,
    options: &PlanOptions,
) -> Plan {
    let table = CandidateTable::new(catalog);
    let threads = options.threads.max(1).min(devices.len().max(1));
    let mut results: Vec<(DevicePlan, Vec<String>)> = Vec::with_capacity(devices.len());
    if threads <= 1 {
        let mut planner =
            device::DevicePlanner::new(catalog, policies, &table, options.today.as_deref());
        results.extend(devices.iter().map(|d| planner.plan_device(d)));
    } else {
        let chunk = devices.len().div_ceil(threads);
        let parts: Vec<Vec<(DevicePlan, Vec<String>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = devices
                .chunks(chunk)
                .map(|part| {
                    let table = &table;
                    let today = options.today.as_deref();
                    s.spawn(move || {
                        let mut planner =
                            device::DevicePlanner::new(catalog, policies, table, today);
                        part.iter()
                            .map(|d| planner.plan_device(d))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for p in parts {
            results.extend(p);
        }
    }
    let mut warnings = Vec::new();
    let mut plans = Vec::with_capacity(results.len());
    for (p, w) in results {
        plans.push(p);
        warnings.extend(w);
    }
    warnings.sort();
    warnings.dedup();
    let assigned = plans
        .iter()
        .filter(|p| p.status == Status::Assigned)
        .count();
    Plan {
        schema: PLAN_SCHEMA.to_owned(),
        inputs: PlanInputs {
            today: options.today.clone(),
            ..inputs
        },
        summary: Summary {
            devices: plans.len(),
            assigned,
            blocked: plans.len() - assigned,
        },
        devices: plans,
        warnings,
    }
}
