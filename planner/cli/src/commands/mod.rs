//! One file per `fleetfit` command.

pub mod estimate;
pub mod lint;
pub mod plan;
