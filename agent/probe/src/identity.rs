//! Who and what the machine is: id, hostname, OS, and whether DMI says it is a virtual machine.
//! Labels are the admin's, never guessed here.

use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{Os, ProbeIssue};

/// Identity fields of a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub hostname: String,
    pub os: Os,
    /// `vm` when DMI names a hypervisor, else `None`.
    pub class: Option<String>,
}

/// A usable `/etc/machine-id`: 32 hex digits (systemd writes `uninitialized` during first boot).
pub fn parse_machine_id(text: &str) -> Option<String> {
    let t = text.trim();
    (t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase())
}

/// `PRETTY_NAME` from `/etc/os-release`, else `NAME VERSION_ID`; quotes removed.
pub fn parse_os_release(text: &str) -> Option<String> {
    let mut pretty = None;
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
        match k.trim() {
            "PRETTY_NAME" if !v.is_empty() => pretty = Some(v),
            "NAME" => name = Some(v),
            "VERSION_ID" => version = Some(v),
            _ => {}
        }
    }
    pretty.or_else(|| match (name, version) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (n, _) => n,
    })
}

/// Whether DMI `sys_vendor`/`product_name` name a hypervisor (KVM, QEMU, VMware, VirtualBox,
/// Hyper-V, Xen, Google Compute Engine, Amazon EC2). EC2 bare-metal instances (`m5.metal`) also
/// say `Amazon EC2` and are not VMs.
pub fn dmi_names_hypervisor(sys_vendor: &str, product_name: &str) -> bool {
    let vendor = sys_vendor.to_ascii_lowercase();
    let product = product_name.to_ascii_lowercase();
    if vendor.contains("amazon ec2") {
        return product.strip_suffix(".metal").is_none();
    }
    if vendor.contains("microsoft") && product.contains("virtual") {
        return true;
    }
    let both = format!("{vendor} {product}");
    [
        "kvm",
        "qemu",
        "vmware",
        "virtualbox",
        "innotek",
        "microsoft virtual",
        "google compute",
        "xen",
    ]
    .iter()
    .any(|needle| both.contains(needle))
}

fn hostname(root: &SysRoot) -> Option<String> {
    if root.is_host()
        && let Ok(name) = sysinfo::System::host_name()
        && !name.trim().is_empty()
    {
        return Some(name.trim().to_owned());
    }
    ["proc/sys/kernel/hostname", "etc/hostname"]
        .iter()
        .find_map(|rel| root.read_trimmed(rel).ok().flatten())
}

/// The distribution name from `os-release`, else the kernel release.
fn linux_version(root: &SysRoot) -> Option<String> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|rel| root.read_to_string(rel).ok())
        .and_then(|t| parse_os_release(&t))
        .or_else(|| {
            let release = root.read_trimmed("proc/sys/kernel/osrelease").ok()??;
            Some(format!("Linux {release}"))
        })
}

fn os(root: &SysRoot) -> Os {
    if root.is_host() {
        let kind = std::env::consts::OS;
        // On Linux, `os-release` gives the same words a fixture tree would; elsewhere sysinfo.
        let version = (kind == "linux")
            .then(|| linux_version(root))
            .flatten()
            .or_else(|| sysinfo::System::long_os_version().ok())
            .unwrap_or_default();
        return Os {
            kind: kind.to_owned(),
            version,
        };
    }
    // A sysroot is a sysfs/procfs tree, so Linux; Android trees are told apart by the full probe.
    Os {
        kind: "linux".to_owned(),
        version: linux_version(root).unwrap_or_default(),
    }
}

fn class(root: &SysRoot) -> Option<String> {
    let read = |f: &str| {
        root.read_trimmed(format!("sys/class/dmi/id/{f}"))
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    // DMI names the hypervisor on most clouds; microVMs (Firecracker) expose no DMI, but the CPU
    // still carries the `hypervisor` flag the kernel sets for any guest.
    let guest_cpu = || {
        root.read_to_string("proc/cpuinfo").ok().is_some_and(|t| {
            t.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "hypervisor"))
        })
    };
    (dmi_names_hypervisor(&read("sys_vendor"), &read("product_name")) || guest_cpu())
        .then(|| "vm".to_owned())
}

