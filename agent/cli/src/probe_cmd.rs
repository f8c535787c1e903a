//! `fleetfit-agent probe`: probe this device (or a sysroot) and print its DeviceProfile to
//! stdout as JSON, YAML or a short text summary. Probe problems are data (`issues`), not errors;
//! only an unusable `--sysroot` or a failed write is.

use crate::{Format, ProbeArgs};
use anyhow::{Context, bail};
use fleetfit_core::Bytes;
use fleetfit_core::profile::{DeviceProfile, ProbeIssue};
use fleetfit_probe::ProbeOptions;
use std::fmt::Write as _;
use std::io::Write as _;

/// Runs the command.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let meta = std::fs::metadata(&args.sysroot)
        .with_context(|| format!("cannot use sysroot `{}`", args.sysroot.display()))?;
    if !meta.is_dir() {
        bail!("sysroot `{}` is not a directory", args.sysroot.display());
    }
    let mut profile = fleetfit_probe::probe(&ProbeOptions {
        sysroot: args.sysroot.clone(),
        models_dir: args.models_dir.clone(),
    });
    if args.measure_bandwidth {
        measure_bandwidth(&mut profile, &args.sysroot);
    }
    let text = render(&profile, args.format)?;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `fleetfit-agent probe | head` closing the pipe early is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// Puts this machine's measured memory bandwidth in the profile: only when probing the host
/// itself, as a fixture's profile must never carry the host's figures.
fn measure_bandwidth(profile: &mut DeviceProfile, sysroot: &std::path::Path) {
    use fleetfit_probe::bandwidth::{DEFAULT_BUDGET, DEFAULT_BUFFER_BYTES, measure_copy_gbps};
    if !fleetfit_probe::SysRoot::new(sysroot).is_host() {
        profile.issues.push(ProbeIssue {
            source: "bandwidth".to_owned(),
            message: "not measured: --sysroot is not this host".to_owned(),
        });
        return;
    }
    profile.memory.bandwidth_gbps = measure_copy_gbps(DEFAULT_BUFFER_BYTES, DEFAULT_BUDGET);
    if profile.memory.bandwidth_gbps.is_none() {
        profile.issues.push(ProbeIssue {
            source: "bandwidth".to_owned(),
            message: "the copy took no measurable time".to_owned(),
        });
    }
}

