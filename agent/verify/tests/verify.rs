//! Real candle inference on synthetic models this crate writes, on damaged copies of them, and
//! (when the env vars are set) on the real SmolLM2 and all-MiniLM-L6-v2 files.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use fleetfit_verify::synthetic::{self, TinyDtype};
use fleetfit_verify::{SmokeOptions, SmokeOutcome, SmokeReport, verify_path};
use std::path::{Path, PathBuf};

/// candle's CPU pool spin-waits, so CI runs these with `CANDLE_NUM_THREADS=1` (.ci/run; see
/// dependencies.md §5). The variable cannot be set from here (`set_var` is unsafe), so say so.
fn single_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        eprintln!("note: CANDLE_NUM_THREADS unset; candle uses every core (slow on a busy box)");
    }
}

fn tiny(dir: &Path, arch: &str, dtype: TinyDtype, tok: bool) -> PathBuf {
    let p = dir.join(format!("tiny-{arch}-{dtype:?}-{tok}.gguf"));
    synthetic::write_tiny_gguf(&p, arch, dtype, tok).expect("write tiny gguf");
    p
}

fn check(path: &Path) -> SmokeReport {
    single_thread();
    verify_path(path, &SmokeOptions::default())
}

fn assert_passed(r: &SmokeReport, tokenizer: &str) {
    assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
    assert_eq!(r.tokenizer.as_deref(), Some(tokenizer), "{}", r.detail);
    assert!(
        !r.generated_ids.is_empty() && r.generated_ids.len() <= 8,
        "{r:?}"
    );
    assert!(
        r.prompt_tokens > 0 && r.load_seconds > 0.0 && r.tokens_per_second > 0.0,
        "{r:?}"
    );
    assert!(r.peak_rss_bytes > 0);
    assert_eq!(r.format, "gguf");
}

#[test]
fn every_wired_architecture_passes_with_an_embedded_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    for arch in synthetic::TINY_ARCHITECTURES {
        let p = tiny(dir.path(), arch, TinyDtype::Q8_0, true);
        assert!(std::fs::metadata(&p).unwrap().len() < 5_000_000);
        let r = check(&p);
        assert_passed(&r, "gguf-embedded");
        assert_eq!(r.architecture.as_deref(), Some(*arch));
        assert!(r.generated_text.is_some(), "{arch}: {}", r.detail);
        // The ChatML template's prompt: "<|im_start|>" is one special token, not 12 bytes.
        assert!(
            r.prompt_tokens < 60,
            "{arch}: {} prompt tokens",
            r.prompt_tokens
        );
    }
}

#[test]
fn every_wired_architecture_passes_on_fixed_ids_without_a_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    for arch in synthetic::TINY_ARCHITECTURES {
        let r = check(&tiny(dir.path(), arch, TinyDtype::Q8_0, false));
        assert_passed(&r, "fixed-ids");
        assert!(r.detail.contains("fixed-ids because"), "{}", r.detail);
        assert_eq!(r.generated_ids.len(), 8, "{arch}: {}", r.detail);
        assert!(r.generated_text.is_none());
    }
}

#[test]
fn a_k_quant_model_passes() {
    let dir = tempfile::tempdir().unwrap();
    let r = check(&tiny(dir.path(), "llama", TinyDtype::Q4K, true));
    assert_passed(&r, "gguf-embedded");
}

#[test]
fn max_new_tokens_and_the_prompt_are_honoured() {
    single_thread();
    let dir = tempfile::tempdir().unwrap();
    let p = tiny(dir.path(), "qwen2", TinyDtype::Q8_0, true);
    let opts = SmokeOptions {
        prompt: Some("The".into()),
        max_new_tokens: 3,
        ..SmokeOptions::default()
    };
    let r = verify_path(&p, &opts);
    assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
    // GPT-2 byte-level pre-tokenisation adds a prefix space: "Ġ" + the merged "The".
    assert_eq!(r.prompt_tokens, 2);
    assert!(r.generated_ids.len() <= 3);
    // Deterministic: the same file gives the same ids.
    assert_eq!(verify_path(&p, &opts).generated_ids, r.generated_ids);
}

