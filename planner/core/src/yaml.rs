//! The one YAML parse function: typed deserialization with `path:line:column` diagnostics.
//!
//! We use `serde-saphyr` (pure Rust, maintained) rather than the archived `serde_yaml`: it rejects
//! duplicate keys by default, reports line and column for every error, and gives `Spanned<T>` so
//! policy rules can cite where they were written.

use crate::diagnostic::Diagnostic;
use serde::de::DeserializeOwned;

/// A position in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// From a serde-saphyr location.
    pub fn from_location(loc: &serde_saphyr::Location) -> Pos {
        Pos {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }
}

/// Parses `text` (read from `path`) into `T`, or returns one diagnostic naming where and why.
pub fn parse<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, Diagnostic> {
    if text.trim().is_empty() {
        return Err(Diagnostic::error(
            path,
            1,
            1,
            "empty-file",
            "the file is empty: expected a YAML mapping",
        ));
    }
    serde_saphyr::from_str::<T>(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| {
            (
                u32::try_from(l.line()).unwrap_or(0),
                u32::try_from(l.column()).unwrap_or(0),
            )
        });
        let plain = e.without_snippet().to_string();
        let mut message = strip_location_suffix(&plain);
        let code = classify(&message);
        if matches!(code, "unknown-field" | "unknown-value") {
            message.push_str(&suggest(&message));
        }
        Diagnostic::error(path, line, column, code, message)
    })
}

/// For `unknown field `x`, expected one of `a`, `b``: ` (did you mean `a`?)` when one is near.
fn suggest(message: &str) -> String {
    if message.contains("did you mean") {
        return String::new();
    }
    let Some(given) = message.split('`').nth(1) else {
        return String::new();
    };
    let Some(i) = message.find("expected ") else {
        return String::new();
    };
    let list = message[i + "expected ".len()..].trim_start_matches("one of ");
    let known: Vec<&str> = list
        .split([',', ' '])
        .map(|w| w.trim_matches('`'))
        .filter(|w| !w.is_empty() && *w != "or")
        .collect();
    crate::catalog::did_you_mean(given, known.into_iter())
}

/// serde-saphyr appends ` at line N, column M`; we print the location in front instead.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

fn classify(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "unknown-field"
    } else if message.starts_with("duplicate mapping key") {
        "duplicate-key"
    } else if message.starts_with("missing field") {
        "missing-field"
    } else if message.starts_with("unknown variant") {
        "unknown-value"
    } else if message.starts_with("invalid") {
        "wrong-type"
    } else {
        "yaml-syntax"
    }
}

/// Whether a directory entry named `file_name` is a catalog/policy source: `*.yaml` or `*.yml`,
/// not a policy test (`*.test.yaml`), not hidden. Every reader of a catalog or policy directory
/// (`fleetfit plan|lint`, `fleetfit serve`, `fleetfit-agent apply`) uses this one rule.
pub fn is_yaml_source(file_name: &str) -> bool {
    std::path::Path::new(file_name)
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml")
        && !file_name.ends_with(".test.yaml")
        && !file_name.starts_with('.')
}

/// Whether `s` is a `YYYY-MM-DD` date (month 1–12, day 1–31).
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(s[5..7].parse::<u32>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u32>(), Ok(1..=31))
}

/// Where the `n`-th (0-based) occurrence of `key:` starts in `text`, for pointing semantic
/// errors (found after deserialization) at the line that holds the offending value. Matches
/// block (`key: v`, `- key: v`) and flow (`{key: v}`) styles. Falls back to line 1.
pub fn find_key(text: &str, key: &str, n: usize) -> Pos {
    let needle = format!("{key}:");
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(off) = line[from..].find(&needle) {
            let col = from + off;
            let before = line[..col].chars().last();
            let boundary = matches!(before, None | Some(' ' | '{' | ',' | '-' | '\t'));
            let in_comment = line[..col].contains('#');
            if boundary && !in_comment {
                if seen == n {
                    return Pos {
                        line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                        column: u32::try_from(col + 1).unwrap_or(u32::MAX),
                    };
                }
                seen += 1;
            }
            from = col + needle.len();
        }
    }
    Pos { line: 1, column: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_and_value_suggest_the_nearest_name() {
        assert_eq!(
            suggest("unknown field `headroom_pcr`, expected one of `headroom_pct`, `other`"),
            " (did you mean `headroom_pct`?)"
        );
        assert_eq!(
            suggest("unknown variant `enforse`, expected one of enforce, audit"),
            " (did you mean `enforce`?)"
        );
        assert_eq!(suggest("unknown field `zzzzzz`, expected `a`"), "");
    }
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        count: u32,
    }

    #[test]
    fn reports_unknown_field_with_position() {
        let d = parse::<Thing>("x.yaml", "name: a\ncount: 1\ncolour: red\n").unwrap_err();
        assert_eq!((d.line, d.column, d.code.as_str()), (3, 1, "unknown-field"));
        assert!(d.message.contains("`colour`"), "{}", d.message);
        assert_eq!(d.location(), "x.yaml:3:1");
    }

    #[test]
    fn reports_duplicate_keys() {
        let d = parse::<Thing>("x.yaml", "name: a\ncount: 1\ncount: 2\n").unwrap_err();
        assert_eq!((d.line, d.code.as_str()), (3, "duplicate-key"));
    }

    #[test]
    fn reports_wrong_type() {
        let d = parse::<Thing>("x.yaml", "name: a\ncount: lots\n").unwrap_err();
        assert_eq!((d.line, d.column, d.code.as_str()), (2, 8, "wrong-type"));
    }

    #[test]
    fn reports_empty_file() {
        let d = parse::<Thing>("x.yaml", "  \n").unwrap_err();
        assert_eq!(d.code, "empty-file");
    }
}
