//! What the probe reads from NVML, behind the [`NvmlSource`] trait: [`RealNvml`] over
//! `nvml-wrapper` (the host only) and [`FakeNvml`] replaying a recorded `.fleetfit/nvml.json`
//! (fixture trees), so no fixture can ever reach the host's `libnvidia-ml.so.1`.
//!
//! # The recording, `<sysroot>/.fleetfit/nvml.json`
//!
//! Either an init failure, `{"init_error": "LibraryNotFound"}` (`LibloadingError`,
//! `FailedToLoadSymbol`, `DriverNotLoaded` and `LibraryNotFound` mean "no NVIDIA library"; any other
//! word is an init failure that is reported), or what NVML answered:
//!
//! ```json
//! {"driver_version": "560.35.03", "cuda_driver_version": 12060,
//!  "devices": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "uuid": "GPU-…",
//!    "pci_bus_id": "00000000:01:00.0", "pci_device_id": "0x268410de",
//!    "memory": {"total": 25757220864, "free": 24900000000, "used": 857220864},
//!    "compute_capability": [8, 9], "architecture": "Ada",
//!    "pcie_link": {"gen": 4, "width": 16}, "multiprocessor_count": 128,
//!    "mig_mode": {"current": 0, "pending": 0},
//!    "mig_devices": [{"index": 0, "name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
//!      "profile": "1g.10gb", "memory": {"total": 10737418240, "free": 10200547328, "used": 0},
//!      "multiprocessor_count": 16}],
//!    "nvlink_active": 18}]}
//! ```
//!
//! Devices are listed in NVML index order (`index` must equal the position). Every answer may
//! instead be an error: a missing field or `null` is `NotSupported`; for a non-string answer a
//! bare string is the error (`"memory": "NotSupported"`, `"mig_mode": "NotSupported"`); any answer
//! may be `{"error": "…"}` (`"name": {"error": "GpuLost"}`). The error `NotSupported` is the NVML
//! one; any other text is an error the probe reports as an issue.

use crate::sysroot::SysRoot;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where a fixture tree keeps its NVML recording.
pub const RECORDING: &str = ".fleetfit/nvml.json";

/// Why one NVML call gave no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// `NVML_ERROR_NOT_SUPPORTED`: the device has no such thing (a normal answer on UMA parts,
    /// consumer cards without MIG, GPUs without NVLink).
    NotSupported,
    /// Anything else, as NVML words it.
    Failed(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotSupported => f.write_str("not supported"),
            CallError::Failed(e) => f.write_str(e),
        }
    }
}

/// The answer of one NVML call.
pub type NvmlResult<T> = Result<T, CallError>;

/// `memory_info()` in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryInfo {
    pub total: u64,
    pub free: u64,
    pub used: u64,
}

/// `mig_mode()`: 1 = enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigMode {
    pub current: u32,
    pub pending: u32,
}

/// The current PCIe link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcieLink {
    pub r#gen: u32,
    pub width: u32,
}

/// One provisioned MIG slot of a parent GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigDevice {
    /// The slot (`mig_device_by_index`).
    pub index: u32,
    /// `NVIDIA H100 80GB HBM3 MIG 1g.10gb`.
    pub name: NvmlResult<String>,
    /// `1g.10gb`, when known.
    pub profile: Option<String>,
    pub memory: NvmlResult<MemoryInfo>,
    pub multiprocessor_count: NvmlResult<u32>,
}

