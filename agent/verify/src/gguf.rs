//! GGUF smoke inference: header checks (tensor extents against the file size, the metadata keys
//! and types each candle loader needs, the tensors it will ask for) before loading, so a bad file
//! fails with a message that names the problem instead of a loader error; then load, prompt,
//! greedy decode, with every logit checked finite. Tensors in types candle only runs on its
//! scalar path (Q4_1, Q5_0, Q5_1) are requantised to Q8_0 at load on the CPU, which candle runs
//! with SIMD kernels.

use crate::{SmokeOptions, SmokeReport, Stop, fail, first_line, per_second};
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_glm4, quantized_llama, quantized_phi3, quantized_qwen2,
    quantized_qwen3,
};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

/// Architectures with a wired loader, in the order the "supported" list prints them.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "phi3", "gemma3", "glm4"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    U32,
    F32,
}

struct Spec {
    arch: &'static str,
    /// Keys under `{arch}.` the loader reads with `to_u32`/`to_f32` (exact types).
    keys: &'static [(&'static str, Kind)],
    /// Tensors every block must have (`blk.N.` + name).
    block_tensors: &'static [&'static str],
    /// Whole-model tensors besides `token_embd.weight` and `output_norm.weight`.
    extra_tensors: &'static [&'static str],
}

const FFN: [&str; 3] = ["ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"];

const SPECS: &[Spec] = &[
    Spec {
        arch: "llama",
        keys: &[
            ("embedding_length", Kind::U32),
            ("block_count", Kind::U32),
            ("attention.head_count", Kind::U32),
            ("attention.head_count_kv", Kind::U32),
            ("rope.dimension_count", Kind::U32),
            ("attention.layer_norm_rms_epsilon", Kind::F32),
        ],
        block_tensors: &[
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "attn_norm.weight",
            "ffn_norm.weight",
        ],
        extra_tensors: &[],
    },
    Spec {
        arch: "qwen2",
        keys: &[
            ("embedding_length", Kind::U32),
            ("block_count", Kind::U32),
            ("context_length", Kind::U32),
            ("attention.head_count", Kind::U32),
            ("attention.head_count_kv", Kind::U32),
            ("attention.layer_norm_rms_epsilon", Kind::F32),
        ],
        block_tensors: &[
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_q.bias",
            "attn_k.bias",
            "attn_v.bias",
            "attn_output.weight",
            "attn_norm.weight",
            "ffn_norm.weight",
            FFN[0],
            FFN[1],
            FFN[2],
        ],
        extra_tensors: &[],
    },
    Spec {
        arch: "qwen3",
        keys: &[
            ("embedding_length", Kind::U32),
            ("block_count", Kind::U32),
            ("context_length", Kind::U32),
            ("attention.head_count", Kind::U32),
            ("attention.head_count_kv", Kind::U32),
            ("attention.key_length", Kind::U32),
            ("attention.layer_norm_rms_epsilon", Kind::F32),
            ("rope.freq_base", Kind::F32),
        ],
        block_tensors: &[
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "attn_q_norm.weight",
            "attn_k_norm.weight",
            "attn_norm.weight",
            "ffn_norm.weight",
            FFN[0],
            FFN[1],
            FFN[2],
        ],
        extra_tensors: &[],
    },
    Spec {
        arch: "phi3",
        keys: &[
            ("embedding_length", Kind::U32),
            ("block_count", Kind::U32),
            ("context_length", Kind::U32),
            ("feed_forward_length", Kind::U32),
            ("attention.head_count", Kind::U32),
            ("attention.head_count_kv", Kind::U32),
            ("rope.dimension_count", Kind::U32),
            ("attention.layer_norm_rms_epsilon", Kind::F32),
        ],
        block_tensors: &[
            "attn_qkv.weight",
            "attn_output.weight",
            "attn_norm.weight",
            "ffn_norm.weight",
            "ffn_up.weight",
            "ffn_down.weight",
        ],
        extra_tensors: &["output.weight"],
    },
    Spec {
        arch: "gemma3",
        keys: &[
            ("embedding_length", Kind::U32),
            ("block_count", Kind::U32),
            ("attention.head_count", Kind::U32),
            ("attention.head_count_kv", Kind::U32),
            ("attention.key_length", Kind::U32),
            ("attention.value_length", Kind::U32),
            ("attention.sliding_window", Kind::U32),
            ("attention.layer_norm_rms_epsilon", Kind::F32),
        ],
        block_tensors: &[
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "attn_q_norm.weight",
            "attn_k_norm.weight",
            "attn_norm.weight",
            "post_attention_norm.weight",
            "ffn_norm.weight",
            "post_ffw_norm.weight",
            FFN[0],
            FFN[1],
            FFN[2],
        ],
        extra_tensors: &[],
    },
    Spec {
        arch: "glm4",
        keys: &[
            ("embedding_length", Kind::U32),
            ("block_count", Kind::U32),
            ("context_length", Kind::U32),
            ("attention.head_count", Kind::U32),
            ("attention.head_count_kv", Kind::U32),
            ("attention.key_length", Kind::U32),
            ("attention.layer_norm_rms_epsilon", Kind::F32),
            ("rope.freq_base", Kind::F32),
        ],
        block_tensors: &[
            "attn_q.weight",
            "attn_k.weight",
            "attn_v.weight",
            "attn_output.weight",
            "attn_norm.weight",
            "post_attention_norm.weight",
            "ffn_norm.weight",
            "post_ffw_norm.weight",
            "ffn_up.weight",
            "ffn_down.weight",
        ],
        extra_tensors: &[],
    },
];

