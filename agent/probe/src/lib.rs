//! fleetfit's device probe: reads this machine (or a sysfs/procfs fixture tree) into a
//! `DeviceProfile`, the only thing the planner ever sees of a device.
//!
//! The probe never fails and never panics: whatever it cannot read becomes a `ProbeIssue` in the
//! profile and the rest is still reported. Every file read goes through one [`SysRoot`]
//! (`--sysroot`); live system queries (sysinfo, CPUID, disks) happen only when that root is `/`,
//! so a fixture tree can never leak the host into its profile. Each source lives in its own
//! module with pure parse functions beside it.
//!
//! Platform commands (`sysctl`, `getprop`) go through [`command::CommandRunner`]: the host's on
//! `/`, recordings in the fixture tree elsewhere.

pub mod amd;
pub mod android;
pub mod apple;
pub mod bandwidth;
pub mod command;
pub mod cpu;
pub mod gpu;
pub mod identity;
pub mod intel;
mod issue;
pub mod memory;
pub mod npu;
pub mod nvidia;
pub mod storage;
pub mod sysroot;

pub use sysroot::SysRoot;

use fleetfit_core::profile::{DeviceProfile, PROFILE_SCHEMA};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to probe and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Root every sysfs/procfs/etc read goes under; `/` (the default) is the live host.
    pub sysroot: PathBuf,
    /// Where models are stored, for the free-space figure. `None` means the Hugging Face hub cache
    /// ([`storage::default_models_dir`]) on the host, and no storage figure under another sysroot.
    pub models_dir: Option<PathBuf>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            sysroot: PathBuf::from("/"),
            models_dir: None,
        }
    }
}

/// Probes the machine at `opts.sysroot` into a profile. Never fails: unreadable sources are
/// listed in `issues`. Vectors are sorted so the same machine gives the same bytes.
pub fn probe(opts: &ProbeOptions) -> DeviceProfile {
    probe_root(opts, &SysRoot::new(&opts.sysroot))
}

/// [`probe`] through a ready-made `root` (its path wins over `opts.sysroot`): a
/// [`SysRoot::recording`] root then holds every source read, for `fleetfit-agent doctor`.
pub fn probe_root(opts: &ProbeOptions, root: &SysRoot) -> DeviceProfile {
    let root = root.clone();
    let runner = root.record_commands(command::runner_for(&root));
    let mut issues = Vec::new();
    if !root.path().is_dir() {
        issues.push(issue::new(
            root.path().display().to_string(),
            "sysroot is not a readable directory",
        ));
    }
    let identity = identity::probe(&root, &mut issues);
    let cpu = cpu::probe(&root, &mut issues);
    let memory = memory::probe(&root, &mut issues);
    let models_dir = opts
        .models_dir
        .clone()
        .or_else(|| root.is_host().then(storage::default_models_dir).flatten());
    let storage = models_dir.and_then(|dir| storage::probe(&dir, &mut issues));
    let mut profile = DeviceProfile {
        schema: PROFILE_SCHEMA.to_owned(),
        id: identity.id,
        hostname: identity.hostname,
        labels: BTreeMap::new(),
        class: identity.class,
        os: identity.os,
        cpu,
        memory,
        gpus: Vec::new(),
        npus: Vec::new(),
        storage,
        issues,
    };
    // Platforms that answer through commands rather than sysfs (they may replace OS, CPU and
    // memory figures), then each accelerator source adds what it finds.
    apple::probe(&root, runner.as_ref(), &mut profile);
    android::probe(&root, runner.as_ref(), &mut profile);
    nvidia::probe(&root, &mut profile);
    amd::probe(&root, &mut profile);
    intel::probe(&root, &mut profile);
    npu::probe(&root, &mut profile);
    finish(&mut profile);
    profile
}

/// Stable output: GPUs by PCI address then name, NPUs by vendor then name, and table bandwidth
/// for GPUs that report none.
fn finish(p: &mut DeviceProfile) {
    for g in &mut p.gpus {
        if g.bandwidth_gbps.is_none() {
            g.bandwidth_gbps = fleetfit_core::hardware::gpu_bandwidth_gbps(g);
        }
    }
    p.gpus
        .sort_by(|a, b| (&a.pci_bus_id, &a.name).cmp(&(&b.pci_bus_id, &b.name)));
    p.npus
        .sort_by(|a, b| (a.vendor, &a.name).cmp(&(b.vendor, &b.name)));
}

