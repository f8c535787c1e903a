//! NVIDIA GPUs from procfs alone (`/proc/driver/nvidia/gpus/*/information`, the driver version in
//! `/proc/driver/nvidia/version`): the fallback when NVML is missing but the driver is loaded.
//! Name and driver only; memory needs NVML.

use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{Gpu, GpuVendor, ProbeIssue};

const NVIDIA_GPUS: &str = "proc/driver/nvidia/gpus";
const NVIDIA_VERSION: &str = "proc/driver/nvidia/version";

/// The `Model:` of an NVIDIA `information` file (`Model: \t\t NVIDIA GeForce RTX 4090`).
pub fn parse_nvidia_information(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim() == "Model" && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The driver version in `/proc/driver/nvidia/version`'s first line
/// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  560.35.03  Fri Aug 16 …`): the first word
/// made of digits and dots with at least one dot.
pub fn parse_nvidia_driver_version(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let (_, rest) = first.split_once(':')?;
    rest.split_whitespace()
        .find(|w| {
            w.contains('.')
                && w.chars().all(|c| c.is_ascii_digit() || c == '.')
                && w.starts_with(|c: char| c.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// NVIDIA GPUs listed by the kernel driver in procfs, with one issue saying NVML is missing.
#[cfg(test)]
pub(crate) fn nvidia_procfs(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<Gpu> {
    let out = procfs_gpus(root, issues);
    if !out.is_empty() {
        issues.push(issue::new(
            NVIDIA_GPUS,
            format!(
                "{} nvidia gpu(s) found without nvml: memory and compute capability unknown",
                out.len()
            ),
        ));
    }
    out
}

/// The driver version in `/proc/driver/nvidia/version`, when the driver is loaded.
pub(crate) fn procfs_driver_version(root: &SysRoot) -> Option<String> {
    root.read_to_string(NVIDIA_VERSION)
        .ok()
        .and_then(|t| parse_nvidia_driver_version(&t))
}

/// NVIDIA GPUs listed by the kernel driver in procfs: name, driver version and PCI address
/// (the directory name, `0000:01:00.0`), source `procfs`. No summary issue.
pub(crate) fn procfs_gpus(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Vec<Gpu> {
    let dirs = match root.list_dir(NVIDIA_GPUS) {
        Ok(dirs) => dirs,
        Err(e) => {
            issues.push(issue::from_read(&e));
            return Vec::new();
        }
    };
    if dirs.is_empty() {
        return Vec::new();
    }
    let driver = procfs_driver_version(root).unwrap_or_else(|| "nvidia".to_owned());
    let mut out = Vec::new();
    for bdf in dirs {
        let rel = format!("{NVIDIA_GPUS}/{bdf}/information");
        let name = match root.read_to_string(&rel) {
            Ok(text) => parse_nvidia_information(&text),
            Err(e) => {
                issues.push(issue::from_read(&e));
                continue;
            }
        };
        let Some(name) = name else {
            issues.push(issue::new(rel, "no `Model:` line"));
            continue;
        };
        let mut gpu = Gpu::new(GpuVendor::Nvidia, name);
        gpu.driver.clone_from(&driver);
        gpu.source = "procfs".to_owned();
        gpu.pci_bus_id = Some(bdf.to_ascii_lowercase());
        out.push(gpu);
    }
    out
}
