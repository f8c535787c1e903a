//! `fleetfit-testhub --dir DIR --listen ADDR`: serves DIR/<org>/<name>/<files...> over the hub protocol (for demos
//! and the fetch benchmark). Every file is served LFS-style (sha256 etag, CDN redirect); sha256 is computed at start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let mut dir = None;
    let mut listen = "127.0.0.1:8765".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "-h" | "--help" => {
                println!(
                    "usage: fleetfit-testhub --dir DIR [--listen ADDR]   (serves DIR/<org>/<name>/<files>)"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    let dir = dir.ok_or("--dir DIR is required")?;
    let hub = fleetfit_testhub::TestHub::start_on(&listen)
        .map_err(|e| format!("cannot listen on `{listen}`: {e}"))?;
    let mut files = Vec::new();
    walk(&dir, &mut files).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    for path in files {
        let Ok(rel) = path.strip_prefix(&dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.len() < 3 {
            continue;
        }
        let repo = format!("{}/{}", parts[0], parts[1]);
        let file = parts[2..].join("/");
        hub.add_file_from_disk(&repo, &file, &path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        println!("{repo} {file} (commit {})", hub.commit(&repo));
    }
    println!("serving on {} (HF_ENDPOINT={})", hub.addr(), hub.url());
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetfit-testhub: {e}");
            ExitCode::from(2)
        }
    }
}
