//! The DeviceProfile: what a device has, as the agent's probe reports it (★ JSON contract
//! `fleetfit/device-profile/v1`). The planner only ever sees this snapshot, never the device.

use crate::diagnostic::Diagnostic;
use crate::units::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema tag every profile carries.
pub const PROFILE_SCHEMA: &str = "fleetfit/device-profile/v1";

/// One device, as probed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Always `fleetfit/device-profile/v1`.
    pub schema: String,
    /// Stable device id (machine id, serial, or what the admin assigned).
    pub id: String,
    #[serde(default)]
    pub hostname: String,
    /// Admin-assigned labels, matched by policies (`dept: finance`, `form_factor: laptop`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Device class when known (`dgx-spark`, `strix-halo`, `apple-m4-max`, `phone` …): selects
    /// the bandwidth table row when the profile carries no measured bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub os: Os,
    pub cpu: Cpu,
    pub memory: Memory,
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    #[serde(default)]
    pub npus: Vec<Npu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Things the probe could not read; the profile is still usable.
    #[serde(default)]
    pub issues: Vec<ProbeIssue>,
}

/// Operating system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// `linux`, `macos`, `windows`, `android`, `ios`.
    pub kind: String,
    #[serde(default)]
    pub version: String,
}

/// CPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// `x86_64`, `aarch64`.
    pub arch: String,
    #[serde(default)]
    pub model: String,
    pub cores: u32,
    pub threads: u32,
    /// ISA features that matter for CPU inference (`avx2`, `avx512f`, `neon`, `sve` …).
    #[serde(default)]
    pub features: Vec<String>,
}

/// System memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// Peak system memory bandwidth, when measured or known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gbps: Option<f64>,
}

/// GPU vendor.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Intel,
    Apple,
    Qualcomm,
    Arm,
}

impl GpuVendor {
    /// Lowercase name as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            GpuVendor::Nvidia => "nvidia",
            GpuVendor::Amd => "amd",
            GpuVendor::Intel => "intel",
            GpuVendor::Apple => "apple",
            GpuVendor::Qualcomm => "qualcomm",
            GpuVendor::Arm => "arm",
        }
    }
}

/// One GPU (never summed: an 8-GPU server has 8 entries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    pub vendor: GpuVendor,
    pub name: String,
    /// Dedicated memory, or for unified GPUs the GPU-usable limit when the platform reports one
    /// (Metal's working set, AMD carve-out + GTT). `null` when the device does not report it
    /// (DGX Spark, Jetson): the system memory is then the pool.
    pub memory_total_bytes: Option<u64>,
    #[serde(default)]
    pub memory_free_bytes: Option<u64>,
    /// Shares system memory.
    #[serde(default)]
    pub unified: bool,
    /// Peak memory bandwidth in GB/s, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub driver: String,
    /// Where the numbers came from: `nvml`, `sysfs`, `sysctl`, `fixture` …
    #[serde(default)]
    pub source: String,
    /// NVIDIA compute capability (`8.9`) or AMD gfx target (`gfx1151`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    /// Architecture name (`Ada`, `Hopper`, `Blackwell`, `RDNA3.5`, `Xe2`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Highest CUDA version the driver supports (`12.6`), NVIDIA only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    /// PCI address (`0000:01:00.0`), when the GPU is on PCI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// Current PCIe link (`Gen4 x16`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_link: Option<String>,
    /// GPU cores / compute units / SMs, when known (Apple GPU cores, AMD CUs, NVIDIA SMs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// Active NVLink links (NVIDIA), when the GPU has any: GPUs linked this way split a model
    /// without the PCIe bottleneck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlinks: Option<u32>,
    /// For a MIG instance: its profile (`1g.10gb`) and the parent GPU's index in NVML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigInstance>,
    /// Raw memory pools behind `memory_total_bytes` (AMD APUs: carve-out VRAM and GTT), so the
    /// arithmetic can be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_pools: Option<MemoryPools>,
}

impl Gpu {
    /// A GPU with only vendor and name known; callers fill in what their source reports.
    pub fn new(vendor: GpuVendor, name: impl Into<String>) -> Gpu {
        Gpu {
            vendor,
            name: name.into(),
            memory_total_bytes: None,
            memory_free_bytes: None,
            unified: false,
            bandwidth_gbps: None,
            driver: String::new(),
            source: String::new(),
            compute_capability: None,
            architecture: None,
            cuda_version: None,
            pci_bus_id: None,
            pcie_link: None,
            cores: None,
            nvlinks: None,
            mig: None,
            memory_pools: None,
        }
    }
}

/// One MIG (Multi-Instance GPU) slice, planned as its own GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigInstance {
    pub profile: String,
    pub parent_index: u32,
}

/// Raw pools of a unified-memory GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryPools {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtt_bytes: Option<u64>,
}

/// NPU vendor.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NpuVendor {
    Intel,
    Amd,
    Qualcomm,
    Rockchip,
    Apple,
    Google,
}

impl NpuVendor {
    /// Lowercase name as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            NpuVendor::Intel => "intel",
            NpuVendor::Amd => "amd",
            NpuVendor::Qualcomm => "qualcomm",
            NpuVendor::Rockchip => "rockchip",
            NpuVendor::Apple => "apple",
            NpuVendor::Google => "google",
        }
    }
}

/// One NPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Npu {
    pub vendor: NpuVendor,
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub tops: Option<f64>,
}

/// Where models are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub models_dir: String,
    pub free_bytes: u64,
}

/// Something the probe could not read or had to guess.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeIssue {
    pub source: String,
    pub message: String,
}

impl DeviceProfile {
    /// System memory total.
    pub fn memory_total(&self) -> Bytes {
        Bytes(self.memory.total_bytes)
    }

    /// System memory available now.
    pub fn memory_available(&self) -> Bytes {
        Bytes(self.memory.available_bytes)
    }

    /// Checks what serde cannot: schema tag, non-empty id, non-zero memory, free ≤ total.
    /// `path` is only used to name the file in diagnostics.
    pub fn validate(&self, path: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut err = |code: &str, msg: String| out.push(Diagnostic::error(path, 0, 0, code, msg));
        if self.schema != PROFILE_SCHEMA {
            err(
                "schema-version",
                format!(
                    "profile `{}` has schema `{}`: expected `{PROFILE_SCHEMA}`",
                    self.id, self.schema
                ),
            );
        }
        if self.id.trim().is_empty() {
            err("empty-id", "profile has an empty `id`".to_owned());
        }
        if self.memory.total_bytes == 0 {
            err(
                "zero-memory",
                format!(
                    "profile `{}` reports `memory.total_bytes: 0`: expected the device's RAM in bytes",
                    self.id
                ),
            );
        }
        if self.memory.available_bytes > self.memory.total_bytes {
            err(
                "impossible-number",
                format!(
                    "profile `{}` has `memory.available_bytes` ({}) above `memory.total_bytes` ({})",
                    self.id, self.memory.available_bytes, self.memory.total_bytes
                ),
            );
        }
        for (i, g) in self.gpus.iter().enumerate() {
            if let (Some(total), Some(free)) = (g.memory_total_bytes, g.memory_free_bytes)
                && free > total
            {
                err(
                    "impossible-number",
                    format!(
                        "profile `{}` gpus[{i}] has more free memory ({free}) than total ({total})",
                        self.id
                    ),
                );
            }
        }
        out
    }
}