/// Id, hostname, OS and class. The id is `/etc/machine-id`, else the hostname.
pub(crate) fn probe(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Identity {
    let hostname = hostname(root).unwrap_or_default();
    let machine_id = match root.read_to_string("etc/machine-id") {
        Ok(text) => parse_machine_id(&text),
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            issues.push(issue::from_read(&e));
            None
        }
    };
    let id = machine_id.unwrap_or_else(|| hostname.clone());
    if id.is_empty() {
        issues.push(issue::new(
            "identity",
            "no `etc/machine-id` and no hostname: the profile has no id",
        ));
    }
    Identity {
        id,
        hostname,
        os: os(root),
        class: class(root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build VM's `/etc/os-release`.
    const DEBIAN_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"#;

    use crate::test_support::write;

    #[test]
    fn os_release_prefers_pretty_name() {
        assert_eq!(
            parse_os_release(DEBIAN_OS_RELEASE).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            parse_os_release("NAME=Ubuntu\nVERSION_ID='24.04'\n").as_deref(),
            Some("Ubuntu 24.04")
        );
        assert_eq!(parse_os_release(""), None);
    }

    #[test]
    fn machine_id_must_be_32_hex_digits() {
        assert_eq!(
            parse_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4\n").as_deref(),
            Some("3d1219c7c4c5404aaa1f6d2a48adfda4")
        );
        assert_eq!(parse_machine_id("uninitialized\n"), None);
        assert_eq!(parse_machine_id(""), None);
    }

    #[test]
    fn hypervisors_are_recognized_from_dmi() {
        assert!(dmi_names_hypervisor(
            "QEMU",
            "Standard PC (Q35 + ICH9, 2009)"
        ));
        assert!(dmi_names_hypervisor(
            "VMware, Inc.",
            "VMware Virtual Platform"
        ));
        assert!(dmi_names_hypervisor("innotek GmbH", "VirtualBox"));
        assert!(dmi_names_hypervisor(
            "Microsoft Corporation",
            "Virtual Machine"
        ));
        assert!(dmi_names_hypervisor("Google", "Google Compute Engine"));
        assert!(dmi_names_hypervisor("Amazon EC2", "m5.large"));
        assert!(!dmi_names_hypervisor("Amazon EC2", "m5.metal"));
        assert!(!dmi_names_hypervisor("Dell Inc.", "Precision 7960 Tower"));
        assert!(!dmi_names_hypervisor(
            "Microsoft Corporation",
            "Surface Laptop 7"
        ));
        assert!(!dmi_names_hypervisor("", ""));
    }

    #[test]
    fn a_fixture_tree_gives_machine_id_hostname_os_and_vm_class() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
        write(r, "proc/sys/kernel/hostname", "gpu-node-7\n");
        write(r, "etc/os-release", DEBIAN_OS_RELEASE);
        write(r, "sys/class/dmi/id/sys_vendor", "QEMU\n");
        write(
            r,
            "sys/class/dmi/id/product_name",
            "Standard PC (i440FX + PIIX, 1996)\n",
        );
        let mut issues = Vec::new();
        let id = probe(&SysRoot::new(r), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(id.id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
        assert_eq!(id.hostname, "gpu-node-7");
        assert_eq!(id.os.kind, "linux");
        assert_eq!(id.os.version, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(id.class.as_deref(), Some("vm"));
    }

    #[test]
    fn without_machine_id_the_hostname_is_the_id_and_bare_metal_has_no_class() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "etc/hostname", "ws-01\n");
        write(r, "proc/sys/kernel/osrelease", "6.8.0-45-generic\n");
        write(r, "sys/class/dmi/id/sys_vendor", "ASUS\n");
        let mut issues = Vec::new();
        let id = probe(&SysRoot::new(r), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!((id.id.as_str(), id.hostname.as_str()), ("ws-01", "ws-01"));
        assert_eq!(id.os.version, "Linux 6.8.0-45-generic");
        assert_eq!(id.class, None);
    }

    #[test]
    fn an_empty_tree_reports_the_missing_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut issues = Vec::new();
        let id = probe(&SysRoot::new(dir.path()), &mut issues);
        assert_eq!(id.id, "");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].source, "identity");
    }

    #[test]
    fn a_guest_cpu_without_dmi_is_a_vm() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "proc/cpuinfo",
            "processor\t: 0\nflags\t\t: fpu avx2 hypervisor\n",
        );
        assert_eq!(class(&SysRoot::new(dir.path())).as_deref(), Some("vm"));
        write(
            dir.path(),
            "proc/cpuinfo",
            "processor\t: 0\nflags\t\t: fpu avx2\n",
        );
        assert_eq!(class(&SysRoot::new(dir.path())), None);
    }
}
