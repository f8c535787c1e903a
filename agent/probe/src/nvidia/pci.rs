//! NVIDIA GPUs from the PCI bus alone (`/sys/bus/pci/devices/*/{vendor,device,class}`): the last
//! fallback when neither NVML nor the driver's procfs names them. Vendor and device id only.

use crate::issue;
use crate::sysroot::{SysRoot, parse_u64};
use fleetfit_core::profile::{Gpu, GpuVendor, ProbeIssue};

const PCI_DEVICES: &str = "sys/bus/pci/devices";

/// NVIDIA's PCI vendor id.
pub const NVIDIA_VENDOR: u64 = 0x10de;

/// Whether a PCI `class` (`0x030000` VGA, `0x030200` 3D) is a display controller.
pub fn is_display_class(class: u64) -> bool {
    class >> 16 == 0x03
}

/// The name a GPU known only by its PCI id gets: `NVIDIA GPU 0x2684`.
pub fn pci_gpu_name(device: u64) -> String {
    format!("NVIDIA GPU {device:#06x}")
}

/// One PCI attribute as a number; `None` when missing (not a device we can judge).
fn read_id(root: &SysRoot, bdf: &str, attr: &str, issues: &mut Vec<ProbeIssue>) -> Option<u64> {
    let rel = format!("{PCI_DEVICES}/{bdf}/{attr}");
    match root.read_trimmed(&rel) {
        Ok(Some(text)) => {
            let v = parse_u64(&text);
            if v.is_none() {
                issues.push(issue::new(rel, format!("`{text}` is not a PCI id")));
            }
            v
        }
        Ok(None) => None,
        Err(e) => {
            issues.push(issue::from_read(&e));
            None
        }
    }
}

/// NVIDIA display controllers on the PCI bus: named by device id, PCI address set, source `pci`,
/// driver = the bound kernel driver (`nvidia`, `nouveau`) when there is one.
pub(crate) fn pci_gpus(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<Gpu> {
    let bdfs = match root.list_dir(PCI_DEVICES) {
        Ok(b) => b,
        Err(e) => {
            issues.push(issue::from_read(&e));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for bdf in bdfs {
        if read_id(root, &bdf, "vendor", issues) != Some(NVIDIA_VENDOR) {
            continue;
        }
        if !read_id(root, &bdf, "class", issues).is_some_and(is_display_class) {
            continue;
        }
        let Some(device) = read_id(root, &bdf, "device", issues) else {
            continue;
        };
        let mut gpu = Gpu::new(GpuVendor::Nvidia, pci_gpu_name(device));
        gpu.driver = root
            .link_name(format!("{PCI_DEVICES}/{bdf}/driver"))
            .unwrap_or_default();
        gpu.source = "pci".to_owned();
        gpu.pci_bus_id = Some(bdf.to_ascii_lowercase());
        out.push(gpu);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::write;

    #[test]
    fn display_classes_and_names() {
        assert!(is_display_class(0x03_0000));
        assert!(is_display_class(0x03_0200));
        assert!(!is_display_class(0x04_0300)); // the GPU's HDMI audio function
        assert_eq!(pci_gpu_name(0x2684), "NVIDIA GPU 0x2684");
        assert_eq!(pci_gpu_name(0x2e12), "NVIDIA GPU 0x2e12");
    }

    #[test]
    fn only_nvidia_display_functions_become_gpus() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let dev = "sys/bus/pci/devices";
        // RTX 4090 and its audio function, an Intel iGPU, and a malformed vendor.
        write(r, &format!("{dev}/0000:01:00.0/vendor"), "0x10de\n");
        write(r, &format!("{dev}/0000:01:00.0/device"), "0x2684\n");
        write(r, &format!("{dev}/0000:01:00.0/class"), "0x030000\n");
        write(r, &format!("{dev}/0000:01:00.1/vendor"), "0x10de\n");
        write(r, &format!("{dev}/0000:01:00.1/device"), "0x22ba\n");
        write(r, &format!("{dev}/0000:01:00.1/class"), "0x040300\n");
        write(r, &format!("{dev}/0000:00:02.0/vendor"), "0x8086\n");
        write(r, &format!("{dev}/0000:00:02.0/class"), "0x030000\n");
        write(r, &format!("{dev}/0000:00:1f.0/vendor"), "N/A\n");
        let mut issues = Vec::new();
        let gpus = pci_gpus(&SysRoot::new(r), &mut issues);
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].name, "NVIDIA GPU 0x2684");
        assert_eq!(gpus[0].pci_bus_id.as_deref(), Some("0000:01:00.0"));
        assert_eq!(gpus[0].source, "pci");
        assert_eq!(gpus[0].memory_total_bytes, None);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].source, "sys/bus/pci/devices/0000:00:1f.0/vendor");
    }
}