/// GGUF types candle 0.11.1 multiplies on its scalar path on x86/ARM CPUs.
const SCALAR_PATH: &[GgmlDType] = &[GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

enum Model {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
    Glm4(quantized_glm4::ModelWeights),
}

impl Model {
    fn load<R: Read + Seek>(
        arch: &str,
        ct: Content,
        r: &mut R,
        dev: &Device,
    ) -> candle_core::Result<Self> {
        Ok(match arch {
            "qwen2" => Self::Qwen2(quantized_qwen2::ModelWeights::from_gguf(ct, r, dev)?),
            "qwen3" => Self::Qwen3(quantized_qwen3::ModelWeights::from_gguf(ct, r, dev)?),
            "phi3" => Self::Phi3(quantized_phi3::ModelWeights::from_gguf(false, ct, r, dev)?),
            "gemma3" => Self::Gemma3(quantized_gemma3::ModelWeights::from_gguf(ct, r, dev)?),
            "glm4" => Self::Glm4(quantized_glm4::ModelWeights::from_gguf(
                ct,
                r,
                dev,
                DType::F32,
            )?),
            _ => Self::Llama(quantized_llama::ModelWeights::from_gguf(ct, r, dev)?),
        })
    }

    fn forward(&mut self, ids: &[u32], pos: usize, dev: &Device) -> candle_core::Result<Vec<f32>> {
        let x = Tensor::new(ids, dev)?.unsqueeze(0)?;
        let logits = match self {
            Self::Llama(m) => m.forward(&x, pos)?,
            Self::Qwen2(m) => m.forward(&x, pos)?,
            Self::Qwen3(m) => m.forward(&x, pos)?,
            Self::Phi3(m) => m.forward(&x, pos)?,
            Self::Gemma3(m) => m.forward(&x, pos)?,
            Self::Glm4(m) => m.forward(&x, pos)?,
        };
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }
}

fn value_type_name(v: &Value) -> String {
    format!("{:?}", v.value_type()).to_lowercase()
}

/// Checks that every tensor lies inside the file and has whole blocks.
fn check_extents(ct: &Content, file_bytes: u64) -> Result<(), Stop> {
    let mut infos: Vec<(&String, &TensorInfo)> = ct.tensor_infos.iter().collect();
    infos.sort_by_key(|(name, info)| (info.offset, (*name).clone()));
    let mut past_end: Vec<(String, u64)> = Vec::new();
    for (name, info) in &infos {
        let Some(elems) = info
            .shape
            .dims()
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d))
            .filter(|e| (*e as u64) <= file_bytes.saturating_mul(8))
        else {
            return fail(format!(
                "tensor `{name}` has shape {:?}, more elements than the file could hold: corrupt header",
                info.shape.dims()
            ));
        };
        let block = info.ggml_dtype.block_size();
        if block == 0 || elems % block != 0 {
            return fail(format!(
                "tensor `{name}` has {elems} elements, not a whole number of {:?} blocks of {block}",
                info.ggml_dtype
            ));
        }
        let size = (elems / block) as u64 * info.ggml_dtype.type_size() as u64;
        let end = ct
            .tensor_data_offset
            .saturating_add(info.offset)
            .saturating_add(size);
        if end > file_bytes {
            past_end.push(((*name).clone(), end));
        }
    }
    if let Some((name, end)) = past_end.first() {
        let more = match past_end.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more tensors past the end)"),
        };
        return fail(format!(
            "tensor `{name}` ends at byte {end} but the file has {file_bytes} bytes{more}: truncated or corrupt download"
        ));
    }
    Ok(())
}

