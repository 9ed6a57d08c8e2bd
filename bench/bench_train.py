"""Benchmark: one training step (forward, hand-written backward, Adam) of the NumPy reference Transformer against the
same model written with PyTorch ops (autograd, torch.optim.Adam), fp32, same shapes, one thread each.
Also the step time under quantization (dsq's first stage), which the NumPy model alone can run, with the compiled
block quantizer (numba, when installed) and with numpy only; target: a dsq step within 1.5x of the fp32 step."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def _best_of(fns: list[Any], repeats: int, inner: int) -> list[float]:
    """For each fn, the best mean CPU seconds per call over `repeats` rounds of `inner` calls. Rounds of the
    functions alternate, so a burst of load from other processes hits both sides alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.process_time()
            for _ in range(inner):
                fn()
            best[i] = min(best[i], (time.process_time() - t0) / inner)
    return best


def _numpy_step(task: Any, precision: Any) -> Any:
    from sim.training.model import Transformer
    from sim.training.optim import Adam

    model = Transformer(task.model_config(), seed=0)
    opt = Adam(model.params, task.adam_config(), total_steps=10_000)
    batch = task.sample_batch(np.random.default_rng(0))

    def step() -> None:
        _, grads = model.loss_and_grads(batch, precision)
        opt.step(grads, precision)

    return step


def _torch_step(task: Any) -> Any:
    import torch

    from sim.training.model import Transformer
    from sim.training.torch_mirror import TorchMirror

    mirror = TorchMirror(task.model_config(), Transformer(task.model_config(), seed=0).params)
    opt = torch.optim.Adam(mirror.p.values(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
    batch = task.sample_batch(np.random.default_rng(0))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = mirror.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(mirror.p.values()), 1.0)
        opt.step()

    return step


def run(quick: bool = False) -> str:
    from threadpoolctl import threadpool_limits

    from sim.policy import get_policy
    from sim.training.tasks import get_task

    repeats, inner = (2, 3) if quick else (10, 10)
    try:
        import torch

        torch.set_num_threads(1)
        have_torch = True
    except ImportError:
        have_torch = False
    import sim._blockkernel as blockkernel

    compiled = blockkernel.available()
    stage_label = get_policy("dsq").config_at(0, 100).label  # the stage timed below
    numpy_only = blockkernel.available
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for name in ("numwords", "shakespeare"):
            task = get_task(name)
            cfg = task.model_config()
            dsq_config = get_policy("dsq").config_at(0, 100)
            fns = [_numpy_step(task, None)] + ([_torch_step(task)] if have_torch else [])
            ours, theirs = (*_best_of(fns, repeats, inner), float("nan"))[:2]
            # fp32 again, alternating with the dsq step, so the ratio compares rounds under the same load
            fp32, dsq = _best_of([_numpy_step(task, None), _numpy_step(task, dsq_config)], repeats, inner)
            blockkernel.available = lambda: False  # the numpy-only quantizer
            try:
                fp32_b, dsq_np = _best_of([_numpy_step(task, None), _numpy_step(task, dsq_config)], repeats, inner)
            finally:
                blockkernel.available = numpy_only
            shape = (f"d={cfg.d_model}, {cfg.n_encoder_layers}+{cfg.n_decoder_layers} layers, "
                     f"batch {task.batch_size}")
            compiled_cells = (f"{dsq * 1e3:.1f} | {dsq / fp32:.2f}x" if compiled else "– | –")
            rows.append(f"| {name} | {shape} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | {ours / theirs:.2f}x "
                        f"| {compiled_cells} | {dsq_np * 1e3:.1f} | {dsq_np / fp32_b:.2f}x |")
    note = "" if have_torch else "\nPyTorch is not installed (`pip install -e '.[torch]'`): its column is empty.\n"
    if not compiled:
        note += "\nnumba is not installed (`pip install -e '.[fast]'`): the compiled-quantizer columns are empty.\n"
    return (
        "## Reference training step (NumPy vs PyTorch, CPU)\n\n"
        "CPU time (process time, as the machine may be shared) of one training step (forward, backward, Adam with "
        "clipping) of each task's default model, "
        f"best mean of {repeats} alternating rounds of {inner} steps, one BLAS/torch thread. Target: NumPy within "
        "1.5x of PyTorch in fp32. The dsq columns are the NumPy model with quantize-dequantize at q0..q3 (dsq's "
        f"first stage: {stage_label}, every GEMM operand blocked along its reduction axis, docs/training.md), "
        "with the compiled block quantizer (numba: `sim/_blockkernel.py`, and `sim/_srkernel.py` for the "
        "stochastically rounded `_sr` formats) and with numpy only (whose stochastic rounding takes the general "
        "path); each ratio is to an fp32 step timed in the same alternating rounds. Target: a dsq step within 1.5x "
        "of the fp32 step.\n"
        f"{note}\n"
        "| task | model | NumPy fp32 ms | PyTorch fp32 ms | ratio | dsq ms (compiled) | dsq / fp32 "
        "| dsq ms (numpy only) | dsq / fp32 |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    print(run(quick=True))