fn with_metadata(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut Vec<(String, candle_core::quantized::gguf_file::Value)>),
) {
    let (mut md, ts) = synthetic::read_gguf(src).expect("read back");
    edit(&mut md);
    synthetic::write_gguf(dst, &md, &ts).expect("write edited");
}

#[test]
fn an_unsupported_architecture_is_skipped_not_passed() {
    use candle_core::quantized::gguf_file::Value;
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), "llama", TinyDtype::Q8_0, false);
    let dst = dir.path().join("mamba.gguf");
    with_metadata(&src, &dst, |md| {
        for (k, v) in md.iter_mut() {
            if k == "general.architecture" {
                *v = Value::String("mamba".into());
            }
        }
    });
    let r = check(&dst);
    assert_eq!(r.outcome, SmokeOutcome::Skipped, "{}", r.detail);
    assert!(r.detail.contains("`mamba`"), "{}", r.detail);
    assert!(r.generated_ids.is_empty());
}

#[test]
fn a_missing_or_mistyped_metadata_key_fails_naming_the_key() {
    use candle_core::quantized::gguf_file::Value;
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), "llama", TinyDtype::Q8_0, false);
    let dst = dir.path().join("no-heads.gguf");
    with_metadata(&src, &dst, |md| {
        md.retain(|(k, _)| k != "llama.attention.head_count");
    });
    let r = check(&dst);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(
        r.detail.contains("`llama.attention.head_count` is missing"),
        "{}",
        r.detail
    );

    let dst = dir.path().join("u64-blocks.gguf");
    with_metadata(&src, &dst, |md| {
        for (k, v) in md.iter_mut() {
            if k == "llama.block_count" {
                *v = Value::U64(2);
            }
        }
    });
    let r = check(&dst);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(
        r.detail.contains("`llama.block_count` is u64"),
        "{}",
        r.detail
    );

    let src = tiny(dir.path(), "qwen3", TinyDtype::Q8_0, false);
    let dst = dir.path().join("no-key-length.gguf");
    with_metadata(&src, &dst, |md| {
        md.retain(|(k, _)| k != "qwen3.attention.key_length");
    });
    let r = check(&dst);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(
        r.detail.contains("`qwen3.attention.key_length`"),
        "{}",
        r.detail
    );
}

#[test]
fn a_missing_tensor_fails_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), "qwen2", TinyDtype::Q8_0, false);
    let (md, mut ts) = synthetic::read_gguf(&src).unwrap();
    ts.retain(|(n, _)| n != "blk.1.attn_k.bias");
    let dst = dir.path().join("no-bias.gguf");
    synthetic::write_gguf(&dst, &md, &ts).unwrap();
    let r = check(&dst);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(
        r.detail.contains("`blk.1.attn_k.bias` is missing"),
        "{}",
        r.detail
    );
}

#[test]
fn truncated_files_fail_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), "llama", TinyDtype::Q8_0, true);
    let bytes = std::fs::read(&src).unwrap();
    let n = bytes.len();
    for (cut, expect) in [
        (3, "cannot read the GGUF header"),
        (100, "cannot read the GGUF header"),
        (n / 2, "ends at byte"),
        (n - 1, "ends at byte"),
    ] {
        let p = dir.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let r = check(&p);
        assert_eq!(
            r.outcome,
            SmokeOutcome::Failed,
            "cut at {cut}: {}",
            r.detail
        );
        assert!(r.detail.contains(expect), "cut at {cut}: {}", r.detail);
        if expect == "ends at byte" {
            assert!(
                r.detail.contains(&format!("the file has {cut} bytes")),
                "{}",
                r.detail
            );
            assert!(r.detail.contains("tensor `"), "{}", r.detail);
        }
    }
}

