//! `fleetfit token create|revoke|list`: manage enrollment tokens on the control plane (admin
//! calls). `create` prints the token once, alone on stdout; the server keeps only its hash.

use crate::Failure;
use crate::commands::fleet::{OutFormat, ServerArgs, admin_call};
use anyhow::anyhow;
use clap::{Args, Subcommand};
use fleetfit_core::api::{CreatedToken, TokenInfo};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// `fleetfit token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an enrollment token; prints it once on stdout (details on stderr).
    Create(CreateArgs),
    /// Revoke an enrollment token by id (`tok_…`).
    Revoke(RevokeArgs),
    /// List enrollment tokens (never the secrets).
    List(ListArgs),
}

/// `fleetfit token create` arguments.
#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Lifetime (`90s`, `15m`, `24h`, `7d`; `0` is already expired).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::commands::serve::parse_duration)]
    pub ttl: Duration,
    /// Enrollments the token allows.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub uses: u32,
    /// Labels for devices enrolled with it: `k=v,k2=v2`.
    #[arg(long, value_name = "K=V,...")]
    pub labels: Option<String>,
    /// `json` prints the whole answer (token included) as JSON.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

/// `fleetfit token revoke` arguments.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The token id (`tok_…`), as `token list` shows it.
    pub id: String,
}

/// `fleetfit token list` arguments.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

fn parse_labels(text: Option<&str>) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for pair in text
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.trim().is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("label `{pair}` is not `key=value`"))?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

/// Runs the command.
pub fn run(cmd: &TokenCommand) -> Result<ExitCode, Failure> {
    match cmd {
        TokenCommand::Create(a) => {
            let body = serde_json::json!({
                "ttl_seconds": a.ttl.as_secs(),
                "uses": a.uses,
                "labels": parse_labels(a.labels.as_deref())?,
            });
            let text = admin_call(&a.server, "POST", "/v1/admin/tokens", Some(&body))?;
            let created: CreatedToken = serde_json::from_str(&text)
                .map_err(|e| anyhow!("the server's answer does not parse: {e}"))?;
            match a.format {
                OutFormat::Json => println!("{}", text.trim()),
                OutFormat::Text => {
                    println!("{}", created.token);
                    eprintln!(
                        "fleetfit: created enrollment token {} ({} use(s), expires at unix {}); it is shown only once",
                        created.info.id, created.info.uses, created.info.expires_at
                    );
                }
            }
        }
        TokenCommand::Revoke(a) => {
            let path = format!("/v1/admin/tokens/{}", a.id);
            admin_call(&a.server, "DELETE", &path, None)?;
            eprintln!("fleetfit: revoked {}", a.id);
        }
        TokenCommand::List(a) => {
            let text = admin_call(&a.server, "GET", "/v1/admin/tokens", None)?;
            let list: Vec<TokenInfo> = serde_json::from_str(&text)
                .map_err(|e| anyhow!("the server's answer does not parse: {e}"))?;
            match a.format {
                OutFormat::Json => {
                    let s = serde_json::to_string_pretty(&list)
                        .map_err(|e| anyhow!("cannot serialize: {e}"))?;
                    println!("{s}");
                }
                OutFormat::Text => print!("{}", list_text(&list)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_text(list: &[TokenInfo]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:>5} {:>9} {:>12} {:<8} labels",
        "id", "uses", "uses left", "expires", "revoked"
    );
    for t in list {
        let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "{:<18} {:>5} {:>9} {:>12} {:<8} {}",
            t.id,
            t.uses,
            t.uses_left,
            t.expires_at,
            if t.revoked { "yes" } else { "no" },
            labels.join(",")
        );
    }
    out
}
