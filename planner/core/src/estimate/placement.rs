//! Fitting an artifact onto a device: which backend, how many layers on the GPU, how much of
//! each memory pool it takes, and how fast it decodes. Memory already taken by other roles on
//! the same device is passed in, so a chat and an embedding model share the device honestly.

use super::speed::{
    bandwidth_efficiency, bytes_per_token, per_layer_latency_secs, tokens_per_second,
};
use super::{
    Backend, MemoryEstimate, ModelShape, RuntimeSettings, compute_buffer_bytes, estimate_memory,
    kv_cache_bytes, output_buffer_bytes,
};
use crate::catalog::ArtifactFormat;
use crate::hardware::{gpu_backend, gpu_bandwidth_gbps, system_bandwidth_gbps};
use crate::profile::{DeviceProfile, NpuVendor};
use crate::units::Bytes;
use serde::Serialize;
use std::sync::Arc;

/// One way to run models on a device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub backend: Backend,
    /// Indices into `profile.gpus` (discrete GPUs used together, or the one unified GPU).
    pub gpus: Vec<usize>,
    /// The GPU memory is system memory.
    pub unified: bool,
    /// Usable capacity of each GPU in `gpus` (discrete only).
    pub gpu_capacity: Vec<u64>,
    /// For unified GPUs: the GPU-usable limit of system memory.
    pub unified_limit: Option<u64>,
    pub npu: Option<NpuVendor>,
    pub bandwidth_gbps: f64,
    /// Human label: `1× NVIDIA GeForce RTX 4090`.
    pub label: String,
    /// Name of the memory pool this target draws from, for messages.
    pub pool: Arc<str>,
}

/// What a device offers, derived once per device from its profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceResources {
    /// System memory the planner may use (available now).
    pub system_capacity: u64,
    pub system_total: u64,
    pub system_bandwidth_gbps: f64,
    /// Preferred first.
    pub targets: Vec<Target>,
}

impl DeviceResources {
    /// Derives targets from a profile: discrete GPUs of one vendor used together, each unified
    /// GPU, each NPU kind, and the CPU.
    pub fn from_profile(p: &DeviceProfile) -> DeviceResources {
        let system_capacity = p.memory.available_bytes.min(p.memory.total_bytes);
        let system_bw = system_bandwidth_gbps(p);
        let mut targets = Vec::new();
        let mut vendors: Vec<_> = p.gpus.iter().map(|g| g.vendor).collect();
        vendors.sort();
        vendors.dedup();
        for vendor in vendors {
            let Some(backend) = gpu_backend(vendor) else {
                continue;
            };
            let discrete: Vec<usize> = p
                .gpus
                .iter()
                .enumerate()
                .filter(|(_, g)| {
                    g.vendor == vendor && !g.unified && g.memory_total_bytes.is_some_and(|t| t > 0)
                })
                .map(|(i, _)| i)
                .collect();
            if !discrete.is_empty() {
                let caps: Vec<u64> = discrete
                    .iter()
                    .map(|&i| {
                        let g = &p.gpus[i];
                        g.memory_free_bytes.or(g.memory_total_bytes).unwrap_or(0)
                    })
                    .collect();
                let bw = discrete
                    .iter()
                    .filter_map(|&i| gpu_bandwidth_gbps(&p.gpus[i]))
                    .fold(f64::INFINITY, f64::min);
                let bw = if bw.is_finite() { bw } else { system_bw * 4.0 };
                targets.push(with_pool(Target {
                    backend,
                    label: format!("{}× {}", discrete.len(), p.gpus[discrete[0]].name),
                    gpus: discrete,
                    unified: false,
                    gpu_capacity: caps,
                    unified_limit: None,
                    npu: None,
                    bandwidth_gbps: bw,
                    pool: Arc::from(""),
                }));
            }
            for (i, g) in p.gpus.iter().enumerate() {
                let unified = g.unified || (g.vendor == vendor && g.memory_total_bytes.is_none());
                if g.vendor != vendor || !unified {
                    continue;
                }
                // The probe's free figure for a unified GPU already accounts for system memory
                // (AMD APUs: carve-out + min(GTT, MemAvailable)); a BIOS carve-out is not part
                // of MemTotal, so it must not be clamped by the system's available memory. A
                // bare limit (Metal's working set) is clamped; no figure means system memory.
                let limit = match (g.memory_free_bytes, g.memory_total_bytes) {
                    (Some(free), _) => free,
                    (None, Some(total)) => total.min(system_capacity),
                    (None, None) => system_capacity,
                };
                targets.push(with_pool(Target {
                    backend,
                    gpus: vec![i],
                    unified: true,
                    gpu_capacity: Vec::new(),
                    unified_limit: Some(limit),
                    npu: None,
                    bandwidth_gbps: gpu_bandwidth_gbps(g).unwrap_or(system_bw),
                    label: g.name.clone(),
                    pool: Arc::from(""),
                }));
            }
        }
        let mut npus: Vec<_> = p.npus.iter().map(|n| (n.vendor, n.name.clone())).collect();
        npus.sort();
        npus.dedup_by(|a, b| a.0 == b.0);
        for (vendor, name) in npus {
            targets.push(with_pool(Target {
                backend: Backend::Npu,
                gpus: Vec::new(),
                unified: true,
                gpu_capacity: Vec::new(),
                unified_limit: Some(system_capacity),
                npu: Some(vendor),
                bandwidth_gbps: system_bw,
                label: name,
                pool: Arc::from(""),
            }));
        }
        targets.push(with_pool(Target {
            backend: Backend::Cpu,
            gpus: Vec::new(),
            unified: true,
            gpu_capacity: Vec::new(),
            unified_limit: Some(system_capacity),
            npu: None,
            bandwidth_gbps: system_bw,
            label: format!("CPU ({} threads)", p.cpu.threads),
            pool: Arc::from(""),
        }));
        DeviceResources {
            system_capacity,
            system_total: p.memory.total_bytes,
            system_bandwidth_gbps: system_bw,
            targets,
        }
    }
}

