//! The model catalog: real models, their architecture numbers, licences, quality scores and
//! downloadable artifacts; parsed from YAML (one file per model) and validated.
//!
//! This module owns the catalog's types and rules. It reads no files: callers hand it
//! `(path, text)` pairs, from disk or from the embedded defaults.

mod model;
pub mod quant;
mod validate;

pub use model::*;
pub use validate::{did_you_mean, parse_catalog};

use crate::diagnostic::Diagnostics;

/// A validated catalog, models sorted by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub models: Vec<Model>,
}

impl Catalog {
    /// The model with this id.
    pub fn model(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Parses and validates; all problems of all files at once.
    pub fn from_sources(
        sources: &[(String, String)],
    ) -> Result<(Catalog, Diagnostics), Diagnostics> {
        parse_catalog(sources)
    }
}
