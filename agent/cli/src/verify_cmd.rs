//! `fleetfit-agent verify PATH`: the smoke inference on one model file or snapshot directory,
//! printed as text (one line per field) or as JSON: the ★ ReadinessReport fields (`device`,
//! `state`, `path`, `verified: {…}`) with the whole `SmokeReport` beside them. `apply` runs this command
//! as a child process, so a crash or out-of-memory kill in the inference engine never takes the
//! agent down and the peak memory measured is the inference's own. Exit 0 when passed or
//! skipped (skipped is printed as SKIPPED, never as ok), 1 when failed.

use crate::{OutputFormat, VerifyArgs};
use fleetfit_verify::{SmokeOptions, SmokeOutcome, SmokeReport, verify_path};
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    // candle reads CANDLE_NUM_THREADS (and RAYON_NUM_THREADS) itself when its pools start.
    let opts = SmokeOptions {
        prompt: args.prompt.clone(),
        max_new_tokens: args.max_new_tokens,
        ..SmokeOptions::default()
    };
    let report = verify_path(&args.path, &opts);
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json(&report, args.device.as_deref())?)?
        ),
        OutputFormat::Text => print!("{}", text(&report)),
    }
    Ok(match report.outcome {
        SmokeOutcome::Passed | SmokeOutcome::Skipped => ExitCode::SUCCESS,
        SmokeOutcome::Failed => ExitCode::from(1),
    })
}

/// The ★ ReadinessReport shape (ARCHITECTURE.md: the `--format json` of `apply` and `verify`)
/// with the SmokeReport's own fields at the top level too. `verify` checks no digest (that is
/// `apply`'s job), so `verified.integrity` is false with `integrity_source: "not-checked"`.
fn json(r: &SmokeReport, device: Option<&str>) -> anyhow::Result<serde_json::Value> {
    use fleetfit_core::readiness::{READINESS_SCHEMA, ReadinessState};
    let mut v = serde_json::to_value(r)?;
    let mut verified = r.verification(false);
    verified.integrity_source = Some("not-checked".into());
    let state = match r.outcome {
        SmokeOutcome::Failed => ReadinessState::Failed,
        SmokeOutcome::Passed | SmokeOutcome::Skipped => ReadinessState::Ready,
    };
    let device = device.map_or_else(
        || fleetfit_probe::probe(&fleetfit_probe::ProbeOptions::default()).id,
        str::to_owned,
    );
    let model = std::path::Path::new(&r.path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("schema".into(), READINESS_SCHEMA.into());
        obj.insert("device".into(), device.into());
        obj.insert("state".into(), serde_json::to_value(state)?);
        obj.insert("model".into(), model.into());
        obj.insert("verified".into(), serde_json::to_value(verified)?);
    }
    Ok(v)
}

fn text(r: &SmokeReport) -> String {
    let mut s = String::new();
    let outcome = match r.outcome {
        SmokeOutcome::Passed => "passed",
        SmokeOutcome::Failed => "FAILED",
        SmokeOutcome::Skipped => "SKIPPED (not a pass: the model was not run)",
    };
    let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let _ = writeln!(s, "smoke:              {outcome}");
    let _ = writeln!(s, "detail:             {}", r.detail);
    let _ = writeln!(s, "path:               {}", r.path);
    let _ = writeln!(s, "format:             {}", r.format);
    let _ = writeln!(s, "architecture:       {}", opt(r.architecture.as_deref()));
    let _ = writeln!(s, "tokenizer:          {}", opt(r.tokenizer.as_deref()));
    let _ = writeln!(s, "requantized:        {}", opt(r.requantized.as_deref()));
    let _ = writeln!(s, "load_seconds:       {:.3}", r.load_seconds);
    let _ = writeln!(
        s,
        "prompt_tokens:      {} ({:.1} tok/s)",
        r.prompt_tokens, r.prompt_tokens_per_second
    );
    let _ = writeln!(s, "tokens_per_second:  {:.1}", r.tokens_per_second);
    let _ = writeln!(
        s,
        "generated_text:     {}",
        r.generated_text
            .as_deref()
            .map_or_else(|| "-".to_owned(), |t| format!("{t:?}"))
    );
    let _ = writeln!(s, "generated_ids:      {:?}", r.generated_ids);
    if let Some(d) = r.embedding_dim {
        let _ = writeln!(s, "embedding_dim:      {d}");
    }
    if let Some(n) = r.embedding_norm {
        let _ = writeln!(s, "embedding_norm:     {n:.4} (before normalising)");
    }
    let _ = writeln!(s, "peak_rss_bytes:     {}", r.peak_rss_bytes);
    let _ = writeln!(s, "file_bytes:         {}", r.file_bytes);
    let _ = writeln!(s, "total_seconds:      {:.3}", r.total_seconds);
    s
}
