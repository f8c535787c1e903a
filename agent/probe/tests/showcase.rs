//! The planner's showcase fleet (`tests/fixtures/fleets/showcase/`) is what the probe reports for
//! the matching host fixture trees, plus the labels and class an admin would assign. This test
//! fails when a probe change or a fixture change is not reflected there;
//! `FLEETFIT_REGENERATE_SHOWCASE=1 cargo test -p fleetfit-probe --test showcase` rewrites it.

use fleetfit_core::profile::DeviceProfile;
use fleetfit_probe::{ProbeOptions, probe};
use std::path::Path;

/// (showcase device id, host fixture it is probed from).
const PROBED: &[(&str, &str)] = &[
    ("dgx-spark", "dgx-spark"),
    ("jetson-orin-nano", "jetson-orin-nano"),
    ("laptop-lunar-lake", "lunar-lake"),
    ("mac-m4-max", "macos-m4-max"),
    ("phone-s24-ultra", "android-adreno"),
    ("server-8xh100", "nvidia-8xh100-nvlink"),
    ("strix-halo", "strix-halo-4g"),
    ("vm-cpu-only", "cpu-only-vm"),
    ("ws-rtx4090", "nvidia-rtx4090"),
];

#[test]
fn showcase_profiles_are_the_probed_host_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let regenerate = std::env::var_os("FLEETFIT_REGENERATE_SHOWCASE").is_some();
    let mut stale = Vec::new();
    for (device, host) in PROBED {
        let host_dir = root.join("tests/fixtures/hosts").join(host);
        if !host_dir.is_dir() {
            continue;
        }
        let path = root
            .join("tests/fixtures/fleets/showcase")
            .join(format!("{device}.json"));
        let current: DeviceProfile =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("showcase file"))
                .expect("showcase profile");
        let mut probed = probe(&ProbeOptions {
            sysroot: host_dir,
            models_dir: None,
        });
        // What the admin assigns, and what a fixture root cannot know, comes from the showcase file.
        probed.id.clone_from(&current.id);
        probed.hostname.clone_from(&current.hostname);
        probed.labels.clone_from(&current.labels);
        if probed.class.is_none() {
            probed.class.clone_from(&current.class);
        }
        if probed.storage.is_none() {
            probed.storage.clone_from(&current.storage);
        }
        if probed != current {
            if regenerate {
                let mut text = serde_json::to_string_pretty(&probed).expect("json");
                text.push('\n');
                std::fs::write(&path, text).expect("write showcase");
            } else {
                stale.push(format!("{device} (from hosts/{host})"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "showcase profiles differ from their probed fixtures: {stale:?}; regenerate with FLEETFIT_REGENERATE_SHOWCASE=1"
    );
}