#[test]
fn garbage_and_empty_files_fail() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("garbage.gguf");
    let junk: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&p, junk).unwrap();
    let r = check(&p);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(r.detail.contains("GGUF"), "{}", r.detail);
    let p = dir.path().join("empty.gguf");
    std::fs::write(&p, b"").unwrap();
    assert_eq!(check(&p).outcome, SmokeOutcome::Failed);
    let r = check(&dir.path().join("absent.gguf"));
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(r.detail.contains("cannot read"), "{}", r.detail);
}

#[test]
fn nan_weights_fail_the_forward_check() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), "llama", TinyDtype::Q8_0, false);
    let (md, mut ts) = synthetic::read_gguf(&src).unwrap();
    for (n, t) in &mut ts {
        if n == "output_norm.weight" {
            let len = t.shape().elem_count();
            let nan =
                candle_core::Tensor::from_vec(vec![f32::NAN; len], len, &candle_core::Device::Cpu)
                    .unwrap();
            *t = candle_core::quantized::QTensor::quantize(
                &nan,
                candle_core::quantized::GgmlDType::F32,
            )
            .unwrap();
        }
    }
    let dst = dir.path().join("nan.gguf");
    synthetic::write_gguf(&dst, &md, &ts).unwrap();
    let r = check(&dst);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    // candle's Q8 activation quantisation turns the NaN hidden state into all-zero logits.
    assert!(
        r.detail.contains("is NaN") || r.detail.contains("degenerate"),
        "{}",
        r.detail
    );
}

#[test]
fn directories_and_symlinks_resolve_like_an_hf_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let snap = dir.path().join("snapshots/abc");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    let blob = blobs.join("0123456789abcdef");
    synthetic::write_tiny_gguf(&blob, "phi3", TinyDtype::Q8_0, true).unwrap();
    std::os::unix::fs::symlink("../../blobs/0123456789abcdef", snap.join("model.Q8_0.gguf"))
        .unwrap();
    let r = check(&snap);
    assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
    assert!(r.path.ends_with("model.Q8_0.gguf"));
    // The blob itself has no extension: sniffed by its magic.
    assert_eq!(check(&blob).outcome, SmokeOutcome::Passed);
    // An empty directory names what it looked for.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = check(&empty);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(r.detail.contains("no *.gguf"), "{}", r.detail);
}

#[test]
fn the_report_serialises_the_readiness_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let r = check(&tiny(dir.path(), "gemma3", TinyDtype::Q8_0, true));
    let v = serde_json::to_value(&r).unwrap();
    for k in [
        "outcome",
        "detail",
        "load_seconds",
        "tokens_per_second",
        "peak_rss_bytes",
        "format",
        "tokenizer",
        "file_bytes",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["outcome"], "passed");
    let back: SmokeReport = serde_json::from_value(v).unwrap();
    assert_eq!(back.generated_ids, r.generated_ids);
    assert_eq!(r.verification(true).smoke, SmokeOutcome::Passed);
}

#[test]
fn a_tiny_bert_embeds_to_unit_norm() {
    let dir = tempfile::tempdir().unwrap();
    let bert = dir.path().join("bert");
    synthetic::write_tiny_bert(&bert).unwrap();
    let r = check(&bert);
    assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
    assert_eq!(r.format, "safetensors");
    assert_eq!(r.tokenizer.as_deref(), Some("tokenizer.json"));
    assert_eq!(r.embedding_dim, Some(32));
    assert!(r.embedding_norm.unwrap() > 0.0);
    let e = fleetfit_verify::embed(&bert, &["a man is eating food.", "the girl runs."]).unwrap();
    for v in &e {
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "{n}");
    }
    // A model.safetensors path works too.
    assert_eq!(
        check(&bert.join("model.safetensors")).outcome,
        SmokeOutcome::Passed
    );
}

