//! Policies: YAML rules with stable ids that decide which models a device may run and how the
//! planner ranks them. Guardrails (`require`, `effect: forbid`) from every matching rule apply
//! together, so they only tighten; settings (`objective`, `memory.headroom_pct`,
//! `quantization.prefer`, `context`, `roles`) come from the last matching rule in file order;
//! `mode: audit` rules are evaluated and reported but never reject.

pub mod cel;
mod load;
mod model;

pub use load::parse_policies;
pub use model::*;

use crate::catalog::{Artifact, Model};
use crate::estimate::{Backend, KvType};
use crate::profile::DeviceProfile;
use serde::Serialize;
use std::fmt;

/// Where a rule (or a defaults block) was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Source {
    pub path: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.column)
    }
}

/// A validated rule with its compiled condition.
#[derive(Debug)]
pub struct CompiledRule {
    pub rule: Rule,
    pub source: Source,
    pub when: Option<cel::Condition>,
}

/// A `defaults:` block and where it was written.
#[derive(Debug)]
pub struct CompiledDefaults {
    pub defaults: Defaults,
    pub source: Source,
}

/// All policy files, validated, in evaluation order (files sorted by path, rules in file order).
#[derive(Debug, Default)]
pub struct PolicySet {
    pub defaults: Vec<CompiledDefaults>,
    pub rules: Vec<CompiledRule>,
    /// Top-level `device` fields any `when:` reads (`None`: all of them).
    pub cel_fields: Option<std::collections::BTreeSet<String>>,
}

/// A setting's value and the rule that set it (`None`: fleetfit's built-in default).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub rule: Option<String>,
    pub source: Option<String>,
}

impl<T> Setting<T> {
    fn builtin(value: T) -> Self {
        Setting {
            value,
            rule: None,
            source: None,
        }
    }

    fn set(&mut self, value: T, rule: &str, source: &Source) {
        self.value = value;
        self.rule = Some(rule.to_owned());
        self.source = Some(source.to_string());
    }
}

/// Built-in defaults, used where no policy says otherwise.
pub mod builtin {
    /// Context the planner aims for.
    pub const CONTEXT_TARGET: u32 = 32_768;
    /// Smallest context worth deploying for chat/code.
    pub const MIN_CONTEXT: u32 = 4096;
    /// Share of each memory pool left free.
    pub const HEADROOM_PCT: f64 = 10.0;
}

/// Settings in force for one device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectiveSettings {
    pub roles: Setting<Vec<Role>>,
    pub objective: Setting<Objective>,
    pub headroom_pct: Setting<f64>,
    pub prefer: Setting<Vec<String>>,
    pub context_target: Setting<u32>,
    pub kv_type: Setting<KvType>,
}

/// A rule (or defaults block) that applies to a device, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Applied {
    Defaults(usize),
    Rule(usize),
}

/// What the policies say for one device.
#[derive(Clone, Debug)]
pub struct DevicePolicy {
    pub settings: EffectiveSettings,
    /// Matching rules, in order (defaults first).
    pub applied: Vec<Applied>,
    /// Problems evaluating conditions (a CEL runtime error is a non-match).
    pub warnings: Vec<String>,
}

/// One guardrail violation: which rule, which constraint, why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub rule: String,
    pub source: String,
    /// `require.licenses`, `forbid`, `require.min_tokens_per_second` …
    pub constraint: String,
    pub message: String,
    /// Whether the rule is `mode: audit` (reported, not enforced).
    pub audit: bool,
}

/// Which placement guardrail missed.
#[derive(Clone, Copy, Debug)]
pub enum PlacedCheck<'a> {
    /// `require.min_tokens_per_second`.
    Speed { min: f64 },
    /// `require.backends`.
    Backend { allowed: &'a [Backend] },
}

/// A placement guardrail miss, kept as numbers until it is reported.
#[derive(Clone, Copy, Debug)]
pub struct PlacedMiss<'a> {
    pub rule: &'a str,
    pub source: &'a Source,
    pub check: PlacedCheck<'a>,
    pub audit: bool,
    pub placed: PlacedFacts,
}

