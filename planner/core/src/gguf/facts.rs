//! [`GgufModelFacts`]: what the memory estimator needs from a header, read with llama.cpp's key
//! names and defaults (src/llama-arch.cpp, src/llama-model.cpp, src/llama-hparams.cpp).

use serde::Serialize;

use super::{GgufError, GgufHeader, GgufValue};

/// Most layers [`GgufHeader::model_facts`] accepts (llama.cpp's own limit, `LLAMA_MAX_LAYERS`,
/// is 512).
pub const MAX_BLOCK_COUNT: u64 = 4096;

/// Everything the memory estimator needs, taken from the header (llama.cpp key names).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GgufModelFacts {
    /// `general.architecture`, e.g. `llama`, `gemma3`, `gpt-oss`.
    pub architecture: String,
    /// `{arch}.block_count`: repeating layers.
    pub block_count: u64,
    /// `{arch}.context_length`: training context.
    pub context_length: u64,
    /// `{arch}.embedding_length`: hidden size.
    pub embedding_length: u64,
    /// `{arch}.feed_forward_length` (the largest, when it is per layer).
    pub feed_forward_length: Option<u64>,
    /// `{arch}.attention.head_count` (the largest, when it is per layer); 0 when absent
    /// (recurrent models).
    pub head_count: u64,
    /// `{arch}.attention.head_count_kv`, the largest when it is per layer; defaults to
    /// `head_count`.
    pub head_count_kv: u64,
    /// `{arch}.attention.head_count_kv` when it is a per-layer array (layers without attention
    /// hold 0).
    pub head_count_kv_per_layer: Option<Vec<u64>>,
    /// `{arch}.attention.key_length`, default `embedding_length / head_count`.
    pub key_length: u64,
    /// `{arch}.attention.value_length`, default `embedding_length / head_count`.
    pub value_length: u64,
    /// `{arch}.attention.sliding_window` when positive (gemma2 without the key: 4096, as
    /// llama.cpp).
    pub sliding_window: Option<u64>,
    /// The SWA period in llama.cpp's `set_swa_pattern` sense: `{arch}.attention.sliding_window_pattern`
    /// when it is an integer, else the period llama.cpp hard-codes for the architecture (gemma3
    /// and gemma-embedding 6, gemma2 and gpt-oss 2, cohere2 and smallthinker 4); `None` when the
    /// key is a per-layer array or the architecture has no known period.
    pub sliding_window_pattern: Option<u64>,
    /// Layers that use sliding-window attention. 0 without a sliding window. With a period `n`,
    /// llama.cpp's rule: layer `il` is SWA iff `il % n < n - 1` (the last of every `n` is full;
    /// smallthinker is dense-first: SWA iff `il % n != 0`), and every layer when `n` is 0. With a
    /// per-layer array, the number of non-zero flags. A window on an architecture with no known
    /// period counts 0 layers: all full attention, the conservative reading for memory.
    pub swa_layers: u64,
    /// `{arch}.expert_count`.
    pub expert_count: Option<u64>,
    /// `{arch}.expert_used_count`.
    pub expert_used_count: Option<u64>,
    /// `{arch}.expert_feed_forward_length`.
    pub expert_feed_forward_length: Option<u64>,
    /// Length of `tokenizer.ggml.tokens`, else `token_embd.weight` dims\[1\], else
    /// `{arch}.vocab_size`.
    pub vocab_size: u64,
    /// Sum of the exact bytes of every tensor (without inter-tensor padding).
    pub tensor_data_bytes: u64,
    /// Number of tensors.
    pub n_tensors: u64,
    /// Sum of the elements of every tensor (parameters).
    pub n_params: u64,
    /// Elements of the routed-expert tensors (`*_exps`), read only `expert_used_count /
    /// expert_count` of per token; shared experts (`*_shexp`) are not included.
    pub expert_tensor_params: u64,
    /// No `output.weight` tensor: the output projection reuses `token_embd.weight`.
    pub output_tied: bool,
    /// `{arch}.pooling_type` present, `{arch}.attention.causal` false, or a non-causal embedding
    /// architecture (bert, nomic-bert, jina-bert, modern-bert, gemma-embedding…).
    pub pooling_or_embedding: bool,
    /// Bytes of the tensors `blk.N.*` of each layer N, `block_count` entries.
    pub layer_bytes: Vec<u64>,
    /// Bytes of every other tensor (`token_embd`, `output_norm`, `output`…).
    pub non_layer_bytes: u64,
    /// Bytes of `token_embd.weight` (0 when absent).
    pub token_embd_bytes: u64,
    /// Bytes of `output.weight` (0 when tied).
    pub output_bytes: u64,
    /// `general.file_type` named as `llama-quantize` names it, e.g. `Q4_K_M`.
    pub file_type_name: Option<String>,
}

