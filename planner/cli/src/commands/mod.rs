//! One file per `fleetfit` command.

pub mod diff;
pub mod estimate;
pub mod fleet;
pub mod lint;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod serve;
pub mod token;
