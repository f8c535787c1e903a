//! Android phones through `getprop` (recorded outputs under a fixture root), `/proc/meminfo` and
//! the Adreno/Mali sysfs nodes.
//!
//! A device is Android when `getprop ro.build.version.release` answers or the root has a
//! `system/build.prop` (whose `key=value` lines also stand in for `getprop` when it is missing).
//! Memory and CPU features stay as the Linux readers found them in `/proc`; this module sets the
//! OS, the SoC as CPU model, the GPU (Adreno through kgsl, Mali through `mali0`) and the NPU
//! inferred from the SoC (§5.1: there is no NPU sysfs on Android). Hexagon TOPS are not
//! published for phone SoCs, so they stay `null`.

use crate::command::CommandRunner;
use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{DeviceProfile, Gpu, GpuVendor, Npu, NpuVendor, Os};

/// Where the kgsl (Adreno) driver names its GPU.
const ADRENO_MODEL: &str = "sys/class/kgsl/kgsl-3d0/gpu_model";
/// Where the Mali driver describes its GPU.
const MALI_GPUINFO: &str = "sys/class/misc/mali0/device/gpuinfo";

/// (`ro.soc.model` or `ro.board.platform`, marketing name, vendor) of phone SoCs (§5.1, §8).
const SOCS: &[(&str, &str, SocVendor)] = &[
    ("SM8750", "Snapdragon 8 Elite", SocVendor::Qualcomm),
    ("sun", "Snapdragon 8 Elite", SocVendor::Qualcomm),
    ("SM8650", "Snapdragon 8 Gen 3", SocVendor::Qualcomm),
    ("pineapple", "Snapdragon 8 Gen 3", SocVendor::Qualcomm),
    ("SM8550", "Snapdragon 8 Gen 2", SocVendor::Qualcomm),
    ("kalama", "Snapdragon 8 Gen 2", SocVendor::Qualcomm),
    ("SM8475", "Snapdragon 8+ Gen 1", SocVendor::Qualcomm),
    ("SM8450", "Snapdragon 8 Gen 1", SocVendor::Qualcomm),
    ("Tensor G4", "Tensor G4", SocVendor::Google),
    ("zumapro", "Tensor G4", SocVendor::Google),
    ("Tensor G3", "Tensor G3", SocVendor::Google),
    ("zuma", "Tensor G3", SocVendor::Google),
    ("Tensor G2", "Tensor G2", SocVendor::Google),
    ("gs201", "Tensor G2", SocVendor::Google),
    ("Tensor", "Tensor", SocVendor::Google),
    ("gs101", "Tensor", SocVendor::Google),
];

/// Who makes a SoC, for the NPU it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocVendor {
    Qualcomm,
    Google,
    Other,
}

/// A phone SoC as the properties name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soc {
    /// `Qualcomm SM8650 (Snapdragon 8 Gen 3)`, `Google Tensor G4`, or the raw model.
    pub display: String,
    pub vendor: SocVendor,
}

/// Names the SoC from `ro.soc.manufacturer` (`QTI`, `Google`) and `ro.soc.model` (`SM8650`,
/// `Tensor G4`), falling back to `ro.board.platform` (`pineapple`, `zumapro`) for the model.
pub fn soc_name(manufacturer: &str, model: &str, platform: &str) -> Option<Soc> {
    let lookup = |key: &str| {
        let key = key.trim();
        SOCS.iter()
            .find(|(k, _, _)| !key.is_empty() && k.eq_ignore_ascii_case(key))
    };
    let by_model = lookup(model);
    let known = by_model.or_else(|| lookup(platform));
    let qualcomm = matches!(manufacturer.trim(), "QTI" | "Qualcomm" | "qcom");
    match known {
        Some((_, name, SocVendor::Qualcomm)) => Some(Soc {
            // The part number only when `ro.soc.model` named it (not `ro.hardware`'s `qcom`).
            display: if by_model.is_some() {
                format!("Qualcomm {} ({name})", model.trim())
            } else {
                format!("Qualcomm {name}")
            },
            vendor: SocVendor::Qualcomm,
        }),
        Some((_, name, vendor)) => Some(Soc {
            display: format!("Google {name}"),
            vendor: *vendor,
        }),
        None if !model.trim().is_empty() => Some(Soc {
            display: match manufacturer.trim() {
                "" => model.trim().to_owned(),
                "QTI" => format!("Qualcomm {}", model.trim()),
                m => format!("{m} {}", model.trim()),
            },
            vendor: if qualcomm {
                SocVendor::Qualcomm
            } else {
                SocVendor::Other
            },
        }),
        None => None,
    }
}