/// Memory already committed on the device (by earlier roles).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    pub system: u64,
    /// Per `profile.gpus` index.
    pub gpu: Vec<u64>,
}

impl Committed {
    fn gpu(&self, i: usize) -> u64 {
        self.gpu.get(i).copied().unwrap_or(0)
    }

    /// Adds a fit's use.
    pub fn add(&mut self, fit: &Fit) {
        self.system += fit.system_bytes;
        for (i, b) in &fit.gpu_bytes {
            if self.gpu.len() <= *i {
                self.gpu.resize(*i + 1, 0);
            }
            self.gpu[*i] += b;
        }
    }
}

/// A successful placement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fit {
    pub backend: Backend,
    /// Repeating layers on the GPU (all of them for full offload; 0 on CPU/NPU).
    pub gpu_layers: u32,
    pub gpus: Vec<usize>,
    pub estimate: MemoryEstimate,
    /// Bytes on each GPU (discrete) used by this model.
    pub gpu_bytes: Vec<(usize, u64)>,
    /// Bytes of system memory used (for unified targets: everything).
    pub system_bytes: u64,
    pub tokens_per_second: f64,
    /// The tightest pool after placing: (name, used incl. committed, capacity).
    pub tightest_pool: (Arc<str>, u64, u64),
}

impl Fit {
    /// Share of the tightest pool left free, 0..1.
    pub fn free_share(&self) -> f64 {
        let (_, used, cap) = &self.tightest_pool;
        if *cap == 0 {
            0.0
        } else {
            1.0 - (*used as f64 / *cap as f64).min(1.0)
        }
    }
}

/// Why nothing fit: the nearest miss over all targets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Miss {
    pub pool: Arc<str>,
    pub backend: Backend,
    pub required: u64,
    /// Budget after headroom and memory taken by other roles.
    pub available: u64,
}

impl Miss {
    /// How far over budget, as a ratio (1.2 = 20 % too big).
    pub fn overshoot(&self) -> f64 {
        self.required as f64 / self.available.max(1) as f64
    }
}

/// What to fit.
#[derive(Clone, Copy, Debug)]
pub struct FitRequest<'a> {
    pub shape: &'a ModelShape,
    pub format: ArtifactFormat,
    pub npu: Option<NpuVendor>,
    pub weights: Bytes,
    pub context_tokens: u32,
    pub kv_type: super::KvType,
    /// Share of each pool to keep free (0.10 = 10 %).
    pub headroom: f64,
    /// Whether a model may be split between a discrete GPU and the CPU.
    pub allow_partial_offload: bool,
}

