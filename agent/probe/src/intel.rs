//! Intel GPUs from i915/xe DRM sysfs: discrete Arc VRAM (hex files), iGPUs as unified memory.

use crate::gpu::is_drm_card;
use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{DeviceProfile, Gpu, GpuVendor, ProbeIssue};

const DRM: &str = "sys/class/drm";
const PCI_VENDOR_INTEL: u64 = 0x8086;

/// What a PCI device id tells about an Intel GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntelModel {
    pub name: &'static str,
    pub discrete: bool,
    pub architecture: &'static str,
}

/// Intel GPUs by PCI device id (kernel `include/drm/intel/pciids.h` / `xe_pciids.h`, compute-runtime
/// NEO device tables; probe-ground-truth §3).
pub fn intel_model(device: u64) -> Option<IntelModel> {
    let (name, discrete, architecture) = match device {
        // Discrete Arc.
        0xe20b => ("Intel Arc B580", true, "Xe2"),
        0xe20c => ("Intel Arc B570", true, "Xe2"),
        0x56a0 => ("Intel Arc A770", true, "Xe-HPG"),
        0x56a1 => ("Intel Arc A750", true, "Xe-HPG"),
        0x56a5 => ("Intel Arc A380", true, "Xe-HPG"),
        // Integrated.
        0x64a0 => ("Intel Arc 140V / 130V (Lunar Lake)", false, "Xe2"),
        0x6420 => ("Intel Graphics (Lunar Lake)", false, "Xe2"),
        0x7d55 => ("Intel Arc Graphics (Meteor Lake)", false, "Xe-LPG"),
        0x7dd5 => ("Intel Graphics (Meteor Lake)", false, "Xe-LPG"),
        0x7d45 => ("Intel Graphics (Meteor Lake-U)", false, "Xe-LPG"),
        0x7d51 => ("Intel Arc Graphics (Arrow Lake-H)", false, "Xe-LPG+"),
        0x7dd1 => ("Intel Graphics (Arrow Lake-H)", false, "Xe-LPG+"),
        0xa7a0 => ("Intel Iris Xe Graphics (Raptor Lake-P)", false, "Xe-LP"),
        0x46a6 => ("Intel Iris Xe Graphics (Alder Lake-P)", false, "Xe-LP"),
        0x9a49 => ("Intel Iris Xe Graphics (Tiger Lake)", false, "Xe-LP"),
        0xa780 => ("Intel UHD Graphics 770 (Raptor Lake-S)", false, "Xe-LP"),
        0x4680 => ("Intel UHD Graphics 770 (Alder Lake-S)", false, "Xe-LP"),
        0x46d1 => ("Intel UHD Graphics (Alder Lake-N)", false, "Xe-LP"),
        0x9bc5 => ("Intel UHD Graphics 630 (Comet Lake)", false, "Gen9.5"),
        0x3e92 => ("Intel UHD Graphics 630 (Coffee Lake)", false, "Gen9.5"),
        _ => return None,
    };
    Some(IntelModel {
        name,
        discrete,
        architecture,
    })
}

/// Adds the Intel GPUs of the machine at `root` to `p`.
pub(crate) fn probe(root: &SysRoot, p: &mut DeviceProfile) {
    let cards: Vec<String> = match root.list_dir(DRM) {
        Ok(entries) => entries.into_iter().filter(|n| is_drm_card(n)).collect(),
        Err(e) => {
            p.issues.push(issue::from_read(&e));
            return;
        }
    };
    for card in cards {
        let dev = format!("{DRM}/{card}/device");
        if root.read_u64(format!("{dev}/vendor")).ok() != Some(PCI_VENDOR_INTEL) {
            continue;
        }
        let Some(driver) = root
            .link_name(format!("{dev}/driver"))
            .filter(|d| d == "i915" || d == "xe")
        else {
            continue;
        };
        let gpu = card_gpu(root, &card, driver, &mut p.issues);
        p.gpus.push(gpu);
    }
}

/// A hex-or-decimal VRAM size file: missing → `None`, unreadable → an issue.
fn size_file(root: &SysRoot, rel: &str, issues: &mut Vec<ProbeIssue>) -> Option<u64> {
    match root.read_u64(rel) {
        Ok(n) if n > 0 => Some(n),
        Ok(_) => None,
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            issues.push(issue::from_read(&e));
            None
        }
    }
}

