//! Building `ProbeIssue`s: the one place that decides how a failed read is worded in a profile.

use crate::sysroot::ReadError;
use fleetfit_core::profile::ProbeIssue;

/// An issue from `source` (a path relative to the sysroot, or a subsystem like `sysinfo`).
pub(crate) fn new(source: impl Into<String>, message: impl Into<String>) -> ProbeIssue {
    ProbeIssue {
        source: source.into(),
        message: message.into(),
    }
}

/// An issue for a file that could not be read or parsed.
pub(crate) fn from_read(e: &ReadError) -> ProbeIssue {
    new(e.path(), e.to_string())
}
