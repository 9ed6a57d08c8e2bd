"""Command-to-command timing constraints, derived from a DramSpec exactly as DRAMSim3's Timing constructor does.

Each issued command X pushes the earliest issue time of later commands Y at four scopes: the same bank, the other
banks of its bank group, the other bank groups of its rank, the other ranks. DRAMSim3's constraints are monotone
in scope (same bank >= same group >= same rank for every pair it lists), so a bank's readiness is the maximum of a
per-bank, a per-bank-group and a per-rank time: "same group" applies to the whole group and "same rank" to the
whole rank without changing any result, at a fraction of the bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.dram.spec import DramSpec

# command types
ACT, PRE, RD, WR, REF = 0, 1, 2, 3, 4
COMMAND_NAMES = ("ACT", "PRE", "RD", "WR", "REF")


@dataclass(frozen=True)
class Timing:
    """For each issued command type: ((following type, latency), ...) per scope."""

    bank: tuple[tuple[tuple[int, int], ...], ...]
    group: tuple[tuple[tuple[int, int], ...], ...]
    rank: tuple[tuple[tuple[int, int], ...], ...]
    other_ranks: tuple[tuple[tuple[int, int], ...], ...]
    read_delay: int     # RD command to last data beat (AL + CL + burst)
    write_delay: int
    faw: int            # four-activate window (tCK)
    t32aw: int          # GDDR 32-activate window, 0 = none


def build_timing(spec: DramSpec) -> Timing:
    s = spec
    burst = s.burst_cycles
    rl, wl = s.AL + s.CL, s.AL + s.CWL
    read_delay, write_delay = rl + burst, wl + burst
    rr_l, rr_s = max(burst, s.tCCD_L), max(burst, s.tCCD_S)
    ww_l, ww_s = max(burst, s.tCCD_L), max(burst, s.tCCD_S)
    wr_l, wr_s = write_delay + s.tWTR_L, write_delay + s.tWTR_S
    rrd_l = s.tRRD_L
    if s.bankgroups == 1:  # bank groups disabled: DRAMSim3 uses the _S values between all banks
        rr_l, ww_l, wr_l, rrd_l = rr_s, ww_s, wr_s, s.tRRD_S
    rr_o = burst + s.tRTRS
    r2w = rl + burst - wl + s.tRTRS
    r2w_o = read_delay + burst + s.tRTRS - write_delay
    w2r_o = write_delay + burst + s.tRTRS - read_delay
    ww_o = burst
    r2p = s.AL + s.tRTP
    w2p = wl + burst + s.tWR
    trc = s.tRAS + s.tRP

    bank = [(), (), (), (), ()]
    group = [(), (), (), (), ()]
    rank = [(), (), (), (), ()]
    other = [(), (), (), (), ()]
    bank[RD] = ((PRE, r2p),)
    group[RD] = ((RD, rr_l),)
    rank[RD] = ((RD, rr_s), (WR, r2w))
    other[RD] = ((RD, rr_o), (WR, r2w_o))
    bank[WR] = ((PRE, w2p),)
    group[WR] = ((RD, wr_l), (WR, ww_l))
    rank[WR] = ((RD, wr_s), (WR, ww_s))
    other[WR] = ((RD, w2r_o), (WR, ww_o))
    bank[ACT] = ((ACT, trc), (RD, s.tRCD_rd), (WR, s.tRCD_wr), (PRE, s.tRAS))
    group[ACT] = ((ACT, rrd_l),)
    rank[ACT] = ((ACT, s.tRRD_S),)
    bank[PRE] = ((ACT, s.tRP), (REF, s.tRP))
    if s.tPPD:
        rank[PRE] = ((PRE, s.tPPD),)
    rank[REF] = ((ACT, s.tRFC), (REF, s.tRFC))
    return Timing(bank=tuple(bank), group=tuple(group), rank=tuple(rank), other_ranks=tuple(other),
                  read_delay=read_delay, write_delay=write_delay, faw=s.tFAW, t32aw=s.t32AW)
