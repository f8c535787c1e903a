//! The planning core end to end, in process: embedded catalog and policies, profiles built in
//! the test, no files, no clock.

use fleetfit_core::catalog::parse_catalog;
use fleetfit_core::defaults;
use fleetfit_core::plan::{Plan, PlanInputs, PlanOptions, Status, plan};
use fleetfit_core::policy::parse_policies;
use fleetfit_core::profile::DeviceProfile;

const GIB: u64 = 1 << 30;

fn profile(id: &str, total: u64, available: u64, gpus: &str, class: &str) -> DeviceProfile {
    let json = format!(
        r#"{{"schema":"fleetfit/device-profile/v1","id":"{id}","hostname":"{id}","labels":{{"form_factor":"desktop","dept":"it"}},
        "class":"{class}","os":{{"kind":"linux","version":"6.8"}},
        "cpu":{{"arch":"x86_64","model":"test","cores":8,"threads":16,"features":["avx2"]}},
        "memory":{{"total_bytes":{total},"available_bytes":{available}}},"gpus":[{gpus}],"npus":[],"issues":[]}}"#
    );
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn nvidia(name: &str, total: u64) -> String {
    format!(
        r#"{{"vendor":"nvidia","name":"{name}","memory_total_bytes":{total},"memory_free_bytes":{total},"unified":false,"driver":"560","source":"test"}}"#
    )
}

fn run(devices: &[DeviceProfile], policies: &[(&str, &str)]) -> Plan {
    let (catalog, _) =
        parse_catalog(&defaults::owned(defaults::CATALOG)).unwrap_or_else(|d| panic!("{d}"));
    let (set, _) = parse_policies(&defaults::owned(policies), Some("2026-11-24"))
        .unwrap_or_else(|d| panic!("{d}"));
    plan(
        devices,
        &catalog,
        &set,
        PlanInputs::default(),
        &PlanOptions {
            today: Some("2026-11-24".into()),
            threads: 1,
        },
    )
}

#[test]
fn a_24_gib_gpu_gets_a_bigger_model_than_an_8_gib_one() {
    let big = profile(
        "big",
        64 * GIB,
        60 * GIB,
        &nvidia("NVIDIA GeForce RTX 4090", 24 * GIB),
        "workstation",
    );
    let small = profile(
        "small",
        64 * GIB,
        60 * GIB,
        &nvidia("NVIDIA GeForce RTX 4060", 8 * GIB),
        "workstation",
    );
    let p = run(&[big, small], defaults::POLICIES);
    let w = |d: usize| p.devices[d].assignments[0].estimate.weights_bytes;
    assert!(
        w(0) > w(1),
        "{} vs {}",
        p.devices[0].assignments[0].model,
        p.devices[1].assignments[0].model
    );
    assert_eq!(
        p.devices[0].assignments[0].placement.backend.as_str(),
        "cuda"
    );
    for a in &p.devices[0].assignments {
        assert!(
            a.estimate.pool_used_bytes <= a.estimate.pool_capacity_bytes * 90 / 100 + 1,
            "headroom broken: {a:?}"
        );
    }
}

#[test]
fn a_tiny_device_is_blocked_with_the_nearest_miss_explained() {
    let d = profile("tiny", GIB / 4, GIB / 8, "", "vm");
    let p = run(&[d], defaults::POLICIES);
    assert_eq!(p.devices[0].status, Status::Blocked);
    let reason = &p.devices[0].blocked[0].reason;
    assert!(reason.contains("nearest miss"), "{reason}");
    let all: Vec<_> = p.devices[0].rejections.iter().collect();
    assert_eq!(all[0].kind, "memory");
    let memory: Vec<f64> = all
        .iter()
        .filter(|r| r.kind == "memory")
        .map(|r| r.closeness)
        .collect();
    assert!(
        memory.windows(2).all(|w| w[0] <= w[1]),
        "nearest miss first: {memory:?}"
    );
}

