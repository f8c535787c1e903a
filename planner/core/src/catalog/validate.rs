//! Catalog validation: every file parsed, every rule checked, all problems reported at once.

use super::model::{ArchKind, ArtifactFormat, Model, Task};
use super::{Catalog, quant};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::yaml::{self, find_key};
use std::collections::BTreeMap;

/// Parses and validates `(path, text)` pairs. On success also returns the warnings.
pub fn parse_catalog(sources: &[(String, String)]) -> Result<(Catalog, Diagnostics), Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut models: Vec<(String, String, Model)> = Vec::new();
    for (path, text) in sources {
        match yaml::parse::<Model>(path, text) {
            Ok(m) => {
                diags.0.extend(check_model(path, text, &m));
                models.push((path.clone(), text.clone(), m));
            }
            Err(d) => diags.push(d),
        }
    }
    if sources.is_empty() {
        diags.push(Diagnostic::error(
            "<catalog>",
            0,
            0,
            "empty-catalog",
            "the catalog has no model files: expected at least one `*.yaml` model",
        ));
    }
    let mut first_seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (path, text, m) in &models {
        if let Some(other) = first_seen.get(m.id.as_str()) {
            let p = find_key(text, "id", 0);
            diags.push(Diagnostic::error(
                path,
                p.line,
                p.column,
                "duplicate-id",
                format!("model id `{}` is already defined in `{other}`", m.id),
            ));
        } else {
            first_seen.insert(&m.id, path);
        }
    }
    if diags.has_errors() {
        return Err(diags.sorted());
    }
    let mut models: Vec<Model> = models.into_iter().map(|(_, _, m)| m).collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((Catalog { models }, diags.sorted()))
}

fn file_stem(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    name.strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name)
}

