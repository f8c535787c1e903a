//! One device: match policies, then for each role rank the candidates that pass the static
//! guardrails, and take the first that fits (context ladder from the target down to the
//! minimum) and passes the placement guardrails.
//!
//! This is the hot path of fleet planning: what depends only on which rules matched (ranking,
//! policy rejections) is computed once per rule set and shared; misses are kept as numbers and
//! turned into messages only for the nearest miss of each model.

use super::candidates::{CandidateTable, role_index};
use super::model::{
    ArtifactRef, Assignment, Because, BlockedRole, DevicePlan, EstimateReport, PlacementReport,
    Rejection, Rejections, SettingsReport, Status,
};
use crate::catalog::Catalog;
use crate::estimate::placement::{Committed, DeviceResources, Fit, FitRequest, Miss, fit};
use crate::policy::PlacedMiss;
use crate::policy::{
    Applied, DevicePolicy, Effect, EffectiveSettings, Mode, Objective, PlacedFacts, PolicySet,
    Role, Setting, Violation, covers_role,
};
use crate::profile::DeviceProfile;
use crate::units::Bytes;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Policy verdicts that depend only on which rules matched: shared by devices alike.
#[derive(Debug)]
struct StaticVerdict {
    /// Candidates that pass, best first.
    ranked: Vec<usize>,
    /// Enforced policy rejections, grouped per model and rule, sorted.
    policy_rejections: Arc<Vec<Rejection>>,
    /// Audit findings per candidate index.
    audit: HashMap<usize, Vec<Violation>>,
    /// Candidates with the role's task (compliant or not).
    considered: usize,
}

/// Why a better-ranked candidate was passed over on this device, as numbers.
#[derive(Clone, Debug)]
enum MissKind<'p> {
    Memory { miss: Miss, ctx: u32, headroom: f64 },
    Speed { miss: PlacedMiss<'p>, ctx: u32 },
}

impl MissKind<'_> {
    /// Required over available: 1.05 means 5 % short.
    fn closeness(&self) -> f64 {
        match self {
            MissKind::Memory { miss, .. } => miss.overshoot(),
            MissKind::Speed { miss, .. } => miss.closeness(),
        }
    }
}

pub(super) struct DevicePlanner<'a> {
    catalog: &'a Catalog,
    policies: &'a PolicySet,
    table: &'a CandidateTable,
    today: Option<&'a str>,
    /// Per matched rule set: the verdict for each role.
    cache: HashMap<Vec<Applied>, [Option<Arc<StaticVerdict>>; 3]>,
    /// Per matched rule set: the settings report.
    settings: HashMap<Vec<Applied>, Arc<SettingsReport>>,
}

impl<'a> DevicePlanner<'a> {
    pub(super) fn new(
        catalog: &'a Catalog,
        policies: &'a PolicySet,
        table: &'a CandidateTable,
        today: Option<&'a str>,
    ) -> Self {
        DevicePlanner {
            catalog,
            policies,
            table,
            today,
            cache: HashMap::new(),
            settings: HashMap::new(),
        }
    }

    pub(super) fn plan_device(&mut self, device: &DeviceProfile) -> (DevicePlan, Vec<String>) {
        let dp = self.policies.for_device(device, self.today);
        let resources = DeviceResources::from_profile(device);
        let mut committed = Committed::default();
        let mut assignments: Vec<Assignment> = Vec::new();
        let mut rejections = Rejections::default();
        let mut blocked = Vec::new();
        let mut roles = dp.settings.roles.value.clone();
        roles.dedup();
        for role in roles {
            let verdict = self.verdict(&dp, role);
            let (outcome, misses) = self.plan_role(
                &dp,
                role,
                &verdict,
                &resources,
                &mut committed,
                &assignments,
            );
            rejections.push_part(Arc::new(misses));
            rejections.push_part(Arc::clone(&verdict.policy_rejections));
            match outcome {
                Ok(a) => assignments.push(a),
                Err(b) => blocked.push(b),
            }
        }
        let status = if blocked.is_empty() {
            Status::Assigned
        } else {
            Status::Blocked
        };
        let plan = DevicePlan {
            device: device.id.clone(),
            status,
            assignments,
            blocked,
            settings: self.settings_for(&dp),
            rejections,
        };
        (plan, dp.warnings)
    }

