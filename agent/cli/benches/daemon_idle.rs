//! The agent daemon at rest: a real `fleetfit serve`, a local hub with a tiny model, and one
//! `fleetfit-agent run` that enrolls, installs the model, then only heartbeats. Samples the
//! daemon's RSS (`VmRSS`, `VmHWM`) and CPU time (`/proc/PID/stat` utime+stime) over an idle
//! window. `FLEETFIT_BENCH_SECONDS` (default 60) sets the window, `FLEETFIT_BENCH_INTERVAL`
//! (default 10s) the heartbeat period. Target: idle RSS under 30 MB.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench binary: setup failures abort loudly

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "bench-admin";

fn bins() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("release");
    let mut args = vec![
        "build",
        "--quiet",
        "--bin",
        "fleetfit",
        "--bin",
        "fleetfit-agent",
    ];
    if profile == "release" {
        args.push("--release");
    }
    let ok = Command::new(cargo)
        .args(&args)
        .current_dir(root)
        .status()
        .expect("cargo");
    assert!(ok.success());
    (dir.join("fleetfit"), dir.join("fleetfit-agent"))
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// utime + stime in clock ticks (100 Hz on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let seconds: u64 = std::env::var("FLEETFIT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let interval = std::env::var("FLEETFIT_BENCH_INTERVAL").unwrap_or_else(|_| "10s".into());
    let (fleetfit, agent) = bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |r: &str| dir.path().join(r);
    for d in ["catalog", "policies", "cache", "state"] {
        std::fs::create_dir_all(p(d)).unwrap();
    }
    let hub = fleetfit_testhub::TestHub::start();
    let model = p("tiny.gguf");
    fleetfit_verify::synthetic::write_tiny_gguf(
        &model,
        "llama",
        fleetfit_verify::synthetic::TinyDtype::Q8_0,
        true,
    )
    .unwrap();
    let bytes = std::fs::read(&model).unwrap();
    let sha = fleetfit_testhub::sha256_hex(&bytes);
    hub.add_file("acme/tiny-llama-GGUF", "tiny.Q8_0.gguf", bytes.clone());
    std::fs::write(
        p("catalog/tiny.yaml"),
        format!(
            "id: tiny\nname: tiny\nfamily: test\nvendor: bench\nhf_repo: acme/tiny-llama-GGUF\n\
             released: 2026-01-01\nlicense: Apache-2.0\ntasks: [chat]\narchitecture:\n  gguf_arch: llama\n\
             \x20 kind: dense\n  params_total: 3000000\n  layers: 2\n  hidden_size: 256\n  ffn_size: 512\n\
             \x20 heads: 4\n  kv_heads: 2\n  head_dim: 64\n  vocab_size: 512\n  tied_embeddings: true\n\
             \x20 context_native: 4096\n  context_max: 4096\nquality:\n  index: {{chat: 0.5}}\n  basis: bench\n\
             \x20 scores: []\nartifacts:\n  - quant: Q8_0\n    format: gguf\n    repo: acme/tiny-llama-GGUF\n\
             \x20   revision: main\n    file: tiny.Q8_0.gguf\n    size_bytes: {}\n    size_exact: true\n    sha256: {sha}\n",
            bytes.len()
        ),
    )
    .unwrap();
    std::fs::write(
        p("policies/p.yaml"),
        "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: bench}\ndefaults:\n  roles: [chat]\n\
         \x20 objective: best_quality\n  memory: {headroom_pct: 10}\n  context: {target_tokens: 2048}\n\
         \x20 require: {min_context_tokens: 512}\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = Kill(
        Command::new(&fleetfit)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(format!("sqlite://{}", p("fleet.db").display()))
            .arg("--catalog")
            .arg(p("catalog"))
            .arg("--policies")
            .arg(p("policies"))
            .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let token = loop {
        let o = Command::new(&fleetfit)
            .args(["token", "create", "--server", &url, "--ttl", "1h"])
            .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        if o.status.success() {
            break String::from_utf8(o.stdout).unwrap().trim().to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let sysroot = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/hosts/cpu-only-vm"
    );
    let agent = Kill(
        Command::new(&agent)
            .args([
                "run",
                "--server",
                &url,
                "--enroll-token",
                &token,
                "--interval",
                &interval,
            ])
            .arg("--state-dir")
            .arg(p("state"))
            .arg("--models-dir")
            .arg(p("cache"))
            .args(["--sysroot", sysroot])
            .env("HF_ENDPOINT", hub.url())
            .env("CANDLE_NUM_THREADS", "1")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = agent.0.id();
    // Wait until the model is installed, then measure the idle daemon.
    let start = Instant::now();
    while !p("state/readiness.json").exists() {
        assert!(
            start.elapsed() < Duration::from_mins(1),
            "agent never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    let mut max_rss = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        max_rss = max_rss.max(proc_status(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(500));
    }
    let cpu_s = (cpu_ticks(pid) - c0) as f64 / 100.0;
    let wall = t0.elapsed().as_secs_f64();
    let rss = proc_status(pid, "VmRSS:");
    let hwm = proc_status(pid, "VmHWM:");
    println!("| figure | value |\n|---|---|");
    println!("| heartbeat interval | {interval} |");
    println!("| idle window | {wall:.0} s |");
    println!(
        "| idle RSS (end / max in window) | {:.1} MB / {:.1} MB |",
        rss as f64 / 1e6,
        max_rss as f64 / 1e6
    );
    println!(
        "| peak RSS incl. install (VmHWM) | {:.1} MB |",
        hwm as f64 / 1e6
    );
    println!(
        "| CPU while idle | {cpu_s:.2} s over {wall:.0} s = {:.3} % of one core |",
        cpu_s / wall * 100.0
    );
}