impl PlacedMiss<'_> {
    /// `require.min_tokens_per_second` or `require.backends`.
    pub fn constraint(&self) -> &'static str {
        match self.check {
            PlacedCheck::Speed { .. } => "require.min_tokens_per_second",
            PlacedCheck::Backend { .. } => "require.backends",
        }
    }

    /// How far off: required / achieved for speed (1.2 = 20 % too slow); 0 for a backend.
    pub fn closeness(&self) -> f64 {
        match self.check {
            PlacedCheck::Speed { min } => min / self.placed.tokens_per_second.max(1e-9),
            PlacedCheck::Backend { .. } => 0.0,
        }
    }

    /// One line.
    pub fn message(&self) -> String {
        match self.check {
            PlacedCheck::Speed { min } => {
                format!("~{:.2} tok/s < {min}", self.placed.tokens_per_second)
            }
            PlacedCheck::Backend { allowed } => format!(
                "backend `{}` is not in [{}]",
                self.placed.backend,
                allowed
                    .iter()
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// As a reported violation.
    pub fn to_violation(&self) -> Violation {
        Violation {
            rule: self.rule.to_owned(),
            source: self.source.to_string(),
            constraint: self.constraint().to_owned(),
            message: self.message(),
            audit: self.audit,
        }
    }
}

/// Facts about a candidate once placed (for guardrails that need the fit).
#[derive(Clone, Copy, Debug)]
pub struct PlacedFacts {
    pub tokens_per_second: f64,
    pub backend: Backend,
    pub context_tokens: u32,
}

impl PolicySet {
    /// Evaluates matches, conditions and settings for one device. `today` (`YYYY-MM-DD`) makes
    /// expired rules stop applying; the core never reads the clock.
    pub fn for_device(&self, device: &DeviceProfile, today: Option<&str>) -> DevicePolicy {
        // The CEL view of the device is built only if a rule with `when` gets that far.
        let view: std::cell::OnceCell<::cel::Context<'static, 'static>> =
            std::cell::OnceCell::new();
        let mut settings = EffectiveSettings {
            roles: Setting::builtin(vec![Role::Chat]),
            objective: Setting::builtin(Objective::BestQuality),
            headroom_pct: Setting::builtin(builtin::HEADROOM_PCT),
            prefer: Setting::builtin(Vec::new()),
            context_target: Setting::builtin(builtin::CONTEXT_TARGET),
            kv_type: Setting::builtin(KvType::F16),
        };
        let mut applied = Vec::new();
        let mut warnings = Vec::new();
        for (i, d) in self.defaults.iter().enumerate() {
            apply_settings(
                &mut settings,
                &SettingsView::from_defaults(&d.defaults),
                "defaults",
                &d.source,
            );
            applied.push(Applied::Defaults(i));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let (Some(exp), Some(today)) = (&r.rule.expires, today)
                && today > exp.as_str()
            {
                continue;
            }
            if !matches_device(r.rule.match_.as_ref(), device) {
                continue;
            }
            if let Some(cond) = &r.when {
                let view =
                    view.get_or_init(|| cel::device_context(device, self.cel_fields.as_ref()));
                match cond.eval(view) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        warnings.push(format!("rule `{}` ({}): `when` failed on device `{}`: {e}; treated as not matching", r.rule.id, r.source, device.id));
                        continue;
                    }
                }
            }
            if r.rule.mode == Mode::Enforce {
                apply_settings(
                    &mut settings,
                    &SettingsView::from_rule(&r.rule),
                    &r.rule.id,
                    &r.source,
                );
            }
            applied.push(Applied::Rule(i));
        }
        DevicePolicy {
            settings,
            applied,
            warnings,
        }
    }

    /// Required headroom for a role: the setting, raised by any `require.min_headroom_pct`.
    pub fn headroom_pct(&self, dp: &DevicePolicy, role: Role) -> f64 {
        let mut h = dp.settings.headroom_pct.value;
        for req in self.requires(dp, role).filter(|(_, _, _, audit)| !audit) {
            if let Some(m) = req.0.min_headroom_pct {
                h = h.max(m);
            }
        }
        h
    }

    /// Whether partial GPU offload is forbidden for a role (any enforced `full_gpu_offload: true`).
    pub fn full_gpu_offload(&self, dp: &DevicePolicy, role: Role) -> bool {
        self.requires(dp, role)
            .any(|(r, _, _, audit)| !audit && r.full_gpu_offload == Some(true))
    }

    /// Minimum context for a role (chat/code only; embedding models use their own).
    pub fn min_context(&self, dp: &DevicePolicy, role: Role) -> u32 {
        if role == Role::Embedding {
            return 1;
        }
        let mut m = builtin::MIN_CONTEXT;
        let mut explicit = false;
        for req in self.requires(dp, role).filter(|(_, _, _, audit)| !audit) {
            if let Some(c) = req.0.min_context_tokens {
                m = if explicit { m.max(c) } else { c };
                explicit = true;
            }
        }
        m
    }

    /// (require block, rule id, source, audit) for every applied rule/defaults covering `role`.
    fn requires<'a>(
        &'a self,
        dp: &'a DevicePolicy,
        role: Role,
    ) -> impl Iterator<Item = (&'a Require, &'a str, &'a Source, bool)> + 'a {
        dp.applied.iter().filter_map(move |a| match a {
            Applied::Defaults(i) => {
                let d = &self.defaults[*i];
                d.defaults
                    .require
                    .as_ref()
                    .map(|r| (r, "defaults", &d.source, false))
            }
            Applied::Rule(i) => {
                let r = &self.rules[*i];
                if r.rule.effect == Effect::Forbid || !covers_role(&r.rule, role) {
                    return None;
                }
                r.rule
                    .require
                    .as_ref()
                    .map(|q| (q, r.rule.id.as_str(), &r.source, r.rule.mode == Mode::Audit))
            }
        })
    }

    /// Guardrail violations that do not depend on placement (licence, family, size …).
    pub fn check_static(
        &self,
        dp: &DevicePolicy,
        role: Role,
        model: &Model,
        artifact: &Artifact,
        quality: f64,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        for (i, r) in self.applied_rules(dp) {
            if r.rule.effect == Effect::Forbid
                && covers_role(&r.rule, role)
                && selector_hits(r.rule.models.as_ref(), model, artifact)
            {
                out.push(Violation {
                    rule: r.rule.id.clone(),
                    source: r.source.to_string(),
                    constraint: "forbid".into(),
                    message: format!(
                        "forbidden by `{}`{}",
                        r.rule.id,
                        r.rule
                            .description
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ),
                    audit: r.rule.mode == Mode::Audit,
                });
                let _ = i;
            }
        }
        let min_ctx = self.min_context(dp, role);
        for (req, rule, source, audit) in self.requires(dp, role) {
            let mut v = |constraint: &str, message: String| {
                out.push(Violation {
                    rule: rule.to_owned(),
                    source: source.to_string(),
                    constraint: format!("require.{constraint}"),
                    message,
                    audit,
                });
            };
            if let Some(l) = &req.licenses
                && !l.iter().any(|x| x.eq_ignore_ascii_case(&model.license))
            {
                v(
                    "licenses",
                    format!("license `{}` is not in [{}]", model.license, l.join(", ")),
                );
            }
            if let Some(f) = &req.families
                && !f.iter().any(|x| x == &model.family)
            {
                v(
                    "families",
                    format!("family `{}` is not in [{}]", model.family, f.join(", ")),
                );
            }
            if let Some(t) = &req.tasks {
                let missing: Vec<&str> = t
                    .iter()
                    .filter(|t| !model.has_task(**t))
                    .map(|t| t.as_str())
                    .collect();
                if !missing.is_empty() {
                    v(
                        "tasks",
                        format!("model lacks task(s) [{}]", missing.join(", ")),
                    );
                }
            }
            if let Some(max) = req.max_params_b
                && model.params_b() > max
            {
                v(
                    "max_params_b",
                    format!("{:.1}B parameters > {max}B", model.params_b()),
                );
            }
            if let Some(q) = &req.quantizations
                && !q.iter().any(|x| x.eq_ignore_ascii_case(&artifact.quant))
            {
                v(
                    "quantizations",
                    format!(
                        "quantization `{}` is not in [{}]",
                        artifact.quant,
                        q.join(", ")
                    ),
                );
            }
            if let Some(mq) = req.min_quality
                && quality < mq
            {
                v("min_quality", format!("quality {quality:.3} < {mq}"));
            }
            if let Some(c) = req.min_context_tokens
                && role != Role::Embedding
                && model.architecture.context_max < c
            {
                v(
                    "min_context_tokens",
                    format!("context up to {} < {c}", model.architecture.context_max),
                );
            }
        }
        if role != Role::Embedding
            && model.architecture.context_max < min_ctx
            && !out
                .iter()
                .any(|x| x.constraint == "require.min_context_tokens")
        {
            out.push(Violation {
                rule: "builtin".into(),
                source: "fleetfit".into(),
                constraint: "require.min_context_tokens".into(),
                message: format!(
                    "context up to {} < {min_ctx}",
                    model.architecture.context_max
                ),
                audit: false,
            });
        }
        out
    }

    /// Guardrail misses that need the placement (speed, backend), without formatting anything:
    /// the planner checks many placements per device and renders only the few it reports.
    pub fn placed_misses<'a>(
        &'a self,
        dp: &'a DevicePolicy,
        role: Role,
        placed: PlacedFacts,
    ) -> impl Iterator<Item = PlacedMiss<'a>> + 'a {
        self.requires(dp, role)
            .flat_map(move |(req, rule, source, audit)| {
                let speed = req
                    .min_tokens_per_second
                    .filter(|min| placed.tokens_per_second < *min)
                    .map(|min| PlacedMiss {
                        rule,
                        source,
                        check: PlacedCheck::Speed { min },
                        audit,
                        placed,
                    });
                let backend = req
                    .backends
                    .as_deref()
                    .filter(|b| !b.contains(&placed.backend))
                    .map(|allowed| PlacedMiss {
                        rule,
                        source,
                        check: PlacedCheck::Backend { allowed },
                        audit,
                        placed,
                    });
                speed.into_iter().chain(backend)
            })
    }

    /// Guardrail violations that need the placement (speed, backend).
    pub fn check_placed(
        &self,
        dp: &DevicePolicy,
        role: Role,
        placed: &PlacedFacts,
    ) -> Vec<Violation> {
        self.placed_misses(dp, role, *placed)
            .map(|m| m.to_violation())
            .collect()
    }

    /// The rules that applied (ids and sources), for `because`.
    pub fn applied_rules<'a>(
        &'a self,
        dp: &'a DevicePolicy,
    ) -> impl Iterator<Item = (usize, &'a CompiledRule)> + 'a {
        dp.applied.iter().filter_map(|a| match a {
            Applied::Rule(i) => Some((*i, &self.rules[*i])),
            Applied::Defaults(_) => None,
        })
    }
}

