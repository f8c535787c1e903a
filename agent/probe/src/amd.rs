//! AMD GPUs from amdgpu's DRM sysfs (`/sys/class/drm/card*/device/mem_info_*`) and the KFD
//! topology; APUs (Strix Halo, 780M …) as unified memory: carve-out VRAM + GTT, clamped.

use crate::gpu::is_drm_card;
use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{DeviceProfile, Gpu, GpuVendor, MemoryPools, ProbeIssue};
use std::collections::BTreeMap;

const DRM: &str = "sys/class/drm";
const KFD_NODES: &str = "sys/class/kfd/kfd/topology/nodes";
const PCI_VENDOR_AMD: u64 = 0x1002;

/// What a PCI device id tells about an AMD GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmdModel {
    pub name: &'static str,
    /// Integrated (APU): its VRAM is a BIOS carve-out of system RAM.
    pub apu: bool,
    pub gfx: &'static str,
}

/// AMD GPUs by PCI device id (Linux `pci.ids` and the amdgpu `amdgpu_drv.c` id list; gfx targets
/// from ROCm's and ollama's tables; probe-ground-truth §2, §8).
pub fn amd_model(device: u64) -> Option<AmdModel> {
    let (name, apu, gfx) = match device {
        // Discrete RDNA4 / RDNA3 / RDNA2.
        0x7550 => ("AMD Radeon RX 9070 XT", false, "gfx1201"),
        0x744c => ("AMD Radeon RX 7900 XTX", false, "gfx1100"),
        0x7448 => ("AMD Radeon PRO W7900", false, "gfx1100"),
        0x747e => ("AMD Radeon RX 7800 XT", false, "gfx1101"),
        0x7480 => ("AMD Radeon RX 7600 XT / 7600M XT", false, "gfx1102"),
        0x73bf => ("AMD Radeon RX 6800 / 6900 XT", false, "gfx1030"),
        0x73df => ("AMD Radeon RX 6700 XT", false, "gfx1031"),
        // Instinct (CDNA).
        0x74a1 => ("AMD Instinct MI300X", false, "gfx942"),
        0x740f => ("AMD Instinct MI210", false, "gfx90a"),
        0x740c => ("AMD Instinct MI250X", false, "gfx90a"),
        // APUs.
        0x1586 => ("AMD Radeon 8060S (Strix Halo)", true, "gfx1151"),
        0x150e => ("AMD Radeon 890M / 880M (Strix Point)", true, "gfx1150"),
        0x15bf => ("AMD Radeon 780M / 760M (Phoenix)", true, "gfx1103"),
        0x15c8 => ("AMD Radeon 740M (Phoenix)", true, "gfx1103"),
        0x1900 => ("AMD Radeon 780M / 760M (Hawk Point)", true, "gfx1103"),
        0x1681 => ("AMD Radeon 680M / 660M (Rembrandt)", true, "gfx1035"),
        0x164e => ("AMD Radeon Graphics (Raphael)", true, "gfx1036"),
        0x163f => ("AMD Custom GPU 0405 (Van Gogh)", true, "gfx1033"),
        0x1636 | 0x1638 => ("AMD Radeon Vega (Renoir / Cezanne)", true, "gfx90c"),
        _ => return None,
    };
    Some(AmdModel { name, apu, gfx })
}

/// Integrated gfx targets (APUs), for GPUs whose device id is not in [`amd_model`].
pub fn is_apu_gfx(gfx: &str) -> bool {
    matches!(
        gfx,
        "gfx1151"
            | "gfx1150"
            | "gfx1152"
            | "gfx1153"
            | "gfx1103"
            | "gfx1035"
            | "gfx1036"
            | "gfx1037"
            | "gfx1033"
            | "gfx90c"
            | "gfx902"
            | "gfx909"
    )
}

/// KFD `gfx_target_version` (`110501`) as a gfx target (`gfx1151`): major = v/10000, minor =
/// (v/100)%100, stepping = v%100, minor and stepping in hex (ollama's `amd_linux.go`).
pub fn gfx_target(version: u64) -> Option<String> {
    if version == 0 {
        return None;
    }
    let (major, minor, step) = (version / 10000, (version / 100) % 100, version % 100);
    Some(format!("gfx{major}{minor:x}{step:x}"))
}

/// Architecture family of a gfx target.
pub fn architecture(gfx: &str) -> Option<&'static str> {
    let arch = match gfx {
        g if g.starts_with("gfx12") => "RDNA4",
        g if g.starts_with("gfx115") => "RDNA3.5",
        g if g.starts_with("gfx110") => "RDNA3",
        g if g.starts_with("gfx103") => "RDNA2",
        g if g.starts_with("gfx101") => "RDNA",
        "gfx940" | "gfx941" | "gfx942" | "gfx950" => "CDNA3",
        "gfx90a" => "CDNA2",
        "gfx908" => "CDNA",
        g if g.starts_with("gfx9") => "GCN5",
        _ => return None,
    };
    Some(arch)
}

