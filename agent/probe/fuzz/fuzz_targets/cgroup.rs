//! cgroup `memory.max`/`memory.limit_in_bytes` and `memory.stat` parsing, and the limit
//! arithmetic, on arbitrary input: never panics, and a limit never raises total or available.
#![no_main]

use fleetfit_probe::memory::{
    CgroupLimit, apply_cgroup_limit, parse_cgroup_limit, parse_memory_stat,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let limit = parse_cgroup_limit(&text);
    let ws = parse_memory_stat(&text, "inactive_file");
    let _ = parse_memory_stat(&text, "total_inactive_file");
    if let Some(CgroupLimit::Bytes(l)) = limit {
        let (total, available) = (data.len() as u64 * 4096, data.len() as u64 * 1000);
        let (t, a) = apply_cgroup_limit(total, available, l, ws);
        assert!(t <= total && a <= available && a <= t);
    }
});
