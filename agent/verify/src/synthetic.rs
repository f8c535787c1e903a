//! Test support (compiled normally so other crates' tests can use it): WRITES tiny models with
//! deterministic xorshift weights — GGUF files for each wired architecture with exactly the
//! metadata its candle loader needs (optionally with an embedded GPT-2 byte-level BPE
//! tokenizer and a ChatML template), and a tiny BERT directory (config.json, model.safetensors,
//! tokenizer.json built with WordPiece). Each file is well under 5 MB and generates in well under
//! a second. Nothing here is a trained model: outputs are finite, not meaningful.

use crate::VerifyError;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// The weight type of a tiny GGUF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TinyDtype {
    /// 8-bit blocks of 32 (hidden size 64).
    Q8_0,
    /// 4-bit K-quant super-blocks of 256 (hidden size 256).
    Q4K,
}

/// Architectures [`write_tiny_gguf`] can write.
pub const TINY_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "phi3", "gemma3", "glm4"];

/// Deterministic xorshift64* values in [-scale, scale].
struct XorShift(u64);

impl XorShift {
    fn next_f32(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
        (r as f32 / (1u64 << 23) as f32) - 1.0
    }

    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_f32() * scale).collect()
    }
}

fn model_err(e: &candle_core::Error) -> VerifyError {
    VerifyError::Model(crate::first_line(e))
}

fn io_err(path: &Path, source: std::io::Error) -> VerifyError {
    VerifyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// GPT-2's byte → printable-character table (tokens of a byte-level BPE vocabulary).
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut out = vec![' '; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        out[b as usize] = char::from_u32(c).unwrap_or('?');
    }
    out
}

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const MERGES: [(&str, &str); 3] = [("T", "h"), ("Th", "e"), ("Ġ", "c")];

/// The vocabulary: 256 byte tokens, the merged tokens, then the special tokens.
fn vocab() -> (Vec<String>, Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = byte_chars().iter().map(ToString::to_string).collect();
    let mut merges = Vec::new();
    for (a, b) in MERGES {
        tokens.push(format!("{a}{b}"));
        merges.push(format!("{a} {b}"));
    }
    let mut types = vec![1i32; tokens.len()];
    for s in SPECIALS {
        tokens.push(s.to_owned());
        types.push(3);
    }
    (tokens, merges, types)
}

/// A SentencePiece-style vocabulary (`tokenizer.ggml.model = "llama"`, as Phi-3 and Gemma ship):
/// `<unk>`, `<s>`, `</s>`, the 256 `<0xNN>` byte tokens, printable ASCII pieces, a few merged
/// pieces, then the chat-template control tokens. Returns tokens, scores and token types.
fn spm_vocab(chat_specials: &[&str]) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    tokens.push("▁".into());
    types.push(1);
    for c in '!'..='~' {
        tokens.push(c.to_string());
        types.push(1);
    }
    for piece in ["Th", "The", "▁The", "▁c", "▁ca", "▁cat"] {
        tokens.push(piece.into());
        types.push(1);
    }
    for s in chat_specials {
        tokens.push((*s).to_owned());
        types.push(3);
    }
    let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
    (tokens, scores, types)
}

struct Dims {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ffn: usize,
    blocks: usize,
    vocab: usize,
}

struct Writer {
    rng: XorShift,
    dtype: GgmlDType,
    tensors: Vec<(String, QTensor)>,
}

impl Writer {
    /// A quantised matrix of `rows` outputs × `cols` inputs.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<(), VerifyError> {
        let scale = 1.0 / (cols as f32).sqrt();
        let data = self.rng.values(rows * cols, scale);
        let t = Tensor::from_vec(data, (rows, cols), &Device::Cpu).map_err(|e| model_err(&e))?;
        let q = QTensor::quantize(&t, self.dtype).map_err(|e| model_err(&e))?;
        self.tensors.push((name.to_owned(), q));
        Ok(())
    }

    /// An F32 vector (norm weights near 1, biases near 0).
    fn vector(&mut self, name: &str, n: usize, around: f32) -> Result<(), VerifyError> {
        let data: Vec<f32> = self
            .rng
            .values(n, 0.05)
            .iter()
            .map(|v| v + around)
            .collect();
        let t = Tensor::from_vec(data, n, &Device::Cpu).map_err(|e| model_err(&e))?;
        let q = QTensor::quantize(&t, GgmlDType::F32).map_err(|e| model_err(&e))?;
        self.tensors.push((name.to_owned(), q));
        Ok(())
    }
}

