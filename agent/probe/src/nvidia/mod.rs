//! NVIDIA GPUs: NVML (through `nvml-wrapper`, loaded at run time), with procfs and PCI as the
//! fallback when the library is missing, and Jetson's unified memory.
//!
//! One `Gpu` per physical GPU, never summed; with MIG on, one per MIG instance instead of the
//! parent. When `memory_info` is `NotSupported` (DGX Spark's GB10, Jetson's `Orin (nvgpu)`), or
//! reports 0 bytes on an integrated part, the GPU is `unified` with no memory figure: the system
//! memory is its pool.

pub mod nvml;
pub mod pci;
pub mod procfs;
pub mod tegra;

use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{DeviceProfile, Gpu, GpuVendor, MigInstance, ProbeIssue};
use nvml::{CallError, MemoryInfo, NvmlSource, Unavailable};
use std::collections::BTreeSet;

/// Source of NVML issues.
const NVML: &str = "nvml";

/// Adds the NVIDIA GPUs of the machine at `root` to `p` (and any issues reading them).
pub(crate) fn probe(root: &SysRoot, p: &mut DeviceProfile) {
    let cpu_arch = p.cpu.arch.clone();
    let unavailable = match nvml::open(root) {
        Ok(opened) => match gpus_from_nvml(opened.source(), &cpu_arch, &mut p.issues) {
            Ok(mut gpus) => {
                // A Jetson's bandwidth depends on the module, which only the device tree names.
                if let Some(bw) =
                    tegra::device_tree_model(root).and_then(|m| tegra::jetson_bandwidth_gbps(&m))
                {
                    for g in gpus.iter_mut().filter(|g| g.name.contains("(nvgpu)")) {
                        g.bandwidth_gbps.get_or_insert(bw);
                    }
                }
                p.gpus.extend(gpus);
                return;
            }
            Err(u) => u,
        },
        Err(u) => u,
    };
    fallback(root, &unavailable, p);
}

/// `12060` → `12.6`, `13000` → `13.0` (NVML's `major*1000 + minor*10`).
pub fn cuda_version_string(v: i32) -> Option<String> {
    (v > 0).then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
}

/// NVML's bus id (`00000000:01:00.0`, `0000000F:01:00.0`) in sysfs form (`0000:01:00.0`,
/// `000f:01:00.0`), so the same GPU has the same address from every source.
pub fn normalize_bus_id(bus_id: &str) -> String {
    let bus_id = bus_id.trim();
    match bus_id.split_once(':') {
        Some((domain, rest)) => match u32::from_str_radix(domain, 16) {
            Ok(d) => format!("{d:04x}:{}", rest.to_ascii_lowercase()),
            Err(_) => bus_id.to_ascii_lowercase(),
        },
        None => bus_id.to_ascii_lowercase(),
    }
}

/// Whether an NVIDIA part shares system memory, from hints (never the sole gate for
/// `NotSupported`, which is unified by itself): Jetson names end in `(nvgpu)`, GB10 is DGX Spark
/// (PCI device `0x2e12`), and NVIDIA GPUs on aarch64 hosts are integrated unless they report memory.
pub fn looks_integrated(name: &str, pci_device_id: Option<u32>, cpu_arch: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("(nvgpu)")
        || lower.contains("gb10")
        || pci_device_id.is_some_and(|id| id >> 16 == 0x2e12)
        || cpu_arch == "aarch64"
}

/// A MIG slice's share of its parent's peak bandwidth: the parent's figure (from the name table)
/// times the slice's share of the parent's memory, since each memory slice brings its own memory
/// controllers (a 1g.10gb slice of an H100 has 1 of 8). `None` when either figure is missing.
pub fn mig_bandwidth_gbps(
    parent: &Gpu,
    parent_total: Option<u64>,
    slice: &Result<MemoryInfo, CallError>,
) -> Option<f64> {
    let parent_bw = fleetfit_core::hardware::gpu_bandwidth_gbps(parent)?;
    let parent_total = parent_total.filter(|t| *t > 0)?;
    let slice_total = slice.as_ref().ok()?.total;
    let share = (slice_total as f64 / parent_total as f64).min(1.0);
    Some((parent_bw * share * 10.0).round() / 10.0)
}