fn budget(capacity: u64, headroom: f64, committed: u64) -> u64 {
    (((capacity as f64) * (1.0 - headroom)).max(0.0) as u64).saturating_sub(committed)
}

fn settings(req: &FitRequest<'_>, backend: Backend) -> RuntimeSettings {
    let mut s = RuntimeSettings::llama_cpp_defaults(req.context_tokens, backend);
    s.kv_type = req.kv_type;
    if req.kv_type != super::KvType::F16 {
        s.flash_attn = true;
    }
    s
}

/// Places the artifact on the fastest target it fits; else returns the nearest miss.
pub fn fit(
    req: &FitRequest<'_>,
    res: &DeviceResources,
    committed: &Committed,
) -> Result<Fit, Miss> {
    let mut best: Option<Fit> = None;
    let mut nearest: Option<Miss> = None;
    for t in &res.targets {
        let usable = match (req.format, t.backend) {
            (ArtifactFormat::Openvino | ArtifactFormat::Onnx, Backend::Npu) => req.npu == t.npu,
            (ArtifactFormat::Openvino | ArtifactFormat::Onnx, _) | (_, Backend::Npu) => false,
            (ArtifactFormat::Safetensors, b) => {
                matches!(b, Backend::Cuda | Backend::Metal | Backend::Cpu)
            }
            (ArtifactFormat::Gguf, _) => true,
        };
        if !usable {
            continue;
        }
        let outcome = if t.unified {
            fit_unified(req, res, t, committed)
        } else {
            fit_discrete(req, res, t, committed)
        };
        match outcome {
            Ok(f) => {
                if best
                    .as_ref()
                    .is_none_or(|b| f.tokens_per_second > b.tokens_per_second)
                {
                    best = Some(f);
                }
            }
            Err(m) => {
                if nearest
                    .as_ref()
                    .is_none_or(|n| m.overshoot() < n.overshoot())
                {
                    nearest = Some(m);
                }
            }
        }
    }
    best.ok_or_else(|| {
        nearest.unwrap_or(Miss {
            pool: "no usable backend".into(),
            backend: Backend::Cpu,
            required: req.weights.0,
            available: 0,
        })
    })
}

fn speed_full(req: &FitRequest<'_>, est: &MemoryEstimate, bw: f64, backend: Backend) -> f64 {
    let embd = req.shape.token_embd_bytes(est.weights_bytes);
    let bpt = bytes_per_token(
        est.weights_bytes,
        embd,
        req.shape.params_total,
        req.shape.params_active,
        est.kv_cache_bytes,
    );
    tokens_per_second(bpt, bw, backend, req.shape.layers)
}

fn fit_unified(
    req: &FitRequest<'_>,
    res: &DeviceResources,
    t: &Target,
    committed: &Committed,
) -> Result<Fit, Miss> {
    let s = settings(req, t.backend);
    let est = estimate_memory(req.shape, req.weights, &s, t.backend);
    let cap = t.unified_limit.unwrap_or(res.system_capacity);
    let avail = budget(cap, req.headroom, committed.system);
    if est.total_bytes > avail {
        return Err(Miss {
            pool: Arc::clone(&t.pool),
            backend: t.backend,
            required: est.total_bytes,
            available: avail,
        });
    }
    Ok(Fit {
        backend: t.backend,
        gpu_layers: if t.gpus.is_empty() { 0 } else { t_layers(req) },
        gpus: t.gpus.clone(),
        tokens_per_second: speed_full(req, &est, t.bandwidth_gbps, t.backend),
        estimate: est,
        gpu_bytes: Vec::new(),
        system_bytes: est.total_bytes,
        tightest_pool: (Arc::clone(&t.pool), committed.system + est.total_bytes, cap),
    })
}

fn t_layers(req: &FitRequest<'_>) -> u32 {
    req.shape.layers
}

/// Names the target's pool once, when the target is built.
fn with_pool(mut t: Target) -> Target {
    t.pool = Arc::from(pool_name(&t));
    t
}