/// `Adreno750v2` (kgsl `gpu_model`) → `Adreno 750`; `None` when it names no Adreno number.
pub fn parse_adreno_model(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("Adreno")?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("Adreno {digits}"))
}

/// `Mali-G715 7 cores r0p1 0x…` (`mali0/device/gpuinfo`) → (`Mali-G715`, 7 cores).
pub fn parse_mali_gpuinfo(text: &str) -> Option<(String, Option<u32>)> {
    let mut words = text.split_whitespace();
    let name = words.next().filter(|n| n.starts_with("Mali"))?.to_owned();
    let count = words.next().and_then(|n| n.parse().ok());
    let cores = count.filter(|_| words.next().is_some_and(|w| w.starts_with("core")));
    Some((name, cores))
}

/// `key=value` lines of a `build.prop`, value of `key`.
pub fn build_prop(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// Property lookup: `getprop` first, then the tree's `build.prop` files.
struct Props<'a> {
    runner: &'a dyn CommandRunner,
    build_props: Vec<String>,
}

impl Props<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.runner
            .run("getprop", &[key])
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| self.build_props.iter().find_map(|t| build_prop(t, key)))
    }
}

/// Fills `p` from Android sources when the machine is an Android device; does nothing elsewhere.
pub(crate) fn probe(root: &SysRoot, runner: &dyn CommandRunner, p: &mut DeviceProfile) {
    let build_props: Vec<String> = ["system/build.prop", "vendor/build.prop"]
        .iter()
        .filter_map(|rel| root.read_to_string(rel).ok())
        .collect();
    let props = Props {
        runner,
        build_props,
    };
    let Some(release) = props.get("ro.build.version.release") else {
        return;
    };
    p.os = Os {
        kind: "android".to_owned(),
        version: format!("Android {release}"),
    };
    p.class = Some("phone".to_owned());
    // Apps see no machine id; the serial (readable from adb shell) names the device better than
    // the kernel's `localhost`.
    if let Some(serial) = props
        .get("ro.serialno")
        .filter(|s| s != "unknown" && root.read_to_string("etc/machine-id").is_err())
    {
        p.id = serial;
        p.issues.retain(|i| i.source != "identity");
    }
    if p.hostname.is_empty()
        && let Some(model) = props.get("ro.product.model")
    {
        p.hostname = model;
    }

    let manufacturer = props.get("ro.soc.manufacturer").unwrap_or_default();
    let model = props
        .get("ro.soc.model")
        .or_else(|| props.get("ro.hardware"))
        .unwrap_or_default();
    let platform = props.get("ro.board.platform").unwrap_or_default();
    let soc = soc_name(&manufacturer, &model, &platform);
    p.cpu.arch = "aarch64".to_owned();
    match &soc {
        Some(s) => p.cpu.model.clone_from(&s.display),
        None => p.issues.push(issue::new(
            "getprop ro.soc.model",
            "cannot name the SoC: no `ro.soc.model`, `ro.hardware` or known `ro.board.platform`",
        )),
    }

    if let Some(gpu) = gpu(root) {
        p.gpus.push(gpu);
    }
    match soc.map(|s| s.vendor) {
        Some(SocVendor::Qualcomm) => p.npus.push(Npu {
            vendor: NpuVendor::Qualcomm,
            name: "Qualcomm Hexagon NPU".to_owned(),
            driver: String::new(),
            tops: None,
        }),
        // Google publishes no TOPS figure for the Tensor TPU.
        Some(SocVendor::Google) => p.npus.push(Npu {
            vendor: NpuVendor::Google,
            name: "Google Tensor TPU".to_owned(),
            driver: String::new(),
            tops: None,
        }),
        Some(SocVendor::Other) | None => {}
    }
}

