//! End-to-end tests: spawn `fleetfit` on the fixture fleets and bad inputs; check exit codes,
//! diagnostics and the plan itself (snapshots for the showcase fleet).
#![allow(clippy::expect_used)] // test helpers: a failed setup step should fail the test loudly

mod common;

use common::{SHOWCASE, TODAY, fleetfit, root, stderr, stdout};

fn showcase_plan(policies: Option<&str>) -> serde_json::Value {
    let mut args = vec![
        "plan", "--fleet", SHOWCASE, "--format", "json", "--today", TODAY,
    ];
    if let Some(p) = policies {
        args.extend(["--policies", p]);
    }
    let o = fleetfit(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("plan JSON")
}

fn assignment<'a>(
    plan: &'a serde_json::Value,
    device: &str,
    role: &str,
) -> Option<&'a serde_json::Value> {
    plan["devices"]
        .as_array()?
        .iter()
        .find(|d| d["device"] == device)?["assignments"]
        .as_array()?
        .iter()
        .find(|a| a["role"] == role)
}

fn params_b(model: &str) -> f64 {
    let text = std::fs::read_to_string(root().join("catalog").join(format!("{model}.yaml")))
        .expect("catalog file");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("params_total:"))
        .expect("params_total");
    line.split(':')
        .nth(1)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("number")
        / 1e9
}

