//! `cargo bench -p fleetfit-cli`: the performance targets, measured and printed as a
//! table (copy the figures into BENCHMARKS.md).
//!
//! 1. `fleetfit plan` for one machine on the full embedded catalog: wall time and peak RSS of the
//!    real binary, per run (target < 20 ms, < 20 MB).
//! 2. Planning synthetic fleets of 1k, 10k and 100k mixed devices against the full catalog and
//!    the example policies, in-process, on all cores (target 100k < 2 s).
//! 3. `fleetfit estimate --gguf` on a 4 GB GGUF (Llama-3.1-8B shape, real-size vocabulary):
//!    header only (target < 50 ms).
//! 4. `fleetfit diff` of a realistic policy change (`tests/fixtures/policy-change/head` against
//!    the example policies) over 100k mixed devices: both plans, the diff and the markdown
//!    (target < 5 s on 2 cores; `FLEETFIT_BENCH_ONLY=diff` runs only this one).
#![allow(unsafe_code)]
#![allow(clippy::expect_used)] // a benchmark: a failed setup step should stop it loudly

use fleetfit_core::catalog::parse_catalog;
use fleetfit_core::defaults;
use fleetfit_core::gguf::{GgmlType, GgufArray, GgufValue, GgufValueType, write_header};
use fleetfit_core::plan::{PlanInputs, PlanOptions, plan};
use fleetfit_core::policy::parse_policies;
use fleetfit_core::profile::DeviceProfile;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Peak RSS (bytes) of the largest child waited for so far.
fn children_max_rss() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass; RUSAGE_CHILDREN is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) };
    if rc == 0 {
        u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
    } else {
        0
    }
}

fn showcase() -> Vec<DeviceProfile> {
    let dir = root().join("tests/fixtures/fleets/showcase");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

/// A mixed fleet: the showcase classes in realistic proportions (mostly laptops), each device
/// with its own id, labels and free memory, so no two plans are trivially identical.
fn synthetic_fleet(n: usize, classes: &[DeviceProfile]) -> Vec<DeviceProfile> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let weights: Vec<(usize, u64)> = classes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                i,
                match p.labels.get("form_factor").map(String::as_str) {
                    Some("laptop") => 40,
                    Some("phone") => 25,
                    Some("vm") => 10,
                    Some("workstation" | "desktop") => 8,
                    Some("edge") => 5,
                    _ => 2,
                },
            )
        })
        .collect();
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    let depts = [
        "finance",
        "engineering",
        "sales",
        "research",
        "operations",
        "it",
    ];
    (0..n)
        .map(|i| {
            let mut pick = next() % total;
            let mut class = 0;
            for (c, w) in &weights {
                if pick < *w {
                    class = *c;
                    break;
                }
                pick -= w;
            }
            let mut p = classes[class].clone();
            p.id = format!("{}-{i:06}", p.id);
            p.hostname.clone_from(&p.id);
            p.labels.insert(
                "dept".into(),
                depts[(next() % depts.len() as u64) as usize].into(),
            );
            let busy = 0.5 + (next() % 450) as f64 / 1000.0; // 50–95 % of memory available
            p.memory.available_bytes = (p.memory.total_bytes as f64 * busy) as u64;
            p
        })
        .collect()
}

fn bench_cli_single_machine(results: &mut Vec<String>) {
    let exe = env!("CARGO_BIN_EXE_fleetfit");
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = root().join("tests/fixtures/fleets/showcase/ws-rtx4090.json");
    let one = dir.path().join("one.json");
    std::fs::copy(&profile, &one).expect("copy profile");
    let args = [
        "plan",
        "--fleet",
        one.to_str().unwrap_or_default(),
        "--format",
        "json",
    ];
    let _ = Command::new(exe).args(args).output();
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let o = Command::new(exe).args(args).output().expect("run fleetfit");
        times.push(t.elapsed());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let rss = children_max_rss();
    let t_probe = {
        let mut v = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let o = Command::new(exe)
                .args(["plan", "--format", "json"])
                .output()
                .expect("run fleetfit");
            v.push(t.elapsed());
            assert!(o.status.success());
        }
        median(v)
    };
    results.push(format!(
        "| `fleetfit plan` one machine (fleet file, full catalog) | median {:.1} ms wall over 30 runs; peak RSS {:.1} MB | < 20 ms, < 20 MB |",
        median(times).as_secs_f64() * 1e3,
        rss as f64 / 1e6
    ));
    results.push(format!(
        "| `fleetfit plan` this machine (probe + plan) | median {:.1} ms wall over 10 runs | < 20 ms |",
        t_probe.as_secs_f64() * 1e3
    ));
}