/// Checks the metadata keys and tensors the architecture's loader reads.
fn check_spec(ct: &Content, spec: &Spec) -> Result<(), Stop> {
    let arch = spec.arch;
    for (suffix, kind) in spec.keys {
        let key = format!("{arch}.{suffix}");
        let want = match kind {
            Kind::U32 => "u32",
            Kind::F32 => "f32",
        };
        match ct.metadata.get(&key) {
            None => {
                return fail(format!(
                    "metadata key `{key}` is missing (candle's {arch} loader needs it as {want})"
                ));
            }
            Some(Value::U32(_)) if *kind == Kind::U32 => {}
            Some(Value::F32(_)) if *kind == Kind::F32 => {}
            Some(v) => {
                return fail(format!(
                    "metadata key `{key}` is {}, candle's {arch} loader needs {want}",
                    value_type_name(v)
                ));
            }
        }
    }
    let blocks = match ct.metadata.get(&format!("{arch}.block_count")) {
        Some(Value::U32(n)) => *n,
        _ => 0,
    };
    let mut required: Vec<String> = vec!["token_embd.weight".into(), "output_norm.weight".into()];
    required.extend(spec.extra_tensors.iter().map(|s| (*s).to_owned()));
    let moe = arch == "llama" && ct.metadata.contains_key("llama.expert_count");
    if moe && ct.tensor_infos.contains_key("blk.0.ffn_gate_exps.weight") {
        return Err(Stop::Skipped(
            "llama mixture-of-experts GGUF with merged expert tensors (`ffn_gate_exps`): candle's \
             quantized_llama reads only per-expert tensors"
                .to_owned(),
        ));
    }
    for b in 0..blocks {
        for t in spec.block_tensors {
            required.push(format!("blk.{b}.{t}"));
        }
        if arch == "llama" && !moe {
            for t in FFN {
                required.push(format!("blk.{b}.{t}"));
            }
        }
    }
    if let Some(missing) = required.iter().find(|t| !ct.tensor_infos.contains_key(*t)) {
        return fail(format!(
            "tensor `{missing}` is missing (candle's {arch} loader needs it)"
        ));
    }
    Ok(())
}

fn needs_requant(info: &TensorInfo) -> bool {
    SCALAR_PATH.contains(&info.ggml_dtype) && info.shape.dims().last().is_some_and(|d| d % 32 == 0)
}

/// One tensor in the rewritten (virtual) tensor-data layout.
struct Segment {
    virt: u64,
    len: u64,
    src: u64,
    src_len: usize,
    dtype: GgmlDType,
    dims: Vec<usize>,
    convert: bool,
}

