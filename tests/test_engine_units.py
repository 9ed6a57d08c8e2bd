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
