//! End-to-end tests of the control plane: a real `fleetfit serve` process on 127.0.0.1 with a
//! temporary SQLite file, driven over HTTP (reqwest) and by the `fleetfit token|fleet|plan|diff`
//! commands. Enrollment and the full agent flow, hostile input (with nothing written),
//! durability across SIGKILL, configuration reload (file change and SIGHUP), TLS, a small load.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::many_single_char_names
)]

mod common;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-secret-for-tests";

/// A running `fleetfit serve`.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on a free port with `db`, the repository catalog and `policies`.
    fn start(db: &Path, policies: &Path, extra: &[&str]) -> Server {
        let root = common::root();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetfit"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--catalog")
            .arg("catalog")
            .arg("--policies")
            .arg(policies)
            .args(extra)
            .current_dir(&root)
            .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fleetfit serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let scheme = if line.contains("(https)") {
                        "https"
                    } else {
                        "http"
                    };
                    let _ = tx.send(format!("{scheme}://{addr}"));
                }
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        let base = rx.recv_timeout(Duration::from_mins(1)).unwrap_or_else(|_| {
            panic!(
                "server did not print its address; log:\n{}",
                log.lock().unwrap()
            )
        });
        Server { child, base, log }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no shutdown.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Runs `fleetfit` from the repository root with the admin token in the environment.
fn fleetfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(args)
        .current_dir(common::root())
        .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
        .env("NO_COLOR", "1")
        .env_remove("FLEETFIT_SERVER")
        .output()
        .expect("spawn fleetfit")
}

fn admin_get(c: &Client, s: &Server, path: &str) -> Value {
    let r = c.get(s.url(path)).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    r.json().unwrap()
}

