"""The compiled core's batch call (`run_batch`, what the engine's `transaction` fidelity uses) against the pure-Python
model advanced one due cycle at a time, as SimPy wake-ups advance it: identical command traces, completion cycles,
counters and stopping cycle on random batch sequences; and `TransactionDram.access_batch` against `access`."""

from __future__ import annotations

import random

import pytest
import simpy

from hwmodels.dram import TransactionDram, get_dram
from hwmodels.dram.compiled import CompiledDramSystem, compiled_available
from hwmodels.dram.system import DramSystem
from tests.test_dram_core import PRESETS

pytestmark = pytest.mark.skipif(not compiled_available(), reason="compiled DRAM core not built")


def _random_batches(rng: random.Random):
    """A spec with random controller overrides and a list of (gap cycles, is_write, [(addr, nbytes), ...])."""
    spec = get_dram(rng.choice(PRESETS))
    over = {"tREFI": rng.choice([spec.tREFI, 900]), "row_hit_limit": rng.choice([1, 4, 16]),
            "cmd_queue_size": rng.choice([2, 8]), "trans_queue_size": rng.choice([4, 32]),
            "refresh_policy": rng.choice(["RANK_LEVEL_STAGGERED", "RANK_LEVEL_SIMULTANEOUS", "NONE"])}
    if rng.random() < 0.3:
        over["ranks"] = rng.choice([1, 2])
    spec = spec.with_overrides(**over)
    rb = spec.request_bytes
    base = [rng.randrange(1 << 26) // rb * rb for _ in range(4)]
    batches = []
    for _ in range(rng.randrange(3, 12)):
        transfers = []
        for _ in range(rng.choice([1, 1, 2, 5])):
            addr = rng.choice(base) + rng.randrange(64) * rng.choice([1, rb]) if rng.random() < 0.7 \
                else rng.randrange(1 << 30)
            transfers.append((addr, rng.choice([1, rb, 3 * rb + 5, 40 * rb, 700 * rb])))
        batches.append((rng.choice([0, 1, 30, 2000]), rng.random() < 0.4, transfers))
    return spec, rng.choice([None, 1, 4]), batches


def _bursts(addr: int, nbytes: int, rb: int) -> list[int]:
    first = addr - addr % rb
    return list(range(first, addr + nbytes, rb))


def _reference(spec, width, batches):
    """Submit every burst, then advance to the next due cycle until the batch's last burst completes."""
    rb = spec.request_bytes
    left: dict = {}
    done: dict = {}

    def on_done(tok, added, finished, is_write):
        left[tok] -= 1
        done[tok] = max(done.get(tok, 0), finished)

    system = DramSystem(spec, issue_width=width, on_done=on_done)
    system.log_commands()
    out, cycle = [], 0
    for gap, is_write, transfers in batches:
        cycle += gap
        done.clear()
        for k, (addr, nbytes) in enumerate(transfers):
            left[k] = len(_bursts(addr, nbytes, rb))
        for k, (addr, nbytes) in enumerate(transfers):
            for a in _bursts(addr, nbytes, rb):
                system.submit(a, is_write, k, cycle)
        while any(left.values()):
            system.advance(system.next_cycle())
        cycles = [done[k] for k in range(len(transfers))]
        out.append((cycles, system.clk))
        cycle = max(cycles)
    return out, system.command_log(), system.stats()


def _batched(spec, width, batches):
    rb = spec.request_bytes
    system = CompiledDramSystem(spec, issue_width=width)
    system.log_commands()
    out, cycle = [], 0
    for gap, is_write, transfers in batches:
        cycle += gap
        firsts = [a - a % rb for a, _ in transfers]
        counts = [len(_bursts(a, n, rb)) for a, n in transfers]
        cycles = system.run_batch(firsts, counts, is_write, cycle)
        out.append((cycles, system.clk))
        cycle = max(cycles)
    return out, system.command_log(), system.stats()


@pytest.mark.parametrize("seed", range(30))
def test_run_batch_gives_the_python_trace(seed: int) -> None:
    spec, width, batches = _random_batches(random.Random(seed))
    ref, got = _reference(spec, width, batches), _batched(spec, width, batches)
    assert got[0] == ref[0], spec.name  # completion cycle of each access, and where the core stopped
    assert got[1] == ref[1]             # the command trace
    assert got[2] == ref[2]             # every counter


def test_run_batch_needs_an_idle_front_end() -> None:
    spec = get_dram("HBM2_8Gb_x128")
    system = CompiledDramSystem(spec, on_done=lambda *a: None)
    system.submit(0, False, "tok", 0)
    with pytest.raises(RuntimeError, match="idle"):
        system.run_batch([4096], [2], False, 0)
    with pytest.raises(ValueError, match="counts"):
        CompiledDramSystem(spec).run_batch([0], [0], False, 0)


@pytest.mark.parametrize("dram", ["LPDDR4_8Gb_x16_2400", "HBM3_H100"])
def test_access_batch_matches_access(dram: str) -> None:
    """Batches held exclusively (as the engine's bus holds them): the same completion times and statistics."""
    rng = random.Random(dram)
    script = [(rng.choice([0, 3.5, 100.25]), rng.random() < 0.4,
               [(rng.randrange(1 << 24), rng.choice([64, 4096, 100_000])) for _ in range(rng.choice([1, 3]))])
              for _ in range(20)]

    def run(batched: bool):
        env = simpy.Environment()
        dram_model = TransactionDram(env, dram, ns_per_env_unit=0.7)
        times = []

        def proc():
            for gap, is_write, transfers in script:
                yield env.timeout(gap)
                events = (dram_model.access_batch(transfers, is_write) if batched
                          else [dram_model.access(a, n, is_write) for a, n in transfers])
                values = yield env.all_of(events)
                times.append([values[e] for e in events])
        env.process(proc())
        env.run()
        return times, dram_model.stats(), env.now

    assert run(True) == run(False)
