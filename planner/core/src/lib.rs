//! fleetfit's pure planning core: device profiles, the model catalog, policies, memory and speed
//! estimates, and the plan that matches them.
//!
//! Nothing in this crate touches the disk, the network or the clock: every input arrives as a
//! value (YAML text, a parsed profile, a date), and every output is a value that callers render
//! or serialize. The I/O shells (`fleetfit`, `fleetfit-agent`) live in other crates.

pub mod api;
pub mod calendar;
pub mod catalog;
pub mod defaults;
pub mod diagnostic;
pub mod diff;
pub mod digest;
pub mod estimate;
pub mod gguf;
pub mod hardware;
pub mod plan;
pub mod policy;
pub mod policy_test;
pub mod profile;
pub mod readiness;
pub mod render;
pub mod schema;
pub mod units;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use units::Bytes;
