//! `fleetfit schema`: JSON Schemas of the file formats.

use crate::Failure;
use clap::Args;
use std::process::ExitCode;

/// `fleetfit schema` arguments.
#[derive(Args, Debug)]
pub struct SchemaArgs {}

/// Runs the command.
pub fn run(_args: &SchemaArgs) -> Result<ExitCode, Failure> {
    Err(anyhow::anyhow!("`fleetfit schema` is being built").into())
}
