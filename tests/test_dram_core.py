"""The compiled DRAM core against the pure-Python model it follows: identical command traces (cycle, channel, bank,
command), completions (token, added cycle, done cycle, read/write, in order) and counters (rank-state clocks
included) on many random cases, and the fallback when it is missing."""

from __future__ import annotations

import random

import pytest

import hwmodels.dram.compiled as compiled_mod
from hwmodels.dram import get_dram, list_drams, run_bench
from hwmodels.dram.compiled import CompiledDramSystem, compiled_available, make_system
from hwmodels.dram.system import DramSystem
from hwmodels.dram.timing import ACT, PRE

pytestmark = pytest.mark.skipif(not compiled_available(), reason="compiled DRAM core not built")
PRESETS = sorted({s.name for s in list_drams()} - {"HBM3_H100"}) + ["HBM3_H100"]


def _random_case(rng: random.Random):
    """A spec with random controller/timing overrides and a traffic script: (cycle, addr, is_write) in time order,
    drawing addresses from a small pool (merged reads, reads served from the write buffer, read-after-write
    dependencies, row conflicts) and from anywhere."""
    spec = get_dram(rng.choice(PRESETS))
    over = {"tREFI": rng.choice([spec.tREFI, 900, 2000]),
            "refresh_policy": rng.choice(["RANK_LEVEL_STAGGERED", "RANK_LEVEL_SIMULTANEOUS", "NONE"]),
            "row_hit_limit": rng.choice([1, 4, 16]), "cmd_queue_size": rng.choice([2, 8]),
            "trans_queue_size": rng.choice([4, 32])}
    if rng.random() < 0.3:
        over["ranks"] = rng.choice([1, 2, 4])
    if rng.random() < 0.3:
        over["tFAW"] = rng.choice([spec.tFAW, 4 * spec.tFAW])
    spec = spec.with_overrides(**over)
    rb = spec.request_bytes
    pool = [rng.randrange(1 << 24) // rb * rb for _ in range(rng.choice([4, 64]))]
    n = rng.randrange(200, 1500)
    seq_base = rng.randrange(1 << 20) * rb
    cycle, script = 0, []
    for k in range(n):
        if rng.random() < 0.2:
            cycle += rng.choice([1, 5, 50, 400])
        kind = rng.random()
        if kind < 0.4:
            addr = rng.choice(pool)
        elif kind < 0.7:
            addr = seq_base + k * rb
        else:
            addr = rng.randrange(1 << 30) // rb * rb
        script.append((cycle, addr, rng.random() < rng.choice([0.0, 0.3, 0.7])))
    return spec, rng.choice([None, 1, 2, 16]), script


def _replay(cls, spec, width, script, check_every: int, stop_at_idle: bool):
    out: list = []
    system = cls(spec, issue_width=width, on_done=lambda tok, added, done, w: out.append((tok, added, done, w)))
    system.log_commands()
    trail = []
    for k, (cycle, addr, is_write) in enumerate(script):
        system.submit(addr, is_write, k, cycle)
        if k % check_every == 0:
            trail.append((system.clk, system.busy(), system.stats()["total"]["rank_active_cycles"]))
    # a write arriving while a read of its address is pending can livelock the channel (as in DRAMSim3): bounded
    system.run_until_idle(limit_cycle=system.clk + 200_000, stop_at_idle=stop_at_idle)
    trail.append((system.clk, system.busy(), system.stats()["total"]["rank_active_cycles"]))
    system.advance(system.clk + 5000)
    trail.append((system.clk, system.busy()))
    return out, system.stats(), trail, system.command_log(), system.clk


@pytest.mark.parametrize("seed", range(40))
def test_compiled_core_gives_the_python_trace(seed: int) -> None:
    rng = random.Random(seed)
    spec, width, script = _random_case(rng)
    every = rng.choice([1, 7, 100])
    stop = rng.random() < 0.5
    py = _replay(DramSystem, spec, width, script, every, stop)
    c = _replay(CompiledDramSystem, spec, width, script, every, stop)
    assert c[0] == py[0], (spec.name, width)
    assert c[1] == py[1]  # every counter, per channel: commands, rank-state clocks, ...
    assert c[2] == py[2]
    assert c[3] == py[3]  # the command trace: cycle, channel, bank, type
    total = py[1]["total"]
    assert len(py[3]) == sum(total[k] for k in ("read_cmds", "write_cmds", "activations", "precharges", "refreshes"))
    # the rank-state counters against the command trace, replayed independently
    span = py[4] + 1
    for ch, counted in py[1]["channels"].items():
        assert counted["rank_active_cycles"] == _active_from_log(py[3], ch, spec.banks, span)
        assert counted["rank_active_cycles"] + counted["all_bank_idle_cycles"] == span * spec.ranks


def _active_from_log(log, channel: int, banks_per_rank: int, span: int) -> int:
    """Rank-clocks 0..span-1 with a row open, sampled after each clock's commands, from a command trace."""
    open_banks: dict[int, set[int]] = {}
    since: dict[int, int] = {}
    active = 0
    for clk, ch, bank, typ in log:
        if ch != channel or typ not in (ACT, PRE):
            continue
        r = bank // banks_per_rank
        banks = open_banks.setdefault(r, set())
        was_open = bool(banks)
        (banks.add if typ == ACT else banks.remove)(bank)
        if banks and not was_open:
            since[r] = clk
        elif was_open and not banks:
            active += clk - since.pop(r)
    return active + sum(span - s for s in since.values())


@pytest.mark.parametrize("row", [("DDR4_8Gb_x8_3200", "rand_read", 1), ("HBM2_8Gb_x128", "mix", 16),
                                 ("HBM2_8Gb_x128", "seq_read", 1), ("DDR4_8Gb_x8_3200", "seq_write", 16)])
def test_bench_results_agree(row) -> None:
    dram, pattern, width = row
    a = run_bench(dram, pattern, 20_000, 64, width, compiled=False)
    b = run_bench(dram, pattern, 20_000, 64, width, compiled=True)
    assert {**a.to_dict(), "wall_s": 0} == {**b.to_dict(), "wall_s": 0}
    c = run_bench(dram, pattern, 3000, 64, width, outstanding=1, compiled=False)
    d = run_bench(dram, pattern, 3000, 64, width, outstanding=1, compiled=True)
    assert {**c.to_dict(), "wall_s": 0} == {**d.to_dict(), "wall_s": 0}


def test_fallback_to_python_with_a_warning(monkeypatch) -> None:
    monkeypatch.setattr(compiled_mod, "_dramcore", None)
    monkeypatch.setattr(compiled_mod, "_warned", False)
    with pytest.warns(RuntimeWarning, match="compiled core not built"):
        system = make_system(get_dram("ddr4"))
    assert isinstance(system, DramSystem)
    with pytest.raises(RuntimeError, match="not built"):
        make_system(get_dram("ddr4"), compiled=True)


def test_simpy_adapter_gives_the_same_times_on_both_paths() -> None:
    import simpy

    from hwmodels.dram import TransactionDram

    def run(compiled: bool) -> list[tuple[int, float, float]]:
        env = simpy.Environment()
        dram = TransactionDram(env, "hbm2", ns_per_env_unit=0.5, compiled=compiled)
        log: list[tuple[int, float, float]] = []

        def dma(env, k):
            yield env.timeout(37 * k)
            t = yield dram.access((k % 3) << 20, (8 + k) << 10, k % 2 == 1)
            log.append((k, env.now, t))

        for k in range(6):
            env.process(dma(env, k))
        env.run()
        return log

    fast, slow = run(True), run(False)
    assert len(fast) == 6 and fast == slow
