//! Memory and speed estimates for running one model artifact: weights (exact artifact bytes),
//! KV cache (GQA, sliding window, KV quantization), compute buffers, runtime overhead; and
//! decode tokens/s from memory bandwidth. `placement` fits an estimate onto a device's memory
//! pools, with partial GPU offload.
//!
//! The formulas follow what llama.cpp allocates (see the README, "How estimates are computed",
//! and `tests/fixtures/llamacpp/` for the measured anchors).

mod compute;
mod kv_cache;
pub mod placement;
mod shape;
pub mod speed;

pub use compute::compute_buffer_bytes;
pub use kv_cache::{KvType, kv_cache_bytes, kv_cache_bytes_per_layer};
pub use shape::ModelShape;

use crate::units::{Bytes, MIB};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Ceiling for every byte figure (1 EiB): shapes read from an untrusted GGUF header can be
/// absurd, and sums of a few clamped figures then still cannot overflow a `u64`.
pub const SANE_MAX_BYTES: u64 = 1 << 60;

/// The runtime backend a placement uses.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cuda,
    Rocm,
    Metal,
    Vulkan,
    Cpu,
    Npu,
}

impl Backend {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cuda => "cuda",
            Backend::Rocm => "rocm",
            Backend::Metal => "metal",
            Backend::Vulkan => "vulkan",
            Backend::Cpu => "cpu",
            Backend::Npu => "npu",
        }
    }

    /// Memory the runtime itself takes on the device before any model tensor: the CUDA/HIP
    /// context, Metal's minimum, an NPU runtime. Sources: Ollama's `MinimumMemory` (457 MiB
    /// CUDA/ROCm, 512 MiB Metal), gguf-parser's 250 MiB VRAM platform footprint for Vulkan.
    pub fn runtime_overhead(self) -> Bytes {
        Bytes(match self {
            Backend::Cuda | Backend::Rocm => 457 * MIB,
            Backend::Metal => 512 * MIB,
            Backend::Vulkan => 250 * MIB,
            Backend::Npu => 768 * MIB,
            Backend::Cpu => 0,
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runtime settings that change memory use (llama.cpp's defaults when not given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuntimeSettings {
    pub context_tokens: u32,
    pub kv_type: KvType,
    pub flash_attn: bool,
    pub batch: u32,
    pub ubatch: u32,
}

impl RuntimeSettings {
    /// llama.cpp defaults (`-b 2048 -ub 512`, f16 KV) at this context. `-fa auto` resolves to
    /// on wherever the backend supports flash attention, which the CPU, CUDA, ROCm, Metal and
    /// Vulkan backends all do; NPU runtimes have their own attention kernels.
    pub fn llama_cpp_defaults(context_tokens: u32, backend: Backend) -> RuntimeSettings {
        RuntimeSettings {
            context_tokens,
            kv_type: KvType::F16,
            flash_attn: backend != Backend::Npu,
            batch: 2048,
            ubatch: 512,
        }
    }
}

/// The ★ estimate JSON: where the memory goes for one artifact at one context.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct MemoryEstimate {
    pub weights_bytes: u64,
    pub kv_cache_bytes: u64,
    pub compute_bytes: u64,
    pub overhead_bytes: u64,
    pub total_bytes: u64,
    pub context_tokens: u32,
}

/// Estimates memory for `shape` with `weights` bytes of tensors, on `backend`.
///
/// `overhead` is llama.cpp's output (logits) buffer plus the backend's runtime context.
pub fn estimate_memory(
    shape: &ModelShape,
    weights: Bytes,
    settings: &RuntimeSettings,
    backend: Backend,
) -> MemoryEstimate {
    let weights = Bytes(weights.0.min(SANE_MAX_BYTES));
    let kv = kv_cache_bytes(shape, settings);
    let compute = compute_buffer_bytes(shape, settings);
    let overhead = output_buffer_bytes(shape) + backend.runtime_overhead();
    MemoryEstimate {
        weights_bytes: weights.0,
        kv_cache_bytes: kv.0,
        compute_bytes: compute.0,
        overhead_bytes: overhead.0,
        total_bytes: weights.0 + kv.0 + compute.0 + overhead.0,
        context_tokens: settings.context_tokens,
    }
}

/// llama.cpp's host output buffer: the logits of one sequence, `n_vocab × 4` bytes
/// (embedding models: one pooled `n_embd` vector).
pub fn output_buffer_bytes(shape: &ModelShape) -> Bytes {
    if shape.embedding {
        Bytes(u64::from(shape.hidden_size) * 4)
    } else {
        Bytes(u64::from(shape.vocab_size) * 4)
    }
}