fn check_model(path: &str, text: &str, m: &Model) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut err = |key: &str, nth: usize, code: &str, msg: String| {
        let p = find_key(text, key, nth);
        out.push(Diagnostic::error(path, p.line, p.column, code, msg));
    };
    let id_ok = !m.id.is_empty()
        && m.id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !id_ok {
        err(
            "id",
            0,
            "invalid-id",
            format!(
                "model id `{}` must be lowercase letters, digits, `-` and `.`",
                m.id
            ),
        );
    } else if !path.starts_with('<') && file_stem(path) != m.id {
        err(
            "id",
            0,
            "id-file-mismatch",
            format!(
                "model id `{}` does not match the file name `{}`",
                m.id,
                file_stem(path)
            ),
        );
    }
    if !crate::yaml::is_date(&m.released) {
        err(
            "released",
            0,
            "invalid-date",
            format!(
                "`released: {}` is not a date: expected YYYY-MM-DD",
                m.released
            ),
        );
    }
    if m.tasks.is_empty() {
        err(
            "tasks",
            0,
            "missing-value",
            "`tasks` is empty: expected at least one of chat, code, embedding".to_owned(),
        );
    }
    let a = &m.architecture;
    let positive = [
        ("params_total", a.params_total),
        ("layers", u64::from(a.layers)),
        ("hidden_size", u64::from(a.hidden_size)),
        ("heads", u64::from(a.heads)),
        ("kv_heads", u64::from(a.kv_heads)),
        ("head_dim", u64::from(a.head_dim)),
        ("vocab_size", u64::from(a.vocab_size)),
        ("context_native", u64::from(a.context_native)),
    ];
    for (key, v) in positive {
        if v == 0 {
            err(
                key,
                0,
                "impossible-number",
                format!("`{key}` is 0: expected a positive number"),
            );
        }
    }
    // Upper bounds well past any real model: a typo (an extra zero, bytes for a count) is
    // caught here rather than producing a plan for a model no device can hold.
    let limits = [
        ("params_total", a.params_total, 10_000_000_000_000_u64),
        ("layers", u64::from(a.layers), 1024),
        ("hidden_size", u64::from(a.hidden_size), 131_072),
        ("ffn_size", u64::from(a.ffn_size), 1_048_576),
        ("heads", u64::from(a.heads), 4096),
        ("head_dim", u64::from(a.head_dim), 4096),
        ("vocab_size", u64::from(a.vocab_size), 4_194_304),
        ("context_max", u64::from(a.context_max), 16_777_216),
    ];
    for (key, v, max) in limits {
        if v > max {
            err(
                key,
                0,
                "impossible-number",
                format!("`{key}: {v}` is above {max}: no real model has that"),
            );
        }
    }
    if a.kv_heads > 0 && !a.heads.is_multiple_of(a.kv_heads) {
        err(
            "kv_heads",
            0,
            "impossible-number",
            format!(
                "`heads` ({}) is not a multiple of `kv_heads` ({})",
                a.heads, a.kv_heads
            ),
        );
    }
    if a.context_max < a.context_native {
        err(
            "context_max",
            0,
            "impossible-number",
            format!(
                "`context_max` ({}) is below `context_native` ({})",
                a.context_max, a.context_native
            ),
        );
    }
    if let Some(sw) = &a.sliding_window
        && (sw.swa_layers + sw.full_layers != a.layers || sw.size == 0)
    {
        err(
            "sliding_window",
            0,
            "impossible-number",
            format!(
                "`sliding_window` has {} + {} layers but the model has {}; the window must be > 0",
                sw.swa_layers, sw.full_layers, a.layers
            ),
        );
    }
    match (a.kind, &a.experts, a.params_active) {
        (ArchKind::Moe, None, _) => {
            err(
                "kind",
                0,
                "missing-value",
                "`kind: moe` needs `experts: {total, active, ffn_size}`".to_owned(),
            );
        }
        (ArchKind::Moe, Some(e), active) => {
            if e.active == 0 || e.active > e.total {
                err(
                    "experts",
                    0,
                    "impossible-number",
                    format!("`experts.active` ({}) must be 1..={}", e.active, e.total),
                );
            }
            match active {
                Some(p) if p < a.params_total => {}
                _ => err(
                    "kind",
                    0,
                    "impossible-number",
                    "`kind: moe` needs `params_active` below `params_total`".to_owned(),
                ),
            }
        }
        (ArchKind::Dense, Some(_), _) => {
            err(
                "experts",
                0,
                "impossible-number",
                "`experts` is only allowed with `kind: moe`".to_owned(),
            );
        }
        (ArchKind::Dense, None, Some(p)) if p != a.params_total => {
            err(
                "params_active",
                0,
                "impossible-number",
                "`params_active` is only meaningful with `kind: moe`".to_owned(),
            );
        }
        _ => {}
    }
    if m.has_task(Task::Embedding) && a.embedding_dim.is_none() {
        err(
            "tasks",
            0,
            "missing-value",
            "an embedding model needs `architecture.embedding_dim`".to_owned(),
        );
    }
    for (role, v) in &m.quality.index {
        if !matches!(role.as_str(), "chat" | "code" | "embedding") {
            err(
                "index",
                0,
                "unknown-value",
                format!("quality index role `{role}`: expected chat, code or embedding"),
            );
        }
        if !(0.0..=1.0).contains(v) {
            err(
                "index",
                0,
                "impossible-number",
                format!("quality index `{role}: {v}` is outside 0..1"),
            );
        }
    }
    for task in [Task::Chat, Task::Code, Task::Embedding] {
        if m.has_task(task) && !m.quality.index.contains_key(task.as_str()) {
            err(
                "index",
                0,
                "missing-value",
                format!(
                    "the model has task `{}` but no `quality.index.{}`",
                    task.as_str(),
                    task.as_str()
                ),
            );
        }
    }
    if m.artifacts.is_empty() {
        err(
            "artifacts",
            0,
            "missing-value",
            "`artifacts` is empty: expected at least one downloadable file".to_owned(),
        );
    }
    let mut seen = BTreeMap::new();
    for (i, art) in m.artifacts.iter().enumerate() {
        if !quant::is_known(&art.quant) {
            let hint = did_you_mean(&art.quant, quant::known_names());
            err(
                "quant",
                i,
                "unknown-value",
                format!("unknown quantization `{}`{hint}", art.quant),
            );
        }
        if art.size_bytes > 4_000_000_000_000 {
            err(
                "size_bytes",
                i,
                "impossible-number",
                format!(
                    "artifact `{}` claims {} bytes (> 4 TB)",
                    art.file, art.size_bytes
                ),
            );
        }
        if art.size_bytes == 0 {
            err(
                "size_bytes",
                i,
                "impossible-number",
                format!("artifact `{}` has `size_bytes: 0`", art.file),
            );
        }
        if let Some(sha) = &art.sha256
            && (sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            err(
                "sha256",
                i,
                "invalid-value",
                format!("`sha256: {sha}` is not 64 hex digits"),
            );
        }
        if let Some(url) = &art.url
            && !["https://", "http://", "file://"]
                .iter()
                .any(|s| url.starts_with(s) && url.len() > s.len())
        {
            err(
                "url",
                i,
                "invalid-value",
                format!("`url: {url}` must be an https://, http:// or file:// URL"),
            );
        }
        let npu_format = matches!(art.format, ArtifactFormat::Openvino | ArtifactFormat::Onnx);
        if npu_format != art.npu.is_some() && npu_format {
            err(
                "npu",
                i,
                "missing-value",
                format!(
                    "artifact `{}` is {} but names no `npu`",
                    art.file,
                    art.format.as_str()
                ),
            );
        }
        if let Some(prev) = seen.insert((art.quant.clone(), art.format, art.npu), i) {
            err(
                "quant",
                i,
                "duplicate-artifact",
                format!(
                    "artifact {i} repeats quant `{}` ({}) of artifact {prev}",
                    art.quant,
                    art.format.as_str()
                ),
            );
        }
    }
    out
}

