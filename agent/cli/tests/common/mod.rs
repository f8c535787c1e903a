//! Shared setup of the agent's end-to-end tests: a local hub, a test catalog and policy, tiny
//! models written with candle's GGUF writer, and the agent binary.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)] // test helpers: failed setup fails loudly

use fleetfit_core::readiness::ReadinessReport;
use fleetfit_testhub::TestHub;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SYSROOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/hosts/cpu-only-vm"
);

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A device, a hub, a catalog and policy dir, a cache and a state dir.
pub struct World {
    pub dir: tempfile::TempDir,
    pub hub: TestHub,
}

/// One catalog model: id, repo, file, format, bytes served, sha256 the catalog claims (None:
/// leave it out), quality (the planner picks the highest).
pub struct Entry<'a> {
    pub id: &'a str,
    pub repo: &'a str,
    pub file: &'a str,
    pub format: &'a str,
    pub arch: &'a str,
    pub size: u64,
    pub sha256: Option<String>,
    pub quality: f64,
    pub task: &'a str,
    /// A plain `https://`/`file://` URL to download instead of the hub.
    pub url: Option<String>,
}

impl World {
    pub fn new() -> Self {
        let w = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            hub: TestHub::start(),
        };
        for d in ["catalog", "policies", "cache", "state"] {
            std::fs::create_dir_all(w.dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(
            w.path("policies/test.yaml"),
            "apiVersion: fleetfit/v1\nkind: FleetPolicy\nmetadata: {name: test}\n\
             defaults:\n  roles: [chat]\n  objective: best_quality\n  memory: {headroom_pct: 10}\n\
             \x20 context: {target_tokens: 2048}\n  require: {min_context_tokens: 512}\n",
        )
        .expect("policy");
        w
    }

    /// A world whose hub and catalog hold one tiny llama GGUF (`tiny-llama`, Q8_0), and its bytes.
    pub fn with_tiny_model() -> (Self, Vec<u8>) {
        let w = Self::new();
        let bytes = tiny_gguf(w.dir.path(), "llama", "tiny.gguf");
        w.hub.add_file(
            "acme/tiny-llama-GGUF",
            "tiny-llama.Q8_0.gguf",
            bytes.clone(),
        );
        w.catalog(&[entry(
            "tiny-llama",
            "acme/tiny-llama-GGUF",
            "tiny-llama.Q8_0.gguf",
            &bytes,
            0.5,
        )]);
        (w, bytes)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Replaces the catalog with `entries`.
    pub fn catalog(&self, entries: &[Entry<'_>]) {
        let dir = self.path("catalog");
        for e in std::fs::read_dir(&dir).expect("ls") {
            std::fs::remove_file(e.expect("entry").path()).expect("rm");
        }
        for e in entries {
            let sha = e
                .sha256
                .as_ref()
                .map(|s| format!("    sha256: {s}\n"))
                .unwrap_or_default()
                + &e.url
                    .as_ref()
                    .map(|u| format!("    url: {u}\n"))
                    .unwrap_or_default();
            let (index, emb) = if e.task == "embedding" {
                (
                    format!("{{embedding: {}}}", e.quality),
                    "  embedding_dim: 64\n",
                )
            } else {
                (format!("{{chat: {}}}", e.quality), "")
            };
            let yaml = format!(
                "id: {id}\nname: {id}\nfamily: test\nvendor: fleetfit tests\nhf_repo: {repo}\n\
                 released: 2026-01-01\nlicense: Apache-2.0\ntasks: [{task}]\narchitecture:\n\
                 \x20 gguf_arch: {arch}\n  kind: dense\n  params_total: 3000000\n  layers: 2\n\
                 \x20 hidden_size: 256\n  ffn_size: 512\n  heads: 4\n  kv_heads: 2\n  head_dim: 64\n\
                 \x20 vocab_size: 512\n  tied_embeddings: true\n  context_native: 4096\n\
                 \x20 context_max: 4096\n{emb}quality:\n  index: {index}\n  basis: test\n  scores: []\n\
                 artifacts:\n  - quant: Q8_0\n    format: {format}\n    repo: {repo}\n    revision: main\n\
                 \x20   file: {file}\n    size_bytes: {size}\n    size_exact: true\n{sha}",
                id = e.id,
                repo = e.repo,
                file = e.file,
                format = e.format,
                arch = e.arch,
                size = e.size,
                task = e.task,
            );
            std::fs::write(dir.join(format!("{}.yaml", e.id)), yaml).expect("catalog");
        }
    }

    pub fn apply(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetfit-agent"));
        cmd.arg("apply")
            .args(["--sysroot", SYSROOT])
            .arg("--catalog")
            .arg(self.path("catalog"))
            .arg("--policies")
            .arg(self.path("policies"))
            .arg("--models-dir")
            .arg(self.path("cache"))
            .arg("--state-dir")
            .arg(self.path("state"))
            .args(["--format", "json", "--today", "2026-11-24"])
            .args(extra)
            .env("HF_ENDPOINT", self.hub.url())
            .env("CANDLE_NUM_THREADS", "1")
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env("HF_HOME", self.path("hf-home"));
        cmd.output().expect("spawn fleetfit-agent")
    }

    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("state/state.json")).expect("state.json");
        serde_json::from_str(&text).expect("state json")
    }
}

pub fn report_of(o: &Output) -> ReadinessReport {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a ReadinessReport ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

pub fn tiny_gguf(dir: &Path, arch: &str, name: &str) -> Vec<u8> {
    use fleetfit_verify::synthetic;
    let path = dir.join(name);
    if synthetic::TINY_ARCHITECTURES.contains(&arch) {
        synthetic::write_tiny_gguf(&path, arch, synthetic::TinyDtype::Q8_0, true)
            .expect("write tiny gguf");
    } else {
        // An architecture candle has no model for: a llama file relabelled.
        let base = dir.join(format!("{name}.llama"));
        synthetic::write_tiny_gguf(&base, "llama", synthetic::TinyDtype::Q8_0, true)
            .expect("write tiny gguf");
        let (mut md, tensors) = synthetic::read_gguf(&base).expect("read back");
        for (k, v) in &mut md {
            if k == "general.architecture" {
                *v = synthetic::string_value(arch);
            }
        }
        synthetic::write_gguf(&path, &md, &tensors).expect("relabelled gguf");
    }
    std::fs::read(path).expect("read tiny gguf")
}

pub fn entry<'a>(
    id: &'a str,
    repo: &'a str,
    file: &'a str,
    bytes: &[u8],
    quality: f64,
) -> Entry<'a> {
    Entry {
        id,
        repo,
        file,
        format: "gguf",
        arch: "llama",
        size: bytes.len() as u64,
        sha256: Some(sha256_hex(bytes)),
        quality,
        task: "chat",
        url: None,
    }
}
