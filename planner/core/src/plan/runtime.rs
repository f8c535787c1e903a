//! Runtime hand-off: the command lines that run an assignment in the runtimes people use
//! (llama.cpp's `llama-server`, Ollama), derived from its artifact and placement. Pure text.

use super::model::{Assignment, RunCommand};
use crate::estimate::{Backend, KvType};
use std::fmt::Write as _;

/// Commands that run `a`: `llama-server` (downloads through the Hugging Face hub protocol with
/// `--hf-repo/--hf-file`, honouring `HF_ENDPOINT`) and `ollama run hf.co/…`, for GGUF artifacts.
/// Other formats get none: their runtimes (OpenVINO GenAI, ONNX Runtime GenAI, candle) take a
/// directory the agent prepares.
pub fn run_commands(a: &Assignment, kv_type: KvType) -> Vec<RunCommand> {
    if a.artifact.format != "gguf" {
        return Vec::new();
    }
    let mut llama = String::new();
    if a.placement.backend == Backend::Cuda && !a.placement.gpu_bytes.is_empty() {
        let visible: Vec<String> = a.placement.gpus.iter().map(ToString::to_string).collect();
        let _ = write!(llama, "CUDA_VISIBLE_DEVICES={} ", visible.join(","));
    }
    let _ = write!(
        llama,
        "llama-server --hf-repo {} --hf-file {} -c {}",
        a.artifact.repo, a.artifact.file, a.context_tokens
    );
    let layers = match a.placement.backend {
        Backend::Cpu | Backend::Npu => 0,
        _ => a.placement.gpu_layers,
    };
    // llama.cpp counts the output layer in -ngl: "all layers" is any number above the block count.
    // Unified placements and discrete ones that left only the embedding table on the host are
    // full offloads; a partial one names its layer count.
    let partial = !a.placement.gpu_bytes.is_empty()
        && a.placement.system_bytes >= a.estimate.memory_bytes / 4;
    let full = layers > 0 && !partial;
    let _ = write!(llama, " -ngl {}", if full { 999 } else { layers });
    // A quantized V cache needs flash attention; GPU backends run it by default anyway.
    if a.placement.backend != Backend::Cpu || kv_type != KvType::F16 {
        llama.push_str(" -fa on");
    }
    if kv_type != KvType::F16 {
        let _ = write!(llama, " --cache-type-k {kv_type} --cache-type-v {kv_type}");
    }
    if a.role == crate::policy::Role::Embedding {
        llama.push_str(" --embeddings");
    }
    let ollama = format!("ollama run hf.co/{}:{}", a.artifact.repo, a.quant);
    vec![
        RunCommand {
            runtime: "llama.cpp".into(),
            command: llama,
        },
        RunCommand {
            runtime: "ollama".into(),
            command: ollama,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{ArtifactRef, EstimateReport, PlacementReport};
    use crate::policy::Role;

    fn assignment(
        backend: Backend,
        gpu_layers: u32,
        gpus: Vec<usize>,
        gpu_bytes: Vec<u64>,
        system_bytes: u64,
    ) -> Assignment {
        Assignment {
            role: Role::Chat,
            model: "qwen3-8b".into(),
            quant: "Q4_K_M".into(),
            context_tokens: 16384,
            placement: PlacementReport {
                backend,
                gpu_layers,
                gpus,
                gpu_bytes,
                system_bytes,
            },
            artifact: ArtifactRef {
                repo: "Qwen/Qwen3-8B-GGUF".into(),
                revision: "main".into(),
                file: "Qwen3-8B-Q4_K_M.gguf".into(),
                format: "gguf".into(),
                size_bytes: 5_000_000_000,
                size_exact: true,
                sha256: None,
                url: None,
            },
            estimate: EstimateReport {
                memory_bytes: 8_000_000_000,
                weights_bytes: 5_000_000_000,
                kv_cache_bytes: 2_000_000_000,
                compute_bytes: 300_000_000,
                overhead_bytes: 500_000_000,
                tokens_per_second: 40.0,
                pool: "GPU memory".into(),
                pool_used_bytes: 8_000_000_000,
                pool_capacity_bytes: 24_000_000_000,
            },
            quality: 0.77,
            because: Vec::new(),
            run: Vec::new(),
        }
    }

    #[test]
    fn full_offload_on_one_cuda_gpu_pins_the_gpu_and_offloads_everything() {
        let a = assignment(Backend::Cuda, 36, vec![2], vec![7_500_000_000], 400_000_000);
        let cmds = run_commands(&a, KvType::F16);
        assert_eq!(
            cmds[0].command,
            "CUDA_VISIBLE_DEVICES=2 llama-server --hf-repo Qwen/Qwen3-8B-GGUF --hf-file Qwen3-8B-Q4_K_M.gguf -c 16384 -ngl 999 -fa on"
        );
        assert_eq!(
            cmds[1].command,
            "ollama run hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M"
        );
    }

    #[test]
    fn partial_offload_names_its_layers_and_quantized_kv_turns_on_flash_attention() {
        let a = assignment(
            Backend::Cuda,
            20,
            vec![0],
            vec![4_000_000_000],
            4_000_000_000,
        );
        let cmd = &run_commands(&a, KvType::Q8_0)[0].command;
        assert!(
            cmd.ends_with("-ngl 20 -fa on --cache-type-k q8_0 --cache-type-v q8_0"),
            "{cmd}"
        );
        let cpu = assignment(Backend::Cpu, 0, vec![], vec![], 8_000_000_000);
        assert!(
            run_commands(&cpu, KvType::F16)[0]
                .command
                .ends_with("-c 16384 -ngl 0")
        );
    }

    #[test]
    fn non_gguf_artifacts_get_no_commands() {
        let mut a = assignment(Backend::Npu, 0, vec![], vec![], 8_000_000_000);
        a.artifact.format = "openvino".into();
        assert!(run_commands(&a, KvType::F16).is_empty());
    }
}
