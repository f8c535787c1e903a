//! Download throughput of `fetch()` against curl on the same local test hub, and one-core sha256 throughput.
//! `FLEETFIT_BENCH_FETCH_MIB` sets the file size (default 1024), `FLEETFIT_BENCH_DIR` where files go (default the
//! temp dir). Prints a markdown table.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use fleetfit_fetch::{FetchConfig, FetchRequest, Progress, Source, fetch};
use sha2::Digest as _;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn main() {
    let mib: u64 = std::env::var("FLEETFIT_BENCH_FETCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let bytes = mib << 20;
    // FLEETFIT_BENCH_DIR (e.g. /dev/shm) takes the disk out of the measurement.
    let dir = match std::env::var_os("FLEETFIT_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let src = dir.path().join("model.gguf");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let mut block: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for i in 0..mib {
            block[..8].copy_from_slice(&i.to_le_bytes());
            f.write_all(&block).unwrap();
        }
    }
    let hub = fleetfit_testhub::TestHub::start();
    hub.add_file_from_disk("bench/model", "model.gguf", &src)
        .unwrap();
    let cdn = hub.cdn_url("bench/model", "model.gguf").unwrap();

    let mut curl = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let st = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", &cdn])
            .status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!("curl failed; skipping the curl baseline");
            break;
        }
        curl.push(t.elapsed());
    }

    // Baselines doing the same job as fetch() with standard tools: download to a file on the same
    // disk (fsync'd), download then sha256sum the file, and curl piped into sha256sum.
    let shell = |script: &str| -> Option<Duration> {
        let out = dir.path().join("curl.out");
        let t = Instant::now();
        let ok = std::process::Command::new("sh")
            .args(["-c", script, "sh", &cdn, out.to_str().unwrap_or("curl.out")])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let d = t.elapsed();
        let _ = std::fs::remove_file(&out);
        ok.then_some(d)
    };
    let baselines: Vec<(&str, Option<Duration>)> = [
        (
            "curl -o FILE && sync FILE (same disk)",
            r#"curl -s -o "$2" "$1" && sync "$2""#,
        ),
        (
            "curl -o FILE && sha256sum FILE (download, then verify)",
            r#"curl -s -o "$2" "$1" && sha256sum "$2""#,
        ),
        (
            "curl | sha256sum (hash on the fly, no write)",
            r#"curl -s "$1" | sha256sum"#,
        ),
    ]
    .iter()
    .map(|(name, script)| {
        let runs: Option<Vec<Duration>> = (0..3).map(|_| shell(script)).collect();
        (*name, runs.map(median))
    })
    .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The floor: reqwest reading the body and dropping it (no write, no hash).
    let mut raw = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let n = rt.block_on(async {
            use futures_util::StreamExt as _;
            let mut s = reqwest::get(&cdn).await.unwrap().bytes_stream();
            let mut n = 0u64;
            while let Some(c) = s.next().await {
                n += c.unwrap().len() as u64;
            }
            n
        });
        assert_eq!(n, bytes);
        raw.push(t.elapsed());
    }
    let mut ours = Vec::new();
    for i in 0..3 {
        let cache = dir.path().join(format!("cache{i}"));
        let mut cfg = FetchConfig::from_env_with(|_| None);
        cfg.endpoint = hub.url();
        cfg.cache_dir = cache.join("hub");
        cfg.quarantine_dir = cache.join("quarantine");
        cfg.progress = Progress::Never;
        cfg.keep_free_bytes = 0;
        let req = FetchRequest::new(Source::hub("bench/model", "model.gguf"));
        let t = Instant::now();
        let got = rt.block_on(fetch(&cfg, &req)).unwrap();
        ours.push(t.elapsed());
        assert_eq!(got.size, bytes);
        std::fs::remove_dir_all(&cache).unwrap();
    }

    let buf = vec![0x5au8; 256 << 20];
    let sha_time = (0..3)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(sha2::Sha256::digest(&buf));
            t.elapsed()
        })
        .min()
        .unwrap();

    let ours_m = median(ours);
    let sha_ni = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" sha_ni"));
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("| measure ({mib} MiB, 127.0.0.1, {cores} cores) | median of 3 | MB/s |");
    println!("|---|---|---|");
    let raw_m = median(raw);
    let row = |name: &str, d: Duration| {
        println!(
            "| {name} | {:.3} s | {:.0} |",
            d.as_secs_f64(),
            mbps(bytes, d)
        );
    };
    let curl_m = (!curl.is_empty()).then(|| median(curl));
    if let Some(c) = curl_m {
        row("curl -o /dev/null (cdn URL)", c);
    }
    row("reqwest body stream only (no write, no hash)", raw_m);
    row(
        "fetch() into a fresh cache (HEAD, GET, sha256, write, fsync, link)",
        ours_m,
    );
    for (name, d) in &baselines {
        if let Some(d) = d {
            row(name, *d);
        }
    }
    if let Some(c) = curl_m {
        println!(
            "| ratio fetch / curl -o /dev/null (target >= 0.90) | | {:.2} |",
            c.as_secs_f64() / ours_m.as_secs_f64()
        );
    }
    for (name, d) in &baselines {
        if let Some(d) = d {
            println!(
                "| ratio fetch / {name} | | {:.2} |",
                d.as_secs_f64() / ours_m.as_secs_f64()
            );
        }
    }
    println!(
        "| sha256 of 256 MiB in memory, one core, best of 3 (sha_ni: {sha_ni}; target >= 1000) | {:.3} s | {:.0} |",
        sha_time.as_secs_f64(),
        mbps(256 << 20, sha_time)
    );
}
