//! NPUs: `/sys/class/accel` (intel_vpu, amdxdna, rocket), Rockchip RKNPU, Qualcomm Hexagon
//! (fastrpc), with TOPS from a documented table; and the Snapdragon X Adreno GPU on `msm`, found
//! from the same device-tree identity.

use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{DeviceProfile, Gpu, GpuVendor, Npu, NpuVendor};

const ACCEL: &str = "sys/class/accel";
const DRM: &str = "sys/class/drm";
const COMPATIBLE: &str = "proc/device-tree/compatible";
const PCI_VENDOR_INTEL: u64 = 0x8086;
/// XDNA sits on AMD's CPU-side PCI vendor id, not the GPU's 0x1002.
const PCI_VENDOR_AMD_NPU: u64 = 0x1022;

/// Intel NPUs (`intel_vpu`) by PCI device id, from the kernel's `drivers/accel/ivpu/ivpu_drv.h`
/// (probe-ground-truth §4.2). TOPS (INT8, NPU only) from Intel's product pages: Meteor Lake
/// ≈ 11, Arrow Lake-H ≈ 13, Lunar Lake NPU4 = 48, Panther Lake ≈ 50; later parts unpublished.
pub fn intel_npu(device: u64) -> Option<(&'static str, Option<f64>)> {
    Some(match device {
        0x7d1d => ("Intel AI Boost NPU (Meteor Lake)", Some(11.0)),
        0xad1d => ("Intel AI Boost NPU (Arrow Lake)", Some(13.0)),
        0x643e => ("Intel AI Boost NPU 4 (Lunar Lake)", Some(48.0)),
        0xb03e => ("Intel NPU 5 (Panther Lake)", Some(50.0)),
        0xfd3e => ("Intel NPU 5 (Wildcat Lake)", None),
        0xd71d => ("Intel NPU 6 (Nova Lake)", None),
        _ => return None,
    })
}

/// AMD XDNA NPUs (`amdxdna`, vendor 0x1022) by device id and revision, from the kernel's
/// `drivers/accel/amdxdna/amdxdna_pci_drv.c` and the out-of-tree vbnv names (probe-ground-truth
/// §4.3). TOPS: XDNA 2 = 50 (AMD Ryzen AI 300 / Max specs; Strix Halo's "126 TOPS" is
/// CPU+GPU+NPU). XDNA 1 is 10 TOPS on Phoenix and 16 on Hawk Point with the same id and
/// revision, so the lower figure is reported.
pub fn amd_npu(device: u64, revision: Option<u64>) -> Option<(&'static str, Option<f64>)> {
    Some(match (device, revision) {
        (0x1502, _) => ("AMD XDNA NPU (Phoenix / Hawk Point)", Some(10.0)),
        (0x17f0, Some(0x11)) => ("AMD XDNA 2 NPU (Strix Halo)", Some(50.0)),
        (0x17f0, Some(0x00 | 0x10)) => ("AMD XDNA 2 NPU (Strix Point)", Some(50.0)),
        (0x17f0, Some(0x20)) => ("AMD XDNA 2 NPU (Krackan Point)", Some(50.0)),
        (0x17f0, _) => ("AMD XDNA 2 NPU", Some(50.0)),
        _ => return None,
    })
}

/// Rockchip SoCs with an NPU, by device-tree compatible (Rockchip datasheets: RK3588/RK3588S
/// and RK3576 6 TOPS INT8, RK3568/RK3566 0.8 TOPS).
pub fn rockchip_npu(compatible: &[String]) -> Option<(&'static str, f64)> {
    compatible.iter().find_map(|c| match c.as_str() {
        "rockchip,rk3588" | "rockchip,rk3588s" => Some(("Rockchip RK3588 NPU", 6.0)),
        "rockchip,rk3576" => Some(("Rockchip RK3576 NPU", 6.0)),
        "rockchip,rk3568" | "rockchip,rk3566" => Some(("Rockchip RK3568 NPU", 0.8)),
        _ => None,
    })
}

/// Snapdragon X laptops by device-tree compatible: (Hexagon NPU name, TOPS, Adreno GPU name).
/// Qualcomm's Snapdragon X Elite / X Plus product briefs: Hexagon 45 TOPS, Adreno X1-85 (X1E)
/// and X1-45 (X1P). probe-ground-truth §4.5, §8.
pub fn snapdragon(compatible: &[String]) -> Option<(&'static str, f64, &'static str)> {
    compatible.iter().find_map(|c| {
        let soc = c.strip_prefix("qcom,")?;
        if soc.starts_with("x1e") {
            Some((
                "Qualcomm Hexagon NPU (Snapdragon X Elite)",
                45.0,
                "Qualcomm Adreno X1-85",
            ))
        } else if soc.starts_with("x1p") {
            Some((
                "Qualcomm Hexagon NPU (Snapdragon X Plus)",
                45.0,
                "Qualcomm Adreno X1-45",
            ))
        } else {
            None
        }
    })
}

