//! `ModelShape`: the architecture numbers an estimate needs, from the catalog or a GGUF header.

use crate::catalog::{ArchKind, Architecture};
use crate::gguf::{GgufHeader, GgufModelFacts, TensorInfo};
use serde::Serialize;

/// Architecture numbers, whatever their source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelShape {
    pub architecture: String,
    pub layers: u32,
    pub hidden_size: u32,
    pub ffn_size: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim_k: u32,
    pub head_dim_v: u32,
    pub vocab_size: u32,
    pub context_max: u32,
    /// (window, number of SWA layers).
    pub sliding_window: Option<(u32, u32)>,
    /// (total, active, per-expert FFN width).
    pub experts: Option<(u32, u32, u32)>,
    pub params_total: u64,
    pub params_active: u64,
    /// Embedding (non-causal) models keep no KV cache between requests.
    pub embedding: bool,
    /// Bytes of the token-embedding table (kept in host memory by llama.cpp), when known.
    pub token_embd_bytes: Option<u64>,
    /// Bytes of each repeating layer, when known exactly (from a GGUF header).
    pub layer_bytes: Option<Vec<u64>>,
    pub tied_embeddings: bool,
}

fn u32_of(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl ModelShape {
    /// From a catalog entry.
    pub fn from_catalog(a: &Architecture, embedding: bool) -> ModelShape {
        ModelShape {
            architecture: a.gguf_arch.clone(),
            layers: a.layers,
            hidden_size: a.hidden_size,
            ffn_size: a.ffn_size,
            heads: a.heads,
            kv_heads: a.kv_heads,
            head_dim_k: a.head_dim,
            head_dim_v: a.head_dim,
            vocab_size: a.vocab_size,
            context_max: a.context_max,
            sliding_window: a.sliding_window.as_ref().map(|s| (s.size, s.swa_layers)),
            experts: match (a.kind, &a.experts) {
                (ArchKind::Moe, Some(e)) => Some((e.total, e.active, e.ffn_size)),
                _ => None,
            },
            params_total: a.params_total,
            params_active: a.params_active.unwrap_or(a.params_total),
            embedding,
            token_embd_bytes: None,
            layer_bytes: None,
            tied_embeddings: a.tied_embeddings,
        }
    }

    /// From a GGUF header.
    pub fn from_gguf(header: &GgufHeader, f: &GgufModelFacts) -> ModelShape {
        let params_total: u64 = header.tensors.iter().map(TensorInfo::n_elements).sum();
        let expert_params: u64 = header
            .tensors
            .iter()
            .filter(|t| t.name.contains("_exps"))
            .map(TensorInfo::n_elements)
            .sum();
        let experts = match (f.expert_count, f.expert_used_count) {
            (Some(n), Some(k)) if n > 0 => Some((
                u32_of(n),
                u32_of(k),
                u32_of(f.expert_feed_forward_length.unwrap_or(0)),
            )),
            _ => None,
        };
        let params_active = match experts {
            Some((n, k, _)) if n > 0 => {
                // Expert tensors scale with n; everything else is read for every token.
                let expert = expert_params;
                params_total - expert + expert * u64::from(k) / u64::from(n)
            }
            _ => params_total,
        };
        ModelShape {
            architecture: f.architecture.clone(),
            layers: u32_of(f.block_count),
            hidden_size: u32_of(f.embedding_length),
            ffn_size: u32_of(f.feed_forward_length.unwrap_or(0)),
            heads: u32_of(f.head_count),
            kv_heads: u32_of(f.head_count_kv),
            head_dim_k: u32_of(f.key_length),
            head_dim_v: u32_of(f.value_length),
            vocab_size: u32_of(f.vocab_size),
            context_max: u32_of(f.context_length),
            sliding_window: f
                .sliding_window
                .filter(|_| f.swa_layers > 0)
                .map(|w| (u32_of(w), u32_of(f.swa_layers))),
            experts,
            params_total,
            params_active,
            embedding: f.pooling_or_embedding,
            token_embd_bytes: Some(f.token_embd_bytes),
            layer_bytes: Some(f.layer_bytes.clone()),
            tied_embeddings: f.output_tied,
        }
    }

    /// Bytes of the token-embedding table: exact from GGUF, else the vocab share of the weights.
    pub fn token_embd_bytes(&self, weights: u64) -> u64 {
        self.token_embd_bytes.unwrap_or_else(|| {
            let embd_params = u64::from(self.vocab_size) * u64::from(self.hidden_size);
            (weights as f64 * embd_params as f64 / self.params_total.max(1) as f64) as u64
        })
    }

    /// Bytes of one repeating layer (average), for partial offload.
    pub fn layer_bytes_avg(&self, weights: u64) -> u64 {
        if let Some(lb) = &self.layer_bytes
            && !lb.is_empty()
        {
            return lb.iter().sum::<u64>() / lb.len() as u64;
        }
        let embd = self.token_embd_bytes(weights);
        let output = if self.tied_embeddings { 0 } else { embd };
        weights.saturating_sub(embd + output) / u64::from(self.layers.max(1))
    }
}
