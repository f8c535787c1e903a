//! KV cache size: per layer `cells × n_kv_heads × (head_dim_k × bytes(K) + head_dim_v × bytes(V))`,
//! where full-attention layers hold the whole (padded) context and sliding-window layers only
//! `window + ubatch` cells (llama.cpp's iSWA cache).

use super::{ModelShape, RuntimeSettings};
use crate::units::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// KV cache element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KvType {
    F16,
    Q8_0,
    Q4_0,
}

impl KvType {
    /// Bytes per element: f16 2; q8_0 34 bytes per 32 (1.0625); q4_0 18 per 32 (0.5625).
    pub fn bytes_per_element(self) -> f64 {
        match self {
            KvType::F16 => 2.0,
            KvType::Q8_0 => 34.0 / 32.0,
            KvType::Q4_0 => 18.0 / 32.0,
        }
    }

    /// llama.cpp spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KvType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(KvType::F16),
            "q8_0" => Ok(KvType::Q8_0),
            "q4_0" => Ok(KvType::Q4_0),
            other => Err(format!(
                "unknown KV cache type `{other}`: expected f16, q8_0 or q4_0"
            )),
        }
    }
}

/// llama.cpp pads the KV cache to 256 cells.
const KV_PAD: u64 = 256;

fn pad(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// Cells per layer: (full-attention layers, sliding-window layers).
pub(crate) fn kv_cells(shape: &ModelShape, s: &RuntimeSettings) -> (u64, u64) {
    let ctx = pad(u64::from(s.context_tokens.max(1)), KV_PAD);
    let swa = shape.sliding_window.map_or(ctx, |(window, _)| {
        ctx.min(pad(u64::from(window) + u64::from(s.ubatch), KV_PAD))
    });
    (ctx, swa)
}

/// (bytes of one full-attention layer, bytes of one SWA layer).
pub fn kv_cache_bytes_per_layer(shape: &ModelShape, s: &RuntimeSettings) -> (u64, u64) {
    if shape.embedding {
        return (0, 0);
    }
    let (full_cells, swa_cells) = kv_cells(shape, s);
    // A quantized V cache needs flash attention; without it llama.cpp keeps V in f16.
    let v_type = if s.flash_attn { s.kv_type } else { KvType::F16 };
    let per_cell = f64::from(shape.kv_heads)
        * (f64::from(shape.head_dim_k) * s.kv_type.bytes_per_element()
            + f64::from(shape.head_dim_v) * v_type.bytes_per_element());
    (
        (per_cell * full_cells as f64) as u64,
        (per_cell * swa_cells as f64) as u64,
    )
}

/// Total KV cache bytes.
pub fn kv_cache_bytes(shape: &ModelShape, s: &RuntimeSettings) -> Bytes {
    let (full, swa) = kv_cache_bytes_per_layer(shape, s);
    let swa_layers = shape.sliding_window.map_or(0, |(_, n)| n).min(shape.layers);
    let full_layers = shape.layers - swa_layers;
    Bytes(
        full.saturating_mul(u64::from(full_layers))
            .saturating_add(swa.saturating_mul(u64::from(swa_layers)))
            .min(super::SANE_MAX_BYTES),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::Backend;
    use super::*;

    pub(crate) fn llama31_8b() -> ModelShape {
        ModelShape {
            architecture: "llama".into(),
            layers: 32,
            hidden_size: 4096,
            ffn_size: 14336,
            heads: 32,
            kv_heads: 8,
            head_dim_k: 128,
            head_dim_v: 128,
            vocab_size: 128_256,
            context_max: 131_072,
            sliding_window: None,
            experts: None,
            params_total: 8_030_000_000,
            params_active: 8_030_000_000,
            embedding: false,
            token_embd_bytes: None,
            layer_bytes: None,
            tied_embeddings: false,
        }
    }

    #[test]
    fn llama31_8b_at_8k_in_f16_is_one_gib() {
        // 2 · 32 layers · 8 kv heads · 128 · 8192 · 2 B = 1 GiB (memory-estimation.md §1.6).
        let s = RuntimeSettings::llama_cpp_defaults(8192, Backend::Cpu);
        assert_eq!(kv_cache_bytes(&llama31_8b(), &s), Bytes(1 << 30));
    }

    #[test]
    fn q8_0_kv_is_17_32nds_of_f16_with_flash_attention() {
        let mut s = RuntimeSettings::llama_cpp_defaults(8192, Backend::Cuda);
        s.kv_type = KvType::Q8_0;
        assert_eq!(
            kv_cache_bytes(&llama31_8b(), &s),
            Bytes((1u64 << 30) * 17 / 32)
        );
        // Without flash attention V stays f16.
        s.flash_attn = false;
        assert_eq!(
            kv_cache_bytes(&llama31_8b(), &s),
            Bytes((1u64 << 29) + (1u64 << 29) * 17 / 32)
        );
    }

    #[test]
    fn sliding_window_layers_hold_only_the_window() {
        let mut g = llama31_8b();
        g.layers = 26;
        g.kv_heads = 1;
        g.head_dim_k = 256;
        g.head_dim_v = 256;
        g.sliding_window = Some((512, 22));
        let s = RuntimeSettings::llama_cpp_defaults(32768, Backend::Cpu);
        // 4 full layers × 32768 cells + 22 SWA layers × pad(512 + 512) cells, 1 KiB per cell.
        assert_eq!(
            kv_cache_bytes(&g, &s),
            Bytes(4 * 32768 * 1024 + 22 * 1024 * 1024)
        );
    }

    #[test]
    fn context_is_padded_to_256_cells() {
        let a = kv_cache_bytes(
            &llama31_8b(),
            &RuntimeSettings::llama_cpp_defaults(1000, Backend::Cpu),
        );
        let b = kv_cache_bytes(
            &llama31_8b(),
            &RuntimeSettings::llama_cpp_defaults(1024, Backend::Cpu),
        );
        assert_eq!(a, b);
    }
}
