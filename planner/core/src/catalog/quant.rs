//! Quantization facts: the names we accept, and how much quality each one costs.
//!
//! The loss table is llama.cpp's Llama-3-8B perplexity scoreboard (`tools/perplexity/README.md`,
//! Wikitext-2, FP16 reference, no imatrix): loss = PPL(quant) / PPL(f16) − 1. Small models lose
//! more from the same quantization (Qwen2 GPTQ-Int4: ~0 points at 72B, ~3 at 7B, ~4.7 of 34 at
//! 0.5B, Qwen docs `quantization_benchmark.rst`), so the loss is scaled by `(8B / params)^0.3`,
//! clamped to 0.5..2.5. Values are in `shared/reference/catalog-facts.yaml`, `quality_loss`.

/// Every quantization name the catalog may use, with its relative perplexity increase on
/// Llama-3-8B (`None`: no loss, the model's native precision or better).
const LOSS_TABLE: &[(&str, f64)] = &[
    ("F32", 0.0),
    ("F16", 0.0),
    ("BF16", 0.0),
    ("FP16", 0.0),
    ("Q8_0", 0.000_87),  // 6.7687 / 6.7684
    ("INT8", 0.001_5),   // GPTQ-Int8 class: about Q8_0
    ("Q6_K", 0.005_6),   // 6.8007
    ("Q5_K_M", 0.010_0), // 6.8308
    ("Q5_K_S", 0.018_4), // 6.8877
    ("Q5_1", 0.018_6),   // 6.8888
    ("Q5_0", 0.020_1),   // 6.8988
    ("Q4_K_M", 0.029_0), // 6.9593
    ("IQ4_XS", 0.036_4), // 7.0091 (imatrix)
    ("IQ4_NL", 0.036_7), // 7.0114 (imatrix)
    ("INT4", 0.035_0),   // AWQ/GPTQ int4 (OpenVINO, ONNX): between IQ4_XS and Q4_K_S
    ("Q4_K_S", 0.043_1), // 7.0545
    ("MXFP4", 0.045_0),  // block 32, 4.25 bpw: about Q4_0/Q4_K_S when not the model's native format
    ("Q4_1", 0.072_2),   // 7.2571
    ("Q4_0", 0.077_5),   // 7.2927
    ("Q3_K_L", 0.086_5), // 7.3483
    ("Q3_K_M", 0.101_1), // 7.4524
    ("Q3_K_S", 0.281_0), // 8.6701
    ("Q2_K", 0.572_8),   // 10.6450
];

/// Whether `name` is a quantization we know.
pub fn is_known(name: &str) -> bool {
    LOSS_TABLE.iter().any(|(q, _)| *q == name)
}

/// All known quantization names, for "did you mean" hints.
pub fn known_names() -> impl Iterator<Item = &'static str> {
    LOSS_TABLE.iter().map(|(q, _)| *q)
}

/// Normalizes user spelling (`q4_k_m`, `Q4_K_M`) to the catalog's.
pub fn normalize(name: &str) -> String {
    name.trim().to_ascii_uppercase()
}

/// Fraction of quality lost by running a model of `params` parameters at `quant`.
/// `native` is the precision the model was trained/released in (gpt-oss: MXFP4), which costs nothing.
pub fn quality_loss(quant: &str, params: u64, native: Option<&str>) -> f64 {
    if native == Some(quant) {
        return 0.0;
    }
    let base = LOSS_TABLE
        .iter()
        .find(|(q, _)| *q == quant)
        .map_or(0.1, |(_, l)| *l);
    let scale = (8e9 / (params.max(1) as f64)).powf(0.3).clamp(0.5, 2.5);
    (base * scale).min(0.95)
}

/// Approximate bits per weight of a whole GGUF file of this ftype (Llama-3.1-8B mix, llama.cpp
/// `tools/quantize/README.md`); used only where no real artifact size exists.
#[allow(clippy::match_same_arms)] // distinct ftypes that happen to share a rate
pub fn file_bits_per_weight(quant: &str) -> Option<f64> {
    Some(match quant {
        "Q2_K" => 3.16,
        "Q3_K_S" => 3.64,
        "Q3_K_M" => 4.00,
        "Q3_K_L" => 4.30,
        "Q4_0" => 4.64,
        "Q4_1" => 5.11,
        "IQ4_XS" => 4.46,
        "IQ4_NL" => 4.68,
        "Q4_K_S" => 4.67,
        "Q4_K_M" => 4.89,
        "Q5_0" => 5.57,
        "Q5_1" => 6.04,
        "Q5_K_S" => 5.57,
        "Q5_K_M" => 5.70,
        "Q6_K" => 6.56,
        "Q8_0" => 8.50,
        "MXFP4" | "INT4" => 4.25,
        "INT8" => 8.0,
        "F16" | "BF16" | "FP16" => 16.0,
        "F32" => 32.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaller_models_lose_more_at_the_same_quant() {
        let big = quality_loss("Q4_K_M", 70_000_000_000, None);
        let mid = quality_loss("Q4_K_M", 8_000_000_000, None);
        let small = quality_loss("Q4_K_M", 500_000_000, None);
        assert!(big < mid && mid < small, "{big} {mid} {small}");
        assert!((mid - 0.029).abs() < 1e-9);
    }

    #[test]
    fn native_precision_costs_nothing() {
        assert!(quality_loss("MXFP4", 20_000_000_000, Some("MXFP4")).abs() < f64::EPSILON);
        assert!(quality_loss("MXFP4", 20_000_000_000, None) > 0.0);
    }

    #[test]
    fn loss_is_monotonic_down_the_k_quant_ladder() {
        let ladder = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"];
        let losses: Vec<f64> = ladder
            .iter()
            .map(|q| quality_loss(q, 8_000_000_000, None))
            .collect();
        assert!(losses.windows(2).all(|w| w[0] <= w[1]), "{losses:?}");
    }
}