/// A reader over the tensor data as if scalar-path tensors were stored as Q8_0: each tensor is
/// converted when the loader first reads it, one at a time, so memory holds at most one
/// converted tensor besides the model (no second copy of the whole file).
struct Requantizing<R> {
    inner: R,
    segs: Vec<Segment>,
    total: u64,
    pos: u64,
    cache: Option<(usize, Vec<u8>)>,
}

impl<R: Read + Seek> Requantizing<R> {
    fn materialise(&mut self, idx: usize) -> std::io::Result<()> {
        if self.cache.as_ref().is_some_and(|(i, _)| *i == idx) {
            return Ok(());
        }
        self.cache = None;
        let seg = &self.segs[idx];
        let mut raw = vec![0u8; seg.src_len];
        self.inner.seek(SeekFrom::Start(seg.src))?;
        self.inner.read_exact(&mut raw)?;
        let bytes = if seg.convert {
            let to_io = |e: candle_core::Error| std::io::Error::other(first_line(&e));
            let q = candle_core::quantized::ggml_file::qtensor_from_ggml(
                seg.dtype,
                &raw,
                seg.dims.clone(),
                &Device::Cpu,
            )
            .map_err(to_io)?;
            let f = q.dequantize(&Device::Cpu).map_err(to_io)?;
            drop(raw);
            let q8 = QTensor::quantize(&f, GgmlDType::Q8_0).map_err(to_io)?;
            q8.data().map_err(to_io)?.into_owned()
        } else {
            raw
        };
        if bytes.len() as u64 != seg.len {
            return Err(std::io::Error::other(format!(
                "requantised tensor has {} bytes, expected {}",
                bytes.len(),
                seg.len
            )));
        }
        self.cache = Some((idx, bytes));
        Ok(())
    }
}

