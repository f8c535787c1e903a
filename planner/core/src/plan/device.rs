//! One device: match policies, then for each role rank the candidates that pass the static
//! guardrails, and take the first that fits (context ladder from the target down to the
//! minimum) and passes the placement guardrails.

use super::candidates::{CandidateTable, role_index};
use super::model::{
    ArtifactRef, Assignment, Because, BlockedRole, DevicePlan, EstimateReport, PlacementReport,
    Rejection, SettingsReport, Status,
};
use crate::catalog::Catalog;
use crate::estimate::placement::{Committed, DeviceResources, Fit, FitRequest, Miss, fit};
use crate::policy::{
    Applied, DevicePolicy, EffectiveSettings, Objective, PlacedFacts, PolicySet, Role, Setting,
    Violation,
};
use crate::profile::DeviceProfile;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Policy verdicts that depend only on which rules matched: shared by devices alike.
#[derive(Debug)]
struct StaticVerdict {
    /// Candidates that pass, best first.
    ranked: Vec<usize>,
    /// Policy rejections (enforced), per candidate index.
    rejected: Vec<(usize, Vec<Violation>)>,
    /// Audit findings per candidate index.
    audit: HashMap<usize, Vec<Violation>>,
}

type CacheKey = (Vec<Applied>, Role, Objective, Vec<String>);

