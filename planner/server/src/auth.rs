//! Secrets: enrollment tokens and device credentials (256 random bits from the OS, shown once,
//! stored as sha256 — a fast hash is right for high-entropy secrets), the admin token, and
//! constant-time comparison. Nothing here logs; callers log ids, never secrets.

use sha2::{Digest as _, Sha256};

/// A fresh secret: `prefix` + 64 hex digits (32 bytes from `getrandom`).
pub fn new_secret(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

/// A short public id: `prefix` + 12 hex digits (48 random bits; ids are not secrets).
pub fn new_id(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

/// The stored form of a secret: sha256, hex.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Equal, in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin token, kept as its hash so it is compared in constant time.
#[derive(Clone)]
pub struct AdminToken {
    hash: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// From the secret (trimmed). `None` when empty.
    pub fn new(secret: &str) -> Option<AdminToken> {
        let s = secret.trim();
        if s.is_empty() {
            return None;
        }
        Some(AdminToken {
            hash: Sha256::digest(s.as_bytes()).into(),
        })
    }

    /// Does `presented` match?
    pub fn matches(&self, presented: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        constant_time_eq(&h, &self.hash)
    }
}

/// The bearer secret of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let v = header?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|s| !s.is_empty())
}

/// A loggable prefix of a secret (`ffd_1a2b…`), never the whole of it.
pub fn redact(secret: &str) -> String {
    let keep: String = secret.chars().take(8).collect();
    format!("{keep}…")
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
    fn secrets_are_256_bit_and_distinct() {
        let a = new_secret("ffe_").unwrap();
        let b = new_secret("ffe_").unwrap();
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn admin_token_matches_only_itself() {
        let t = AdminToken::new(" s3cret\n").unwrap();
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches(""));
        assert!(AdminToken::new("  ").is_none());
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_parses_the_scheme() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
    }
}