/// The profile in `format`, ending with a newline.
fn render(profile: &DeviceProfile, format: Format) -> anyhow::Result<String> {
    let mut text = match format {
        Format::Json => {
            serde_json::to_string_pretty(profile).context("cannot serialize profile as json")?
        }
        Format::Yaml => {
            serde_saphyr::to_string(profile).context("cannot serialize profile as yaml")?
        }
        Format::Text => render_text(profile),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", Bytes(bytes).gib())
}

/// A short summary for people: one line per fact, one per GPU, NPU and issue.
pub fn render_text(p: &DeviceProfile) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let mut line = |key: &str, value: String| {
        let _ = writeln!(s, "{key:<9} {value}");
    };
    line(
        "id",
        if p.id.is_empty() {
            "unknown".to_owned()
        } else {
            p.id.clone()
        },
    );
    if !p.hostname.is_empty() && p.hostname != p.id {
        line("hostname", p.hostname.clone());
    }
    if let Some(class) = &p.class {
        line("class", class.clone());
    }
    for (k, v) in &p.labels {
        line("label", format!("{k}={v}"));
    }
    let os = if p.os.version.is_empty() {
        p.os.kind.clone()
    } else {
        format!("{} ({})", p.os.kind, p.os.version)
    };
    line("os", os);
    let model = if p.cpu.model.is_empty() {
        "unknown cpu"
    } else {
        &p.cpu.model
    };
    let arch = if p.cpu.arch.is_empty() {
        String::new()
    } else {
        format!("{}, ", p.cpu.arch)
    };
    line(
        "cpu",
        format!(
            "{model}, {arch}{} cores / {} threads",
            p.cpu.cores, p.cpu.threads
        ),
    );
    if !p.cpu.features.is_empty() {
        line("features", p.cpu.features.join(" "));
    }
    line(
        "memory",
        format!(
            "{} total, {} available",
            gib(p.memory.total_bytes),
            gib(p.memory.available_bytes)
        ),
    );
    if p.gpus.is_empty() {
        line("gpu", "none".to_owned());
    }
    for g in &p.gpus {
        let memory = match (g.memory_total_bytes, g.memory_free_bytes) {
            (Some(t), Some(f)) => format!("{} ({} free)", gib(t), gib(f)),
            (Some(t), None) => gib(t),
            (None, _) if g.unified => "shares system memory".to_owned(),
            (None, _) => "memory unknown".to_owned(),
        };
        let mut facts = vec![g.vendor.as_str().to_owned(), memory];
        if g.unified && g.memory_total_bytes.is_some() {
            facts.push("unified".to_owned());
        }
        if let Some(cc) = &g.compute_capability {
            facts.push(format!("cc {cc}"));
        }
        if !g.driver.is_empty() {
            facts.push(format!("driver {}", g.driver));
        }
        if !g.source.is_empty() {
            facts.push(format!("via {}", g.source));
        }
        line("gpu", format!("{}: {}", g.name, facts.join(", ")));
    }
    for n in &p.npus {
        let mut facts = vec![n.vendor.as_str().to_owned()];
        if let Some(tops) = n.tops {
            facts.push(format!("{tops} TOPS"));
        }
        if !n.driver.is_empty() {
            facts.push(format!("driver {}", n.driver));
        }
        line("npu", format!("{}: {}", n.name, facts.join(", ")));
    }
    if let Some(st) = &p.storage {
        line(
            "storage",
            format!("{}: {} free", st.models_dir, gib(st.free_bytes)),
        );
    }
    if p.issues.is_empty() {
        line("issues", "none".to_owned());
    }
    for i in &p.issues {
        line("issue", format!("{}: {}", i.source, i.message));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetfit_core::profile::{
        Cpu, Gpu, GpuVendor, Memory, Npu, NpuVendor, Os, PROFILE_SCHEMA, Storage,
    };

    fn spark() -> DeviceProfile {
        DeviceProfile {
            schema: PROFILE_SCHEMA.to_owned(),
            id: "dgx-spark".to_owned(),
            hostname: "spark-01".to_owned(),
            labels: [("dept".to_owned(), "research".to_owned())].into(),
            class: Some("dgx-spark".to_owned()),
            os: Os {
                kind: "linux".to_owned(),
                version: "Ubuntu 24.04.3 LTS".to_owned(),
            },
            cpu: Cpu {
                arch: "aarch64".to_owned(),
                model: "NVIDIA GB10".to_owned(),
                cores: 20,
                threads: 20,
                features: vec!["neon".to_owned(), "sve".to_owned()],
            },
            memory: Memory {
                total_bytes: 130_663_165_952,
                available_bytes: 121_411_960_832,
                bandwidth_gbps: None,
            },
            gpus: vec![Gpu {
                unified: true,
                driver: "580.126.09".to_owned(),
                source: "nvml".to_owned(),
                compute_capability: Some("12.1".to_owned()),
                ..Gpu::new(GpuVendor::Nvidia, "NVIDIA GB10")
            }],
            npus: vec![Npu {
                vendor: NpuVendor::Intel,
                name: "Intel AI Boost".to_owned(),
                driver: "intel_vpu".to_owned(),
                tops: Some(48.0),
            }],
            storage: Some(Storage {
                models_dir: "/srv/models".to_owned(),
                free_bytes: 1 << 40,
            }),
            issues: vec![ProbeIssue {
                source: "nvml".to_owned(),
                message: "memory_info not supported".to_owned(),
            }],
        }
    }

    #[test]
    fn text_summary_has_one_line_per_fact() {
        let text = render_text(&spark());
        let want = "\
id        dgx-spark
hostname  spark-01
class     dgx-spark
label     dept=research
os        linux (Ubuntu 24.04.3 LTS)
cpu       NVIDIA GB10, aarch64, 20 cores / 20 threads
features  neon sve
memory    121.7 GiB total, 113.1 GiB available
gpu       NVIDIA GB10: nvidia, shares system memory, cc 12.1, driver 580.126.09, via nvml
npu       Intel AI Boost: intel, 48 TOPS, driver intel_vpu
storage   /srv/models: 1024.0 GiB free
issue     nvml: memory_info not supported
";
        assert_eq!(text, want);
    }

    #[test]
    fn json_and_yaml_round_trip_and_end_with_a_newline() {
        let p = spark();
        let json = render(&p, Format::Json).unwrap();
        assert!(json.ends_with("}\n"));
        assert_eq!(serde_json::from_str::<DeviceProfile>(&json).unwrap(), p);
        let yaml = render(&p, Format::Yaml).unwrap();
        assert!(yaml.ends_with('\n'));
        assert!(
            yaml.contains("schema: fleetfit/device-profile/v1"),
            "{yaml}"
        );
        assert_eq!(serde_saphyr::from_str::<DeviceProfile>(&yaml).unwrap(), p);
    }

    #[test]
    fn bandwidth_is_measured_on_the_host_only() {
        let mut p = spark();
        measure_bandwidth(&mut p, std::path::Path::new("/srv/fixture"));
        assert_eq!(p.memory.bandwidth_gbps, None);
        assert_eq!(p.issues.last().unwrap().source, "bandwidth");
    }

    #[test]
    fn a_missing_sysroot_is_an_error_naming_it() {
        let args = ProbeArgs {
            sysroot: "/definitely/not/here".into(),
            models_dir: None,
            format: Format::Json,
            measure_bandwidth: false,
        };
        let err = format!("{:#}", run(&args).unwrap_err());
        assert!(
            err.starts_with("cannot use sysroot `/definitely/not/here`: "),
            "{err}"
        );
    }
}