fn bench_fleets(results: &mut Vec<String>) {
    let (catalog, _) = parse_catalog(&defaults::owned(defaults::CATALOG)).expect("catalog");
    let (policies, _) = parse_policies(
        &defaults::owned(defaults::EXAMPLE_POLICIES),
        Some("2026-11-24"),
    )
    .expect("policies");
    let classes = showcase();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let candidates: usize = catalog.models.iter().map(|m| m.artifacts.len()).sum();
    let mut base_rate = 0.0;
    // FLEETFIT_BENCH_SIZES=2000 (comma-separated) to profile one size.
    let sizes: Vec<usize> = std::env::var("FLEETFIT_BENCH_SIZES").ok().map_or_else(
        || vec![1_000, 10_000, 100_000],
        |v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
    );
    for n in sizes {
        let fleet = synthetic_fleet(n, &classes);
        let options = PlanOptions {
            today: Some("2026-11-24".into()),
            threads,
        };
        let runs = if n >= 100_000 { 3 } else { 5 };
        let mut times = Vec::new();
        let mut assigned = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let p = plan(&fleet, &catalog, &policies, PlanInputs::default(), &options);
            times.push(t.elapsed());
            assigned = p.summary.assigned;
        }
        let m = median(times);
        let rate = n as f64 / m.as_secs_f64();
        if n == 1_000 {
            base_rate = rate;
        }
        results.push(format!(
            "| plan {n} mixed devices × {} models / {candidates} artifacts, example policies, {threads} threads | median {:.3} s ({:.0} devices/s, {:.2}× the 1k rate); {assigned} assigned | 100k < 2 s |",
            catalog.models.len(),
            m.as_secs_f64(),
            rate,
            rate / base_rate
        ));
    }
}

fn bench_gguf_header(results: &mut Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("llama-3.1-8b-shape.Q4_K.gguf");
    let mut tensors: Vec<(String, Vec<u64>, GgmlType)> = vec![
        (
            "token_embd.weight".into(),
            vec![4096, 128_256],
            GgmlType::Q4_K,
        ),
        ("output_norm.weight".into(), vec![4096], GgmlType::F32),
        ("output.weight".into(), vec![4096, 128_256], GgmlType::Q6_K),
    ];
    for i in 0..32 {
        for (name, shape, t) in [
            ("attn_q", vec![4096, 4096], GgmlType::Q4_K),
            ("attn_k", vec![4096, 1024], GgmlType::Q4_K),
            ("attn_v", vec![4096, 1024], GgmlType::Q6_K),
            ("attn_output", vec![4096, 4096], GgmlType::Q4_K),
            ("ffn_gate", vec![4096, 14_336], GgmlType::Q4_K),
            ("ffn_up", vec![4096, 14_336], GgmlType::Q4_K),
            ("ffn_down", vec![14_336, 4096], GgmlType::Q6_K),
            ("attn_norm", vec![4096], GgmlType::F32),
            ("ffn_norm", vec![4096], GgmlType::F32),
        ] {
            tensors.push((format!("blk.{i}.{name}.weight"), shape, t));
        }
    }
    let tokens: Vec<GgufValue> = (0..128_256)
        .map(|i| GgufValue::String(format!("tok{i:06}_ĠHello")))
        .collect();
    let merges: Vec<GgufValue> = (0..280_147)
        .map(|i| GgufValue::String(format!("Ġ{i} t{i}")))
        .collect();
    let meta = vec![
        ("general.architecture", GgufValue::String("llama".into())),
        ("general.file_type", GgufValue::U32(15)),
        ("llama.block_count", GgufValue::U32(32)),
        ("llama.context_length", GgufValue::U32(131_072)),
        ("llama.embedding_length", GgufValue::U32(4096)),
        ("llama.feed_forward_length", GgufValue::U32(14_336)),
        ("llama.attention.head_count", GgufValue::U32(32)),
        ("llama.attention.head_count_kv", GgufValue::U32(8)),
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens",
            GgufValue::Array(GgufArray::new(GgufValueType::String, tokens)),
        ),
        (
            "tokenizer.ggml.merges",
            GgufValue::Array(GgufArray::new(GgufValueType::String, merges)),
        ),
    ];
    let refs: Vec<(&str, &[u64], GgmlType)> = tensors
        .iter()
        .map(|(n, s, t)| (n.as_str(), s.as_slice(), *t))
        .collect();
    let mut f = std::fs::File::create(&path).expect("create");
    let data_start = write_header(&mut f, &meta, &refs).expect("header");
    // The weights: a sparse 4+ GB tail, so the file has its real size without writing 4 GB.
    let data: u64 = refs
        .iter()
        .map(|(_, s, t)| s.iter().product::<u64>() / t.block_size() * t.type_size())
        .sum();
    f.set_len(data_start + data + 64).expect("extend");
    drop(f);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let exe = env!("CARGO_BIN_EXE_fleetfit");
    let args = [
        "estimate",
        "--gguf",
        path.to_str().unwrap_or_default(),
        "--context",
        "8192",
        "--format",
        "json",
    ];
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let o = Command::new(exe).args(args).output().expect("run");
        times.push(t.elapsed());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut inproc = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let file = std::fs::File::open(&path).expect("open");
        let mut r = std::io::BufReader::with_capacity(1 << 20, file);
        let h = fleetfit_core::gguf::read_header(&mut r).expect("header");
        let _ = h.model_facts().expect("facts");
        inproc.push(t.elapsed());
    }
    results.push(format!(
        "| `fleetfit estimate --gguf` on a {:.2} GB GGUF (128k-token vocab, 280k merges) | median {:.1} ms wall per process over 20 runs; header parse in-process {:.1} ms | < 50 ms |",
        size as f64 / 1e9,
        median(times).as_secs_f64() * 1e3,
        median(inproc).as_secs_f64() * 1e3
    ));
}

