//! NVIDIA GPUs: procfs today; NVML (through `nvml-wrapper`, loaded at run time), PCI and Jetson
//! sources belong here too.

pub mod procfs;
