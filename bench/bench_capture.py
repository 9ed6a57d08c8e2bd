"""Benchmark: capturing PyTorch training steps (workloads.capture) on the meta device: CPU time and peak memory.

Each model is captured in a fresh process, so the peak RSS is the capture's own (plus the torch import) and can be
set against the fp32 weights the model would need on a real device. Skipped when torch is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (label, GPT2 constructor arguments from examples/torch_gpt2.py, batch, seq_len)
_MODELS = [
    ("GPT-2 small (gpt2-small sizes)", dict(vocab_size=50257, d_model=768, n_layers=12, n_heads=12, d_ff=3072),
     8, 1024),
    ("GPT-2 0.87B (d 1536, 28 layers)", dict(vocab_size=50257, d_model=1536, n_layers=28, n_heads=16, d_ff=6144),
     1, 1024),
    ("GPT-2 XL sizes (1.56B)", dict(vocab_size=50257, d_model=1600, n_layers=48, n_heads=25, d_ff=6400), 1, 1024),
]

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {examples!r})
start = time.process_time()
import torch
from torch_gpt2 import GPT2
from workloads import capture_trace
imported = time.process_time()
with torch.device("meta"):
    model = GPT2(max_positions=1024, **{kwargs!r})
    ids = torch.randint(0, 50257, ({batch}, {seq_len}))
trace = capture_trace(model, (ids, ids))
done = time.process_time()
print(json.dumps({{"params": trace.param_count, "ops": len(trace.ops), "tensors": len(trace.tensors),
                  "import_s": imported - start, "capture_s": done - imported,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""


def run(quick: bool = False) -> str:
    try:
        import torch  # noqa: F401
    except ImportError:
        return ("## Capture: PyTorch models on the meta device\n\n"
                "Skipped: torch is not installed (`pip install -e .[torch]`).")
    rows = []
    for label, kwargs, batch, seq_len in _MODELS[:2] if quick else _MODELS:
        code = _CHILD.format(examples=os.path.join(ROOT, "examples"), kwargs=kwargs, batch=batch, seq_len=seq_len)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(f"| {label} | {batch} x {seq_len} | {r['params'] / 1e6:,.0f} | {r['ops']} | {r['tensors']} | "
                    f"{r['capture_s']:.2f} | {r['import_s']:.2f} | {r['peak_rss_bytes'] / 1e9:.2f} | "
                    f"{r['params'] * 4 / 1e9:.2f} |")
    return "\n".join([
        "## Capture: PyTorch models on the meta device",
        "",
        "`capture_trace` on the plain-PyTorch GPT-2 of `examples/torch_gpt2.py` (forward, backward and Adam "
        "recorded), one fresh process per model. CPU seconds (`time.process_time`) for building the model on the "
        "meta device and capturing its step, and for importing torch and dsqsim; peak RSS of the whole process "
        "against the fp32 weights the model would occupy on a real device. Target: a 0.8B-parameter model in under "
        "a minute without allocating its weights.",
        "",
        "| model | batch x seq | params (M) | ops | tensors | build + capture CPU s | import CPU s | peak RSS GB "
        "| fp32 weights GB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])


if __name__ == "__main__":
    print(run(quick=True))
