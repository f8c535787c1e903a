//! End-to-end tests of `fleetfit diff`: snapshots of the text, markdown and JSON diff of the
//! example policies against a realistic change (`tests/fixtures/policy-change/head`), the
//! `--detailed-exitcode` contract, bad inputs, and `--base-ref` against this repository's history.
#![allow(clippy::expect_used)] // test helpers: a failed setup step should fail the test loudly

mod common;

use common::{SHOWCASE, TODAY, fleetfit, root, stderr, stdout};
use std::process::{Command, Output};

const BASE: &str = "policies/examples";
const HEAD: &str = "tests/fixtures/policy-change/head";

fn showcase_diff(format: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "diff",
        "--base-policies",
        BASE,
        "--policies",
        HEAD,
        "--fleet",
        SHOWCASE,
        "--today",
        TODAY,
        "--format",
        format,
    ];
    args.extend(extra);
    fleetfit(&args)
}

fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn corp() -> String {
    std::fs::read_to_string(root().join(BASE).join("corp.yaml")).expect("corp.yaml")
}

fn path(d: &tempfile::TempDir) -> &str {
    d.path().to_str().expect("utf-8 temp path")
}

#[test]
fn showcase_diff_text_snapshot() {
    let o = showcase_diff("text", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("showcase_diff_text", stdout(&o));
}

#[test]
fn showcase_diff_markdown_snapshot() {
    let o = showcase_diff("markdown", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let md = stdout(&o);
    assert!(md.starts_with("<!-- fleetfit-diff -->"));
    assert!(md.contains("> [!WARNING]"), "a device becomes blocked");
    insta::assert_snapshot!("showcase_diff_markdown", md);
}

#[test]
fn showcase_diff_json_snapshot() {
    let o = showcase_diff("json", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("diff JSON");
    assert_eq!(v["schema"], "fleetfit/diff/v1");
    insta::assert_json_snapshot!("showcase_diff_json", v);
}

#[test]
fn the_realistic_change_shows_every_kind_of_effect() {
    let o = showcase_diff("json", &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("diff JSON");
    let groups = v["groups"].as_array().expect("groups");
    let find = |device: &str| {
        groups
            .iter()
            .find(|g| {
                g["examples"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x == device))
            })
            .unwrap_or_else(|| panic!("no group for {device}: {v:#}"))
    };
    // The new edge rule blocks the Jetson, and blocked groups come first.
    assert_eq!(groups[0]["action"], "blocked");
    assert_eq!(find("jetson-orin-nano")["action"], "blocked");
    // Phones may now run Q5_K_M.
    let phone = find("phone-s24-ultra");
    assert_eq!(phone["action"], "change");
    assert_eq!(phone["after"]["quant"], "Q5_K_M");
    assert!(v["summary"]["unchanged"].as_u64().expect("unchanged") > 0);
}

#[test]
fn detailed_exitcode_is_5_with_changes_and_0_without() {
    let o = showcase_diff("text", &["--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        BASE,
        "--policies",
        BASE,
        "--fleet",
        SHOWCASE,
        "--today",
        TODAY,
        "--detailed-exitcode",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("No changes"), "{out}");
    assert!(
        out.contains("Diff: 0 to assign, 0 to change, 0 to unassign, 0 blocked; 0 devices of 9 changed, 9 unchanged."),
        "{out}"
    );
}

#[test]
fn a_policy_file_deleted_in_head_is_a_reported_change() {
    let extra = "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: extra}\nrules:\n  - id: no-phi\n    effect: forbid\n    models: {families: [phi3, phi4]}\n";
    let base = temp_with(&[("corp.yaml", &corp()), ("extra.yaml", extra)]);
    let head = temp_with(&[("corp.yaml", &corp())]);
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        path(&base),
        "--policies",
        path(&head),
        "--fleet",
        SHOWCASE,
        "--today",
        TODAY,
        "--detailed-exitcode",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).contains("phi-4"), "{}", stdout(&o));
}

#[test]
fn a_head_with_no_policy_file_left_is_invalid_input() {
    let head = temp_with(&[]);
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        BASE,
        "--policies",
        path(&head),
        "--fleet",
        SHOWCASE,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("empty-policies"), "{}", stderr(&o));
}

#[test]
fn a_rule_id_duplicated_across_files_is_invalid_input() {
    let dup = "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: dup}\nrules:\n  - id: finance-laptops\n    memory: {headroom_pct: 40}\n";
    let head = temp_with(&[("corp.yaml", &corp()), ("dup.yaml", dup)]);
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        BASE,
        "--policies",
        path(&head),
        "--fleet",
        SHOWCASE,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("finance-laptops"), "{}", stderr(&o));
    assert!(stderr(&o).contains("dup.yaml"), "{}", stderr(&o));
}

#[test]
fn base_and_head_with_different_schema_versions_are_invalid_input() {
    let v2 = corp().replace("apiVersion: fleetfit/v1", "apiVersion: fleetfit/v2");
    let head = temp_with(&[("corp.yaml", &v2)]);
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        BASE,
        "--policies",
        path(&head),
        "--fleet",
        SHOWCASE,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("corp.yaml:"), "{}", stderr(&o));
}

#[test]
fn a_missing_fleet_is_an_error() {
    let o = fleetfit(&[
        "diff",
        "--base-policies",
        BASE,
        "--policies",
        HEAD,
        "--fleet",
        "tests/fixtures/fleets/does-not-exist",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does-not-exist"), "{}", stderr(&o));
}

#[test]
fn base_policies_or_base_ref_is_required() {
    let o = fleetfit(&["diff", "--policies", HEAD, "--fleet", SHOWCASE]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

fn in_git_checkout() -> bool {
    Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn base_ref_reads_the_policies_from_git_history() {
    if !in_git_checkout() {
        eprintln!("skipped: not a git checkout, or no `git`");
        return;
    }
    let o = fleetfit(&[
        "diff",
        "--base-ref",
        "HEAD",
        "--policies",
        BASE,
        "--fleet",
        SHOWCASE,
        "--today",
        TODAY,
        "--detailed-exitcode",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("No changes"), "{}", stdout(&o));

    let o = fleetfit(&[
        "diff",
        "--base-ref",
        "no-such-revision-xyz",
        "--policies",
        BASE,
        "--fleet",
        SHOWCASE,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("git"), "{}", stderr(&o));
}
