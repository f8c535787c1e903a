//! Runtime hand-off: the command lines that run the installed file in llama.cpp and Ollama,
//! derived from the plan's own run commands (same context, offload and KV flags) with the hub
//! download replaced by the local, verified file.

use fleetfit_core::plan::{Assignment, RunCommand};
use std::path::Path;

/// `llama-server -m PATH …` and an Ollama Modelfile + `ollama create` for `installed`
/// (`<state dir>/models/<role>`, the stable link). GGUF only; other formats get none.
pub fn local_commands(a: &Assignment, installed: &Path) -> (Vec<RunCommand>, Option<String>) {
    if a.artifact.format != "gguf" {
        return (Vec::new(), None);
    }
    let path = shell_quote(&installed.display().to_string());
    let mut out = Vec::new();
    if let Some(llama) = a.run.iter().find(|r| r.runtime == "llama.cpp") {
        let hub = format!(
            "--hf-repo {} --hf-file {}",
            a.artifact.repo, a.artifact.file
        );
        out.push(RunCommand {
            runtime: "llama.cpp".into(),
            command: llama.command.replace(&hub, &format!("-m {path}")),
        });
    }
    let modelfile = format!(
        "FROM {}\nPARAMETER num_ctx {}\n",
        installed.display(),
        a.context_tokens
    );
    let name = format!("fleetfit-{}", a.model.to_ascii_lowercase());
    out.push(RunCommand {
        runtime: "ollama".into(),
        command: format!("ollama create {name} -f Modelfile && ollama run {name}"),
    });
    (out, Some(modelfile))
}

/// Quotes `s` for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(
            shell_quote("/var/lib/fleetfit/models/chat"),
            "/var/lib/fleetfit/models/chat"
        );
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
