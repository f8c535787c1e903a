//! The fleet end to end, with real processes on loopback: `fleetfit serve` (SQLite), a local
//! hub, and `fleetfit-agent run` daemons on fixture sysroots. Two agents enroll and go ready;
//! an agent killed mid-download resumes after a restart; a server killed with SIGKILL and
//! restarted is found again by its agents; SIGTERM stops an agent cleanly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::many_single_char_names
)] // test helpers: failed setup fails loudly

mod common;

use common::{World, entry, tiny_gguf};
use fleetfit_testhub::Fault;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-secret-for-agent-tests";
const HOSTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/hosts");

/// The `fleetfit` binary: built beside this package's binary by `cargo test --workspace`; built
/// here when a narrower `cargo test -p fleetfit-agent` did not.
fn fleetfit_bin() -> PathBuf {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_fleetfit-agent"));
    let bin = agent.with_file_name("fleetfit");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--bin", "fleetfit"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .status()
            .expect("cargo build --bin fleetfit");
        assert!(status.success(), "cannot build fleetfit");
    }
    bin
}

/// A child process whose stderr is collected.
struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        Proc { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < timeout,
                "no `{needle}` within {timeout:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn sigterm(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no exit 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `fleetfit serve` on `port` with the world's catalog and policies.
fn serve(w: &World, port: u16) -> (Proc, String) {
    let mut cmd = Command::new(fleetfit_bin());
    cmd.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(format!("sqlite://{}", w.path("fleet.db").display()))
        .arg("--catalog")
        .arg(w.path("catalog"))
        .arg("--policies")
        .arg(w.path("policies"))
        .args(["--stale-after", "30s"])
        .env("FLEETFIT_ADMIN_TOKEN", ADMIN);
    let p = Proc::spawn(cmd);
    p.wait_for("listening on", Duration::from_mins(1));
    (p, format!("http://127.0.0.1:{port}"))
}

fn fleetfit(args: &[&str]) -> std::process::Output {
    Command::new(fleetfit_bin())
        .args(args)
        .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("spawn fleetfit")
}

fn token(url: &str, uses: &str) -> String {
    let o = fleetfit(&[
        "token", "create", "--server", url, "--ttl", "1h", "--uses", uses,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

/// `fleetfit-agent run` for the fixture host `host` with its own state dir.
fn agent(w: &World, url: &str, token: &str, host: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetfit-agent"));
    cmd.arg("run")
        .args(["--server", url, "--enroll-token", token])
        .arg("--state-dir")
        .arg(w.path(&format!("state-{host}")))
        .arg("--sysroot")
        .arg(Path::new(HOSTS).join(host))
        .arg("--models-dir")
        .arg(w.path("cache"))
        .args(["--interval", "300ms", "--max-backoff", "1s"])
        .env("HF_ENDPOINT", w.hub.url())
        .env("CANDLE_NUM_THREADS", "1")
        .env_remove("HF_TOKEN")
        .env("HF_HOME", w.path("hf-home"));
    Proc::spawn(cmd)
}

fn status(url: &str) -> serde_json::Value {
    let o = fleetfit(&["fleet", "status", "--server", url, "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn wait_ready(url: &str, n: u64, timeout: Duration, logs: &[&Proc]) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let s = status(url);
        if s["by_state"]["ready"].as_u64() == Some(n) {
            return s;
        }
        if start.elapsed() > timeout {
            let logs: Vec<String> = logs.iter().map(|p| p.log()).collect();
            panic!(
                "not {n} ready within {timeout:?}: {s}\nlogs:\n{}",
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_agents_enroll_go_ready_and_feed_plan_and_diff() {
    let w = World::with_tiny_model().0;
    let (_server, url) = serve(&w, free_port());
    let t = token(&url, "2");
    let a = agent(&w, &url, &t, "cpu-only-vm");
    let b = agent(&w, &url, &t, "container-cgroup");
    let s = wait_ready(&url, 2, Duration::from_secs(90), &[&a, &b]);
    assert_eq!(s["models_in_use"]["tiny-llama:Q8_0"], 2, "{s}");
    assert!(w.path("state-cpu-only-vm/credential").is_file());

    // The live inventory feeds `fleetfit plan` and `fleetfit diff`.
    let fleet = format!("{url}/v1/fleet/profiles");
    let o = fleetfit(&[
        "plan",
        "--fleet",
        &fleet,
        "--catalog",
        w.path("catalog").to_str().unwrap(),
        "--policies",
        w.path("policies").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["summary"]["devices"], 2);
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        w.path("policies").to_str().unwrap(),
        "--policies",
        w.path("policies").to_str().unwrap(),
        "--catalog",
        w.path("catalog").to_str().unwrap(),
        "--base-catalog",
        w.path("catalog").to_str().unwrap(),
        "--fleet",
        &fleet,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn sigterm_stops_an_agent_cleanly() {
    let w = World::with_tiny_model().0;
    let (_server, url) = serve(&w, free_port());
    let t = token(&url, "1");
    let mut a = agent(&w, &url, &t, "cpu-only-vm");
    wait_ready(&url, 1, Duration::from_mins(1), &[&a]);
    let status = a.sigterm();
    assert!(
        status.success(),
        "exit after SIGTERM: {status:?}\n{}",
        a.log()
    );
    assert!(a.log().contains("shutting down"));
}

#[test]
fn a_server_killed_and_restarted_is_found_again() {
    let w = World::with_tiny_model().0;
    let port = free_port();
    let (mut server, url) = serve(&w, port);
    let t = token(&url, "1");
    let a = agent(&w, &url, &t, "cpu-only-vm");
    wait_ready(&url, 1, Duration::from_mins(1), &[&a]);
    server.sigkill();
    // The agent keeps trying while the server is away (and keeps serving its model).
    std::thread::sleep(Duration::from_secs(2));
    assert!(a.log().contains("retrying"), "{}", a.log());
    let (_server, url) = serve(&w, port);
    let before = a.log().matches("retrying").count();
    // Back: the device is still ready and seen again (not stale), with no new enrollment.
    let start = Instant::now();
    loop {
        let o = fleetfit(&["fleet", "status", "--server", &url, "--format", "json"]);
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if s["by_state"]["ready"] == 1 && s["stale"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not back: {s}\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(a.log().matches("enrolled as").count(), 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        a.log().matches("retrying").count(),
        before,
        "no errors once the server is back"
    );
}

#[test]
fn an_agent_killed_mid_download_resumes_after_restart() {
    let w = World::new();
    let bytes = tiny_gguf(w.dir.path(), "llama", "tiny.gguf");
    w.hub.add_file(
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        bytes.clone(),
    );
    // The first GET sends half the file and then stalls: the agent is killed while it waits.
    w.hub.set_fault(
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        Fault::StallAfter(bytes.len() as u64 / 2),
    );
    w.catalog(&[entry(
        "tiny-llama",
        "acme/tiny-llama-GGUF",
        "tiny-llama.Q8_0.gguf",
        &bytes,
        0.5,
    )]);
    let (_server, url) = serve(&w, free_port());
    let t = token(&url, "1");
    let mut a = agent(&w, &url, &t, "cpu-only-vm");
    let start = Instant::now();
    let incomplete = loop {
        let found = std::fs::read_dir(w.path("cache/models--acme--tiny-llama-GGUF/blobs"))
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "incomplete"))
            })
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= bytes.len() as u64 / 2));
        if let Some(p) = found {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_mins(1),
            "no partial download\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    a.sigkill();
    assert!(incomplete.exists());
    w.hub
        .clear_fault("acme/tiny-llama-GGUF", "tiny-llama.Q8_0.gguf");
    let a = agent(&w, &url, &t, "cpu-only-vm");
    wait_ready(&url, 1, Duration::from_mins(1), &[&a]);
    let resumed = w
        .hub
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.range.as_deref().is_some_and(|x| x != "bytes=0-"));
    assert!(
        resumed,
        "the restarted agent resumed with a Range request: {:?}",
        w.hub.requests()
    );
}
