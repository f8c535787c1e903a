#!/usr/bin/env python3
"""Write synthetic GGUF files with the exact tensor names, shapes and metadata that
llama.cpp expects for a few architectures, with all tensor data zero.

Only the allocation sizes matter for the ground-truth measurements, so the tensor
data region is created with ftruncate (a sparse file: no disk blocks, no RAM), and
only the header (metadata + tensor infos) is really written.

The tokenizer is a minimal SentencePiece ("llama") vocab of exactly n_vocab tokens:
<unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (so any prompt tokenizes via
byte fallback), then dummy tokens.

Usage: python3 make_ggufs.py OUT_DIR [name ...]      (default: all models)
Needs: pip install gguf numpy   (gguf-py; the copy vendored in llama.cpp works too)
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

F32 = T.F32


def nbytes(ggml_type: T, ne: list[int]) -> int:
    block, size = gguf.GGML_QUANT_SIZES[ggml_type]
    n = 1
    for d in ne:
        n *= d
    assert ne[0] % block == 0, (ggml_type, ne)
    return n // block * size


class Model:
    """Tensor list in ggml order (ne0 first) + metadata writer callback."""

    def __init__(self, arch: str):
        self.arch = arch
        self.tensors: list[tuple[str, list[int], T]] = []

    def t(self, name: str, ne: list[int], ggml_type: T) -> None:
        if len(ne) == 1:
            ggml_type = F32  # norms / biases / sinks are always F32 in real files
        self.tensors.append((name, ne, ggml_type))


def add_vocab(w: gguf.GGUFWriter, n_vocab: int) -> None:
    toks: list[str] = ["<unk>", "<s>", "</s>"]
    types: list[int] = [2, 3, 3]  # UNKNOWN, CONTROL, CONTROL
    for b in range(256):
        toks.append(f"<0x{b:02X}>")
        types.append(6)  # BYTE
    i = 0
    while len(toks) < n_vocab:
        toks.append(f"tok{i}")
        types.append(1)  # NORMAL
        i += 1
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)


def dense_layers(m: Model, L: int, n_embd: int, n_head: int, n_head_kv: int, head_dim: int,
                 n_ff: int, wt: T, qk_norm: bool, post_norms: bool) -> None:
    q = n_head * head_dim
    kv = n_head_kv * head_dim
    for i in range(L):
        p = f"blk.{i}."
        m.t(p + "attn_norm.weight", [n_embd], F32)
        m.t(p + "attn_q.weight", [n_embd, q], wt)
        m.t(p + "attn_k.weight", [n_embd, kv], wt)
        m.t(p + "attn_v.weight", [n_embd, kv], wt)
        m.t(p + "attn_output.weight", [q, n_embd], wt)
        if qk_norm:
            m.t(p + "attn_q_norm.weight", [head_dim], F32)
            m.t(p + "attn_k_norm.weight", [head_dim], F32)
        if post_norms:
            m.t(p + "post_attention_norm.weight", [n_embd], F32)
            m.t(p + "post_ffw_norm.weight", [n_embd], F32)
        m.t(p + "ffn_norm.weight", [n_embd], F32)
        m.t(p + "ffn_gate.weight", [n_embd, n_ff], wt)
        m.t(p + "ffn_up.weight", [n_embd, n_ff], wt)
        m.t(p + "ffn_down.weight", [n_ff, n_embd], wt)


# ---------------------------------------------------------------------------
# model definitions (shapes from the public HF config.json of each model)
# ---------------------------------------------------------------------------

MODELS: dict[str, dict] = {}


def model(fn):
    MODELS[fn.__name__] = fn()
    return fn


@model
def llama31_8b_q4_0():
    # meta-llama/Llama-3.1-8B-Instruct; "pure" Q4_0 (every matrix Q4_0, like llama-quantize --pure)
    return dict(arch="llama", name="synthetic llama-3.1-8b shape", ftype="Q4_0",
                file_type=gguf.LlamaFileType.MOSTLY_Q4_0, wt=T.Q4_0,
                layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336,
                vocab=128256, ctx=131072, rope_base=500000.0, eps=1e-5, tied=False,
                sliding_window=None, experts=None, experts_used=None, expert_ffn=None)


@model
def qwen3_0_6b_q8_0():
    # Qwen/Qwen3-0.6B: q dim (16*128=2048) != hidden (1024), tied embeddings, q/k norm
    return dict(arch="qwen3", name="synthetic qwen3-0.6b shape", ftype="Q8_0",
                file_type=gguf.LlamaFileType.MOSTLY_Q8_0, wt=T.Q8_0,
                layers=28, hidden=1024, heads=16, kv_heads=8, head_dim=128, ffn=3072,
                vocab=151936, ctx=40960, rope_base=1000000.0, eps=1e-6, tied=True,
                sliding_window=None, experts=None, experts_used=None, expert_ffn=None)


@model
def gemma3_1b_q8_0():
    # google/gemma-3-1b-it: 26 layers, SWA 512, pattern 6 (5 SWA : 1 global), head_dim 256
    return dict(arch="gemma3", name="synthetic gemma-3-1b shape", ftype="Q8_0",
                file_type=gguf.LlamaFileType.MOSTLY_Q8_0, wt=T.Q8_0,
                layers=26, hidden=1152, heads=4, kv_heads=1, head_dim=256, ffn=6912,
                vocab=262144, ctx=32768, rope_base=1000000.0, rope_base_swa=10000.0, eps=1e-6,
                tied=True, sliding_window=512, swa_pattern=6,
                experts=None, experts_used=None, expert_ffn=None)


@model
def qwen3moe_small_q8_0():
    # small Qwen3-MoE: 8 layers, hidden 1024, 16 heads / 4 kv, head_dim 128,
    # 16 experts, 4 active, expert ffn 512
    return dict(arch="qwen3moe", name="synthetic small qwen3moe shape", ftype="Q8_0",
                file_type=gguf.LlamaFileType.MOSTLY_Q8_0, wt=T.Q8_0,
                layers=8, hidden=1024, heads=16, kv_heads=4, head_dim=128, ffn=2048,
                vocab=151936, ctx=40960, rope_base=1000000.0, eps=1e-6, tied=False,
                sliding_window=None, experts=16, experts_used=4, expert_ffn=512)


@model
def qwen3moe_30b_a3b_q4_0():
    # Qwen/Qwen3-30B-A3B: 48 layers, 128 experts, 8 active, expert ffn 768; pure Q4_0 (~16 GiB sparse).
    # Only measured with the no-alloc dry run (reading 16 GiB of zero pages is not worth it here).
    return dict(arch="qwen3moe", name="synthetic qwen3-30b-a3b shape", ftype="Q4_0",
                file_type=gguf.LlamaFileType.MOSTLY_Q4_0, wt=T.Q4_0,
                layers=48, hidden=2048, heads=32, kv_heads=4, head_dim=128, ffn=6144,
                vocab=151936, ctx=40960, rope_base=1000000.0, eps=1e-6, tied=False,
                sliding_window=None, experts=128, experts_used=8, expert_ffn=768)


@model
def gpt_oss_20b_mxfp4():
    # openai/gpt-oss-20b: experts MXFP4, other matrices Q8_0, SWA 128 on every other layer,
    # attention sinks, biases
    return dict(arch="gpt-oss", name="synthetic gpt-oss-20b shape", ftype="MXFP4 (experts) + Q8_0",
                file_type=gguf.LlamaFileType.MOSTLY_MXFP4_MOE, wt=T.Q8_0,
                layers=24, hidden=2880, heads=64, kv_heads=8, head_dim=64, ffn=2880,
                vocab=201088, ctx=131072, rope_base=150000.0, eps=1e-5, tied=False,
                sliding_window=128, swa_pattern=2,
                experts=32, experts_used=4, expert_ffn=2880)


def build(cfg: dict) -> Model:
    a = cfg["arch"]
    m = Model(a)
    E, H, V, L = cfg["hidden"], cfg["heads"], cfg["vocab"], cfg["layers"]
    KVH, HD, FF, wt = cfg["kv_heads"], cfg["head_dim"], cfg["ffn"], cfg["wt"]
    m.t("token_embd.weight", [E, V], wt)
    m.t("output_norm.weight", [E], F32)
    if not cfg["tied"]:
        m.t("output.weight", [E, V], wt)
    if a == "llama":
        m.t("rope_freqs.weight", [HD // 2], F32)  # llama3 rope scaling factors (real files have it)
        dense_layers(m, L, E, H, KVH, HD, FF, wt, qk_norm=False, post_norms=False)
    elif a == "qwen3":
        dense_layers(m, L, E, H, KVH, HD, FF, wt, qk_norm=True, post_norms=False)
    elif a == "gemma3":
        dense_layers(m, L, E, H, KVH, HD, FF, wt, qk_norm=True, post_norms=True)
    elif a == "qwen3moe":
        X, XF = cfg["experts"], cfg["expert_ffn"]
        for i in range(L):
            p = f"blk.{i}."
            m.t(p + "attn_norm.weight", [E], F32)
            m.t(p + "attn_q.weight", [E, H * HD], wt)
            m.t(p + "attn_k.weight", [E, KVH * HD], wt)
            m.t(p + "attn_v.weight", [E, KVH * HD], wt)
            m.t(p + "attn_output.weight", [H * HD, E], wt)
            m.t(p + "attn_q_norm.weight", [HD], F32)
            m.t(p + "attn_k_norm.weight", [HD], F32)
            m.t(p + "ffn_norm.weight", [E], F32)
            m.t(p + "ffn_gate_inp.weight", [E, X], F32)  # router kept F32 like llama-quantize does
            m.t(p + "ffn_gate_exps.weight", [E, XF, X], wt)
            m.t(p + "ffn_up_exps.weight", [E, XF, X], wt)
            m.t(p + "ffn_down_exps.weight", [XF, E, X], wt)
    elif a == "gpt-oss":
        X, XF = cfg["experts"], cfg["expert_ffn"]
        for i in range(L):
            p = f"blk.{i}."
            m.t(p + "attn_norm.weight", [E], F32)
            m.t(p + "post_attention_norm.weight", [E], F32)
            m.t(p + "attn_q.weight", [E, H * HD], wt)
            m.t(p + "attn_q.bias", [H * HD], F32)
            m.t(p + "attn_k.weight", [E, KVH * HD], wt)
            m.t(p + "attn_k.bias", [KVH * HD], F32)
            m.t(p + "attn_v.weight", [E, KVH * HD], wt)
            m.t(p + "attn_v.bias", [KVH * HD], F32)
            m.t(p + "attn_output.weight", [H * HD, E], wt)
            m.t(p + "attn_output.bias", [E], F32)
            m.t(p + "attn_sinks.weight", [H], F32)
            m.t(p + "ffn_gate_inp.weight", [E, X], F32)
            m.t(p + "ffn_gate_inp.bias", [X], F32)
            m.t(p + "ffn_gate_exps.weight", [E, XF, X], T.MXFP4)
            m.t(p + "ffn_up_exps.weight", [E, XF, X], T.MXFP4)
            m.t(p + "ffn_down_exps.weight", [XF, E, X], T.MXFP4)
            m.t(p + "ffn_gate_exps.bias", [XF, X], F32)
            m.t(p + "ffn_up_exps.bias", [XF, X], F32)
            m.t(p + "ffn_down_exps.bias", [E, X], F32)
    else:
        raise ValueError(a)
    return m


def write(cfg: dict, path: str) -> dict:
    a = cfg["arch"]
    m = build(cfg)
    w = gguf.GGUFWriter(path, a)
    w.add_name(cfg["name"])
    w.add_file_type(int(cfg["file_type"]))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(cfg["ctx"])
    w.add_embedding_length(cfg["hidden"])
    w.add_block_count(cfg["layers"])
    w.add_feed_forward_length(cfg["ffn"])
    w.add_head_count(cfg["heads"])
    w.add_head_count_kv(cfg["kv_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_base"])
    w.add_layer_norm_rms_eps(cfg["eps"])
    w.add_vocab_size(cfg["vocab"])
    if cfg.get("sliding_window"):
        w.add_sliding_window(cfg["sliding_window"])
    if a == "gemma3":
        w.add_rope_freq_base_swa(cfg["rope_base_swa"])
    if cfg.get("experts"):
        w.add_expert_count(cfg["experts"])
        w.add_expert_used_count(cfg["experts_used"])
        w.add_expert_feed_forward_length(cfg["expert_ffn"])
    if a == "gpt-oss":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(32.0)
        w.add_rope_scaling_orig_ctx_len(4096)
    add_vocab(w, cfg["vocab"])

    data_bytes = 0
    for name, ne, ty in m.tensors:
        nb = nbytes(ty, ne)
        # gguf-py takes the numpy-order shape (outermost first) when a raw dtype is given
        w.add_tensor_info(name, list(reversed(ne)), np.dtype(np.float32), nb, raw_dtype=ty)
        data_bytes += gguf.GGUFWriter.ggml_pad(nb, w.data_alignment)

    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    hdr = fout.tell()
    data_start = gguf.GGUFWriter.ggml_pad(hdr, w.data_alignment)
    total = data_start + data_bytes
    fout.truncate(total)  # sparse: all tensor data are zero bytes
    w.close()
    assert os.path.getsize(path) == total
    n_params = sum(int(np.prod(ne)) for _, ne, _ in m.tensors)
    return dict(path=path, file_size_bytes=total, tensor_data_bytes=data_bytes,
                header_bytes=data_start, n_tensors=len(m.tensors), n_params=n_params)


def public_cfg(cfg: dict) -> dict:
    return {k: (v if not isinstance(v, (T, gguf.LlamaFileType)) else v.name) for k, v in cfg.items()}


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lcpp/ggufs"
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    for n in names:
        cfg = MODELS[n]
        info = write(cfg, os.path.join(out, n + ".gguf"))
        info["config"] = public_cfg(cfg)
        with open(os.path.join(out, n + ".json"), "w") as f:
            json.dump(info, f, indent=1)
        print(n, info["file_size_bytes"], f"{info['file_size_bytes']/2**30:.3f} GiB",
              info["n_tensors"], "tensors", info["n_params"], "params")


if __name__ == "__main__":
    main()
