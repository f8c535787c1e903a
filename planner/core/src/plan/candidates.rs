//! The candidate table: every (model, artifact) of the catalog with what ranking needs,
//! computed once per plan, never per device.

use crate::catalog::{Catalog, Model, Task, quant};
use crate::estimate::ModelShape;
use crate::policy::Role;

/// One (model, artifact) pair.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub model: usize,
    pub artifact: usize,
    /// Quality after quantization loss, per role (None: the model lacks the role's task).
    pub quality: [Option<f64>; 3],
    /// Bytes read per token at zero context (for the `fastest` objective).
    pub active_bytes: u64,
}

/// All candidates and per-model shapes.
#[derive(Clone, Debug)]
pub struct CandidateTable {
    pub candidates: Vec<Candidate>,
    pub shapes: Vec<ModelShape>,
}

/// Index of a role in `Candidate::quality`.
pub fn role_index(role: Role) -> usize {
    match role {
        Role::Chat => 0,
        Role::Code => 1,
        Role::Embedding => 2,
    }
}

/// The precision a model was released in (no quality loss at it).
pub fn native_quant(m: &Model) -> Option<&'static str> {
    if m.family.starts_with("gpt-oss") {
        Some("MXFP4")
    } else {
        None
    }
}

impl CandidateTable {
    /// Builds the table.
    pub fn new(catalog: &Catalog) -> CandidateTable {
        let mut candidates = Vec::new();
        let mut shapes = Vec::new();
        for (mi, m) in catalog.models.iter().enumerate() {
            let shape = ModelShape::from_catalog(&m.architecture, m.has_task(Task::Embedding));
            for (ai, a) in m.artifacts.iter().enumerate() {
                let loss =
                    quant::quality_loss(&a.quant, m.architecture.params_total, native_quant(m));
                let q = |role: Role| {
                    if m.has_task(role.task()) {
                        m.quality.index.get(role.as_str()).map(|v| v * (1.0 - loss))
                    } else {
                        None
                    }
                };
                let embd = shape.token_embd_bytes(a.size_bytes);
                let active = crate::estimate::speed::bytes_per_token(
                    a.size_bytes,
                    embd,
                    m.architecture.params_total,
                    m.params_active(),
                    0,
                );
                candidates.push(Candidate {
                    model: mi,
                    artifact: ai,
                    quality: [q(Role::Chat), q(Role::Code), q(Role::Embedding)],
                    active_bytes: active,
                });
            }
            shapes.push(shape);
        }
        CandidateTable { candidates, shapes }
    }
}
