//! Every fixture tree under `tests/fixtures/hosts/` probed and snapshot-tested: the profile a
//! real machine of that class must produce. `FLEETFIT_HOST=name` runs one fixture.

use fleetfit_probe::{ProbeOptions, probe};
use std::path::Path;

#[test]
fn every_host_fixture_matches_its_snapshot() {
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hosts");
    let only = std::env::var("FLEETFIT_HOST").ok();
    let mut names: Vec<String> = std::fs::read_dir(&hosts)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut probed = 0;
    for name in names {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let profile = probe(&ProbeOptions {
            sysroot: hosts.join(&name),
            models_dir: None,
        });
        insta::assert_json_snapshot!(format!("host_{name}"), profile);
        probed += 1;
    }
    assert!(
        only.is_some() || probed > 0 || !hosts.exists(),
        "no fixtures probed"
    );
}
