//! Helpers shared by the `fleetfit` end-to-end test files: where the repository is, and how to run
//! the binary there.
#![allow(dead_code)] // each test file uses the helpers it needs

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The showcase fleet, relative to the repository root.
pub const SHOWCASE: &str = "tests/fixtures/fleets/showcase";
/// The day rule expiry is evaluated against in snapshot tests.
pub const TODAY: &str = "2026-11-24";

/// The repository root (tests run `fleetfit` from there).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `fleetfit` with `args` from the repository root.
pub fn fleetfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetfit"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("FLEETFIT_ERROR_FORMAT")
        .output()
        .expect("spawn fleetfit")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