#[test]
fn a_damaged_or_foreign_safetensors_model_fails_or_skips() {
    let dir = tempfile::tempdir().unwrap();
    let bert = dir.path().join("bert");
    synthetic::write_tiny_bert(&bert).unwrap();
    let weights = bert.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let r = check(&bert);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(r.detail.contains("safetensors"), "{}", r.detail);

    std::fs::write(&weights, &bytes).unwrap();
    std::fs::write(
        bert.join("config.json"),
        r#"{"model_type": "mamba", "architectures": ["MambaForCausalLM"]}"#,
    )
    .unwrap();
    let r = check(&bert);
    assert_eq!(r.outcome, SmokeOutcome::Skipped, "{}", r.detail);
    assert!(r.detail.contains("`mamba`"), "{}", r.detail);
}

// The real-model checks (SmolLM2 answers Paris; MiniLM embeds like sentence-transformers) live
// in agent/cli/tests/real_models.rs, whose harness reports them as ignored when the models are absent.

#[test]
fn scalar_path_q4_1_tensors_are_requantised_at_load_and_still_run() {
    use candle_core::quantized::{GgmlDType, QTensor};
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), "llama", TinyDtype::Q8_0, true);
    let (md, mut ts) = synthetic::read_gguf(&src).unwrap();
    let mut converted = 0;
    for (n, t) in &mut ts {
        if t.dtype() == GgmlDType::Q8_0 && n.starts_with("blk.") {
            let f = t.dequantize(&candle_core::Device::Cpu).unwrap();
            *t = QTensor::quantize(&f, GgmlDType::Q4_1).unwrap();
            converted += 1;
        }
    }
    let dst = dir.path().join("q4_1.gguf");
    synthetic::write_gguf(&dst, &md, &ts).unwrap();
    let r = check(&dst);
    assert_passed(&r, "gguf-embedded");
    assert_eq!(
        r.requantized.as_deref(),
        Some(format!("Q4_1→Q8_0 ×{converted}").as_str())
    );
    // The Q8_0 original is not converted.
    assert_eq!(check(&src).requantized, None);
    // Above the size limit the file keeps its type (candle's scalar Q4_1 path) and still runs.
    let opts = SmokeOptions {
        requantize_max_file_bytes: 1000,
        ..SmokeOptions::default()
    };
    let kept = verify_path(&dst, &opts);
    assert_eq!(kept.outcome, SmokeOutcome::Passed, "{}", kept.detail);
    assert_eq!(kept.requantized, None);
}

#[test]
fn absurd_header_counts_and_shapes_fail_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let mut counts = b"GGUF".to_vec();
    counts.extend(3u32.to_le_bytes());
    counts.extend((1u64 << 60).to_le_bytes());
    counts.extend((1u64 << 60).to_le_bytes());
    counts.extend([0u8; 64]);
    let p = dir.path().join("counts.gguf");
    std::fs::write(&p, &counts).unwrap();
    let r = check(&p);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(
        r.detail.contains("cannot read the GGUF header"),
        "{}",
        r.detail
    );

    // One tensor of 2^80 elements (wraps to 0 in a plain product).
    let mut shape = b"GGUF".to_vec();
    shape.extend(3u32.to_le_bytes());
    shape.extend(1u64.to_le_bytes()); // tensors
    shape.extend(0u64.to_le_bytes()); // metadata
    shape.extend(3u64.to_le_bytes());
    shape.extend(b"abc");
    shape.extend(4u32.to_le_bytes()); // dims
    for _ in 0..4 {
        shape.extend((1u64 << 20).to_le_bytes());
    }
    shape.extend(8u32.to_le_bytes()); // Q8_0
    shape.extend(0u64.to_le_bytes()); // offset
    shape.extend([0u8; 64]);
    let p = dir.path().join("shape.gguf");
    std::fs::write(&p, &shape).unwrap();
    let r = check(&p);
    assert_eq!(r.outcome, SmokeOutcome::Failed);
    assert!(r.detail.contains("tensor `abc` has shape"), "{}", r.detail);
}