/// Exactly what the probe reads from NVML. Devices are addressed by NVML index.
pub trait NvmlSource {
    /// `sys_driver_version()`: `560.35.03`.
    fn driver_version(&self) -> NvmlResult<String>;
    /// `sys_cuda_driver_version()`: `12060` for CUDA 12.6.
    fn cuda_driver_version(&self) -> NvmlResult<i32>;
    fn device_count(&self) -> NvmlResult<u32>;
    fn name(&self, device: u32) -> NvmlResult<String>;
    fn uuid(&self, device: u32) -> NvmlResult<String>;
    /// `pci_info().bus_id` as NVML writes it: `00000000:01:00.0`.
    fn pci_bus_id(&self, device: u32) -> NvmlResult<String>;
    /// `pci_info().pci_device_id`: device id << 16 | vendor id (`0x268410de`).
    fn pci_device_id(&self, device: u32) -> NvmlResult<u32>;
    fn memory_info(&self, device: u32) -> NvmlResult<MemoryInfo>;
    /// `(major, minor)`.
    fn compute_capability(&self, device: u32) -> NvmlResult<(i32, i32)>;
    /// `Ada`, `Hopper`, `Blackwell` …
    fn architecture(&self, device: u32) -> NvmlResult<String>;
    fn pcie_link(&self, device: u32) -> NvmlResult<PcieLink>;
    /// Streaming multiprocessors.
    fn multiprocessor_count(&self, device: u32) -> NvmlResult<u32>;
    fn mig_mode(&self, device: u32) -> NvmlResult<MigMode>;
    /// The provisioned MIG slots (unprovisioned ones are left out).
    fn mig_devices(&self, device: u32) -> NvmlResult<Vec<MigDevice>>;
    /// How many of the device's NVLinks are active.
    fn nvlink_active(&self, device: u32) -> NvmlResult<u32>;
}

/// Why there is no NVML to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// Where it was looked for (`nvml`, the recording's path).
    pub source: String,
    pub reason: String,
    /// Whether this is worth an issue by itself: a missing library on a machine without NVIDIA
    /// GPUs is normal; a library that is there but fails is not.
    pub report: bool,
}

/// The `Nvml::init()` errors that mean "no NVIDIA library or driver here" rather than a failure.
pub fn init_error_means_no_library(name: &str) -> bool {
    matches!(
        name,
        "LibloadingError" | "FailedToLoadSymbol" | "DriverNotLoaded" | "LibraryNotFound"
    )
}

/// Where NVML answers come from for a root: the live library only for the host's `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The host: `libnvidia-ml.so.1` through [`RealNvml`].
    Host,
    /// A fixture tree with a recording (the path under the root).
    Recorded(PathBuf),
    /// A fixture tree without one: no NVML at all.
    Missing,
}

/// Picks the backend for `root`. A non-host root never gets [`Backend::Host`].
pub fn backend_for(root: &SysRoot) -> Backend {
    if root.is_host() {
        Backend::Host
    } else if root.join(RECORDING).is_file() {
        Backend::Recorded(root.join(RECORDING))
    } else {
        Backend::Missing
    }
}

