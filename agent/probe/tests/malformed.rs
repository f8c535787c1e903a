//! The `malformed` host fixture (and run-time variants git cannot store, like mode 000 files)
//! through `probe()` and the recording path `doctor` uses: no panic, an issue naming each bad
//! source, and unknown values left absent rather than made up.

use fleetfit_core::profile::DeviceProfile;
use fleetfit_probe::sysroot::ReadOutcome;
use fleetfit_probe::{ProbeOptions, SysRoot, probe, probe_root};
use std::path::{Path, PathBuf};

fn malformed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hosts/malformed")
}

fn opts(root: &Path) -> ProbeOptions {
    ProbeOptions {
        sysroot: root.to_path_buf(),
        models_dir: None,
    }
}

fn sources(p: &DeviceProfile) -> Vec<&str> {
    p.issues.iter().map(|i| i.source.as_str()).collect()
}

#[test]
fn the_malformed_tree_gives_issues_not_a_panic() {
    let p = probe(&opts(&malformed()));
    let got = sources(&p);
    for bad in [
        "proc/meminfo",
        "proc/cpuinfo",
        "etc/machine-id",
        "sys/fs/cgroup/memory.max",
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        "sys/class/drm/card1/device/vendor",
        "sys/class/drm/card2/device/mem_info_vram_total",
        "sys/class/drm/card3/device/vendor",
        "sys/class/drm/card4/device/vendor",
        "proc/driver/nvidia/gpus/0000:01:00.0/information",
        "proc/driver/nvidia/gpus/0000:02:00.0/information",
        "proc/driver/nvidia/gpus/0000:03:00.0/information",
        ".fleetfit/nvml.json",
    ] {
        assert!(got.contains(&bad), "no issue names `{bad}`: {got:?}");
    }
    // Nothing made up: unknown numbers are zero or absent, unknown strings empty.
    assert_eq!(p.memory.total_bytes, 0);
    assert_eq!(p.memory.available_bytes, 0);
    assert_eq!(p.memory.bandwidth_gbps, None);
    assert_eq!(p.id, "");
    assert_eq!(p.hostname, "");
    assert_eq!(p.os.version, "");
    assert_eq!(p.cpu.model, "");
    assert_eq!(p.cpu.features, Vec::<String>::new());
    assert_eq!(p.class, None);
    assert_eq!(p.storage, None);
    for g in &p.gpus {
        assert_eq!(g.memory_total_bytes, None, "{g:?}");
        assert_eq!(g.memory_free_bytes, None, "{g:?}");
        assert!(!g.name.contains('\u{fffd}'), "{g:?}");
    }
    for i in &p.issues {
        assert!(!i.message.is_empty(), "{i:?}");
    }
    // The same tree gives the same bytes.
    let again = probe(&opts(&malformed()));
    assert_eq!(format!("{p:?}"), format!("{again:?}"));
}

#[test]
fn the_doctor_recording_path_records_every_bad_source_without_panicking() {
    let root = SysRoot::recording(malformed());
    let p = probe_root(&opts(&malformed()), &root);
    assert_eq!(
        format!("{p:?}"),
        format!("{:?}", probe(&opts(&malformed()))),
        "recording must not change the profile"
    );
    let reads = root.reads();
    let find = |path: &str| {
        reads
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("`{path}` not recorded: {reads:?}"))
    };
    assert!(
        matches!(&find("proc/cpuinfo").outcome, ReadOutcome::Error(e) if e.contains("UTF-8")),
        "{:?}",
        find("proc/cpuinfo")
    );
    assert!(matches!(
        &find("etc/machine-id").outcome,
        ReadOutcome::Error(_)
    ));
    assert!(matches!(
        &find("proc/meminfo").outcome,
        ReadOutcome::Content { text, truncated: false } if text.contains("99999999999999999999999")
    ));
    assert!(matches!(
        &find("sys/class/drm").outcome,
        ReadOutcome::Listing(names) if names.len() == 6
    ));
    // Every issue's source was recorded, except the non-file `identity` issue.
    for i in &p.issues {
        if i.source != "identity" {
            assert!(
                reads.iter().any(|r| r.path == i.source),
                "issue source `{}` not recorded",
                i.source
            );
        }
    }
}

/// Copies the regular files and symlinks under `from` to `to`.
#[cfg(test)] // (test-only code for clippy's `allow-unwrap-in-tests`)
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ty.is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[cfg(test)]
fn running_as_root() -> bool {
    // The owner of a file we just made is us.
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::metadata(dir.path()).unwrap().uid() == 0
}

