//! Hardware facts the planner needs but profiles may not carry: peak memory bandwidth per device
//! class, and which runtime backend drives which GPU.
//!
//! Bandwidths are vendor peak figures (GB/s) collected in `shared/reference/probe-ground-truth.md`
//! §8 (NVIDIA DGX Spark porting guide, Jetson datasheets, AMD/Apple/Qualcomm spec pages).

use crate::profile::{DeviceProfile, Gpu, GpuVendor};

/// (lowercase substring of the GPU name, GB/s). First match wins, so specific names come first.
const GPU_BANDWIDTH: &[(&str, f64)] = &[
    ("gb10", 273.0),
    ("h200", 4800.0),
    ("h100 nvl", 3900.0),
    ("h100 pcie", 2000.0),
    ("h100", 3350.0),
    ("a100-sxm4-40gb", 1555.0),
    ("a100", 2039.0),
    ("l40s", 864.0),
    ("l4", 300.0),
    // Laptop GPUs share names with desktop cards but have narrower buses: match them first.
    ("4090 laptop", 576.0),
    ("4080 laptop", 432.0),
    ("4070 laptop", 256.0),
    ("4060 laptop", 256.0),
    ("rtx 5090", 1792.0),
    ("rtx 4090", 1008.0),
    ("rtx 4080", 716.8),
    ("rtx 3090", 936.0),
    ("rtx 4070", 504.0),
    ("orin nano", 102.0),
    ("orin nx", 102.4),
    ("orin", 204.8),
    ("thor", 273.0),
    ("radeon 8060s", 256.0),
    ("8060s", 256.0),
    ("780m", 89.6),
    ("7900 xtx", 960.0),
    ("mi300x", 5300.0),
    ("m3 ultra", 819.0),
    ("m4 max", 546.0),
    ("m4 pro", 273.0),
    ("apple m4", 120.0),
    ("arc 140v", 136.5),
    ("arc a770", 560.0),
    ("adreno x1-85", 135.0),
    ("adreno 830", 84.8),
    ("adreno 750", 76.8),
    ("mali-g715", 60.0),
];

/// (device class, GB/s) for system memory, when the profile carries no measured bandwidth.
const CLASS_BANDWIDTH: &[(&str, f64)] = &[
    ("dgx-spark", 273.0),
    ("strix-halo", 256.0),
    ("apple-m4-max", 546.0),
    ("apple-m4-pro", 273.0),
    ("apple-m3-ultra", 819.0),
    ("jetson-orin-nano", 102.0),
    ("jetson-agx-orin", 204.8),
    ("lunar-lake", 136.5),
    ("snapdragon-x-elite", 135.0),
    ("phone", 76.8),
    ("server", 300.0),
    ("workstation", 89.6),
    ("laptop", 89.6),
    ("vm", 40.0),
];

/// Conservative system-memory bandwidth when nothing else is known (dual-channel DDR4-2666 class).
pub const DEFAULT_SYSTEM_BANDWIDTH_GBPS: f64 = 40.0;

/// Peak bandwidth of one GPU in GB/s: the profile's figure, else the table, else `None`.
pub fn gpu_bandwidth_gbps(gpu: &Gpu) -> Option<f64> {
    if let Some(bw) = gpu.bandwidth_gbps.filter(|b| *b > 0.0) {
        return Some(bw);
    }
    let name = gpu.name.to_ascii_lowercase();
    GPU_BANDWIDTH
        .iter()
        .find(|(k, _)| name.contains(k))
        .map(|(_, bw)| *bw)
}

/// System memory bandwidth in GB/s: measured, else by device class, else a unified GPU's figure
/// (the same memory), else the conservative default.
pub fn system_bandwidth_gbps(profile: &DeviceProfile) -> f64 {
    if let Some(bw) = profile.memory.bandwidth_gbps.filter(|b| *b > 0.0) {
        return bw;
    }
    if let Some(class) = &profile.class
        && let Some((_, bw)) = CLASS_BANDWIDTH.iter().find(|(k, _)| class.starts_with(k))
    {
        return *bw;
    }
    if let Some(bw) = profile
        .gpus
        .iter()
        .filter(|g| g.unified)
        .find_map(gpu_bandwidth_gbps)
    {
        return bw;
    }
    DEFAULT_SYSTEM_BANDWIDTH_GBPS
}

/// Runtime backend that drives a GPU of this vendor in llama.cpp.
pub fn gpu_backend(vendor: GpuVendor) -> Option<crate::estimate::Backend> {
    use crate::estimate::Backend;
    match vendor {
        GpuVendor::Nvidia => Some(Backend::Cuda),
        GpuVendor::Amd => Some(Backend::Rocm),
        GpuVendor::Apple => Some(Backend::Metal),
        GpuVendor::Intel => Some(Backend::Vulkan),
        // Phone and Windows-on-Arm GPUs: llama.cpp's mobile GPU paths are not yet a safe default;
        // plan these devices on the CPU.
        GpuVendor::Qualcomm | GpuVendor::Arm => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str) -> Gpu {
        Gpu::new(GpuVendor::Nvidia, name)
    }

    #[test]
    fn specific_names_win_over_generic_ones() {
        assert_eq!(gpu_bandwidth_gbps(&gpu("NVIDIA H100 PCIe")), Some(2000.0));
        assert_eq!(
            gpu_bandwidth_gbps(&gpu("NVIDIA H100 80GB HBM3")),
            Some(3350.0)
        );
        assert_eq!(gpu_bandwidth_gbps(&gpu("NVIDIA GB10")), Some(273.0));
        assert_eq!(gpu_bandwidth_gbps(&gpu("Orin (nvgpu)")), Some(204.8));
        assert_eq!(gpu_bandwidth_gbps(&gpu("Mystery GPU")), None);
    }
}
