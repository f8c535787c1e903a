//! `/proc/meminfo` and `os-release` parsing on arbitrary text: never panics, and a text with no
//! `MemTotal` key yields no total.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let m = fleetfit_probe::memory::parse_meminfo(&text);
    if !text.contains("MemTotal") {
        assert_eq!(m.total_bytes, None);
    }
    let _ = fleetfit_probe::identity::parse_os_release(&text);
});
