//! `fleetfit estimate`: memory for one catalog model at one quantization and context, or for a
//! local GGUF file (read through its header only, never the weights).

use crate::Failure;
use crate::inputs::load_catalog;
use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};
use fleetfit_core::Bytes;
use fleetfit_core::catalog::quant;
use fleetfit_core::estimate::{
    Backend, KvType, ModelShape, RuntimeSettings, estimate_memory, kv_cache_bytes,
};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EstimateFormat {
    Text,
    Json,
}

/// on|off.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

/// Backend to estimate for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    Cpu,
    Cuda,
    Rocm,
    Metal,
    Vulkan,
}

/// `fleetfit estimate` arguments.
#[derive(Args, Debug)]
pub struct EstimateArgs {
    /// Catalog model id (e.g. `qwen3-8b`).
    #[arg(required_unless_present = "gguf", conflicts_with = "gguf")]
    pub model: Option<String>,
    /// Quantization of the catalog artifact (e.g. `Q4_K_M`).
    #[arg(long, required_unless_present = "gguf")]
    pub quant: Option<String>,
    /// A local GGUF file: only its header is read.
    #[arg(long, value_name = "FILE")]
    pub gguf: Option<PathBuf>,
    /// Context length in tokens.
    #[arg(long)]
    pub context: u32,
    /// Flash attention (default: on for GPU backends, off on the CPU).
    #[arg(long, value_enum)]
    pub flash_attn: Option<OnOff>,
    /// Logical batch size (llama.cpp `-b`).
    #[arg(long, default_value_t = 2048)]
    pub batch: u32,
    /// Physical batch size (llama.cpp `-ub`).
    #[arg(long, default_value_t = 512)]
    pub ubatch: u32,
    /// KV cache type: f16, q8_0 or q4_0.
    #[arg(long, default_value = "f16")]
    pub kv_type: String,
    /// Backend whose runtime overhead to count.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
    /// Safety margin to add on top of the estimate, in MiB (llama.cpp's `--fit` keeps 1024 MiB
    /// free per device).
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub margin_mib: u64,
    /// GPU memory in GiB: also report how many layers fit (partial offload).
    #[arg(long, value_name = "GIB")]
    pub gpu_memory_gib: Option<f64>,
    /// Catalog directory (default: the embedded catalog).
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = EstimateFormat::Text)]
    pub format: EstimateFormat,
}

#[derive(Serialize)]
struct Output {
    weights_bytes: u64,
    kv_cache_bytes: u64,
    compute_bytes: u64,
    overhead_bytes: u64,
    total_bytes: u64,
    context_tokens: u32,
    /// The `--margin-mib` safety margin, included in `total_bytes`.
    margin_bytes: u64,
    /// For GPU backends: what lives in GPU memory, and what stays in host memory (the token
    /// embedding table and the logits buffer); on the CPU everything is host memory.
    gpu_bytes: u64,
    host_bytes: u64,
    model: String,
    architecture: String,
    backend: String,
    flash_attn: bool,
    kv_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_layers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<u32>,
}