/// An opened NVML.
pub enum Opened {
    Real(&'static RealNvml),
    Fake(FakeNvml),
}

impl Opened {
    /// The source to ask.
    pub fn source(&self) -> &dyn NvmlSource {
        match self {
            Opened::Real(r) => *r,
            Opened::Fake(f) => f,
        }
    }
}

/// Opens NVML for `root`: the host library on `/`, the recording elsewhere.
pub fn open(root: &SysRoot) -> Result<Opened, Unavailable> {
    match backend_for(root) {
        Backend::Host => RealNvml::shared().map(Opened::Real),
        Backend::Recorded(_) => {
            let source = RECORDING.to_owned();
            let text = root.read_to_string(RECORDING).map_err(|e| Unavailable {
                source: source.clone(),
                reason: format!("cannot read the nvml recording: {e}"),
                report: true,
            })?;
            FakeNvml::from_json(&text)
                .map_err(|reason| Unavailable {
                    source: source.clone(),
                    reason,
                    report: true,
                })?
                .init()
                .map(Opened::Fake)
        }
        Backend::Missing => Err(Unavailable {
            source: "nvml".to_owned(),
            reason: format!("no NVML recording at `{RECORDING}`"),
            report: false,
        }),
    }
}

/// The MIG profile in a MIG device name: `NVIDIA H100 80GB HBM3 MIG 1g.10gb` → `1g.10gb`.
pub fn mig_profile_from_name(name: &str) -> Option<String> {
    let (_, rest) = name.rsplit_once("MIG ")?;
    let profile = rest.split_whitespace().next()?;
    (profile.contains('g') && profile.contains('.')).then(|| profile.to_owned())
}

/// Parses `0x268410de` (or decimal) into a PCI device id.
pub fn parse_pci_device_id(text: &str) -> Option<u32> {
    crate::sysroot::parse_u64(text).and_then(|v| u32::try_from(v).ok())
}

// ---------------------------------------------------------------------------------------------
// The live library.

/// `NVML_NVLINK_MAX_LINKS` in nvml-wrapper-sys 0.10.
const NVLINK_MAX_LINKS: u32 = 18;

/// NVML through `nvml-wrapper`, initialised once per process.
pub struct RealNvml {
    nvml: nvml_wrapper::Nvml,
}

static SHARED: OnceLock<RealNvml> = OnceLock::new();

fn call_error(e: &nvml_wrapper::error::NvmlError) -> CallError {
    use nvml_wrapper::error::NvmlError;
    match e {
        NvmlError::NotSupported => CallError::NotSupported,
        other => CallError::Failed(other.to_string()),
    }
}

impl RealNvml {
    /// The process's NVML, initialising it on first use. Only a success is kept, so a driver
    /// that loads later is still found by the next probe.
    fn shared() -> Result<&'static RealNvml, Unavailable> {
        use nvml_wrapper::error::NvmlError;
        if let Some(r) = SHARED.get() {
            return Ok(r);
        }
        match nvml_wrapper::Nvml::init() {
            Ok(nvml) => Ok(SHARED.get_or_init(|| RealNvml { nvml })),
            Err(e) => {
                let no_library = matches!(
                    e,
                    NvmlError::LibloadingError(_)
                        | NvmlError::FailedToLoadSymbol(_)
                        | NvmlError::DriverNotLoaded
                        | NvmlError::LibraryNotFound
                );
                Err(Unavailable {
                    source: "nvml".to_owned(),
                    reason: if no_library {
                        format!("no NVIDIA library: {e}")
                    } else {
                        format!("NVML init failed: {e}")
                    },
                    report: !no_library,
                })
            }
        }
    }

    fn with<T>(
        &self,
        device: u32,
        f: impl FnOnce(&nvml_wrapper::Device<'_>) -> Result<T, nvml_wrapper::error::NvmlError>,
    ) -> NvmlResult<T> {
        let d = self
            .nvml
            .device_by_index(device)
            .map_err(|e| call_error(&e))?;
        f(&d).map_err(|e| call_error(&e))
    }
}

impl NvmlSource for RealNvml {
    fn driver_version(&self) -> NvmlResult<String> {
        self.nvml.sys_driver_version().map_err(|e| call_error(&e))
    }

    fn cuda_driver_version(&self) -> NvmlResult<i32> {
        self.nvml
            .sys_cuda_driver_version()
            .map_err(|e| call_error(&e))
    }

    fn device_count(&self) -> NvmlResult<u32> {
        self.nvml.device_count().map_err(|e| call_error(&e))
    }