/// The largest value of a scalar-or-per-layer key, and the per-layer values when it is an array.
type LayerValues = (u64, Option<Vec<u64>>);

/// Architectures llama.cpp runs without causal attention, as embedding models.
const EMBEDDING_ARCHS: [&str; 9] = [
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "modern-bert",
    "gemma-embedding",
    "llama-embed",
];

/// `(architecture, SWA period, dense_first)` where llama.cpp hard-codes `set_swa_pattern`
/// (llama-model.cpp / src/models/*.cpp): gemma2 `set_swa_pattern(2)`, gemma3 and
/// gemma-embedding `set_swa_pattern(6)`, cohere2 `set_swa_pattern(4)`, gpt-oss `swa_period = 2`
/// overridable by the key, smallthinker `swa_period = 4` with `dense_first = true`.
const SWA_PERIODS: [(&str, u64, bool); 6] = [
    ("gemma2", 2, false),
    ("gemma3", 6, false),
    ("gemma-embedding", 6, false),
    ("gpt-oss", 2, false),
    ("cohere2", 4, false),
    ("smallthinker", 4, true),
];

/// The name `llama-quantize` gives a `llama_ftype` (`general.file_type`), from `enum
/// llama_ftype` in include/llama.h (and gguf-py's `LlamaFileType`): 15 → `Q4_K_M`, 38 →
/// `MXFP4_MOE`. `None` for unknown ids.
#[must_use]
pub fn llama_ftype_name(ftype: u32) -> Option<&'static str> {
    Some(match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        4 => "Q4_1_SOME_F16", // removed from llama.cpp; old files may still say it
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return None,
    })
}

/// The layer index of a `blk.N.…` tensor name.
fn layer_index(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("blk.")?;
    let (index, _) = rest.split_once('.')?;
    index.parse().ok()
}

/// Routed-expert tensors: `blk.N.ffn_{gate,up,down,gate_up}_exps.{weight,bias}`.
fn is_expert_tensor(name: &str) -> bool {
    name.split('.').any(|part| part.ends_with("_exps"))
}

/// How many of `layers` layers are SWA with period `n`, by llama.cpp's `set_swa_pattern`.
fn swa_count(n: u64, dense_first: bool, layers: u64) -> u64 {
    let is_swa = |il: &u64| match n {
        0 => true,
        _ if dense_first => !il.is_multiple_of(n),
        _ => il % n < n - 1,
    };
    // layers <= MAX_BLOCK_COUNT: a short loop.
    (0..layers).filter(is_swa).count() as u64
}

fn wrong_type(key: &str, expected: &'static str, value: &GgufValue) -> GgufError {
    let found = match value {
        GgufValue::Array(a) => format!("an array of {} {}", a.len, a.element_type.name()),
        v => format!("a {}", v.value_type().name()),
    };
    GgufError::WrongType {
        key: key.to_owned(),
        expected,
        found,
    }
}

