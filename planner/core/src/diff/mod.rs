//! Plan diffs: what a policy or catalog change does to a fleet.
//!
//! [`diff`] pairs the devices of a base plan and a head plan (planned on the same fleet) by id
//! and, per role, classifies the change: `+` assign, `~` change, `-` unassign, `!` blocked.
//! Devices that change the same way (same role, action, before, after and deciding rules) form
//! one [`DiffGroup`] with a count and example ids, so a fleet-wide change stays a few lines.
//! Pure: plans in, a serializable [`DiffReport`] out; [`diff_text`] and [`diff_markdown`] render it.

mod render;

pub use render::{MARKDOWN_LIMIT, MARKER, diff_markdown, diff_text};

use crate::plan::{Assignment, Because, DevicePlan, Plan, PlanInputs};
use crate::policy::Role;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The schema tag of a diff report (JSON output); bumped on breaking changes only.
pub const DIFF_SCHEMA: &str = "fleetfit/diff/v1";

/// How many example device ids each group keeps.
const EXAMPLES: usize = 3;
/// How many rejected alternatives each group shows.
const NEAREST: usize = 3;

/// What happens to one role of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `!`: the role had a model (or was not needed) and now has no compliant one.
    Blocked,
    /// `+`: the role gets a model it did not have.
    Assign,
    /// `~`: the role gets a different model, quantization, context or backend.
    Change,
    /// `-`: the role is no longer served (not needed any more).
    Unassign,
}

impl Action {
    /// The Terraform-like symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Blocked => "!",
            Action::Assign => "+",
            Action::Change => "~",
            Action::Unassign => "-",
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Blocked => "blocked",
            Action::Assign => "assign",
            Action::Change => "change",
            Action::Unassign => "unassign",
        }
    }
}

/// What a role runs on one side: the fields that make two assignments "the same".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub model: String,
    pub quant: String,
    pub context_tokens: u32,
    pub backend: String,
}

impl Slot {
    fn of(a: &Assignment) -> Self {
        Slot {
            model: a.model.clone(),
            quant: a.quant.clone(),
            context_tokens: a.context_tokens,
            backend: a.placement.backend.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (ctx {}, {})",
            self.model, self.quant, self.context_tokens, self.backend
        )
    }
}

/// A rejected alternative, as the head plan ranked it for the group's example device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedAlternative {
    pub model: String,
    pub quant: String,
    pub rule: String,
    pub source: String,
    pub message: String,
}

/// The fit of the head assignment on the group's example device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub memory_bytes: u64,
    pub pool: String,
    pub pool_used_bytes: u64,
    pub pool_capacity_bytes: u64,
    pub tokens_per_second: f64,
}

/// Devices whose role changed the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffGroup {
    pub action: Action,
    pub role: Role,
    /// How many devices.
    pub count: usize,
    /// What the role ran on base (`null`: nothing, or blocked when `before_blocked`).
    pub before: Option<Slot>,
    /// Whether the role was blocked on base.
    #[serde(default)]
    pub before_blocked: bool,
    /// What the role runs on head (`null` when unassigned or blocked).
    pub after: Option<Slot>,
    /// The head assignment's deciding rule ids (its `because`), in order, deduplicated; for a
    /// blocked role, the policy rules that rejected its candidates, sorted.
    pub rules: Vec<String>,
    /// The first few device ids, sorted.
    pub examples: Vec<String>,
    /// Why, on the first example: the head assignment's reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<Because>,
    /// Why the role is blocked on head (first example), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// The nearest rejected alternatives on head (first example), nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedAlternative>,
    /// Fit numbers of the head assignment (first example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
}

/// Counts. `assign`/`change`/`unassign`/`blocked` count (device, role) pairs; `devices`,
/// `changed` and `unchanged` count devices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSummary {
    pub devices: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub assign: usize,
    pub change: usize,
    pub unassign: usize,
    pub blocked: usize,
}

impl DiffSummary {
    /// Whether anything changed.
    pub fn has_changes(&self) -> bool {
        self.changed > 0
    }
}

/// The whole diff: the ★-style `fleetfit/diff/v1` JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    pub schema: String,
    pub base: PlanInputs,
    pub head: PlanInputs,
    pub summary: DiffSummary,
    /// Blocked first, then by count (largest first), then by role, before and after.
    pub groups: Vec<DiffGroup>,
}

