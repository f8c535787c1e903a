//! NVIDIA Jetson (Tegra) from the device tree: `/proc/device-tree/compatible` naming an
//! `nvidia,tegra…` SoC and `/proc/device-tree/model`. The integrated GPU always shares system
//! memory; this is the fallback on JetPack 5 and other images without NVML.

use crate::sysroot::SysRoot;
use fleetfit_core::profile::{Gpu, GpuVendor};

const COMPATIBLE: &str = "proc/device-tree/compatible";
const MODEL: &str = "proc/device-tree/model";
const TEGRA_RELEASE: &str = "etc/nv_tegra_release";

/// What is known of a Tegra SoC: the name NVML gives its GPU's family, compute capability and
/// architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TegraChip {
    pub soc: &'static str,
    pub family: &'static str,
    pub compute_capability: Option<&'static str>,
    pub architecture: &'static str,
}

const CHIPS: &[TegraChip] = &[
    TegraChip {
        soc: "tegra264",
        family: "Thor",
        compute_capability: None,
        architecture: "Blackwell",
    },
    TegraChip {
        soc: "tegra234",
        family: "Orin",
        compute_capability: Some("8.7"),
        architecture: "Ampere",
    },
    TegraChip {
        soc: "tegra194",
        family: "Xavier",
        compute_capability: Some("7.2"),
        architecture: "Volta",
    },
    TegraChip {
        soc: "tegra186",
        family: "TX2",
        compute_capability: Some("6.2"),
        architecture: "Pascal",
    },
    TegraChip {
        soc: "tegra210",
        family: "TX1",
        compute_capability: Some("5.3"),
        architecture: "Maxwell",
    },
];

