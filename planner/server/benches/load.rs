//! Load test of the control plane: a real `fleetfit serve` process (release binary if built,
//! else debug; or `FLEETFIT_BIN`) on a temporary SQLite file, and N simulated agents
//! (`FLEETFIT_LOAD_AGENTS`, default 1000) that enroll, send a profile, then heartbeat every
//! 10 s (jittered) and send a readiness report every third heartbeat, for
//! `FLEETFIT_LOAD_SECONDS` (default 30). Checks that no acknowledged report is lost or stored
//! twice, prints p50/p95/p99 per endpoint, then ramps the report rate until p99 passes 100 ms,
//! and prints the server's peak RSS (VmHWM).
//!
//! `cargo build --release -p fleetfit-cli && cargo bench -p fleetfit-server --bench load`
#![allow(clippy::expect_used, clippy::unwrap_used)]

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "load-test-admin";

type Latencies = Arc<Mutex<BTreeMap<&'static str, Vec<Duration>>>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FLEETFIT_BIN") {
        return PathBuf::from(p);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    // The newer of the release and debug builds (an old one may predate `serve`).
    let newest = ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("fleetfit"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max();
    if let Some((_, p)) = newest {
        return p;
    }
    panic!("no fleetfit binary: run `cargo build --release -p fleetfit-cli` or set FLEETFIT_BIN");
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_server(db: &std::path::Path) -> (Child, String) {
    let bin = binary();
    eprintln!("server binary: {}", bin.display());
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--catalog",
            "catalog",
            "--policies",
            "policies",
        ])
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()))
        .current_dir(root())
        .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fleetfit serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_mins(1))
        .expect("server address");
    (child, format!("http://{addr}"))
}

