//! End-to-end tests of `fleetfit policy test`: the example test file passes, a deliberately
//! failing one exits 3 with reasons (table, JUnit and GitHub output snapshotted), and bad test
//! files (no cases, an unknown device, malformed YAML) are exit-3 diagnostics with a location.
#![allow(clippy::expect_used)] // test helpers: a failed setup step should fail the test loudly

mod common;

use common::{fleetfit, root, stderr, stdout};

const FAILING: &str = "tests/fixtures/policy-tests/failing.test.yaml";

#[test]
fn example_policy_tests_pass() {
    let o = fleetfit(&["policy", "test", "policies/examples"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("FAIL"), "{out}");
    insta::assert_snapshot!("examples_table", out);
}

#[test]
fn default_path_finds_the_example_tests() {
    let o = fleetfit(&["policy", "test"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("policies/examples/tests/corp.test.yaml"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn example_policy_tests_json() {
    let o = fleetfit(&["policy", "test", "policies/examples", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["summary"]["failed"], 0);
    assert_eq!(v["summary"]["cases"], v["summary"]["passed"]);
    let cases = v["files"][0]["cases"].as_array().expect("cases");
    assert!(cases.len() >= 6, "{v}");
    assert!(
        cases
            .iter()
            .all(|c| c["passed"] == true && c["line"].as_u64() > Some(0))
    );
}

#[test]
fn failing_test_file_exits_3_with_reasons() {
    let o = fleetfit(&["policy", "test", FAILING]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("FAIL  DGX Spark gets qwen3-coder"), "{out}");
    assert!(
        out.contains("expected model.id = qwen3-coder-30b-a3b-instruct"),
        "{out}"
    );
    assert!(out.contains("PASS  phone stays under 4B"), "{out}");
    insta::assert_snapshot!("failing_table", out);
}

#[test]
fn failing_test_file_junit() {
    let o = fleetfit(&["policy", "test", FAILING, "--format", "junit"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("<?xml"), "{out}");
    assert!(out.contains("<failure message="), "{out}");
    insta::assert_snapshot!("failing_junit", out);
}

#[test]
fn failing_test_file_github_annotations() {
    let o = fleetfit(&["policy", "test", FAILING, "--format", "github"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("::error file={FAILING},line=10,"))),
        "{out}"
    );
    insta::assert_snapshot!("failing_github", out);
}

#[test]
fn zero_cases_is_an_error() {
    let o = fleetfit(&[
        "policy",
        "test",
        "tests/fixtures/policy-tests/no-cases.test.yaml",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("no policy test cases found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_directory_without_test_files_is_an_error() {
    let o = fleetfit(&["policy", "test", "tests/fixtures/fleets/showcase"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("no policy test cases found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_device_is_an_error_at_the_case() {
    let o = fleetfit(&[
        "policy",
        "test",
        "tests/fixtures/policy-tests/missing-device.test.yaml",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains(
            "tests/fixtures/policy-tests/missing-device.test.yaml:12:13: error[unknown-device]"
        ),
        "{err}"
    );
    assert!(err.contains("`laptop-lunar-lak`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_test_file_names_line_and_column() {
    let o = fleetfit(&[
        "policy",
        "test",
        "tests/fixtures/policy-tests/malformed.test.yaml",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("tests/fixtures/policy-tests/malformed.test.yaml:9:14: error[unknown-field]"),
        "{err}"
    );
}

#[test]
fn missing_path_is_an_error() {
    let o = fleetfit(&["policy", "test", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("no/such/dir"), "{}", stderr(&o));
}

#[test]
fn missing_devices_from_path_is_an_error_at_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("x.test.yaml");
    let policies = root().join("policies/examples");
    std::fs::write(
        &file,
        format!(
            "apiVersion: fleetfit/v1\nkind: PolicyTest\npolicies: [{}]\ndevices_from: [no-such-fleet]\ncases:\n  - {{name: x, device: a, expect: {{decision: assigned}}}}\n",
            policies.display()
        ),
    )
    .expect("write test file");
    let path = file.display().to_string();
    let o = fleetfit(&["policy", "test", &path]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{path}:4:1: error[not-found]")),
        "{err}"
    );
    assert!(err.contains("`no-such-fleet`"), "{err}");
}
