#!/usr/bin/env python3
"""Print a markdown table of all runs in tests/fixtures/llamacpp/*.json."""
import glob
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../tests/fixtures/llamacpp")
print("| model | n_ctx | KV type | FA | method | model MiB | KV MiB | KV SWA MiB | output MiB | compute MiB | total MiB | peak RSS MiB |")
print("|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for f in sorted(glob.glob(os.path.join(d, "*.json"))):
    doc = json.load(open(f))
    name = os.path.basename(f)[:-5]
    for r in doc["runs"]:
        rss = f"{r['peak_rss_bytes'] / 2**20:.0f}" if r.get("peak_rss_bytes") else "-"
        swa = f"{r['kv_swa_buffer_mib']:.2f}" if r["kv_swa_buffer_mib"] else "-"
        print(f"| {name} | {r['n_ctx']} | {r['type_k']} | {'on' if r['flash_attn'] else 'off'} | {r['method']} "
              f"| {r['model_buffer_mib']:.2f} | {r['kv_buffer_mib']:.2f} | {swa} | {r['output_buffer_mib']:.2f} "
              f"| {r['compute_buffer_mib']:.2f} | {r['total_mib']:.2f} | {rss} |")