    fn settings_for(&mut self, dp: &DevicePolicy) -> Arc<SettingsReport> {
        if let Some(s) = self.settings.get(dp.applied.as_slice()) {
            return Arc::clone(s);
        }
        let s = Arc::new(settings_report(&dp.settings));
        self.settings.insert(dp.applied.clone(), Arc::clone(&s));
        s
    }

    fn verdict(&mut self, dp: &DevicePolicy, role: Role) -> Arc<StaticVerdict> {
        let ri = role_index(role);
        if let Some(Some(v)) = self
            .cache
            .get(dp.applied.as_slice())
            .map(|slots| &slots[ri])
        {
            return Arc::clone(v);
        }
        let v = Arc::new(self.compute_verdict(dp, role));
        self.cache.entry(dp.applied.clone()).or_default()[ri] = Some(Arc::clone(&v));
        v
    }

    fn compute_verdict(&self, dp: &DevicePolicy, role: Role) -> StaticVerdict {
        let ri = role_index(role);
        let mut ranked = Vec::new();
        let mut rejected: Vec<(usize, Violation)> = Vec::new();
        let mut audit = HashMap::new();
        let mut considered = 0;
        for (ci, c) in self.table.candidates.iter().enumerate() {
            let Some(q) = c.quality[ri] else { continue };
            considered += 1;
            let model = &self.catalog.models[c.model];
            let artifact = &model.artifacts[c.artifact];
            let (enforced, audited): (Vec<Violation>, Vec<Violation>) = self
                .policies
                .check_static(dp, role, model, artifact, q)
                .into_iter()
                .partition(|v| !v.audit);
            if !audited.is_empty() {
                audit.insert(ci, audited);
            }
            match enforced.into_iter().next() {
                None => ranked.push(ci),
                Some(v) => rejected.push((ci, v)),
            }
        }
        self.rank(dp, ri, &mut ranked);
        StaticVerdict {
            ranked,
            policy_rejections: Arc::new(self.group_policy_rejections(role, rejected)),
            audit,
            considered,
        }
    }

    fn rank(&self, dp: &DevicePolicy, ri: usize, ranked: &mut [usize]) {
        let prefer = &dp.settings.prefer.value;
        let cand = |ci: usize| &self.table.candidates[ci];
        let artifact =
            |ci: usize| &self.catalog.models[cand(ci).model].artifacts[cand(ci).artifact];
        let pref = |ci: usize| {
            let qn = &artifact(ci).quant;
            prefer.iter().position(|p| p == qn).unwrap_or(prefer.len())
        };
        let quality = |ci: usize| cand(ci).quality[ri].unwrap_or(0.0);
        // Quality within half a point counts as equal; then the faster candidate (fewer bytes
        // read per token, in ~20 % steps), then the preferred quantization, then the smaller
        // download.
        let band = |ci: usize| (quality(ci) * 200.0).floor() as i64;
        let speed_step =
            |ci: usize| ((cand(ci).active_bytes.max(1) as f64).log2() * 4.0).floor() as i64;
        let size = |ci: usize| artifact(ci).size_bytes;
        let params = |ci: usize| {
            self.catalog.models[cand(ci).model]
                .architecture
                .params_total
        };
        match dp.settings.objective.value {
            Objective::BestQuality => ranked.sort_by(|&a, &b| {
                band(b)
                    .cmp(&band(a))
                    .then(speed_step(a).cmp(&speed_step(b)))
                    .then(pref(a).cmp(&pref(b)))
                    .then(size(a).cmp(&size(b)))
                    .then(a.cmp(&b))
            }),
            Objective::LargestThatFits => ranked.sort_by(|&a, &b| {
                params(b)
                    .cmp(&params(a))
                    .then(band(b).cmp(&band(a)))
                    .then(pref(a).cmp(&pref(b)))
                    .then(a.cmp(&b))
            }),
            Objective::Fastest => ranked.sort_by(|&a, &b| {
                cand(a)
                    .active_bytes
                    .cmp(&cand(b).active_bytes)
                    .then(band(b).cmp(&band(a)))
                    .then(a.cmp(&b))
            }),
        }
    }

