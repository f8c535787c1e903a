//! Apple Silicon Macs through `sysctl`/`vm_stat`/`sw_vers`/`ioreg` (recorded outputs under a
//! fixture root): memory, chip, GPU cores, the Metal working-set limit, and the Neural Engine.
//!
//! A Mac is recognised by `sysctl -n kern.ostype` printing `Darwin`; anywhere else the command
//! fails and this module does nothing. On a Mac it replaces the OS, CPU and memory figures the
//! Linux readers produced (a Mac tree has no `/proc`) and drops their `proc/…`/`sys/…` issues.
//!
//! The Metal working-set limit (`recommendedMaxWorkingSetSize`) needs Metal itself, which a
//! recorded fixture cannot run, so it is `sysctl iogpu.wired_limit_mb` when an admin set one,
//! else the observed rule of probe-ground-truth §5.2 (0.75 × RAM up to 36 GiB, 0.84 × RAM above;
//! 128 GiB → 107.52 GiB in ds4#893, 16 GiB M3 → ~0.74 in llmfit#754). Such a GPU's `source` is
//! `ioreg+rule`, so the figure is never mistaken for a Metal answer. Older macOS gave 2/3 on a
//! 32 GiB M1 Max (llama.cpp#2011), so the rule can overstate on old systems.
//!
//! The Neural Engine has no query API (§4.6): it is inferred from the chip, with Apple's
//! published TOPS per generation (an Ultra has two, so twice the TOPS).

use crate::command::CommandRunner;
use crate::issue;
use crate::sysroot::{SysRoot, parse_u64};
use fleetfit_core::profile::{
    Cpu, DeviceProfile, Gpu, GpuVendor, Memory, Npu, NpuVendor, Os, ProbeIssue,
};

/// 36 GiB: the RAM up to which Metal's working set is about three quarters of memory.
const SMALL_MAC_BYTES: u64 = 36 << 30;

/// Runs `sysctl -n key` and returns the trimmed value, `None` when missing or empty.
fn sysctl(runner: &dyn CommandRunner, key: &str) -> Option<String> {
    let out = runner.run("sysctl", &["-n", key]).ok()?;
    let v = out.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn sysctl_u64(runner: &dyn CommandRunner, key: &str) -> Option<u64> {
    sysctl(runner, key).and_then(|v| parse_u64(&v))
}

/// An Apple chip as `machdep.cpu.brand_string` names it (`Apple M4 Max`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chip {
    /// Generation number: 4 for M4.
    pub generation: u32,
    /// `""`, `Pro`, `Max` or `Ultra`.
    pub tier: String,
}

/// Parses `Apple M4 Max` (or `Apple M1`) into generation and tier; `None` for other brands
/// (Intel Macs).
pub fn parse_chip(brand: &str) -> Option<Chip> {
    let rest = brand.trim().strip_prefix("Apple M")?;
    let mut words = rest.split_whitespace();
    let generation = words.next()?.parse().ok()?;
    let tier = words.next().unwrap_or("").to_owned();
    Some(Chip { generation, tier })
}

impl Chip {
    /// `apple-m4-max`, `apple-m3-ultra`, `apple-m1`.
    pub fn class(&self) -> String {
        if self.tier.is_empty() {
            format!("apple-m{}", self.generation)
        } else {
            format!(
                "apple-m{}-{}",
                self.generation,
                self.tier.to_ascii_lowercase()
            )
        }
    }

    /// Apple's published Neural Engine TOPS: M1 11, M2 15.8, M3 18, M4 38 (§4.6, §8); an Ultra
    /// joins two dies (M1 Ultra 22, M2 Ultra 31.6 as published; M3 Ultra 36 by the same rule).
    pub fn ane_tops(&self) -> Option<f64> {
        let one = match self.generation {
            1 => 11.0,
            2 => 15.8,
            3 => 18.0,
            4 => 38.0,
            _ => return None,
        };
        Some(if self.tier == "Ultra" { one * 2.0 } else { one })
    }

    /// CPU features by generation when `hw.optional.arm.*` is not available: every M-series
    /// has NEON, dot product and FP16; `i8mm` came with M2 (Armv8.6).
    pub fn features(&self) -> Vec<String> {
        let mut out = vec!["dotprod", "fp16"];
        if self.generation >= 2 {
            out.push("i8mm");
        }
        out.push("neon");
        out.into_iter().map(str::to_owned).collect()
    }
}