/// Helpers shared by the modules' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    /// Writes `contents` at `root/rel`, creating parent directories.
    pub(crate) fn write(root: &Path, rel: &str, contents: impl AsRef<[u8]>) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetfit_core::profile::GpuVendor;
    use std::path::Path;

    use crate::test_support::write;

    #[test]
    fn probing_this_host_gives_a_valid_profile() {
        let p = probe(&ProbeOptions::default());
        assert_eq!(p.schema, PROFILE_SCHEMA);
        assert!(p.memory.total_bytes > 0, "{:?}", p.issues);
        assert!(p.cpu.threads >= 1);
        // Round-trips through the ★ JSON contract.
        let text = serde_json::to_string_pretty(&p).unwrap();
        let back: DeviceProfile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_fixture_tree_is_probed_deterministically_and_without_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        write(r, "proc/sys/kernel/hostname", "ws-rtx4090\n");
        write(
            r,
            "proc/cpuinfo",
            "processor : 0\nmodel name : AMD Ryzen 9 7950X 16-Core Processor\nphysical id : 0\ncore id : 0\nflags : lm avx avx2 fma f16c avx512f avx512bw avx512_vnni\n\nprocessor : 1\nphysical id : 0\ncore id : 0\n",
        );
        write(
            r,
            "proc/meminfo",
            "MemTotal: 65536000 kB\nMemAvailable: 60000000 kB\n",
        );
        write(
            r,
            "proc/driver/nvidia/gpus/0000:01:00.0/information",
            "Model: \t\t NVIDIA GeForce RTX 4090\n",
        );
        let opts = ProbeOptions {
            sysroot: r.to_path_buf(),
            models_dir: None,
        };
        let a = probe(&opts);
        assert_eq!(a.id, "0123456789abcdef0123456789abcdef");
        assert_eq!(a.cpu.model, "AMD Ryzen 9 7950X 16-Core Processor");
        assert_eq!((a.cpu.cores, a.cpu.threads), (1, 2));
        assert_eq!(
            a.cpu.features,
            [
                "avx",
                "avx2",
                "avx512bw",
                "avx512f",
                "avx512vnni",
                "f16c",
                "fma"
            ]
        );
        assert_eq!(a.memory.total_bytes, 65_536_000 * 1024);
        assert_eq!(a.gpus.len(), 1);
        assert_eq!(a.gpus[0].vendor, GpuVendor::Nvidia);
        assert_eq!(a.storage, None);
        assert_eq!(a.class, None);
        let b = probe(&opts);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }

    #[test]
    fn a_missing_sysroot_is_issues_not_a_panic() {
        let p = probe(&ProbeOptions {
            sysroot: PathBuf::from("/definitely/not/here"),
            models_dir: None,
        });
        assert_eq!(p.memory.total_bytes, 0);
        assert!(!p.issues.is_empty());
        assert_eq!(p.issues[0].source, "/definitely/not/here");
    }

    /// Every showcase profile parses with the ★ schema and passes validation; ids are file stems.
    #[test]
    fn showcase_fixtures_parse() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fleets/showcase");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let profile: DeviceProfile =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let shown = path.display().to_string();
            assert_eq!(profile.validate(&shown), Vec::new(), "{shown}");
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap();
            assert_eq!(profile.id, stem, "{shown}");
            for label in ["form_factor", "dept"] {
                assert!(
                    profile.labels.contains_key(label),
                    "{shown} lacks `{label}`"
                );
            }
            // Byte-for-byte what `fleetfit-agent probe --format json` would write.
            let canonical = serde_json::to_string_pretty(&profile).unwrap() + "\n";
            assert_eq!(canonical, text, "{shown} is not in serialized form");
            let mut sorted = profile.cpu.features.clone();
            sorted.sort();
            assert_eq!(sorted, profile.cpu.features, "{shown}: features unsorted");
            seen += 1;
        }
        assert_eq!(seen, 9, "expected the nine showcase devices");
    }
}
