//! Embeds `catalog/*.yaml` and `policies/default.yaml` (and the example policies) into the core
//! as the built-in defaults, sorted by file name so the embedded order is stable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn table(name: &str, prefix: &str, files: &[PathBuf]) -> String {
    let mut s = format!(
        "/// Embedded `{prefix}` files: (display path, contents).\npub const {name}: &[(&str, &str)] = &[\n"
    );
    for f in files {
        let file_name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "    (\"<embedded>/{prefix}/{file_name}\", include_str!({:?})),",
            f.display().to_string()
        );
    }
    s.push_str("];\n");
    s
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    let catalog = root.join("catalog");
    let policies = root.join("policies");
    let examples = policies.join("examples");
    println!("cargo:rerun-if-changed={}", catalog.display());
    println!("cargo:rerun-if-changed={}", policies.display());
    println!("cargo:rerun-if-changed={}", examples.display());
    let mut out = String::new();
    out.push_str(&table("CATALOG", "catalog", &yaml_files(&catalog)));
    let default_policy: Vec<PathBuf> = yaml_files(&policies)
        .into_iter()
        .filter(|p| p.ends_with("default.yaml"))
        .collect();
    out.push_str(&table("POLICIES", "policies", &default_policy));
    out.push_str(&table(
        "EXAMPLE_POLICIES",
        "policies/examples",
        &yaml_files(&examples),
    ));
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
        std::process::exit(1);
    }
}
