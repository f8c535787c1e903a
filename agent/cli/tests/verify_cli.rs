//! `fleetfit-agent verify` as a process: exit codes and output on a synthetic GGUF, a truncated
//! copy, an unsupported architecture and a tiny BERT, with real candle inference.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use fleetfit_verify::synthetic::{self, TinyDtype};
use std::path::Path;
use std::process::{Command, Output};

fn verify(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetfit-agent"))
        .arg("verify")
        .args(args)
        .arg(path)
        .env("CANDLE_NUM_THREADS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run fleetfit-agent verify")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn a_synthetic_gguf_passes_in_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    synthetic::write_tiny_gguf(&p, "llama", TinyDtype::Q8_0, true).unwrap();
    let o = verify(&["--format", "json", "--max-new-tokens", "4"], &p);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["tokenizer"], "gguf-embedded");
    let ids = v["generated_ids"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.len() <= 4, "{v}");
    assert!(v["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(v["load_seconds"].as_f64().unwrap() > 0.0);
    // The ★ ReadinessReport fields are there too.
    assert_eq!(v["schema"], "fleetfit/readiness/v1");
    assert_eq!(v["state"], "ready");
    assert_eq!(v["verified"]["smoke"], "passed");
    assert_eq!(v["verified"]["integrity_source"], "not-checked");
    assert!(!v["device"].as_str().unwrap().is_empty());

    let o = verify(&["--prompt", "The cat"], &p);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().next().unwrap().contains("passed"), "{text}");
    // Byte-level BPE: "Ġ", "The", "Ġc", "a", "t" (the tiny vocabulary merges only Th, The, Ġc).
    assert!(text.contains("prompt_tokens:      5 "), "{text}");
}

#[test]
fn a_truncated_gguf_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    synthetic::write_tiny_gguf(&p, "qwen2", TinyDtype::Q8_0, false).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let o = verify(&["--format", "json"], &p);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["verified"]["smoke"], "failed");
    assert!(
        v["detail"].as_str().unwrap().contains("ends at byte"),
        "{v}"
    );
    let o = verify(&[], &p);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAILED"));
}

#[test]
fn an_unsupported_architecture_is_skipped_with_exit_0_and_said_loudly() {
    use candle_core_free::rename_arch;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny.gguf");
    synthetic::write_tiny_gguf(&src, "llama", TinyDtype::Q8_0, false).unwrap();
    let dst = dir.path().join("rwkv.gguf");
    rename_arch(&src, &dst, "rwkv6");
    let o = verify(&["--format", "json"], &dst);
    assert_eq!(o.status.code(), Some(0));
    let v = json(&o);
    assert_eq!(v["outcome"], "skipped");
    assert_eq!(v["verified"]["smoke"], "skipped");
    assert!(v["detail"].as_str().unwrap().contains("`rwkv6`"), "{v}");
    let o = verify(&[], &dst);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("SKIPPED"), "{text}");
    assert!(!text.to_lowercase().contains(" ok"), "{text}");
}

#[test]
fn a_tiny_bert_directory_passes() {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_tiny_bert(dir.path()).unwrap();
    let o = verify(&["--format", "json"], dir.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v = json(&o);
    assert_eq!(v["outcome"], "passed");
    assert_eq!(v["format"], "safetensors");
    assert_eq!(v["embedding_dim"], 32);
}

/// Rewrites a GGUF's `general.architecture` through the synthetic reader/writer.
mod candle_core_free {
    use fleetfit_verify::synthetic;
    use std::path::Path;

    pub fn rename_arch(src: &Path, dst: &Path, arch: &str) {
        let (mut md, ts) = synthetic::read_gguf(src).unwrap();
        for (k, v) in &mut md {
            if k == "general.architecture" {
                *v = synthetic::string_value(arch);
            }
        }
        synthetic::write_gguf(dst, &md, &ts).unwrap();
    }
}
