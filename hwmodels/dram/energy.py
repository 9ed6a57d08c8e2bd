"""DRAM energy as DRAMSim3 (commit 2981759) computes it, from command counts and per-rank background-state cycles.

Notation: V = VDD, d = devices per rank, IDDx per device in mA, every duration in memory clocks (docs/energy.md).
    per ACT    V·d·(IDD0·tRC − IDD3N·tRAS − IDD2N·tRP), tRC = tRAS + tRP
    per READ   V·d·(IDD4R − IDD3N)·burst_cycles          per WRITE  V·d·(IDD4W − IDD3N)·burst_cycles
    per REF    V·d·(IDD5AB − IDD3N)·tRFC                 per REFb   V·d·(IDD5PB − IDD3N)·tRFCb
    per clock and rank: V·d·IDD3N with a row open, V·d·IDD2N with every bank precharged, V·d·IDD6x in self-refresh
V·mA·clock is what DRAMSim3 prints (labelled pJ; it is mW·clock, pJ only when tCK = 1 ns). Physical energy in pJ
is that times tCK_ns: `DramEnergy` holds physical pJ; `DramEnergy.dramsim3_units()` gives DRAMSim3's figures.

Counters a model must provide (`DramCounters`): read/write/act/ref(/refb) commands issued before `end_cycle`, and
per-rank clocks summed over ranks and channels with at least one open row (`rank_active_cycles`), with every bank
precharged (`all_bank_idle_cycles`) and in self-refresh (`sref_cycles`); the three add up to
end_cycle x ranks x channels. The transaction model counts them itself (Python and compiled paths alike: `run_bench`
results carry them, `counters_from_bench` picks them up); for a model without rank-state counters,
`estimate_rank_cycles` supplies an estimate, flagged `background_estimated`. `RankStateProbe` re-derives every counter
from the pure-Python controller's commands, as an independent cross-check (tests/test_energy_dram.py).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from hwmodels.dram.spec import DramSpec

# DramSpec fields of the [power] table, as in DRAMSim3's .ini (currents in mA per device, VDD in volts).
POWER_FIELDS = ("VDD", "IDD0", "IDD2P", "IDD2N", "IDD3P", "IDD3N", "IDD4R", "IDD4W", "IDD5AB", "IDD5PB", "IDD6x")
ENERGY_KEYS = ("act", "read", "write", "refresh", "background", "total")


@dataclass(frozen=True)
class DramPowerRates:
    """Per-rank energies in DRAMSim3 units (mW·clock): per command, and per clock in each background state."""

    act: float
    read: float
    write: float
    ref: float
    refb: float
    act_stb: float   # per clock, a row open
    pre_stb: float   # per clock, all banks precharged
    sref: float      # per clock, self-refresh


def has_power(spec: DramSpec) -> bool:
    """Does the spec carry every power parameter (a [power] table)?"""
    return all(getattr(spec, k, None) is not None for k in POWER_FIELDS)


def power_rates(spec: DramSpec) -> DramPowerRates:
    """DRAMSim3's per-command and per-clock energies of one rank of `spec`; ValueError if it has no power data."""
    missing = [k for k in POWER_FIELDS if getattr(spec, k, None) is None]
    if missing:
        raise ValueError(f"DRAM {spec.name!r} has no power parameters ({', '.join(missing)}); add a [power] table "
                         f"to its TOML (see docs/energy.md)")
    vd = spec.VDD * spec.devices_per_rank
    t_rc = spec.tRAS + spec.tRP
    return DramPowerRates(
        act=vd * (spec.IDD0 * t_rc - spec.IDD3N * spec.tRAS - spec.IDD2N * spec.tRP),
        read=vd * (spec.IDD4R - spec.IDD3N) * spec.burst_cycles,
        write=vd * (spec.IDD4W - spec.IDD3N) * spec.burst_cycles,
        ref=vd * (spec.IDD5AB - spec.IDD3N) * spec.tRFC,
        refb=vd * (spec.IDD5PB - spec.IDD3N) * spec.tRFCb,
        act_stb=vd * spec.IDD3N, pre_stb=vd * spec.IDD2N, sref=vd * spec.IDD6x,
    )


@dataclass(frozen=True)
class DramCounters:
    """What a DRAM model counted over a run of `end_cycle` memory clocks (all channels and ranks summed)."""

    end_cycle: float
    read_cmds: float
    write_cmds: float
    act_cmds: float
    ref_cmds: float
    rank_active_cycles: float
    all_bank_idle_cycles: float
    sref_cycles: float = 0.0
    refb_cmds: float = 0.0
    background_estimated: bool = False  # rank-state cycles from `estimate_rank_cycles`, not counted


