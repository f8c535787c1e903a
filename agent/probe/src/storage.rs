//! Where models go and how much room is left there: the disk whose mount point is the longest
//! prefix of the models dir (host only; a fixture tree has no disks of its own).

use crate::issue;
use fleetfit_core::profile::{ProbeIssue, Storage};
use std::path::{Path, PathBuf};

/// The Hugging Face hub cache, which `fetch` shares with other tools: `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`
/// (huggingface_hub's `constants.py` order).
pub fn default_models_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("HF_HUB_CACHE")
        .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

/// Free bytes of the mount (given as `(mount point, available bytes)`) whose mount point is the
/// longest component-wise prefix of `path`.
pub fn free_bytes_for<'a>(
    path: &Path,
    mounts: impl IntoIterator<Item = (&'a Path, u64)>,
) -> Option<u64> {
    mounts
        .into_iter()
        .filter(|(mount, _)| path.starts_with(mount))
        .max_by_key(|(mount, _)| mount.components().count())
        .map(|(_, free)| free)
}

/// `path` made absolute, with symlinks resolved in the longest part of it that exists (the
/// models dir itself may not exist yet).
fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Free space for `models_dir` on this host.
pub(crate) fn probe(models_dir: &Path, issues: &mut Vec<ProbeIssue>) -> Option<Storage> {
    let disks = match sysinfo::Disks::new_with_refreshed_list() {
        Ok(disks) => disks,
        Err(e) => {
            issues.push(issue::new("sysinfo", format!("cannot list disks: {e}")));
            return None;
        }
    };
    let real = resolve(models_dir);
    let free = free_bytes_for(
        &real,
        disks.iter().map(|d| (d.mount_point(), d.available_space())),
    );
    let Some(free_bytes) = free else {
        issues.push(issue::new(
            "storage",
            format!("no mounted disk holds `{}`", real.display()),
        ));
        return None;
    };
    Some(Storage {
        models_dir: models_dir.display().to_string(),
        free_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_prefix_wins() {
        let mounts = [
            (Path::new("/"), 100),
            (Path::new("/home"), 200),
            (Path::new("/home/models"), 300),
            (Path::new("/homes"), 400),
        ];
        let free = |p: &str| free_bytes_for(Path::new(p), mounts.iter().copied());
        assert_eq!(free("/home/models/hub"), Some(300));
        assert_eq!(free("/home/alice"), Some(200));
        // Component-wise: `/homes` is not under `/home`, and `/home-x` is under `/`.
        assert_eq!(free("/homes/x"), Some(400));
        assert_eq!(free("/home-x"), Some(100));
        assert_eq!(free_bytes_for(Path::new("/x"), []), None);
    }

    #[test]
    fn a_models_dir_that_does_not_exist_yet_resolves_through_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let want = dir.path().canonicalize().unwrap().join("a/b");
        assert_eq!(resolve(&dir.path().join("a/b")), want);
    }

    #[test]
    fn this_hosts_root_disk_has_free_space() {
        let mut issues = Vec::new();
        let s = probe(&std::env::temp_dir(), &mut issues);
        // Sandboxes without a listed disk report an issue instead; both are fine, a panic is not.
        match s {
            Some(s) => assert!(s.free_bytes > 0),
            None => assert_eq!(issues.len(), 1),
        }
    }
}