    /// A model's artifacts rejected by the same rule and constraint become one rejection
    /// (quant `*` when all of them were).
    fn group_policy_rejections(
        &self,
        role: Role,
        rejected: Vec<(usize, Violation)>,
    ) -> Vec<Rejection> {
        let ri = role_index(role);
        let mut per_model: HashMap<usize, usize> = HashMap::new();
        for c in &self.table.candidates {
            if c.quality[ri].is_some() {
                *per_model.entry(c.model).or_default() += 1;
            }
        }
        let mut grouped: BTreeMap<(usize, String, String), (Vec<String>, Violation)> =
            BTreeMap::new();
        for (ci, v) in rejected {
            let c = &self.table.candidates[ci];
            let quant = self.catalog.models[c.model].artifacts[c.artifact]
                .quant
                .clone();
            grouped
                .entry((c.model, v.rule.clone(), v.constraint.clone()))
                .or_insert_with(|| (Vec::new(), v))
                .0
                .push(quant);
        }
        let mut out: Vec<Rejection> = grouped
            .into_iter()
            .map(|((mi, _, _), (quants, v))| {
                let all = per_model.get(&mi).copied().unwrap_or(0) == quants.len();
                Rejection {
                    role,
                    model: self.catalog.models[mi].id.clone(),
                    quant: if all { "*".into() } else { quants.join(",") },
                    rule: Cow::Owned(v.rule),
                    constraint: Cow::Owned(v.constraint),
                    message: v.message,
                    source: Cow::Owned(v.source),
                    kind: Cow::Borrowed("policy"),
                    closeness: 0.0,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.rule, &a.model).cmp(&(&b.rule, &b.model)));
        out
    }

    #[allow(clippy::type_complexity)]
    fn plan_role(
        &self,
        dp: &'a DevicePolicy,
        role: Role,
        verdict: &StaticVerdict,
        resources: &DeviceResources,
        committed: &mut Committed,
        earlier: &[Assignment],
    ) -> (Result<Assignment, BlockedRole>, Vec<Rejection>) {
        let headroom = self.policies.headroom_pct(dp, role) / 100.0;
        let min_ctx = self.policies.min_context(dp, role);
        let target = dp.settings.context_target.value.max(min_ctx);
        let kv_type = dp.settings.kv_type.value;
        let allow_partial_offload = !self.policies.full_gpu_offload(dp, role);
        // The nearest miss per model, as numbers: (closeness, candidate, why).
        let mut nearest: Vec<Option<(f64, usize, MissKind<'a>)>> =
            vec![None; self.catalog.models.len()];
        let mut note = |ci: usize, kind: MissKind<'a>| {
            let mi = self.table.candidates[ci].model;
            let c = kind.closeness();
            if nearest[mi].as_ref().is_none_or(|(prev, _, _)| c < *prev) {
                nearest[mi] = Some((c, ci, kind));
            }
        };
        let mut chosen: Option<(usize, Fit, u32, Vec<Violation>)> = None;
        for &ci in &verdict.ranked {
            let c = &self.table.candidates[ci];
            let model = &self.catalog.models[c.model];
            let artifact = &model.artifacts[c.artifact];
            // The same artifact already serves another role on this device: share it.
            if let Some(prev) = earlier
                .iter()
                .find(|a| a.model == model.id && a.quant == artifact.quant)
            {
                let facts = PlacedFacts {
                    tokens_per_second: prev.estimate.tokens_per_second,
                    backend: prev.placement.backend,
                    context_tokens: prev.context_tokens,
                };
                if self
                    .policies
                    .check_placed(dp, role, &facts)
                    .iter()
                    .all(|v| v.audit)
                {
                    let mut a = prev.clone();
                    a.role = role;
                    a.quality = round3(c.quality[role_index(role)].unwrap_or(0.0));
                    a.because = vec![
                        objective_because(dp, verdict, role),
                        Because {
                            rule: "shared".into(),
                            source: "fleetfit".into(),
                            message: format!(
                                "already loaded for the {} role: no extra memory",
                                prev.role.as_str()
                            ),
                        },
                    ];
                    return (Ok(a), self.format_misses(role, nearest));
                }
            }
            let shape = &self.table.shapes[c.model];
            let (ctx_max, ctx_min) = if role == Role::Embedding {
                (
                    model.architecture.context_native,
                    model.architecture.context_native,
                )
            } else {
                (target.min(model.architecture.context_max), min_ctx)
            };
            let mut req = FitRequest {
                shape,
                format: artifact.format,
                npu: artifact.npu,
                weights: artifact.size(),
                context_tokens: ctx_min,
                kv_type,
                headroom,
                allow_partial_offload,
            };
            let mut best = match fit(&req, resources, committed) {
                Err(miss) => {
                    note(
                        ci,
                        MissKind::Memory {
                            miss,
                            ctx: ctx_min,
                            headroom,
                        },
                    );
                    continue;
                }
                Ok(f) => (f, ctx_min),
            };
            let mut ctx = ctx_max;
            while ctx > ctx_min {
                req.context_tokens = ctx;
                if let Ok(f) = fit(&req, resources, committed) {
                    best = (f, ctx);
                    break;
                }
                ctx /= 2;
            }
            let (f, ctx) = best;
            let facts = PlacedFacts {
                tokens_per_second: f.tokens_per_second,
                backend: f.backend,
                context_tokens: ctx,
            };
            let mut enforced = None;
            let mut audited = Vec::new();
            for m in self.policies.placed_misses(dp, role, facts) {
                if m.audit {
                    audited.push(m.to_violation());
                } else if enforced.is_none() {
                    enforced = Some(m);
                }
            }
            if let Some(miss) = enforced {
                note(ci, MissKind::Speed { miss, ctx });
                continue;
            }
            let mut audit = verdict.audit.get(&ci).cloned().unwrap_or_default();
            audit.extend(audited);
            chosen = Some((ci, f, ctx, audit));
            break;
        }
        let misses = self.format_misses(role, nearest);
        let Some((ci, f, ctx, audit)) = chosen else {
            let reason = match misses.first().or_else(|| verdict.policy_rejections.first()) {
                Some(r) => format!(
                    "0 of {} candidates pass; nearest miss: {} {}: {}",
                    verdict.considered, r.model, r.quant, r.message
                ),
                None => format!("no catalog model has the `{}` task", role.as_str()),
            };
            return (Err(BlockedRole { role, reason }), misses);
        };
        committed.add(&f);
        (
            Ok(self.assignment(dp, role, verdict, ci, &f, ctx, audit)),
            misses,
        )
    }

    fn format_misses(
        &self,
        role: Role,
        nearest: Vec<Option<(f64, usize, MissKind<'_>)>>,
    ) -> Vec<Rejection> {
        let mut out: Vec<Rejection> = nearest
            .into_iter()
            .flatten()
            .map(|(closeness, ci, kind)| {
                let c = &self.table.candidates[ci];
                let model = &self.catalog.models[c.model];
                let quant = model.artifacts[c.artifact].quant.clone();
                match kind {
                    MissKind::Memory {
                        miss,
                        ctx,
                        headroom,
                    } => Rejection {
                        role,
                        model: model.id.clone(),
                        message: format!(
                            "needs {} of {} at {ctx} ctx on {}; {} available after {:.0}% headroom",
                            Bytes(miss.required),
                            miss.pool,
                            miss.backend,
                            Bytes(miss.available),
                            headroom * 100.0
                        ),
                        quant,
                        rule: Cow::Borrowed("memory"),
                        constraint: Cow::Borrowed("fit"),
                        source: Cow::Borrowed("fleetfit"),
                        kind: Cow::Borrowed("memory"),
                        closeness,
                    },
                    MissKind::Speed { miss, ctx } => Rejection {
                        role,
                        model: model.id.clone(),
                        message: format!(
                            "{} ({quant} on {}, ctx {ctx})",
                            miss.message(),
                            miss.placed.backend
                        ),
                        quant,
                        rule: Cow::Owned(miss.rule.to_owned()),
                        constraint: Cow::Borrowed(miss.constraint()),
                        source: Cow::Owned(miss.source.to_string()),
                        kind: Cow::Borrowed("speed"),
                        closeness,
                    },
                }
            })
            .collect();
        out.sort_by(|a, b| {
            a.closeness
                .total_cmp(&b.closeness)
                .then_with(|| a.model.cmp(&b.model))
        });
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn assignment(
        &self,
        dp: &DevicePolicy,
        role: Role,
        verdict: &StaticVerdict,
        ci: usize,
        f: &Fit,
        ctx: u32,
        audit: Vec<Violation>,
    ) -> Assignment {
        let c = &self.table.candidates[ci];
        let model = &self.catalog.models[c.model];
        let artifact = &model.artifacts[c.artifact];
        let mut because = vec![objective_because(dp, verdict, role)];
        for (_, r) in self.policies.applied_rules(dp) {
            if !covers_role(&r.rule, role)
                || r.rule.mode == Mode::Audit
                || r.rule.effect == Effect::Forbid
            {
                continue;
            }
            because.push(Because {
                rule: r.rule.id.clone(),
                source: r.source.to_string(),
                message: r
                    .rule
                    .description
                    .clone()
                    .unwrap_or_else(|| "matched".into()),
            });
        }
        for v in audit {
            because.push(Because {
                rule: v.rule,
                source: v.source,
                message: format!("audit (not enforced): would reject: {}", v.message),
            });
        }
        let (pool, used, cap) = f.tightest_pool.clone();
        let mut a = Assignment {
            role,
            model: model.id.clone(),
            quant: artifact.quant.clone(),
            context_tokens: ctx,
            placement: PlacementReport {
                backend: f.backend,
                gpu_layers: f.gpu_layers,
                gpus: f.gpus.clone(),
                gpu_bytes: f.gpu_bytes.iter().map(|(_, b)| *b).collect(),
                system_bytes: f.system_bytes,
            },
            artifact: ArtifactRef {
                repo: artifact.repo.clone(),
                revision: artifact.revision.clone(),
                file: artifact.file.clone(),
                format: artifact.format.as_str().to_owned(),
                size_bytes: artifact.size_bytes,
                size_exact: artifact.size_exact,
                sha256: artifact.sha256.clone(),
                url: artifact.url.clone(),
            },
            estimate: EstimateReport {
                memory_bytes: f.estimate.total_bytes,
                weights_bytes: f.estimate.weights_bytes,
                kv_cache_bytes: f.estimate.kv_cache_bytes,
                compute_bytes: f.estimate.compute_bytes,
                overhead_bytes: f.estimate.overhead_bytes,
                tokens_per_second: (f.tokens_per_second * 10.0).round() / 10.0,
                pool: pool.to_string(),
                pool_used_bytes: used,
                pool_capacity_bytes: cap,
            },
            quality: round3(c.quality[role_index(role)].unwrap_or(0.0)),
            because,
            run: Vec::new(),
        };
        a.run = super::runtime::run_commands(&a, dp.settings.kv_type.value);
        a
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn objective_because(dp: &DevicePolicy, verdict: &StaticVerdict, role: Role) -> Because {
    Because {
        rule: dp
            .settings
            .objective
            .rule
            .clone()
            .unwrap_or_else(|| "builtin".into()),
        source: dp
            .settings
            .objective
            .source
            .clone()
            .unwrap_or_else(|| "fleetfit".into()),
        message: format!(
            "{}: ranked first of {} compliant candidates for {}",
            dp.settings.objective.value.as_str(),
            verdict.ranked.len(),
            role.as_str()
        ),
    }
}

fn provenance<T>(s: &Setting<T>, name: &str, value: &str) -> Option<String> {
    match (&s.rule, &s.source) {
        (Some(rule), Some(source)) => Some(format!("{name} = {value} ({rule}, {source})")),
        _ => None,
    }
}

fn settings_report(s: &EffectiveSettings) -> SettingsReport {
    let roles: Vec<&str> = s.roles.value.iter().map(|r| r.as_str()).collect();
    let from = [
        provenance(&s.roles, "roles", &format!("[{}]", roles.join(", "))),
        provenance(&s.objective, "objective", s.objective.value.as_str()),
        provenance(
            &s.headroom_pct,
            "headroom_pct",
            &s.headroom_pct.value.to_string(),
        ),
        provenance(
            &s.context_target,
            "context.target_tokens",
            &s.context_target.value.to_string(),
        ),
        provenance(
            &s.prefer,
            "quantization.prefer",
            &format!("[{}]", s.prefer.value.join(", ")),
        ),
        provenance(
            &s.kv_type,
            "runtime.kv_cache_type",
            s.kv_type.value.as_str(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    SettingsReport {
        roles: s.roles.value.clone(),
        objective: s.objective.value.as_str().to_owned(),
        headroom_pct: s.headroom_pct.value,
        context_target: s.context_target.value,
        kv_cache_type: s.kv_type.value.to_string(),
        from,
    }
}
