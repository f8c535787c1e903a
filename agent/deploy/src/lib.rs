//! The agent's deploy pipeline: plan locally (or read a plan), fetch the planned artifact into the
//! Hugging Face cache, check its sha256, run a smoke inference in a child process, install it
//! atomically (state file + stable `models/<role>` link), and report readiness.
//!
//! A failed download, a digest mismatch or a failed smoke test never replaces the model that
//! was serving: the state file only changes after every check passed.

pub mod apply;
pub mod client;
pub mod clock;
pub mod daemon;
pub mod handoff;
pub mod planning;
pub mod report;
pub mod smoke;
pub mod state;

pub use apply::{Applied, ApplyOptions, DryRun, apply, dry_run};