/// A KFD `properties` file as `key → value` (decimal numbers; other lines ignored).
pub fn parse_kfd_properties(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let key = it.next()?;
            let value = it.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

/// Unified capacity and free memory of an APU (probe-ground-truth §2.3): capacity =
/// `vram + gtt` clamped to `mem_total + vram` (GTT is system RAM, the carve-out is not in
/// `MemTotal`); free = `min(gtt free, mem_available) + vram free`.
pub fn apu_memory(
    vram: (u64, Option<u64>),
    gtt: (u64, Option<u64>),
    mem_total: u64,
    mem_available: u64,
) -> (u64, u64) {
    let (vram_total, vram_used) = vram;
    let (gtt_total, gtt_used) = gtt;
    let total = vram_total
        .saturating_add(gtt_total)
        .min(mem_total.saturating_add(vram_total));
    let gtt_free = gtt_total.saturating_sub(gtt_used.unwrap_or(0));
    let vram_free = vram_total.saturating_sub(vram_used.unwrap_or(0));
    let free = gtt_free
        .min(mem_available)
        .saturating_add(vram_free)
        .min(total);
    (total, free)
}

/// Adds the AMD GPUs of the machine at `root` to `p`.
pub(crate) fn probe(root: &SysRoot, p: &mut DeviceProfile) {
    let (total, available) = (p.memory.total_bytes, p.memory.available_bytes);
    let gpus = probe_with_memory(root, total, available, &mut p.issues);
    p.gpus.extend(gpus);
}

/// AMD GPUs with their VRAM, from DRM sysfs (system memory unknown: APU figures are not clamped).
#[cfg(test)]
pub(crate) fn amd_sysfs(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<Gpu> {
    probe_with_memory(root, u64::MAX, u64::MAX, issues)
}

/// A number from an optional sysfs file: missing → `None` silently, unreadable → an issue.
fn optional_u64(root: &SysRoot, rel: &str, issues: &mut Vec<ProbeIssue>) -> Option<u64> {
    match root.read_u64(rel) {
        Ok(n) => Some(n),
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            issues.push(issue::from_read(&e));
            None
        }
    }
}

/// One KFD GPU node.
struct KfdNode {
    props: BTreeMap<String, u64>,
    used: bool,
}

/// The GPU nodes of the KFD topology (CPU-only nodes, `simd_count 0`, skipped), in node order.
fn kfd_gpu_nodes(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<KfdNode> {
    let mut names = match root.list_dir(KFD_NODES) {
        Ok(names) => names,
        Err(e) => {
            issues.push(issue::from_read(&e));
            return Vec::new();
        }
    };
    names.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    names
        .iter()
        .filter_map(|n| {
            let text = root
                .read_to_string(format!("{KFD_NODES}/{n}/properties"))
                .ok()?;
            let props = parse_kfd_properties(&text);
            (props.get("simd_count").copied().unwrap_or(0) > 0)
                .then_some(KfdNode { props, used: false })
        })
        .collect()
}

/// The render minor (`renderD128` → 128) of a DRM card, from `device/drm/`.
fn render_minor(root: &SysRoot, card: &str) -> Option<u64> {
    root.list_dir(format!("{DRM}/{card}/device/drm"))
        .ok()?
        .iter()
        .find_map(|n| n.strip_prefix("renderD")?.parse().ok())
}

/// The KFD node of a card: by `drm_render_minor`, else the only unused node with its device id,
/// else the first unused node (HIP order = card order).
fn take_kfd_node(
    nodes: &mut [KfdNode],
    minor: Option<u64>,
    device: Option<u64>,
) -> Option<&BTreeMap<String, u64>> {
    let by = |f: &dyn Fn(&KfdNode) -> bool, nodes: &[KfdNode]| {
        let hits: Vec<usize> = (0..nodes.len())
            .filter(|&i| !nodes[i].used && f(&nodes[i]))
            .collect();
        (hits.len() == 1).then(|| hits[0])
    };
    let i = minor
        .and_then(|m| by(&|n| n.props.get("drm_render_minor") == Some(&m), nodes))
        .or_else(|| device.and_then(|d| by(&|n| n.props.get("device_id") == Some(&d), nodes)))
        .or_else(|| nodes.iter().position(|n| !n.used))?;
    nodes[i].used = true;
    Some(&nodes[i].props)
}

fn probe_with_memory(
    root: &SysRoot,
    mem_total: u64,
    mem_available: u64,
    issues: &mut Vec<ProbeIssue>,
) -> Vec<Gpu> {
    let cards: Vec<String> = match root.list_dir(DRM) {
        Ok(entries) => entries.into_iter().filter(|n| is_drm_card(n)).collect(),
        Err(e) => {
            issues.push(issue::from_read(&e));
            return Vec::new();
        }
    };
    let mut kfd: Option<Vec<KfdNode>> = None;
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
        let nodes = kfd.get_or_insert_with(|| kfd_gpu_nodes(root, issues));
        out.push(card_gpu(
            root,
            &card,
            nodes,
            (mem_total, mem_available),
            issues,
        ));
    }
    out
}

fn card_gpu(
    root: &SysRoot,
    card: &str,
    nodes: &mut [KfdNode],
    (mem_total, mem_available): (u64, u64),
    issues: &mut Vec<ProbeIssue>,
) -> Gpu {
    let dev = format!("{DRM}/{card}/device");
    let device = root.read_u64(format!("{dev}/device")).ok();
    let model = device.and_then(amd_model);
    let node = take_kfd_node(nodes, render_minor(root, card), device);
    let gfx = node
        .and_then(|n| n.get("gfx_target_version").copied())
        .and_then(gfx_target)
        .or_else(|| model.map(|m| m.gfx.to_owned()));
    let cores = node.and_then(|n| {
        let simds = *n.get("simd_count")?;
        let per_cu = n.get("simd_per_cu").copied().filter(|&s| s > 0)?;
        u32::try_from(simds / per_cu).ok()
    });
    // KFD lists an APU's GPU in the same node as its CPU cores on kernels whose CRAT says so.
    let kfd_integrated = node.is_some_and(|n| n.get("cpu_cores_count").copied().unwrap_or(0) > 0);
    let apu =
        model.is_some_and(|m| m.apu) || gfx.as_deref().is_some_and(is_apu_gfx) || kfd_integrated;

    let name = match root.read_trimmed(format!("{dev}/product_name")) {
        Ok(Some(n)) => n,
        Ok(None) | Err(_) => model.map_or_else(
            || match device {
                Some(id) => format!("AMD GPU 0x{id:04x}"),
                None => format!("AMD GPU ({card})"),
            },
            |m| m.name.to_owned(),
        ),
    };
    let vram_total = match root.read_u64(format!("{dev}/mem_info_vram_total")) {
        Ok(n) => Some(n),
        Err(e) => {
            issues.push(issue::from_read(&e));
            None
        }
    };
    // Used is a live figure; an unreadable one only leaves free unknown.
    let vram_used = root.read_u64(format!("{dev}/mem_info_vram_used")).ok();

    let mut gpu = Gpu::new(GpuVendor::Amd, name);
    if apu {
        let gtt_total = optional_u64(root, &format!("{dev}/mem_info_gtt_total"), issues);
        let gtt_used = optional_u64(root, &format!("{dev}/mem_info_gtt_used"), issues);
        gpu.unified = true;
        gpu.memory_pools = Some(MemoryPools {
            vram_bytes: vram_total,
            gtt_bytes: gtt_total,
        });
        if let (Some(vram), Some(gtt)) = (vram_total, gtt_total) {
            let (total, free) =
                apu_memory((vram, vram_used), (gtt, gtt_used), mem_total, mem_available);
            gpu.memory_total_bytes = Some(total);
            gpu.memory_free_bytes = Some(free);
        }
    } else {
        gpu.memory_total_bytes = vram_total;
        gpu.memory_free_bytes = vram_total.zip(vram_used).map(|(t, u)| t.saturating_sub(u));
    }
    gpu.architecture = gfx.as_deref().and_then(architecture).map(str::to_owned);
    gpu.compute_capability = gfx;
    gpu.cores = cores;
    gpu.driver = root
        .link_name(format!("{dev}/driver"))
        .unwrap_or_else(|| "amdgpu".to_owned());
    gpu.pci_bus_id = root.link_name(&dev);
    gpu.source = "sysfs".to_owned();
    gpu
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KFD node 1 of a Strix Halo (Ryzen AI Max+ 395), abridged (probe-ground-truth §2.2, §8).
    const STRIX_HALO_KFD: &str = "\
cpu_cores_count 0
simd_count 80
mem_banks_count 1
gfx_target_version 110501
vendor_id 4098
device_id 5510
simd_per_cu 2
max_engine_clk_fcompute 2900
local_mem_size 0
drm_render_minor 128
";

    #[test]
    fn kfd_properties_parse_as_decimal() {
        let p = parse_kfd_properties(STRIX_HALO_KFD);
        assert_eq!(p["simd_count"], 80);
        assert_eq!(p["device_id"], 0x1586);
        assert_eq!(p["drm_render_minor"], 128);
        assert!(parse_kfd_properties("garbage\nname x\n").is_empty());
    }

    #[test]
    fn gfx_target_versions_decode() {
        assert_eq!(gfx_target(110_501).as_deref(), Some("gfx1151"));
        // 780M: KFD prints 110003 (probe-ground-truth §2.2 writes 110300, which decodes to gfx1130).
        assert_eq!(gfx_target(110_003).as_deref(), Some("gfx1103"));
        assert_eq!(gfx_target(110_000).as_deref(), Some("gfx1100"));
        assert_eq!(gfx_target(100_300).as_deref(), Some("gfx1030"));
        assert_eq!(gfx_target(90_402).as_deref(), Some("gfx942"));
        assert_eq!(gfx_target(90_010).as_deref(), Some("gfx90a"));
        assert_eq!(gfx_target(0), None);
        assert_eq!(architecture("gfx1151"), Some("RDNA3.5"));
        assert_eq!(architecture("gfx1100"), Some("RDNA3"));
        assert_eq!(architecture("gfx942"), Some("CDNA3"));
    }

    #[test]
    fn device_table_knows_apus_and_dgpus() {
        let halo = amd_model(0x1586).unwrap();
        assert!(halo.apu && halo.gfx == "gfx1151");
        assert!(amd_model(0x15bf).unwrap().apu);
        assert!(!amd_model(0x744c).unwrap().apu);
        assert_eq!(amd_model(0xffff), None);
        assert!(is_apu_gfx("gfx1103") && !is_apu_gfx("gfx1100"));
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn apu_memory_adds_carve_out_and_gtt_clamped_to_ram() {
        // 4 GiB carve-out + 96 GiB GTT on a 124 GiB machine: 100 GiB, nothing clamped.
        let (t, f) = apu_memory(
            (4 * GIB, Some(GIB)),
            (96 * GIB, Some(0)),
            124 * GIB,
            120 * GIB,
        );
        assert_eq!((t, f), (100 * GIB, 99 * GIB));
        // GTT larger than RAM: capacity = RAM + carve-out, free limited by MemAvailable.
        let (t, f) = apu_memory((8 * GIB, None), (124 * GIB, None), 110 * GIB, 100 * GIB);
        assert_eq!((t, f), (118 * GIB, 108 * GIB));
        // Used above total never underflows.
        let (_, f) = apu_memory((GIB, Some(2 * GIB)), (GIB, Some(3 * GIB)), 0, 0);
        assert_eq!(f, 0);
    }

    use crate::test_support::write;

    /// A Strix Halo card with its KFD node: unified, carve-out + GTT, gfx and CUs from KFD.
    #[test]
    fn strix_halo_card_is_a_unified_apu_with_both_pools() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let dev = "sys/class/drm/card1/device";
        write(r, &format!("{dev}/vendor"), "0x1002\n");
        write(r, &format!("{dev}/device"), "0x1586\n");
        write(r, &format!("{dev}/mem_info_vram_total"), "4294967296\n");
        write(r, &format!("{dev}/mem_info_gtt_total"), "103079215104\n");
        write(r, &format!("{dev}/drm/renderD128/dev"), "226:128\n");
        write(
            r,
            &format!("{KFD_NODES}/0/properties"),
            "cpu_cores_count 32\nsimd_count 0\n",
        );
        write(r, &format!("{KFD_NODES}/1/properties"), STRIX_HALO_KFD);
        let mut issues = Vec::new();
        let gpus = probe_with_memory(&SysRoot::new(r), 124 * GIB, 120 * GIB, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        let g = &gpus[0];
        assert!(g.unified);
        assert_eq!(g.name, "AMD Radeon 8060S (Strix Halo)");
        assert_eq!(g.memory_total_bytes, Some(100 * GIB));
        assert_eq!(g.memory_free_bytes, Some(100 * GIB));
        assert_eq!(
            g.memory_pools,
            Some(MemoryPools {
                vram_bytes: Some(4 * GIB),
                gtt_bytes: Some(96 * GIB)
            })
        );
        assert_eq!(g.compute_capability.as_deref(), Some("gfx1151"));
        assert_eq!(g.cores, Some(40));
    }

    #[test]
    fn kfd_nodes_match_by_render_minor_then_device_then_order() {
        let node = |minor: u64, device: u64| KfdNode {
            props: [("drm_render_minor", minor), ("device_id", device)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            used: false,
        };
        let mut nodes = vec![node(128, 0x7480), node(129, 0x15bf)];
        let a = take_kfd_node(&mut nodes, Some(129), None).unwrap();
        assert_eq!(a["device_id"], 0x15bf);
        let b = take_kfd_node(&mut nodes, None, Some(0x7480)).unwrap();
        assert_eq!(b["device_id"], 0x7480);
        assert!(take_kfd_node(&mut nodes, None, None).is_none());
    }
}