/// Adreno through kgsl, else Mali; `None` when neither node is readable (SELinux blocks apps).
fn gpu(root: &SysRoot) -> Option<Gpu> {
    if let Some(name) = root
        .read_to_string(ADRENO_MODEL)
        .ok()
        .and_then(|t| parse_adreno_model(&t))
    {
        let mut g = Gpu::new(GpuVendor::Qualcomm, name);
        g.unified = true;
        g.driver = "kgsl".to_owned();
        g.source = "sysfs".to_owned();
        return Some(g);
    }
    let (name, cores) = root
        .read_to_string(MALI_GPUINFO)
        .ok()
        .and_then(|t| parse_mali_gpuinfo(&t))?;
    let mut g = Gpu::new(GpuVendor::Arm, name);
    g.unified = true;
    g.cores = cores;
    g.driver = "mali".to_owned();
    g.source = "sysfs".to_owned();
    Some(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socs_are_named_from_model_manufacturer_or_platform() {
        let s = soc_name("QTI", "SM8650", "pineapple").unwrap();
        assert_eq!(s.display, "Qualcomm SM8650 (Snapdragon 8 Gen 3)");
        assert_eq!(s.vendor, SocVendor::Qualcomm);
        assert_eq!(
            soc_name("QTI", "SM8750", "").unwrap().display,
            "Qualcomm SM8750 (Snapdragon 8 Elite)"
        );
        let t = soc_name("Google", "Tensor G4", "zumapro").unwrap();
        assert_eq!(
            (t.display.as_str(), t.vendor),
            ("Google Tensor G4", SocVendor::Google)
        );
        assert_eq!(
            soc_name("", "", "zumapro").unwrap().display,
            "Google Tensor G4"
        );
        let other = soc_name("Mediatek", "MT6989", "").unwrap();
        assert_eq!(
            (other.display.as_str(), other.vendor),
            ("Mediatek MT6989", SocVendor::Other)
        );
        assert_eq!(
            soc_name("", "qcom", "pineapple").unwrap().display,
            "Qualcomm Snapdragon 8 Gen 3"
        );
        assert_eq!(soc_name("", "", ""), None);
    }

    #[test]
    fn adreno_models_drop_the_revision_suffix() {
        assert_eq!(
            parse_adreno_model("Adreno750v2\n").as_deref(),
            Some("Adreno 750")
        );
        assert_eq!(
            parse_adreno_model("Adreno829").as_deref(),
            Some("Adreno 829")
        );
        assert_eq!(parse_adreno_model("Adreno"), None);
        assert_eq!(parse_adreno_model(""), None);
    }

    #[test]
    fn mali_gpuinfo_gives_name_and_cores() {
        assert_eq!(
            parse_mali_gpuinfo("Mali-G715 7 cores r0p1 0x0C080701\n"),
            Some(("Mali-G715".to_owned(), Some(7)))
        );
        assert_eq!(
            parse_mali_gpuinfo("Mali-G720-Immortalis 10 cores r0p0 0x0C080700"),
            Some(("Mali-G720-Immortalis".to_owned(), Some(10)))
        );
        assert_eq!(
            parse_mali_gpuinfo("Mali-G72"),
            Some(("Mali-G72".to_owned(), None))
        );
        assert_eq!(parse_mali_gpuinfo("PowerVR"), None);
        assert_eq!(parse_mali_gpuinfo(""), None);
    }

    #[test]
    fn build_prop_lines_are_key_value() {
        let text = "# begin build properties\nro.build.version.release=14\nro.soc.model=SM8650\nro.empty=\n";
        assert_eq!(
            build_prop(text, "ro.build.version.release").as_deref(),
            Some("14")
        );
        assert_eq!(build_prop(text, "ro.soc.model").as_deref(), Some("SM8650"));
        assert_eq!(build_prop(text, "ro.empty"), None);
        assert_eq!(build_prop(text, "ro.missing"), None);
    }

    #[test]
    fn a_build_prop_tree_is_android_and_a_plain_tree_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::ProbeOptions {
            sysroot: dir.path().to_path_buf(),
            models_dir: None,
        };
        let plain = crate::probe(&opts);
        assert_eq!(plain.os.kind, "linux");
        std::fs::create_dir_all(dir.path().join("system")).unwrap();
        std::fs::write(
            dir.path().join("system/build.prop"),
            "ro.build.version.release=15\nro.board.platform=sun\n",
        )
        .unwrap();
        let p = crate::probe(&opts);
        assert_eq!(p.os.kind, "android");
        assert_eq!(p.os.version, "Android 15");
        assert_eq!(p.class.as_deref(), Some("phone"));
        assert_eq!(p.cpu.model, "Qualcomm Snapdragon 8 Elite");
        assert_eq!(p.npus.len(), 1);
        assert!(p.gpus.is_empty());
    }
}
