"""`BulkDram.time` in plain Python floats, channel by channel: for DRAMs of one or two channels, where the numpy
version spends its time on array overhead (a few dozen operations on arrays of one or two elements per batch).

It computes exactly what `BulkDram._time_vector` does, in the same order of floating-point operations (the tests
compare the two on many transfers, batches and device states); read that method for what the bounds mean.
"""

from __future__ import annotations

import math

from hwmodels.dram.bulk import BOUNDS, WRITE_HOLD_MAX, BulkResult, ChannelWork, DeviceState
from hwmodels.dram.refresh import with_refresh


def _waits(after: DeviceState, c: int, first_row: list[int], is_write: bool, start: float) -> tuple[list, float]:
    """DeviceState.waits for channel c."""
    s = after.spec
    opened, ready = after.open_row[c].tolist(), after.precharge_at[c].tolist()
    bank_wait = []
    for row, first, pre in zip(opened, first_row, ready, strict=True):
        if row >= 0 and row != first:
            bank_wait.append(max(pre - start, 0.0) + s.tRP)
        elif row >= 0:
            bank_wait.append(-float(s.tRCD_rd))
        else:
            bank_wait.append(0.0)
    if after.last_write and not is_write:
        turn = s.AL + s.CWL + s.burst_cycles + s.tWTR_S
    elif is_write and not after.last_write:
        turn = s.CL - s.CWL + s.burst_cycles + s.tRTRS
    else:
        turn = 0
    return bank_wait, max(float(after.last_column[c]) + turn - start, 0.0)


def time_scalar(bulk, work: ChannelWork, is_write: bool, start_ns: float = 0.0,
                after: DeviceState | None = None) -> BulkResult:
    """BulkDram.time, one channel at a time in Python floats."""
    s = bulk.spec
    rrd = s.tRRD_S
    t_l = max(s.burst_cycles, s.tCCD_L if s.bankgroups > 1 else s.tCCD_S)
    t0 = 1.0 + s.tRCD_wr if bulk.replay else 0.0
    start = start_ns / s.tCK_ns
    idle = after is None and bulk.issue_width is None
    cycles_ch, drain_ch, body_ch, which_ch, acts_total = [], [], [], [], 0
    for c in range(s.channels):
        n = int(work.bursts[c])
        acts_r = work.acts_rank[c].tolist()
        acts, k = sum(acts_r), max(acts_r)
        acts_total += acts
        last_act = (k - 1) // 4 * max(s.tFAW, 4 * rrd) + (k - 1) % 4 * rrd if k > 0 else 0
        last_row_cols = (max(n / max(acts, 1), 1.0) - 1.0) * t_l
        banks = work.bank_cycles[c].tolist()
        first_act = col_ready = 0.0
        if after is not None:
            wait, col_ready = _waits(after, c, work.first_row[c].tolist(), is_write, start)
            started = [w for w, b in zip(wait, banks, strict=True) if b > 0]
            banks = [b + w for b, w in zip(banks, wait, strict=True)]
            first_act = min(started) if started else 0.0
        table = (float(work.col_cycles[c]) + max(first_act + s.tRCD_rd, col_ready), max(banks),
                 first_act + last_act + s.tRCD_rd + last_row_cols, n + 2.0 * acts)
        body = max(table)
        which = table.index(body)
        if is_write:
            unissued = int(work.unissued[c])
            frac = max(n - unissued, 0) / max(n, 1)
            if frac > 0:
                cycles = max(t0 + (body - t0) * frac, max(n - s.trans_queue_size, 0)) + 2.0
            else:
                cycles = max(n - s.trans_queue_size, 0) + 2.0
            w, tail_cycles = float(work.tail[c, 0]), float(work.tail[c, 1])
            if math.isfinite(tail_cycles):
                cycles = t0 + (body - t0) * (n - w) / max(n, 1) + tail_cycles + 2.0
            drain = max(body + 2.0, cycles) if n > WRITE_HOLD_MAX else cycles
        else:
            cycles = drain = body + s.read_delay + 2.0
        replayed = float(work.replayed[c])
        if idle and math.isfinite(replayed):
            cycles = replayed
            drain = cycles if n <= WRITE_HOLD_MAX else max(drain, cycles)
            which = len(BOUNDS) - 1
        if n == 0:
            cycles = drain = 0.0
        cycles_ch.append(cycles)
        drain_ch.append(drain)
        body_ch.append(body if n > 0 else -math.inf)
        which_ch.append(which)
    slowest = max(cycles_ch)
    slowest_ch = cycles_ch.index(slowest)
    bound = BOUNDS[which_ch[slowest_ch]]
    width = bulk.issue_width
    front = int(work.bursts.sum()) / width if width else 0.0
    if front > slowest:
        slowest, bound = front + s.read_delay, "front end"
    total, refreshes = with_refresh(s, slowest, work.ranks, start_ns)
    drain_max = max(drain_ch)
    drained = total if drain_max <= slowest else with_refresh(s, drain_max, work.ranks, start_ns)[0]
    tck = s.tCK_ns
    return BulkResult(ns=total * tck, bytes_per_channel=(work.bursts * s.request_bytes).tolist(),
                      row_activations=acts_total, events=work.visits + refreshes, bound=bound,
                      per_channel_ns=[x * tck for x in cycles_ch], drain_ns=drained * tck,
                      last_command_ns=[x * tck for x in body_ch])
