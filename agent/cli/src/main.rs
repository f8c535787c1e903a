//! `fleetfit-agent`: the device agent's command line. This file holds only the clap types and
//! the exit-code mapping; each command lives in its own file and returns `anyhow::Result`.

mod doctor_cmd;
mod probe_cmd;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error: could not compute (unreadable sysroot, I/O, internal)
  2  usage error (bad flags or arguments)";

/// The fleetfit device agent.
#[derive(Debug, Parser)]
#[command(
    name = "fleetfit-agent",
    version,
    about = "The fleetfit device agent: probes this device and reports what it can run.",
    long_about = "The fleetfit device agent: probes this device's CPU, memory, GPUs, NPUs and \
                  storage into a DeviceProfile (schema `fleetfit/device-profile/v1`), the input \
                  of `fleetfit plan --fleet`.",
    after_help = EXIT_CODES,
    after_long_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print this device's profile (CPU, memory, GPUs, NPUs, storage).
    #[command(
        long_about = "Print this device's profile: CPU, memory, GPUs, NPUs and free storage, as \
                      the DeviceProfile JSON that `fleetfit plan --fleet` reads (one file per \
                      device). Anything that cannot be read is listed under `issues`; the probe \
                      itself still succeeds.",
        after_help = EXIT_CODES,
        after_long_help = EXIT_CODES
    )]
    Probe(ProbeArgs),

    /// Dump every raw source the probe read (files, listings, links, commands), for bug reports.
    #[command(
        long_about = "Probe this device (or a sysroot) and print, besides the profile, every raw \
                      source the probe read: file contents (cut to 64 KiB), read errors, \
                      directory listings, symlink targets and platform command outputs. Attach \
                      the output to a bug report about a wrong profile.",
        after_help = EXIT_CODES,
        after_long_help = EXIT_CODES
    )]
    Doctor(DoctorArgs),
}

/// Flags of `fleetfit-agent doctor`.
#[derive(Debug, Args)]
struct DoctorArgs {
    /// Read every sysfs/procfs/etc file under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
}

/// How `doctor` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DoctorFormat {
    /// Each source's path, then its content indented.
    Text,
    /// `{"profile": …, "sources": [{"path": …, "content"|"error"|"link"|"entries": …}]}`.
    Json,
}

/// Flags of `fleetfit-agent probe`.
#[derive(Debug, Args)]
struct ProbeArgs {
    /// Read every sysfs/procfs/etc file under DIR instead of `/` (a mounted host root, or a
    /// fixture tree). Live system queries are made only when DIR is `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,

    /// Where models are stored, for the free-space figure [default: the Hugging Face hub cache
    /// on this host].
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,

    /// Also measure system memory bandwidth (single-thread copy of a 256 MiB buffer, under a
    /// second) into `memory.bandwidth_gbps`.
    #[arg(long)]
    measure_bandwidth: bool,
}

/// How a profile is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Pretty JSON, the DeviceProfile contract other tools read.
    Json,
    /// The same fields as YAML.
    Yaml,
    /// A short summary for people.
    Text,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Probe(args) => probe_cmd::run(args),
        Command::Doctor(args) => doctor_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetfit-agent: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn probe_defaults_to_json_on_the_host_root() {
        let cli = Cli::try_parse_from(["fleetfit-agent", "probe"]).unwrap();
        let Command::Probe(args) = cli.command else {
            panic!("not probe");
        };
        assert_eq!(args.format, Format::Json);
        assert_eq!(args.sysroot, PathBuf::from("/"));
        assert_eq!(args.models_dir, None);
        assert!(!args.measure_bandwidth);
    }

    #[test]
    fn doctor_defaults_to_text_and_takes_a_sysroot() {
        let cli = Cli::try_parse_from([
            "fleetfit-agent",
            "doctor",
            "--sysroot",
            "/x",
            "--format",
            "json",
        ])
        .unwrap();
        let Command::Doctor(args) = cli.command else {
            panic!("not doctor");
        };
        assert_eq!(args.format, DoctorFormat::Json);
        assert_eq!(args.sysroot, PathBuf::from("/x"));
        let cli = Cli::try_parse_from(["fleetfit-agent", "doctor"]).unwrap();
        let Command::Doctor(args) = cli.command else {
            panic!("not doctor");
        };
        assert_eq!(args.format, DoctorFormat::Text);
        let cli = Cli::try_parse_from(["fleetfit-agent", "probe", "--measure-bandwidth"]).unwrap();
        let Command::Probe(args) = cli.command else {
            panic!("not probe");
        };
        assert!(args.measure_bandwidth);
    }

    #[test]
    fn an_unknown_format_is_a_usage_error() {
        let err = Cli::try_parse_from(["fleetfit-agent", "probe", "--format", "xml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
