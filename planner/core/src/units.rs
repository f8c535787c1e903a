//! Byte quantities and their human formatting. Capacity is always `Bytes`, never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A number of bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Bytes(pub u64);

/// One gibibyte.
pub const GIB: u64 = 1 << 30;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;

impl Bytes {
    /// Zero bytes.
    pub const ZERO: Bytes = Bytes(0);

    /// From gibibytes (fractional input rounds down to a byte).
    pub fn from_gib(gib: f64) -> Bytes {
        Bytes((gib * GIB as f64).max(0.0) as u64)
    }

    /// From mebibytes.
    pub const fn from_mib(mib: u64) -> Bytes {
        Bytes(mib * MIB)
    }

    /// As gibibytes.
    pub fn gib(self) -> f64 {
        self.0 as f64 / GIB as f64
    }

    /// As mebibytes.
    pub fn mib(self) -> f64 {
        self.0 as f64 / MIB as f64
    }

    /// Saturating subtraction.
    #[must_use]
    pub const fn saturating_sub(self, other: Bytes) -> Bytes {
        Bytes(self.0.saturating_sub(other.0))
    }

    /// Saturating addition.
    #[must_use]
    pub const fn saturating_add(self, other: Bytes) -> Bytes {
        Bytes(self.0.saturating_add(other.0))
    }

    /// Multiplies by a fraction, rounding down.
    #[must_use]
    pub fn scale(self, factor: f64) -> Bytes {
        Bytes((self.0 as f64 * factor).max(0.0) as u64)
    }
}

impl std::ops::Add for Bytes {
    type Output = Bytes;
    fn add(self, rhs: Bytes) -> Bytes {
        self.saturating_add(rhs)
    }
}

impl std::ops::AddAssign for Bytes {
    fn add_assign(&mut self, rhs: Bytes) {
        *self = self.saturating_add(rhs);
    }
}

impl std::iter::Sum for Bytes {
    fn sum<I: Iterator<Item = Bytes>>(iter: I) -> Bytes {
        iter.fold(Bytes::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Bytes {
    /// `1.5 GiB`, `512 MiB`, `12 KiB`, `7 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= GIB {
            write!(f, "{:.1} GiB", self.gib())
        } else if b >= MIB {
            write!(f, "{:.0} MiB", self.mib())
        } else if b >= 1024 {
            write!(f, "{:.0} KiB", b as f64 / 1024.0)
        } else {
            write!(f, "{b} B")
        }
    }
}

/// Parses a duration flag: `90` (seconds), `500ms`, `1.5s`, `15m`, `24h`, `7d`.
///
/// # Errors
/// A message naming the text and the units accepted.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, ""), |i| t.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 30s, 15m, 24h, 7d)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (ms, s, m, h, d)")),
    };
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("`{text}` is not a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_mins(2));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_hours(24));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_hours(168));
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formats_binary_units() {
        assert_eq!(Bytes(3 * GIB / 2).to_string(), "1.5 GiB");
        assert_eq!(Bytes(512 * MIB).to_string(), "512 MiB");
        assert_eq!(Bytes(7).to_string(), "7 B");
    }

    #[test]
    fn subtraction_saturates() {
        assert_eq!(Bytes(1).saturating_sub(Bytes(5)), Bytes::ZERO);
    }
}