/// Whether a rule covers a role (`for_roles`, all when absent).
pub fn covers_role(rule: &Rule, role: Role) -> bool {
    rule.for_roles.as_ref().is_none_or(|r| r.contains(&role))
}

fn selector_hits(sel: Option<&ModelSelector>, model: &Model, artifact: &Artifact) -> bool {
    let Some(s) = sel else { return true };
    (s.ids.is_empty() || s.ids.contains(&model.id))
        && (s.families.is_empty() || s.families.contains(&model.family))
        && (s.licenses.is_empty()
            || s.licenses
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&model.license)))
        && (s.tasks.is_empty() || s.tasks.iter().any(|t| model.has_task(*t)))
        && (s.quants.is_empty()
            || s.quants
                .iter()
                .any(|q| q.eq_ignore_ascii_case(&artifact.quant)))
        && s.min_params_b.is_none_or(|m| model.params_b() >= m)
}

/// Whether a `match:` holds for a device (absent: every device).
pub fn matches_device(m: Option<&Match>, d: &DeviceProfile) -> bool {
    let Some(m) = m else { return true };
    for (k, want) in &m.labels {
        match d.labels.get(k) {
            Some(v) if want.accepts(v) => {}
            _ => return false,
        }
    }
    let Some(h) = &m.hardware else { return true };
    let gib = d.memory.total_bytes as f64 / (1u64 << 30) as f64;
    let ci = contains_ignore_case;
    (h.gpu_vendors.is_empty() || d.gpus.iter().any(|g| h.gpu_vendors.contains(&g.vendor)))
        && (h.gpu_names.is_empty()
            || d.gpus
                .iter()
                .any(|g| h.gpu_names.iter().any(|n| ci(&g.name, n))))
        && h.min_gpu_count.is_none_or(|n| d.gpus.len() >= n as usize)
        && h.min_memory_gib.is_none_or(|m| gib >= m)
        && h.max_memory_gib.is_none_or(|m| gib <= m)
        && h.unified_memory
            .is_none_or(|u| d.gpus.iter().any(|g| g.unified) == u)
        && h.npu.is_none_or(|n| d.npus.is_empty() != n)
        && (h.npu_vendors.is_empty() || d.npus.iter().any(|n| h.npu_vendors.contains(&n.vendor)))
        && (h.cpu_arch.is_empty() || h.cpu_arch.iter().any(|a| a == &d.cpu.arch))
        && (h.os.is_empty() || h.os.iter().any(|o| o == &d.os.kind))
        && (h.classes.is_empty()
            || d.class
                .as_deref()
                .is_some_and(|c| h.classes.iter().any(|x| c.starts_with(x.as_str()))))
}

