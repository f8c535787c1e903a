//! Wall-clock helpers for the agent's I/O shell: RFC 3339 timestamps and random report ids.
//! (The planning core never reads the clock; the agent stamps what it produces.)

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SSZ` for `secs` since the epoch (UTC).
pub fn rfc3339(secs: u64) -> String {
    fleetfit_core::calendar::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    rfc3339(now_secs())
}

/// Today, `YYYY-MM-DD` UTC (policy expiry dates).
pub fn today() -> String {
    now_rfc3339()[..10].to_owned()
}

/// 128 random bits as 32 hex digits (report ids: the server deduplicates on them).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to time and pid, still unique per report in practice.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&(nanos ^ u128::from(std::process::id())).to_le_bytes());
    }
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_hex() {
        let a = random_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_id());
    }
}
