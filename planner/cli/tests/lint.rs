//! `fleetfit lint` on a fixture policy directory with several problems: the human, plain and
//! JSON renderings are snapshotted, and `fleetfit schema --check` on the committed schemas.
#![allow(clippy::expect_used)] // test helpers: a failed setup step should fail the test loudly

mod common;

use common::fleetfit;
use std::process::Output;

const FIXTURE: &str = "tests/fixtures/lint/policies";

/// stderr without the summary line, whose catalog count changes with the catalog.
fn diagnostics(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with("checked "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn human_output_shows_the_source_line_and_a_caret() {
    let o = fleetfit(&["lint", "--policies", FIXTURE, "--error-format", "human"]);
    assert_eq!(o.status.code(), Some(3));
    insta::assert_snapshot!("lint_human", diagnostics(&o));
}

#[test]
fn plain_output_is_one_line_per_diagnostic() {
    let o = fleetfit(&["lint", "--policies", FIXTURE, "--error-format", "plain"]);
    assert_eq!(o.status.code(), Some(3));
    insta::assert_snapshot!("lint_plain", diagnostics(&o));
}

#[test]
fn json_output_is_a_list_on_stdout() {
    let o = fleetfit(&["lint", "--policies", FIXTURE, "--error-format", "json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v.as_array().is_some_and(|a| a.len() >= 6), "{v}");
    insta::assert_snapshot!("lint_json", String::from_utf8_lossy(&o.stdout));
    let legacy = fleetfit(&["lint", "--policies", FIXTURE, "--format", "json"]);
    assert_eq!(legacy.stdout, o.stdout);
}

#[test]
fn committed_schemas_are_current() {
    let o = fleetfit(&["schema", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = fleetfit(&["schema"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for name in ["device-profile", "catalog-model", "policy", "plan"] {
        assert!(v.get(name).is_some(), "{name}");
    }
}
