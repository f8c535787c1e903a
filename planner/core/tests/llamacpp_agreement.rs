//! The estimator against what llama.cpp really allocated (model + KV + compute + output
//! buffers) for real and realistic-shape GGUF files at 512–131072 context, f16 and q8_0 KV,
//! flash attention on and off (`tests/fixtures/llamacpp/`, measured by
//! `tools/llamacpp-groundtruth/`). Every run must be within ±10 % of llama.cpp's total.

use fleetfit_core::Bytes;
use fleetfit_core::estimate::{Backend, KvType, ModelShape, RuntimeSettings, estimate_memory};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

fn shape(m: &Value) -> ModelShape {
    let u = |k: &str| m[k].as_u64().unwrap_or(0);
    let u32_ = |k: &str| u32::try_from(u(k)).unwrap_or(0);
    let experts = m["experts"].as_u64().map(|n| {
        (
            u32::try_from(n).unwrap_or(0),
            u32_("experts_used"),
            u32_("expert_ffn"),
        )
    });
    ModelShape {
        architecture: m["arch"].as_str().unwrap_or_default().to_owned(),
        layers: u32_("layers"),
        hidden_size: u32_("hidden"),
        ffn_size: u32_("ffn"),
        heads: u32_("heads"),
        kv_heads: u32_("kv_heads"),
        head_dim_k: u32_("head_dim"),
        head_dim_v: u32_("head_dim"),
        vocab_size: u32_("vocab"),
        context_max: u32_("n_ctx_train"),
        sliding_window: m["sliding_window"]
            .as_u64()
            .map(|w| (u32::try_from(w).unwrap_or(0), u32_("swa_layers"))),
        experts,
        params_total: 1,
        params_active: 1,
        embedding: false,
        token_embd_bytes: None,
        layer_bytes: None,
        tied_embeddings: m["tied_embeddings"].as_bool().unwrap_or(false),
    }
}

#[test]
fn estimates_are_within_ten_percent_of_llama_cpp() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llamacpp");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected llama.cpp fixtures in {}",
        dir.display()
    );
    let mut worst: f64 = 0.0;
    let mut rows = 0;
    let mut report = String::from(
        "| model | ctx | fa | kv | llama.cpp total MiB | estimate MiB | error |\n|---|---:|---|---|---:|---:|---:|\n",
    );
    for f in files {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("json");
        let model = &v["model"];
        let s = shape(model);
        let weights = Bytes(
            model["tensor_data_bytes"]
                .as_u64()
                .or(model["file_size_bytes"].as_u64())
                .unwrap_or(0),
        );
        for run in v["runs"].as_array().expect("runs") {
            let (Some(total), Some(ctx)) = (run["total_mib"].as_f64(), run["n_ctx"].as_u64())
            else {
                continue;
            };
            // Runs without mmap report the model twice (host copy + repack); compare mmap'd runs.
            if run["model_buffer_mib"].as_f64().unwrap_or(0.0) > weights.mib() * 1.5 {
                continue;
            }
            let settings = RuntimeSettings {
                context_tokens: u32::try_from(ctx).unwrap_or(0),
                kv_type: run["type_k"]
                    .as_str()
                    .unwrap_or("f16")
                    .parse::<KvType>()
                    .unwrap_or(KvType::F16),
                flash_attn: run["flash_attn"].as_bool().unwrap_or(false),
                batch: u32::try_from(run["n_batch"].as_u64().unwrap_or(2048)).unwrap_or(2048),
                ubatch: u32::try_from(run["n_ubatch"].as_u64().unwrap_or(512)).unwrap_or(512),
            };
            let est = estimate_memory(&s, weights, &settings, Backend::Cpu);
            let ours = Bytes(est.total_bytes).mib();
            let err = (ours - total) / total;
            worst = worst.max(err.abs());
            rows += 1;
            let _ = writeln!(
                report,
                "| {} | {ctx} | {} | {} | {total:.1} | {ours:.1} | {:+.1}% |",
                model["name"].as_str().unwrap_or_default(),
                if settings.flash_attn { "on" } else { "off" },
                settings.kv_type,
                err * 100.0
            );
            assert!(
                err.abs() <= 0.10,
                "{}: ctx {ctx}: estimate {ours:.1} MiB vs llama.cpp {total:.1} MiB ({:+.1}%)\n{report}",
                f.display(),
                err * 100.0
            );
        }
    }
    println!("{report}\n{rows} runs, worst error {:.1}%", worst * 100.0);
    assert!(rows >= 30);
}
