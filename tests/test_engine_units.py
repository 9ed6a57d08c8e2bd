"""DRAM channel split of a transfer, checked burst by burst against the DRAM's own address decoder."""

import random

import pytest

from hwmodels.dram import get_dram
from hwmodels.dram.spec import address_map
from sim.engine.units import ChannelSplit


@pytest.mark.parametrize("dram", ["hbm2", "lpddr4-2400", "ddr4-3200", "gddr6"])
def test_channel_split_matches_burst_decode(dram):
    spec = get_dram(dram)
    amap, split, rb = address_map(spec), ChannelSplit(spec), spec.request_bytes
    rng = random.Random(7)
    cases = [(0, rb), (rb - 1, 2), (0, 1 << 20), (12345, 777), (1 << 16, 3 * rb + 5)]
    cases += [(rng.randrange(1 << 24), rng.randrange(1, 1 << 18)) for _ in range(20)]
    for addr, nbytes in cases:
        expect: dict[int, int] = {}
        for x in range(addr // rb, (addr + nbytes - 1) // rb + 1):
            ch = amap.decode(x * rb)[0]
            expect[ch] = expect.get(ch, 0) + 1
        assert split.bursts(addr, nbytes) == expect, (addr, nbytes)


class _T:
    def __init__(self, addr: int, nbytes: int) -> None:
        self.addr, self.nbytes = addr, nbytes


@pytest.mark.parametrize("dram", ["hbm2", "lpddr4-2400", "hbm3-h100"])
@pytest.mark.parametrize("is_write", [False, True], ids=["read", "write"])
def test_bulk_cost_of_a_long_transfer_matches_the_model(dram, is_write):
    """A transfer longer than a chunk is costed as repeated chunks plus a remainder: same as decoding every burst."""
    from hwmodels.dram import BulkDram
    from sim.engine.units import BulkCost

    spec = get_dram(dram)
    cost = BulkCost(spec)
    addr, nbytes = 5 * cost.period_bytes + 4096, 3 * cost.chunk_bytes + 70_000
    ns, _, _ = cost.batch([_T(addr, nbytes)], is_write, 0.0)
    assert ns == pytest.approx(BulkDram(spec).transfer_ns(addr, nbytes, is_write), rel=0.03)
    assert cost.model_calls == 2  # one chunk and the remainder, not every burst


def test_bulk_cost_state_posts_small_writes_and_serves_reads_from_the_buffer():
    from hwmodels.dram.bulk import DeviceState
    from sim.engine.units import BulkCost

    spec = get_dram("hbm3-h100")
    cost, state = BulkCost(spec), DeviceState(spec)
    fresh, _, _ = cost.batch([_T(1 << 20, 1024)], False, 0.0)
    done, drained, _ = cost.batch([_T(1 << 20, 1024)], True, 0.0, state)  # 16 bursts over 80 channels: held
    assert done == drained == 2 * spec.tCK_ns
    assert cost.batch([_T(1 << 20, 1024)], False, 10.0, state)[0] == 2 * spec.tCK_ns < fresh
    # a write that pushes a channel past 8 buffered bursts writes everything out
    cost.batch([_T(8 << 20, 1 << 20)], True, 20.0, state)
    assert state.held == [] and state.held_work is None
    assert cost.batch([_T(1 << 20, 1024)], False, 2000.0, state)[0] > 2 * spec.tCK_ns
