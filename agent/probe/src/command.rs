//! Platform commands (`sysctl`, `ioreg`, `getprop`, `system_profiler`) behind one trait, so a
//! fixture tree can stand in for a Mac or a phone with recorded outputs, and a probe of a
//! fixture never runs the host's commands.
//!
//! Recorded outputs live in the fixture at `.fleetfit/commands/<command line>.out`, the command
//! line with its arguments joined by single spaces (`sysctl -n hw.memsize.out`); a missing file
//! means the command is not available on that device.

use crate::sysroot::SysRoot;
use std::process::Command;

/// Runs a platform command and returns its standard output.
pub trait CommandRunner {
    /// `Err` carries a one-line reason (not installed, non-zero exit, not recorded).
    fn run(&self, program: &str, args: &[&str]) -> Result<String, String>;
}

/// Runs commands on the host (only ever used when the sysroot is `/`).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostRunner;

impl CommandRunner for HostRunner {
    fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `{program}`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{program} {}` exited with {}",
                args.join(" "),
                out.status
            ));
        }
        String::from_utf8(out.stdout).map_err(|_| format!("`{program}` printed non-UTF-8 output"))
    }
}

/// Replays outputs recorded in a fixture tree.
#[derive(Clone, Debug)]
pub struct RecordedRunner {
    root: SysRoot,
}

impl RecordedRunner {
    /// Replays from `root/.fleetfit/commands/`.
    pub fn new(root: SysRoot) -> Self {
        RecordedRunner { root }
    }

    /// The recording's path relative to the root.
    pub fn recording(program: &str, args: &[&str]) -> String {
        let mut line = program.to_owned();
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        format!(".fleetfit/commands/{}.out", line.replace('/', "_"))
    }
}

impl CommandRunner for RecordedRunner {
    fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let rel = Self::recording(program, args);
        self.root.read_to_string(&rel).map_err(|e| {
            if e.is_not_found() {
                format!("`{program}` is not available (no recording at {rel})")
            } else {
                e.to_string()
            }
        })
    }
}

/// The runner for a root: the host's commands for `/`, recordings for any other root.
pub fn runner_for(root: &SysRoot) -> Box<dyn CommandRunner> {
    if root.is_host() {
        Box::new(HostRunner)
    } else {
        Box::new(RecordedRunner::new(root.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_named_by_command_line() {
        assert_eq!(
            RecordedRunner::recording("sysctl", &["-n", "hw.memsize"]),
            ".fleetfit/commands/sysctl -n hw.memsize.out"
        );
    }

    #[test]
    fn a_fixture_never_runs_host_commands() {
        let dir = tempfile::tempdir().unwrap();
        let r = runner_for(&SysRoot::new(dir.path()));
        let e = r.run("uname", &["-a"]).unwrap_err();
        assert!(e.contains("not available"), "{e}");
        std::fs::create_dir_all(dir.path().join(".fleetfit/commands")).unwrap();
        std::fs::write(
            dir.path().join(".fleetfit/commands/uname -a.out"),
            "Darwin mac 24.1.0\n",
        )
        .unwrap();
        assert_eq!(r.run("uname", &["-a"]).unwrap(), "Darwin mac 24.1.0\n");
    }
}
