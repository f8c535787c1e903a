//! Smoke-inference speed on the real SmolLM2-135M-Instruct Q4_1 GGUF (FLEETFIT_SMOLLM2_GGUF):
//! load seconds, prompt and decode tokens per second, whole check wall time and peak RSS, and the
//! memory-bandwidth ceiling for decode (file bytes read per token ÷ bandwidth). Bandwidth comes
//! from FLEETFIT_MEM_BANDWIDTH_GBPS or is measured by summing a 1 GiB buffer once.
//! Run: `CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1 cargo bench -p fleetfit-verify`.

use fleetfit_verify::{SmokeOptions, SmokeOutcome, verify_path};
use std::path::Path;
use std::time::Instant;

fn measured_bandwidth_gbps() -> f64 {
    if let Some(v) = std::env::var("FLEETFIT_MEM_BANDWIDTH_GBPS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        return v;
    }
    let words = (1usize << 30) / 8;
    let buf: Vec<u64> = (0..words as u64).collect();
    let t = Instant::now();
    let mut acc = 0u64;
    for chunk in buf.chunks(8) {
        for (i, w) in chunk.iter().enumerate() {
            acc = acc.wrapping_add(w.rotate_left(i as u32));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(acc);
    (1u64 << 30) as f64 / secs / 1e9
}

fn main() {
    let Some(path) = std::env::var_os("FLEETFIT_SMOLLM2_GGUF") else {
        println!("ignored: FLEETFIT_SMOLLM2_GGUF unset");
        return;
    };
    let runs: usize = std::env::var("FLEETFIT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let threads = std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    println!(
        "smollm2 smoke bench: {} (CANDLE_NUM_THREADS={threads})",
        Path::new(&path).display()
    );
    let mut last = None;
    for run in 1..=runs {
        let r = verify_path(Path::new(&path), &SmokeOptions::default());
        assert_eq!(r.outcome, SmokeOutcome::Passed, "{}", r.detail);
        println!(
            "run {run}: load {:.3} s | prompt {} tok at {:.1} tok/s | decode {:.1} tok/s | check {:.3} s | text {:?}",
            r.load_seconds,
            r.prompt_tokens,
            r.prompt_tokens_per_second,
            r.tokens_per_second,
            r.total_seconds,
            r.generated_text.as_deref().unwrap_or("")
        );
        last = Some(r);
    }
    let Some(r) = last else { return };
    let gbps = measured_bandwidth_gbps();
    let ceiling = gbps * 1e9 / r.file_bytes as f64;
    println!(
        "peak rss {:.1} MiB | requantized {} | file {:.1} MiB",
        r.peak_rss_bytes as f64 / 1_048_576.0,
        r.requantized.as_deref().unwrap_or("-"),
        r.file_bytes as f64 / 1_048_576.0
    );
    println!(
        "bandwidth limit: {gbps:.1} GB/s ÷ {:.1} MB per token = {ceiling:.0} tok/s; decode reached {:.0}% of it",
        r.file_bytes as f64 / 1e6,
        100.0 * r.tokens_per_second / ceiling
    );
}
