//! Input digests (`sha256:…`) that pin a plan to the exact catalog, policies and fleet it used.

use sha2::{Digest, Sha256};

/// Digest of named texts, independent of the order they are given in.
pub fn digest_files(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, text) in sorted {
        let base = name.rsplit('/').next().unwrap_or(name);
        h.update((base.len() as u64).to_le_bytes());
        h.update(base.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// Digest of bytes.
pub fn digest_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_content_does() {
        let a = vec![
            ("x/a.yaml".to_owned(), "1".to_owned()),
            ("x/b.yaml".to_owned(), "2".to_owned()),
        ];
        let b = vec![a[1].clone(), a[0].clone()];
        assert_eq!(digest_files(&a), digest_files(&b));
        let c = vec![a[0].clone(), ("x/b.yaml".to_owned(), "3".to_owned())];
        assert_ne!(digest_files(&a), digest_files(&c));
    }
}