/// Creates an enrollment token through the admin API.
fn create_token(c: &Client, s: &Server, ttl: u64, uses: u32) -> (String, String) {
    let r = c
        .post(s.url("/v1/admin/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"ttl_seconds": ttl, "uses": uses}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

fn enroll(c: &Client, s: &Server, token: &str, device: &str) -> reqwest::blocking::Response {
    c.post(s.url("/v1/enroll"))
        .json(&json!({"enrollment_token": token, "device_id": device, "hostname": device}))
        .send()
        .unwrap()
}

fn enroll_ok(c: &Client, s: &Server, token: &str, device: &str) -> String {
    let r = enroll(c, s, token, device);
    assert_eq!(r.status(), StatusCode::CREATED, "enroll {device}");
    let v: Value = r.json().unwrap();
    v["credential"].as_str().unwrap().to_owned()
}

fn showcase(name: &str) -> String {
    std::fs::read_to_string(
        common::root()
            .join(common::SHOWCASE)
            .join(format!("{name}.json")),
    )
    .unwrap()
}

fn put_profile(
    c: &Client,
    s: &Server,
    cred: &str,
    device: &str,
    body: String,
) -> reqwest::blocking::Response {
    c.put(s.url(&format!("/v1/devices/{device}/profile")))
        .bearer_auth(cred)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap()
}

fn report(device: &str, id: &str, state: &str) -> Value {
    json!({"schema": "fleetfit/readiness/v1", "device": device, "state": state,
           "model": "qwen3-8b", "quant": "Q4_K_M", "report_id": id})
}

fn put_report(
    c: &Client,
    s: &Server,
    cred: &str,
    device: &str,
    body: &Value,
) -> reqwest::Result<reqwest::blocking::Response> {
    c.put(s.url(&format!("/v1/devices/{device}/readiness")))
        .bearer_auth(cred)
        .json(body)
        .send()
}

fn temp_policies(dir: &Path) -> PathBuf {
    let p = dir.join("policies");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::copy(
        common::root().join("policies/default.yaml"),
        p.join("default.yaml"),
    )
    .unwrap();
    p
}

/// The repository's policies, relative to the root the server runs in (so rule sources read
/// `policies/default.yaml:…`, as in `fleetfit plan --policies policies`).
fn repo_policies() -> PathBuf {
    PathBuf::from("policies")
}

#[test]
fn full_flow_enroll_profile_plan_readiness_status_and_planning_on_the_live_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("db.sqlite"), &repo_policies(), &[]);
    let c = client();
    // The admin creates a two-use token with the CLI; it prints only the token on stdout.
    let out = fleetfit(&[
        "token", "create", "--server", &s.base, "--ttl", "1h", "--uses", "2", "--labels",
        "site=lab",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let token = common::stdout(&out).trim().to_owned();
    assert!(token.starts_with("ffe_") && token.len() == 68, "{token}");
    let devices = ["ws-rtx4090", "mac-m4-max"];
    let mut creds = Vec::new();
    for d in devices {
        let cred = enroll_ok(&c, &s, &token, d);
        let r = put_profile(&c, &s, &cred, d, showcase(d));
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().unwrap();
        assert!(v["profile_digest"].as_str().unwrap().starts_with("sha256:"));
        creds.push(cred);
    }
    for (d, cred) in devices.iter().zip(&creds) {
        // The server's plan is the CLI's plan of that one profile.
        let r = c
            .get(s.url(&format!("/v1/devices/{d}/plan")))
            .bearer_auth(cred)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let served: Value = r.json().unwrap();
        assert_eq!(served["schema"], "fleetfit/plan/v1");
        let file = format!("{}/{d}.json", common::SHOWCASE);
        let out = fleetfit(&[
            "plan",
            "--fleet",
            &file,
            "--catalog",
            "catalog",
            "--policies",
            "policies",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let local: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(served["devices"][0]["device"], *d);
        assert_eq!(
            served["devices"][0]["assignments"],
            local["devices"][0]["assignments"]
        );
        assert_eq!(
            served["devices"][0]["status"],
            local["devices"][0]["status"]
        );
        assert!(
            !served["devices"][0]["assignments"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        // Unchanged: 304. A heartbeat carries the same digest.
        let r = c
            .get(s.url(&format!("/v1/devices/{d}/plan")))
            .bearer_auth(cred)
            .header("if-none-match", &etag)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let hb: Value = c
            .post(s.url(&format!("/v1/devices/{d}/heartbeat")))
            .bearer_auth(cred)
            .json(&json!({"state": "verifying"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(format!("\"{}\"", hb["plan_digest"].as_str().unwrap()), etag);
        let r = put_report(&c, &s, cred, d, &report(d, &format!("{d}-1"), "ready")).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().unwrap();
        assert_eq!(v["acknowledged"], true);
    }
    // `fleetfit fleet status` shows both ready.
    let out = fleetfit(&["fleet", "status", "--server", &s.base, "--format", "json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["devices"], 2);
    assert_eq!(st["by_state"]["ready"], 2);
    assert_eq!(st["models_in_use"]["qwen3-8b:Q4_K_M"], 2);
    let out = fleetfit(&["fleet", "status", "--server", &s.base]);
    let text = common::stdout(&out);
    assert!(
        text.contains("devices: 2") && text.contains("ready"),
        "{text}"
    );
    // Planning on the live inventory.
    let inventory = s.url("/v1/fleet/profiles");
    let out = fleetfit(&["plan", "--fleet", &inventory, "--format", "json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["devices"], 2);
    let out = fleetfit(&[
        "diff",
        "--base-policies",
        "policies",
        "--policies",
        "policies/examples",
        "--fleet",
        &inventory,
        "--format",
        "json",
    ]);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(5),
        "{}",
        common::stderr(&out)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap();
    // The token is spent; the labels went to the devices; no secret reached the log.
    let tokens = admin_get(&c, &s, "/v1/admin/tokens");
    assert_eq!(tokens[0]["uses_left"], 0);
    let out = fleetfit(&["token", "list", "--server", &s.base]);
    assert!(common::stdout(&out).contains("site=lab"));
    let log = s.log();
    assert!(!log.contains(&token), "token in the log");
    for cred in &creds {
        assert!(!log.contains(cred.as_str()), "credential in the log");
    }
    assert!(!log.contains(ADMIN));
}

/// Sends the head of a PUT with a `len`-byte body and returns the status line.
fn oversized_put(s: &Server, cred: &str, path: &str, len: usize) -> String {
    use std::io::{Read as _, Write as _};
    let addr = s.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {cred}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{"
    )
    .unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn hostile_requests_get_the_right_status_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("db.sqlite"), &repo_policies(), &[]);
    let c = client();
    // Admin endpoints: no token, wrong token.
    for auth in [None, Some("wrong")] {
        let mut r = c
            .post(s.url("/v1/admin/tokens"))
            .json(&json!({"ttl_seconds": 60}));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        assert_eq!(r.send().unwrap().status(), StatusCode::UNAUTHORIZED);
        let mut r = c.get(s.url("/v1/fleet/devices"));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        assert_eq!(r.send().unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(admin_get(&c, &s, "/v1/admin/tokens"), json!([]));
    // Enrollment with a wrong, an expired, a revoked and a spent token.
    let (_, expired) = create_token(&c, &s, 0, 5);
    let (revoked_id, revoked) = create_token(&c, &s, 3600, 5);
    let out = fleetfit(&["token", "revoke", "--server", &s.base, &revoked_id]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (_, once) = create_token(&c, &s, 3600, 1);
    let wrong = format!("ffe_{}", "0".repeat(64));
    for t in [
        wrong.as_str(),
        "garbage",
        expired.as_str(),
        revoked.as_str(),
    ] {
        assert_eq!(
            enroll(&c, &s, t, "a").status(),
            StatusCode::UNAUTHORIZED,
            "{t}"
        );
    }
    assert_eq!(admin_get(&c, &s, "/v1/fleet/devices"), json!([]));
    let cred_a = enroll_ok(&c, &s, &once, "a");
    assert_eq!(
        enroll(&c, &s, &once, "b").status(),
        StatusCode::UNAUTHORIZED
    );
    let listed = admin_get(&c, &s, "/v1/fleet/devices");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, t2) = create_token(&c, &s, 3600, 1);
    let cred_b = enroll_ok(&c, &s, &t2, "b");
    // A device touching another device: 403.
    let mut profile_b: Value = serde_json::from_str(&showcase("ws-rtx4090")).unwrap();
    profile_b["id"] = json!("b");
    let r = put_profile(&c, &s, &cred_a, "b", profile_b.to_string());
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put_report(&c, &s, &cred_a, "b", &report("b", "x", "ready")).unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .get(s.url("/v1/devices/b/plan"))
        .bearer_auth(&cred_a)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Missing or garbage credentials: 401.
    let r = c
        .put(s.url("/v1/devices/a/readiness"))
        .json(&report("a", "x", "ready"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for bad in ["garbage", &format!("ffd_{}", "1".repeat(64)), &cred_b[..20]] {
        let r = put_report(&c, &s, bad, "a", &report("a", "x", "ready")).unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    // Oversized, malformed, wrong schema, wrong id.
    // The server answers 413 from the Content-Length alone (and may close before reading the
    // body, so the request is sent by hand and only the head is written).
    let status_line = oversized_put(&s, &cred_a, "/v1/devices/a/profile", 2 * 1024 * 1024);
    assert!(status_line.contains(" 413 "), "{status_line}");
    let r = put_profile(&c, &s, &cred_a, "a", "{\"schema\": ".to_owned());
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().unwrap();
    assert!(v["error"].as_str().unwrap().contains("malformed JSON"));
    let r = put_profile(&c, &s, &cred_a, "a", "{\"foo\": 1}".to_owned());
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = put_profile(&c, &s, &cred_a, "a", profile_b.to_string());
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c
        .put(s.url("/v1/devices/a/readiness"))
        .bearer_auth(&cred_a)
        .json(&json!({"device": "a", "state": "exploded"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was written by any of that.
    assert_eq!(admin_get(&c, &s, "/v1/admin/reports"), json!([]));
    assert_eq!(admin_get(&c, &s, "/v1/fleet/profiles"), json!([]));
    for d in admin_get(&c, &s, "/v1/fleet/devices").as_array().unwrap() {
        assert_eq!(d["state"], "enrolled");
        assert_eq!(d["profile_digest"], Value::Null);
    }
    // A revoked device is locked out.
    let r = c
        .delete(s.url("/v1/admin/devices/a"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = put_report(&c, &s, &cred_a, "a", &report("a", "y", "ready")).unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(s.url("/v1/devices/a/heartbeat"))
        .bearer_auth(&cred_a)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(admin_get(&c, &s, "/v1/admin/reports"), json!([]));
    // Re-enrolment rotates the credential: the old one stops working.
    let (_, t3) = create_token(&c, &s, 3600, 1);
    let cred_b2 = enroll_ok(&c, &s, &t3, "b");
    assert_ne!(cred_b, cred_b2);
    let r = put_report(&c, &s, &cred_b, "b", &report("b", "z", "ready")).unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = put_report(&c, &s, &cred_b2, "b", &report("b", "z", "ready")).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let log = s.log();
    for secret in [&cred_a, &cred_b, &cred_b2, &once, &t2, &t3] {
        assert!(!log.contains(secret.as_str()), "a secret in the log");
    }
}

#[test]
fn acknowledged_reports_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let s = Server::start(&db, &repo_policies(), &[]);
    let c = client();
    let (_, token) = create_token(&c, &s, 3600, 1);
    let cred = enroll_ok(&c, &s, &token, "dev");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let base = s.base.clone();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let acked = Arc::clone(&acked);
            let cred = cred.clone();
            let base = base.clone();
            std::thread::spawn(move || {
                let c = client();
                for i in (t..200).step_by(4) {
                    let id = format!("r{i:03}");
                    let r = c
                        .put(format!("{base}/v1/devices/dev/readiness"))
                        .bearer_auth(&cred)
                        .json(&report("dev", &id, "ready"))
                        .send();
                    match r {
                        Ok(r) if r.status() == StatusCode::OK => {
                            acked.lock().unwrap().insert(id);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().unwrap().len() < 60 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(2));
    }
    s.kill();
    for h in senders {
        h.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 60, "only {} acknowledged", acked.len());
    let s = Server::start(&db, &repo_policies(), &[]);
    let stored = admin_get(&c, &s, "/v1/admin/reports?device=dev");
    let ids: Vec<String> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a report stored twice");
    for id in &acked {
        assert!(unique.contains(id), "acknowledged report {id} lost");
    }
    // Retrying every report (acknowledged or not) stores each exactly once.
    for i in 0..200 {
        let id = format!("r{i:03}");
        let r = put_report(&c, &s, &cred, "dev", &report("dev", &id, "ready")).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().unwrap();
        assert_eq!(v["duplicate"], unique.contains(&id), "{id}");
    }
    let stored = admin_get(&c, &s, "/v1/admin/reports?device=dev");
    assert_eq!(stored.as_array().unwrap().len(), 200);
}

fn metric(c: &Client, s: &Server, name: &str) -> f64 {
    let text = c.get(s.url("/metrics")).send().unwrap().text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn plan_policies_digest(c: &Client, s: &Server, cred: &str) -> String {
    let v: Value = c
        .get(s.url("/v1/devices/dev/plan"))
        .bearer_auth(cred)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["inputs"]["policies_digest"].as_str().unwrap().to_owned()
}

fn readyz(c: &Client, s: &Server) -> Value {
    let r = c.get(s.url("/readyz")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().unwrap()
}

const BAD_POLICY: &str = "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata:\n  name: bad\nrules:\n  - id: x\n    bogus: 1\n";

#[test]
fn a_bad_policy_change_is_rejected_and_a_good_one_applies_on_change_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let policies = temp_policies(dir.path());
    let s = Server::start(&dir.path().join("db.sqlite"), &policies, &[]);
    let c = client();
    let (_, token) = create_token(&c, &s, 3600, 1);
    let cred = enroll_ok(&c, &s, &token, "dev");
    let mut profile: Value = serde_json::from_str(&showcase("ws-rtx4090")).unwrap();
    profile["id"] = json!("dev");
    assert_eq!(
        put_profile(&c, &s, &cred, "dev", profile.to_string()).status(),
        StatusCode::OK
    );
    let before = readyz(&c, &s)["policies_digest"].clone();
    assert_eq!(
        plan_policies_digest(&c, &s, &cred),
        before.as_str().unwrap()
    );
    // A bad file: rejected with path:line:col, counted; the old policies stay.
    std::fs::write(policies.join("zz.yaml"), BAD_POLICY).unwrap();
    wait_for("a reload failure", || {
        metric(&c, &s, "config_reload_failures_total") >= 1.0
    });
    let r = readyz(&c, &s);
    assert_eq!(r["policies_digest"], before);
    assert!(r["config_reload_failures_total"].as_u64().unwrap() >= 1);
    assert_eq!(
        plan_policies_digest(&c, &s, &cred),
        before.as_str().unwrap()
    );
    assert!(s.log().contains("zz.yaml:7:5"), "{}", s.log());
    // Fixed: the new policies are in force.
    std::fs::copy(
        common::root().join("policies/examples/corp.yaml"),
        policies.join("zz.yaml"),
    )
    .unwrap();
    wait_for("the fixed policies", || {
        readyz(&c, &s)["policies_digest"] != before
    });
    let after = readyz(&c, &s)["policies_digest"].clone();
    assert_eq!(plan_policies_digest(&c, &s, &cred), after.as_str().unwrap());
}

#[test]
fn sighup_reloads_the_policies() {
    let dir = tempfile::tempdir().unwrap();
    let policies = temp_policies(dir.path());
    // Polling is slowed to an hour: only SIGHUP can reload.
    let s = Server::start(
        &dir.path().join("db.sqlite"),
        &policies,
        &["--config-poll", "1h"],
    );
    let c = client();
    let before = readyz(&c, &s)["policies_digest"].clone();
    std::fs::copy(
        common::root().join("policies/examples/corp.yaml"),
        policies.join("corp.yaml"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        readyz(&c, &s)["policies_digest"],
        before,
        "reloaded without SIGHUP"
    );
    let st = Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("the SIGHUP reload", || {
        readyz(&c, &s)["policies_digest"] != before
    });
    // A bad file on SIGHUP is rejected too.
    std::fs::write(policies.join("zz.yaml"), BAD_POLICY).unwrap();
    let after = readyz(&c, &s)["policies_digest"].clone();
    Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    wait_for("a reload failure", || {
        metric(&c, &s, "config_reload_failures_total") >= 1.0
    });
    assert_eq!(readyz(&c, &s)["policies_digest"], after);
}

#[test]
fn serve_refuses_to_start_without_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--catalog", "catalog"])
        .arg("--policies")
        .arg(repo_policies())
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .current_dir(common::root())
        .env_remove("FLEETFIT_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("no admin token"));
    assert!(!dir.path().join("db.sqlite").exists());
}

fn os(a: &[&str], b: &[&Path]) -> Vec<std::ffi::OsString> {
    a.iter()
        .map(std::ffi::OsString::from)
        .chain(b.iter().map(|p| p.as_os_str().to_owned()))
        .collect()
}

#[test]
fn serves_https_with_a_certificate_made_at_test_time() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    // A throwaway CA, and a server certificate for 127.0.0.1 signed by it.
    let ca_key = dir.path().join("ca.key");
    let ca = dir.path().join("ca.pem");
    let csr = dir.path().join("server.csr");
    let ext = dir.path().join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: Vec<Vec<std::ffi::OsString>> = vec![
        os(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=fleetfit test CA",
                "-keyout",
            ],
            &[&ca_key, Path::new("-out"), &ca],
        ),
        os(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
            ],
            &[&key, Path::new("-out"), &csr],
        ),
        os(
            &["x509", "-req", "-days", "1", "-in"],
            &[
                &csr,
                Path::new("-CA"),
                &ca,
                Path::new("-CAkey"),
                &ca_key,
                Path::new("-CAcreateserial"),
                Path::new("-extfile"),
                &ext,
                Path::new("-out"),
                &cert,
            ],
        ),
    ];
    for args in steps {
        let made = Command::new("openssl")
            .args(&args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("ignored: no working `openssl` to make a test certificate");
            return;
        }
    }
    let s = Server::start(
        &dir.path().join("db.sqlite"),
        &repo_policies(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let pem = std::fs::read(&ca).unwrap();
    let c = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = c.get(s.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(s.url("/v1/fleet/status"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Plain HTTP to the TLS port does not get an answer.
    let plain = s.base.replace("https://", "http://");
    assert!(client().get(format!("{plain}/healthz")).send().is_err());
}

#[test]
fn a_hundred_agents_for_three_seconds_lose_and_duplicate_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("db.sqlite"), &repo_policies(), &[]);
    let c = client();
    let (_, token) = create_token(&c, &s, 3600, 100);
    let profile = showcase("vm-cpu-only");
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let base = s.base.clone();
            let token = token.clone();
            let profile = profile.clone();
            let sent = Arc::clone(&sent);
            std::thread::spawn(move || {
                let c = client();
                let mut agents = Vec::new();
                for a in 0..5 {
                    let id = format!("agent-{t:02}-{a}");
                    let r = c
                        .post(format!("{base}/v1/enroll"))
                        .json(&json!({"enrollment_token": token, "device_id": id}))
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::CREATED);
                    let v: Value = r.json().unwrap();
                    let cred = v["credential"].as_str().unwrap().to_owned();
                    let mut p: Value = serde_json::from_str(&profile).unwrap();
                    p["id"] = json!(id);
                    let r = c
                        .put(format!("{base}/v1/devices/{id}/profile"))
                        .bearer_auth(&cred)
                        .json(&p)
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                    agents.push((id, cred));
                }
                let started = Instant::now();
                let mut beat = 0;
                while started.elapsed() < Duration::from_secs(3) {
                    for (id, cred) in &agents {
                        let r = c
                            .post(format!("{base}/v1/devices/{id}/heartbeat"))
                            .bearer_auth(cred)
                            .json(&json!({}))
                            .send()
                            .unwrap();
                        assert_eq!(r.status(), StatusCode::OK);
                        if beat % 2 == 0 {
                            let rid = format!("{id}-{beat}");
                            let r = c
                                .put(format!("{base}/v1/devices/{id}/readiness"))
                                .bearer_auth(cred)
                                .json(&report(id, &rid, "ready"))
                                .send()
                                .unwrap();
                            assert_eq!(r.status(), StatusCode::OK);
                            sent.lock().unwrap().push(rid);
                        }
                    }
                    beat += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    let stored = admin_get(&c, &s, "/v1/admin/reports");
    let ids: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicated reports");
    let sent_set: BTreeSet<&str> = sent.iter().map(String::as_str).collect();
    assert_eq!(unique, sent_set, "lost or extra reports");
    assert!(sent.len() >= 100, "only {} reports sent", sent.len());
    let st = admin_get(&c, &s, "/v1/fleet/status");
    assert_eq!(st["by_state"]["ready"], 100);
}

#[test]
fn serve_exits_3_on_an_invalid_policy_directory_and_admin_commands_exit_1_on_a_wrong_token() {
    let dir = tempfile::tempdir().unwrap();
    let policies = temp_policies(dir.path());
    std::fs::write(policies.join("zz.yaml"), BAD_POLICY).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--catalog", "catalog"])
        .arg("--policies")
        .arg(&policies)
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .current_dir(common::root())
        .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("zz.yaml:7:5"));
    std::fs::remove_file(policies.join("zz.yaml")).unwrap();
    let s = Server::start(&dir.path().join("db.sqlite"), &policies, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(["fleet", "status", "--server", &s.base])
        .env("FLEETFIT_ADMIN_TOKEN", "not-the-admin-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("401"),
        "{}",
        common::stderr(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(["token", "list", "--server", &s.base])
        .env("FLEETFIT_ADMIN_TOKEN", "not-the-admin-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The environment supplies the server URL too.
    let out = Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(["fleet", "status", "--format", "json"])
        .env("FLEETFIT_ADMIN_TOKEN", ADMIN)
        .env("FLEETFIT_SERVER", &s.base)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["devices"], 0);
}

#[test]
fn fleet_status_lists_stale_devices_and_failed_verifications_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("db.sqlite"),
        &repo_policies(),
        &["--stale-after", "1s"],
    );
    let c = client();
    let (_, token) = create_token(&c, &s, 3600, 2);
    let quiet = enroll_ok(&c, &s, &token, "quiet");
    let broken = enroll_ok(&c, &s, &token, "broken");
    let mut failed = report("broken", "f1", "failed");
    failed["error"] = json!("sha256 mismatch: expected ab12…, got cd34…");
    assert_eq!(
        put_report(&c, &s, &broken, "broken", &failed)
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let _ = quiet;
    std::thread::sleep(Duration::from_millis(2200));
    // `broken` calls again; `quiet` stays silent and goes stale.
    let r = c
        .post(s.url("/v1/devices/broken/heartbeat"))
        .bearer_auth(&broken)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let out = fleetfit(&["fleet", "status", "--server", &s.base]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("stale devices: 1\n  quiet\n"), "{text}");
    assert!(
        text.contains("failed verifications: 1\n  broken (qwen3-8b): sha256 mismatch"),
        "{text}"
    );
    let devices = admin_get(&c, &s, "/v1/fleet/devices");
    assert_eq!(devices[0]["id"], "broken");
    assert_eq!(devices[0]["stale"], false);
    assert_eq!(devices[1]["stale"], true);
    let metrics = c.get(s.url("/metrics")).send().unwrap().text().unwrap();
    assert!(
        metrics.contains("fleetfit_devices{state=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("fleetfit_devices{state=\"enrolled\"} 1"));
}