/// One role's state on one side.
enum Side<'a> {
    None,
    Blocked,
    Assigned(&'a Assignment),
}

fn side(d: Option<&DevicePlan>, role: Role) -> Side<'_> {
    let Some(d) = d else { return Side::None };
    if let Some(a) = d.assignments.iter().find(|a| a.role == role) {
        Side::Assigned(a)
    } else if d.blocked.iter().any(|b| b.role == role) {
        Side::Blocked
    } else {
        Side::None
    }
}

fn roles_of(d: Option<&DevicePlan>, roles: &mut Vec<Role>) {
    if let Some(d) = d {
        roles.extend(d.assignments.iter().map(|a| a.role));
        roles.extend(d.blocked.iter().map(|b| b.role));
    }
}

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    action: Action,
    role: Role,
    before: Option<Slot>,
    before_blocked: bool,
    after: Option<Slot>,
    rules: Vec<String>,
}

struct Acc<'a> {
    count: usize,
    /// Up to `EXAMPLES` smallest ids seen, sorted, with the head device plan of each.
    examples: Vec<(&'a str, Option<&'a DevicePlan>)>,
}

impl<'a> Acc<'a> {
    fn add(&mut self, id: &'a str, head: Option<&'a DevicePlan>) {
        self.count += 1;
        if self.examples.len() == EXAMPLES && self.examples.last().is_some_and(|l| l.0 <= id) {
            return;
        }
        let at = self.examples.partition_point(|e| e.0 < id);
        self.examples.insert(at, (id, head));
        self.examples.truncate(EXAMPLES);
    }
}

fn deciding_rules(a: &Assignment) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for b in &a.because {
        if !out.iter().any(|r| r == &b.rule) {
            out.push(b.rule.clone());
        }
    }
    out
}

