//! The built-in catalog and default policy, embedded at build time from `catalog/` and
//! `policies/default.yaml` (see `build.rs`).

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub use embedded::{CATALOG, EXAMPLE_POLICIES, POLICIES};

/// The embedded files as owned `(path, text)` pairs, as the parsers take them.
pub fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_is_valid() {
        let (catalog, warnings) =
            crate::catalog::parse_catalog(&owned(CATALOG)).unwrap_or_else(|d| panic!("{d}"));
        assert!(!catalog.models.is_empty());
        assert!(warnings.is_empty(), "{warnings}");
    }

    #[test]
    fn the_embedded_policies_are_valid() {
        crate::policy::parse_policies(&owned(POLICIES), None).unwrap_or_else(|d| panic!("{d}"));
        crate::policy::parse_policies(&owned(EXAMPLE_POLICIES), None)
            .unwrap_or_else(|d| panic!("{d}"));
    }
}
