"""`transaction` fidelity in batches (the compiled core runs each DMA batch in one call) against the reference path
(one `access` per transfer, the core advanced by a SimPy wake-up per memory cycle with work): the same step, op
table, busy intervals and per-channel bytes, on the tiny workloads (default) and a larger one (`-m slow`)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from hwmodels.dram.compiled import compiled_available
from hwmodels.machine import get_machine
from sim.engine import simulate
from sim.engine.units import TransactionDramPort
from sim.precision import PrecisionConfig
from workloads import build_trace, get_spec, resolve_workload

pytestmark = pytest.mark.skipif(not compiled_available(), reason="compiled DRAM core not built")

BF16 = PrecisionConfig.uniform("bf16")
DSQ_LIKE = PrecisionConfig(q0="bfp8", q1="bfp4", q2="bfp8", q3="bfp16")


def _both(trace, machine, config, monkeypatch):
    batched = simulate(trace, machine, config, "transaction", cache=None)
    monkeypatch.setattr(TransactionDramPort, "batched", False)
    reference = simulate(trace, machine, config, "transaction", cache=None)
    monkeypatch.undo()
    return batched, reference


def _assert_same_step(batched, reference) -> None:
    assert batched.cycles == reference.cycles
    pd.testing.assert_frame_equal(batched.ops, reference.ops)
    assert batched.intervals == reference.intervals  # compute, DMA, DRAM and per-channel busy intervals
    assert batched.busy == reference.busy and batched.stall_cycles == reference.stall_cycles
    assert (batched.read_bytes, batched.write_bytes) == (reference.read_bytes, reference.write_bytes)
    assert batched.energy_by_component == reference.energy_by_component  # from the DRAM's command counters
    # what batching saves: SimPy wake-ups (one per memory cycle with work) and per-burst callbacks
    assert batched.events < reference.events


@pytest.mark.parametrize("wl", ["tiny-lm", "tiny-mt"])
@pytest.mark.parametrize("hw", ["edge-npu", "cloud-npu", "h100-sxm"])
@pytest.mark.parametrize("config", [BF16, DSQ_LIKE], ids=["bf16", "dsq"])
def test_batched_transaction_run_is_the_reference_run(wl, hw, config, monkeypatch):
    _assert_same_step(*_both(resolve_workload(wl), get_machine(hw), config, monkeypatch))


def _iwslt_one_layer_each():
    spec = dataclasses.replace(get_spec("transformer-iwslt"), n_layers=1, n_decoder_layers=1)
    return build_trace(spec, batch=8)


@pytest.mark.slow
@pytest.mark.parametrize("workload,hw", [("iwslt-1+1", "h100-sxm"), ("iwslt-1+1", "cloud-npu"),
                                         ("tiny-lm-32x128", "edge-npu")])
def test_batched_transaction_run_is_the_reference_run_larger(workload, hw, monkeypatch):
    """transformer-iwslt with one encoder and one decoder layer at batch 8 (~12 M bursts) on the HBM machines; on
    edge-npu (LPDDR4) the reference path costs a SimPy wake-up per busy memory cycle and would take over ten
    minutes there, so tiny-lm at batch 32 x 128 (~1.9 M bursts)."""
    trace = _iwslt_one_layer_each() if workload == "iwslt-1+1" else resolve_workload("tiny-lm", batch=32, seq_len=128)
    _assert_same_step(*_both(trace, get_machine(hw), BF16, monkeypatch))