/// The policy rules that rejected candidates for a blocked role, sorted: what a reviewer
/// looks at first when a change leaves a device with nothing.
fn blocking_rules(d: Option<&DevicePlan>, role: Role) -> Vec<String> {
    let mut out: Vec<String> = d
        .into_iter()
        .flat_map(|d| d.rejections.iter())
        .filter(|r| r.role == role && r.kind == "policy")
        .map(|r| r.rule.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Compares two plans of the same fleet. Devices are paired by id; a device present on one
/// side only is compared against "no roles".
pub fn diff(base: &Plan, head: &Plan) -> DiffReport {
    let base_by_id: HashMap<&str, &DevicePlan> = base
        .devices
        .iter()
        .map(|d| (d.device.as_str(), d))
        .collect();
    let mut ids: Vec<&str> = head.devices.iter().map(|d| d.device.as_str()).collect();
    let head_by_id: HashMap<&str, &DevicePlan> = head
        .devices
        .iter()
        .map(|d| (d.device.as_str(), d))
        .collect();
    ids.extend(
        base.devices
            .iter()
            .map(|d| d.device.as_str())
            .filter(|id| !head_by_id.contains_key(id)),
    );
    let mut summary = DiffSummary {
        devices: ids.len(),
        ..DiffSummary::default()
    };
    let mut groups: HashMap<Key, Acc> = HashMap::new();
    let mut roles = Vec::new();
    for id in ids {
        let b = base_by_id.get(id).copied();
        let h = head_by_id.get(id).copied();
        roles.clear();
        roles_of(b, &mut roles);
        roles_of(h, &mut roles);
        roles.sort();
        roles.dedup();
        let mut changed = false;
        for &role in &roles {
            let (before, after) = (side(b, role), side(h, role));
            let key = match (&before, &after) {
                (Side::Assigned(x), Side::Assigned(y)) => {
                    let (sx, sy) = (Slot::of(x), Slot::of(y));
                    if sx == sy {
                        continue;
                    }
                    Key {
                        action: Action::Change,
                        role,
                        before: Some(sx),
                        before_blocked: false,
                        after: Some(sy),
                        rules: deciding_rules(y),
                    }
                }
                (Side::None | Side::Blocked, Side::Assigned(y)) => Key {
                    action: Action::Assign,
                    role,
                    before: None,
                    before_blocked: matches!(before, Side::Blocked),
                    after: Some(Slot::of(y)),
                    rules: deciding_rules(y),
                },
                (Side::Assigned(x), Side::Blocked) => Key {
                    action: Action::Blocked,
                    role,
                    before: Some(Slot::of(x)),
                    before_blocked: false,
                    after: None,
                    rules: blocking_rules(h, role),
                },
                (Side::Assigned(x), Side::None) => Key {
                    action: Action::Unassign,
                    role,
                    before: Some(Slot::of(x)),
                    before_blocked: false,
                    after: None,
                    rules: Vec::new(),
                },
                (Side::None, Side::Blocked) => Key {
                    action: Action::Blocked,
                    role,
                    before: None,
                    before_blocked: false,
                    after: None,
                    rules: blocking_rules(h, role),
                },
                (Side::Blocked, Side::None) => Key {
                    action: Action::Unassign,
                    role,
                    before: None,
                    before_blocked: true,
                    after: None,
                    rules: Vec::new(),
                },
                (Side::Blocked, Side::Blocked) | (Side::None, Side::None) => continue,
            };
            changed = true;
            match key.action {
                Action::Assign => summary.assign += 1,
                Action::Change => summary.change += 1,
                Action::Unassign => summary.unassign += 1,
                Action::Blocked => summary.blocked += 1,
            }
            groups
                .entry(key)
                .or_insert_with(|| Acc {
                    count: 0,
                    examples: Vec::new(),
                })
                .add(id, h);
        }
        if changed {
            summary.changed += 1;
        }
    }
    summary.unchanged = summary.devices - summary.changed;
    let mut groups: Vec<DiffGroup> = groups
        .into_iter()
        .map(|(key, acc)| group(key, &acc))
        .collect();
    groups.sort_by(|a, b| {
        (a.action != Action::Blocked)
            .cmp(&(b.action != Action::Blocked))
            .then(b.count.cmp(&a.count))
            .then(a.action.cmp(&b.action))
            .then(a.role.cmp(&b.role))
            .then(a.before.cmp(&b.before))
            .then(a.after.cmp(&b.after))
            .then(a.rules.cmp(&b.rules))
            .then(a.examples.cmp(&b.examples))
    });
    DiffReport {
        schema: DIFF_SCHEMA.to_owned(),
        base: base.inputs.clone(),
        head: head.inputs.clone(),
        summary,
        groups,
    }
}

fn group(key: Key, acc: &Acc) -> DiffGroup {
    let first = acc.examples.first().and_then(|e| e.1);
    let assignment = first.and_then(|d| d.assignments.iter().find(|a| a.role == key.role));
    let blocked_reason = first
        .and_then(|d| d.blocked.iter().find(|b| b.role == key.role))
        .filter(|_| key.action == Action::Blocked)
        .map(|b| b.reason.clone());
    let rejected = first.map_or_else(Vec::new, |d| nearest(d, key.role));
    DiffGroup {
        action: key.action,
        role: key.role,
        count: acc.count,
        before: key.before,
        before_blocked: key.before_blocked,
        after: key.after,
        rules: key.rules,
        examples: acc.examples.iter().map(|e| e.0.to_owned()).collect(),
        why: assignment.map_or_else(Vec::new, |a| a.because.clone()),
        blocked_reason,
        rejected,
        fit: assignment.map(|a| Fit {
            memory_bytes: a.estimate.memory_bytes,
            pool: a.estimate.pool.clone(),
            pool_used_bytes: a.estimate.pool_used_bytes,
            pool_capacity_bytes: a.estimate.pool_capacity_bytes,
            tokens_per_second: a.estimate.tokens_per_second,
        }),
    }
}

/// The nearest rejections for one role: fit and speed misses first, then policy, one per model
/// and quantization.
fn nearest(d: &DevicePlan, role: Role) -> Vec<RejectedAlternative> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let of_role = || d.rejections.iter().filter(move |r| r.role == role);
    of_role()
        .filter(|r| r.kind != "policy")
        .chain(of_role().filter(|r| r.kind == "policy"))
        .filter(|r| seen.insert((r.model.as_str(), r.quant.as_str())))
        .take(NEAREST)
        .map(|r| RejectedAlternative {
            model: r.model.clone(),
            quant: r.quant.clone(),
            rule: r.rule.to_string(),
            source: r.source.to_string(),
            message: r.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::Backend;
    use crate::plan::{
        ArtifactRef, BlockedRole, EstimateReport, PlacementReport, Rejections, SettingsReport,
        Status, Summary,
    };
    use std::sync::Arc;

    fn assignment(model: &str, quant: &str, rule: &str) -> Assignment {
        Assignment {
            role: Role::Chat,
            model: model.into(),
            quant: quant.into(),
            context_tokens: 8192,
            placement: PlacementReport {
                backend: Backend::Cpu,
                gpu_layers: 0,
                gpus: Vec::new(),
                gpu_bytes: Vec::new(),
                system_bytes: 1,
            },
            artifact: ArtifactRef {
                repo: String::new(),
                revision: String::new(),
                file: String::new(),
                format: "gguf".into(),
                size_bytes: 1,
                size_exact: true,
                sha256: None,
                url: None,
            },
            estimate: EstimateReport {
                memory_bytes: 1,
                weights_bytes: 1,
                kv_cache_bytes: 0,
                compute_bytes: 0,
                overhead_bytes: 0,
                tokens_per_second: 10.0,
                pool: "system memory".into(),
                pool_used_bytes: 1,
                pool_capacity_bytes: 4,
            },
            quality: 0.5,
            because: vec![Because {
                rule: rule.into(),
                source: "p.yaml:1:1".into(),
                message: "m".into(),
            }],
            run: Vec::new(),
        }
    }

    fn device(id: &str, a: Option<Assignment>) -> DevicePlan {
        let blocked = a.is_none();
        DevicePlan {
            device: id.into(),
            status: if blocked {
                Status::Blocked
            } else {
                Status::Assigned
            },
            assignments: a.into_iter().collect(),
            blocked: if blocked {
                vec![BlockedRole {
                    role: Role::Chat,
                    reason: "0 of 1 candidates pass".into(),
                }]
            } else {
                Vec::new()
            },
            settings: Arc::new(SettingsReport {
                roles: vec![Role::Chat],
                objective: "best_quality".into(),
                headroom_pct: 15.0,
                context_target: 8192,
                kv_cache_type: "f16".into(),
                from: Vec::new(),
            }),
            rejections: Rejections::default(),
        }
    }

    fn plan_of(devices: Vec<DevicePlan>) -> Plan {
        Plan {
            schema: crate::plan::PLAN_SCHEMA.into(),
            inputs: PlanInputs::default(),
            summary: Summary::default(),
            devices,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn identical_plans_have_no_changes() {
        let p = plan_of(vec![device("a", Some(assignment("m", "Q4_K_M", "r")))]);
        let r = diff(&p, &p);
        assert!(r.groups.is_empty());
        assert!(!r.summary.has_changes());
        assert_eq!(r.summary.unchanged, 1);
    }

    #[test]
    fn devices_that_change_alike_are_one_group_and_blocked_comes_first() {
        let base = plan_of(
            ["d4", "d1", "d3", "d2", "x"]
                .iter()
                .map(|id| device(id, Some(assignment("m", "Q4_K_M", "r"))))
                .collect(),
        );
        let mut head_devices: Vec<DevicePlan> = ["d4", "d1", "d3", "d2"]
            .iter()
            .map(|id| device(id, Some(assignment("m", "Q5_K_M", "r"))))
            .collect();
        head_devices.push(device("x", None));
        let r = diff(&base, &plan_of(head_devices));
        assert_eq!(r.groups.len(), 2);
        assert_eq!(r.groups[0].action, Action::Blocked);
        assert_eq!(r.groups[0].examples, ["x"]);
        let g = &r.groups[1];
        assert_eq!((g.action, g.count), (Action::Change, 4));
        assert_eq!(g.examples, ["d1", "d2", "d3"]);
        assert_eq!(g.after.as_ref().map(|s| s.quant.as_str()), Some("Q5_K_M"));
        assert_eq!(g.rules, ["r"]);
        assert_eq!(
            (r.summary.change, r.summary.blocked, r.summary.unchanged),
            (4, 1, 0)
        );
    }

    #[test]
    fn a_role_no_longer_needed_is_unassigned_and_a_new_one_assigned() {
        let mut emb = assignment("bge", "Q8_0", "r");
        emb.role = Role::Embedding;
        let mut with_emb = device("a", Some(assignment("m", "Q4_K_M", "r")));
        with_emb.assignments.push(emb);
        let plain = device("a", Some(assignment("m", "Q4_K_M", "r")));
        let r = diff(
            &plan_of(vec![with_emb.clone()]),
            &plan_of(vec![plain.clone()]),
        );
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].action, Action::Unassign);
        let r = diff(&plan_of(vec![plain]), &plan_of(vec![with_emb]));
        assert_eq!(r.groups[0].action, Action::Assign);
        assert_eq!(r.summary.assign, 1);
    }
}