/// The NUL-separated strings of a device-tree property (`compatible`, `model`), empty ones dropped.
pub fn device_tree_strings(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `nvidia,tegraNNN` SoC a `compatible` list names, if any (`nvidia,tegra234`).
pub fn tegra_soc(compatible: &[String]) -> Option<String> {
    compatible
        .iter()
        .find_map(|c| c.strip_prefix("nvidia,tegra"))
        .map(|n| format!("tegra{n}"))
}

/// The known facts of a SoC (`tegra234` → Orin, 8.7, Ampere).
pub fn tegra_chip(soc: &str) -> Option<TegraChip> {
    CHIPS.iter().copied().find(|c| c.soc == soc)
}

/// The L4T release in `/etc/nv_tegra_release` (`# R36 (release), REVISION: 4.0, …` → `R36.4.0`).
pub fn parse_tegra_release(text: &str) -> Option<String> {
    let line = text.lines().next()?.trim_start_matches('#').trim();
    let major = line.split_whitespace().next()?;
    if !major.starts_with('R') || major.len() < 2 {
        return None;
    }
    let revision = line
        .split(',')
        .find_map(|part| part.trim().strip_prefix("REVISION:"))
        .map(str::trim)?;
    Some(format!("{major}.{revision}"))
}

/// Peak memory bandwidth of a Jetson module from its device-tree model, in GB/s: Orin Nano
/// Super 102 (probe-ground-truth §8), the original Orin Nano 68 and Orin NX 102.4 (NVIDIA module
/// datasheets), AGX Orin 204.8 (§8). `None` for anything else (the name table decides).
pub fn jetson_bandwidth_gbps(model: &str) -> Option<f64> {
    if model.contains("Orin Nano") {
        Some(if model.contains("Super") { 102.0 } else { 68.0 })
    } else if model.contains("Orin NX") {
        Some(102.4)
    } else if model.contains("AGX Orin") {
        Some(204.8)
    } else {
        None
    }
}

/// The first string of `/proc/device-tree/model`, when there is one.
pub(crate) fn device_tree_model(root: &SysRoot) -> Option<String> {
    root.read_bytes(MODEL)
        .ok()
        .and_then(|b| device_tree_strings(&b).into_iter().next())
}

/// The Jetson's GPU, when the device tree names a Tegra SoC: unified, no memory figure (the
/// system memory is the pool), named like NVML does (`Orin (nvgpu)`), source `device-tree`.
pub(crate) fn tegra_gpu(root: &SysRoot) -> Option<Gpu> {
    let compatible = root.read_bytes(COMPATIBLE).ok()?;
    let soc = tegra_soc(&device_tree_strings(&compatible))?;
    let model = device_tree_model(root);
    let bandwidth = model.as_deref().and_then(jetson_bandwidth_gbps);
    let chip = tegra_chip(&soc);
    let name = match (chip, model) {
        (Some(c), _) => format!("{} (nvgpu)", c.family),
        (None, Some(model)) => model,
        (None, None) => format!("NVIDIA Tegra GPU ({soc})"),
    };
    let mut gpu = Gpu::new(GpuVendor::Nvidia, name);
    gpu.unified = true;
    gpu.bandwidth_gbps = bandwidth;
    gpu.source = "device-tree".to_owned();
    gpu.driver = root
        .read_to_string(TEGRA_RELEASE)
        .ok()
        .and_then(|t| parse_tegra_release(&t))
        .map(|r| format!("L4T {r}"))
        .unwrap_or_default();
    if let Some(c) = chip {
        gpu.compute_capability = c.compute_capability.map(str::to_owned);
        gpu.architecture = Some(c.architecture.to_owned());
    }
    Some(gpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orin Nano 8GB devkit (illustrative, probe-ground-truth §8).
    const ORIN_NANO_COMPATIBLE: &[u8] =
        b"nvidia,p3768-0000+p3767-0005\0nvidia,p3767-0005\0nvidia,tegra234\0";
    const ORIN_NANO_MODEL: &[u8] =
        b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\0";

    use crate::test_support::write;

    #[test]
    fn device_tree_strings_split_on_nul() {
        assert_eq!(
            device_tree_strings(ORIN_NANO_COMPATIBLE),
            [
                "nvidia,p3768-0000+p3767-0005",
                "nvidia,p3767-0005",
                "nvidia,tegra234"
            ]
        );
        assert_eq!(device_tree_strings(b"\0\0"), Vec::<String>::new());
    }

    #[test]
    fn tegra_socs_are_found_and_known() {
        let c = device_tree_strings(ORIN_NANO_COMPATIBLE);
        assert_eq!(tegra_soc(&c).as_deref(), Some("tegra234"));
        assert_eq!(tegra_chip("tegra234").map(|c| c.family), Some("Orin"));
        assert_eq!(
            tegra_chip("tegra194").and_then(|c| c.compute_capability),
            Some("7.2")
        );
        assert_eq!(tegra_chip("tegra999"), None);
        let rk = device_tree_strings(b"radxa,rock-5b\0rockchip,rk3588\0");
        assert_eq!(tegra_soc(&rk), None);
    }

    #[test]
    fn tegra_release_gives_the_l4t_version() {
        assert_eq!(
            parse_tegra_release(
                "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024\n"
            )
            .as_deref(),
            Some("R36.4.0")
        );
        assert_eq!(parse_tegra_release("garbage"), None);
        assert_eq!(parse_tegra_release(""), None);
    }

    #[test]
    fn jetson_bandwidth_comes_from_the_module() {
        assert_eq!(
            jetson_bandwidth_gbps(
                "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
            ),
            Some(102.0)
        );
        assert_eq!(
            jetson_bandwidth_gbps("NVIDIA Jetson Orin Nano Developer Kit"),
            Some(68.0)
        );
        assert_eq!(
            jetson_bandwidth_gbps("NVIDIA Jetson AGX Orin Developer Kit"),
            Some(204.8)
        );
        assert_eq!(jetson_bandwidth_gbps("NVIDIA Jetson Xavier NX"), None);
    }

    #[test]
    fn an_orin_nano_tree_gives_one_unified_gpu() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, COMPATIBLE, ORIN_NANO_COMPATIBLE);
        write(r, MODEL, ORIN_NANO_MODEL);
        let g = tegra_gpu(&SysRoot::new(r)).unwrap();
        assert_eq!(g.name, "Orin (nvgpu)");
        assert!(g.unified);
        assert_eq!(g.memory_total_bytes, None);
        assert_eq!(g.compute_capability.as_deref(), Some("8.7"));
        assert_eq!(g.bandwidth_gbps, Some(102.0));
        assert_eq!(g.source, "device-tree");
        assert_eq!(g.driver, "");
    }

    #[test]
    fn an_unknown_tegra_is_named_by_its_model_and_others_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, COMPATIBLE, b"nvidia,tegra300\0");
        write(r, MODEL, b"NVIDIA Jetson Future\0");
        assert_eq!(
            tegra_gpu(&SysRoot::new(r)).unwrap().name,
            "NVIDIA Jetson Future"
        );
        write(r, COMPATIBLE, b"rockchip,rk3588\0");
        assert_eq!(tegra_gpu(&SysRoot::new(r)), None);
    }
}