#[test]
fn mode_000_files_are_issues_or_read_when_root_but_never_a_panic() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&malformed(), dir.path());
    let r = dir.path();
    // Replace a few sources with well-formed but unreadable (mode 000) files.
    std::fs::write(
        r.join("proc/meminfo"),
        "MemTotal: 1000 kB\nMemAvailable: 10 kB\n",
    )
    .unwrap();
    std::fs::write(r.join("sys/class/drm/card3/device/vendor"), "0x1002\n").unwrap();
    std::fs::write(
        r.join("proc/driver/nvidia/version"),
        "NVRM version: x 1.2\n",
    )
    .unwrap();
    let locked = [
        "proc/meminfo",
        "sys/class/drm/card3/device/vendor",
        "proc/driver/nvidia/version",
    ];
    for rel in locked {
        std::fs::set_permissions(r.join(rel), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let p = probe(&opts(r));
    let recorded = SysRoot::recording(r);
    let _ = probe_root(&opts(r), &recorded);
    if running_as_root() {
        // Root reads mode 000 files anyway: the values are the files' own.
        assert_eq!(p.memory.total_bytes, 1_024_000);
    } else {
        assert_eq!(p.memory.total_bytes, 0);
        let got = sources(&p);
        for rel in ["proc/meminfo", "sys/class/drm/card3/device/vendor"] {
            assert!(got.contains(&rel), "no issue names `{rel}`: {got:?}");
        }
    }
    for rel in locked {
        std::fs::set_permissions(r.join(rel), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// xorshift64*: a fixed-seed generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes the parsers split and match on, favoured by the mutator.
const INTERESTING: &[&[u8]] = &[
    b":",
    b"\n",
    b" ",
    b"\t",
    b"=",
    b"\"",
    b"0x",
    b"kB",
    b"max",
    b"N/A",
    b"\xff",
    b"\xc3",
    b"99999999999999999999999",
    b"18446744073709551615",
    b"MemTotal:",
    b"MemAvailable:",
    b"processor\t: ",
    b"core id\t: ",
    b"physical id\t: ",
    b"flags\t: ",
    b"Features\t: ",
    b"model name\t: ",
    b"inactive_file ",
    b"PRETTY_NAME=",
    b"-1",
    b"\xe2\x82\xac",
];

/// One pseudo-random input: random bytes (1 in 4) or a seed with 1–8 byte-level mutations.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(512);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(8) {
        let at = rng.below(b.len() + 1);
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = rng.next() as u8;
            }
            1 => {
                let s = INTERESTING[rng.below(INTERESTING.len())];
                b.splice(at..at, s.iter().copied());
            }
            2 => {
                let end = (at + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(256)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let end = (from + rng.below(256)).min(other.len());
                b.splice(at..at, other[from..end].iter().copied());
            }
            _ => b.truncate(at),
        }
    }
    b
}

/// The fuzz targets' checks (see `agent/probe/fuzz/`) as a seeded loop on stable: 20,000
/// pseudo-random and mutated inputs per parser, seeded from every host fixture's files.
#[test]
fn parsers_survive_twenty_thousand_mutated_inputs_each() {
    use fleetfit_probe::memory::{
        CgroupLimit, apply_cgroup_limit, parse_cgroup_limit, parse_meminfo, parse_memory_stat,
    };
    use fleetfit_probe::{cpu, identity, sysroot};
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hosts");
    let mut seeds: Vec<Vec<u8>> = vec![
        b"MemTotal: 1000 kB\nMemAvailable: 10 kB\n".to_vec(),
        b"processor : 0\nphysical id : 0\ncore id : 0\nflags : lm avx2\n".to_vec(),
        b"0x10de\n".to_vec(),
        b"max\n".to_vec(),
        b"anon 1\ninactive_file 4000\n".to_vec(),
        b"NAME=\"Debian\"\nVERSION_ID=\"12\"\n".to_vec(),
    ];
    for entry in std::fs::read_dir(&hosts).into_iter().flatten().flatten() {
        for rel in [
            "proc/meminfo",
            "proc/cpuinfo",
            "etc/os-release",
            "sys/fs/cgroup/memory.max",
            "sys/fs/cgroup/memory.stat",
            "sys/fs/cgroup/memory/memory.stat",
        ] {
            if let Ok(b) = std::fs::read(entry.path().join(rel)) {
                seeds.push(b);
            }
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let text = String::from_utf8_lossy(&input(&mut rng, &seeds)).into_owned();
        // meminfo
        let m = parse_meminfo(&text);
        if !text.contains("MemTotal") {
            assert_eq!(m.total_bytes, None, "{text:?}");
        }
        let _ = identity::parse_os_release(&text);
        // cpuinfo
        let info = cpu::parse_cpuinfo(&text);
        let arch = info.arch.clone().unwrap_or_default();
        let features = cpu::features_from_flags(&arch, &info.flags);
        assert!(features.windows(2).all(|w| w[0] <= w[1]), "{text:?}");
        // sysfs_u64
        if let Some(n) = sysroot::parse_u64(&text) {
            let t = text.trim();
            let again = if t.starts_with("0x") || t.starts_with("0X") {
                sysroot::parse_u64(&format!("0x{n:x}"))
            } else {
                sysroot::parse_u64(&n.to_string())
            };
            assert_eq!(again, Some(n), "{text:?}");
        }
        // cgroup
        let ws = parse_memory_stat(&text, "inactive_file");
        if let Some(CgroupLimit::Bytes(l)) = parse_cgroup_limit(&text) {
            let (total, available) = (text.len() as u64 * 4096, text.len() as u64 * 1000);
            let (t, a) = apply_cgroup_limit(total, available, l, ws);
            assert!(t <= total && a <= available && a <= t, "{text:?}");
        }
    }
}
