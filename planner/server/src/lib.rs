//! The fleetfit control plane (`fleetfit serve`): the service agents enroll with and report to.
//! axum on tokio; a [`store::Store`] (SQLite by default) for devices, tokens, profiles and
//! readiness reports; the catalog and policies read from directories and reloaded when they
//! change; plans computed per device by the pure core. The API types are in
//! `fleetfit_core::api`; the endpoints are documented in `docs/openapi.yaml`.

pub mod auth;
pub mod config;
pub mod metrics;
pub mod routes;
pub mod store;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `fleetfit serve` settings, resolved (flags, env) by the caller.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: String,
    /// `sqlite://PATH` (created if missing).
    pub db: String,
    pub catalog_dir: PathBuf,
    pub policies_dir: PathBuf,
    /// The admin token (already read from its file or the environment).
    pub admin_token: String,
    /// `(certificate chain PEM, private key PEM)` paths: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub stale_after: Duration,
    /// How often the configuration directories are polled for changes.
    pub poll_every: Duration,
}

/// Why `serve` stopped before serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The catalog or policies do not validate (exit 3): one diagnostic per line.
    #[error("{0}")]
    InvalidConfig(String),
    /// Anything else (exit 1).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Logs to stderr (`RUST_LOG`, default `info`). Safe to call more than once.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal())
        .try_init();
}

/// Parses `90`, `500ms`, `90s`, `15m`, `24h`, `7d` into a duration (the core's one parser).
pub use fleetfit_core::units::parse_duration;

/// Runs the server until SIGINT/SIGTERM, on a runtime of its own.
pub fn serve_blocking(opts: ServeOptions) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))?;
    rt.block_on(serve(opts))
}

/// Opens the store, loads the configuration, binds, prints `listening on ADDR` (stderr) and
/// serves until SIGINT/SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    if !opts.db.starts_with("sqlite:") {
        return Err(anyhow::anyhow!(
            "`--db {}`: only `sqlite://PATH` is implemented (a PostgreSQL store would implement the same `Store` trait)",
            opts.db
        )
        .into());
    }
    let admin = auth::AdminToken::new(&opts.admin_token)
        .ok_or_else(|| anyhow::anyhow!("the admin token is empty"))?;
    let config = Arc::new(
        config::ConfigSource::open(opts.catalog_dir.clone(), opts.policies_dir.clone())
            .map_err(ServeError::InvalidConfig)?,
    );
    let store = store::SqliteStore::open(&opts.db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open `{}`: {e}", opts.db))?;
    let metrics = Arc::new(metrics::Metrics::default());
    let state = Arc::new(routes::AppState::new(
        Arc::new(store),
        Arc::clone(&config),
        Arc::clone(&metrics),
        admin,
        i64::try_from(opts.stale_after.as_secs()).unwrap_or(i64::MAX),
    ));
    let cfg = config.current();
    tracing::info!(catalog_digest = %cfg.catalog_digest, policies_digest = %cfg.policies_digest, "configuration loaded");
    let watcher = tokio::spawn(Arc::clone(&config).watch(Arc::clone(&metrics), opts.poll_every));
    let app = routes::router(state);
    let listener = std::net::TcpListener::bind(&opts.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on `{}`: {e}", opts.listen))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| anyhow::anyhow!("listener: {e}"))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| anyhow::anyhow!("listener: {e}"))?;
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    eprintln!("fleetfit serve: listening on {addr} ({scheme})");
    let result = if let Some((cert, key)) = &opts.tls {
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot load TLS certificate `{}` / key `{}`: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            h.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        axum_server::from_tcp_rustls(listener, tls)
            .handle(handle)
            .serve(app.into_make_service())
            .await
    } else {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| anyhow::anyhow!("listener: {e}"))?;
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    };
    watcher.abort();
    result.map_err(|e| anyhow::anyhow!("server: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_mins(1));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_hours(24));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_hours(48));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
