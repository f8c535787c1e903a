//! End-to-end tests of `fleetfit-agent probe`: the real binary on fixture trees.
#![allow(clippy::expect_used)] // test helpers: a failed setup step should fail the test loudly

use fleetfit_core::profile::{DeviceProfile, PROFILE_SCHEMA};
use std::process::{Command, Output};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetfit-agent"))
        .args(args)
        .output()
        .expect("spawn fleetfit-agent")
}

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

const MEMINFO: &str =
    "MemTotal:       65536000 kB\nMemFree:        1000000 kB\nMemAvailable:   60000000 kB\n";

#[test]
fn probes_a_container_tree_with_a_cgroup_limit() {
    let t = tree(&[
        ("proc/meminfo", MEMINFO),
        ("sys/fs/cgroup/memory.max", "34359738368\n"),
        ("sys/fs/cgroup/memory.current", "1073741824\n"),
        ("etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
        ("proc/sys/kernel/hostname", "box-7\n"),
        (
            "proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma\n",
        ),
    ]);
    let o = agent(&[
        "probe",
        "--sysroot",
        &t.path().display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let p: DeviceProfile = serde_json::from_slice(&o.stdout).expect("a valid DeviceProfile");
    assert_eq!(p.schema, PROFILE_SCHEMA);
    assert_eq!(
        p.memory.total_bytes, 34_359_738_368,
        "the container sees its 32 GiB limit, not the host's RAM"
    );
    assert!(p.memory.available_bytes <= p.memory.total_bytes);
    assert!(p.validate("probe").is_empty());
    assert!(
        p.gpus.is_empty(),
        "a fixture tree must not report this machine's devices"
    );
}

#[test]
fn unreadable_sources_are_issues_not_failures() {
    let t = tree(&[("proc/meminfo", "MemTotal: lots\n")]);
    let o = agent(&[
        "probe",
        "--sysroot",
        &t.path().display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let p: DeviceProfile = serde_json::from_slice(&o.stdout).expect("profile");
    assert!(!p.issues.is_empty(), "the malformed meminfo is reported");
}

#[test]
fn a_missing_sysroot_is_an_error_with_exit_1() {
    let o = agent(&["probe", "--sysroot", "/nonexistent/fleetfit-sysroot"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/fleetfit-sysroot"));
}

#[test]
fn yaml_and_text_formats_render() {
    let t = tree(&[("proc/meminfo", MEMINFO)]);
    let root = t.path().display().to_string();
    let y = agent(&["probe", "--sysroot", &root, "--format", "yaml"]);
    assert_eq!(y.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&y.stdout).contains("schema: fleetfit/device-profile/v1"));
    let x = agent(&["probe", "--sysroot", &root, "--format", "text"]);
    assert_eq!(x.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&x.stdout).contains("memory"));
}
