//! The root prefix every sysfs/procfs/etc read goes through (`--sysroot`), so a fixture tree can
//! stand in for the host; owns path joining and the small read-and-parse helpers, never policy.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A filesystem root: `/` for the host, or a fixture tree holding only the files the probe reads.
///
/// Paths passed to it are relative (`proc/meminfo`); a leading `/` is ignored, so
/// `root.join("/proc/meminfo")` cannot escape the root by accident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysRoot {
    root: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot::host()
    }
}

impl SysRoot {
    /// A root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SysRoot { root: root.into() }
    }

    /// The host's own root, `/`.
    pub fn host() -> Self {
        SysRoot::new("/")
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Whether this is the host's `/` (`/`, `//`, `/.`): only then may the probe also ask the
    /// running system (sysinfo, CPUID); under any other root it must read files only.
    pub fn is_host(&self) -> bool {
        let mut saw_root = false;
        for c in self.root.components() {
            match c {
                Component::RootDir => saw_root = true,
                Component::CurDir => {}
                _ => return false,
            }
        }
        saw_root
    }

    /// `rel` under the root. Leading `/` and `.` components of `rel` are dropped.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        let mut out = self.root.clone();
        for c in rel.as_ref().components() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                other => out.push(other),
            }
        }
        out
    }

    /// The whole file as text.
    pub fn read_to_string(&self, rel: impl AsRef<Path>) -> Result<String, ReadError> {
        let rel = rel.as_ref();
        std::fs::read_to_string(self.join(rel)).map_err(|source| ReadError::Io {
            path: rel.to_path_buf(),
            source,
        })
    }

    /// The file as trimmed text; `None` when it is missing or empty (both mean "unknown" in
    /// sysfs), an error for anything else (permission denied, not UTF-8 …).
    pub fn read_trimmed(&self, rel: impl AsRef<Path>) -> Result<Option<String>, ReadError> {
        match self.read_to_string(rel) {
            Ok(text) => {
                let t = text.trim();
                Ok((!t.is_empty()).then(|| t.to_owned()))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A number from a one-value file: `0x` prefix → hex (PCI ids, Intel `physical_vram_size_bytes`),
    /// otherwise decimal (amdgpu `mem_info_*`, cgroup limits). Surrounding whitespace is trimmed.
    pub fn read_u64(&self, rel: impl AsRef<Path>) -> Result<u64, ReadError> {
        let rel = rel.as_ref();
        let text = self.read_to_string(rel)?;
        parse_u64(&text).ok_or_else(|| ReadError::Parse {
            path: rel.to_path_buf(),
            text: text.trim().chars().take(40).collect(),
        })
    }

    /// Names of the entries in directory `rel`, sorted; empty when the directory is missing.
    pub fn list_dir(&self, rel: impl AsRef<Path>) -> Result<Vec<String>, ReadError> {
        let rel = rel.as_ref();
        let entries = match std::fs::read_dir(self.join(rel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ReadError::Io {
                    path: rel.to_path_buf(),
                    source,
                });
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The last component of the symlink `rel` points to: a sysfs `device/driver` link gives the
    /// driver name (`amdgpu`, `nvidia`, `intel_vpu`). `None` when missing or not a link.
    pub fn link_name(&self, rel: impl AsRef<Path>) -> Option<String> {
        let target = std::fs::read_link(self.join(rel)).ok()?;
        target.file_name()?.to_str().map(str::to_owned)
    }
}

/// Parses a sysfs number: trims, then `0x`/`0X` → hex, else decimal.
pub fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// A file under the root could not be read or parsed. Paths are relative to the root.
#[derive(Debug)]
pub enum ReadError {
    Io { path: PathBuf, source: io::Error },
    Parse { path: PathBuf, text: String },
}

impl ReadError {
    /// The file (or a directory on its path) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The relative path that failed, as a string for `ProbeIssue::source`.
    pub fn path(&self) -> String {
        match self {
            ReadError::Io { path, .. } | ReadError::Parse { path, .. } => {
                path.display().to_string()
            }
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } => {
                write!(f, "cannot read `{}`: {source}", path.display())
            }
            ReadError::Parse { path, text } => {
                write!(f, "`{}` holds `{text}`: expected a number", path.display())
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            ReadError::Parse { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_decimal_with_whitespace() {
        assert_eq!(parse_u64("0x1002\n"), Some(0x1002));
        assert_eq!(parse_u64("0X0000000300000000"), Some(0x3_0000_0000));
        assert_eq!(parse_u64(" 4294967296\n"), Some(4_294_967_296));
        assert_eq!(parse_u64("max\n"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("[N/A]"), None);
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("99999999999999999999999"), None);
    }

    #[test]
    fn join_never_escapes_through_a_leading_slash() {
        let r = SysRoot::new("/fixture");
        assert_eq!(
            r.join("/proc/meminfo"),
            PathBuf::from("/fixture/proc/meminfo")
        );
        assert_eq!(
            r.join("proc/meminfo"),
            PathBuf::from("/fixture/proc/meminfo")
        );
    }

    #[test]
    fn only_slash_is_the_host() {
        assert!(SysRoot::host().is_host());
        assert!(SysRoot::new("//").is_host());
        assert!(SysRoot::new("/.").is_host());
        assert!(!SysRoot::new("/tmp").is_host());
        assert!(!SysRoot::new("fixture").is_host());
        assert!(!SysRoot::new("").is_host());
    }

    #[test]
    fn missing_files_are_unknown_and_bad_numbers_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        std::fs::write(dir.path().join("na"), "N/A\n").unwrap();
        std::fs::write(dir.path().join("hex"), "0x10de\n").unwrap();
        let r = SysRoot::new(dir.path());
        assert_eq!(r.read_trimmed("missing").unwrap(), None);
        assert_eq!(r.read_trimmed("empty").unwrap(), None);
        assert!(r.read_u64("missing").unwrap_err().is_not_found());
        let err = r.read_u64("na").unwrap_err();
        assert_eq!(err.to_string(), "`na` holds `N/A`: expected a number");
        assert_eq!(r.read_u64("hex").unwrap(), 0x10de);
        assert_eq!(r.list_dir("nope").unwrap(), Vec::<String>::new());
        assert_eq!(r.list_dir("").unwrap(), vec!["empty", "hex", "na"]);
    }
}
