//! System memory: `/proc/meminfo` totals, capped by the cgroup (v2, else v1) limit of the
//! container we run in. Pure parse functions do the work; only `probe` touches the sysroot.

use crate::issue;
use crate::sysroot::{SysRoot, parse_u64};
use fleetfit_core::profile::{Memory, ProbeIssue};

/// A cgroup v1 limit at or above this means "no limit": the kernel prints `PAGE_COUNTER_MAX`
/// in bytes (`9223372036854771712` on 4 KiB pages), never a real machine size.
const CGROUP_V1_UNLIMITED: u64 = 1 << 62;

/// What `/proc/meminfo` says, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    /// Kernels before 3.14 have no `MemAvailable`; `MemFree` is the fallback.
    pub free_bytes: Option<u64>,
}

/// Parses `/proc/meminfo` (`MemTotal:  24684084 kB`). Values carry a `kB` unit (×1024); a bare
/// number is taken as bytes. Unknown or malformed lines are skipped.
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut out = MemInfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut out.total_bytes,
            "MemAvailable" => &mut out.available_bytes,
            "MemFree" => &mut out.free_bytes,
            _ => continue,
        };
        let mut parts = rest.split_whitespace();
        let value = parts.next().and_then(|v| v.parse::<u64>().ok());
        let scale = match parts.next() {
            Some(u) if u.eq_ignore_ascii_case("kb") => 1024,
            None => 1,
            Some(_) => continue,
        };
        *slot = value.and_then(|v| v.checked_mul(scale));
    }
    out
}

/// A cgroup memory limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupLimit {
    /// `max`, or v1's near-`i64::MAX` sentinel.
    Unlimited,
    Bytes(u64),
}

/// Parses a cgroup memory limit file (v2 `memory.max`, v1 `memory.limit_in_bytes`); `None`
/// when the text is not a limit at all.
pub fn parse_cgroup_limit(text: &str) -> Option<CgroupLimit> {
    let t = text.trim();
    if t == "max" {
        return Some(CgroupLimit::Unlimited);
    }
    parse_u64(t).map(|n| {
        if n >= CGROUP_V1_UNLIMITED {
            CgroupLimit::Unlimited
        } else {
            CgroupLimit::Bytes(n)
        }
    })
}

/// The value of `key` in a cgroup `memory.stat` (`inactive_file 123` lines).
pub fn parse_memory_stat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Caps `(total, available)` by a cgroup limit. The cgroup's working set is its usage less
/// reclaimable inactive page cache (as the kubelet counts it); the room left under the limit
/// bounds what is available. Without a usage figure the limit alone bounds it.
pub fn apply_cgroup_limit(
    total: u64,
    available: u64,
    limit: u64,
    working_set: Option<u64>,
) -> (u64, u64) {
    let headroom = working_set.map_or(limit, |ws| limit.saturating_sub(ws));
    (
        total.min(limit),
        available.min(headroom).min(total.min(limit)),
    )
}

/// Usage less inactive file cache, when both files are there.
fn working_set(usage: Option<u64>, inactive_file: Option<u64>) -> Option<u64> {
    usage.map(|u| u.saturating_sub(inactive_file.unwrap_or(0)))
}

/// The files one cgroup version keeps its limit, usage and stat in.
struct CgroupFiles {
    limit: &'static str,
    usage: &'static str,
    stat: &'static str,
    inactive_key: &'static str,
}

const CGROUP_V2: CgroupFiles = CgroupFiles {
    limit: "sys/fs/cgroup/memory.max",
    usage: "sys/fs/cgroup/memory.current",
    stat: "sys/fs/cgroup/memory.stat",
    inactive_key: "inactive_file",
};

const CGROUP_V1: CgroupFiles = CgroupFiles {
    limit: "sys/fs/cgroup/memory/memory.limit_in_bytes",
    usage: "sys/fs/cgroup/memory/memory.usage_in_bytes",
    stat: "sys/fs/cgroup/memory/memory.stat",
    inactive_key: "total_inactive_file",
};

