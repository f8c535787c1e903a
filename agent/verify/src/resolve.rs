//! Turns the path the user gave (a GGUF file, a safetensors file, or an HF snapshot directory of
//! symlinks into blobs) into the one model file to check. Reads directory listings only.

use crate::{Stop, fail};
use std::path::{Path, PathBuf};

/// The model file to check, by format.
#[derive(Debug)]
pub(crate) enum Target {
    Gguf(PathBuf),
    Safetensors(PathBuf),
}

impl Target {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Gguf(p) | Self::Safetensors(p) => p,
        }
    }
}

const GGUF_MAGIC: &[u8; 4] = b"GGUF";

pub(crate) fn resolve(path: &Path) -> Result<Target, Stop> {
    // `metadata` follows symlinks (HF cache snapshots link into blobs/).
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return fail(format!("cannot read `{}`: {e}", path.display())),
    };
    if meta.is_dir() {
        return resolve_dir(path);
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if ext == "gguf" {
        return Ok(Target::Gguf(path.to_owned()));
    }
    if ext == "safetensors" {
        return Ok(Target::Safetensors(path.to_owned()));
    }
    // No telling extension (an HF blob is named by its digest): sniff the magic.
    let mut magic = [0u8; 4];
    let sniffed = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok();
    if sniffed && &magic == GGUF_MAGIC {
        return Ok(Target::Gguf(path.to_owned()));
    }
    if path.with_file_name("config.json").is_file() {
        return Ok(Target::Safetensors(path.to_owned()));
    }
    fail(format!(
        "`{}` is neither a GGUF file (magic `GGUF`) nor a .safetensors file",
        path.display()
    ))
}

fn resolve_dir(dir: &Path) -> Result<Target, Stop> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot list `{}`: {e}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let ggufs: Vec<&String> = names
        .iter()
        .filter(|n| n.to_lowercase().ends_with(".gguf"))
        .collect();
    match ggufs.as_slice() {
        [one] => return Ok(Target::Gguf(dir.join(one))),
        [] => {}
        many => {
            let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            return fail(format!(
                "`{}` holds several GGUF files ({}): name one",
                dir.display(),
                list.join(", ")
            ));
        }
    }
    if names.iter().any(|n| n == "model.safetensors") {
        return Ok(Target::Safetensors(dir.join("model.safetensors")));
    }
    let shards: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    if let [one] = shards.as_slice() {
        return Ok(Target::Safetensors(dir.join(one)));
    }
    if !shards.is_empty() {
        return Err(Stop::Skipped(format!(
            "`{}` holds a sharded safetensors model ({} files); the smoke test loads single-file models only",
            dir.display(),
            shards.len()
        )));
    }
    fail(format!(
        "`{}` holds no *.gguf and no model.safetensors",
        dir.display()
    ))
}
