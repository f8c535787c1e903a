//! AMD GPUs from amdgpu's DRM sysfs (`/sys/class/drm/card*/device/mem_info_vram_*`).

use crate::gpu::is_drm_card;
use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{Gpu, GpuVendor, ProbeIssue};

const DRM: &str = "sys/class/drm";
const PCI_VENDOR_AMD: u64 = 0x1002;

/// Adds the AMD GPUs of the machine at `root` to `p`.
pub(crate) fn probe(root: &SysRoot, p: &mut fleetfit_core::profile::DeviceProfile) {
    let gpus = amd_sysfs(root, &mut p.issues);
    p.gpus.extend(gpus);
}

/// AMD GPUs with their VRAM, from DRM sysfs.
pub(crate) fn amd_sysfs(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<Gpu> {
    let cards = match root.list_dir(DRM) {
        Ok(entries) => entries.into_iter().filter(|n| is_drm_card(n)),
        Err(e) => {
            issues.push(issue::from_read(&e));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for card in cards {
        let dev = format!("{DRM}/{card}/device");
        match root.read_u64(format!("{dev}/vendor")) {
            Ok(PCI_VENDOR_AMD) => {}
            Ok(_) => continue,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                issues.push(issue::from_read(&e));
                continue;
            }
        }
        let total = match root.read_u64(format!("{dev}/mem_info_vram_total")) {
            Ok(n) => Some(n),
            Err(e) => {
                issues.push(issue::from_read(&e));
                None
            }
        };
        let used = root.read_u64(format!("{dev}/mem_info_vram_used")).ok();
        let name = root
            .read_trimmed(format!("{dev}/product_name"))
            .ok()
            .flatten()
            .or_else(|| {
                let id = root.read_u64(format!("{dev}/device")).ok()?;
                Some(format!("AMD GPU 0x{id:04x}"))
            })
            .unwrap_or_else(|| format!("AMD GPU ({card})"));
        let mut gpu = Gpu::new(GpuVendor::Amd, name);
        gpu.memory_total_bytes = total;
        gpu.memory_free_bytes = total.zip(used).map(|(t, u)| t.saturating_sub(u));
        gpu.driver = root
            .link_name(format!("{dev}/driver"))
            .unwrap_or_else(|| "amdgpu".to_owned());
        gpu.source = "sysfs".to_owned();
        out.push(gpu);
    }
    out
}
