//! The CPU: model, cores, threads, arch and the ISA features CPU inference cares about, from
//! sysinfo and CPUID on the host, from `proc/cpuinfo` under any other sysroot (never the host's).

use crate::issue;
use crate::sysroot::SysRoot;
use fleetfit_core::profile::{Cpu, ProbeIssue};
use std::collections::BTreeSet;

/// x86 `/proc/cpuinfo` `flags` → feature name. The names are Rust's `is_x86_feature_detected!`
/// names, so a fixture and the host spell them the same. AMX is left out: its detection is not
/// stable in std yet (rust-lang/rust#126622), and a fixture must not claim what the host cannot.
const X86_FLAGS: &[(&str, &str)] = &[
    ("avx", "avx"),
    ("avx2", "avx2"),
    ("fma", "fma"),
    ("f16c", "f16c"),
    ("avx512f", "avx512f"),
    ("avx512bw", "avx512bw"),
    ("avx512_vnni", "avx512vnni"),
    ("avx_vnni", "avxvnni"),
    // AMX (Sapphire Rapids and later): llama.cpp's AMX path needs the int8 tiles.
    ("amx_int8", "amx"),
];

/// arm64 `/proc/cpuinfo` `Features` → feature name (Rust's `is_aarch64_feature_detected!`
/// names). `fp16` needs both `fphp` and `asimdhp`, as std requires.
const ARM_FLAGS: &[(&str, &str)] = &[
    ("asimd", "neon"),
    ("asimddp", "dotprod"),
    ("i8mm", "i8mm"),
    ("sve", "sve"),
];

/// What `/proc/cpuinfo` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// `model name` (x86), else `Hardware`/`Model` (some Arm boards); `None` on most arm64.
    pub model: Option<String>,
    /// Number of `processor` entries.
    pub threads: u32,
    /// Distinct (`physical id`, `core id`) pairs, when the file has them (x86).
    pub cores: Option<u32>,
    /// `x86_64` or `aarch64`, guessed from which keys are present.
    pub arch: Option<String>,
    /// The raw `flags`/`Features` words of the first processor.
    pub flags: Vec<String>,
}

/// Arm core names by (`CPU implementer`, `CPU part`), from the kernel's `arch/arm64/include/asm/cputype.h`
/// and Arm's TRMs: the cores of the SoCs fleetfit plans for (GB10, Grace, Orin, RK3588, X Elite).
const ARM_PARTS: &[(&str, &str, &str)] = &[
    ("0x41", "0xd03", "Cortex-A53"),
    ("0x41", "0xd05", "Cortex-A55"),
    ("0x41", "0xd08", "Cortex-A72"),
    ("0x41", "0xd0b", "Cortex-A76"),
    ("0x41", "0xd0c", "Neoverse-N1"),
    ("0x41", "0xd40", "Neoverse-V1"),
    ("0x41", "0xd41", "Cortex-A78"),
    ("0x41", "0xd42", "Cortex-A78AE"),
    ("0x41", "0xd44", "Cortex-X1"),
    ("0x41", "0xd49", "Neoverse-N2"),
    ("0x41", "0xd4f", "Neoverse-V2"),
    ("0x41", "0xd81", "Cortex-A720"),
    ("0x41", "0xd82", "Cortex-X4"),
    ("0x41", "0xd85", "Cortex-X925"),
    ("0x41", "0xd87", "Cortex-A725"),
    ("0x51", "0x001", "Oryon"),
];