/// The memory limit of the cgroup at the sysroot's `/sys/fs/cgroup` (v2 first, then v1), with
/// its working set. `None` when there is no limit or no cgroup files.
fn cgroup_limit(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Option<(u64, Option<u64>)> {
    for files in [&CGROUP_V2, &CGROUP_V1] {
        let text = match root.read_trimmed(files.limit) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(e) => {
                issues.push(issue::from_read(&e));
                continue;
            }
        };
        let limit = match parse_cgroup_limit(&text) {
            Some(CgroupLimit::Bytes(n)) => n,
            // An unlimited v2 cgroup is not overridden by v1 files.
            Some(CgroupLimit::Unlimited) => return None,
            None => {
                issues.push(issue::new(
                    files.limit,
                    format!("`{text}` is not a memory limit: ignored"),
                ));
                continue;
            }
        };
        let usage = root.read_u64(files.usage).ok();
        let inactive = root
            .read_to_string(files.stat)
            .ok()
            .and_then(|s| parse_memory_stat(&s, files.inactive_key));
        return Some((limit, working_set(usage, inactive)));
    }
    None
}

/// System memory as the sysroot's `/proc/meminfo` and cgroup files say. On a host without
/// `/proc/meminfo` (macOS, Windows) sysinfo answers instead. Unreadable sources become issues
/// and leave zeros, which profile validation then reports.
pub(crate) fn probe(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Memory {
    let (mut total, mut available) = match root.read_to_string("proc/meminfo") {
        Ok(text) => {
            let info = parse_meminfo(&text);
            if info.total_bytes.is_none() {
                issues.push(issue::new("proc/meminfo", "no `MemTotal` line"));
            }
            (
                info.total_bytes.unwrap_or(0),
                info.available_bytes.or(info.free_bytes).unwrap_or(0),
            )
        }
        Err(e) if e.is_not_found() && root.is_host() => host_memory(issues),
        Err(e) => {
            issues.push(issue::from_read(&e));
            (0, 0)
        }
    };
    if let Some((limit, ws)) = cgroup_limit(root, issues)
        && total > 0
    {
        (total, available) = apply_cgroup_limit(total, available, limit, ws);
    }
    Memory {
        total_bytes: total,
        available_bytes: available.min(total),
        bandwidth_gbps: None,
    }
}

/// Total and available memory from sysinfo, for hosts without procfs.
fn host_memory(issues: &mut Vec<ProbeIssue>) -> (u64, u64) {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    match System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    ) {
        Ok(sys) => (sys.total_memory(), sys.available_memory()),
        Err(e) => {
            issues.push(issue::new("sysinfo", format!("cannot read memory: {e}")));
            (0, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/meminfo` of the 2-vCPU KVM build VM (Linux 6.18), trimmed to the first lines.
    const VM_MEMINFO: &str = "\
MemTotal:       24684084 kB
MemFree:         4182432 kB
MemAvailable:   24115188 kB
Buffers:            5264 kB
Cached:         20171472 kB
SwapCached:            0 kB
SwapTotal:             0 kB
SwapFree:              0 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
";

    /// DGX Spark (GB10) as reported in nvitop#208.
    const SPARK_MEMINFO: &str =
        "MemTotal:       127600748 kB\nMemFree:        90000000 kB\nMemAvailable:   118566368 kB\n";

    #[test]
    fn meminfo_reads_kb_values_as_bytes() {
        let m = parse_meminfo(VM_MEMINFO);
        assert_eq!(m.total_bytes, Some(24_684_084 * 1024));
        assert_eq!(m.available_bytes, Some(24_115_188 * 1024));
        assert_eq!(m.free_bytes, Some(4_182_432 * 1024));
        let s = parse_meminfo(SPARK_MEMINFO);
        assert_eq!(s.total_bytes, Some(130_663_165_952));
        assert_eq!(s.available_bytes, Some(118_566_368 * 1024));
    }

    #[test]
    fn meminfo_skips_garbage_and_missing_keys() {
        let m = parse_meminfo("MemTotal: lots kB\nnonsense\nMemFree: 10 MB\n");
        assert_eq!(m, MemInfo::default());
        let old_kernel = parse_meminfo("MemTotal: 1000 kB\nMemFree: 500 kB\n");
        assert_eq!(old_kernel.available_bytes, None);
        assert_eq!(old_kernel.free_bytes, Some(512_000));
    }

    #[test]
    fn cgroup_limit_treats_max_and_v1_sentinel_as_unlimited() {
        assert_eq!(parse_cgroup_limit("max\n"), Some(CgroupLimit::Unlimited));
        // cgroup v1 on the build VM.
        assert_eq!(
            parse_cgroup_limit("9223372036854771712\n"),
            Some(CgroupLimit::Unlimited)
        );
        assert_eq!(
            parse_cgroup_limit("34359738368\n"),
            Some(CgroupLimit::Bytes(34_359_738_368))
        );
        assert_eq!(parse_cgroup_limit("lots"), None);
    }

    #[test]
    fn memory_stat_finds_the_key() {
        let stat = "anon 100\nfile 5000\nactive_file 1000\ninactive_file 4000\n";
        assert_eq!(parse_memory_stat(stat, "inactive_file"), Some(4000));
        assert_eq!(parse_memory_stat(stat, "total_inactive_file"), None);
    }

    #[test]
    fn a_lower_cgroup_limit_caps_total_and_available() {
        let gib = 1u64 << 30;
        // 512 GiB host, 32 GiB container that already holds 10 GiB (2 GiB of it cache).
        let (t, a) = apply_cgroup_limit(512 * gib, 400 * gib, 32 * gib, Some(8 * gib));
        assert_eq!((t, a), (32 * gib, 24 * gib));
        // Without usage, the limit bounds both.
        assert_eq!(
            apply_cgroup_limit(512 * gib, 400 * gib, 32 * gib, None),
            (32 * gib, 32 * gib)
        );
        // A limit above the machine changes nothing.
        assert_eq!(
            apply_cgroup_limit(16 * gib, 10 * gib, 64 * gib, Some(gib)),
            (16 * gib, 10 * gib)
        );
        assert_eq!(working_set(Some(10), Some(20)), Some(0));
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn container_with_cgroup_v2_limit_reports_the_limit() {
        let dir = tree(&[
            (
                "proc/meminfo",
                "MemTotal: 536870912 kB\nMemAvailable: 500000000 kB\n",
            ),
            ("sys/fs/cgroup/memory.max", "34359738368\n"),
            ("sys/fs/cgroup/memory.current", "4294967296\n"),
            ("sys/fs/cgroup/memory.stat", "inactive_file 1073741824\n"),
        ]);
        let mut issues = Vec::new();
        let m = probe(&SysRoot::new(dir.path()), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(m.total_bytes, 34_359_738_368);
        assert_eq!(m.available_bytes, 34_359_738_368 - 3 * (1 << 30));
    }

    #[test]
    fn cgroup_v1_unlimited_leaves_meminfo_alone() {
        let dir = tree(&[
            ("proc/meminfo", VM_MEMINFO),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        let mut issues = Vec::new();
        let m = probe(&SysRoot::new(dir.path()), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(m.total_bytes, 24_684_084 * 1024);
        assert_eq!(m.available_bytes, 24_115_188 * 1024);
    }

    #[test]
    fn missing_meminfo_under_a_fixture_is_an_issue_not_a_panic() {
        let dir = tree(&[("sys/fs/cgroup/memory.max", "garbage\n")]);
        let mut issues = Vec::new();
        let m = probe(&SysRoot::new(dir.path()), &mut issues);
        assert_eq!((m.total_bytes, m.available_bytes), (0, 0));
        let sources: Vec<&str> = issues.iter().map(|i| i.source.as_str()).collect();
        assert_eq!(sources, ["proc/meminfo", "sys/fs/cgroup/memory.max"]);
    }
}