/// Writes a tiny GGUF of `arch` (one of [`TINY_ARCHITECTURES`]): 2 blocks, 4 heads / 2 KV heads,
/// hidden 64 (Q8_0) or 256 (Q4K), a vocabulary of a few hundred tokens. With `with_tokenizer`
/// it embeds a tokenizer like the real family's: SentencePiece-style (`llama` model, `<0xNN>`
/// byte fallback) with the Phi-3 / Gemma chat template for `phi3` / `gemma3`, else GPT-2
/// byte-level BPE with a ChatML template; without, the smoke test must fall back to fixed ids.
pub fn write_tiny_gguf(
    path: &Path,
    arch: &str,
    dtype: TinyDtype,
    with_tokenizer: bool,
) -> Result<(), VerifyError> {
    if !TINY_ARCHITECTURES.contains(&arch) {
        return Err(VerifyError::Model(format!(
            "no tiny writer for architecture `{arch}` (have: {})",
            TINY_ARCHITECTURES.join(", ")
        )));
    }
    // Phi-3 and Gemma GGUFs embed SentencePiece vocabularies; the others GPT-2 byte-level BPE.
    let spm_specials: Option<(&[&str], &str)> = match arch {
        "phi3" => Some((
            &["<|user|>", "<|assistant|>", "<|end|>"],
            "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}<|assistant|>\n",
        )),
        "gemma3" => Some((
            &["<start_of_turn>", "<end_of_turn>"],
            "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n",
        )),
        _ => None,
    };
    let (tokens, merges, types) = vocab();
    let spm = spm_specials.map(|(specials, template)| (spm_vocab(specials), template));
    let tokens = spm.as_ref().map_or(tokens, |((t, _, _), _)| t.clone());
    let hidden = match dtype {
        TinyDtype::Q8_0 => 64,
        TinyDtype::Q4K => 256,
    };
    let dims = Dims {
        hidden,
        heads: 4,
        kv_heads: 2,
        head_dim: hidden / 4,
        ffn: hidden * 2,
        blocks: 2,
        vocab: tokens.len(),
    };
    let mut wr = Writer {
        rng: XorShift(0x9E37_79B9_7F4A_7C15 ^ arch.len() as u64),
        dtype: match dtype {
            TinyDtype::Q8_0 => GgmlDType::Q8_0,
            TinyDtype::Q4K => GgmlDType::Q4K,
        },
        tensors: Vec::new(),
    };
    let u = |v: usize| Value::U32(v as u32);
    let mut md: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            Value::String(arch.to_owned()),
        ),
        ("general.name".into(), Value::String(format!("tiny-{arch}"))),
        (format!("{arch}.embedding_length"), u(dims.hidden)),
        (format!("{arch}.block_count"), u(dims.blocks)),
        (format!("{arch}.context_length"), u(512)),
        (format!("{arch}.feed_forward_length"), u(dims.ffn)),
        (format!("{arch}.attention.head_count"), u(dims.heads)),
        (format!("{arch}.attention.head_count_kv"), u(dims.kv_heads)),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-5),
        ),
        (format!("{arch}.rope.freq_base"), Value::F32(10_000.0)),
    ];
    match arch {
        "llama" | "phi3" => md.push((format!("{arch}.rope.dimension_count"), u(dims.head_dim))),
        "qwen3" | "glm4" => md.push((format!("{arch}.attention.key_length"), u(dims.head_dim))),
        "gemma3" => {
            md.push((format!("{arch}.attention.key_length"), u(dims.head_dim)));
            md.push((format!("{arch}.attention.value_length"), u(dims.head_dim)));
            md.push((format!("{arch}.attention.sliding_window"), u(64)));
        }
        _ => {}
    }
    if with_tokenizer && let Some(((_, scores, types), template)) = &spm {
        let str_array = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        md.extend([
            ("tokenizer.ggml.model".into(), Value::String("llama".into())),
            ("tokenizer.ggml.tokens".into(), str_array(&tokens)),
            (
                "tokenizer.ggml.scores".into(),
                Value::Array(scores.iter().map(|s| Value::F32(*s)).collect()),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(types.iter().map(|t| Value::I32(*t)).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".into(), u(1)),
            ("tokenizer.ggml.eos_token_id".into(), u(2)),
            ("tokenizer.ggml.unknown_token_id".into(), u(0)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
            (
                "tokenizer.chat_template".into(),
                Value::String((*template).to_owned()),
            ),
        ]);
    } else if with_tokenizer {
        let str_array = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let eos = tokens.len() - 1; // <|im_end|>
        md.extend([
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens".into(), str_array(&tokens)),
            ("tokenizer.ggml.merges".into(), str_array(&merges)),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(types.iter().map(|t| Value::I32(*t)).collect()),
            ),
            ("tokenizer.ggml.bos_token_id".into(), u(tokens.len() - 3)),
            ("tokenizer.ggml.eos_token_id".into(), u(eos)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
            (
                "tokenizer.chat_template".into(),
                Value::String(
                    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
                        .into(),
                ),
            ),
        ]);
    }

    let (h, hd, kvd) = (dims.hidden, dims.head_dim, dims.kv_heads * dims.head_dim);
    wr.matrix("token_embd.weight", dims.vocab, h)?;
    wr.vector("output_norm.weight", h, 1.0)?;
    wr.matrix("output.weight", dims.vocab, h)?;
    for b in 0..dims.blocks {
        let p = format!("blk.{b}");
        wr.vector(&format!("{p}.attn_norm.weight"), h, 1.0)?;
        wr.vector(&format!("{p}.ffn_norm.weight"), h, 1.0)?;
        wr.matrix(&format!("{p}.ffn_down.weight"), h, dims.ffn)?;
        if arch == "phi3" {
            wr.matrix(&format!("{p}.attn_qkv.weight"), h + 2 * kvd, h)?;
            wr.matrix(&format!("{p}.attn_output.weight"), h, h)?;
            wr.matrix(&format!("{p}.ffn_up.weight"), 2 * dims.ffn, h)?;
            continue;
        }
        if arch == "glm4" {
            // GLM-4 fuses gate and up into ffn_up and norms after attention and the FFN too.
            wr.matrix(&format!("{p}.attn_q.weight"), dims.heads * hd, h)?;
            wr.matrix(&format!("{p}.attn_k.weight"), kvd, h)?;
            wr.matrix(&format!("{p}.attn_v.weight"), kvd, h)?;
            wr.matrix(&format!("{p}.attn_output.weight"), h, dims.heads * hd)?;
            wr.matrix(&format!("{p}.ffn_up.weight"), 2 * dims.ffn, h)?;
            wr.vector(&format!("{p}.post_attention_norm.weight"), h, 1.0)?;
            wr.vector(&format!("{p}.post_ffw_norm.weight"), h, 1.0)?;
            continue;
        }
        wr.matrix(&format!("{p}.attn_q.weight"), dims.heads * hd, h)?;
        wr.matrix(&format!("{p}.attn_k.weight"), kvd, h)?;
        wr.matrix(&format!("{p}.attn_v.weight"), kvd, h)?;
        wr.matrix(&format!("{p}.attn_output.weight"), h, dims.heads * hd)?;
        wr.matrix(&format!("{p}.ffn_gate.weight"), dims.ffn, h)?;
        wr.matrix(&format!("{p}.ffn_up.weight"), dims.ffn, h)?;
        if arch == "qwen2" {
            wr.vector(&format!("{p}.attn_q.bias"), dims.heads * hd, 0.0)?;
            wr.vector(&format!("{p}.attn_k.bias"), kvd, 0.0)?;
            wr.vector(&format!("{p}.attn_v.bias"), kvd, 0.0)?;
        }
        if arch == "qwen3" || arch == "gemma3" {
            wr.vector(&format!("{p}.attn_q_norm.weight"), hd, 1.0)?;
            wr.vector(&format!("{p}.attn_k_norm.weight"), hd, 1.0)?;
        }
        if arch == "gemma3" {
            wr.vector(&format!("{p}.post_attention_norm.weight"), h, 1.0)?;
            wr.vector(&format!("{p}.post_ffw_norm.weight"), h, 1.0)?;
        }
    }
    write_gguf(path, &md, &wr.tensors)
}

/// Writes metadata and tensors as a GGUF file (candle's writer: GGUF v2, 32-byte alignment).
pub fn write_gguf(
    path: &Path,
    metadata: &[(String, Value)],
    tensors: &[(String, QTensor)],
) -> Result<(), VerifyError> {
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let file = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    gguf_file::write(&mut out, &md, &ts).map_err(|e| model_err(&e))?;
    std::io::Write::flush(&mut out).map_err(|e| io_err(path, e))
}

/// A GGUF string value (so callers need not depend on candle to edit metadata).
pub fn string_value(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// A GGUF's metadata and tensors, each sorted by name.
pub type GgufParts = (Vec<(String, Value)>, Vec<(String, QTensor)>);

/// Reads a GGUF's metadata and tensors back, to write a modified copy in tests.
pub fn read_gguf(path: &Path) -> Result<GgufParts, VerifyError> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut r = std::io::BufReader::new(file);
    let ct = gguf_file::Content::read(&mut r).map_err(|e| model_err(&e))?;
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::new();
    for n in names {
        let t = ct
            .tensor(&mut r, n, &Device::Cpu)
            .map_err(|e| model_err(&e))?;
        tensors.push((n.clone(), t));
    }
    let mut md: Vec<(String, Value)> = ct.metadata.into_iter().collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((md, tensors))
}

const BERT_WORDS: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "woman", "is", "eating", "food",
    "piece", "of", "bread", "the", "girl", "carrying", "baby", "riding", "horse", "dog", "cat",
    "runs", "sits", "on", "mat", "in", "park", "and", "with", "red", "blue", "big", "small", ".",
    ",", "##s", "##ing", "##ed",
];

/// Writes a tiny BERT into `dir`: config.json (hidden 32, 2 layers, 2 heads),
/// model.safetensors (F32, HF names) and tokenizer.json (WordPiece, lowercasing BERT
/// normaliser, BERT pre-tokenizer, `[CLS] … [SEP]` post-processor) over a few dozen words, and
/// the vocab.txt it was built from.
pub fn write_tiny_bert(dir: &Path) -> Result<(), VerifyError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let (hidden, layers, inter, vocab, max_pos) =
        (32usize, 2usize, 64usize, BERT_WORDS.len(), 64usize);
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": inter,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": max_pos,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    });
    let config_path = dir.join("config.json");
    let text =
        serde_json::to_string_pretty(&config).map_err(|e| VerifyError::Model(e.to_string()))?;
    std::fs::write(&config_path, text + "\n").map_err(|e| io_err(&config_path, e))?;

    let mut rng = XorShift(0x0BE5_7BE5_7BE5_7001);
    let mut ts: HashMap<String, Tensor> = HashMap::new();
    let mut put =
        |name: &str, shape: &[usize], around: f32, scale: f32| -> Result<(), VerifyError> {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = rng.values(n, scale).iter().map(|v| v + around).collect();
            let t = Tensor::from_vec(data, shape, &Device::Cpu).map_err(|e| model_err(&e))?;
            ts.insert(name.to_owned(), t);
            Ok(())
        };
    let ws = 1.0 / (hidden as f32).sqrt();
    put(
        "embeddings.word_embeddings.weight",
        &[vocab, hidden],
        0.0,
        0.5,
    )?;
    put(
        "embeddings.position_embeddings.weight",
        &[max_pos, hidden],
        0.0,
        0.1,
    )?;
    put(
        "embeddings.token_type_embeddings.weight",
        &[2, hidden],
        0.0,
        0.1,
    )?;
    put("embeddings.LayerNorm.weight", &[hidden], 1.0, 0.05)?;
    put("embeddings.LayerNorm.bias", &[hidden], 0.0, 0.05)?;
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            put(&format!("{p}.{m}.weight"), &[hidden, hidden], 0.0, ws)?;
            put(&format!("{p}.{m}.bias"), &[hidden], 0.0, 0.02)?;
        }
        put(
            &format!("{p}.intermediate.dense.weight"),
            &[inter, hidden],
            0.0,
            ws,
        )?;
        put(&format!("{p}.intermediate.dense.bias"), &[inter], 0.0, 0.02)?;
        put(
            &format!("{p}.output.dense.weight"),
            &[hidden, inter],
            0.0,
            1.0 / (inter as f32).sqrt(),
        )?;
        put(&format!("{p}.output.dense.bias"), &[hidden], 0.0, 0.02)?;
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&format!("{p}.{n}.weight"), &[hidden], 1.0, 0.05)?;
            put(&format!("{p}.{n}.bias"), &[hidden], 0.0, 0.05)?;
        }
    }
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&ts, &weights).map_err(|e| model_err(&e))?;

    let tok_path = dir.join("tokenizer.json");
    write_wordpiece_tokenizer(&tok_path)
}

fn write_wordpiece_tokenizer(path: &Path) -> Result<(), VerifyError> {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::bert::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;
    // WordPiece's vocabulary map type is private to tokenizers: go through vocab.txt, which real
    // BERT snapshots ship too.
    let vocab_path = path.with_file_name("vocab.txt");
    std::fs::write(&vocab_path, BERT_WORDS.join("\n") + "\n")
        .map_err(|e| io_err(&vocab_path, e))?;
    let model = WordPiece::from_file(&vocab_path.to_string_lossy())
        .unk_token("[UNK]".to_owned())
        .build()
        .map_err(|e| VerifyError::Model(format!("cannot build the WordPiece model: {e}")))?;
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .map_err(|e| VerifyError::Model(format!("cannot set the normaliser: {e}")))?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".to_owned(), 3),
        ("[CLS]".to_owned(), 2),
    )));
    tok.save(path, true)
        .map_err(|e| VerifyError::Model(format!("cannot write `{}`: {e}", path.display())))
}
