//! `fleetfit fleet status`: the live fleet from the control plane — devices by state, models in
//! use, stale devices, failed verifications with reasons — in a deterministic order. Also the
//! small admin HTTP client that `fleetfit token` shares.

use crate::Failure;
use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};
use fleetfit_core::api::FleetStatus;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the control plane is and how to authenticate as admin (shared by `token` and `fleet`).
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The control plane's base URL (`http://host:8700`); env `FLEETFIT_SERVER`.
    #[arg(long, value_name = "URL", env = "FLEETFIT_SERVER")]
    pub server: String,
    /// File holding the admin token (else env `FLEETFIT_ADMIN_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutFormat {
    Text,
    Json,
}

/// `fleetfit fleet …`.
#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Devices by state, models in use, stale devices and failed verifications.
    Status(FleetStatusArgs),
}

/// `fleetfit fleet status` arguments.
#[derive(Args, Debug)]
pub struct FleetStatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

/// An admin call: `method` on `server` + `path`, JSON body optional. Returns the body of a 2xx
/// answer; any other status is an error naming it and the server's message.
pub fn admin_call(
    server: &ServerArgs,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<String, Failure> {
    let token = crate::commands::serve::admin_token(server.admin_token_file.as_deref())?;
    let url = format!("{}{path}", server.server.trim_end_matches('/'));
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| anyhow!("http client: {e}"))?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| anyhow!("http method `{method}`: {e}"))?;
    let mut req = client.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().map_err(|e| anyhow!("`{url}`: {e}"))?;
    let status = resp.status();
    let text = resp.text().map_err(|e| anyhow!("`{url}`: {e}"))?;
    if !status.is_success() {
        let msg = serde_json::from_str::<fleetfit_core::api::ApiError>(&text)
            .map_or_else(|_| text.trim().to_owned(), |e| e.error);
        return Err(anyhow!("`{url}` answered HTTP {}: {msg}", status.as_u16()).into());
    }
    Ok(text)
}

/// Runs the command.
pub fn run(cmd: &FleetCommand) -> Result<ExitCode, Failure> {
    let FleetCommand::Status(args) = cmd;
    let text = admin_call(&args.server, "GET", "/v1/fleet/status", None)?;
    let status: FleetStatus = serde_json::from_str(&text)
        .map_err(|e| anyhow!("the server's fleet status does not parse: {e}"))?;
    match args.format {
        OutFormat::Json => {
            let s = serde_json::to_string_pretty(&status)
                .map_err(|e| anyhow!("cannot serialize: {e}"))?;
            println!("{s}");
        }
        OutFormat::Text => print!("{}", status_text(&status)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The text rendering: sections in a fixed order, entries sorted.
pub fn status_text(s: &FleetStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "devices: {}", s.devices);
    let _ = writeln!(out, "by state:");
    if s.by_state.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (state, n) in &s.by_state {
        let _ = writeln!(out, "  {state:<12} {n}");
    }
    let _ = writeln!(out, "models in use:");
    if s.models_in_use.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for (m, n) in &s.models_in_use {
        let _ = writeln!(out, "  {m:<40} {n}");
    }
    let _ = writeln!(out, "stale devices: {}", s.stale.len());
    for d in &s.stale {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(out, "failed verifications: {}", s.failed.len());
    for f in &s.failed {
        let model = f.model.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  {} ({model}): {}", f.device, f.reason);
    }
    out
}