/// ASCII case-insensitive substring test, without allocating.
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// The settings part of a rule or defaults block.
struct SettingsView<'a> {
    roles: Option<&'a Vec<Role>>,
    objective: Option<Objective>,
    memory: Option<&'a MemorySettings>,
    quantization: Option<&'a QuantSettings>,
    context: Option<&'a ContextSettings>,
    runtime: Option<&'a RuntimeOverrides>,
}

impl<'a> SettingsView<'a> {
    fn from_defaults(d: &'a Defaults) -> Self {
        SettingsView {
            roles: d.roles.as_ref(),
            objective: d.objective,
            memory: d.memory.as_ref(),
            quantization: d.quantization.as_ref(),
            context: d.context.as_ref(),
            runtime: d.runtime.as_ref(),
        }
    }

    fn from_rule(r: &'a Rule) -> Self {
        SettingsView {
            roles: r.roles.as_ref(),
            objective: r.objective,
            memory: r.memory.as_ref(),
            quantization: r.quantization.as_ref(),
            context: r.context.as_ref(),
            runtime: r.runtime.as_ref(),
        }
    }
}

fn apply_settings(s: &mut EffectiveSettings, v: &SettingsView<'_>, rule: &str, source: &Source) {
    if let Some(r) = v.roles {
        s.roles.set(r.clone(), rule, source);
    }
    if let Some(o) = v.objective {
        s.objective.set(o, rule, source);
    }
    if let Some(m) = v.memory {
        s.headroom_pct.set(m.headroom_pct, rule, source);
    }
    if let Some(q) = v.quantization {
        s.prefer.set(
            q.prefer
                .iter()
                .map(|x| crate::catalog::quant::normalize(x))
                .collect(),
            rule,
            source,
        );
    }
    if let Some(c) = v.context {
        s.context_target.set(c.target_tokens, rule, source);
    }
    if let Some(k) = v.runtime.and_then(|r| r.kv_cache_type) {
        s.kv_type.set(k, rule, source);
    }
}
