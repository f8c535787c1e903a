//! `sysroot::parse_u64` on arbitrary text: never panics, and a parsed number prints back to
//! the trimmed input's value (decimal or `0x` hex).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(n) = fleetfit_probe::sysroot::parse_u64(&text) {
        let t = text.trim();
        let again = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(_) => fleetfit_probe::sysroot::parse_u64(&format!("0x{n:x}")),
            None => fleetfit_probe::sysroot::parse_u64(&n.to_string()),
        };
        assert_eq!(again, Some(n));
    }
});