@dataclass(frozen=True)
class DramEnergy:
    """Physical energy in pJ by component (refresh = REF + REFb; background = active + precharge standby + sref)."""

    act_pj: float
    read_pj: float
    write_pj: float
    ref_pj: float
    refb_pj: float
    act_stb_pj: float
    pre_stb_pj: float
    sref_pj: float
    tCK_ns: float
    background_estimated: bool = False

    @property
    def refresh_pj(self) -> float:
        return self.ref_pj + self.refb_pj

    @property
    def background_pj(self) -> float:
        return self.act_stb_pj + self.pre_stb_pj + self.sref_pj

    @property
    def total_pj(self) -> float:
        return self.act_pj + self.read_pj + self.write_pj + self.refresh_pj + self.background_pj

    def energy_pj(self) -> dict[str, float]:
        """The `dram-bench --json` "energy_pj" object: act, read, write, refresh, background, total."""
        return {"act": self.act_pj, "read": self.read_pj, "write": self.write_pj, "refresh": self.refresh_pj,
                "background": self.background_pj, "total": self.total_pj}

    def dramsim3_units(self) -> dict[str, float]:
        """DRAMSim3's printed counters (mW·clock): this energy divided by tCK_ns, under DRAMSim3's names."""
        f = 1.0 / self.tCK_ns
        return {"act_energy": self.act_pj * f, "read_energy": self.read_pj * f, "write_energy": self.write_pj * f,
                "ref_energy": self.ref_pj * f, "refb_energy": self.refb_pj * f, "act_stb_energy": self.act_stb_pj * f,
                "pre_stb_energy": self.pre_stb_pj * f, "sref_energy": self.sref_pj * f,
                "total_energy": self.total_pj * f}


def dram_energy(spec: DramSpec, counters: DramCounters) -> DramEnergy:
    """Energy of a run from its counters, DRAMSim3's model, in physical pJ (DRAMSim3's figure x tCK_ns)."""
    r = power_rates(spec)
    t = spec.tCK_ns
    c = counters
    return DramEnergy(
        act_pj=c.act_cmds * r.act * t, read_pj=c.read_cmds * r.read * t, write_pj=c.write_cmds * r.write * t,
        ref_pj=c.ref_cmds * r.ref * t, refb_pj=c.refb_cmds * r.refb * t,
        act_stb_pj=c.rank_active_cycles * r.act_stb * t, pre_stb_pj=c.all_bank_idle_cycles * r.pre_stb * t,
        sref_pj=c.sref_cycles * r.sref * t, tCK_ns=t, background_estimated=c.background_estimated)


def estimate_rank_cycles(spec: DramSpec, end_cycle: float, ref_cmds: float) -> tuple[float, float]:
    """ESTIMATE of (rank_active_cycles, all_bank_idle_cycles) for a model that does not count rank states.

    Open-page policy keeps a row open until a conflict or a refresh, so a busy rank is taken as active except during
    its refreshes, which leave every bank precharged for tRFC. Idle gaps after a refresh until the next ACT (long
    when traffic has moved to another rank) and the time before a rank's first ACT are not seen: the estimate errs
    towards active standby (IDD3N > IDD2N), i.e. it over-estimates background energy.
    """
    rank_cycles = float(end_cycle) * spec.ranks * spec.channels
    idle = min(float(ref_cmds) * spec.tRFC, rank_cycles)
    return rank_cycles - idle, idle


def counters_from_bench(result: Any, spec: DramSpec) -> DramCounters:
    """DramCounters from a `BenchResult`: its own rank-state counters (`rank_active_cycles`, `all_bank_idle_cycles`,
    optional `sref_cycles`, `refb_cmds`) when it has them (not None), else the estimate (`background_estimated`)."""
    active = getattr(result, "rank_active_cycles", None)
    idle = getattr(result, "all_bank_idle_cycles", None)
    estimated = active is None or idle is None
    if estimated:
        active, idle = estimate_rank_cycles(spec, result.end_cycle, result.ref_cmds)
    return DramCounters(end_cycle=result.end_cycle, read_cmds=result.read_cmds, write_cmds=result.write_cmds,
                        act_cmds=result.act_cmds, ref_cmds=result.ref_cmds, rank_active_cycles=active,
                        all_bank_idle_cycles=idle, sref_cycles=getattr(result, "sref_cycles", 0) or 0,
                        refb_cmds=getattr(result, "refb_cmds", 0) or 0, background_estimated=estimated)