/// `10x Cortex-X925 + 10x Cortex-A725` from the per-processor `CPU part` lines, biggest cluster
/// first; `None` when a part is unknown (better no model than a wrong one).
fn arm_core_mix(parts: &[(String, String)]) -> Option<String> {
    let mut counts: Vec<(&str, u32)> = Vec::new();
    for (imp, part) in parts {
        let name = ARM_PARTS
            .iter()
            .find(|(i, p, _)| i.eq_ignore_ascii_case(imp) && p.eq_ignore_ascii_case(part))
            .map(|(_, _, n)| *n)?;
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    if counts.is_empty() {
        return None;
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Some(
        counts
            .iter()
            .map(|(n, c)| format!("{c}x {n}"))
            .collect::<Vec<_>>()
            .join(" + "),
    )
}

/// Parses `/proc/cpuinfo` text (x86 or arm64 layout).
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut out = CpuInfo::default();
    let mut core_ids = BTreeSet::new();
    let mut physical_id = String::new();
    let mut board_model = None;
    let mut implementer = String::new();
    let mut parts: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "processor" => {
                out.threads += 1;
                physical_id.clear();
            }
            "model name" if out.model.is_none() && !value.is_empty() => {
                out.model = Some(value.to_owned());
            }
            "Hardware" | "Model" if board_model.is_none() && !value.is_empty() => {
                board_model = Some(value.to_owned());
            }
            "physical id" => value.clone_into(&mut physical_id),
            "core id" => {
                core_ids.insert((physical_id.clone(), value.to_owned()));
            }
            "flags" if out.flags.is_empty() => {
                out.flags = value.split_whitespace().map(str::to_owned).collect();
                let long_mode = out.flags.iter().any(|f| f == "lm");
                out.arch = Some(if long_mode { "x86_64" } else { "x86" }.to_owned());
            }
            "CPU implementer" => value.clone_into(&mut implementer),
            "CPU part" => parts.push((implementer.clone(), value.to_owned())),
            "Features" if out.flags.is_empty() => {
                out.flags = value.split_whitespace().map(str::to_owned).collect();
            }
            "CPU architecture" if out.arch.is_none() => {
                let arch = if value == "8" || value.starts_with("AArch64") {
                    "aarch64"
                } else {
                    "arm"
                };
                out.arch = Some(arch.to_owned());
            }
            _ => {}
        }
    }
    if out.model.is_none() {
        // Only when every processor listed its part: a partial list would miscount clusters.
        let complete = u32::try_from(parts.len()).is_ok_and(|n| n == out.threads);
        out.model = board_model.or_else(|| complete.then(|| arm_core_mix(&parts)).flatten());
    }
    if !core_ids.is_empty() {
        out.cores = Some(core_ids.len() as u32);
    }
    out
}

/// The inference-relevant features named by cpuinfo flags, sorted.
pub fn features_from_flags(arch: &str, flags: &[String]) -> Vec<String> {
    let has = |f: &str| flags.iter().any(|x| x == f);
    let table = match arch {
        "x86_64" | "x86" => X86_FLAGS,
        "aarch64" => ARM_FLAGS,
        _ => &[],
    };
    let mut out: Vec<String> = table
        .iter()
        .filter(|(flag, _)| has(flag))
        .map(|(_, name)| (*name).to_owned())
        .collect();
    if arch == "aarch64" && has("fphp") && has("asimdhp") {
        out.push("fp16".to_owned());
    }
    out.sort();
    out
}

/// `arm64` (macOS, Windows) → `aarch64`, `amd64` → `x86_64`; others unchanged.
pub fn normalize_arch(arch: &str) -> String {
    match arch.trim() {
        "arm64" | "ARM64" => "aarch64".to_owned(),
        "amd64" | "AMD64" | "x64" => "x86_64".to_owned(),
        other => other.to_owned(),
    }
}