/// Available bytes from `vm_stat`: (free + inactive + speculative pages) × the page size its
/// header states. `None` when the header or the free count is missing.
pub fn parse_vm_stat(text: &str) -> Option<u64> {
    let mut page_size = None;
    let (mut free, mut inactive, mut speculative) = (None, 0, 0);
    for line in text.lines() {
        if let Some(rest) = line.split("page size of ").nth(1) {
            page_size = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let Ok(n) = value.trim().trim_end_matches('.').parse::<u64>() else {
            continue;
        };
        match key.trim() {
            "Pages free" => free = Some(n),
            "Pages inactive" => inactive = n,
            "Pages speculative" => speculative = n,
            _ => {}
        }
    }
    free?
        .checked_add(inactive)?
        .checked_add(speculative)?
        .checked_mul(page_size?)
}

/// GPU core count from `ioreg -rc AGXAccelerator -d1` (`"gpu-core-count" = 40`).
pub fn parse_gpu_core_count(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim().trim_matches('"') == "gpu-core-count")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Metal's working set: `iogpu.wired_limit_mb` when set (non-zero), else the §5.2 rule.
/// Returns the bytes and whether they came from the sysctl.
pub fn working_set_bytes(total_bytes: u64, wired_limit_mb: Option<u64>) -> (u64, bool) {
    match wired_limit_mb.filter(|mb| *mb > 0) {
        Some(mb) => (mb.saturating_mul(1 << 20), true),
        None if total_bytes <= SMALL_MAC_BYTES => (fraction(total_bytes, 75), false),
        None => (fraction(total_bytes, 84), false),
    }
}

/// `percent`% of `bytes`, exact (no overflow, rounded down).
fn fraction(bytes: u64, percent: u64) -> u64 {
    u64::try_from(u128::from(bytes) * u128::from(percent) / 100).unwrap_or(u64::MAX)
}

/// Fills `p` from macOS sources when the machine is a Mac; does nothing elsewhere.
pub(crate) fn probe(_root: &SysRoot, runner: &dyn CommandRunner, p: &mut DeviceProfile) {
    if sysctl(runner, "kern.ostype").as_deref() != Some("Darwin") {
        return;
    }
    // Drop what the Linux readers said about missing procfs/sysfs files, and identity's
    // complaint when the Mac itself names the machine.
    p.issues
        .retain(|i| !(i.source.starts_with("proc/") || i.source.starts_with("sys/")));
    let mut issues: Vec<ProbeIssue> = Vec::new();
    if p.hostname.is_empty()
        && let Some(h) = sysctl(runner, "kern.hostname")
    {
        p.hostname = h;
    }
    if p.id.is_empty() {
        // `kern.uuid` is the hardware UUID (IOPlatformUUID) on macOS.
        if let Some(u) = sysctl(runner, "kern.uuid") {
            p.id = u;
        } else {
            p.id.clone_from(&p.hostname);
        }
        if !p.id.is_empty() {
            p.issues.retain(|i| i.source != "identity");
        }
    }

    let version = runner
        .run("sw_vers", &["-productVersion"])
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    p.os = Os {
        kind: "macos".to_owned(),
        version: version.map_or_else(String::new, |v| format!("macOS {v}")),
    };

    // Memory.
    let total = sysctl_u64(runner, "hw.memsize").unwrap_or_else(|| {
        issues.push(issue::new("sysctl hw.memsize", "cannot read the RAM size"));
        p.memory.total_bytes
    });
    let available = if let Some(a) = runner
        .run("vm_stat", &[])
        .ok()
        .and_then(|t| parse_vm_stat(&t))
    {
        a
    } else {
        issues.push(issue::new(
            "vm_stat",
            "cannot read free pages: available memory assumed to be 75% of total",
        ));
        fraction(total, 75)
    };
    p.memory = Memory {
        total_bytes: total,
        available_bytes: available.min(total),
        bandwidth_gbps: None,
    };

    // CPU.
    let brand = sysctl(runner, "machdep.cpu.brand_string").unwrap_or_default();
    let chip = parse_chip(&brand);
    let perf = sysctl_u64(runner, "hw.perflevel0.physicalcpu");
    let eff = sysctl_u64(runner, "hw.perflevel1.physicalcpu").unwrap_or(0);
    let threads = sysctl_u64(runner, "hw.logicalcpu")
        .or_else(|| sysctl_u64(runner, "hw.ncpu"))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(p.cpu.threads)
        .max(1);
    let cores = perf
        .or_else(|| sysctl_u64(runner, "hw.physicalcpu"))
        .map(|n| n + eff)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(threads)
        .clamp(1, threads);
    p.cpu = Cpu {
        arch: "aarch64".to_owned(),
        features: cpu_features(runner, chip.as_ref()),
        model: brand.clone(),
        cores,
        threads,
    };
    let Some(chip) = chip else {
        issues.push(issue::new(
            "sysctl machdep.cpu.brand_string",
            format!("`{brand}` is not an Apple Silicon chip: no GPU or Neural Engine reported"),
        ));
        p.issues.append(&mut issues);
        return;
    };
    p.class = Some(chip.class());

    // GPU: cores from ioreg, the working set from the sysctl or the rule.
    let gpu_cores = ["AGXAccelerator", "IOGPU"].iter().find_map(|class| {
        runner
            .run("ioreg", &["-rc", class, "-d1"])
            .ok()
            .and_then(|t| parse_gpu_core_count(&t))
    });
    let (working_set, from_sysctl) =
        working_set_bytes(total, sysctl_u64(runner, "iogpu.wired_limit_mb"));
    let mut gpu = Gpu::new(GpuVendor::Apple, brand);
    gpu.unified = true;
    gpu.memory_total_bytes = (total > 0).then_some(working_set);
    gpu.cores = gpu_cores;
    gpu.driver = "metal".to_owned();
    gpu.source = if from_sysctl { "sysctl" } else { "ioreg+rule" }.to_owned();
    p.gpus.push(gpu);

    p.npus.push(Npu {
        vendor: NpuVendor::Apple,
        name: "Apple Neural Engine".to_owned(),
        driver: String::new(),
        tops: chip.ane_tops(),
    });
    p.issues.append(&mut issues);
}

/// `hw.optional.arm.FEAT_*` (macOS 12+) when the Mac answers, else by chip generation.
fn cpu_features(runner: &dyn CommandRunner, chip: Option<&Chip>) -> Vec<String> {
    let keys = [
        ("hw.optional.arm.FEAT_DotProd", "dotprod"),
        ("hw.optional.arm.FEAT_FP16", "fp16"),
        ("hw.optional.arm.FEAT_I8MM", "i8mm"),
        ("hw.optional.AdvSIMD", "neon"),
    ];
    let answers: Vec<(Option<u64>, &str)> = keys
        .iter()
        .map(|(k, name)| (sysctl_u64(runner, k), *name))
        .collect();
    if answers.iter().all(|(v, _)| v.is_none()) {
        return chip.map_or_else(|| vec!["neon".to_owned()], Chip::features);
    }
    let mut out: Vec<String> = answers
        .into_iter()
        .filter(|(v, _)| *v == Some(1))
        .map(|(_, name)| name.to_owned())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vm_stat` on a 128 GiB M4 Max (illustrative counts, real layout).
    const VM_STAT: &str = "\
Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                              5123456.
Pages active:                            1234567.
Pages inactive:                          1500000.
Pages speculative:                         50000.
Pages throttled:                               0.
Pages wired down:                         456789.
\"Translation faults\":                  123456789.
";

    /// `ioreg -rc AGXAccelerator -d1`, trimmed (format as all-smi parses it).
    const IOREG: &str = r#"+-o AGXAcceleratorG16X  <class AGXAcceleratorG16X, id 0x100000467, registered, matched, active, busy 0 (0 ms), retain 83>
    {
      "IOClass" = "AGXAcceleratorG16X"
      "gpu-core-count" = 40
      "model" = "Apple M4 Max"
    }
"#;

    #[test]
    fn chips_parse_into_class_tops_and_features() {
        let m4max = parse_chip("Apple M4 Max").unwrap();
        assert_eq!(m4max.class(), "apple-m4-max");
        assert_eq!(m4max.ane_tops(), Some(38.0));
        assert_eq!(m4max.features(), ["dotprod", "fp16", "i8mm", "neon"]);
        let m1 = parse_chip("Apple M1\n").unwrap();
        assert_eq!(m1.class(), "apple-m1");
        assert_eq!(m1.features(), ["dotprod", "fp16", "neon"]);
        let ultra = parse_chip("Apple M3 Ultra").unwrap();
        assert_eq!(ultra.class(), "apple-m3-ultra");
        assert_eq!(ultra.ane_tops(), Some(36.0));
        assert_eq!(
            parse_chip("Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz"),
            None
        );
        assert_eq!(parse_chip("Apple M9 Max").unwrap().ane_tops(), None);
    }

    #[test]
    fn vm_stat_counts_free_inactive_and_speculative_pages() {
        assert_eq!(
            parse_vm_stat(VM_STAT),
            Some((5_123_456 + 1_500_000 + 50_000) * 16384)
        );
        assert_eq!(parse_vm_stat("Pages free: 10.\n"), None);
        assert_eq!(parse_vm_stat(""), None);
    }

    #[test]
    fn ioreg_gives_the_gpu_core_count() {
        assert_eq!(parse_gpu_core_count(IOREG), Some(40));
        assert_eq!(parse_gpu_core_count("\"gpu-core-count\" = lots\n"), None);
        assert_eq!(parse_gpu_core_count(""), None);
    }

    #[test]
    fn working_set_follows_the_wired_limit_else_the_rule() {
        let gib = 1u64 << 30;
        // 128 GiB → 0.84 × RAM ≈ 115.4e9 (§8 `m4-max-128`).
        assert_eq!(working_set_bytes(128 * gib, None), (115_448_720_916, false));
        assert_eq!(working_set_bytes(16 * gib, Some(0)), (12 * gib, false));
        assert_eq!(working_set_bytes(36 * gib, None), (27 * gib, false));
        assert_eq!(
            working_set_bytes(128 * gib, Some(114_688)),
            (112 * gib, true)
        );
    }

    /// Answers from a table of command lines; anything else fails as on a Linux host.
    struct Table(Vec<(&'static str, &'static str)>);

    impl CommandRunner for Table {
        fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
            let line = std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" ");
            self.0
                .iter()
                .find(|(k, _)| *k == line)
                .map(|(_, v)| (*v).to_owned())
                .ok_or(line)
        }
    }

    fn linux_profile() -> DeviceProfile {
        let dir = tempfile::tempdir().unwrap();
        crate::probe(&crate::ProbeOptions {
            sysroot: dir.path().to_path_buf(),
            models_dir: None,
        })
    }

    #[test]
    fn a_non_mac_is_left_alone() {
        let mut p = linux_profile();
        let before = p.clone();
        probe(&SysRoot::new("/nonexistent"), &Table(Vec::new()), &mut p);
        assert_eq!(p, before);
    }

    #[test]
    fn a_mac_without_vm_stat_or_ioreg_still_gives_a_profile() {
        let mut p = linux_profile();
        let runner = Table(vec![
            ("sysctl -n kern.ostype", "Darwin\n"),
            ("sysctl -n kern.hostname", "mbp\n"),
            ("sysctl -n hw.memsize", "17179869184\n"),
            ("sysctl -n machdep.cpu.brand_string", "Apple M1\n"),
            ("sysctl -n hw.perflevel0.physicalcpu", "4\n"),
            ("sysctl -n hw.perflevel1.physicalcpu", "4\n"),
            ("sysctl -n hw.logicalcpu", "8\n"),
            ("sysctl -n iogpu.wired_limit_mb", "8192\n"),
        ]);
        probe(&SysRoot::new("/nonexistent"), &runner, &mut p);
        assert_eq!((p.id.as_str(), p.hostname.as_str()), ("mbp", "mbp"));
        assert_eq!(p.os.kind, "macos");
        assert_eq!(p.class.as_deref(), Some("apple-m1"));
        assert_eq!((p.cpu.cores, p.cpu.threads), (8, 8));
        assert_eq!(p.cpu.features, ["dotprod", "fp16", "neon"]);
        assert_eq!(p.memory.available_bytes, 12 << 30);
        assert_eq!(p.gpus[0].memory_total_bytes, Some(8 << 30));
        assert_eq!(p.gpus[0].source, "sysctl");
        assert_eq!(p.gpus[0].cores, None);
        assert_eq!(p.npus[0].tops, Some(11.0));
        let sources: Vec<&str> = p.issues.iter().map(|i| i.source.as_str()).collect();
        assert_eq!(sources, ["vm_stat"]);
    }
}
