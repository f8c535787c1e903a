//! `fleetfit-agent doctor`: probe this device (or a sysroot) through a recording root and print
//! every raw source the probe read — file contents (cut to 64 KiB), read errors, directory
//! listings, symlink targets, host command outputs — with the profile they gave, for bug reports.

use crate::{DoctorArgs, DoctorFormat};
use anyhow::Context;
use fleetfit_probe::sysroot::{ReadOutcome, SourceRead};
use fleetfit_probe::{ProbeOptions, SysRoot};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Write as _;

/// Runs the command. A missing or unreadable sysroot is not an error here: what the probe saw
/// (an issue naming it) is exactly what a bug report needs.
pub fn run(args: &DoctorArgs) -> anyhow::Result<()> {
    let root = SysRoot::recording(&args.sysroot);
    let opts = ProbeOptions {
        sysroot: args.sysroot.clone(),
        models_dir: None,
    };
    let profile = fleetfit_probe::probe_root(&opts, &root);
    let reads = root.reads();
    let text = match args.format {
        DoctorFormat::Text => render_text(&profile, &reads),
        DoctorFormat::Json => render_json(&profile, &reads)?,
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// `{"profile": …, "sources": [{"path": …, "content"|"error"|"link"|"entries": …}]}`, the
/// profile with its fields in contract order (as `probe --format json` prints it), one source
/// per line, `path` first.
pub fn render_json(
    profile: &fleetfit_core::profile::DeviceProfile,
    reads: &[SourceRead],
) -> anyhow::Result<String> {
    let str_json = |s: &str| Value::String(s.to_owned()).to_string();
    let profile = serde_json::to_string_pretty(profile).context("cannot serialize profile")?;
    let mut out = String::from("{\n  \"profile\": ");
    out.push_str(&profile.replace('\n', "\n  "));
    out.push_str(",\n  \"sources\": [");
    for (i, r) in reads.iter().enumerate() {
        let rest = match &r.outcome {
            ReadOutcome::Content { text, truncated } => {
                let cut = if *truncated {
                    ", \"truncated\": true"
                } else {
                    ""
                };
                format!("\"content\": {}{cut}", str_json(text))
            }
            ReadOutcome::Error(e) => format!("\"error\": {}", str_json(e)),
            ReadOutcome::Link(t) => format!("\"link\": {}", str_json(t)),
            ReadOutcome::Listing(names) => format!("\"entries\": {}", json!(names)),
        };
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            out,
            "{sep}\n    {{\"path\": {}, {rest}}}",
            str_json(&r.path)
        );
    }
    out.push_str(if reads.is_empty() {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    });
    Ok(out)
}

/// The profile summary, then each source: its path, then what it held, indented four spaces.
pub fn render_text(
    profile: &fleetfit_core::profile::DeviceProfile,
    reads: &[SourceRead],
) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "== profile");
    s.push_str(&crate::probe_cmd::render_text(profile));
    let _ = writeln!(s, "\n== sources ({} read)", reads.len());
    for r in reads {
        let _ = writeln!(s, "{}", r.path);
        match &r.outcome {
            ReadOutcome::Content { text, truncated } => {
                if text.is_empty() {
                    let _ = writeln!(s, "    (empty)");
                }
                for line in text.lines() {
                    let _ = writeln!(s, "    {line}");
                }
                if !text.is_empty() && !text.ends_with('\n') {
                    let _ = writeln!(s, "    (no trailing newline)");
                }
                if *truncated {
                    let _ = writeln!(s, "    (cut at 64 KiB)");
                }
            }
            ReadOutcome::Error(e) => {
                let _ = writeln!(s, "    error: {e}");
            }
            ReadOutcome::Link(t) => {
                let _ = writeln!(s, "    -> {t}");
            }
            ReadOutcome::Listing(names) => {
                let _ = writeln!(s, "    [{}]", names.join(", "));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("proc")).unwrap();
        std::fs::create_dir_all(r.join("sys/class/drm/card0")).unwrap();
        std::fs::write(
            r.join("proc/meminfo"),
            "MemTotal: 1000 kB\nMemFree: 10 kB\n",
        )
        .unwrap();
        std::fs::write(r.join("proc/cpuinfo"), "processor : 0\n").unwrap();
        std::os::unix::fs::symlink("../../missing", r.join("sys/class/drm/card0/device")).unwrap();
        dir
    }

    #[test]
    fn text_lists_each_source_with_its_content_indented() {
        let dir = fixture();
        let root = SysRoot::recording(dir.path());
        let opts = ProbeOptions {
            sysroot: dir.path().to_path_buf(),
            models_dir: None,
        };
        let profile = fleetfit_probe::probe_root(&opts, &root);
        let text = render_text(&profile, &root.reads());
        assert!(
            text.contains("proc/meminfo\n    MemTotal: 1000 kB\n"),
            "{text}"
        );
        assert!(text.contains("etc/machine-id\n    error: "), "{text}");
        assert!(text.contains("sys/class/drm\n    [card0]\n"), "{text}");
    }

    #[test]
    fn json_has_the_profile_and_one_entry_per_source() {
        let dir = fixture();
        let root = SysRoot::recording(dir.path());
        let opts = ProbeOptions {
            sysroot: dir.path().to_path_buf(),
            models_dir: None,
        };
        let profile = fleetfit_probe::probe_root(&opts, &root);
        let text = render_json(&profile, &root.reads()).unwrap();
        assert!(
            text.starts_with("{\n  \"profile\": {\n    \"schema\": "),
            "{text}"
        );
        assert!(text.ends_with("\n  ]\n}\n"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let empty: Value = serde_json::from_str(&render_json(&profile, &[]).unwrap()).unwrap();
        assert_eq!(empty["sources"], json!([]));
        assert_eq!(v["profile"]["memory"]["total_bytes"], 1_024_000);
        let sources = v["sources"].as_array().unwrap();
        let meminfo = sources
            .iter()
            .find(|s| s["path"] == "proc/meminfo")
            .unwrap();
        assert_eq!(meminfo["content"], "MemTotal: 1000 kB\nMemFree: 10 kB\n");
        assert!(sources.iter().any(|s| s["error"].is_string()));
        assert!(sources.iter().any(|s| s["entries"].is_array()));
    }

    #[test]
    fn doctor_on_a_missing_sysroot_still_succeeds() {
        let args = DoctorArgs {
            sysroot: "/definitely/not/here".into(),
            format: DoctorFormat::Json,
        };
        assert!(run(&args).is_ok());
    }
}