/// Features of the CPU this process runs on, by runtime CPUID/HWCAP detection.
fn host_features() -> Vec<String> {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    let detected = {
        use std::arch::is_x86_feature_detected as has;
        [
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("f16c", has!("f16c")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
            ("avx512vnni", has!("avx512vnni")),
            ("avxvnni", has!("avxvnni")),
        ]
    };
    #[cfg(target_arch = "aarch64")]
    let detected = {
        use std::arch::is_aarch64_feature_detected as has;
        [
            ("neon", has!("neon")),
            ("dotprod", has!("dotprod")),
            ("i8mm", has!("i8mm")),
            ("sve", has!("sve")),
            ("fp16", has!("fp16")),
        ]
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    let detected: [(&str, bool); 0] = [];
    let mut out: Vec<String> = detected
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    out.sort();
    out
}

/// The CPU: the host's through sysinfo and CPUID, or a fixture's through its `proc/cpuinfo`.
pub(crate) fn probe(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Cpu {
    let mut cpu = if root.is_host() {
        host_cpu(root, issues)
    } else {
        sysroot_cpu(root, issues)
    };
    if let Some(quota) = cgroup_cpu_quota(root, issues) {
        cpu.threads = cpu.threads.min(quota).max(1);
        cpu.cores = cpu.cores.min(cpu.threads);
    }
    cpu
}

/// Parses cgroup v2 `cpu.max` (`"400000 100000"` → 4 CPUs, rounded up; `"max 100000"` → none).
pub fn parse_cpu_max(text: &str) -> Option<u32> {
    let mut parts = text.split_whitespace();
    let quota: u64 = parts.next()?.parse().ok()?;
    let period: u64 = parts.next().map_or(Some(100_000), |p| p.parse().ok())?;
    if period == 0 || quota == 0 {
        return None;
    }
    u32::try_from(quota.div_ceil(period)).ok()
}

/// The CPU limit of this cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`),
/// in whole CPUs; `None` when unlimited or absent. A container limited to 4 CPUs on a 64-core
/// host must plan for 4.
fn cgroup_cpu_quota(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Option<u32> {
    match root.read_to_string("sys/fs/cgroup/cpu.max") {
        Ok(text) if text.trim_start().starts_with("max") => return None,
        Ok(text) => {
            let q = parse_cpu_max(&text);
            if q.is_none() {
                issues.push(issue::new(
                    "sys/fs/cgroup/cpu.max",
                    format!("cannot parse `{}`", text.trim()),
                ));
            }
            return q;
        }
        Err(e) if !e.is_not_found() => issues.push(issue::from_read(&e)),
        Err(_) => {}
    }
    let quota = root
        .read_to_string("sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        .ok()?;
    let quota: i64 = quota.trim().parse().ok()?;
    if quota <= 0 {
        return None;
    }
    let period = root
        .read_to_string("sys/fs/cgroup/cpu/cpu.cfs_period_us")
        .ok()
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(100_000);
    parse_cpu_max(&format!("{quota} {period}"))
}

fn host_cpu(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Cpu {
    use sysinfo::{CpuRefreshKind, RefreshKind, System};
    let (threads, brand) = match System::new_with_specifics(
        RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()),
    ) {
        Ok(sys) => (
            sys.cpus().len() as u32,
            sys.cpus()
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
        ),
        Err(e) => {
            issues.push(issue::new("sysinfo", format!("cannot list cpus: {e}")));
            (0, String::new())
        }
    };
    // arm64 Linux often has no brand string; a board name from cpuinfo is better than nothing.
    let model = if brand.is_empty() {
        root.read_to_string("proc/cpuinfo")
            .ok()
            .and_then(|t| parse_cpuinfo(&t).model)
            .unwrap_or_default()
    } else {
        brand
    };
    let threads = threads.max(1);
    let cores = System::physical_core_count().map_or(threads, |n| n as u32);
    Cpu {
        arch: normalize_arch(&System::cpu_arch()),
        model,
        cores: cores.clamp(1, threads),
        threads,
        features: with_cpuinfo_only_flags(host_features(), root),
    }
}

/// Features `std::arch` cannot detect on stable Rust (AMX), taken from the kernel's cpuinfo.
fn with_cpuinfo_only_flags(mut features: Vec<String>, root: &SysRoot) -> Vec<String> {
    let amx = root
        .read_to_string("proc/cpuinfo")
        .ok()
        .is_some_and(|t| parse_cpuinfo(&t).flags.iter().any(|f| f == "amx_int8"));
    if amx && !features.iter().any(|f| f == "amx") {
        features.push("amx".to_owned());
        features.sort();
    }
    features
}

fn sysroot_cpu(root: &SysRoot, issues: &mut Vec<ProbeIssue>) -> Cpu {
    let info = match root.read_to_string("proc/cpuinfo") {
        Ok(text) => parse_cpuinfo(&text),
        Err(e) => {
            issues.push(issue::from_read(&e));
            CpuInfo::default()
        }
    };
    // The kernel's own answer (`uname -m`), when the tree has it, beats guessing from keys.
    let arch = root
        .read_trimmed("proc/sys/kernel/arch")
        .ok()
        .flatten()
        .or(info.arch)
        .map(|a| normalize_arch(&a))
        .unwrap_or_default();
    if arch.is_empty() && info.threads > 0 {
        issues.push(issue::new(
            "proc/cpuinfo",
            "cannot tell the cpu architecture",
        ));
    }
    let threads = info.threads.max(1);
    Cpu {
        features: features_from_flags(&arch, &info.flags),
        arch,
        model: info.model.unwrap_or_default(),
        cores: info.cores.unwrap_or(threads).clamp(1, threads),
        threads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First processor of the build VM (KVM, 2 vCPUs; Sapphire Rapids class Xeon).
    const VM_CPUINFO: &str = "\
processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 167
model name	: Intel(R) Xeon(R) Processor
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 2
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities

processor	: 1
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Processor
physical id	: 0
core id		: 1
flags		: fpu lm avx

";

    /// An Ampere/Neoverse-N1 style arm64 cpuinfo (illustrative), two cores.
    const ARM_CPUINFO: &str = "\
processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1

processor	: 1
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer	: 0x41
CPU architecture: 8
";

    #[test]
    fn x86_cpuinfo_gives_model_threads_cores_and_features() {
        let info = parse_cpuinfo(VM_CPUINFO);
        assert_eq!(info.model.as_deref(), Some("Intel(R) Xeon(R) Processor"));
        assert_eq!((info.threads, info.cores), (2, Some(2)));
        assert_eq!(info.arch.as_deref(), Some("x86_64"));
        assert_eq!(
            features_from_flags("x86_64", &info.flags),
            [
                "amx",
                "avx",
                "avx2",
                "avx512bw",
                "avx512f",
                "avx512vnni",
                "avxvnni",
                "f16c",
                "fma"
            ]
        );
    }

    #[test]
    fn arm_cpuinfo_maps_features_to_rust_names() {
        let info = parse_cpuinfo(ARM_CPUINFO);
        assert_eq!(info.model, None);
        assert_eq!((info.threads, info.cores), (2, None));
        assert_eq!(info.arch.as_deref(), Some("aarch64"));
        assert_eq!(
            features_from_flags("aarch64", &info.flags),
            ["dotprod", "fp16", "neon"]
        );
    }

    #[test]
    fn hyperthreads_on_two_sockets_count_as_cores_once() {
        // Two sockets, two cores each, one of them listed with its hyperthread sibling.
        let text = "\
processor : 0\nphysical id : 0\ncore id : 0\n\n\
processor : 1\nphysical id : 0\ncore id : 0\n\n\
processor : 2\nphysical id : 1\ncore id : 0\n\n\
processor : 3\nphysical id : 1\ncore id : 0\n\n\
processor : 4\nphysical id : 0\ncore id : 1\n\n\
processor : 5\nphysical id : 1\ncore id : 1\n\n";
        let info = parse_cpuinfo(text);
        assert_eq!((info.threads, info.cores), (6, Some(4)));
    }

    #[test]
    fn arch_names_are_normalized() {
        assert_eq!(normalize_arch("arm64"), "aarch64");
        assert_eq!(normalize_arch("AMD64"), "x86_64");
        assert_eq!(normalize_arch("x86_64\n"), "x86_64");
    }

    #[test]
    fn a_fixture_tree_never_reports_the_host_cpu() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/cpuinfo"), ARM_CPUINFO).unwrap();
        let mut issues = Vec::new();
        let cpu = probe(&SysRoot::new(dir.path()), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(cpu.arch, "aarch64");
        assert_eq!((cpu.cores, cpu.threads), (2, 2));
        assert_eq!(cpu.features, ["dotprod", "fp16", "neon"]);
    }

    #[test]
    fn a_fixture_without_cpuinfo_is_an_issue() {
        let dir = tempfile::tempdir().unwrap();
        let mut issues = Vec::new();
        let cpu = probe(&SysRoot::new(dir.path()), &mut issues);
        assert_eq!(cpu.arch, "");
        assert!(cpu.features.is_empty());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].source, "proc/cpuinfo");
    }

    #[test]
    fn the_host_reports_something() {
        let mut issues = Vec::new();
        let cpu = probe(&SysRoot::host(), &mut issues);
        assert!(cpu.threads >= 1 && cpu.cores >= 1 && cpu.cores <= cpu.threads);
        assert!(!cpu.arch.is_empty());
        let mut sorted = cpu.features.clone();
        sorted.sort();
        assert_eq!(sorted, cpu.features);
    }

    #[test]
    fn cgroup_cpu_max_is_whole_cpus_rounded_up() {
        assert_eq!(parse_cpu_max("400000 100000"), Some(4));
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("50000"), Some(1));
        assert_eq!(parse_cpu_max("max 100000"), None);
        assert_eq!(parse_cpu_max("lots"), None);
        assert_eq!(parse_cpu_max("0 100000"), None);
    }

    #[test]
    fn amx_is_named_from_cpuinfo_flags() {
        let flags: Vec<String> = ["avx2", "amx_tile", "amx_int8", "amx_bf16"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(features_from_flags("x86_64", &flags), vec!["amx", "avx2"]);
    }

    #[test]
    fn arm_cores_are_named_from_cpu_part_lines() {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (i, part) in ["0xd85", "0xd85", "0xd87"].iter().enumerate() {
            let _ = write!(
                text,
                "processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: {part}\n\n"
            );
        }
        assert_eq!(
            parse_cpuinfo(&text).model.as_deref(),
            Some("2x Cortex-X925 + 1x Cortex-A725")
        );
        let unknown = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xfff\n";
        assert_eq!(parse_cpuinfo(unknown).model, None);
    }
}