#[test]
fn showcase_plan_text_snapshot() {
    let o = fleetfit(&["plan", "--fleet", SHOWCASE, "--today", TODAY, "--explain"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("showcase_default_text", stdout(&o));
}

#[test]
fn showcase_plan_json_snapshot() {
    insta::assert_json_snapshot!("showcase_default_json", showcase_plan(None));
}

#[test]
fn showcase_example_policies_text_snapshot() {
    let o = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--policies",
        "policies/examples",
        "--today",
        TODAY,
        "--explain",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("showcase_examples_text", stdout(&o));
}

#[test]
fn every_showcase_device_gets_a_sensible_and_different_answer() {
    let plan = showcase_plan(None);
    let devices = plan["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 9);
    for d in devices {
        assert_eq!(
            d["status"], "assigned",
            "{} is blocked: {}",
            d["device"], d["blocked"]
        );
    }
    let chat = |id: &str| {
        assignment(&plan, id, "chat").unwrap_or_else(|| panic!("{id} has no chat model"))
    };
    let phone = chat("phone-s24-ultra");
    assert!(
        params_b(phone["model"].as_str().unwrap_or("")) <= 4.5,
        "phone got {}",
        phone["model"]
    );
    for heavy in ["dgx-spark", "strix-halo"] {
        let m = chat(heavy)["model"].as_str().unwrap_or("").to_owned();
        assert!(params_b(&m) >= 20.0, "{heavy} got {m}");
    }
    let h100 = chat("server-8xh100");
    assert_eq!(h100["placement"]["backend"], "cuda");
    let spark = chat("dgx-spark");
    assert_eq!(spark["placement"]["backend"], "cuda");
    let mac = chat("mac-m4-max");
    assert_eq!(mac["placement"]["backend"], "metal");
    let answers: std::collections::BTreeSet<String> = [
        "phone-s24-ultra",
        "laptop-lunar-lake",
        "ws-rtx4090",
        "dgx-spark",
        "jetson-orin-nano",
        "vm-cpu-only",
    ]
    .iter()
    .map(|id| format!("{} {}", chat(id)["model"], chat(id)["quant"]))
    .collect();
    assert!(answers.len() >= 5, "answers are too alike: {answers:?}");
}

#[test]
fn example_policies_apply_their_rules() {
    let plan = showcase_plan(Some("policies/examples"));
    let finance = assignment(&plan, "laptop-lunar-lake", "chat").expect("finance laptop assigned");
    let model = finance["model"].as_str().unwrap_or_default();
    let text = std::fs::read_to_string(root().join("catalog").join(format!("{model}.yaml")))
        .expect("catalog file");
    assert!(
        text.contains("license: Apache-2.0") || text.contains("license: MIT"),
        "finance laptop got {model}"
    );
    assert!(
        finance["because"]
            .as_array()
            .expect("because")
            .iter()
            .any(|b| b["rule"] == "finance-laptops")
    );
    let phone = assignment(&plan, "phone-s24-ultra", "chat").expect("phone assigned");
    assert!(
        phone["quant"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Q4"),
        "{}",
        phone["quant"]
    );
    let code = assignment(&plan, "dgx-spark", "code").expect("DGX Spark gets a code model");
    assert!(
        params_b(code["model"].as_str().unwrap_or_default()) >= 20.0,
        "{}",
        code["model"]
    );
    for d in plan["devices"].as_array().expect("devices") {
        for a in d["assignments"].as_array().expect("assignments") {
            assert!(
                !a["model"].as_str().unwrap_or_default().starts_with("gemma"),
                "gemma assigned to {}",
                d["device"]
            );
        }
    }
}

#[test]
fn plan_output_is_deterministic() {
    let a = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--format",
        "json",
        "--today",
        TODAY,
        "--threads",
        "1",
    ]);
    let b = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--format",
        "json",
        "--today",
        TODAY,
        "--threads",
        "2",
    ]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn plans_this_machine_without_a_fleet() {
    let o = fleetfit(&["plan", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(plan["summary"]["devices"], 1);
    assert_eq!(plan["schema"], "fleetfit/plan/v1");
}

#[test]
fn markdown_and_yaml_formats_render() {
    let md = fleetfit(&[
        "plan", "--fleet", SHOWCASE, "--format", "markdown", "--today", TODAY,
    ]);
    assert_eq!(md.status.code(), Some(0));
    assert!(stdout(&md).contains("| device | role | model |"));
    let y = fleetfit(&[
        "plan", "--fleet", SHOWCASE, "--format", "yaml", "--today", TODAY,
    ]);
    assert_eq!(y.status.code(), Some(0));
    assert!(stdout(&y).contains("schema: fleetfit/plan/v1"));
}

fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn policy(rules: &str) -> String {
    format!("apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {{name: t}}\nrules:\n{rules}")
}

#[test]
fn malformed_policy_yaml_names_file_line_and_column() {
    let dir = temp_with(&[(
        "p.yaml",
        "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: t}\nrules: [\n",
    )]);
    let o = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--policies",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("p.yaml:4:"), "{}", stderr(&o));
}

#[test]
fn unknown_policy_field_is_an_error_with_what_was_expected() {
    let dir = temp_with(&[(
        "p.yaml",
        &policy("  - id: a\n    mach: {labels: {dept: x}}\n"),
    )]);
    let o = fleetfit(&["lint", "--policies", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(
        e.contains("p.yaml:6:5")
            && e.contains("unknown field `mach`")
            && e.contains("expected one of"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_are_rejected() {
    let dir = temp_with(&[("p.yaml", &policy("  - id: a\n    id: b\n"))]);
    let o = fleetfit(&["lint", "--policies", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("duplicate-key"), "{}", stderr(&o));
}

#[test]
fn cel_that_does_not_parse_is_an_error() {
    let dir = temp_with(&[(
        "p.yaml",
        &policy("  - id: a\n    when: device.labels.dept == \n"),
    )]);
    let o = fleetfit(&["lint", "--policies", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("p.yaml:6:") && stderr(&o).contains("[cel]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn cel_naming_a_field_profiles_lack_is_an_error_with_a_hint() {
    let dir = temp_with(&[(
        "p.yaml",
        &policy("  - id: a\n    when: device.memory.total_gb > 8\n"),
    )]);
    let o = fleetfit(&["lint", "--policies", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(
        e.contains("device.memory.total_gb") && e.contains("did you mean `memory.total_gib`"),
        "{e}"
    );
}

#[test]
fn wrong_typed_catalog_value_is_an_error() {
    let good =
        std::fs::read_to_string(root().join("catalog/smollm2-135m-instruct.yaml")).expect("read");
    let dir = temp_with(&[(
        "smollm2-135m-instruct.yaml",
        &good.replace("layers: 30", "layers: thirty"),
    )]);
    let o = fleetfit(&["lint", "--catalog", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("smollm2-135m-instruct.yaml:14:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_empty_catalog_is_invalid_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--catalog",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("empty-catalog"), "{}", stderr(&o));
}

#[test]
fn a_profile_with_zero_memory_is_invalid_input() {
    let text =
        std::fs::read_to_string(root().join(SHOWCASE).join("vm-cpu-only.json")).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["memory"]["total_bytes"] = 0.into();
    v["memory"]["available_bytes"] = 0.into();
    let dir = temp_with(&[("zero.json", &v.to_string())]);
    let o = fleetfit(&["plan", "--fleet", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("zero-memory"), "{}", stderr(&o));
}

#[test]
fn a_profile_with_an_unknown_field_names_line_and_column() {
    let dir = temp_with(&[(
        "p.json",
        "{\n  \"schema\": \"fleetfit/device-profile/v1\",\n  \"idd\": \"x\"\n}\n",
    )]);
    let o = fleetfit(&["plan", "--fleet", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("p.json:3:") && stderr(&o).contains("unknown field `idd`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_policy_that_forbids_everything_blocks_devices_with_a_reason() {
    let dir = temp_with(&[(
        "p.yaml",
        &policy("  - id: nothing-allowed\n    description: freeze\n    effect: forbid\n"),
    )]);
    let p = dir.path().display().to_string();
    let o = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--policies",
        &p,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(plan["summary"]["blocked"], 9);
    let d = &plan["devices"][0];
    assert_eq!(d["status"], "blocked");
    assert!(
        d["rejections"]
            .as_array()
            .expect("rejections")
            .iter()
            .all(|r| r["rule"] == "nothing-allowed")
    );
    let o = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--policies",
        &p,
        "--fail-on-blocked",
    ]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn a_missing_fleet_directory_is_an_error() {
    let o = fleetfit(&["plan", "--fleet", "tests/fixtures/fleets/does-not-exist"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does-not-exist"), "{}", stderr(&o));
}

#[test]
fn lint_accepts_the_shipped_catalog_and_policies() {
    let o = fleetfit(&[
        "lint",
        "--catalog",
        "catalog",
        "--policies",
        "policies/examples",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = fleetfit(&["lint"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn estimate_reports_the_contract_fields() {
    let o = fleetfit(&[
        "estimate",
        "smollm2-135m-instruct",
        "--quant",
        "Q4_1",
        "--context",
        "8192",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for k in [
        "weights_bytes",
        "kv_cache_bytes",
        "compute_bytes",
        "overhead_bytes",
        "total_bytes",
        "context_tokens",
    ] {
        assert!(v[k].is_u64(), "missing {k}: {v}");
    }
    assert_eq!(v["weights_bytes"], 98_362_432);
    // 30 layers × 3 kv heads × 64 × 2 (K+V) × 2 bytes × 8192 cells.
    assert_eq!(v["kv_cache_bytes"], 30 * 3 * 64 * 2 * 2 * 8192);
}

#[test]
fn estimate_of_an_unknown_model_suggests_a_near_name() {
    let o = fleetfit(&[
        "estimate",
        "smollm2-135m-instruc",
        "--quant",
        "Q4_1",
        "--context",
        "512",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did you mean `smollm2-135m-instruct`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn estimate_reads_only_the_gguf_header() {
    use fleetfit_core::gguf::{GgmlType, GgufValue, write_header};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.gguf");
    let mut f = std::fs::File::create(&path).expect("create");
    let n_layers = 2u64;
    let mut tensors: Vec<(String, Vec<u64>, GgmlType)> = vec![
        ("token_embd.weight".into(), vec![256, 1000], GgmlType::Q8_0),
        ("output_norm.weight".into(), vec![256], GgmlType::F32),
        ("output.weight".into(), vec![256, 1000], GgmlType::Q8_0),
    ];
    for i in 0..n_layers {
        for (n, shape) in [
            ("attn_q", vec![256, 256]),
            ("attn_k", vec![256, 64]),
            ("attn_v", vec![256, 64]),
            ("attn_output", vec![256, 256]),
            ("ffn_gate", vec![256, 512]),
            ("ffn_up", vec![256, 512]),
            ("ffn_down", vec![512, 256]),
        ] {
            tensors.push((format!("blk.{i}.{n}.weight"), shape, GgmlType::Q8_0));
        }
        tensors.push((
            format!("blk.{i}.attn_norm.weight"),
            vec![256],
            GgmlType::F32,
        ));
        tensors.push((format!("blk.{i}.ffn_norm.weight"), vec![256], GgmlType::F32));
    }
    let meta = vec![
        ("general.architecture", GgufValue::String("llama".into())),
        ("llama.block_count", GgufValue::U32(2)),
        ("llama.context_length", GgufValue::U32(4096)),
        ("llama.embedding_length", GgufValue::U32(256)),
        ("llama.feed_forward_length", GgufValue::U32(512)),
        ("llama.attention.head_count", GgufValue::U32(4)),
        ("llama.attention.head_count_kv", GgufValue::U32(1)),
    ];
    let refs: Vec<(&str, &[u64], GgmlType)> = tensors
        .iter()
        .map(|(n, s, t)| (n.as_str(), s.as_slice(), *t))
        .collect();
    write_header(&mut f, &meta, &refs).expect("header");
    // No tensor data at all: a header-only reader must not care.
    drop(f);
    let o = fleetfit(&[
        "estimate",
        "--gguf",
        &path.display().to_string(),
        "--context",
        "4096",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    // 2 layers × 1 kv head × 64 × 2 × 2 bytes × 4096.
    assert_eq!(v["kv_cache_bytes"], 2 * 64 * 2 * 2 * 4096);
    assert_eq!(v["architecture"], "llama");
    // A truncated header is a clear error, not a panic.
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    let o = fleetfit(&[
        "estimate",
        "--gguf",
        &path.display().to_string(),
        "--context",
        "4096",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a readable GGUF"), "{}", stderr(&o));
}

/// The real SmolLM2-135M GGUF (`.ci/run` downloads it and sets `FLEETFIT_SMOLLM2_GGUF`):
/// `estimate --gguf` against what llama.cpp allocated for that very file.
#[test]
fn estimate_of_the_real_smollm2_gguf_matches_llama_cpp() {
    let Ok(path) = std::env::var("FLEETFIT_SMOLLM2_GGUF") else {
        eprintln!("FLEETFIT_SMOLLM2_GGUF is not set: run through .ci/run to include this check");
        return;
    };
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/llamacpp/smollm2_135m_q4_1.json"))
            .expect("fixture"),
    )
    .expect("json");
    let mut checked = 0;
    for run in fixture["runs"].as_array().expect("runs") {
        let model_mib = run["model_buffer_mib"].as_f64().unwrap_or(0.0);
        if model_mib > 100.0 {
            continue; // a no-mmap run that holds the weights twice
        }
        let ctx = run["n_ctx"].as_u64().expect("n_ctx").to_string();
        let fa = if run["flash_attn"].as_bool().unwrap_or(false) {
            "on"
        } else {
            "off"
        };
        let kv = run["type_k"].as_str().unwrap_or("f16");
        let o = fleetfit(&[
            "estimate",
            "--gguf",
            &path,
            "--context",
            &ctx,
            "--flash-attn",
            fa,
            "--kv-type",
            kv,
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(
            v["weights_bytes"], 96_576_768,
            "tensor bytes of the real file"
        );
        let ours = v["total_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0;
        let theirs = run["total_mib"].as_f64().expect("total");
        assert!(
            (ours - theirs).abs() / theirs <= 0.10,
            "ctx {ctx} fa {fa} {kv}: {ours:.1} MiB vs llama.cpp {theirs:.1} MiB"
        );
        checked += 1;
    }
    assert!(checked >= 6);
}

#[test]
fn plans_a_fleet_served_over_http() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let profiles: Vec<serde_json::Value> = ["dgx-spark", "phone-s24-ultra"]
        .iter()
        .map(|id| {
            serde_json::from_str(
                &std::fs::read_to_string(root().join(SHOWCASE).join(format!("{id}.json")))
                    .expect("read"),
            )
            .expect("json")
        })
        .collect();
    let body = serde_json::json!({ "profiles": profiles }).to_string();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).expect("read request") == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(reply.as_bytes()).expect("write");
        head
    });
    let url = format!("http://{addr}/v1/fleet/profiles");
    let o = fleetfit(&[
        "plan", "--fleet", &url, "--format", "json", "--today", TODAY,
    ]);
    let request = server.join().expect("server");
    assert!(
        request.starts_with("GET /v1/fleet/profiles HTTP/1.1"),
        "{request}"
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(plan["summary"]["devices"], 2);
    assert_eq!(plan["devices"][0]["device"], "dgx-spark");
}

#[test]
fn an_unreachable_fleet_url_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let o = fleetfit(&[
        "plan",
        "--fleet",
        &format!("http://{addr}/v1/fleet/profiles"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
}

#[test]
fn device_filter_plans_one_device_and_names_a_missing_one() {
    let o = fleetfit(&[
        "plan",
        "--fleet",
        SHOWCASE,
        "--device",
        "ws-rtx4090",
        "--format",
        "json",
        "--today",
        TODAY,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(plan["summary"]["devices"], 1);
    let o = fleetfit(&["plan", "--fleet", SHOWCASE, "--device", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no device `nope`"), "{}", stderr(&o));
}

#[test]
fn duplicate_device_ids_in_a_fleet_are_invalid_input() {
    let text =
        std::fs::read_to_string(root().join(SHOWCASE).join("vm-cpu-only.json")).expect("read");
    let dir = temp_with(&[("a.json", &text), ("b.json", &text)]);
    let o = fleetfit(&["plan", "--fleet", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("duplicate-id"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2() {
    let o = fleetfit(&["plan", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = fleetfit(&["estimate", "qwen3-8b", "--context", "4096"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--quant is required with a model id"
    );
}
