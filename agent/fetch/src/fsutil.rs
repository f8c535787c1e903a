//! Crash-safe file updates shared by the cache and the agent's state dir: write-then-rename
//! (with fsync of the file and of its directory) and atomic symlink replacement.

use std::io::Write as _;
use std::path::Path;

/// A hidden, per-process temporary name beside `path`.
fn temp_beside(path: &Path, what: &str) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

/// fsyncs `dir` so a rename inside it survives a crash (best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename over, fsync
/// the directory. A crash leaves the old content or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_of(path);
    std::fs::create_dir_all(dir)?;
    let tmp = temp_beside(path, "tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Points the symlink `link` at `target` atomically (a new link renamed over the old one), so a
/// reader sees the old target or the new one.
pub fn replace_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    let dir = parent_of(link);
    std::fs::create_dir_all(dir)?;
    let tmp = temp_beside(link, "tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_links_leaving_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/state.json");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let link = dir.path().join("links/current");
        replace_symlink(&a, &link).unwrap();
        replace_symlink(&b, &link).unwrap();
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "b");
        for d in [dir.path().join("sub"), dir.path().join("links")] {
            assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
        }
    }
}
