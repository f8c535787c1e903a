//! The root prefix every sysfs/procfs/etc read goes through (`--sysroot`), so a fixture tree can
//! stand in for the host; owns path joining and the small read-and-parse helpers, never policy.
//!
//! A root made with [`SysRoot::recording`] also remembers every source it was asked for (file
//! contents, read errors, directory listings, symlink targets, platform command outputs), which
//! `fleetfit-agent doctor` dumps for bug reports. Clones share one record.

use crate::command::CommandRunner;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Recorded file contents are cut to this many bytes (at a character boundary).
pub const RECORD_LIMIT: usize = 64 * 1024;

/// What one recorded read gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The text read (cut to [`RECORD_LIMIT`] bytes; `truncated` says whether it was).
    Content { text: String, truncated: bool },
    /// The read failed: the error as the probe saw it.
    Error(String),
    /// A symlink and where it points.
    Link(String),
    /// A directory and its entry names, sorted.
    Listing(Vec<String>),
}

/// One source the probe read: a path relative to the root, or `$ program args` for a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRead {
    pub path: String,
    pub outcome: ReadOutcome,
}

/// The shared list a recording root appends to.
type Recorder = Arc<Mutex<Vec<SourceRead>>>;

/// A filesystem root: `/` for the host, or a fixture tree holding only the files the probe reads.
///
/// Paths passed to it are relative (`proc/meminfo`); a leading `/` is ignored, so
/// `root.join("/proc/meminfo")` cannot escape the root by accident.
/// Two roots are equal when their paths are; whether they record does not matter.
#[derive(Clone, Debug)]
pub struct SysRoot {
    root: PathBuf,
    recorder: Option<Recorder>,
}

impl PartialEq for SysRoot {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Eq for SysRoot {}

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot::host()
    }
}