/// What one NVML answer adds: `Some` on success, `None` (silently) on `NotSupported`, `None` and
/// an issue on any other error.
fn optional<T>(
    r: Result<T, CallError>,
    device: u32,
    call: &str,
    issues: &mut Vec<ProbeIssue>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(CallError::NotSupported) => None,
        Err(CallError::Failed(e)) => {
            issues.push(issue::new(NVML, format!("gpu {device}: {call}: {e}")));
            None
        }
    }
}

/// How a GPU's memory reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuMemory {
    Dedicated {
        total: u64,
        free: u64,
    },
    /// Shares system memory: no figure of its own.
    Unified,
    Unknown,
}

/// Applies the UMA rules to a `memory_info` answer, adding an issue when the figure is missing.
pub fn classify_memory(
    r: Result<MemoryInfo, CallError>,
    integrated: bool,
    device: u32,
    issues: &mut Vec<ProbeIssue>,
) -> GpuMemory {
    match r {
        Ok(m) if m.total > 0 => GpuMemory::Dedicated {
            total: m.total,
            free: m.free.min(m.total),
        },
        Ok(_) if integrated => {
            issues.push(issue::new(
                NVML,
                format!(
                    "gpu {device}: memory_info reports 0 bytes (unified memory): using system memory"
                ),
            ));
            GpuMemory::Unified
        }
        Ok(_) => {
            issues.push(issue::new(
                NVML,
                format!("gpu {device}: memory_info reports 0 bytes: memory unknown"),
            ));
            GpuMemory::Unknown
        }
        Err(CallError::NotSupported) => {
            issues.push(issue::new(
                NVML,
                format!(
                    "gpu {device}: memory_info not supported (unified memory): using system memory"
                ),
            ));
            GpuMemory::Unified
        }
        Err(CallError::Failed(e)) => {
            issues.push(issue::new(
                NVML,
                format!("gpu {device}: memory_info: {e}: memory unknown"),
            ));
            GpuMemory::Unknown
        }
    }
}

fn set_memory(gpu: &mut Gpu, memory: GpuMemory) {
    match memory {
        GpuMemory::Dedicated { total, free } => {
            gpu.memory_total_bytes = Some(total);
            gpu.memory_free_bytes = Some(free);
        }
        GpuMemory::Unified => gpu.unified = true,
        GpuMemory::Unknown => {}
    }
}

