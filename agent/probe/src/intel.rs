//! Intel GPUs from i915/xe DRM sysfs: discrete Arc VRAM (hex files), iGPUs as unified memory.

use crate::sysroot::SysRoot;
use fleetfit_core::profile::DeviceProfile;

/// Adds the Intel GPUs of the machine at `root` to `p`.
pub(crate) fn probe(_root: &SysRoot, _p: &mut DeviceProfile) {}
