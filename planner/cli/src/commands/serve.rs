//! `fleetfit serve`: run the control plane (`fleetfit-server`) with settings from flags and the
//! environment. The server itself lives in the `fleetfit-server` crate; this file only resolves
//! the flags, reads the admin token and maps the outcome to an exit code.

use crate::Failure;
use anyhow::anyhow;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `fleetfit serve` arguments.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed as
    /// `listening on ADDR` on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8700")]
    pub listen: String,
    /// The store: `sqlite://PATH` (created if missing).
    #[arg(long, value_name = "URL", default_value = "sqlite://fleetfit.db")]
    pub db: String,
    /// Catalog directory (a git checkout); reloaded on change and on SIGHUP.
    #[arg(long, value_name = "DIR")]
    pub catalog: PathBuf,
    /// Policy directory (a git checkout); reloaded on change and on SIGHUP.
    #[arg(long, value_name = "DIR")]
    pub policies: PathBuf,
    /// File holding the admin token (else env `FLEETFIT_ADMIN_TOKEN`; one is required).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A device with no call for this long is listed as stale (`90s`, `5m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub stale_after: Duration,
    /// How often the catalog and policy directories are polled for changes.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration, hide = true)]
    pub config_poll: Duration,
}

/// A clap value parser for durations (`30s`, `15m`, `24h`, `7d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    fleetfit_server::parse_duration(s)
}

/// The admin token: `--admin-token-file`, else env `FLEETFIT_ADMIN_TOKEN`.
pub fn admin_token(file: Option<&std::path::Path>) -> Result<String, Failure> {
    let token = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| anyhow!("cannot read the admin token file `{}`: {e}", f.display()))?,
        None => std::env::var("FLEETFIT_ADMIN_TOKEN").unwrap_or_default(),
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(anyhow!(
            "no admin token: pass --admin-token-file FILE or set FLEETFIT_ADMIN_TOKEN"
        )
        .into());
    }
    Ok(token)
}

/// Runs the command.
pub fn run(args: &ServeArgs) -> Result<ExitCode, Failure> {
    let admin_token = admin_token(args.admin_token_file.as_deref())?;
    fleetfit_server::init_logging();
    let opts = fleetfit_server::ServeOptions {
        listen: args.listen.clone(),
        db: args.db.clone(),
        catalog_dir: args.catalog.clone(),
        policies_dir: args.policies.clone(),
        admin_token,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        stale_after: args.stale_after,
        poll_every: args.config_poll.max(Duration::from_secs(1)),
    };
    match fleetfit_server::serve_blocking(opts) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(fleetfit_server::ServeError::InvalidConfig(diags)) => {
            eprint!("{diags}");
            if !diags.ends_with('\n') {
                eprintln!();
            }
            eprintln!("fleetfit: error: the catalog or policies do not validate");
            Ok(ExitCode::from(3))
        }
        Err(fleetfit_server::ServeError::Other(e)) => Err(Failure::Error(e)),
    }
}