# --- an independent cross-check of the model's own counters, from outside the pure-Python controller --------------
class RankStateProbe:
    """Records every command the pure-Python `ChannelController` issues and counts, per rank, the clocks with a row
    open, sampled after each clock's commands as DRAMSim3 does (an ACT's clock counts as active, the clock of the PRE
    or REF that closes the rank's last open row as precharged), from the banks' open rows after each command.

    The model counts all this itself (`run_bench` results); the probe is kept to check those counters by a different
    route. Use `with RankStateProbe.attach() as probe: run_bench(..., compiled=False)` then
    `probe.counters(spec, end_cycle)`. The compiled core bypasses the Python controller: `probe.commands_seen` stays 0
    and `counters` returns None.
    """

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int, int, bool]] = []  # (channel, rank, clk, command type, rank open after)

    @property
    def commands_seen(self) -> int:
        return len(self.events)

    @classmethod
    @contextmanager
    def attach(cls):
        from hwmodels.dram.channel import ChannelController

        probe = cls()
        original = ChannelController._issue
        log = probe.events

        def issue(ctrl, b: int, i: int, clk: int) -> int:
            typ = original(ctrl, b, i, clk)
            r = ctrl.bank_rank[b]
            rows = ctrl.open_row[r * ctrl.banks:(r + 1) * ctrl.banks]
            log.append((ctrl.channel, r, clk, typ, any(x >= 0 for x in rows)))
            return typ

        ChannelController._issue = issue
        try:
            yield probe
        finally:
            ChannelController._issue = original

    def counters(self, spec: DramSpec, end_cycle: int) -> DramCounters | None:
        """Commands issued at clocks < end_cycle and rank-state clocks 0..end_cycle-1; None if nothing was seen."""
        if not self.events:
            return None
        from hwmodels.dram.timing import ACT, RD, REF, WR

        n = {ACT: 0, RD: 0, WR: 0, REF: 0}
        open_since: dict[tuple[int, int], int] = {}
        active = 0
        for ch, r, clk, typ, is_open in self.events:
            if clk >= end_cycle:
                continue
            if typ in n:
                n[typ] += 1
            key = (ch, r)
            if is_open and key not in open_since:
                open_since[key] = clk
            elif not is_open and key in open_since:
                active += clk - open_since.pop(key)
        active += sum(end_cycle - c for c in open_since.values())
        total = end_cycle * spec.ranks * spec.channels
        return DramCounters(end_cycle=end_cycle, read_cmds=n[RD], write_cmds=n[WR], act_cmds=n[ACT],
                            ref_cmds=n[REF], rank_active_cycles=active, all_bank_idle_cycles=total - active)


def counters_from_bulk(spec: DramSpec, result: Any, is_write: bool) -> DramCounters:
    """DramCounters of one bulk-model transfer or batch (`BulkDram.transfer*` -> `BulkResult`): its row activations,
    one read or write command per burst it moved, the refreshes of its duration (`drain_ns` for writes: until every
    burst has gone to the DRAM) on every rank of every channel, and the rank states ESTIMATED
    (`estimate_rank_cycles`; the bulk model does not follow bank states clock by clock)."""
    end_cycle = max(float(result.drain_ns or 0.0), float(result.ns)) / spec.tCK_ns
    bursts = sum(result.bytes_per_channel) / spec.request_bytes
    refs = math.floor(end_cycle / spec.tREFI) * spec.ranks * spec.channels
    active, idle = estimate_rank_cycles(spec, end_cycle, refs)
    return DramCounters(end_cycle=end_cycle, read_cmds=0.0 if is_write else bursts,
                        write_cmds=bursts if is_write else 0.0, act_cmds=float(result.row_activations),
                        ref_cmds=float(refs), rank_active_cycles=active, all_bank_idle_cycles=idle,
                        background_estimated=True)


def bulk_energy(spec: DramSpec, result: Any, is_write: bool) -> DramEnergy:
    """Energy of one bulk-model transfer or batch (`counters_from_bulk`)."""
    return dram_energy(spec, counters_from_bulk(spec, result, is_write))


def bench_energy(result: Any, spec: DramSpec, probe: RankStateProbe | None = None) -> DramEnergy:
    """Energy of a `run_bench` result from its own counters (`counters_from_bench`), or from a probe's when one is
    given and saw the run (they are equal: tests/test_energy_dram.py)."""
    counters = probe.counters(spec, result.end_cycle) if probe is not None else None
    return dram_energy(spec, counters if counters is not None else counters_from_bench(result, spec))


def energy_summary(energy: DramEnergy, nbytes: float) -> dict[str, Any]:
    """`energy_pj`, `pj_per_byte` (per byte requested) and whether background was estimated, JSON-ready."""
    return {"energy_pj": energy.energy_pj(),
            "pj_per_byte": energy.total_pj / nbytes if nbytes > 0 else math.nan,
            "background_estimated": energy.background_estimated}


def counters_dict(counters: DramCounters) -> dict[str, Any]:
    return asdict(counters)
