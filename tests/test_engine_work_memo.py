"""The bulk model's per-transfer work is in DRAM clocks, so a what-if DRAM clocked faster or slower
(`dram_bw_scale`) reuses the work decoded at the base clock, and the plans made for the base machine (planning does
not read the DRAM): same results as a fresh process, no new decoding or planning."""

from __future__ import annotations

import sim.engine as engine
from hwmodels.machine import get_machine
from sim.engine import simulate, units
from sim.policy import get_policy
from workloads import build_trace


def _fresh() -> None:
    engine.clear_memos()
    assert not (units._BULK_COSTS or units._WORK_MEMOS or engine._PLANS)


def test_bandwidth_scales_share_the_work_memo_with_identical_results() -> None:
    trace, machine = build_trace("tiny-mt"), get_machine("edge-npu")
    config = get_policy("dsq").config_at(0, 100)
    scaled = machine.with_overrides(dram_bw_scale=2.0)
    _fresh()
    alone = simulate(trace, scaled, config, "tile", cache=None)
    _fresh()
    simulate(trace, machine, config, "tile", cache=None)
    shared = simulate(trace, scaled, config, "tile", cache=None)
    assert shared.cycles == alone.cycles and shared.dram_bytes == alone.dram_bytes
    assert units.bulk_cost(scaled.dram).model_calls == 0  # every transfer's work came from the base clock's memo
    assert units.bulk_cost(scaled.dram) is not units.bulk_cost(machine.dram)  # timing stays per spec
    assert len(engine._PLANS) == 1  # one plan for both machines
    other_array = machine.with_overrides(array=(8, 8))
    simulate(trace, other_array, config, "tile", cache=None)
    assert len(engine._PLANS) == 2  # a machine that computes differently plans again
    _fresh()


def _batch_keys() -> list:
    return [k for memo in units._WORK_MEMOS.values() for k in memo.entries if len(k) == 2]


def test_batches_are_memoised_whole_with_identical_results(monkeypatch) -> None:
    """Once a second DRAM clock shares the memo (a bandwidth what-if), each batch's summed work is memoised whole
    and replayed; one simulation alone memoises none. The runs are the same to the last cycle with the batch memo
    off."""
    trace, machine = build_trace("tiny-mt"), get_machine("edge-npu")
    scaled = machine.with_overrides(dram_bw_scale=0.5)
    config = get_policy("dsq").config_at(0, 100)
    runs = {}
    for cap in (0, 100_000):
        _fresh()
        monkeypatch.setattr(units, "BATCH_MEMO_MAX", cap)
        base = simulate(trace, machine, config, "tile", cache=None)
        assert not _batch_keys()  # one DRAM clock alone: nothing memoised whole
        runs[cap] = (base, simulate(trace, scaled, config, "tile", cache=None),
                     simulate(trace, machine, config, "tile", cache=None))
        assert bool(_batch_keys()) == (cap > 0)
    for off, on in zip(runs[0], runs[100_000], strict=True):
        assert (on.cycles, on.events, on.dram_events, on.busy) == (off.cycles, off.events, off.dram_events, off.busy)
        assert on.ops.drop(columns="wall_s", errors="ignore").equals(off.ops.drop(columns="wall_s", errors="ignore"))
    assert runs[0][0].cycles == runs[0][2].cycles  # the base clock again after the what-if: unchanged
    cost = units.bulk_cost(machine.dram)
    key = _batch_keys()[0]  # (direction, ((addr, nbytes), ...))
    is_write, transfers = key
    batch = [type("T", (), {"addr": a, "nbytes": n})() for a, n in transfers]
    work, events = cost.batch_work(batch, is_write)
    assert work is cost.shared.entries[key] and events == 0
    _fresh()
