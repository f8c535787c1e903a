//! End-to-end tests of `fleetfit-agent apply`: the real binary plans a fixture device on a test
//! catalog, downloads from a local Hugging Face-compatible hub on 127.0.0.1, verifies with a
//! candle smoke inference (in a child process), installs, and reports. Failures must leave the
//! previous model serving.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers: failed setup fails loudly

mod common;

use common::{Entry, World, entry, report_of, sha256_hex, tiny_gguf};
use fleetfit_core::readiness::{ReadinessReport, ReadinessState, SmokeOutcome};
use fleetfit_testhub::Fault;
use std::path::Path;

#[test]
fn installs_a_gguf_from_nothing_to_ready() {
    let (w, bytes) = World::with_tiny_model();

    let o = w.apply(&[]);
    let r = report_of(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(r.state, ReadinessState::Ready);
    assert_eq!(r.model, "tiny-llama");
    assert_eq!(r.sha256, sha256_hex(&bytes));
    let v = r.verified.as_ref().expect("verified");
    assert!(v.integrity);
    assert_eq!(v.integrity_source.as_deref(), Some("catalog"));
    assert_eq!(v.smoke, SmokeOutcome::Passed, "{}", v.detail);
    assert!(v.peak_rss_bytes > 0);
    assert_eq!(
        r.serving.as_ref().map(|s| s.model.as_str()),
        Some("tiny-llama")
    );
    assert!(
        r.run.iter().any(|c| c.command.contains("llama-server -m ")),
        "{:?}",
        r.run
    );

    // The standard HF cache layout.
    let repo_dir = w.path("cache/models--acme--tiny-llama-GGUF");
    let commit = std::fs::read_to_string(repo_dir.join("refs/main")).expect("refs/main");
    let snap = repo_dir
        .join("snapshots")
        .join(commit.trim())
        .join("tiny-llama.Q8_0.gguf");
    assert_eq!(std::fs::read(&snap).expect("snapshot file"), bytes);
    assert!(
        std::fs::symlink_metadata(&snap)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(repo_dir.join("blobs").join(sha256_hex(&bytes)).is_file());
    assert_eq!(r.path, snap.display().to_string());

    // State, stable link, stored report, Modelfile.
    let st = w.state();
    assert_eq!(st["roles"]["chat"]["current"]["model"], "tiny-llama");
    assert_eq!(
        std::fs::read(w.path("state/models/chat")).expect("link"),
        bytes
    );
    let stored: ReadinessReport = serde_json::from_str(
        &std::fs::read_to_string(w.path("state/readiness.json")).expect("readiness.json"),
    )
    .expect("stored report");
    assert_eq!(stored.report_id, r.report_id);
    assert!(
        std::fs::read_to_string(w.path("state/runtimes/chat.Modelfile"))
            .expect("Modelfile")
            .starts_with("FROM ")
    );

    // Applying again changes nothing and downloads nothing.
    let gets_before = w
        .hub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    let o2 = w.apply(&[]);
    assert!(o2.status.success());
    assert_eq!(report_of(&o2).state, ReadinessState::Ready);
    let gets_after = w
        .hub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(
        gets_before, gets_after,
        "a current model is not downloaded again"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let (w, bytes) = World::with_tiny_model();
    let o = w.apply(&["--dry-run"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).expect("dry run json");
    assert_eq!(d["size_bytes"], bytes.len() as u64);
    assert_eq!(d["already_cached"], false);
    assert!(
        d["destination"]
            .as_str()
            .unwrap()
            .contains("models--acme--tiny-llama-GGUF")
    );
    assert!(d["free_bytes"].as_u64().unwrap() > d["free_after_bytes"].as_u64().unwrap());
    assert!(
        !w.hub.requests().iter().any(|r| r.method == "GET"),
        "no download in a dry run"
    );
    assert_eq!(std::fs::read_dir(w.path("cache")).unwrap().count(), 0);
    assert!(!w.path("state/state.json").exists());
}

/// Installs `tiny-llama` v1, then plans a better model whose download or smoke test goes wrong.
fn with_v1_installed() -> (World, Vec<u8>) {
    let w = World::new();
    let v1 = tiny_gguf(w.dir.path(), "llama", "v1.gguf");
    w.hub.add_file("acme/v1-GGUF", "v1.Q8_0.gguf", v1.clone());
    w.catalog(&[entry("v1", "acme/v1-GGUF", "v1.Q8_0.gguf", &v1, 0.3)]);
    let o = w.apply(&[]);
    assert!(
        o.status.success(),
        "v1: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (w, v1)
}

fn assert_v1_still_serving(w: &World, v1: &[u8], r: &ReadinessReport) {
    assert_eq!(r.state, ReadinessState::Failed);
    assert_eq!(
        r.serving.as_ref().map(|s| s.model.as_str()),
        Some("v1"),
        "{r:?}"
    );
    let st = w.state();
    assert_eq!(st["roles"]["chat"]["current"]["model"], "v1");
    assert_eq!(st["roles"]["chat"]["last_attempt"]["state"], "failed");
    assert_eq!(
        std::fs::read(w.path("state/models/chat")).expect("link"),
        v1
    );
}

#[test]
fn corrupted_download_is_quarantined_and_the_previous_model_keeps_serving() {
    let (w, v1) = with_v1_installed();
    let v2 = tiny_gguf(w.dir.path(), "qwen2", "v2.gguf");
    w.hub.add_file("acme/v2-GGUF", "v2.Q8_0.gguf", v2.clone());
    w.hub
        .set_fault("acme/v2-GGUF", "v2.Q8_0.gguf", Fault::CorruptByte(1000));
    w.catalog(&[
        entry("v1", "acme/v1-GGUF", "v1.Q8_0.gguf", &v1, 0.3),
        entry("v2", "acme/v2-GGUF", "v2.Q8_0.gguf", &v2, 0.6),
    ]);
    let o = w.apply(&[]);
    assert_eq!(o.status.code(), Some(1));
    let r = report_of(&o);
    assert_eq!(r.model, "v2");
    let err = r.error.clone().unwrap_or_default();
    assert!(
        err.contains(&sha256_hex(&v2)),
        "names the expected digest: {err}"
    );
    assert_v1_still_serving(&w, &v1, &r);
    let quarantined: Vec<_> = std::fs::read_dir(w.path("state/quarantine"))
        .expect("quarantine dir")
        .collect();
    assert_eq!(quarantined.len(), 1);
    assert!(
        !w.path("cache/models--acme--v2-GGUF/blobs")
            .join(sha256_hex(&v2))
            .exists()
    );
}

#[test]
fn catalog_sha256_mismatch_fails_and_installs_nothing() {
    let w = World::new();
    let bytes = tiny_gguf(w.dir.path(), "llama", "tiny.gguf");
    w.hub.add_file(
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        bytes.clone(),
    );
    let mut e = entry(
        "tiny-llama",
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        &bytes,
        0.5,
    );
    e.sha256 = Some("0".repeat(64));
    w.catalog(&[e]);
    let o = w.apply(&[]);
    assert_eq!(o.status.code(), Some(1));
    let r = report_of(&o);
    assert_eq!(r.state, ReadinessState::Failed);
    let err = r.error.unwrap_or_default();
    assert!(
        err.contains(&"0".repeat(64)) && err.contains(&sha256_hex(&bytes)),
        "{err}"
    );
    assert!(r.serving.is_none());
    assert!(w.state()["roles"]["chat"].get("current").is_none());
}

#[test]
fn failed_smoke_test_keeps_the_previous_model() {
    let (w, v1) = with_v1_installed();
    // A GGUF cut in the middle of its tensor data, with the catalog digest of exactly those
    // bytes: integrity passes, the smoke inference must not.
    let full = tiny_gguf(w.dir.path(), "llama", "v2.gguf");
    let cut = full[..full.len() * 2 / 3].to_vec();
    w.hub.add_file("acme/v2-GGUF", "v2.Q8_0.gguf", cut.clone());
    w.catalog(&[
        entry("v1", "acme/v1-GGUF", "v1.Q8_0.gguf", &v1, 0.3),
        entry("v2", "acme/v2-GGUF", "v2.Q8_0.gguf", &cut, 0.6),
    ]);
    let o = w.apply(&[]);
    assert_eq!(o.status.code(), Some(1));
    let r = report_of(&o);
    let v = r.verified.as_ref().expect("verified");
    assert!(v.integrity);
    assert_eq!(v.smoke, SmokeOutcome::Failed);
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("smoke test failed")
    );
    assert_v1_still_serving(&w, &v1, &r);
}

#[test]
fn hub_errors_fail_cleanly() {
    for (status, needle) in [(401, "HF_TOKEN"), (404, "acme/v2-GGUF"), (500, "500")] {
        let (w, v1) = with_v1_installed();
        let v2 = tiny_gguf(w.dir.path(), "llama", "v2.gguf");
        w.hub.add_file("acme/v2-GGUF", "v2.Q8_0.gguf", v2.clone());
        w.hub
            .set_fault("acme/v2-GGUF", "v2.Q8_0.gguf", Fault::Status(status));
        w.catalog(&[
            entry("v1", "acme/v1-GGUF", "v1.Q8_0.gguf", &v1, 0.3),
            entry("v2", "acme/v2-GGUF", "v2.Q8_0.gguf", &v2, 0.6),
        ]);
        let o = w.apply(&[]);
        assert_eq!(o.status.code(), Some(1), "status {status}");
        let r = report_of(&o);
        let err = r.error.clone().unwrap_or_default();
        assert!(err.contains(needle), "status {status}: {err}");
        assert_v1_still_serving(&w, &v1, &r);
        assert!(
            !w.path("cache/models--acme--v2-GGUF/blobs")
                .join(sha256_hex(&v2))
                .exists()
        );
    }
}

#[test]
fn an_interrupted_download_resumes() {
    let w = World::new();
    let bytes = tiny_gguf(w.dir.path(), "llama", "tiny.gguf");
    w.hub.add_file(
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        bytes.clone(),
    );
    w.hub.set_fault(
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        Fault::CutAfter(bytes.len() as u64 / 2),
    );
    w.catalog(&[entry(
        "tiny-llama",
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        &bytes,
        0.5,
    )]);
    let o = w.apply(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(report_of(&o).state, ReadinessState::Ready);
    assert!(
        w.hub.requests().iter().any(|r| r
            .range
            .as_deref()
            .is_some_and(|x| x.starts_with("bytes=") && !x.starts_with("bytes=0-"))),
        "the second GET resumes with a Range header: {:?}",
        w.hub.requests()
    );
}

#[test]
fn an_unsupported_architecture_is_skipped_not_installed() {
    let w = World::new();
    let bytes = tiny_gguf(w.dir.path(), "mamba", "m.gguf");
    w.hub.add_file("acme/m-GGUF", "m.Q8_0.gguf", bytes.clone());
    let mut e = entry("m", "acme/m-GGUF", "m.Q8_0.gguf", &bytes, 0.5);
    e.arch = "llama";
    w.catalog(&[e]);
    let o = w.apply(&[]);
    assert_eq!(o.status.code(), Some(1));
    let r = report_of(&o);
    assert_eq!(
        r.verified.as_ref().map(|v| v.smoke),
        Some(SmokeOutcome::Skipped)
    );
    assert!(
        r.error
            .unwrap_or_default()
            .contains("--allow-smoke-skipped")
    );
    // Accepted only when asked.
    let o = w.apply(&["--allow-smoke-skipped"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report_of(&o);
    assert_eq!(r.state, ReadinessState::Ready);
    assert_eq!(
        r.verified.as_ref().map(|v| v.smoke),
        Some(SmokeOutcome::Skipped)
    );
}

#[test]
fn not_enough_disk_fails_before_the_first_byte() {
    let (w, v1) = with_v1_installed();
    let v2 = tiny_gguf(w.dir.path(), "llama", "v2.gguf");
    w.hub
        .add_file_with_advertised_size("acme/v2-GGUF", "v2.Q8_0.gguf", v2.clone(), 1 << 50);
    let mut e = entry("v2", "acme/v2-GGUF", "v2.Q8_0.gguf", &v2, 0.6);
    e.sha256 = None;
    w.catalog(&[entry("v1", "acme/v1-GGUF", "v1.Q8_0.gguf", &v1, 0.3), e]);
    let gets = w
        .hub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    let o = w.apply(&[]);
    assert_eq!(o.status.code(), Some(1));
    let r = report_of(&o);
    assert!(
        r.error.clone().unwrap_or_default().contains("space"),
        "{:?}",
        r.error
    );
    assert_v1_still_serving(&w, &v1, &r);
    let gets_after = w
        .hub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, gets_after, "no byte was requested");
}

#[test]
fn installs_a_safetensors_embedding_model() {
    let w = World::new();
    let src = w.path("bert");
    fleetfit_verify::synthetic::write_tiny_bert(&src).expect("tiny bert");
    let weights = std::fs::read(src.join("model.safetensors")).expect("weights");
    w.hub
        .add_file("acme/tiny-bert", "model.safetensors", weights.clone());
    for f in ["config.json", "tokenizer.json"] {
        w.hub.add_small_file(
            "acme/tiny-bert",
            f,
            std::fs::read(src.join(f)).expect("companion"),
        );
    }
    std::fs::write(
        w.path("policies/test.yaml"),
        "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: test}\n\
         defaults:\n  roles: [embedding]\n  objective: best_quality\n  memory: {headroom_pct: 10}\n\
         \x20 context: {target_tokens: 512}\n  require: {min_context_tokens: 128}\n",
    )
    .expect("policy");
    w.catalog(&[Entry {
        id: "tiny-bert",
        repo: "acme/tiny-bert",
        file: "model.safetensors",
        format: "safetensors",
        arch: "bert",
        size: weights.len() as u64,
        sha256: Some(sha256_hex(&weights)),
        quality: 0.5,
        task: "embedding",
        url: None,
    }]);
    let o = w.apply(&["--role", "embedding"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r = report_of(&o);
    assert_eq!(r.state, ReadinessState::Ready);
    assert_eq!(
        r.verified.as_ref().map(|v| v.smoke),
        Some(SmokeOutcome::Passed)
    );
    let snap = Path::new(&r.path).parent().expect("snapshot dir");
    assert!(snap.join("config.json").is_file() && snap.join("tokenizer.json").is_file());
}

/// Requests the stand-in acknowledged: (method, path, "authorization body").
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A control-plane stand-in that answers the first `fail_first` readiness PUTs with 503, then
/// 200, and keeps every request (method, path, authorization, body).
fn report_sink(fail_first: usize) -> (String, Seen) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut served = 0usize;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_owned();
            let path = parts.next().unwrap_or("").to_owned();
            let (mut len, mut auth) = (0usize, String::new());
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    auth = h["authorization:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            served += 1;
            let status = if served <= fail_first {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            if served > fail_first {
                log.lock().unwrap().push((
                    method,
                    path,
                    auth + " " + &String::from_utf8_lossy(&body),
                ));
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: 24\r\nconnection: close\r\n\r\n{{\"acknowledged\": true }}"
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, seen)
}

#[test]
fn the_report_is_sent_and_retried_until_acknowledged() {
    let (w, _) = World::with_tiny_model();
    std::fs::write(w.path("state/credential"), "device-secret\n").expect("credential");
    let (url, seen) = report_sink(2);
    let o = w.apply(&["--server", &url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report_of(&o);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "acknowledged once after two 503s: {seen:?}");
    let (method, path, rest) = &seen[0];
    assert_eq!(method, "PUT");
    assert_eq!(path, &format!("/v1/devices/{}/readiness", r.device));
    assert!(rest.starts_with("Bearer device-secret "), "{rest}");
    assert!(rest.contains(&r.report_id));
    assert_eq!(
        std::fs::read_dir(w.path("state/outbox"))
            .expect("outbox")
            .count(),
        0
    );
}

#[test]
fn an_unreachable_server_leaves_the_report_queued() {
    let (w, _) = World::with_tiny_model();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = w.apply(&[
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--report-timeout-secs",
        "1",
    ]);
    assert!(
        o.status.success(),
        "the model is ready even if the report is not yet delivered"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("queued"));
    let queued: Vec<_> = std::fs::read_dir(w.path("state/outbox"))
        .expect("outbox")
        .collect();
    assert_eq!(queued.len(), 1);
}

/// A fleet serving models from its own storage: the catalog names a `file://` URL (no hub);
/// the catalog's sha256 is checked and the install is the same.
#[test]
fn installs_from_a_plain_file_url() {
    let w = World::new();
    let bytes = tiny_gguf(w.dir.path(), "llama", "tiny.gguf");
    let store = w.path("share/models");
    std::fs::create_dir_all(&store).expect("store");
    std::fs::write(store.join("tiny.Q8_0.gguf"), &bytes).expect("model");
    let mut e = entry("tiny-llama", "corp/tiny", "tiny.Q8_0.gguf", &bytes, 0.5);
    e.url = Some(format!("file://{}", store.join("tiny.Q8_0.gguf").display()));
    w.catalog(&[e]);
    let o = w.apply(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report_of(&o);
    assert_eq!(r.state, ReadinessState::Ready);
    assert_eq!(r.sha256, sha256_hex(&bytes));
    assert_eq!(
        r.verified
            .as_ref()
            .and_then(|v| v.integrity_source.as_deref()),
        Some("catalog")
    );
    assert!(w.hub.requests().is_empty(), "the hub is not asked");
    assert_eq!(std::fs::read(&r.path).expect("installed"), bytes);
    // A newer model whose store copy is corrupted is refused; the installed one keeps serving.
    let v2 = tiny_gguf(w.dir.path(), "qwen2", "v2.gguf");
    let mut bad = v2.clone();
    bad[500] ^= 0xff;
    std::fs::write(store.join("v2.Q8_0.gguf"), &bad).expect("corrupt");
    let mut e1 = entry("tiny-llama", "corp/tiny", "tiny.Q8_0.gguf", &bytes, 0.5);
    e1.url = Some(format!("file://{}", store.join("tiny.Q8_0.gguf").display()));
    let mut e2 = entry("v2", "corp/v2", "v2.Q8_0.gguf", &v2, 0.9);
    e2.url = Some(format!("file://{}", store.join("v2.Q8_0.gguf").display()));
    w.catalog(&[e1, e2]);
    let o = w.apply(&[]);
    assert_eq!(o.status.code(), Some(1));
    let r2 = report_of(&o);
    assert_eq!(r2.state, ReadinessState::Failed);
    assert!(
        r2.error
            .clone()
            .unwrap_or_default()
            .contains(&sha256_hex(&v2)),
        "{:?}",
        r2.error
    );
    assert_eq!(
        r2.serving.as_ref().map(|s| s.sha256.as_str()),
        Some(r.sha256.as_str())
    );
}
