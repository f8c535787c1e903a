//! `fleetfit-agent`: the device agent's command line. This file holds only the clap types and
//! the exit-code mapping; each command lives in its own file and returns `anyhow::Result`.

mod apply_cmd;
mod doctor_cmd;
mod probe_cmd;
mod run_cmd;
mod verify_cmd;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (apply: the model is ready; verify: passed or skipped)
  1  error: could not compute (unreadable sysroot, I/O, internal); apply: the attempt failed
     (the previous model keeps serving); verify: the smoke test failed
  2  usage error (bad flags or arguments)
  3  invalid input: a plan, catalog or policy file failed validation
  4  apply: the plan assigns no model to this device";

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

    /// Plan, download, verify and install this device's model; report readiness.
    #[command(
        long_about = "Probe this device, plan it (the same core as `fleetfit plan`, on the \
                      embedded catalog and default policy, `--catalog`/`--policies` \
                      directories, or a `--plan` file), download the chosen artifact into the \
                      Hugging Face cache (HF_ENDPOINT, HF_TOKEN, HF_HOME; resumable, sha256 \
                      checked while downloading), run a smoke inference, and only then make it \
                      current. A failure leaves the previous model serving. The \
                      ReadinessReport goes to stdout, `<state dir>/readiness.json`, and the \
                      control plane with `--server`.",
        after_help = EXIT_CODES,
        after_long_help = EXIT_CODES
    )]
    Apply(ApplyArgs),

    /// The daemon: enroll with the control plane, then probe, report, apply plans, heartbeat.
    #[command(
        long_about = "Run as the device's daemon: enroll with `fleetfit serve` once (the \
                      credential is kept in the state dir), then loop: probe, send the profile \
                      when it changed, heartbeat, fetch the plan when it changed, apply it \
                      (download, verify, install; the current model keeps serving), report \
                      readiness. Backs off exponentially with jitter while the server is \
                      down; stops cleanly on SIGTERM (an interrupted download resumes on the \
                      next start).",
        after_help = EXIT_CODES,
        after_long_help = EXIT_CODES
    )]
    Run(RunArgs),

    /// Smoke-test a model file: load it with candle, run a prompt, check the output is finite.
    #[command(
        long_about = "Smoke-test a model: a GGUF file, a safetensors file (config.json and \
                      tokenizer.json beside it) or a snapshot directory. Checks the header \
                      (tensor extents, the metadata the loader needs), loads the model with \
                      candle, runs a prompt and greedily decodes a few tokens (or embeds a \
                      sentence), and requires finite output. Exit 0 when passed or skipped (an \
                      architecture candle cannot run; printed as SKIPPED), 1 when failed. \
                      Threads: CANDLE_NUM_THREADS / RAYON_NUM_THREADS.",
        after_help = EXIT_CODES,
        after_long_help = EXIT_CODES
    )]
    Verify(VerifyArgs),
}

/// Flags of `fleetfit-agent verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// A .gguf file, a .safetensors file, or a directory holding one.
    #[arg(value_name = "PATH")]
    path: PathBuf,

    /// Output format (json: the SmokeReport).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,

    /// Prompt [default: from the GGUF's chat template, asking for the capital of France].
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,

    /// Tokens to generate greedily (stops early at end of sequence).
    #[arg(long, value_name = "N", default_value_t = 8)]
    max_new_tokens: usize,

    /// The device id for the JSON report [default: probe this machine]. `apply` passes the id
    /// it already probed, so the smoke child does not probe again.
    #[arg(long, value_name = "ID")]
    device: Option<String>,
}

/// Flags of `fleetfit-agent run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The control plane, `http(s)://host:port`.
    #[arg(long, value_name = "URL", env = "FLEETFIT_SERVER")]
    server: String,

    /// Enrollment token from `fleetfit token create` (prefer --enroll-token-file: arguments are
    /// visible to other users in `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FLEETFIT_ENROLL_TOKEN",
        hide_env_values = true
    )]
    enroll_token: Option<String>,

    /// File holding the enrollment token.
    #[arg(long, value_name = "FILE", conflicts_with = "enroll_token")]
    enroll_token_file: Option<PathBuf>,

    /// The agent's state dir (credential, state file, reports, current-model links).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Probe under DIR instead of `/` (a fixture tree).
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,

    /// The Hugging Face hub cache to download into.
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,

    /// Heartbeat period (10s, 1m, …).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = run_cmd::parse_duration)]
    interval: std::time::Duration,

    /// Longest wait between retries while the server is unreachable.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = run_cmd::parse_duration)]
    max_backoff: std::time::Duration,

    /// Wait this long before retrying a plan whose install failed.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = run_cmd::parse_duration)]
    retry_failed_after: std::time::Duration,

    /// Which assignment to install (chat, code, embedding) [default: the plan's first].
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,

    /// Install models whose smoke inference was skipped.
    #[arg(long)]
    allow_smoke_skipped: bool,

    /// Run one cycle and exit (cron jobs, tests).
    #[arg(long)]
    once: bool,
}

/// Flags of `fleetfit-agent apply`.
#[derive(Debug, Args)]
#[allow(clippy::struct_field_names)]
struct ApplyArgs {
    /// A plan from `fleetfit plan --format json` (this device's entry is used).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["catalog", "policies"])]
    plan: Option<PathBuf>,

    /// Catalog directory [default: the embedded catalog].
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,

    /// Policy directory [default: the embedded default policy].
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,

    /// The Hugging Face hub cache to download into [default: HF_HUB_CACHE, $HF_HOME/hub, or
    /// ~/.cache/huggingface/hub].
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,

    /// The agent's state dir [default: FLEETFIT_STATE_DIR, /var/lib/fleetfit as root, else
    /// ~/.local/state/fleetfit].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Probe under DIR instead of `/` (a fixture tree).
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,

    /// Which assignment to install (chat, code, embedding) [default: the plan's first].
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,

    /// Print what would be downloaded (bytes, destination, free space after); change nothing.
    #[arg(long)]
    dry_run: bool,

    /// Output format (json: the ReadinessReport, or the dry run).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,

    /// Control plane URL: the report is sent to `{URL}/v1/devices/{id}/readiness` with the
    /// credential in `<state dir>/credential`, retried until acknowledged.
    #[arg(long, value_name = "URL")]
    server: Option<String>,

    /// Give up sending the report after this many seconds (it stays queued in the outbox).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    report_timeout_secs: u64,

    /// Kill the smoke inference after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    smoke_timeout_secs: u64,

    /// Install even when the smoke inference was skipped (an architecture candle cannot run).
    #[arg(long)]
    allow_smoke_skipped: bool,

    /// Fetch and verify again even if the planned model is already current.
    #[arg(long)]
    force: bool,

    /// Evaluate policy expiry as of DATE (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    today: Option<String>,
}

/// How `apply` and `verify` print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// For people.
    Text,
    /// The ★ JSON contract.
    Json,
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
        Command::Probe(args) => probe_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Doctor(args) => doctor_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Apply(args) => apply_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Verify(args) => verify_cmd::run(args),
    };
    match result {
        Ok(code) => code,
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
