"""The engine's bulk DRAM path after the speed work, against the code path as it was (tests/bulk_reference.py: the
per-interval refresh loop) on whole engine runs, and its work: the same step at a far lower bandwidth (many more
cycles and refreshes) does no more work."""

from __future__ import annotations

import pytest
from bulk_reference import patched_reference

from hwmodels.machine import get_machine
from sim.engine import simulate
from sim.precision import PrecisionConfig
from workloads import resolve_workload

MACHINES = ("edge-npu", "cloud-npu", "h100-sxm")
BF16 = PrecisionConfig.uniform("bf16")


def _both(workload: str, hw: str):
    from sim.engine import units

    trace, machine = resolve_workload(workload), get_machine(hw)
    units._BULK_COSTS.clear()  # each run decodes its transfers itself (the memo is process-wide)
    new = simulate(trace, machine, BF16, cache=None)
    units._BULK_COSTS.clear()
    with patched_reference():
        ref = simulate(trace, machine, BF16, cache=None)
    return new, ref


@pytest.mark.parametrize("hw", MACHINES)
@pytest.mark.parametrize("workload", ["tiny-lm", "tiny-mt"])
def test_tiny_workloads_as_before(workload: str, hw: str) -> None:
    new, ref = _both(workload, hw)
    assert new.cycles == pytest.approx(ref.cycles, rel=0.005)
    assert new.busy["dram"] == pytest.approx(ref.busy["dram"], rel=0.005, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("hw", MACHINES)
def test_transformer_iwslt_as_before(hw: str) -> None:
    """Measured: edge-npu -0.02 %, the HBM machines (one rank: closed form) 0."""
    new, ref = _both("transformer-iwslt", hw)
    assert new.cycles == pytest.approx(ref.cycles, rel=0.005)


class _T:
    def __init__(self, addr: int, nbytes: int) -> None:
        self.addr, self.nbytes = addr, nbytes


def _batch_work(spec, batches) -> tuple[int, float]:
    """(DRAM-model work, ns) of a fixed sequence of DMA batches, costed one after another as the engine does."""
    from hwmodels.dram.bulk import DeviceState
    from sim.engine.units import BulkCost

    cost, state, now, work = BulkCost(spec), DeviceState(spec), 0.0, 0
    for transfers, is_write in batches:
        ns, _, events = cost.batch(transfers, is_write, now, state)
        now, work = now + ns, work + events
    return work, now


@pytest.mark.parametrize("hw", MACHINES)
def test_dram_work_does_not_depend_on_cycles(hw: str) -> None:
    """The same DMA batches at 1/100 and 1/10,000 of the bandwidth (100x the cycles and refreshes) cost the DRAM
    model the same work; with one rank (refresh in closed form) the same as at full bandwidth too."""
    import random

    spec = get_machine(hw).dram
    rng = random.Random(5)
    batches = [([_T(rng.randrange(1 << 30) // 64 * 64, rng.randrange(64, 8 << 20)) for _ in range(rng.randrange(1, 4))],
                rng.random() < 0.4) for _ in range(60)]
    runs = {scale: _batch_work(spec.scaled(scale), batches) for scale in (1.0, 1e-2, 1e-4)}
    assert runs[1e-4][1] > 50 * runs[1e-2][1] > 50 * runs[1.0][1]
    assert runs[1e-4][0] == runs[1e-2][0] > 0
    if spec.ranks == 1:
        assert runs[1e-2][0] == runs[1.0][0]


def test_simresult_reports_the_dram_models_work() -> None:
    r = simulate(resolve_workload("tiny-lm"), get_machine("edge-npu"), BF16, cache=None)
    assert 0 < r.dram_events < r.events
