//! Compute (graph) buffer size: the scratch memory llama.cpp reserves for the largest ubatch.
//!
//! The graph allocator reuses memory, so the buffer is the peak of what is alive at one time:
//! the attention scores (`n_kv × n_tokens × n_head` f32 without flash attention), the KQ mask,
//! the FFN activations and the logits (`n_vocab × n_tokens` f32), plus a few `n_tokens × n_embd`
//! residual tensors. The constants were fitted to llama.cpp's reported
//! `CPU compute buffer size` in `tests/fixtures/llamacpp/`.

use super::kv_cache::kv_cells;
use super::{ModelShape, RuntimeSettings};
use crate::units::Bytes;

/// Compute buffer bytes for one context on one device.
pub fn compute_buffer_bytes(shape: &ModelShape, s: &RuntimeSettings) -> Bytes {
    let (n_kv, _) = kv_cells(shape, s);
    let n_tokens = u64::from(s.ubatch.min(s.batch).min(s.context_tokens.max(1)).max(1));
    let hidden = u64::from(shape.hidden_size);
    let heads = u64::from(shape.heads);
    let f32b = 4u64;

    let mask = n_kv * n_tokens * if s.flash_attn { 2 } else { f32b };
    let attention = if s.flash_attn {
        // Flash attention never materializes KQ; it keeps Q, the output and per-row state.
        n_tokens * heads * u64::from(shape.head_dim_v.max(shape.head_dim_k)) * f32b * 2
    } else {
        // KQ scores, then softmax(KQ) while KQ is still alive.
        n_kv * n_tokens * heads * f32b * 2
    };
    let ffn_width = match shape.experts {
        Some((total, active, expert_ffn)) => {
            u64::from(expert_ffn) * u64::from(active) + u64::from(total)
        }
        None => u64::from(shape.ffn_size),
    };
    let ffn = n_tokens * ffn_width * f32b * 3;
    let logits = if shape.embedding {
        0
    } else {
        n_tokens * u64::from(shape.vocab_size) * f32b
    };
    let residual = n_tokens * hidden * f32b * 4;
    Bytes((mask + attention).max(ffn).max(logits) + residual)
}
