//! Safetensors smoke inference: a BERT-family sentence encoder (config.json `model_type` or
//! `architectures`) with tokenizer.json beside the weights; embeds one sentence with mean pooling
//! over the attention mask and L2 normalisation, and requires finite values and unit norm.
//! Other safetensors architectures are skipped, never passed.

use crate::{SmokeReport, Stop, VerifyError, fail, first_line, per_second};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use std::time::Instant;

/// The sentence the smoke test embeds.
const SENTENCE: &str = "A man is eating food.";

struct Encoder {
    model: BertModel,
    tokenizer: tokenizers::Tokenizer,
    model_type: String,
    device: Device,
}

fn companion(weights: &Path, name: &str) -> std::path::PathBuf {
    weights.with_file_name(name)
}

/// Loads the encoder, or says why it cannot be (skipped for a non-BERT model).
fn load(weights: &Path, device: &Device) -> Result<Encoder, Stop> {
    let config_path = companion(weights, "config.json");
    let config_text = match std::fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) => {
            return fail(format!(
                "cannot read `{}` (a safetensors model needs its config.json beside it): {e}",
                config_path.display()
            ));
        }
    };
    let raw: serde_json::Value = match serde_json::from_str(&config_text) {
        Ok(v) => v,
        Err(e) => return fail(format!("`{}` is not JSON: {e}", config_path.display())),
    };
    let model_type = raw
        .get("model_type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_owned();
    let architectures: Vec<String> = raw
        .get("architectures")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let is_bert = model_type == "bert" || architectures.iter().any(|a| a.starts_with("Bert"));
    if !is_bert {
        let what = if model_type.is_empty() {
            format!("architectures {architectures:?}")
        } else {
            format!("model_type `{model_type}`")
        };
        return Err(Stop::Skipped(format!(
            "safetensors {what}: the smoke test runs BERT-family encoders only (GGUF for causal LMs)"
        )));
    }
    let config: Config = match serde_json::from_value(raw) {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "`{}` is not a BERT config candle can read: {e}",
                config_path.display()
            ));
        }
    };
    let tok_path = companion(weights, "tokenizer.json");
    let mut tokenizer = match tokenizers::Tokenizer::from_file(&tok_path) {
        Ok(t) => t,
        Err(e) => {
            return fail(format!(
                "cannot load `{}` (the model's tokenizer must sit beside it): {e}",
                tok_path.display()
            ));
        }
    };
    // Sentence-transformers ship tokenizer.json padded to a fixed 128: one sentence needs none.
    tokenizer.with_padding(None);
    let tensors = match candle_core::safetensors::load(weights, device) {
        Ok(t) => t,
        Err(e) => {
            return fail(format!(
                "cannot read the safetensors file (truncated or corrupt?): {}",
                first_line(&e)
            ));
        }
    };
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    let model = match BertModel::load(vb, &config) {
        Ok(m) => m,
        Err(e) => {
            return fail(format!(
                "candle cannot load the BERT model: {}",
                first_line(&e)
            ));
        }
    };
    Ok(Encoder {
        model,
        tokenizer,
        model_type: if model_type.is_empty() {
            "bert".into()
        } else {
            model_type
        },
        device: device.clone(),
    })
}

impl Encoder {
    /// Mean-pooled (over the attention mask) embedding before normalisation, and the token count.
    fn pooled(&self, sentence: &str) -> Result<(Vec<f32>, usize), String> {
        let enc = self
            .tokenizer
            .encode(sentence, true)
            .map_err(|e| format!("the tokenizer cannot encode the sentence: {e}"))?;
        let n = enc.get_ids().len();
        if n == 0 {
            return Err("the sentence encodes to no tokens".into());
        }
        let run = || -> candle_core::Result<Vec<f32>> {
            let ids = Tensor::new(enc.get_ids(), &self.device)?.unsqueeze(0)?;
            let types = Tensor::new(enc.get_type_ids(), &self.device)?.unsqueeze(0)?;
            let mask = Tensor::new(enc.get_attention_mask(), &self.device)?.unsqueeze(0)?;
            let out = self.model.forward(&ids, &types, Some(&mask))?; // [1, n, hidden]
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [1, n, 1]
            let summed = out.broadcast_mul(&m)?.sum(1)?; // [1, hidden]
            let count = m.sum(1)?; // [1, 1]
            summed.broadcast_div(&count)?.squeeze(0)?.to_vec1::<f32>()
        };
        run()
            .map(|v| (v, n))
            .map_err(|e| format!("the forward pass failed: {}", first_line(&e)))
    }
}

fn l2(v: &[f32]) -> f64 {
    v.iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

fn normalise(v: &[f32]) -> Vec<f32> {
    let n = l2(v);
    if n > 0.0 {
        v.iter().map(|x| (f64::from(*x) / n) as f32).collect()
    } else {
        v.to_vec()
    }
}

pub(crate) fn run(weights: &Path, device: &Device, report: &mut SmokeReport) -> Result<(), Stop> {
    let started = Instant::now();
    let enc = load(weights, device)?;
    report.architecture = Some(enc.model_type.clone());
    report.tokenizer = Some("tokenizer.json".to_owned());
    report.load_seconds = started.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let (pooled, n) = enc.pooled(SENTENCE).map_err(Stop::Failed)?;
    let secs = t0.elapsed().as_secs_f64();
    report.prompt_tokens = n;
    report.prompt_tokens_per_second = per_second(n, secs);
    report.tokens_per_second = report.prompt_tokens_per_second;
    if let Some((i, x)) = pooled.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return fail(format!(
            "embedding value {i} is {x}: the weights are corrupt"
        ));
    }
    let raw_norm = l2(&pooled);
    if raw_norm <= 0.0 {
        return fail("the embedding is all zeros");
    }
    let unit = normalise(&pooled);
    let norm = l2(&unit);
    if (norm - 1.0).abs() > 1e-3 {
        return fail(format!(
            "the normalised embedding has norm {norm:.6}, not 1"
        ));
    }
    report.embedding_dim = Some(unit.len());
    report.embedding_norm = Some(raw_norm);
    report.detail = format!(
        "embedded {SENTENCE:?} ({n} tokens) into {} dimensions: norm {raw_norm:.4} before normalising, {norm:.4} after; {:.1} tok/s, load {:.2} s",
        unit.len(),
        report.prompt_tokens_per_second,
        report.load_seconds
    );
    Ok(())
}

/// Embeds each sentence with the BERT model in `dir` (model.safetensors, config.json,
/// tokenizer.json): mean pooling over the attention mask, then L2 normalisation. For tests and
/// tools that compare sentences (cosine = dot product of the results).
pub fn embed(dir: &Path, sentences: &[&str]) -> Result<Vec<Vec<f32>>, VerifyError> {
    let weights = if dir.is_dir() {
        dir.join("model.safetensors")
    } else {
        dir.to_owned()
    };
    let enc = load(&weights, &Device::Cpu).map_err(|s| match s {
        Stop::Failed(d) | Stop::Skipped(d) => VerifyError::Model(d),
    })?;
    sentences
        .iter()
        .map(|s| {
            enc.pooled(s)
                .map(|(v, _)| normalise(&v))
                .map_err(VerifyError::Model)
        })
        .collect()
}
