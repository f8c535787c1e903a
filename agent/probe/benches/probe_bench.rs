//! How long `probe()` takes: on this host's `/` (NVML absent on the CI VM) and on the
//! `nvidia-8xh100-nvlink` fixture (eight GPUs through the fake NVML) when that fixture exists.
//! Median of 50 runs after one warm-up, in milliseconds; targets: < 50 ms on the host, < 100 ms
//! for the eight-GPU fixture. Run with `cargo bench -p fleetfit-probe --bench probe_bench`.

use fleetfit_probe::{ProbeOptions, probe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RUNS: usize = 50;

/// Median wall time of `RUNS` probes of `sysroot` (after one untimed warm-up).
fn median_ms(sysroot: &Path) -> f64 {
    let opts = ProbeOptions {
        sysroot: sysroot.to_path_buf(),
        models_dir: None,
    };
    std::hint::black_box(probe(&opts));
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(probe(std::hint::black_box(&opts)));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2].as_secs_f64() * 1e3
}

fn report(name: &str, ms: f64, target_ms: f64) {
    let verdict = if ms < target_ms { "ok" } else { "OVER TARGET" };
    println!("{name:<40} median {ms:8.3} ms over {RUNS} runs (target < {target_ms} ms: {verdict})");
}

fn main() {
    report("probe host /", median_ms(Path::new("/")), 50.0);
    let hosts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hosts");
    let nvlink = hosts.join("nvidia-8xh100-nvlink");
    if nvlink.is_dir() {
        report(
            "probe fixture nvidia-8xh100-nvlink",
            median_ms(&nvlink),
            100.0,
        );
    } else {
        println!(
            "probe fixture nvidia-8xh100-nvlink      skipped: {} does not exist yet",
            nvlink.display()
        );
    }
    for name in ["cpu-only-vm", "container-cgroup", "malformed"] {
        let dir = hosts.join(name);
        if dir.is_dir() {
            report(&format!("probe fixture {name}"), median_ms(&dir), 100.0);
        }
    }
}