/// ` (did you mean `X`?)` when a known name is within edit distance 2, else empty.
pub fn did_you_mean<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> String {
    let g = given.to_ascii_lowercase();
    known
        .map(|k| (edit_distance(&g, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../../../catalog/smollm2-135m-instruct.yaml");

    fn one(path: &str, text: &str) -> Result<(Catalog, Diagnostics), Diagnostics> {
        parse_catalog(&[(path.to_owned(), text.to_owned())])
    }

    #[test]
    fn accepts_the_real_smollm2_entry() {
        let (c, _) = one("catalog/smollm2-135m-instruct.yaml", GOOD).unwrap();
        assert_eq!(c.models[0].architecture.layers, 30);
    }

    #[test]
    fn rejects_unknown_field_with_location() {
        let bad = GOOD.replace("  layers: 30\n", "  layers: 30\n  layerz: 31\n");
        let d = one("catalog/smollm2-135m-instruct.yaml", &bad).unwrap_err();
        assert_eq!(d.0[0].code, "unknown-field");
        assert_eq!((d.0[0].line, d.0[0].column), (15, 3), "{d}");
    }

    #[test]
    fn misspelled_field_and_task_suggest_the_nearest() {
        let bad = GOOD.replacen("family:", "famly:", 1);
        let d = one("catalog/smollm2-135m-instruct.yaml", &bad).unwrap_err();
        assert!(d.0[0].message.contains("did you mean `family`?"), "{d}");
    }

    #[test]
    fn rejects_impossible_numbers_all_at_once() {
        let bad = GOOD
            .replace("  kv_heads: 3\n", "  kv_heads: 4\n")
            .replace("  context_max: 8192\n", "  context_max: 100\n");
        let d = one("catalog/smollm2-135m-instruct.yaml", &bad).unwrap_err();
        let codes: Vec<_> = d.iter().map(|x| (x.line, x.code.as_str())).collect();
        assert_eq!(
            codes,
            vec![(18, "impossible-number"), (23, "impossible-number")],
            "{d}"
        );
    }

    #[test]
    fn rejects_duplicate_ids_across_files() {
        let d = parse_catalog(&[
            ("a/smollm2-135m-instruct.yaml".into(), GOOD.into()),
            ("b/smollm2-135m-instruct.yaml".into(), GOOD.into()),
        ])
        .unwrap_err();
        assert!(
            d.iter()
                .any(|x| x.code == "duplicate-id" && x.path.starts_with("b/")),
            "{d}"
        );
    }

    #[test]
    fn rejects_an_empty_catalog() {
        let d = parse_catalog(&[]).unwrap_err();
        assert_eq!(d.0[0].code, "empty-catalog");
    }

    #[test]
    fn suggests_the_nearest_quant_name() {
        let bad = GOOD.replace("quant: Q4_1", "quant: Q41");
        let d = one("catalog/smollm2-135m-instruct.yaml", &bad).unwrap_err();
        assert!(d.0[0].message.contains("did you mean `Q4_1`"), "{d}");
    }
}