fn record(lat: &Latencies, endpoint: &'static str, d: Duration) {
    lat.lock().unwrap().entry(endpoint).or_default().push(d);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Tiny deterministic PRNG (xorshift) for jitter, seeded per agent.
fn jitter(seed: &mut u64, max_ms: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(*seed % max_ms.max(1))
}

async fn send_report(
    c: &Client,
    base: &str,
    id: &str,
    cred: &str,
    rid: &str,
    lat: &Latencies,
) -> bool {
    let started = Instant::now();
    let r = c
        .put(format!("{base}/v1/devices/{id}/readiness"))
        .bearer_auth(cred)
        .json(&json!({"device": id, "state": "ready", "model": "qwen3-0.6b", "quant": "Q4_K_M", "report_id": rid}))
        .send()
        .await;
    record(lat, "PUT readiness", started.elapsed());
    matches!(r, Ok(r) if r.status() == StatusCode::OK)
}

/// One ramp step: `rate` reports/s offered open-loop for 3 s. Prints a table row; returns whether
/// p99 stayed within 100 ms without errors, and the acknowledged report ids.
async fn ramp_round(
    c: &Client,
    base: &str,
    creds: &[(String, String)],
    rate: u64,
    round: u64,
) -> (bool, Vec<String>) {
    let step = Duration::from_secs(3);
    let total = rate * 3;
    let interval = step.as_secs_f64() / total as f64;
    let lat_r: Latencies = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let acked_r: Arc<Mutex<Vec<String>>> = Arc::default();
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for k in 0..total {
        let at = t0 + Duration::from_secs_f64(interval * k as f64);
        tokio::time::sleep_until(at.into()).await;
        let (id, cred) = creds[(k as usize) % creds.len()].clone();
        let (c, base, lat_r, errors, acked_r) = (
            c.clone(),
            base.to_owned(),
            lat_r.clone(),
            errors.clone(),
            acked_r.clone(),
        );
        handles.push(tokio::spawn(async move {
            let rid = format!("ramp{round}-{k}");
            if send_report(&c, &base, &id, &cred, &rid, &lat_r).await {
                acked_r.lock().unwrap().push(rid);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let mut v = lat_r
        .lock()
        .unwrap()
        .remove("PUT readiness")
        .unwrap_or_default();
    v.sort();
    let p99 = percentile(&v, 0.99);
    let errs = errors.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "| {rate} | {:.0} | {} | {} | {errs} |",
        v.len() as f64 / elapsed,
        ms(percentile(&v, 0.5)),
        ms(p99)
    );
    let ids = acked_r.lock().unwrap().clone();
    (p99 <= Duration::from_millis(100) && errs == 0, ids)
}

#[tokio::main]
async fn main() {
    let agents = env_u64("FLEETFIT_LOAD_AGENTS", 1000);
    let seconds = env_u64("FLEETFIT_LOAD_SECONDS", 30);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start_server(&dir.path().join("db.sqlite"));
    let pid = child.id();
    let c = Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let token: Value = c
        .post(format!("{base}/v1/admin/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"ttl_seconds": 3600, "uses": agents}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let profile: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/fleets/showcase/vm-cpu-only.json"))
            .unwrap(),
    )
    .unwrap();
    let lat: Latencies = Arc::default();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));

    // Enrollment, 64 at a time.
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut handles = Vec::new();
    for a in 0..agents {
        let (c, base, token, lat, sem) = (
            c.clone(),
            base.clone(),
            token.clone(),
            lat.clone(),
            sem.clone(),
        );
        let mut p = profile.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let id = format!("agent-{a:05}");
            let t = Instant::now();
            let r: Value = c
                .post(format!("{base}/v1/enroll"))
                .json(&json!({"enrollment_token": token, "device_id": id}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            record(&lat, "POST enroll", t.elapsed());
            let cred = r["credential"].as_str().unwrap().to_owned();
            p["id"] = json!(id);
            let t = Instant::now();
            let r = c
                .put(format!("{base}/v1/devices/{id}/profile"))
                .bearer_auth(&cred)
                .json(&p)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            record(&lat, "PUT profile", t.elapsed());
            let t = Instant::now();
            let r = c
                .get(format!("{base}/v1/devices/{id}/plan"))
                .bearer_auth(&cred)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let _ = r.bytes().await;
            record(&lat, "GET plan", t.elapsed());
            (id, cred)
        }));
    }
    let mut creds = Vec::new();
    for h in handles {
        creds.push(h.await.unwrap());
    }
    println!(
        "enrolled {agents} agents in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Steady state: heartbeat every 10 s (±1 s), a report every third heartbeat.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for (n, (id, cred)) in creds.iter().cloned().enumerate() {
        let (c, base, lat, acked, failed) = (
            c.clone(),
            base.clone(),
            lat.clone(),
            acked.clone(),
            failed.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (n as u64 + 1);
            tokio::time::sleep(jitter(&mut seed, 10_000)).await;
            let mut beat = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = c
                    .post(format!("{base}/v1/devices/{id}/heartbeat"))
                    .bearer_auth(&cred)
                    .json(&json!({"state": "ready"}))
                    .send()
                    .await;
                record(&lat, "POST heartbeat", t.elapsed());
                if !matches!(r, Ok(ref r) if r.status() == StatusCode::OK) {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if beat.is_multiple_of(3) {
                    let rid = format!("{id}-{beat}");
                    if send_report(&c, &base, &id, &cred, &rid, &lat).await {
                        acked.lock().unwrap().insert(rid);
                    } else {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                beat += 1;
                tokio::time::sleep(Duration::from_secs(9) + jitter(&mut seed, 2000)).await;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }

    let stored: Vec<Value> = c
        .get(format!("{base}/v1/admin/reports"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = stored
        .iter()
        .map(|r| r["report_id"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    let acked_now = acked.lock().unwrap().clone();
    let lost = acked_now.difference(&unique).count();
    let duplicated = ids.len() - unique.len();
    println!(
        "\nsteady state: {agents} agents, {seconds} s: {} reports acknowledged, {} stored, lost {lost}, duplicated {duplicated}, failed requests {}",
        acked_now.len(),
        ids.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(lost, 0, "acknowledged reports lost");
    assert_eq!(duplicated, 0, "reports stored twice");

    println!("\n| endpoint | requests | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|");
    for (endpoint, v) in lat.lock().unwrap().iter_mut() {
        v.sort();
        println!(
            "| {endpoint} | {} | {} | {} | {} |",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.95)),
            ms(percentile(v, 0.99))
        );
    }

    // Ramp: open-loop reports at increasing rates, 3 s each, until p99 passes 100 ms.
    println!(
        "\n| offered reports/s | achieved reports/s | p50 ms | p99 ms | errors |\n|---:|---:|---:|---:|---:|"
    );
    let mut best = 0u64;
    let mut rate = 100u64;
    let mut round = 0u64;
    let mut ramp_ids = BTreeSet::new();
    let mut over: Option<u64> = None;
    // Double until p99 passes 100 ms, then bisect between the last good and the first bad rate.
    loop {
        round += 1;
        let (ok, ids) = ramp_round(&c, &base, &creds, rate, round).await;
        ramp_ids.extend(ids);
        if ok {
            best = rate;
        } else {
            over = Some(rate);
        }
        rate = match over {
            None if rate < 20_000 => rate * 2,
            Some(hi) if hi - best > best / 8 + 1 => u64::midpoint(best, hi),
            _ => break,
        };
    }
    let ramp_acked = ramp_ids.len();
    let stored: Vec<Value> = c
        .get(format!("{base}/v1/admin/reports"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: BTreeSet<String> = stored
        .iter()
        .map(|r| r["report_id"].as_str().unwrap().to_owned())
        .collect();
    let ramp_lost = ramp_ids.iter().filter(|r| !all.contains(*r)).count();
    println!(
        "\nramp: {ramp_acked} reports acknowledged, lost {ramp_lost}, stored rows {} (unique {})",
        stored.len(),
        all.len()
    );
    assert_eq!(ramp_lost, 0);
    println!("highest offered rate with p99 <= 100 ms: {best} reports/s");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    println!(
        "server peak RSS: {}",
        hwm.trim_start_matches("VmHWM:").trim()
    );
    let _ = child.kill();
    let _ = child.wait();
}
