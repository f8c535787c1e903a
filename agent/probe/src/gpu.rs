//! Every GPU the vendor modules find, in one sorted list; and the DRM helpers they share.

#[cfg(test)]
use crate::sysroot::SysRoot;
#[cfg(test)]
use fleetfit_core::profile::{Gpu, ProbeIssue};

pub use crate::nvidia::procfs::{parse_nvidia_driver_version, parse_nvidia_information};

/// Whether a `/sys/class/drm` entry is a card (`card1`), not a connector (`card1-DP-1`) or a
/// render node (`renderD128`).
pub fn is_drm_card(name: &str) -> bool {
    name.strip_prefix("card")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// NVIDIA procfs and AMD DRM GPUs, sorted by name (the file-only sources; used by tests).
#[cfg(test)]
pub(crate) fn probe(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<Gpu> {
    let mut gpus = crate::nvidia::procfs::nvidia_procfs(root, issues);
    gpus.extend(crate::amd::amd_sysfs(root, issues));
    gpus.sort_by(|a, b| a.name.cmp(&b.name));
    gpus
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetfit_core::profile::GpuVendor;

    /// `information` of an RTX 4090 (driver 560; UUID shortened).
    const RTX4090_INFORMATION: &str = "\
Model: \t\t NVIDIA GeForce RTX 4090
IRQ:   \t\t 186
GPU UUID: \t GPU-8d2f0c4e-0000-0000-0000-000000000000
Video BIOS: \t 95.02.18.80.87
Bus Type: \t PCIe
DMA Size: \t 47 bits
DMA Mask: \t 0x7fffffffffff
Bus Location: \t 0000:01:00.0
Device Minor: \t 0
GPU Excluded:\t No
";

    const NVIDIA_VERSION_TEXT: &str = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  560.35.03  Fri Aug 16 21:39:15 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
    const NVIDIA_OPEN_VERSION_TEXT: &str = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  580.126.09  Release Build  (dvs-builder@U16-I3-C03-1)  Tue Jan  6 2026\n";

    use crate::test_support::write;

    #[test]
    fn nvidia_information_gives_the_model() {
        assert_eq!(
            parse_nvidia_information(RTX4090_INFORMATION).as_deref(),
            Some("NVIDIA GeForce RTX 4090")
        );
        assert_eq!(parse_nvidia_information("IRQ: 1\nModel:   \n"), None);
    }

    #[test]
    fn nvidia_version_line_gives_the_driver_version() {
        assert_eq!(
            parse_nvidia_driver_version(NVIDIA_VERSION_TEXT).as_deref(),
            Some("560.35.03")
        );
        assert_eq!(
            parse_nvidia_driver_version(NVIDIA_OPEN_VERSION_TEXT).as_deref(),
            Some("580.126.09")
        );
        assert_eq!(parse_nvidia_driver_version("garbage"), None);
    }

    #[test]
    fn only_cardn_entries_are_cards() {
        assert!(is_drm_card("card0"));
        assert!(is_drm_card("card12"));
        assert!(!is_drm_card("card0-DP-1"));
        assert!(!is_drm_card("renderD128"));
        assert!(!is_drm_card("card"));
        assert!(!is_drm_card("version"));
    }

    #[test]
    fn two_nvidia_gpus_from_procfs_sorted_with_one_issue() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "proc/driver/nvidia/version", NVIDIA_VERSION_TEXT);
        write(
            r,
            "proc/driver/nvidia/gpus/0000:01:00.0/information",
            RTX4090_INFORMATION,
        );
        write(
            r,
            "proc/driver/nvidia/gpus/0000:02:00.0/information",
            "Model: \t\t NVIDIA GeForce RTX 3090\n",
        );
        let mut issues = Vec::new();
        let gpus = probe(&SysRoot::new(r), &mut issues);
        let names: Vec<&str> = gpus.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            ["NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 4090"]
        );
        assert!(gpus.iter().all(|g| g.vendor == GpuVendor::Nvidia
            && g.driver == "560.35.03"
            && g.memory_total_bytes.is_none()
            && g.source == "procfs"));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].source, "proc/driver/nvidia/gpus");
    }

    #[cfg(unix)]
    #[test]
    fn amd_dgpu_from_drm_sysfs_skips_connectors_and_other_vendors() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        // RX 7900 XTX as card1 (an APU often takes card0; indices are not stable).
        write(r, "sys/class/drm/card1/device/vendor", "0x1002\n");
        write(r, "sys/class/drm/card1/device/device", "0x744c\n");
        write(
            r,
            "sys/class/drm/card1/device/mem_info_vram_total",
            "25753026560\n",
        );
        write(
            r,
            "sys/class/drm/card1/device/mem_info_vram_used",
            "1753026560\n",
        );
        write(r, "sys/class/drm/card1-DP-1/status", "connected\n");
        write(r, "sys/class/drm/renderD128/dev", "226:128\n");
        // An Intel iGPU: not ours to read here.
        write(r, "sys/class/drm/card0/device/vendor", "0x8086\n");
        std::fs::create_dir_all(r.join("sys/bus/pci/drivers/amdgpu")).unwrap();
        std::os::unix::fs::symlink(
            r.join("sys/bus/pci/drivers/amdgpu"),
            r.join("sys/class/drm/card1/device/driver"),
        )
        .unwrap();
        let mut issues = Vec::new();
        let gpus = probe(&SysRoot::new(r), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(gpus.len(), 1);
        let g = &gpus[0];
        assert_eq!(g.vendor, GpuVendor::Amd);
        assert_eq!(g.name, "AMD Radeon RX 7900 XTX");
        assert_eq!(g.memory_total_bytes, Some(25_753_026_560));
        assert_eq!(g.memory_free_bytes, Some(24_000_000_000));
        assert_eq!((g.driver.as_str(), g.source.as_str()), ("amdgpu", "sysfs"));
    }

    #[test]
    fn malformed_amd_memory_is_an_issue_and_the_gpu_stays() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "sys/class/drm/card0/device/vendor", "0x1002\n");
        write(
            r,
            "sys/class/drm/card0/device/product_name",
            "AMD Instinct MI300X\n",
        );
        write(r, "sys/class/drm/card0/device/mem_info_vram_total", "N/A\n");
        let mut issues = Vec::new();
        let gpus = probe(&SysRoot::new(r), &mut issues);
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].name, "AMD Instinct MI300X");
        assert_eq!(gpus[0].memory_total_bytes, None);
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].source,
            "sys/class/drm/card0/device/mem_info_vram_total"
        );
    }

    #[test]
    fn no_gpu_sources_means_no_gpus_and_no_issues() {
        let dir = tempfile::tempdir().unwrap();
        let mut issues = Vec::new();
        assert!(probe(&SysRoot::new(dir.path()), &mut issues).is_empty());
        assert!(issues.is_empty());
    }
}