fn pool_name(t: &Target) -> String {
    match t.backend {
        Backend::Cpu => "system memory".into(),
        Backend::Npu => format!(
            "system memory ({} NPU)",
            t.npu.map_or("", NpuVendor::as_str)
        ),
        _ if t.unified => format!("unified memory ({})", t.label),
        _ => format!("GPU memory ({})", t.label),
    }
}

/// `GPU memory (NVIDIA H100 80GB HBM3, GPU 0)` or `… GPUs 0-3`.
fn gpu_pool_name(t: &Target, gpus: &[usize]) -> String {
    let name = t
        .label
        .split_once("× ")
        .map_or(t.label.as_str(), |(_, n)| n);
    match gpus {
        [one] => format!("GPU memory ({name}, GPU {one})"),
        many => format!(
            "GPU memory ({name}, GPUs {})",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn fit_discrete(
    req: &FitRequest<'_>,
    res: &DeviceResources,
    t: &Target,
    committed: &Committed,
) -> Result<Fit, Miss> {
    let s = settings(req, t.backend);
    let shape = req.shape;
    let weights = req.weights.0.min(super::SANE_MAX_BYTES);
    let embd = shape.token_embd_bytes(weights);
    // llama.cpp keeps the input embedding table in host memory; with tied embeddings the
    // output layer is a duplicate of it on the GPU.
    let gpu_weights = if shape.tied_embeddings {
        weights
    } else {
        weights - embd.min(weights)
    };
    let kv = kv_cache_bytes(shape, &s).0;
    let compute = compute_buffer_bytes(shape, &s).0;
    let overhead = t.backend.runtime_overhead().0;
    let host_out = output_buffer_bytes(shape).0;
    let sys_budget = budget(res.system_capacity, req.headroom, committed.system);
    let est_full = estimate_memory(shape, req.weights, &s, t.backend);
    // GPUs by remaining budget, largest first: a model goes on as few GPUs as hold it.
    let mut order: Vec<(usize, u64, u64)> = t
        .gpus
        .iter()
        .zip(&t.gpu_capacity)
        .map(|(&i, &cap)| (i, budget(cap, req.headroom, committed.gpu(i)), cap))
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let host_full = embd + host_out;
    for n in 1..=order.len() {
        let chosen = &order[..n];
        let fixed_gpu = n as u64 * (compute + overhead);
        let full_need = gpu_weights + kv + fixed_gpu;
        let total_budget: u64 = chosen.iter().map(|g| g.1).sum();
        if full_need > total_budget || host_full > sys_budget {
            continue;
        }
        let gpus: Vec<usize> = chosen.iter().map(|g| g.0).collect();
        let budgets: Vec<u64> = chosen.iter().map(|g| g.1).collect();
        let gpu_bytes = spread(full_need, &gpus, &budgets);
        let tight = gpu_bytes
            .iter()
            .zip(chosen)
            .map(|((i, b), g)| (b + committed.gpu(*i), g.2))
            .max_by(|a, b| {
                (a.0 as f64 / a.1.max(1) as f64).total_cmp(&(b.0 as f64 / b.1.max(1) as f64))
            })
            .map_or_else(
                || (Arc::clone(&t.pool), full_need, total_budget),
                |(u, c)| (Arc::from(gpu_pool_name(t, &gpus)), u, c),
            );
        let extra = (n as u64 - 1) * (compute + overhead);
        return Ok(Fit {
            backend: t.backend,
            gpu_layers: shape.layers,
            gpus,
            tokens_per_second: speed_full(req, &est_full, t.bandwidth_gbps, t.backend),
            estimate: MemoryEstimate {
                overhead_bytes: est_full.overhead_bytes + extra,
                total_bytes: est_full.total_bytes + extra,
                ..est_full
            },
            gpu_bytes,
            system_bytes: host_full,
            tightest_pool: tight,
        });
    }
    let n = t.gpus.len() as u64;
    let budgets: Vec<u64> = t
        .gpus
        .iter()
        .zip(&t.gpu_capacity)
        .map(|(&i, &cap)| budget(cap, req.headroom, committed.gpu(i)))
        .collect();
    let total_budget: u64 = budgets.iter().sum();
    let fixed_gpu = n * (compute + overhead);
    let full_need = gpu_weights + kv + fixed_gpu;
    // Partial offload: as many whole layers as fit on the GPU(s), the rest on the CPU.
    let layer_w = shape.layer_bytes_avg(weights);
    let kv_layer = kv / u64::from(shape.layers.max(1));
    let per_layer = layer_w + kv_layer;
    let room = total_budget.saturating_sub(fixed_gpu);
    let k = (room / per_layer.max(1)).min(u64::from(shape.layers)) as u32;
    let miss = Miss {
        pool: Arc::clone(&t.pool),
        backend: t.backend,
        required: full_need,
        available: total_budget,
    };
    if k == 0 || k >= shape.layers || !req.allow_partial_offload {
        return Err(miss);
    }
    let cpu_layers = u64::from(shape.layers - k);
    let output_w = weights.saturating_sub(embd + layer_w * u64::from(shape.layers));
    let cpu_s = RuntimeSettings {
        flash_attn: s.flash_attn,
        ..s
    };
    let host_need =
        embd + output_w + cpu_layers * per_layer + compute_buffer_bytes(shape, &cpu_s).0 + host_out;
    if host_need > sys_budget {
        return Err(Miss {
            pool: "system memory (layers left on the CPU)".into(),
            backend: t.backend,
            required: host_need,
            available: sys_budget,
        });
    }
    let gpu_need = fixed_gpu + u64::from(k) * per_layer;
    let gpu_bytes = spread(gpu_need, &t.gpus, &budgets);
    // Time per token: GPU layers at GPU bandwidth, CPU layers (and output) at system bandwidth.
    let active = shape.params_active as f64 / shape.params_total.max(1) as f64;
    let gpu_read = (u64::from(k) * layer_w) as f64 * active + (u64::from(k) * kv_layer / 2) as f64;
    let cpu_read =
        ((cpu_layers * layer_w + output_w) as f64) * active + (cpu_layers * kv_layer / 2) as f64;
    let secs = gpu_read / (t.bandwidth_gbps * 1e9 * bandwidth_efficiency(t.backend))
        + cpu_read / (res.system_bandwidth_gbps * 1e9 * bandwidth_efficiency(Backend::Cpu))
        + f64::from(k) * per_layer_latency_secs(t.backend)
        + (cpu_layers as f64) * per_layer_latency_secs(Backend::Cpu);
    let used: Vec<(usize, u64)> = gpu_bytes
        .iter()
        .map(|(i, b)| (*i, b + committed.gpu(*i)))
        .collect();
    let sys_used = committed.system + host_need;
    let sys_share = sys_used as f64 / res.system_capacity.max(1) as f64;
    let tight = tightest(&used, t)
        .filter(|(_, u, c)| *u as f64 / (*c).max(1) as f64 >= sys_share)
        .unwrap_or(("system memory".into(), sys_used, res.system_capacity));
    Ok(Fit {
        backend: t.backend,
        gpu_layers: k,
        gpus: t.gpus.clone(),
        estimate: est_full,
        gpu_bytes,
        system_bytes: host_need,
        tokens_per_second: if secs > 0.0 { 1.0 / secs } else { 0.0 },
        tightest_pool: tight,
    })
}

/// Spreads `need` bytes over GPUs in proportion to their budgets.
fn spread(need: u64, gpus: &[usize], budgets: &[u64]) -> Vec<(usize, u64)> {
    let total: u64 = budgets.iter().sum();
    gpus.iter()
        .zip(budgets)
        .map(|(&i, &b)| {
            (
                i,
                if total == 0 {
                    0
                } else {
                    (u128::from(need) * u128::from(b) / u128::from(total)) as u64
                },
            )
        })
        .collect()
}

fn tightest(used: &[(usize, u64)], t: &Target) -> Option<(Arc<str>, u64, u64)> {
    used.iter()
        .zip(&t.gpu_capacity)
        .map(|((_, u), c)| (*u, *c))
        .max_by(|a, b| {
            (a.0 as f64 / a.1.max(1) as f64).total_cmp(&(b.0 as f64 / b.1.max(1) as f64))
        })
        .map(|(u, c)| (Arc::clone(&t.pool), u, c))
}