    #[allow(
        clippy::redundant_closure_for_method_calls,
        reason = "`Device::name` as a path is not general enough over the handle's lifetime"
    )]
    fn name(&self, device: u32) -> NvmlResult<String> {
        self.with(device, |d| d.name())
    }

    #[allow(
        clippy::redundant_closure_for_method_calls,
        reason = "`Device::uuid` as a path is not general enough over the handle's lifetime"
    )]
    fn uuid(&self, device: u32) -> NvmlResult<String> {
        self.with(device, |d| d.uuid())
    }

    fn pci_bus_id(&self, device: u32) -> NvmlResult<String> {
        self.with(device, |d| d.pci_info().map(|p| p.bus_id))
    }

    fn pci_device_id(&self, device: u32) -> NvmlResult<u32> {
        self.with(device, |d| d.pci_info().map(|p| p.pci_device_id))
    }

    fn memory_info(&self, device: u32) -> NvmlResult<MemoryInfo> {
        self.with(device, |d| {
            d.memory_info().map(|m| MemoryInfo {
                total: m.total,
                free: m.free,
                used: m.used,
            })
        })
    }

    fn compute_capability(&self, device: u32) -> NvmlResult<(i32, i32)> {
        self.with(device, |d| {
            d.cuda_compute_capability().map(|c| (c.major, c.minor))
        })
    }

    fn architecture(&self, device: u32) -> NvmlResult<String> {
        self.with(device, |d| d.architecture().map(|a| a.to_string()))
    }

    fn pcie_link(&self, device: u32) -> NvmlResult<PcieLink> {
        self.with(device, |d| {
            Ok(PcieLink {
                r#gen: d.current_pcie_link_gen()?,
                width: d.current_pcie_link_width()?,
            })
        })
    }

    fn multiprocessor_count(&self, device: u32) -> NvmlResult<u32> {
        self.with(device, |d| d.attributes().map(|a| a.multiprocessor_count))
    }

    fn mig_mode(&self, device: u32) -> NvmlResult<MigMode> {
        self.with(device, |d| {
            d.mig_mode().map(|m| MigMode {
                current: m.current,
                pending: m.pending,
            })
        })
    }

    fn mig_devices(&self, device: u32) -> NvmlResult<Vec<MigDevice>> {
        use nvml_wrapper::error::NvmlError;
        self.with(device, |d| {
            let count = d.mig_device_count()?;
            let mut out = Vec::new();
            for index in 0..count {
                let m = match d.mig_device_by_index(index) {
                    Ok(m) => m,
                    // Unprovisioned slots.
                    Err(NvmlError::NotSupported | NvmlError::InvalidArg | NvmlError::NotFound) => {
                        continue;
                    }
                    Err(e) => {
                        out.push(MigDevice {
                            index,
                            name: Err(call_error(&e)),
                            profile: None,
                            memory: Err(call_error(&e)),
                            multiprocessor_count: Err(call_error(&e)),
                        });
                        continue;
                    }
                };
                let name = m.name().map_err(|e| call_error(&e));
                out.push(MigDevice {
                    index,
                    profile: name.as_deref().ok().and_then(mig_profile_from_name),
                    name,
                    memory: m
                        .memory_info()
                        .map(|i| MemoryInfo {
                            total: i.total,
                            free: i.free,
                            used: i.used,
                        })
                        .map_err(|e| call_error(&e)),
                    multiprocessor_count: m
                        .attributes()
                        .map(|a| a.multiprocessor_count)
                        .map_err(|e| call_error(&e)),
                });
            }
            Ok(out)
        })
    }

    fn nvlink_active(&self, device: u32) -> NvmlResult<u32> {
        self.with(device, |d| {
            let mut active = 0;
            let mut supported = false;
            for link in 0..NVLINK_MAX_LINKS {
                match d.link_wrapper_for(link).is_active() {
                    Ok(true) => {
                        supported = true;
                        active += 1;
                    }
                    Ok(false) => supported = true,
                    Err(_) => {}
                }
            }
            if supported {
                Ok(active)
            } else {
                Err(nvml_wrapper::error::NvmlError::NotSupported)
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The recording.

/// One recorded answer: a value, `{"error": "…"}`, or (for non-string values) a bare error string.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Rec<T> {
    Error { error: String },
    Value(T),
    Bare(String),
}

fn error_from_text(text: &str) -> CallError {
    if text == "NotSupported" {
        CallError::NotSupported
    } else {
        CallError::Failed(text.to_owned())
    }
}

fn answer<T: Clone>(rec: Option<&Rec<T>>) -> NvmlResult<T> {
    match rec {
        None => Err(CallError::NotSupported),
        Some(Rec::Value(v)) => Ok(v.clone()),
        Some(Rec::Error { error: text } | Rec::Bare(text)) => Err(error_from_text(text)),
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recording {
    #[serde(default)]
    init_error: Option<String>,
    #[serde(default)]
    driver_version: Option<Rec<String>>,
    #[serde(default)]
    cuda_driver_version: Option<Rec<i32>>,
    #[serde(default)]
    devices: Vec<RecDevice>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecDevice {
    index: u32,
    #[serde(default)]
    name: Option<Rec<String>>,
    #[serde(default)]
    uuid: Option<Rec<String>>,
    #[serde(default)]
    pci_bus_id: Option<Rec<String>>,
    #[serde(default)]
    pci_device_id: Option<Rec<String>>,
    #[serde(default)]
    memory: Option<Rec<MemoryInfo>>,
    #[serde(default)]
    compute_capability: Option<Rec<[i32; 2]>>,
    #[serde(default)]
    architecture: Option<Rec<String>>,
    #[serde(default)]
    pcie_link: Option<Rec<PcieLink>>,
    #[serde(default)]
    multiprocessor_count: Option<Rec<u32>>,
    #[serde(default)]
    mig_mode: Option<Rec<MigMode>>,
    #[serde(default)]
    mig_devices: Vec<RecMig>,
    #[serde(default)]
    nvlink_active: Option<Rec<u32>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecMig {
    index: u32,
    #[serde(default)]
    name: Option<Rec<String>>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    memory: Option<Rec<MemoryInfo>>,
    #[serde(default)]
    multiprocessor_count: Option<Rec<u32>>,
}

/// NVML replayed from a recording (see the module docs for the format).
#[derive(Clone, Debug)]
pub struct FakeNvml {
    rec: Recording,
}

impl FakeNvml {
    /// Parses a recording. Devices must be listed in index order.
    pub fn from_json(text: &str) -> Result<FakeNvml, String> {
        let rec: Recording =
            serde_json::from_str(text).map_err(|e| format!("bad nvml recording: {e}"))?;
        for (pos, d) in rec.devices.iter().enumerate() {
            if d.index as usize != pos {
                return Err(format!(
                    "bad nvml recording: device at position {pos} has index {}",
                    d.index
                ));
            }
        }
        Ok(FakeNvml { rec })
    }

    /// What `Nvml::init()` would have answered.
    pub fn init(self) -> Result<FakeNvml, Unavailable> {
        match &self.rec.init_error {
            None => Ok(self),
            Some(name) => {
                let no_library = init_error_means_no_library(name);
                Err(Unavailable {
                    source: "nvml".to_owned(),
                    reason: if no_library {
                        format!("no NVIDIA library: {name}")
                    } else {
                        format!("NVML init failed: {name}")
                    },
                    report: !no_library,
                })
            }
        }
    }

    fn device(&self, device: u32) -> NvmlResult<&RecDevice> {
        self.rec
            .devices
            .get(device as usize)
            .ok_or_else(|| CallError::Failed(format!("no device {device}")))
    }
}

impl NvmlSource for FakeNvml {
    fn driver_version(&self) -> NvmlResult<String> {
        answer(self.rec.driver_version.as_ref())
    }

    fn cuda_driver_version(&self) -> NvmlResult<i32> {
        answer(self.rec.cuda_driver_version.as_ref())
    }

    fn device_count(&self) -> NvmlResult<u32> {
        Ok(self.rec.devices.len() as u32)
    }

    fn name(&self, device: u32) -> NvmlResult<String> {
        answer(self.device(device)?.name.as_ref())
    }

    fn uuid(&self, device: u32) -> NvmlResult<String> {
        answer(self.device(device)?.uuid.as_ref())
    }

    fn pci_bus_id(&self, device: u32) -> NvmlResult<String> {
        answer(self.device(device)?.pci_bus_id.as_ref())
    }

    fn pci_device_id(&self, device: u32) -> NvmlResult<u32> {
        let text = answer(self.device(device)?.pci_device_id.as_ref())?;
        parse_pci_device_id(&text)
            .ok_or_else(|| CallError::Failed(format!("bad pci_device_id `{text}`")))
    }

    fn memory_info(&self, device: u32) -> NvmlResult<MemoryInfo> {
        answer(self.device(device)?.memory.as_ref())
    }

    fn compute_capability(&self, device: u32) -> NvmlResult<(i32, i32)> {
        answer(self.device(device)?.compute_capability.as_ref()).map(|[a, b]| (a, b))
    }

    fn architecture(&self, device: u32) -> NvmlResult<String> {
        answer(self.device(device)?.architecture.as_ref())
    }

    fn pcie_link(&self, device: u32) -> NvmlResult<PcieLink> {
        answer(self.device(device)?.pcie_link.as_ref())
    }

    fn multiprocessor_count(&self, device: u32) -> NvmlResult<u32> {
        answer(self.device(device)?.multiprocessor_count.as_ref())
    }

    fn mig_mode(&self, device: u32) -> NvmlResult<MigMode> {
        answer(self.device(device)?.mig_mode.as_ref())
    }

    fn mig_devices(&self, device: u32) -> NvmlResult<Vec<MigDevice>> {
        let d = self.device(device)?;
        Ok(d.mig_devices
            .iter()
            .map(|m| {
                let name = answer(m.name.as_ref());
                MigDevice {
                    index: m.index,
                    profile: m
                        .profile
                        .clone()
                        .or_else(|| name.as_deref().ok().and_then(mig_profile_from_name)),
                    name,
                    memory: answer(m.memory.as_ref()),
                    multiprocessor_count: answer(m.multiprocessor_count.as_ref()),
                }
            })
            .collect())
    }

    fn nvlink_active(&self, device: u32) -> NvmlResult<u32> {
        answer(self.device(device)?.nvlink_active.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTX4090: &str = r#"{"driver_version": "560.35.03", "cuda_driver_version": 12060,
      "devices": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "uuid": "GPU-1",
        "pci_bus_id": "00000000:01:00.0", "pci_device_id": "0x268410de",
        "memory": {"total": 25757220864, "free": 24900000000, "used": 857220864},
        "compute_capability": [8, 9], "architecture": "Ada",
        "pcie_link": {"gen": 4, "width": 16}, "multiprocessor_count": 128,
        "mig_mode": "NotSupported", "nvlink_active": null}]}"#;

    #[test]
    fn a_recording_answers_every_call() {
        let f = FakeNvml::from_json(RTX4090).unwrap().init().unwrap();
        assert_eq!(f.driver_version().unwrap(), "560.35.03");
        assert_eq!(f.cuda_driver_version().unwrap(), 12060);
        assert_eq!(f.device_count().unwrap(), 1);
        assert_eq!(f.name(0).unwrap(), "NVIDIA GeForce RTX 4090");
        assert_eq!(f.uuid(0).unwrap(), "GPU-1");
        assert_eq!(f.pci_bus_id(0).unwrap(), "00000000:01:00.0");
        assert_eq!(f.pci_device_id(0).unwrap(), 0x2684_10de);
        assert_eq!(f.memory_info(0).unwrap().total, 25_757_220_864);
        assert_eq!(f.compute_capability(0).unwrap(), (8, 9));
        assert_eq!(f.architecture(0).unwrap(), "Ada");
        assert_eq!(
            f.pcie_link(0).unwrap(),
            PcieLink {
                r#gen: 4,
                width: 16
            }
        );
        assert_eq!(f.multiprocessor_count(0).unwrap(), 128);
        assert_eq!(f.mig_mode(0), Err(CallError::NotSupported));
        assert_eq!(f.mig_devices(0).unwrap(), Vec::new());
        assert_eq!(f.nvlink_active(0), Err(CallError::NotSupported));
        assert!(matches!(f.name(1), Err(CallError::Failed(_))));
    }

    #[test]
    fn recorded_errors_are_not_supported_or_failures() {
        let f = FakeNvml::from_json(
            r#"{"devices": [{"index": 0, "name": {"error": "GpuLost"},
                "memory": "FailedToLoadSymbol(nvmlDeviceGetMemoryInfo_v2)",
                "mig_mode": {"error": "NotSupported"},
                "mig_devices": [{"index": 3, "name": "NVIDIA H100 80GB HBM3 MIG 3g.40gb"}]}]}"#,
        )
        .unwrap();
        assert_eq!(f.name(0), Err(CallError::Failed("GpuLost".into())));
        assert_eq!(
            f.memory_info(0),
            Err(CallError::Failed(
                "FailedToLoadSymbol(nvmlDeviceGetMemoryInfo_v2)".into()
            ))
        );
        assert_eq!(f.mig_mode(0), Err(CallError::NotSupported));
        assert_eq!(f.driver_version(), Err(CallError::NotSupported));
        let mig = f.mig_devices(0).unwrap();
        assert_eq!(mig[0].profile.as_deref(), Some("3g.40gb"));
        assert_eq!(mig[0].memory, Err(CallError::NotSupported));
    }

    #[test]
    fn bad_recordings_are_rejected() {
        assert!(FakeNvml::from_json("{").is_err());
        assert!(FakeNvml::from_json(r#"{"devcies": []}"#).is_err());
        let e = FakeNvml::from_json(r#"{"devices": [{"index": 1}]}"#).unwrap_err();
        assert!(e.contains("position 0 has index 1"), "{e}");
    }

    #[test]
    fn init_errors_split_into_no_library_and_failures() {
        let gone = FakeNvml::from_json(r#"{"init_error": "LibraryNotFound"}"#)
            .unwrap()
            .init()
            .unwrap_err();
        assert!(!gone.report);
        assert!(gone.reason.contains("no NVIDIA library"));
        let broken = FakeNvml::from_json(r#"{"init_error": "LibRmVersionMismatch"}"#)
            .unwrap()
            .init()
            .unwrap_err();
        assert!(broken.report);
        for name in [
            "LibloadingError",
            "FailedToLoadSymbol",
            "DriverNotLoaded",
            "LibraryNotFound",
        ] {
            assert!(init_error_means_no_library(name));
        }
        assert!(!init_error_means_no_library("NoPermission"));
    }

    #[test]
    fn mig_profiles_come_from_the_device_name() {
        assert_eq!(
            mig_profile_from_name("NVIDIA H100 80GB HBM3 MIG 1g.10gb").as_deref(),
            Some("1g.10gb")
        );
        assert_eq!(
            mig_profile_from_name("NVIDIA A100-SXM4-40GB MIG 3g.20gb").as_deref(),
            Some("3g.20gb")
        );
        assert_eq!(mig_profile_from_name("NVIDIA GeForce RTX 4090"), None);
    }

    #[test]
    fn pci_device_ids_parse_as_hex() {
        assert_eq!(parse_pci_device_id("0x2e1210de"), Some(0x2e12_10de));
        assert_eq!(parse_pci_device_id("0x1ffffffff"), None);
        assert_eq!(parse_pci_device_id("zz"), None);
    }

    /// A fixture root must never reach the host's `libnvidia-ml.so.1`: only `/` selects it.
    #[test]
    fn only_the_host_root_uses_the_real_library() {
        assert_eq!(backend_for(&SysRoot::host()), Backend::Host);
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path());
        assert_eq!(backend_for(&root), Backend::Missing);
        let Err(u) = open(&root) else {
            panic!("a tree without a recording opened NVML")
        };
        assert!(!u.report);
        std::fs::create_dir_all(dir.path().join(".fleetfit")).unwrap();
        std::fs::write(dir.path().join(RECORDING), RTX4090).unwrap();
        assert_eq!(
            backend_for(&root),
            Backend::Recorded(dir.path().join(RECORDING))
        );
        assert!(matches!(open(&root), Ok(Opened::Fake(_))));
        assert_eq!(backend_for(&SysRoot::new("/tmp")), Backend::Missing);
    }
}