/// Device-tree `compatible`: NUL-separated strings.
pub fn parse_compatible(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Adds the NPUs of the machine at `root` to `p` (and a Snapdragon X's Adreno GPU).
pub(crate) fn probe(root: &SysRoot, p: &mut DeviceProfile) {
    accel(root, p);
    let compatible = root
        .read_bytes(COMPATIBLE)
        .map(|b| parse_compatible(&b))
        .unwrap_or_default();
    if compatible.is_empty() {
        return;
    }
    if let Some((name, tops)) = rockchip_npu(&compatible)
        && !p.npus.iter().any(|n| n.vendor == NpuVendor::Rockchip)
        && rknpu_loaded(root)
    {
        p.npus.push(Npu {
            vendor: NpuVendor::Rockchip,
            name: name.to_owned(),
            driver: "rknpu".to_owned(),
            tops: Some(tops),
        });
    }
    if let Some((npu, tops, gpu)) = snapdragon(&compatible) {
        // EACCES on the node does not mean "no NPU"; existing is enough.
        let fastrpc = root
            .list_dir("dev")
            .unwrap_or_default()
            .iter()
            .any(|n| n.starts_with("fastrpc-cdsp"));
        if fastrpc && !p.npus.iter().any(|n| n.vendor == NpuVendor::Qualcomm) {
            p.npus.push(Npu {
                vendor: NpuVendor::Qualcomm,
                name: npu.to_owned(),
                driver: "fastrpc".to_owned(),
                tops: Some(tops),
            });
        }
        if msm_card(root) && !p.gpus.iter().any(|g| g.vendor == GpuVendor::Qualcomm) {
            let mut g = Gpu::new(GpuVendor::Qualcomm, gpu);
            g.unified = true;
            g.driver = "msm".to_owned();
            g.source = "sysfs".to_owned();
            p.gpus.push(g);
        }
    }
}

/// The BSP `rknpu` driver is loaded: its module dir or the NPU's devfreq node exists
/// (`/sys/kernel/debug/rknpu` needs root).
fn rknpu_loaded(root: &SysRoot) -> bool {
    root.list_dir("sys/module")
        .unwrap_or_default()
        .iter()
        .any(|m| m == "rknpu")
        || root
            .list_dir("sys/class/devfreq")
            .unwrap_or_default()
            .iter()
            .any(|d| d.rsplit_once('.').is_some_and(|(_, ext)| ext == "npu"))
}

/// A DRM card driven by `msm` (upstream Adreno).
fn msm_card(root: &SysRoot) -> bool {
    root.list_dir(DRM)
        .unwrap_or_default()
        .iter()
        .filter(|n| crate::gpu::is_drm_card(n))
        .any(|card| {
            root.link_name(format!("{DRM}/{card}/device/driver"))
                .is_some_and(|d| d.starts_with("msm"))
        })
}

/// NPUs in the accel class, identified by driver and PCI ids (never assumed Intel).
fn accel(root: &SysRoot, p: &mut DeviceProfile) {
    let nodes = match root.list_dir(ACCEL) {
        Ok(n) => n,
        Err(e) => {
            p.issues.push(issue::from_read(&e));
            return;
        }
    };
    for node in nodes
        .iter()
        .filter(|n| n.strip_prefix("accel").is_some_and(|d| !d.is_empty()))
    {
        let dev = format!("{ACCEL}/{node}/device");
        let Some(driver) = root.link_name(format!("{dev}/driver")) else {
            continue;
        };
        let device = root.read_u64(format!("{dev}/device")).ok();
        let vendor = root.read_u64(format!("{dev}/vendor")).ok();
        // A PCI NPU needs its vendor id to match its driver (§4.1: never assume one from the other).
        let found = match (driver.as_str(), vendor) {
            ("intel_vpu", Some(PCI_VENDOR_INTEL)) => Some((
                NpuVendor::Intel,
                device.and_then(intel_npu).map_or_else(
                    || (format!("Intel NPU 0x{:04x}", device.unwrap_or(0)), None),
                    |(n, t)| (n.to_owned(), t),
                ),
            )),
            ("amdxdna", Some(PCI_VENDOR_AMD_NPU)) => {
                let revision = root.read_u64(format!("{dev}/revision")).ok();
                Some((
                    NpuVendor::Amd,
                    device.and_then(|d| amd_npu(d, revision)).map_or_else(
                        || (format!("AMD NPU 0x{:04x}", device.unwrap_or(0)), None),
                        |(n, t)| (n.to_owned(), t),
                    ),
                ))
            }
            // Mainline Rockchip NPU driver (6.18+).
            ("rocket", _) => {
                let compatible = root
                    .read_bytes(COMPATIBLE)
                    .map(|b| parse_compatible(&b))
                    .unwrap_or_default();
                let (name, tops) = rockchip_npu(&compatible).unwrap_or(("Rockchip NPU", 0.0));
                Some((
                    NpuVendor::Rockchip,
                    (name.to_owned(), (tops > 0.0).then_some(tops)),
                ))
            }
            _ => None,
        };
        if let Some((vendor, (name, tops))) = found {
            p.npus.push(Npu {
                vendor,
                name,
                driver,
                tops,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::test_support::write;

    #[cfg(unix)]
    fn accel_node(root: &Path, node: &str, vendor: &str, device: &str, driver: &str) {
        let dev = format!("sys/class/accel/{node}/device");
        write(root, &format!("{dev}/vendor"), vendor);
        write(root, &format!("{dev}/device"), device);
        write(root, &format!("sys/bus/pci/drivers/{driver}/uevent"), "");
        std::os::unix::fs::symlink(
            root.join(format!("sys/bus/pci/drivers/{driver}")),
            root.join(format!("{dev}/driver")),
        )
        .unwrap();
    }

    /// Accel nodes are told apart by driver and vendor together, never assumed Intel.
    #[cfg(unix)]
    #[test]
    fn accel_nodes_need_a_known_driver_and_its_vendor() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        accel_node(r, "accel0", "0x8086\n", "0x643e\n", "intel_vpu");
        accel_node(r, "accel1", "0x1da3\n", "0x1020\n", "habanalabs");
        accel_node(r, "accel2", "0x8086\n", "0x17f0\n", "amdxdna");
        write(r, "sys/class/accel/accel3/device/vendor", "0x1022\n");
        let mut p: DeviceProfile = serde_json::from_str(EMPTY_PROFILE).unwrap();
        probe(&SysRoot::new(r), &mut p);
        assert_eq!(p.npus.len(), 1, "{:?}", p.npus);
        assert_eq!(p.npus[0].name, "Intel AI Boost NPU 4 (Lunar Lake)");
        assert_eq!(p.npus[0].driver, "intel_vpu");
        assert!(p.issues.is_empty(), "{:?}", p.issues);
    }

    const EMPTY_PROFILE: &str = r#"{"schema":"fleetfit.profile/v1","id":"t","hostname":"t",
        "os":{"kind":"linux","version":""},
        "cpu":{"model":"","arch":"x86_64","cores":1,"threads":1,"features":[]},
        "memory":{"total_bytes":1,"available_bytes":1},"gpus":[],"npus":[],"issues":[]}"#;

    #[test]
    fn intel_ids_are_the_kernels() {
        assert_eq!(intel_npu(0x643e).unwrap().1, Some(48.0));
        assert_eq!(intel_npu(0x7d1d).unwrap().1, Some(11.0));
        assert!(intel_npu(0xa75d).is_none());
    }

    #[test]
    fn amd_generation_comes_from_device_and_revision() {
        assert_eq!(
            amd_npu(0x17f0, Some(0x11)).unwrap().0,
            "AMD XDNA 2 NPU (Strix Halo)"
        );
        assert_eq!(
            amd_npu(0x17f0, Some(0x10)).unwrap().0,
            "AMD XDNA 2 NPU (Strix Point)"
        );
        assert_eq!(amd_npu(0x1502, Some(0)).unwrap().1, Some(10.0));
        assert!(amd_npu(0x1714, None).is_none());
    }

    #[test]
    fn device_tree_compatible_names_socs() {
        let c = parse_compatible(b"radxa,rock-5b\0rockchip,rk3588\0");
        assert_eq!(c, ["radxa,rock-5b", "rockchip,rk3588"]);
        assert_eq!(rockchip_npu(&c), Some(("Rockchip RK3588 NPU", 6.0)));
        let x = parse_compatible(b"lenovo,yoga-slim7x\0qcom,x1e80100\0");
        assert_eq!(snapdragon(&x).unwrap().2, "Qualcomm Adreno X1-85");
        assert!(snapdragon(&c).is_none() && rockchip_npu(&x).is_none());
    }
}