/// Every GPU NVML reports: one per device, or one per MIG instance of a device in MIG mode.
/// `Err` when NVML cannot even count its devices (then the file-only fallbacks run).
pub fn gpus_from_nvml(
    src: &dyn NvmlSource,
    cpu_arch: &str,
    issues: &mut Vec<ProbeIssue>,
) -> Result<Vec<Gpu>, Unavailable> {
    let count = match src.device_count() {
        Ok(n) => n,
        Err(e) => {
            return Err(Unavailable {
                source: NVML.to_owned(),
                reason: format!("device_count: {e}"),
                report: true,
            });
        }
    };
    let driver = match src.driver_version() {
        Ok(v) => v,
        Err(e) => {
            issues.push(issue::new(NVML, format!("driver_version: {e}")));
            String::new()
        }
    };
    let cuda = match src.cuda_driver_version() {
        Ok(v) => cuda_version_string(v),
        Err(CallError::NotSupported) => None,
        Err(e) => {
            issues.push(issue::new(NVML, format!("cuda_driver_version: {e}")));
            None
        }
    };
    let mut out = Vec::new();
    for i in 0..count {
        let name = match src.name(i) {
            Ok(n) => n,
            Err(e) => {
                issues.push(issue::new(NVML, format!("gpu {i}: name: {e}")));
                "NVIDIA GPU".to_owned()
            }
        };
        let mut gpu = Gpu::new(GpuVendor::Nvidia, name);
        gpu.driver.clone_from(&driver);
        gpu.source = NVML.to_owned();
        gpu.cuda_version.clone_from(&cuda);
        gpu.pci_bus_id =
            optional(src.pci_bus_id(i), i, "pci_info", issues).map(|b| normalize_bus_id(&b));
        let pci_device_id = optional(src.pci_device_id(i), i, "pci_info", issues);
        gpu.compute_capability = optional(
            src.compute_capability(i),
            i,
            "cuda_compute_capability",
            issues,
        )
        .map(|(major, minor)| format!("{major}.{minor}"));
        gpu.architecture = optional(src.architecture(i), i, "architecture", issues);
        gpu.pcie_link = optional(src.pcie_link(i), i, "pcie_link", issues)
            .map(|l| format!("Gen{} x{}", l.r#gen, l.width));
        gpu.cores = optional(
            src.multiprocessor_count(i),
            i,
            "multiprocessor_count",
            issues,
        );
        gpu.nvlinks = optional(src.nvlink_active(i), i, "nvlink", issues).filter(|n| *n > 0);
        let mig_on =
            optional(src.mig_mode(i), i, "mig_mode", issues).is_some_and(|m| m.current == 1);
        if mig_on {
            let parent_total = src.memory_info(i).ok().map(|m| m.total);
            let instances =
                optional(src.mig_devices(i), i, "mig_devices", issues).unwrap_or_default();
            let before = out.len();
            for m in instances {
                let name = match m.name {
                    Ok(n) => n,
                    Err(e) => {
                        issues.push(issue::new(
                            NVML,
                            format!("gpu {i} mig {}: name: {e}", m.index),
                        ));
                        continue;
                    }
                };
                let mut slice = gpu.clone();
                slice.name = name;
                slice.bandwidth_gbps = mig_bandwidth_gbps(&gpu, parent_total, &m.memory);
                slice.cores = optional(
                    m.multiprocessor_count,
                    i,
                    "mig multiprocessor_count",
                    issues,
                );
                set_memory(&mut slice, classify_memory(m.memory, false, i, issues));
                match m.profile {
                    Some(profile) => {
                        slice.mig = Some(MigInstance {
                            profile,
                            parent_index: i,
                        });
                    }
                    None => issues.push(issue::new(
                        NVML,
                        format!(
                            "gpu {i} mig {}: no MIG profile in `{}`",
                            m.index, slice.name
                        ),
                    )),
                }
                out.push(slice);
            }
            if out.len() > before {
                continue;
            }
            issues.push(issue::new(
                NVML,
                format!("gpu {i}: MIG is enabled but no MIG instance could be read: reporting the whole GPU"),
            ));
        }
        let integrated = looks_integrated(&gpu.name, pci_device_id, cpu_arch);
        set_memory(
            &mut gpu,
            classify_memory(src.memory_info(i), integrated, i, issues),
        );
        out.push(gpu);
    }
    Ok(out)
}

/// Without NVML: procfs, then PCI (each GPU once, matched by PCI address), then a Jetson's device
/// tree; one issue saying what is unknown.
fn fallback(root: &SysRoot, why: &Unavailable, p: &mut DeviceProfile) {
    if why.report {
        p.issues.push(issue::new(&why.source, &why.reason));
    }
    let mut gpus = procfs::procfs_gpus(root, &mut p.issues);
    let seen: BTreeSet<String> = gpus.iter().filter_map(|g| g.pci_bus_id.clone()).collect();
    let driver = procfs::procfs_driver_version(root);
    for mut g in pci::pci_gpus(root, &mut p.issues) {
        if g.pci_bus_id.as_ref().is_some_and(|b| seen.contains(b)) {
            continue;
        }
        if let Some(v) = &driver {
            g.driver.clone_from(v);
        }
        gpus.push(g);
    }
    if !gpus.is_empty() {
        p.issues.push(issue::new(
            NVML,
            format!(
                "{} NVIDIA GPU(s) found without NVML ({}): memory and compute capability unknown",
                gpus.len(),
                why.reason
            ),
        ));
        p.gpus.extend(gpus);
        return;
    }
    if let Some(g) = tegra::tegra_gpu(root) {
        p.issues.push(issue::new(
            NVML,
            format!(
                "Jetson GPU from the device tree without NVML ({}): unified memory, using system memory",
                why.reason
            ),
        ));
        p.gpus.push(g);
    }
}

#[cfg(test)]
mod tests {
    use super::nvml::FakeNvml;
    use super::*;

    fn fake(json: &str) -> FakeNvml {
        FakeNvml::from_json(json).unwrap().init().unwrap()
    }

    use crate::test_support::write;

    #[test]
    fn versions_links_and_bus_ids_are_formatted() {
        assert_eq!(cuda_version_string(12060).as_deref(), Some("12.6"));
        assert_eq!(cuda_version_string(13000).as_deref(), Some("13.0"));
        assert_eq!(cuda_version_string(12080).as_deref(), Some("12.8"));
        assert_eq!(cuda_version_string(0), None);
        assert_eq!(normalize_bus_id("00000000:01:00.0"), "0000:01:00.0");
        assert_eq!(normalize_bus_id("0000000F:01:00.0"), "000f:01:00.0");
        assert_eq!(normalize_bus_id("00000000:1B:00.0"), "0000:1b:00.0");
        assert_eq!(normalize_bus_id("0000:01:00.0"), "0000:01:00.0");
        assert_eq!(normalize_bus_id("garbage"), "garbage");
    }

    #[test]
    fn integrated_hints() {
        assert!(looks_integrated("Orin (nvgpu)", None, "aarch64"));
        assert!(looks_integrated("NVIDIA GB10", None, "x86_64"));
        assert!(looks_integrated("NVIDIA GPU", Some(0x2e12_10de), ""));
        assert!(!looks_integrated(
            "NVIDIA GeForce RTX 4090",
            Some(0x2684_10de),
            "x86_64"
        ));
    }

    #[test]
    fn memory_rules_follow_the_uma_cases() {
        let mut issues = Vec::new();
        let m = |total, free| {
            Ok(MemoryInfo {
                total,
                free,
                used: total - free,
            })
        };
        assert_eq!(
            classify_memory(m(100, 40), false, 0, &mut issues),
            GpuMemory::Dedicated {
                total: 100,
                free: 40
            }
        );
        assert!(issues.is_empty());
        assert_eq!(
            classify_memory(Err(CallError::NotSupported), false, 0, &mut issues),
            GpuMemory::Unified
        );
        assert_eq!(
            issues[0].message,
            "gpu 0: memory_info not supported (unified memory): using system memory"
        );
        assert_eq!(
            classify_memory(m(0, 0), true, 1, &mut issues),
            GpuMemory::Unified
        );
        assert_eq!(
            classify_memory(m(0, 0), false, 2, &mut issues),
            GpuMemory::Unknown
        );
        assert_eq!(
            classify_memory(
                Err(CallError::Failed("FailedToLoadSymbol".into())),
                false,
                3,
                &mut issues
            ),
            GpuMemory::Unknown
        );
        assert_eq!(issues.len(), 4);
    }

    #[test]
    fn an_rtx4090_maps_every_field() {
        let f = fake(
            r#"{"driver_version": "560.35.03", "cuda_driver_version": 12060,
              "devices": [{"index": 0, "name": "NVIDIA GeForce RTX 4090",
                "pci_bus_id": "00000000:01:00.0", "pci_device_id": "0x268410de",
                "memory": {"total": 25757220864, "free": 24900000000, "used": 857220864},
                "compute_capability": [8, 9], "architecture": "Ada",
                "pcie_link": {"gen": 4, "width": 16}, "multiprocessor_count": 128,
                "mig_mode": "NotSupported"}]}"#,
        );
        let mut issues = Vec::new();
        let gpus = gpus_from_nvml(&f, "x86_64", &mut issues).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        let g = &gpus[0];
        assert_eq!(g.name, "NVIDIA GeForce RTX 4090");
        assert_eq!(g.memory_total_bytes, Some(25_757_220_864));
        assert_eq!(g.memory_free_bytes, Some(24_900_000_000));
        assert!(!g.unified);
        assert_eq!(g.driver, "560.35.03");
        assert_eq!(g.source, "nvml");
        assert_eq!(g.cuda_version.as_deref(), Some("12.6"));
        assert_eq!(g.compute_capability.as_deref(), Some("8.9"));
        assert_eq!(g.architecture.as_deref(), Some("Ada"));
        assert_eq!(g.pci_bus_id.as_deref(), Some("0000:01:00.0"));
        assert_eq!(g.pcie_link.as_deref(), Some("Gen4 x16"));
        assert_eq!(g.cores, Some(128));
        assert_eq!(g.mig, None);
    }

    #[test]
    fn gb10_with_memory_not_supported_is_unified() {
        let f = fake(
            r#"{"driver_version": "580.126.09", "cuda_driver_version": 13000,
              "devices": [{"index": 0, "name": "NVIDIA GB10", "pci_bus_id": "0000000F:01:00.0",
                "pci_device_id": "0x2e1210de", "memory": "NotSupported",
                "compute_capability": [12, 1], "architecture": "Blackwell"}]}"#,
        );
        let mut issues = Vec::new();
        let gpus = gpus_from_nvml(&f, "aarch64", &mut issues).unwrap();
        let g = &gpus[0];
        assert!(g.unified);
        assert_eq!((g.memory_total_bytes, g.memory_free_bytes), (None, None));
        assert_eq!(g.pci_bus_id.as_deref(), Some("000f:01:00.0"));
        assert_eq!(g.cuda_version.as_deref(), Some("13.0"));
        assert_eq!(g.compute_capability.as_deref(), Some("12.1"));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].message.contains("unified memory"));
    }

    #[test]
    fn mig_mode_gives_one_gpu_per_instance_and_not_the_parent() {
        let f = fake(
            r#"{"driver_version": "550.90.07", "cuda_driver_version": 12040,
              "devices": [{"index": 0, "name": "NVIDIA H100 80GB HBM3",
                "pci_bus_id": "00000000:1B:00.0",
                "memory": {"total": 85520809984, "free": 85000000000, "used": 520809984},
                "mig_mode": {"current": 1, "pending": 1},
                "mig_devices": [
                  {"index": 0, "name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                   "memory": {"total": 42949672960, "free": 42000000000, "used": 0}},
                  {"index": 1, "name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "profile": "1g.10gb",
                   "memory": {"total": 10737418240, "free": 10200547328, "used": 0},
                   "multiprocessor_count": 16},
                  {"index": 2, "name": {"error": "GpuLost"}}]}]}"#,
        );
        let mut issues = Vec::new();
        let gpus = gpus_from_nvml(&f, "x86_64", &mut issues).unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!(
            gpus[0].mig,
            Some(MigInstance {
                profile: "3g.40gb".into(),
                parent_index: 0
            })
        );
        assert_eq!(gpus[1].memory_total_bytes, Some(10_737_418_240));
        // 3350 GB/s × 10 GiB / 79.6 GiB.
        assert_eq!(gpus[1].bandwidth_gbps, Some(420.6));
        assert_eq!(gpus[0].bandwidth_gbps, Some(1682.4));
        assert_eq!(gpus[1].cores, Some(16));
        assert!(
            gpus.iter()
                .all(|g| g.pci_bus_id.as_deref() == Some("0000:1b:00.0"))
        );
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].message.contains("GpuLost"));
    }

    #[test]
    fn mig_on_without_instances_reports_the_parent() {
        let f = fake(
            r#"{"devices": [{"index": 0, "name": "NVIDIA A100-SXM4-40GB",
                "memory": {"total": 42949672960, "free": 42949672960, "used": 0},
                "mig_mode": {"current": 1, "pending": 1}}]}"#,
        );
        let mut issues = Vec::new();
        let gpus = gpus_from_nvml(&f, "x86_64", &mut issues).unwrap();
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].memory_total_bytes, Some(42_949_672_960));
        assert!(issues.iter().any(|i| i.message.contains("MIG is enabled")));
    }

    #[test]
    fn per_call_errors_are_issues_not_failures() {
        let f = fake(
            r#"{"driver_version": {"error": "Unknown"},
              "devices": [{"index": 0, "name": "NVIDIA L4",
                "memory": "FailedToLoadSymbol(nvmlDeviceGetMemoryInfo_v2)",
                "architecture": {"error": "GpuLost"}}]}"#,
        );
        let mut issues = Vec::new();
        let gpus = gpus_from_nvml(&f, "x86_64", &mut issues).unwrap();
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].memory_total_bytes, None);
        assert!(!gpus[0].unified);
        assert_eq!(issues.len(), 3, "{issues:?}");
    }

    #[test]
    fn procfs_and_pci_name_each_gpu_once() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "proc/driver/nvidia/gpus/0000:01:00.0/information",
            b"Model: \t\t NVIDIA GeForce RTX 4090\n",
        );
        write(
            r,
            "proc/driver/nvidia/version",
            b"NVRM version: NVIDIA UNIX x86_64 Kernel Module  560.35.03  Fri Aug 16 21:39:15 UTC 2024\n",
        );
        for (bdf, dev) in [("0000:01:00.0", "0x2684"), ("0000:02:00.0", "0x2204")] {
            write(r, &format!("sys/bus/pci/devices/{bdf}/vendor"), b"0x10de\n");
            write(
                r,
                &format!("sys/bus/pci/devices/{bdf}/device"),
                dev.as_bytes(),
            );
            write(
                r,
                &format!("sys/bus/pci/devices/{bdf}/class"),
                b"0x030000\n",
            );
        }
        let mut p = crate::probe(&crate::ProbeOptions {
            sysroot: r.to_path_buf(),
            models_dir: None,
        });
        p.issues.retain(|i| i.source == NVML);
        let names: Vec<&str> = p.gpus.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["NVIDIA GeForce RTX 4090", "NVIDIA GPU 0x2204"]);
        assert!(p.gpus.iter().all(|g| g.driver == "560.35.03"));
        assert_eq!(p.issues.len(), 1, "{:?}", p.issues);
        assert!(
            p.issues[0]
                .message
                .starts_with("2 NVIDIA GPU(s) found without NVML")
        );
    }

    #[test]
    fn a_recorded_init_failure_falls_back_and_a_real_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            nvml::RECORDING,
            br#"{"init_error": "LibRmVersionMismatch"}"#,
        );
        write(
            r,
            "proc/device-tree/compatible",
            b"nvidia,p3767-0005\0nvidia,tegra234\0",
        );
        let mut p = crate::probe(&crate::ProbeOptions {
            sysroot: r.to_path_buf(),
            models_dir: None,
        });
        p.issues.retain(|i| i.source == NVML);
        assert_eq!(p.gpus.len(), 1);
        assert_eq!(p.gpus[0].name, "Orin (nvgpu)");
        assert!(p.gpus[0].unified);
        assert_eq!(p.issues.len(), 2, "{:?}", p.issues);
        assert!(p.issues[0].message.contains("LibRmVersionMismatch"));
    }

    #[test]
    fn no_nvidia_anything_means_no_gpus_and_no_issues() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = crate::probe(&crate::ProbeOptions {
            sysroot: dir.path().to_path_buf(),
            models_dir: None,
        });
        p.issues.retain(|i| i.source == NVML);
        assert!(p.gpus.is_empty());
        assert!(p.issues.is_empty());
    }
}
