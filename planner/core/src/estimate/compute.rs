//! Compute (graph) buffer size: the scratch memory llama.cpp reserves for the largest ubatch.
//!
//! The graph allocator reuses memory, so the buffer is the peak of two stages, fitted to what
//! llama.cpp 0c1e570 reports as `CPU compute buffer size` for six architectures at 512–131072
//! context (`tests/fixtures/llamacpp/`):
//!
//! - the output stage: logits `n_vocab × n_ubatch` f32 plus two `n_ubatch × n_embd` f32 tensors;
//! - without flash attention, the attention stage: the scores `n_kv × n_ubatch × n_head` f32
//!   (softmax runs in place), the f32 KQ mask `n_kv × n_ubatch`, and `n_ubatch × (n_ff + 2·n_embd)`
//!   f32 of activations. With flash attention the scores are never materialized.
//!
//! Embedding models have no logits; their peak is the FFN activations.

use super::kv_cache::kv_cells;
use super::{ModelShape, RuntimeSettings};
use crate::units::Bytes;

const F32: f64 = 4.0;

/// Compute buffer bytes for one context on one device. Computed in `f64` and converted with a
/// saturating cast, so absurd shapes from a hostile GGUF header cannot overflow.
pub fn compute_buffer_bytes(shape: &ModelShape, s: &RuntimeSettings) -> Bytes {
    let (n_kv, _) = kv_cells(shape, s);
    let n_kv = n_kv as f64;
    let n_ub = f64::from(s.ubatch.min(s.batch).min(s.context_tokens.max(1)).max(1));
    let hidden = f64::from(shape.hidden_size);
    let ffn = match shape.experts {
        // Routed experts: each token's activations through its active experts, plus the router.
        Some((total, active, expert_ffn)) => {
            f64::from(expert_ffn) * f64::from(active) + f64::from(total)
        }
        None => f64::from(shape.ffn_size),
    };
    let activations = n_ub * (ffn + 2.0 * hidden) * F32;
    let output = if shape.embedding {
        activations
    } else {
        n_ub * f64::from(shape.vocab_size) * F32 + 2.0 * n_ub * hidden * F32
    };
    let attention = if s.flash_attn {
        0.0
    } else {
        n_kv * n_ub * f64::from(shape.heads) * F32 + n_kv * n_ub * F32 + activations
    };
    Bytes((output.max(attention) as u64).min(super::SANE_MAX_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::Backend;

    fn llama8b() -> ModelShape {
        crate::estimate::kv_cache::tests::llama31_8b()
    }

    fn mib(b: Bytes) -> f64 {
        b.0 as f64 / (1u64 << 20) as f64
    }

    #[test]
    fn matches_llama_cpp_for_llama31_8b_on_cpu() {
        // llama.cpp 0c1e570, CPU: 266.5 MiB with flash attention at any context; without it
        // 572.01 MiB at 8192 and 2156.01 MiB at 32768.
        let mut s = RuntimeSettings::llama_cpp_defaults(32768, Backend::Cpu);
        s.flash_attn = true;
        assert!((mib(compute_buffer_bytes(&llama8b(), &s)) - 266.5).abs() < 1.0);
        s.flash_attn = false;
        assert!((mib(compute_buffer_bytes(&llama8b(), &s)) - 2156.01).abs() < 5.0);
        s.context_tokens = 8192;
        assert!((mib(compute_buffer_bytes(&llama8b(), &s)) - 572.01).abs() < 5.0);
    }

    #[test]
    fn absurd_shapes_saturate_instead_of_overflowing() {
        let mut shape = llama8b();
        shape.heads = u32::MAX;
        shape.vocab_size = u32::MAX;
        shape.hidden_size = u32::MAX;
        let mut s = RuntimeSettings::llama_cpp_defaults(u32::MAX, Backend::Cpu);
        s.flash_attn = false;
        s.ubatch = u32::MAX;
        s.batch = u32::MAX;
        assert!(compute_buffer_bytes(&shape, &s).0 > 0);
        shape.layers = u32::MAX;
        assert!(crate::estimate::kv_cache_bytes(&shape, &s).0 > 0);
    }
}
