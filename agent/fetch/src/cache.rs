//! The huggingface_hub cache layout (`models--org--name/{blobs,refs,snapshots}`, `.locks/`), shared with
//! transformers, llama.cpp and huggingface-cli, plus fleetfit's URL store and verification sidecars. Files only.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::FetchError;

/// Paths of one repo in the cache.
#[derive(Debug, Clone)]
pub(crate) struct RepoCache {
    pub root: PathBuf,
    pub locks: PathBuf,
}

/// `org/name` → `models--org--name`.
pub(crate) fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

impl RepoCache {
    pub fn new(cache_dir: &Path, repo: &str) -> RepoCache {
        let folder = repo_folder(repo);
        RepoCache {
            root: cache_dir.join(&folder),
            locks: cache_dir.join(".locks").join(folder),
        }
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn blob(&self, etag: &str) -> PathBuf {
        self.blobs().join(etag)
    }
    pub fn snapshot(&self, commit: &str, file: &str) -> PathBuf {
        let mut p = self.root.join("snapshots").join(commit);
        for part in file.split('/') {
            p.push(part);
        }
        p
    }
    pub fn ref_file(&self, revision: &str) -> PathBuf {
        let mut p = self.root.join("refs");
        for part in revision.split('/') {
            p.push(part);
        }
        p
    }
    pub fn lock(&self, etag: &str) -> PathBuf {
        self.locks.join(format!("{etag}.lock"))
    }
    /// fleetfit's record of a verified blob; under `.locks/`, which cache scanners skip.
    pub fn sidecar(&self, etag: &str) -> PathBuf {
        self.locks.join(format!("{etag}.fleetfit-sha256"))
    }
    /// The commit a revision points at: `refs/<revision>`, or the revision itself when it is a commit hash.
    pub fn resolve_revision(&self, revision: &str) -> Option<String> {
        if let Ok(c) = std::fs::read_to_string(self.ref_file(revision)) {
            let c = c.trim().to_owned();
            if !c.is_empty() {
                return Some(c);
            }
        }
        is_hex(revision, 40).then(|| revision.to_owned())
    }
}

pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The relative target of `snapshots/<commit>/<file>` → `blobs/<etag>`: one `../` per directory level.
pub(crate) fn link_target(file: &str, etag: &str) -> PathBuf {
    let depth = file.split('/').count() + 1;
    let mut p = PathBuf::new();
    for _ in 0..depth {
        p.push("..");
    }
    p.join("blobs").join(etag)
}

/// Creates (or replaces) the relative symlink `link` → `target`, atomically.
pub(crate) fn symlink(target: &Path, link: &Path) -> Result<(), FetchError> {
    crate::fsutil::replace_symlink(target, link).map_err(FetchError::io(link))
}

/// Writes `contents` to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), FetchError> {
    crate::fsutil::write_atomic(path, contents).map_err(FetchError::io(path))
}

fn stamp(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {mtime}", meta.len())
}

/// Records that `blob` hashed to `sha256`, keyed by its size and mtime.
pub(crate) fn write_sidecar(sidecar: &Path, blob: &Path, sha256: &str) -> Result<(), FetchError> {
    let meta = std::fs::metadata(blob).map_err(FetchError::io(blob))?;
    write_atomic(sidecar, format!("{sha256} {}\n", stamp(&meta)).as_bytes())
}

/// The recorded sha256 of `blob`, if the sidecar still matches its size and mtime.
pub(crate) fn read_sidecar(sidecar: &Path, blob: &Path) -> Option<String> {
    let text = std::fs::read_to_string(sidecar).ok()?;
    let meta = std::fs::metadata(blob).ok()?;
    let (sha, rest) = text.trim().split_once(' ')?;
    (rest == stamp(&meta) && is_hex(sha, 64)).then(|| sha.to_owned())
}

/// sha256 (hex) and, when `git` is set, the git blob sha1 (hex) of a file.
pub(crate) fn hash_file(
    path: &Path,
    git: bool,
) -> Result<(String, Option<String>, u64), FetchError> {
    let mut f = std::fs::File::open(path).map_err(FetchError::io(path))?;
    let len = f.metadata().map_err(FetchError::io(path))?.len();
    let mut sha = sha2::Sha256::new();
    let mut g = git.then(|| {
        let mut g = sha1::Sha1::new();
        g.update(format!("blob {len}\0").as_bytes());
        g
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(FetchError::io(path))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        if let Some(g) = g.as_mut() {
            g.update(&buf[..n]);
        }
        n_total += n as u64;
    }
    Ok((hex(&sha.finalize()), g.map(|g| hex(&g.finalize())), n_total))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Moves a file that failed its check to `quarantine_dir/<unix-seconds>-<name>` (copy + remove across disks).
pub(crate) fn quarantine(
    file: &Path,
    quarantine_dir: &Path,
    name: &str,
) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(quarantine_dir).map_err(FetchError::io(quarantine_dir))?;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = name.rsplit('/').next().unwrap_or(name);
    let dest = quarantine_dir.join(format!("{ts}-{base}"));
    if std::fs::rename(file, &dest).is_err() {
        std::fs::copy(file, &dest).map_err(FetchError::io(&dest))?;
        std::fs::remove_file(file).map_err(FetchError::io(file))?;
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_climb_one_level_per_directory() {
        assert_eq!(
            link_target("model.gguf", "abc"),
            PathBuf::from("../../blobs/abc")
        );
        assert_eq!(
            link_target("onnx/sub/model.onnx", "abc"),
            PathBuf::from("../../../../blobs/abc")
        );
    }

    #[test]
    fn repo_folder_and_revision() {
        assert_eq!(repo_folder("acme/tiny"), "models--acme--tiny");
        let dir = tempfile::tempdir().unwrap();
        let rc = RepoCache::new(dir.path(), "acme/tiny");
        assert_eq!(rc.resolve_revision("main"), None);
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(rc.resolve_revision(sha).as_deref(), Some(sha));
        write_atomic(&rc.ref_file("main"), sha.as_bytes()).unwrap();
        assert_eq!(rc.resolve_revision("main").as_deref(), Some(sha));
    }
}