impl GgufHeader {
    /// An optional non-negative integer: absent is `None`, another type is an error.
    fn optional_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong_type(key, "a non-negative integer", v)),
        }
    }

    fn required_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.optional_u64(key)?
            .ok_or_else(|| GgufError::MissingKey(key.to_owned()))
    }

    /// An integer or a per-layer integer array (llama.cpp's `get_key_or_arr`): the largest value
    /// and, for an array, the values.
    fn scalar_or_layers(&self, key: &str) -> Result<Option<LayerValues>, GgufError> {
        const EXPECTED: &str = "an integer or a per-layer array of at most 1024 integers";
        let Some(value) = self.metadata.get(key) else {
            return Ok(None);
        };
        if let Some(v) = value.as_u64() {
            return Ok(Some((v, None)));
        }
        let values = value
            .as_array()
            .and_then(|a| a.values.as_ref())
            .ok_or_else(|| wrong_type(key, EXPECTED, value))?;
        let per_layer = values
            .iter()
            .map(GgufValue::as_u64)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| wrong_type(key, EXPECTED, value))?;
        let max = per_layer.iter().copied().max().unwrap_or(0);
        Ok(Some((max, Some(per_layer))))
    }

    /// `(sliding_window_pattern, swa_layers)`; see the fields of [`GgufModelFacts`].
    fn swa(
        &self,
        arch: &str,
        layers: u64,
        window: Option<u64>,
    ) -> Result<(Option<u64>, u64), GgufError> {
        let key = format!("{arch}.attention.sliding_window_pattern");
        let known = SWA_PERIODS.iter().find(|(a, _, _)| *a == arch);
        let dense_first = known.is_some_and(|&(_, _, dense_first)| dense_first);
        let (period, from_array) = match self.metadata.get(&key) {
            Some(value @ GgufValue::Array(array)) => {
                const EXPECTED: &str = "an integer or a per-layer array of at most 1024 flags";
                let values = array
                    .values
                    .as_ref()
                    .ok_or_else(|| wrong_type(&key, EXPECTED, value))?;
                // One flag per layer, non-zero for SWA (llama.cpp reads the array into
                // `is_swa_impl`); flags past `layers` are ignored.
                let mut swa = 0u64;
                for v in values
                    .iter()
                    .take(usize::try_from(layers).unwrap_or(usize::MAX))
                {
                    let flag = match v {
                        GgufValue::Bool(b) => *b,
                        v => {
                            v.as_u64()
                                .ok_or_else(|| wrong_type(&key, EXPECTED, value))?
                                != 0
                        }
                    };
                    swa += u64::from(flag);
                }
                (None, Some(swa))
            }
            Some(value) => {
                let n = value
                    .as_u64()
                    .ok_or_else(|| wrong_type(&key, "an integer or a per-layer array", value))?;
                (Some(n), None)
            }
            None => (known.map(|&(_, n, _)| n), None),
        };
        let swa_layers = match (window, from_array, period) {
            (None, _, _) | (Some(_), None, None) => 0,
            (Some(_), Some(count), _) => count,
            (Some(_), None, Some(n)) => swa_count(n, dense_first, layers),
        };
        Ok((period, swa_layers))
    }

    /// Length of `tokenizer.ggml.tokens`, else `token_embd.weight` dims\[1\], else
    /// `{arch}.vocab_size`.
    fn vocab_size(&self, arch: &str) -> Result<u64, GgufError> {
        const TOKENS: &str = "tokenizer.ggml.tokens";
        match self.metadata.get(TOKENS) {
            Some(GgufValue::Array(tokens)) => Ok(tokens.len),
            Some(other) => Err(wrong_type(TOKENS, "an array of strings", other)),
            None => match self.tensor("token_embd.weight").and_then(|t| t.dims.get(1)) {
                Some(&n) => Ok(n),
                None => self
                    .optional_u64(&format!("{arch}.vocab_size"))?
                    .ok_or_else(|| GgufError::MissingKey(TOKENS.to_owned())),
            },
        }
    }

    /// Sums over the tensor table, with `block_count` per-layer slots.
    fn totals(&self, block_count: u64) -> Result<Totals, GgufError> {
        let mut totals = Totals {
            // block_count <= MAX_BLOCK_COUNT, so this allocation is bounded.
            layers: vec![0u64; usize::try_from(block_count).unwrap_or(0)],
            ..Totals::default()
        };
        for t in &self.tensors {
            let n_bytes = t.n_bytes()?;
            let too_large = || GgufError::TensorTooLarge {
                name: t.name.clone(),
            };
            totals.bytes = totals.bytes.checked_add(n_bytes).ok_or_else(too_large)?;
            totals.params = totals
                .params
                .checked_add(t.n_elements())
                .ok_or_else(too_large)?;
            if is_expert_tensor(&t.name) {
                totals.expert_params += t.n_elements();
            }
            let slot = layer_index(&t.name)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| totals.layers.get_mut(i));
            match slot {
                Some(layer) => *layer += n_bytes,
                None => totals.non_layer += n_bytes,
            }
            match t.name.as_str() {
                "token_embd.weight" => totals.token_embd += n_bytes,
                "output.weight" => totals.output += n_bytes,
                _ => {}
            }
        }
        Ok(totals)
    }

    /// Reduces the header to the facts the memory estimator needs.
    ///
    /// Required keys: `general.architecture`, `{arch}.block_count`, `{arch}.context_length`,
    /// `{arch}.embedding_length`, and a vocabulary size (see [`GgufModelFacts::vocab_size`]).
    ///
    /// # Errors
    ///
    /// [`GgufError::MissingKey`] for a missing required key, [`GgufError::WrongType`] for a key
    /// of the wrong type or a block count above [`MAX_BLOCK_COUNT`], and tensor-size errors from
    /// [`super::TensorInfo::n_bytes`].
    pub fn model_facts(&self) -> Result<GgufModelFacts, GgufError> {
        let architecture = self
            .architecture()
            .ok_or_else(|| GgufError::MissingKey("general.architecture".to_owned()))?
            .to_owned();
        let arch = architecture.as_str();
        let key = |suffix: &str| format!("{arch}.{suffix}");

        let block_count = self.required_u64(&key("block_count"))?;
        if block_count > MAX_BLOCK_COUNT {
            return Err(GgufError::WrongType {
                key: key("block_count"),
                expected: "at most 4096 layers",
                found: block_count.to_string(),
            });
        }
        let context_length = self.required_u64(&key("context_length"))?;
        let embedding_length = self.required_u64(&key("embedding_length"))?;
        let feed_forward_length = self
            .scalar_or_layers(&key("feed_forward_length"))?
            .map(|(max, _)| max);
        let head_count = self
            .scalar_or_layers(&key("attention.head_count"))?
            .map_or(0, |(max, _)| max);
        let (head_count_kv, head_count_kv_per_layer) = self
            .scalar_or_layers(&key("attention.head_count_kv"))?
            .unwrap_or((head_count, None));
        let head_dim = embedding_length.checked_div(head_count).unwrap_or(0);
        let key_length = self
            .optional_u64(&key("attention.key_length"))?
            .unwrap_or(head_dim);
        let value_length = self
            .optional_u64(&key("attention.value_length"))?
            .unwrap_or(head_dim);

        // gemma2 without the key: llama.cpp's default window, 4096.
        let sliding_window = match self.optional_u64(&key("attention.sliding_window"))? {
            Some(window) => Some(window).filter(|&w| w > 0),
            None => (arch == "gemma2").then_some(4096),
        };
        let (sliding_window_pattern, swa_layers) = self.swa(arch, block_count, sliding_window)?;

        let vocab_size = self.vocab_size(arch)?;
        let totals = self.totals(block_count)?;

        let pooling_or_embedding = self.metadata.contains_key(&key("pooling_type"))
            || EMBEDDING_ARCHS.contains(&arch)
            || matches!(
                self.metadata.get(&key("attention.causal")),
                Some(GgufValue::Bool(false))
            );

        Ok(GgufModelFacts {
            block_count,
            context_length,
            embedding_length,
            feed_forward_length,
            head_count,
            head_count_kv,
            head_count_kv_per_layer,
            key_length,
            value_length,
            sliding_window,
            sliding_window_pattern,
            swa_layers,
            expert_count: self.optional_u64(&key("expert_count"))?,
            expert_used_count: self.optional_u64(&key("expert_used_count"))?,
            expert_feed_forward_length: self.optional_u64(&key("expert_feed_forward_length"))?,
            vocab_size,
            tensor_data_bytes: totals.bytes,
            n_tensors: self.tensors.len() as u64,
            n_params: totals.params,
            expert_tensor_params: totals.expert_params,
            output_tied: self.tensor("output.weight").is_none(),
            pooling_or_embedding,
            layer_bytes: totals.layers,
            non_layer_bytes: totals.non_layer,
            token_embd_bytes: totals.token_embd,
            output_bytes: totals.output,
            file_type_name: self
                .file_type()
                .and_then(llama_ftype_name)
                .map(str::to_owned),
            architecture,
        })
    }
}

/// Running sums over the tensor table. Every part is bounded by `bytes` or `params`, whose
/// additions are checked, so the unchecked additions cannot overflow.
#[derive(Default)]
struct Totals {
    layers: Vec<u64>,
    bytes: u64,
    params: u64,
    expert_params: u64,
    non_layer: u64,
    token_embd: u64,
    output: u64,
}
