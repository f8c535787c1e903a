//! `fleetfit-agent run`: the daemon. Enrolls with the control plane once (the credential is kept
//! in the state dir), then probes, reports, fetches its plan, applies it and heartbeats until
//! SIGTERM/SIGINT. See `fleetfit_deploy::daemon` for the loop.

use crate::RunArgs;
use crate::apply_cmd::{fetch_config, state_dir};
use anyhow::{Context as _, bail};
use fleetfit_deploy::ApplyOptions;
use fleetfit_deploy::daemon::{self, DaemonOptions};
use fleetfit_deploy::smoke::SmokeCommand;
use std::process::ExitCode;
use std::time::Duration;

/// `10`, `10s`, `500ms`, `2m`, `1h` → a duration (the core's one parser).
pub use fleetfit_core::units::parse_duration;

/// Runs the daemon until a signal.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let state_dir = state_dir(args.state_dir.as_deref());
    let enroll_token = match (&args.enroll_token, &args.enroll_token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the enrollment token `{}`", f.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => None,
    };
    if enroll_token.as_deref() == Some("") {
        bail!("the enrollment token is empty");
    }
    let opts = DaemonOptions {
        server: args.server.clone(),
        enroll_token,
        sysroot: args.sysroot.clone(),
        interval: args.interval,
        max_backoff: args.max_backoff,
        profile_refresh: Duration::from_mins(15),
        retry_failed_after: args.retry_failed_after,
        role: args.role.clone(),
        once: args.once,
        apply: ApplyOptions {
            state_dir: state_dir.clone(),
            fetch: fetch_config(args.models_dir.as_deref(), &state_dir),
            smoke: SmokeCommand::this_exe(Duration::from_mins(15))
                .context("cannot find this executable for the smoke test")?,
            allow_smoke_skipped: args.allow_smoke_skipped,
            force: false,
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        daemon::log(&format!(
            "starting: server {}, state dir {}",
            opts.server,
            opts.apply.state_dir.display()
        ));
        daemon::run(opts, shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
