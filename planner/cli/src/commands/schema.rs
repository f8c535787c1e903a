//! `fleetfit schema`: JSON Schemas of the file formats (device profile, catalog model, policy,
//! plan, policy test), printed, written to a directory, or checked against committed copies.

use crate::Failure;
use clap::Args;
use fleetfit_core::schema::{render, schemas};
use std::path::PathBuf;
use std::process::ExitCode;

/// `fleetfit schema` arguments.
#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Write `<DIR>/<name>.schema.json` files instead of printing one JSON object.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With `--out DIR` (default `schemas`): compare instead of writing; exit 3 when any differs.
    #[arg(long)]
    pub check: bool,
}

/// Runs the command: 0 when written/printed/current, 3 when `--check` finds a stale file.
pub fn run(args: &SchemaArgs) -> Result<ExitCode, Failure> {
    let all = schemas();
    let dir = match (&args.out, args.check) {
        (Some(d), _) => d.clone(),
        (None, true) => PathBuf::from("schemas"),
        (None, false) => {
            let map: serde_json::Map<String, serde_json::Value> = all
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect();
            let s = render(&serde_json::Value::Object(map)).map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{s}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut stale = 0usize;
    for (name, value) in &all {
        let path = dir.join(format!("{name}.schema.json"));
        let text = render(value).map_err(|e| anyhow::anyhow!("{e}"))?;
        if args.check {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != text {
                eprintln!(
                    "{}: stale; run `fleetfit schema --out {}`",
                    path.display(),
                    dir.display()
                );
                stale += 1;
            }
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if stale > 0 {
        return Ok(ExitCode::from(3));
    }
    if args.check {
        eprintln!("{} schema(s) current in {}", all.len(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
