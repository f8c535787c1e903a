//! NVIDIA GPUs: NVML (through `nvml-wrapper`, loaded at run time), with procfs and PCI as the
//! fallback when the library is missing, and Jetson's unified memory.

pub mod procfs;

use crate::sysroot::SysRoot;
use fleetfit_core::profile::DeviceProfile;

/// Adds the NVIDIA GPUs of the machine at `root` to `p` (and any issues reading them).
pub(crate) fn probe(root: &SysRoot, p: &mut DeviceProfile) {
    let gpus = procfs::nvidia_procfs(root, &mut p.issues);
    p.gpus.extend(gpus);
}
