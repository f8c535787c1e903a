//! A `tokenizers::Tokenizer` for GGUFs whose embedded tokenizer is SentencePiece-style
//! (`tokenizer.ggml.model = "llama"`: Llama 2, Mistral, Phi-3, Gemma …), which candle's
//! `TokenizerFromGguf` does not build. Mirrors Hugging Face's LlamaConverter: a BPE model with
//! byte fallback whose merges are derived from the vocabulary (a merge for every token that
//! splits into two tokens, best score first), `▁` for spaces, and a BOS template when
//! `add_bos_token` says so. Pure: reads the header only.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, Tokenizer};

fn strings(ct: &Content, key: &str) -> Result<Vec<String>, String> {
    match ct.metadata.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "`{key}` holds a {:?}, not strings",
                    other.value_type()
                )),
            })
            .collect(),
        Some(other) => Err(format!("`{key}` is {:?}, not an array", other.value_type())),
        None => Err(format!("`{key}` is missing")),
    }
}

fn numbers(ct: &Content, key: &str) -> Vec<f64> {
    match ct.metadata.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::F32(x) => f64::from(*x),
                Value::F64(x) => *x,
                Value::I32(x) => f64::from(*x),
                Value::U32(x) => f64::from(*x),
                _ => 0.0,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn id(ct: &Content, key: &str) -> Option<u32> {
    match ct.metadata.get(key)? {
        Value::U32(v) => Some(*v),
        Value::I32(v) => u32::try_from(*v).ok(),
        Value::U64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// Builds the tokenizer of a `tokenizer.ggml.model = "llama"` GGUF.
pub(crate) fn from_gguf(ct: &Content) -> Result<Tokenizer, String> {
    let tokens = strings(ct, "tokenizer.ggml.tokens")?;
    let scores = numbers(ct, "tokenizer.ggml.scores");
    let types = numbers(ct, "tokenizer.ggml.token_type");
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    // SentencePiece BPE merges the pair whose merged piece scores highest; without scores the
    // piece's id stands in (earlier pieces were learned first).
    let rank = |i: usize| -> f64 { scores.get(i).copied().unwrap_or(-(i as f64)) };
    let mut merges: Vec<(f64, u32, String, String)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let is_normal = types
            .get(i)
            .is_none_or(|ty| (*ty - 1.0).abs() < f64::EPSILON);
        if !is_normal || t.chars().count() < 2 {
            continue;
        }
        for (split, _) in t.char_indices().skip(1) {
            let (a, b) = t.split_at(split);
            if let (Some(ia), Some(ib)) = (vocab.get(a), vocab.get(b)) {
                merges.push((rank(i), ia.max(ib).to_owned(), a.to_owned(), b.to_owned()));
            }
        }
    }
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let merges: Vec<(String, String)> = merges.into_iter().map(|(_, _, a, b)| (a, b)).collect();
    let unk = id(ct, "tokenizer.ggml.unknown_token_id")
        .and_then(|i| tokens.get(i as usize).cloned())
        .unwrap_or_else(|| "<unk>".to_owned());
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk)
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(|e| format!("cannot build the BPE model: {e}"))?;
    let mut tok = Tokenizer::new(bpe);
    let space = Replace::new(" ", "▁").map_err(|e| e.to_string())?;
    let normalizer = NormalizerSequence::new(vec![
        NormalizerWrapper::Prepend(Prepend::new("▁".to_owned())),
        NormalizerWrapper::Replace(space),
    ]);
    tok.with_normalizer(Some(normalizer))
        .map_err(|e| e.to_string())?;
    let unspace = Replace::new("▁", " ").map_err(|e| e.to_string())?;
    tok.with_decoder(Some(DecoderSequence::new(vec![
        DecoderWrapper::Replace(unspace),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
        DecoderWrapper::Strip(Strip::new(' ', 1, 0)),
    ])));
    // Control tokens (type 3) and user-defined ones (4) match as whole specials in the prompt.
    let specials: Vec<AddedToken> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            types
                .get(*i)
                .is_some_and(|t| (*t - 3.0).abs() < 0.5 || (*t - 4.0).abs() < 0.5)
        })
        .map(|(_, t)| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(specials)
        .map_err(|e| e.to_string())?;
    let add_bos = !matches!(
        ct.metadata.get("tokenizer.ggml.add_bos_token"),
        Some(Value::Bool(false))
    );
    if add_bos
        && let Some(bos) = id(ct, "tokenizer.ggml.bos_token_id")
        && let Some(name) = tokens.get(bos as usize)
    {
        let template = TemplateProcessing::builder()
            .try_single(format!("{name}:0 $A:0"))
            .map_err(|e| format!("bad BOS template: {e}"))?
            .special_tokens(vec![(name.clone(), bos)])
            .build()
            .map_err(|e| e.to_string())?;
        tok.with_post_processor(Some(template));
    }
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{TinyDtype, write_tiny_gguf};

    fn tokenizer(arch: &str) -> Tokenizer {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.gguf");
        write_tiny_gguf(&p, arch, TinyDtype::Q8_0, true).unwrap();
        let mut f = std::fs::File::open(&p).unwrap();
        let ct = Content::read(&mut f).unwrap();
        from_gguf(&ct).unwrap()
    }

    #[test]
    fn encodes_with_merges_bos_specials_and_byte_fallback() {
        let tok = tokenizer("phi3");
        let enc = tok.encode("The cat", true).unwrap();
        assert_eq!(enc.get_tokens(), ["<s>", "▁The", "▁cat"]);
        let enc = tok.encode("<|user|>\nHi é<|end|>", true).unwrap();
        let toks = enc.get_tokens();
        assert_eq!(toks[1], "<|user|>", "{toks:?}");
        assert!(
            toks.contains(&"<0x0A>".to_owned()),
            "newline falls back to a byte: {toks:?}"
        );
        assert!(
            toks.contains(&"<0xC3>".to_owned()),
            "é falls back to its UTF-8 bytes: {toks:?}"
        );
        assert_eq!(toks.last().map(String::as_str), Some("<|end|>"));
        let text = tok.decode(enc.get_ids(), true).unwrap();
        assert_eq!(text, "\nHi é");
    }
}
