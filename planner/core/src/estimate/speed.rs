//! Decode speed: generating one token reads every active weight once plus the KV cache, so
//! tokens/s ≈ efficiency × bandwidth / bytes-per-token. Memory-bound decode reaches 60–80 % of
//! peak bandwidth on GPUs in llama.cpp; CPUs less.

use super::Backend;

/// Share of peak bandwidth a backend achieves when decoding.
pub fn bandwidth_efficiency(backend: Backend) -> f64 {
    match backend {
        Backend::Cuda | Backend::Rocm | Backend::Metal => 0.7,
        Backend::Vulkan => 0.6,
        Backend::Npu => 0.5,
        Backend::Cpu => 0.55,
    }
}

/// Bytes read per generated token: active weights (MoE: the routed share of the expert
/// weights) excluding the embedding table, of which one row is read, plus half the KV cache
/// (the average fill over a conversation).
pub fn bytes_per_token(
    weights: u64,
    token_embd: u64,
    params_total: u64,
    params_active: u64,
    kv_bytes: u64,
) -> u64 {
    let body = weights.saturating_sub(token_embd);
    let active_share = params_active as f64 / params_total.max(1) as f64;
    (body as f64 * active_share.min(1.0)) as u64 + kv_bytes / 2
}

/// Fixed time per layer per token that bandwidth does not explain: kernel launches and
/// synchronisation (about 40 µs per layer on GPUs in llama.cpp's single-stream decode, less on
/// the CPU). It caps small or very sparse models (an MoE on an H100) at realistic speeds.
pub fn per_layer_latency_secs(backend: Backend) -> f64 {
    match backend {
        Backend::Cuda | Backend::Rocm | Backend::Metal | Backend::Vulkan => 40e-6,
        Backend::Npu => 60e-6,
        Backend::Cpu => 15e-6,
    }
}

/// Tokens/s when `bytes` are read per token at `gbps` peak with `efficiency`, plus the fixed
/// per-layer latency of `layers` layers on `backend`.
pub fn tokens_per_second(bytes: u64, gbps: f64, backend: Backend, layers: u32) -> f64 {
    if bytes == 0 || gbps <= 0.0 {
        return 0.0;
    }
    let secs = bytes as f64 / (gbps * 1e9 * bandwidth_efficiency(backend))
        + f64::from(layers) * per_layer_latency_secs(backend);
    1.0 / secs
}