fn bench_diff(results: &mut Vec<String>) {
    let (catalog, _) = parse_catalog(&defaults::owned(defaults::CATALOG)).expect("catalog");
    let (base, _) = parse_policies(
        &defaults::owned(defaults::EXAMPLE_POLICIES),
        Some("2026-11-24"),
    )
    .expect("base policies");
    let head_dir = root().join("tests/fixtures/policy-change/head");
    let mut head_files: Vec<PathBuf> = std::fs::read_dir(&head_dir)
        .expect("head policy dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    head_files.sort();
    let head_sources: Vec<(String, String)> = head_files
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(p).expect("read head policy"),
            )
        })
        .collect();
    let (head, _) = parse_policies(&head_sources, Some("2026-11-24")).expect("head policies");
    let n = 100_000;
    let fleet = synthetic_fleet(n, &showcase());
    let threads = std::env::var("FLEETFIT_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let options = PlanOptions {
        today: Some("2026-11-24".into()),
        threads,
    };
    let mut times = Vec::new();
    let mut figures = (0, 0, 0);
    for _ in 0..3 {
        let t = Instant::now();
        let b = plan(&fleet, &catalog, &base, PlanInputs::default(), &options);
        let h = plan(&fleet, &catalog, &head, PlanInputs::default(), &options);
        let report = fleetfit_core::diff::diff(&b, &h);
        let md = fleetfit_core::diff::diff_markdown(&report);
        times.push(t.elapsed());
        figures = (md.len(), report.groups.len(), report.summary.changed);
    }
    let (md_len, groups, changed) = figures;
    // FLEETFIT_BENCH_DIFF_OUT=diff.md writes the last markdown, to read what reviewers would.
    if let Ok(path) = std::env::var("FLEETFIT_BENCH_DIFF_OUT") {
        let b = plan(&fleet, &catalog, &base, PlanInputs::default(), &options);
        let h = plan(&fleet, &catalog, &head, PlanInputs::default(), &options);
        let report = fleetfit_core::diff::diff(&b, &h);
        std::fs::write(&path, fleetfit_core::diff::diff_markdown(&report)).expect("write markdown");
        std::fs::write(
            format!("{path}.txt"),
            fleetfit_core::diff::diff_text(&report),
        )
        .expect("write text");
    }
    results.push(format!(
        "| `fleetfit diff` {n} mixed devices, example policies -> policy-change/head, {threads} threads (2 plans + diff + markdown) | median {:.3} s over 3 runs; {changed} devices change in {groups} groups; markdown {md_len} chars | < 5 s on 2 cores |",
        median(times).as_secs_f64()
    ));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a quick pass then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut results = vec![
        "| benchmark | measured | target |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    if quick {
        println!("plan_bench: run with `cargo bench -p fleetfit-cli` for figures");
        return;
    }
    let only = std::env::var("FLEETFIT_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "cli" {
        bench_cli_single_machine(&mut results);
    }
    if only.is_empty() || only == "gguf" {
        bench_gguf_header(&mut results);
    }
    if only.is_empty() || only == "fleet" {
        bench_fleets(&mut results);
    }
    if only.is_empty() || only == "diff" {
        bench_diff(&mut results);
    }
    println!("\n{}", results.join("\n"));
}