/// Local memory of a discrete card: xe sums `device/tile*/physical_vram_size_bytes`; i915 reads
/// the DKMS `device/lmem_total_bytes`, else `gt/gt0/addr_range` (both hex).
fn vram(root: &SysRoot, card: &str, driver: &str, issues: &mut Vec<ProbeIssue>) -> Option<u64> {
    let dev = format!("{DRM}/{card}/device");
    if driver == "xe" {
        let tiles = root.list_dir(&dev).unwrap_or_default();
        let sizes: Vec<u64> = tiles
            .iter()
            .filter(|t| t.starts_with("tile"))
            .filter_map(|t| size_file(root, &format!("{dev}/{t}/physical_vram_size_bytes"), issues))
            .collect();
        return (!sizes.is_empty()).then(|| sizes.iter().sum());
    }
    size_file(root, &format!("{dev}/lmem_total_bytes"), issues)
        .or_else(|| size_file(root, &format!("{DRM}/{card}/gt/gt0/addr_range"), issues))
}

fn card_gpu(root: &SysRoot, card: &str, driver: String, issues: &mut Vec<ProbeIssue>) -> Gpu {
    let dev = format!("{DRM}/{card}/device");
    let device = root.read_u64(format!("{dev}/device")).ok();
    let model = device.and_then(intel_model);
    let name = match (model, device) {
        (Some(m), _) => m.name.to_owned(),
        (None, Some(id)) => format!("Intel GPU 0x{id:04x}"),
        (None, None) => format!("Intel GPU ({card})"),
    };
    let pci_bus_id = root.link_name(&dev);
    let vram = vram(root, card, &driver, issues);
    let mut gpu = Gpu::new(GpuVendor::Intel, name);
    match vram {
        Some(bytes) => gpu.memory_total_bytes = Some(bytes),
        None if model.is_some_and(|m| m.discrete) => issues.push(issue::new(
            dev.clone(),
            "discrete Intel GPU without a readable VRAM size (upstream i915 reports it only by ioctl)",
        )),
        // Integrated: no VRAM, the system memory is the pool.
        None => gpu.unified = true,
    }
    gpu.architecture = model.map(|m| m.architecture.to_owned());
    gpu.driver = driver;
    gpu.pci_bus_id = pci_bus_id;
    gpu.source = "sysfs".to_owned();
    gpu
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::write;

    #[test]
    fn device_table() {
        assert!(intel_model(0xe20b).unwrap().discrete);
        assert!(!intel_model(0x64a0).unwrap().discrete);
        assert_eq!(intel_model(0x7d55).unwrap().architecture, "Xe-LPG");
        assert_eq!(intel_model(0x1234), None);
    }

    #[cfg(unix)]
    #[test]
    fn xe_vram_is_hex_summed_over_tiles_and_igpus_are_unified() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let dev = "sys/devices/pci0000:00/0000:00:01.0/0000:03:00.0";
        write(r, &format!("{dev}/vendor"), "0x8086\n");
        write(r, &format!("{dev}/device"), "0xe20b\n");
        write(
            r,
            &format!("{dev}/tile0/physical_vram_size_bytes"),
            "0x0000000300000000\n",
        );
        std::fs::create_dir_all(r.join("sys/bus/pci/drivers/xe")).unwrap();
        std::os::unix::fs::symlink(r.join("sys/bus/pci/drivers/xe"), r.join(dev).join("driver"))
            .unwrap();
        std::fs::create_dir_all(r.join("sys/class/drm/card1")).unwrap();
        std::os::unix::fs::symlink(r.join(dev), r.join("sys/class/drm/card1/device")).unwrap();
        let mut issues = Vec::new();
        let root = SysRoot::new(r);
        let g = card_gpu(&root, "card1", "xe".to_owned(), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(g.name, "Intel Arc B580");
        assert_eq!(g.memory_total_bytes, Some(12 << 30));
        assert!(!g.unified);
        assert_eq!(g.pci_bus_id.as_deref(), Some("0000:03:00.0"));

        write(r, "sys/class/drm/card0/device/device", "0x64a0\n");
        let g = card_gpu(&root, "card0", "xe".to_owned(), &mut issues);
        assert!(g.unified && g.memory_total_bytes.is_none());
        assert!(issues.is_empty(), "{issues:?}");
    }
}