#[test]
fn a_big_unified_memory_box_also_gets_code_and_embedding_models_sharing_memory() {
    let spark = profile(
        "spark",
        128 * GIB,
        110 * GIB,
        r#"{"vendor":"nvidia","name":"NVIDIA GB10","memory_total_bytes":null,"unified":true,"driver":"580","source":"test"}"#,
        "dgx-spark",
    );
    let p = run(&[spark], defaults::POLICIES);
    let d = &p.devices[0];
    assert_eq!(d.status, Status::Assigned, "{:?}", d.blocked);
    let roles: Vec<&str> = d.assignments.iter().map(|a| a.role.as_str()).collect();
    assert_eq!(roles, ["chat", "code", "embedding"]);
    // Memory is shared: the last role sees what the earlier ones took.
    let last = d
        .assignments
        .last()
        .map_or(0, |a| a.estimate.pool_used_bytes);
    let unique: u64 = {
        let mut seen = std::collections::BTreeSet::new();
        d.assignments
            .iter()
            .filter(|a| seen.insert((a.model.clone(), a.quant.clone())))
            .map(|a| a.estimate.memory_bytes)
            .sum()
    };
    assert!(last >= unique, "pool used {last} < sum of models {unique}");
}

#[test]
fn planning_is_deterministic_across_thread_counts() {
    let devices: Vec<DeviceProfile> = (0..40)
        .map(|i| {
            profile(
                &format!("d{i:02}"),
                (4 + i) * GIB,
                (3 + i) * GIB,
                "",
                "laptop",
            )
        })
        .collect();
    let (catalog, _) =
        parse_catalog(&defaults::owned(defaults::CATALOG)).unwrap_or_else(|d| panic!("{d}"));
    let (set, _) = parse_policies(
        &defaults::owned(defaults::EXAMPLE_POLICIES),
        Some("2026-11-24"),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let a = plan(
        &devices,
        &catalog,
        &set,
        PlanInputs::default(),
        &PlanOptions {
            today: None,
            threads: 1,
        },
    );
    let b = plan(
        &devices,
        &catalog,
        &set,
        PlanInputs::default(),
        &PlanOptions {
            today: None,
            threads: 3,
        },
    );
    assert_eq!(a, b);
}

#[test]
fn a_when_condition_that_errors_is_a_non_match_with_a_warning() {
    let policy = "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: t}\nrules:\n  - id: team-rule\n    when: device.labels.team == \"ml\" && device.memory.total_gib > 1\n    roles: [chat, embedding]\n";
    let d = profile("no-team-label", 16 * GIB, 12 * GIB, "", "laptop");
    let mut with_team = profile("ml-box", 16 * GIB, 12 * GIB, "", "laptop");
    with_team.labels.insert("team".into(), "ml".into());
    let p = run(&[d, with_team], &[("<test>/p.yaml", policy)]);
    assert_eq!(
        p.devices[0].assignments.len(),
        1,
        "rule must not apply without the label"
    );
    assert_eq!(
        p.devices[1].assignments.len(),
        2,
        "rule applies with the label"
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("team-rule") && w.contains("no-team-label")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn a_strix_halo_with_a_96_gib_carve_out_plans_on_the_carve_out_not_the_31_gib_left_to_linux() {
    // BIOS gave 96 GiB to the GPU: Linux sees ~31 GiB of RAM, amdgpu reports 96 GiB VRAM plus
    // ~15.5 GiB GTT (the `strix-halo-96g` host fixture).
    let gpu = r#"{"vendor":"amd","name":"AMD Radeon 8060S (Strix Halo)","memory_total_bytes":119722213376,"memory_free_bytes":119512498176,"unified":true,"driver":"amdgpu","source":"sysfs"}"#;
    let d = profile(
        "strix-96",
        33_285_996_544,
        29_696_000_000,
        gpu,
        "strix-halo",
    );
    let p = run(&[d], defaults::POLICIES);
    let chat = &p.devices[0].assignments[0];
    assert_eq!(chat.placement.backend.as_str(), "rocm");
    assert!(
        chat.estimate.weights_bytes > 40 * GIB,
        "got {} {} ({} B)",
        chat.model,
        chat.quant,
        chat.estimate.weights_bytes
    );
}