impl SysRoot {
    /// A root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SysRoot {
            root: root.into(),
            recorder: None,
        }
    }

    /// A root at `root` that records every read (see [`SysRoot::reads`]); clones share the record.
    pub fn recording(root: impl Into<PathBuf>) -> Self {
        SysRoot {
            root: root.into(),
            recorder: Some(Arc::default()),
        }
    }

    /// Whether this root records its reads.
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Every source read so far, in first-read order, one entry per path (a path read twice is
    /// listed once, with its first outcome). Empty for a root that does not record.
    pub fn reads(&self) -> Vec<SourceRead> {
        let Some(rec) = &self.recorder else {
            return Vec::new();
        };
        let all = rec.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut seen = std::collections::HashSet::new();
        all.into_iter()
            .filter(|r| seen.insert((r.path.clone(), outcome_kind(&r.outcome))))
            .collect()
    }

    /// Appends to the record, when recording.
    fn record(&self, path: impl FnOnce() -> String, outcome: impl FnOnce() -> ReadOutcome) {
        if let Some(rec) = &self.recorder {
            let entry = SourceRead {
                path: path(),
                outcome: outcome(),
            };
            rec.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(entry);
        }
    }

    /// `runner` wrapped so that its outputs are recorded, when this root records and is the
    /// host (a fixture's recorded commands are file reads and are recorded as such).
    pub fn record_commands<'a>(
        &self,
        runner: Box<dyn CommandRunner + 'a>,
    ) -> Box<dyn CommandRunner + 'a> {
        if self.is_recording() && self.is_host() {
            Box::new(RecordingRunner {
                inner: runner,
                root: self.clone(),
            })
        } else {
            runner
        }
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
        let result = std::fs::read_to_string(self.join(rel));
        self.record(
            || rel.display().to_string(),
            || match &result {
                Ok(text) => content(text),
                Err(e) => ReadOutcome::Error(e.to_string()),
            },
        );
        result.map_err(|source| ReadError::Io {
            path: rel.to_path_buf(),
            source,
        })
    }

    /// The whole file as bytes (device-tree strings are NUL-separated, not text). Recorded as
    /// lossy UTF-8.
    pub fn read_bytes(&self, rel: impl AsRef<Path>) -> Result<Vec<u8>, ReadError> {
        let rel = rel.as_ref();
        let result = std::fs::read(self.join(rel));
        self.record(
            || rel.display().to_string(),
            || match &result {
                Ok(bytes) => content(&String::from_utf8_lossy(bytes)),
                Err(e) => ReadOutcome::Error(e.to_string()),
            },
        );
        result.map_err(|source| ReadError::Io {
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
            Err(e) => {
                self.record(
                    || rel.display().to_string(),
                    || ReadOutcome::Error(e.to_string()),
                );
                if e.kind() == io::ErrorKind::NotFound {
                    return Ok(Vec::new());
                }
                return Err(ReadError::Io {
                    path: rel.to_path_buf(),
                    source: e,
                });
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        self.record(
            || rel.display().to_string(),
            || ReadOutcome::Listing(names.clone()),
        );
        Ok(names)
    }

    /// The last component of the symlink `rel` points to: a sysfs `device/driver` link gives the
    /// driver name (`amdgpu`, `nvidia`, `intel_vpu`). `None` when missing or not a link.
    pub fn link_name(&self, rel: impl AsRef<Path>) -> Option<String> {
        let rel = rel.as_ref();
        let result = std::fs::read_link(self.join(rel));
        self.record(
            || rel.display().to_string(),
            || match &result {
                Ok(target) => ReadOutcome::Link(target.display().to_string()),
                Err(e) => ReadOutcome::Error(e.to_string()),
            },
        );
        result.ok()?.file_name()?.to_str().map(str::to_owned)
    }
}

/// Which kind of outcome, so a listing and a read of the same path are both kept.
fn outcome_kind(o: &ReadOutcome) -> u8 {
    match o {
        ReadOutcome::Content { .. } => 0,
        ReadOutcome::Error(_) => 1,
        ReadOutcome::Link(_) => 2,
        ReadOutcome::Listing(_) => 3,
    }
}

/// `text` as a recorded content, cut to [`RECORD_LIMIT`] bytes at a character boundary.
fn content(text: &str) -> ReadOutcome {
    if text.len() <= RECORD_LIMIT {
        return ReadOutcome::Content {
            text: text.to_owned(),
            truncated: false,
        };
    }
    let mut end = RECORD_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ReadOutcome::Content {
        text: text[..end].to_owned(),
        truncated: true,
    }
}

/// A [`CommandRunner`] that records each command's output (or error) in a recording root as
/// `$ program args`.
pub struct RecordingRunner<'a> {
    inner: Box<dyn CommandRunner + 'a>,
    root: SysRoot,
}

impl CommandRunner for RecordingRunner<'_> {
    fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let result = self.inner.run(program, args);
        self.root.record(
            || {
                let mut line = format!("$ {program}");
                for a in args {
                    line.push(' ');
                    line.push_str(a);
                }
                line
            },
            || match &result {
                Ok(text) => content(text),
                Err(e) => ReadOutcome::Error(e.clone()),
            },
        );
        result
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

    #[test]
    fn a_recording_root_remembers_every_read_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("na"), "N/A\n").unwrap();
        std::fs::write(dir.path().join("big"), "é".repeat(RECORD_LIMIT)).unwrap();
        std::os::unix::fs::symlink("../missing", dir.path().join("link")).unwrap();
        let r = SysRoot::recording(dir.path());
        let clone = r.clone();
        assert!(clone.read_u64("na").is_err());
        assert!(r.read_u64("na").is_err());
        assert_eq!(r.read_trimmed("missing").unwrap(), None);
        assert_eq!(r.link_name("link").as_deref(), Some("missing"));
        assert!(r.read_to_string("big").is_ok());
        assert_eq!(r.read_bytes("na").unwrap(), b"N/A\n");
        let reads = r.reads();
        let paths: Vec<&str> = reads.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["na", "missing", "link", "big"]);
        assert_eq!(
            reads[0].outcome,
            ReadOutcome::Content {
                text: "N/A\n".to_owned(),
                truncated: false
            }
        );
        assert!(matches!(&reads[1].outcome, ReadOutcome::Error(e) if e.contains("No such file")));
        assert_eq!(reads[2].outcome, ReadOutcome::Link("../missing".to_owned()));
        let ReadOutcome::Content { text, truncated } = &reads[3].outcome else {
            panic!("{:?}", reads[3]);
        };
        assert!(*truncated);
        assert!(text.len() <= RECORD_LIMIT && text.len() > RECORD_LIMIT - 2);
        // A plain root records nothing and equals a recording one at the same path.
        let plain = SysRoot::new(dir.path());
        assert!(plain.read_to_string("na").is_ok());
        assert!(plain.reads().is_empty());
        assert_eq!(plain, r);
    }

    #[test]
    fn a_recording_host_root_records_command_outputs() {
        struct Echo;
        impl CommandRunner for Echo {
            fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
                Ok(format!("{program} {}", args.join(" ")))
            }
        }
        let r = SysRoot::recording("/");
        let runner = r.record_commands(Box::new(Echo));
        assert_eq!(runner.run("sysctl", &["-n", "x"]).unwrap(), "sysctl -n x");
        assert_eq!(r.reads()[0].path, "$ sysctl -n x");
        // Under a fixture the recorded-command files are the record; no double entry.
        let f = SysRoot::recording("/fixture");
        let runner = f.record_commands(Box::new(Echo));
        assert!(runner.run("a", &[]).is_ok());
        assert!(f.reads().is_empty());
    }
}