pub(super) struct DevicePlanner<'a> {
    catalog: &'a Catalog,
    policies: &'a PolicySet,
    table: &'a CandidateTable,
    today: Option<&'a str>,
    cache: HashMap<CacheKey, Arc<StaticVerdict>>,
    needs_view: bool,
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
            needs_view: policies.rules.iter().any(|r| r.when.is_some()),
        }
    }

    pub(super) fn plan_device(&mut self, device: &DeviceProfile) -> (DevicePlan, Vec<String>) {
        let view = self
            .needs_view
            .then(|| crate::policy::cel::device_view(device));
        let dp = self.policies.for_device(device, view.as_ref(), self.today);
        let resources = DeviceResources::from_profile(device);
        let mut committed = Committed::default();
        let mut assignments: Vec<Assignment> = Vec::new();
        let mut rejections = Vec::new();
        let mut blocked = Vec::new();
        let mut roles = dp.settings.roles.value.clone();
        roles.dedup();
        for role in roles {
            match self.plan_role(device, &dp, role, &resources, &mut committed, &assignments) {
                Ok((a, rej)) => {
                    assignments.push(a);
                    rejections.extend(rej);
                }
                Err((b, rej)) => {
                    blocked.push(b);
                    rejections.extend(rej);
                }
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
            settings: settings_report(&dp.settings),
            rejections,
        };
        (plan, dp.warnings)
    }

    fn verdict(&mut self, dp: &DevicePolicy, role: Role) -> Arc<StaticVerdict> {
        let key: CacheKey = (
            dp.applied.clone(),
            role,
            dp.settings.objective.value,
            dp.settings.prefer.value.clone(),
        );
        if let Some(v) = self.cache.get(&key) {
            return Arc::clone(v);
        }
        let ri = role_index(role);
        let mut ranked = Vec::new();
        let mut rejected = Vec::new();
        let mut audit = HashMap::new();
        for (ci, c) in self.table.candidates.iter().enumerate() {
            let Some(q) = c.quality[ri] else { continue };
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
            if enforced.is_empty() {
                ranked.push(ci);
            } else {
                rejected.push((ci, enforced));
            }
        }
        let prefer = &dp.settings.prefer.value;
        let pref = |ci: usize| {
            let c = &self.table.candidates[ci];
            let qn = &self.catalog.models[c.model].artifacts[c.artifact].quant;
            prefer.iter().position(|p| p == qn).unwrap_or(prefer.len())
        };
        let quality = |ci: usize| self.table.candidates[ci].quality[ri].unwrap_or(0.0);
        // Quality within half a point counts as equal; then the faster candidate (fewer bytes
        // read per token, in ~20 % steps), then the preferred quantization, then the smaller
        // download.
        let band = |ci: usize| (quality(ci) * 200.0).floor() as i64;
        let speed_step = |ci: usize| {
            ((self.table.candidates[ci].active_bytes.max(1) as f64).log2() * 4.0).floor() as i64
        };
        let size = |ci: usize| {
            let c = &self.table.candidates[ci];
            self.catalog.models[c.model].artifacts[c.artifact].size_bytes
        };
        let params = |ci: usize| {
            self.catalog.models[self.table.candidates[ci].model]
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
                let (ca, cb) = (&self.table.candidates[a], &self.table.candidates[b]);
                ca.active_bytes
                    .cmp(&cb.active_bytes)
                    .then(band(b).cmp(&band(a)))
                    .then(a.cmp(&b))
            }),
        }
        let v = Arc::new(StaticVerdict {
            ranked,
            rejected,
            audit,
        });
        self.cache.insert(key, Arc::clone(&v));
        v
    }

    #[allow(clippy::type_complexity)]
    fn plan_role(
        &mut self,
        device: &DeviceProfile,
        dp: &DevicePolicy,
        role: Role,
        resources: &DeviceResources,
        committed: &mut Committed,
        earlier: &[Assignment],
    ) -> Result<(Assignment, Vec<Rejection>), (BlockedRole, Vec<Rejection>)> {
        let verdict = self.verdict(dp, role);
        let headroom = self.policies.headroom_pct(dp, role) / 100.0;
        let min_ctx = self.policies.min_context(dp, role);
        let target = dp.settings.context_target.value.max(min_ctx);
        let kv_type = dp.settings.kv_type.value;
        let allow_partial_offload = !self.policies.full_gpu_offload(dp, role);
        let mut misses: Vec<(usize, Rejection)> = Vec::new();
        let mut chosen: Option<(usize, Fit, u32, Vec<Violation>)> = None;
        for &ci in &verdict.ranked {
            let c = &self.table.candidates[ci];
            let model = &self.catalog.models[c.model];
            let artifact = &model.artifacts[c.artifact];
            let shape = &self.table.shapes[c.model];
            // The same artifact already serves another role on this device: share it.
            if let Some(prev) = earlier
                .iter()
                .find(|a| a.model == model.id && a.quant == artifact.quant)
            {
                let facts = PlacedFacts {
                    tokens_per_second: prev.estimate.tokens_per_second,
                    backend: backend_of(&prev.placement.backend),
                    context_tokens: prev.context_tokens,
                };
                let (enf, _aud): (Vec<_>, Vec<_>) = self
                    .policies
                    .check_placed(dp, role, &facts)
                    .into_iter()
                    .partition(|v| !v.audit);
                if enf.is_empty() {
                    let mut a = prev.clone();
                    a.role = role;
                    a.because = vec![
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
                        },
                        Because {
                            rule: "shared".into(),
                            source: "fleetfit".into(),
                            message: format!(
                                "already loaded for the {} role: no extra memory",
                                prev.role.as_str()
                            ),
                        },
                    ];
                    a.quality = c.quality[role_index(role)].unwrap_or(0.0);
                    return Ok((a, self.rejections(role, &verdict, misses)));
                }
            }
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
            let at_min = fit(&req, resources, committed);
            let mut best = match at_min {
                Err(m) => {
                    misses.push((
                        ci,
                        memory_rejection(role, &model.id, &artifact.quant, &m, headroom, ctx_min),
                    ));
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
            let (enforced, audited): (Vec<_>, Vec<_>) = self
                .policies
                .check_placed(dp, role, &facts)
                .into_iter()
                .partition(|v| !v.audit);
            if let Some(v) = enforced.into_iter().next() {
                let closeness = if v.constraint == "require.min_tokens_per_second" {
                    min_tps(&v.message).map_or(0.0, |min| min / f.tokens_per_second.max(1e-9))
                } else {
                    0.0
                };
                misses.push((
                    ci,
                    Rejection {
                        role,
                        model: model.id.clone(),
                        quant: artifact.quant.clone(),
                        rule: v.rule,
                        constraint: v.constraint,
                        message: format!(
                            "{} ({} on {}, ctx {ctx})",
                            v.message, artifact.quant, f.backend
                        ),
                        source: v.source,
                        kind: "speed".into(),
                        closeness,
                    },
                ));
                continue;
            }
            let mut audit = verdict.audit.get(&ci).cloned().unwrap_or_default();
            audit.extend(audited);
            chosen = Some((ci, f, ctx, audit));
            break;
        }
        let rejections = self.rejections(role, &verdict, misses);
        let Some((ci, f, ctx, audit)) = chosen else {
            let n = verdict.ranked.len() + verdict.rejected.len();
            let reason = match rejections.first() {
                Some(r) => format!(
                    "0 of {n} candidates pass; nearest miss: {} {}: {}",
                    r.model, r.quant, r.message
                ),
                None => format!("no catalog model has the `{}` task", role.as_str()),
            };
            let _ = device;
            return Err((BlockedRole { role, reason }, rejections));
        };
        committed.add(&f);
        let c = &self.table.candidates[ci];
        let model = &self.catalog.models[c.model];
        let artifact = &model.artifacts[c.artifact];
        let mut because = vec![Because {
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
        }];
        for (_, r) in self.policies.applied_rules(dp) {
            if !crate::policy::covers_role(&r.rule, role)
                || r.rule.mode == crate::policy::Mode::Audit
                || r.rule.effect == crate::policy::Effect::Forbid
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
        let assignment = Assignment {
            role,
            model: model.id.clone(),
            quant: artifact.quant.clone(),
            context_tokens: ctx,
            placement: PlacementReport {
                backend: f.backend.as_str().to_owned(),
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
            },
            estimate: EstimateReport {
                memory_bytes: f.estimate.total_bytes,
                weights_bytes: f.estimate.weights_bytes,
                kv_cache_bytes: f.estimate.kv_cache_bytes,
                compute_bytes: f.estimate.compute_bytes,
                overhead_bytes: f.estimate.overhead_bytes,
                tokens_per_second: (f.tokens_per_second * 10.0).round() / 10.0,
                pool,
                pool_used_bytes: used,
                pool_capacity_bytes: cap,
            },
            quality: (c.quality[role_index(role)].unwrap_or(0.0) * 1000.0).round() / 1000.0,
            because,
        };
        Ok((assignment, rejections))
    }

    /// Policy rejections (collapsed per model and rule) and the fit/speed misses of
    /// better-ranked candidates (nearest per model), nearest miss first.
    fn rejections(
        &self,
        role: Role,
        verdict: &StaticVerdict,
        misses: Vec<(usize, Rejection)>,
    ) -> Vec<Rejection> {
        let mut nearest: BTreeMap<String, Rejection> = BTreeMap::new();
        for (_, r) in misses {
            match nearest.get(&r.model) {
                Some(prev) if prev.closeness <= r.closeness => {}
                _ => {
                    nearest.insert(r.model.clone(), r);
                }
            }
        }
        let mut fit_misses: Vec<Rejection> = nearest.into_values().collect();
        fit_misses.sort_by(|a, b| {
            a.closeness
                .total_cmp(&b.closeness)
                .then(a.model.cmp(&b.model))
        });
        // Policy: group a model's artifacts rejected by the same rule and constraint.
        let mut grouped: BTreeMap<(String, String, String), (Vec<String>, Violation)> =
            BTreeMap::new();
        let mut artifacts_per_model: HashMap<usize, usize> = HashMap::new();
        for c in &self.table.candidates {
            if c.quality[role_index(role)].is_some() {
                *artifacts_per_model.entry(c.model).or_default() += 1;
            }
        }
        for (ci, violations) in &verdict.rejected {
            let c = &self.table.candidates[*ci];
            let model = &self.catalog.models[c.model];
            if let Some(v) = violations.first() {
                let e = grouped
                    .entry((model.id.clone(), v.rule.clone(), v.constraint.clone()))
                    .or_insert_with(|| (Vec::new(), v.clone()));
                e.0.push(model.artifacts[c.artifact].quant.clone());
            }
        }
        let mut policy: Vec<Rejection> = grouped
            .into_iter()
            .map(|((model_id, _, _), (quants, v))| {
                let mi = self
                    .catalog
                    .models
                    .iter()
                    .position(|m| m.id == model_id)
                    .unwrap_or(0);
                let all = artifacts_per_model.get(&mi).copied().unwrap_or(0) == quants.len();
                Rejection {
                    role,
                    model: model_id,
                    quant: if all { "*".into() } else { quants.join(",") },
                    rule: v.rule,
                    constraint: v.constraint,
                    message: v.message,
                    source: v.source,
                    kind: "policy".into(),
                    closeness: 0.0,
                }
            })
            .collect();
        policy.sort_by(|a, b| (&a.rule, &a.model).cmp(&(&b.rule, &b.model)));
        fit_misses.extend(policy);
        fit_misses
    }
}

fn backend_of(name: &str) -> crate::estimate::Backend {
    use crate::estimate::Backend;
    match name {
        "cuda" => Backend::Cuda,
        "rocm" => Backend::Rocm,
        "metal" => Backend::Metal,
        "vulkan" => Backend::Vulkan,
        "npu" => Backend::Npu,
        _ => Backend::Cpu,
    }
}

fn min_tps(message: &str) -> Option<f64> {
    message
        .rsplit("< ")
        .next()
        .and_then(|s| s.trim().parse().ok())
}

fn memory_rejection(
    role: Role,
    model: &str,
    quant_name: &str,
    m: &Miss,
    headroom: f64,
    ctx: u32,
) -> Rejection {
    Rejection {
        role,
        model: model.to_owned(),
        quant: quant_name.to_owned(),
        rule: "memory".into(),
        constraint: "fit".into(),
        message: format!(
            "needs {} of {} at {ctx} ctx on {}; {} available after {:.0}% headroom",
            crate::units::Bytes(m.required),
            m.pool,
            m.backend,
            crate::units::Bytes(m.available),
            headroom * 100.0
        ),
        source: "fleetfit".into(),
        kind: "memory".into(),
        closeness: m.overshoot(),
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