impl<R: Read + Seek> Read for Requantizing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || self.pos >= self.total {
            return Ok(0);
        }
        let pos = self.pos;
        let idx = self.segs.partition_point(|s| s.virt + s.len <= pos);
        let in_seg = self.segs.get(idx).is_some_and(|s| s.virt <= pos);
        if !in_seg {
            // Alignment padding before the next tensor.
            let next = self.segs.get(idx).map_or(self.total, |s| s.virt);
            let n = buf.len().min((next - pos) as usize);
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        self.materialise(idx)?;
        let virt = self.segs[idx].virt;
        let Some((_, data)) = &self.cache else {
            return Ok(0);
        };
        let off = (pos - virt) as usize;
        let n = buf.len().min(data.len() - off);
        buf[..n].copy_from_slice(&data[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Seek for Requantizing<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.total.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let Some(new) = new else {
            return Err(std::io::Error::other("seek before the start"));
        };
        self.pos = new;
        Ok(new)
    }
}

/// Rewrites the header so scalar-path tensors read as Q8_0 through a [`Requantizing`] reader.
/// Returns the reader and a note (`Q4_1→Q8_0 ×210`), or gives the reader back when nothing needs
/// converting.
fn requantize<R: Read + Seek>(ct: &mut Content, reader: R) -> Result<(Requantizing<R>, String), R> {
    let mut names: Vec<(u64, String)> = ct
        .tensor_infos
        .iter()
        .map(|(n, i)| (i.offset, n.clone()))
        .collect();
    names.sort();
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut segs = Vec::new();
    let mut infos: HashMap<String, TensorInfo> = HashMap::new();
    let mut virt = 0u64;
    for (_, name) in names {
        let Some(info) = ct.tensor_infos.get(&name) else {
            continue;
        };
        let elems = info.shape.elem_count();
        let src_len = elems / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
        let convert = needs_requant(info);
        let dtype = if convert {
            *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
            GgmlDType::Q8_0
        } else {
            info.ggml_dtype
        };
        let len = (elems / dtype.block_size() * dtype.type_size()) as u64;
        segs.push(Segment {
            virt,
            len,
            src: ct.tensor_data_offset + info.offset,
            src_len,
            dtype: info.ggml_dtype,
            dims: info.shape.dims().to_vec(),
            convert,
        });
        infos.insert(
            name,
            TensorInfo {
                ggml_dtype: dtype,
                shape: info.shape.clone(),
                offset: virt,
            },
        );
        virt = (virt + len).div_ceil(32) * 32;
    }
    if counts.is_empty() {
        return Err(reader);
    }
    ct.tensor_infos = infos;
    ct.tensor_data_offset = 0;
    let note: Vec<String> = counts
        .iter()
        .map(|(t, n)| format!("{t}→Q8_0 ×{n}"))
        .collect();
    let total = segs.last().map_or(0, |s| s.virt + s.len);
    Ok((
        Requantizing {
            inner: reader,
            segs,
            total,
            pos: 0,
            cache: None,
        },
        note.join(", "),
    ))
}

fn meta_u32(ct: &Content, key: &str) -> Option<u32> {
    match ct.metadata.get(key)? {
        Value::U8(v) => Some(u32::from(*v)),
        Value::U16(v) => Some(u32::from(*v)),
        Value::U32(v) => Some(*v),
        Value::I32(v) => u32::try_from(*v).ok(),
        Value::U64(v) => u32::try_from(*v).ok(),
        Value::I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

fn meta_str<'a>(ct: &'a Content, key: &str) -> Option<&'a str> {
    match ct.metadata.get(key)? {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The default prompt for a chat template: the template's own user/assistant turn asking for
/// the capital of France, else a raw completion prompt.
pub(crate) fn default_prompt(template: Option<&str>) -> String {
    const Q: &str = "What is the capital of France?";
    let t = template.unwrap_or("");
    if t.contains("<|im_start|>") {
        format!("<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n")
    } else if t.contains("<|start_header_id|>") {
        format!(
            "<|start_header_id|>user<|end_header_id|>\n\n{Q}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )
    } else if t.contains("<start_of_turn>") {
        format!("<start_of_turn>user\n{Q}<end_of_turn>\n<start_of_turn>model\n")
    } else if t.contains("<|user|>") {
        format!("<|user|>\n{Q}<|end|>\n<|assistant|>\n")
    } else {
        "The capital of France is".to_owned()
    }
}

/// End-of-turn tokens besides `eos_token_id` that chat templates end an answer with.
const END_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "<|endoftext|>",
];

fn fixed_ids(vocab: usize) -> Vec<u32> {
    let v = vocab.max(1) as u64;
    (0..8u64).map(|i| ((i * 7 + 1) % v) as u32).collect()
}

fn check_finite(logits: &[f32], vocab: usize, when: &str) -> Result<u32, Stop> {
    if logits.is_empty() {
        return fail(format!("the model returned no logits {when}"));
    }
    if vocab > 0 && logits.len() != vocab {
        return fail(format!(
            "the model returned {} logits {when}, the vocabulary has {vocab}",
            logits.len()
        ));
    }
    if let Some((i, x)) = logits.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return fail(format!("logit {i} is {x} {when}: the weights are corrupt"));
    }
    let mut best = 0usize;
    let mut lowest = logits[0];
    for (i, x) in logits.iter().enumerate() {
        if *x > logits[best] {
            best = i;
        }
        lowest = lowest.min(*x);
    }
    if logits.len() > 1 && lowest.to_bits() == logits[best].to_bits() {
        // candle's quantized matmul quantises activations with a NaN-ignoring max, so a NaN hidden
        // state comes out as all-equal (zero) logits rather than NaN: treat that as corrupt too.
        return fail(format!(
            "all {} logits are {lowest} {when}: the hidden state is degenerate (NaN or zero weights)",
            logits.len()
        ));
    }
    Ok(best as u32)
}

pub(crate) fn run(
    path: &Path,
    opts: &SmokeOptions,
    dev: &Device,
    report: &mut SmokeReport,
) -> Result<(), Stop> {
    let started = Instant::now();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot open `{}`: {e}", path.display())),
    };
    let file_bytes = file.metadata().map_or(0, |m| m.len());
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut ct = match Content::read(&mut reader) {
        Ok(ct) => ct,
        Err(e) => {
            return fail(format!(
                "cannot read the GGUF header ({file_bytes} bytes; truncated, corrupt or not GGUF): {}",
                first_line(&e)
            ));
        }
    };
    check_extents(&ct, file_bytes)?;
    let Some(arch) = meta_str(&ct, "general.architecture").map(str::to_owned) else {
        return fail("metadata key `general.architecture` is missing or not a string");
    };
    report.architecture = Some(arch.clone());
    let Some(spec) = SPECS.iter().find(|s| s.arch == arch) else {
        return Err(Stop::Skipped(format!(
            "architecture `{arch}` has no quantized loader wired in candle-transformers 0.11.1 \
             (supported: {})",
            SUPPORTED_ARCHITECTURES.join(", ")
        )));
    };
    check_spec(&ct, spec)?;
    let vocab = ct
        .tensor_infos
        .get("token_embd.weight")
        .and_then(|i| i.shape.dims().first().copied())
        .unwrap_or(0);

    // Tokenizer and prompt, before the loader takes the header.
    let (tokenizer, why_fixed) = if meta_str(&ct, "tokenizer.ggml.model") == Some("llama") {
        match crate::spm::from_gguf(&ct) {
            Ok(t) => (Some(t), String::new()),
            Err(e) => (
                None,
                format!("the embedded SentencePiece tokenizer cannot be built: {e}"),
            ),
        }
    } else if ct.metadata.contains_key("tokenizer.ggml.model") {
        match tokenizers::Tokenizer::from_gguf(&ct) {
            Ok(t) => (Some(t), String::new()),
            Err(e) => (
                None,
                format!("the embedded tokenizer cannot be built: {}", first_line(&e)),
            ),
        }
    } else {
        (None, "the GGUF has no tokenizer.ggml.* metadata".to_owned())
    };
    let mut stop_ids: Vec<u32> = meta_u32(&ct, "tokenizer.ggml.eos_token_id")
        .into_iter()
        .collect();
    let prompt_ids: Vec<u32> = if let Some(tok) = &tokenizer {
        report.tokenizer = Some("gguf-embedded".to_owned());
        for t in END_TOKENS {
            if let Some(id) = tok.token_to_id(t) {
                stop_ids.push(id);
            }
        }
        let prompt = opts
            .prompt
            .clone()
            .unwrap_or_else(|| default_prompt(meta_str(&ct, "tokenizer.chat_template")));
        match tok.encode(prompt.as_str(), true) {
            Ok(enc) => enc.get_ids().to_vec(),
            Err(e) => {
                return fail(format!(
                    "the embedded tokenizer cannot encode the prompt: {e}"
                ));
            }
        }
    } else {
        report.tokenizer = Some("fixed-ids".to_owned());
        fixed_ids(vocab)
    };
    if prompt_ids.is_empty() {
        return fail("the prompt encodes to no tokens");
    }
    if let Some(bad) = prompt_ids.iter().find(|&&id| id as usize >= vocab) {
        return fail(format!(
            "the tokenizer produced id {bad}, outside the model's vocabulary of {vocab}"
        ));
    }
    report.prompt_tokens = prompt_ids.len();

    if arch == "qwen3" && dev.is_cpu() {
        // candle's qwen3 runs F16 activations unless told otherwise; F32 is the CPU's native type.
        ct.metadata
            .insert("general.dtype".to_owned(), Value::U32(0));
    }
    let loaded = if dev.is_cpu() && file_bytes <= opts.requantize_max_file_bytes {
        match requantize(&mut ct, reader) {
            Ok((mut converting, note)) => {
                report.requantized = Some(note);
                Model::load(&arch, ct, &mut converting, dev)
            }
            Err(mut reader) => Model::load(&arch, ct, &mut reader, dev),
        }
    } else {
        Model::load(&arch, ct, &mut reader, dev)
    };
    let mut model = match loaded {
        Ok(m) => m,
        Err(e) => {
            return fail(format!(
                "candle cannot load the {arch} model: {}",
                first_line(&e)
            ));
        }
    };
    report.load_seconds = started.elapsed().as_secs_f64();

    // Prompt.
    let t0 = Instant::now();
    let logits = model.forward(&prompt_ids, 0, dev).map_err(|e| {
        Stop::Failed(format!(
            "the forward pass on the prompt failed: {}",
            first_line(&e)
        ))
    })?;
    let mut next = check_finite(&logits, vocab, "after the prompt")?;
    let prompt_s = t0.elapsed().as_secs_f64();
    report.prompt_tokens_per_second = per_second(prompt_ids.len(), prompt_s);

    // Greedy decode.
    let t1 = Instant::now();
    let mut generated = vec![next];
    let mut pos = prompt_ids.len();
    while generated.len() < opts.max_new_tokens && !stop_ids.contains(&next) {
        let logits = model.forward(&[next], pos, dev).map_err(|e| {
            Stop::Failed(format!(
                "the forward pass at decode step {} failed: {}",
                generated.len(),
                first_line(&e)
            ))
        })?;
        next = check_finite(
            &logits,
            vocab,
            &format!("at decode step {}", generated.len()),
        )?;
        generated.push(next);
        pos += 1;
    }
    let decode_s = t1.elapsed().as_secs_f64();
    report.tokens_per_second = if generated.len() > 1 {
        per_second(generated.len() - 1, decode_s)
    } else {
        per_second(1, prompt_s)
    };
    report.generated_ids = generated.clone();
    let speed = format!(
        "prompt {} tokens at {:.1} tok/s, decode {:.1} tok/s, load {:.2} s",
        prompt_ids.len(),
        report.prompt_tokens_per_second,
        report.tokens_per_second,
        report.load_seconds
    );
    if let Some(tok) = &tokenizer {
        let text = tok.decode(&generated, true).unwrap_or_default();
        report.detail = format!(
            "generated {:?} ({} tokens; {speed}; tokenizer gguf-embedded)",
            text,
            generated.len()
        );
        report.generated_text = Some(text);
    } else {
        report.detail = format!(
            "generated ids {generated:?} from fixed prompt ids ({speed}; tokenizer: fixed-ids because {why_fixed})"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_follow_the_chat_template() {
        assert!(default_prompt(Some("{% <|im_start|> %}")).starts_with("<|im_start|>user\n"));
        assert!(default_prompt(Some("<|start_header_id|>")).contains("<|eot_id|>"));
        assert!(default_prompt(Some("<start_of_turn>")).ends_with("<start_of_turn>model\n"));
        assert!(default_prompt(Some("<|user|>")).ends_with("<|assistant|>\n"));
        assert_eq!(default_prompt(None), "The capital of France is");
    }

    #[test]
    fn fixed_ids_stay_inside_the_vocabulary() {
        assert!(fixed_ids(5).iter().all(|&i| i < 5));
        assert_eq!(fixed_ids(1000).len(), 8);
    }

    #[test]
    fn non_finite_logits_are_named() {
        let Err(Stop::Failed(d)) = check_finite(&[0.0, f32::NAN], 2, "after the prompt") else {
            panic!("nan accepted");
        };
        assert!(d.contains("logit 1 is NaN"), "{d}");
        assert_eq!(check_finite(&[0.0, 3.0, 1.0], 3, "x").ok(), Some(1));
        let Err(Stop::Failed(d)) = check_finite(&[0.0; 4], 4, "x") else {
            panic!("constant logits accepted");
        };
        assert!(d.contains("degenerate"), "{d}");
    }
}