/// Runs the command.
pub fn run(args: &EstimateArgs) -> Result<ExitCode, Failure> {
    let backend = match args.backend {
        BackendArg::Cpu => Backend::Cpu,
        BackendArg::Cuda => Backend::Cuda,
        BackendArg::Rocm => Backend::Rocm,
        BackendArg::Metal => Backend::Metal,
        BackendArg::Vulkan => Backend::Vulkan,
    };
    let kv_type: KvType = args.kv_type.parse().map_err(|e: String| anyhow!(e))?;
    let (shape, weights, name) = if let Some(path) = &args.gguf {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let header = fleetfit_core::gguf::read_header(&mut reader)
            .map_err(|e| anyhow!("`{}` is not a readable GGUF file: {e}", path.display()))?;
        let facts = header
            .model_facts()
            .map_err(|e| anyhow!("`{}`: {e}", path.display()))?;
        let shape = ModelShape::from_gguf(&header, &facts);
        (shape, facts.tensor_data_bytes, path.display().to_string())
    } else {
        let (catalog, _, _) = load_catalog(args.catalog.as_deref())?;
        let id = args.model.as_deref().unwrap_or_default();
        let model = catalog.model(id).ok_or_else(|| {
            let hint = fleetfit_core::catalog::did_you_mean(
                id,
                catalog.models.iter().map(|m| m.id.as_str()),
            );
            anyhow!("no model `{id}` in the catalog{hint}")
        })?;
        let q = quant::normalize(args.quant.as_deref().unwrap_or_default());
        let artifact = model
            .artifacts
            .iter()
            .find(|a| a.quant == q)
            .ok_or_else(|| {
                let have: Vec<&str> = model.artifacts.iter().map(|a| a.quant.as_str()).collect();
                anyhow!(
                    "model `{id}` has no `{q}` artifact: it has {}",
                    have.join(", ")
                )
            })?;
        let shape = ModelShape::from_catalog(
            &model.architecture,
            model.has_task(fleetfit_core::catalog::Task::Embedding),
        );
        (shape, artifact.size_bytes, format!("{id} {q}"))
    };
    let mut settings = RuntimeSettings::llama_cpp_defaults(args.context, backend);
    settings.kv_type = kv_type;
    settings.batch = args.batch;
    settings.ubatch = args.ubatch;
    if let Some(fa) = args.flash_attn {
        settings.flash_attn = fa == OnOff::On;
    }
    let est = estimate_memory(&shape, Bytes(weights), &settings, backend);
    let margin = args.margin_mib.saturating_mul(1 << 20);
    let (gpu_bytes, host_bytes) = if backend == Backend::Cpu {
        (0, est.total_bytes)
    } else {
        let embd = shape.token_embd_bytes(weights);
        let output = fleetfit_core::estimate::output_buffer_bytes(&shape).0;
        // With tied embeddings the output layer is a GPU copy of the table.
        let host = embd + output;
        let gpu = est.total_bytes - host.min(est.total_bytes)
            + if shape.tied_embeddings { embd } else { 0 };
        (gpu, host)
    };
    let gpu_layers = args.gpu_memory_gib.map(|gib| {
        let budget = Bytes::from_gib(gib).0;
        let fixed = est.compute_bytes + est.overhead_bytes + margin;
        let per_layer = shape.layer_bytes_avg(weights)
            + kv_cache_bytes(&shape, &settings).0 / u64::from(shape.layers.max(1));
        let on_gpu = if gpu_bytes > 0 {
            gpu_bytes
        } else {
            est.total_bytes
        };
        if on_gpu + margin <= budget {
            shape.layers
        } else {
            (budget.saturating_sub(fixed) / per_layer.max(1)).min(u64::from(shape.layers)) as u32
        }
    });
    let out = Output {
        weights_bytes: est.weights_bytes,
        kv_cache_bytes: est.kv_cache_bytes,
        compute_bytes: est.compute_bytes,
        overhead_bytes: est.overhead_bytes,
        total_bytes: est.total_bytes + margin,
        context_tokens: est.context_tokens,
        margin_bytes: margin,
        gpu_bytes,
        host_bytes,
        model: name,
        architecture: shape.architecture.clone(),
        backend: backend.as_str().into(),
        flash_attn: settings.flash_attn,
        kv_type: settings.kv_type.to_string(),
        gpu_layers,
        layers: gpu_layers.map(|_| shape.layers),
    };
    match args.format {
        EstimateFormat::Json => {
            let s = serde_json::to_string_pretty(&out).map_err(|e| anyhow!("{e}"))?;
            println!("{s}");
        }
        EstimateFormat::Text => {
            println!(
                "{} ({}), {} context, {} KV, flash attention {}, {}",
                out.model,
                out.architecture,
                out.context_tokens,
                out.kv_type,
                if out.flash_attn { "on" } else { "off" },
                out.backend
            );
            println!("  weights   {:>12}", Bytes(out.weights_bytes).to_string());
            println!("  KV cache  {:>12}", Bytes(out.kv_cache_bytes).to_string());
            println!("  compute   {:>12}", Bytes(out.compute_bytes).to_string());
            println!("  overhead  {:>12}", Bytes(out.overhead_bytes).to_string());
            if out.margin_bytes > 0 {
                println!("  margin    {:>12}", Bytes(out.margin_bytes).to_string());
            }
            println!("  total     {:>12}", Bytes(out.total_bytes).to_string());
            if out.gpu_bytes > 0 {
                println!(
                    "    GPU {} + host {}",
                    Bytes(out.gpu_bytes),
                    Bytes(out.host_bytes)
                );
            }
            if let (Some(k), Some(n)) = (out.gpu_layers, out.layers) {
                println!("  GPU layers that fit: {k} of {n}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
