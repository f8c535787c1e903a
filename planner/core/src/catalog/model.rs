//! Catalog types, exactly as written in `catalog/*.yaml` (see `catalog/README.md`).

use crate::units::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One model and its artifacts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub family: String,
    pub vendor: String,
    pub hf_repo: String,
    /// `YYYY-MM-DD`.
    pub released: String,
    /// SPDX id or the vendor's licence id.
    pub license: String,
    pub tasks: Vec<Task>,
    pub architecture: Architecture,
    pub quality: Quality,
    pub artifacts: Vec<Artifact>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// What a model is for. A role (chat, code, embedding) needs the task of the same name.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Chat,
    Code,
    Reasoning,
    Embedding,
    Vision,
    Tools,
}

impl Task {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Chat => "chat",
            Task::Code => "code",
            Task::Reasoning => "reasoning",
            Task::Embedding => "embedding",
            Task::Vision => "vision",
            Task::Tools => "tools",
        }
    }
}

/// Dense or mixture-of-experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArchKind {
    Dense,
    Moe,
}

/// The numbers the estimator needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// llama.cpp `general.architecture`.
    pub gguf_arch: String,
    pub kind: ArchKind,
    pub params_total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_active: Option<u64>,
    pub layers: u32,
    pub hidden_size: u32,
    pub ffn_size: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub vocab_size: u32,
    pub tied_embeddings: bool,
    pub context_native: u32,
    pub context_max: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<SlidingWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<Experts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_dim: Option<u32>,
}

/// Sliding-window attention layers (Gemma 3, gpt-oss).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlidingWindow {
    pub size: u32,
    pub swa_layers: u32,
    pub full_layers: u32,
}

/// Mixture-of-experts shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experts {
    pub total: u32,
    pub active: u32,
    pub ffn_size: u32,
    #[serde(default)]
    pub shared: u32,
}

/// Quality: a comparable index per role, and the published scores behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// 0..1 per role name (`chat`, `code`, `embedding`).
    pub index: BTreeMap<String, f64>,
    pub basis: String,
    #[serde(default)]
    pub scores: Vec<Score>,
}

/// One published benchmark number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Score {
    pub benchmark: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub value: f64,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<String>,
}

/// File format of an artifact.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactFormat {
    Gguf,
    Safetensors,
    Openvino,
    Onnx,
}

impl ArtifactFormat {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactFormat::Gguf => "gguf",
            ArtifactFormat::Safetensors => "safetensors",
            ArtifactFormat::Openvino => "openvino",
            ArtifactFormat::Onnx => "onnx",
        }
    }
}

/// One downloadable file (or file set) of a model at one quantization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub quant: String,
    pub format: ArtifactFormat,
    pub repo: String,
    pub revision: String,
    pub file: String,
    pub size_bytes: u64,
    pub size_exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For NPU formats: which NPU runtime (`intel`, `amd`, `qualcomm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npu: Option<crate::profile::NpuVendor>,
    /// A plain `https://`, `http://` or `file://` URL the agent downloads instead of the hub,
    /// for fleets that serve models from their own storage (`repo`/`file` still name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Artifact {
    /// Bytes on disk (and, for mmap'd GGUF, the weights in memory).
    pub fn size(&self) -> Bytes {
        Bytes(self.size_bytes)
    }
}

impl Model {
    /// Whether the model declares this task.
    pub fn has_task(&self, task: Task) -> bool {
        self.tasks.contains(&task)
    }

    /// Parameters in billions.
    pub fn params_b(&self) -> f64 {
        self.architecture.params_total as f64 / 1e9
    }

    /// Parameters read per token (all of them for dense models).
    pub fn params_active(&self) -> u64 {
        self.architecture
            .params_active
            .unwrap_or(self.architecture.params_total)
    }
}
