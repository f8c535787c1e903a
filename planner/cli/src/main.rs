//! `fleetfit`: the planner command line. Each command lives in its own file under `commands/`;
//! this file holds the clap types and maps outcomes to the ★ exit codes.

mod commands;
mod inputs;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error: could not compute (I/O, internal)
  2  usage error
  3  invalid input: a catalog, policy, profile or test file failed validation,
     or `policy test` had a failing case
  4  the plan has a device with no compliant model (only with --fail-on-blocked)
  5  diff found changes (only with --detailed-exitcode)";

/// Decides which open-weight model each device should run, and explains why.
#[derive(Parser, Debug)]
#[command(name = "fleetfit", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Plan model + quantization + context + placement for devices (dry run).
    #[command(after_help = EXIT_CODES)]
    Plan(commands::plan::PlanArgs),
    /// Estimate memory (weights, KV cache, compute, overhead) for a catalog model or a GGUF file.
    #[command(after_help = EXIT_CODES)]
    Estimate(commands::estimate::EstimateArgs),
    /// Validate a catalog and policies; print every diagnostic.
    #[command(after_help = EXIT_CODES)]
    Lint(commands::lint::LintArgs),
    /// Show what a policy or catalog change does to a fleet (base vs head), grouped.
    #[command(after_help = EXIT_CODES)]
    Diff(commands::diff::DiffArgs),
    /// Policy tools: `policy test` runs policy test files.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Print or write the JSON Schemas of fleetfit's file formats.
    #[command(after_help = EXIT_CODES)]
    Schema(commands::schema::SchemaArgs),
    /// Run the control plane: enrollment, profiles, plans, readiness reports (HTTP API).
    #[command(after_help = EXIT_CODES)]
    Serve(commands::serve::ServeArgs),
    /// Enrollment tokens on the control plane: `create`, `revoke`, `list` (admin).
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// The live fleet on the control plane: `fleet status`.
    #[command(subcommand)]
    Fleet(commands::fleet::FleetCommand),
}

/// How a command ended, other than success.
#[derive(Debug)]
pub enum Failure {
    /// Bad input (exit 3): diagnostics already carry `path:line:column`.
    Invalid(fleetfit_core::Diagnostics),
    /// Could not compute (exit 1).
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Error(e.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(a) => commands::plan::run(&a),
        Command::Estimate(a) => commands::estimate::run(&a),
        Command::Lint(a) => commands::lint::run(&a),
        Command::Diff(a) => commands::diff::run(&a),
        Command::Policy(c) => commands::policy::run(&c),
        Command::Schema(a) => commands::schema::run(&a),
        Command::Serve(a) => commands::serve::run(&a),
        Command::Token(c) => commands::token::run(&c),
        Command::Fleet(c) => commands::fleet::run(&c),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Invalid(d)) => {
            eprint!("{d}");
            let n = d
                .iter()
                .filter(|x| x.severity == fleetfit_core::Severity::Error)
                .count();
            eprintln!("fleetfit: error: {n} problem(s) in the input");
            ExitCode::from(3)
        }
        Err(Failure::Error(e)) => {
            eprintln!("fleetfit: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
