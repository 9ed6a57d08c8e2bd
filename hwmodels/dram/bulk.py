"""Bulk-transfer DRAM model: the completion time of one DMA (KB to MB) from the timing parameters, without
simulating its bursts one by one.

Assumptions: the transfer is alone on the device, starts with every bank closed and queues empty (the engine
serialises transfers per channel), and is offered by the same in-order front end as the transaction-level model.
The bursts' addresses are decoded with vectorised numpy; the timing itself is per channel and per row activation:

  column time   each burst costs max(burst, tCCD_S, tCCD_L / g): g is the number of bank groups among the channel's
                bursts the controller can see around it (its transaction plus command queues), so one bank group
                streams at tCCD_L and interleaved groups at the bus rate
  bank time     each row visit occupies its bank for max(tRC, tRCD + columns + tRTP (reads) or write recovery + tRP)
  ACT rate      activations per rank at max(tRRD_S, tFAW / 4) apart; one command per clock on the command bus
  front end     issue_width transactions per clock over all channels
  latency       the first ACT-to-data (tRCD + CL + burst); writes complete on entering the write buffer, i.e. when
                all but the last (transaction + command queue) bursts of the channel have issued
  refresh       each refresh falling inside the transfer delays it by (tRP + tRFC) x the share of the transfer's
                bursts on the refreshed rank (staggered per rank every tREFI / ranks, phase from `start_ns`)

The channel takes the largest of these bounds; the transfer ends when its slowest channel does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwmodels.dram.spec import DramSpec, address_map, get_dram


@dataclass
class BulkResult:
    ns: float                                   # completion time of the transfer, from its start
    bytes_per_channel: list[int]                # burst bytes moved per channel
    row_activations: int
    events: int                                 # row visits + refreshes the model accounted for (its work)
    bound: str = ""                             # which mechanism set the slowest channel's time
    per_channel_ns: list[float] = field(default_factory=list)


class BulkDram:
    """Fast DMA-level timing, agreeing with the transaction-level model on sequential and strided transfers."""

    def __init__(self, spec: str | DramSpec, issue_width: int | None = None):
        self.spec = get_dram(spec)
        self.amap = address_map(self.spec)
        self.issue_width = issue_width

    def transfer_ns(self, addr: int, nbytes: int, is_write: bool, stride_bytes: int | None = None,
                    start_ns: float = 0.0) -> float:
        return self.transfer(addr, nbytes, is_write, stride_bytes, start_ns).ns

    def transfer(self, addr: int, nbytes: int, is_write: bool, stride_bytes: int | None = None,
                 start_ns: float = 0.0) -> BulkResult:
        """Time to move nbytes from addr: contiguous, or (stride_bytes) one burst-sized chunk every stride_bytes."""
        s = self.spec
        rb = s.request_bytes
        if addr < 0 or nbytes <= 0:
            raise ValueError(f"DRAM transfer needs addr >= 0 and nbytes > 0, got addr={addr}, nbytes={nbytes}")
        if stride_bytes is None:
            first = addr - addr % rb
            n = (addr + nbytes - first + rb - 1) // rb
            bursts = first + np.arange(n, dtype=np.int64) * rb
        else:
            if stride_bytes < rb:
                raise ValueError(f"stride_bytes must be at least one burst ({rb} B), got {stride_bytes}")
            n = (nbytes + rb - 1) // rb
            start = addr - addr % rb
            bursts = start + np.arange(n, dtype=np.int64) * stride_bytes
            bursts -= bursts % rb
        ch, rank, bg, bank, row = self._decode(bursts)
        per_ns: list[float] = []
        per_bytes: list[int] = []
        acts_total, events, bounds = 0, 0, []
        for c in range(s.channels):
            sel = ch == c
            nc = int(sel.sum())
            per_bytes.append(nc * rb)
            if nc == 0:
                per_ns.append(0.0)
                continue
            cycles, acts, visits, bound = self._channel_cycles(rank[sel], bg[sel], bank[sel], row[sel], is_write)
            acts_total += acts
            events += visits
            per_ns.append(cycles)
            bounds.append((cycles, bound))
        # the in-order front end hands out at most issue_width transactions per clock over all channels
        width = self.issue_width
        front = n / width if width else 0.0
        slowest, bound = max(bounds)
        if front > slowest:
            slowest, bound = front + s.read_delay, "front end"
        total, refreshes = self._with_refresh(slowest, rank, start_ns)
        events += refreshes
        tck = s.tCK_ns
        return BulkResult(ns=total * tck, bytes_per_channel=per_bytes, row_activations=acts_total, events=events,
                          bound=bound, per_channel_ns=[x * tck for x in per_ns])

    # --- pieces -------------------------------------------------------------------------------------------------
    def _decode(self, bursts: np.ndarray) -> tuple[np.ndarray, ...]:
        x = bursts >> self.amap.shift_bits
        st, cn = self.amap.stride, self.amap.count
        return tuple((x // st[f]) % cn[f] for f in ("ch", "ra", "bg", "ba", "ro"))

    def _channel_cycles(self, rank: np.ndarray, bg: np.ndarray, bank: np.ndarray, row: np.ndarray,
                        is_write: bool) -> tuple[float, int, int, str]:
        s = self.spec
        n = len(rank)
        burst = s.burst_cycles
        t_l = max(burst, s.tCCD_L if s.bankgroups > 1 else s.tCCD_S)
        t_s = max(burst, s.tCCD_S)
        # column time: bank groups visible within the controller's lookahead around each burst
        w = s.trans_queue_size + s.cmd_queue_size - 1
        group = rank * s.bankgroups + bg
        groups = np.zeros(n, dtype=np.int64)
        for gid in np.unique(group):
            present = np.concatenate(([0], np.cumsum(group == gid)))
            lo = np.clip(np.arange(n) - w, 0, n)
            hi = np.clip(np.arange(n) + w + 1, 0, n)
            groups += (present[hi] - present[lo]) > 0
        t_col = float(np.maximum(t_s, t_l / groups).sum())
        # row visits: runs of the same (rank, bank group, bank, row) in the channel's order, per bank
        key_bank = (rank * s.bankgroups + bg) * s.banks_per_group + bank
        order = np.argsort(key_bank, kind="stable")
        kb, kr = key_bank[order], row[order]
        new_visit = np.ones(n, dtype=bool)
        new_visit[1:] = (kb[1:] != kb[:-1]) | (kr[1:] != kr[:-1])
        visit_id = np.cumsum(new_visit) - 1
        visit_len = np.bincount(visit_id)
        visit_bank = kb[new_visit]
        acts = len(visit_len)
        recovery = (s.CWL + burst + s.tWR) if is_write else (s.AL + s.tRTP)
        occupancy = np.maximum(s.tRAS + s.tRP, s.tRCD_rd + (visit_len - 1) * t_l + recovery + s.tRP)
        last_of_bank = np.ones(acts, dtype=bool)
        last_of_bank[:-1] = visit_bank[1:] != visit_bank[:-1]
        # a bank's last visit ends at its last column command (no recovery or precharge to wait for)
        occupancy[last_of_bank] = s.tRCD_rd + (visit_len[last_of_bank] - 1) * t_l
        t_bank = float(np.bincount(visit_bank, weights=occupancy).max())
        visit_rank = visit_bank // s.banks
        t_act = float(np.bincount(visit_rank, minlength=s.ranks).max()) * max(s.tRRD_S, s.tFAW / 4)
        t_cmd = float(n + 2 * acts)
        bounds = {"columns": t_col + s.tRCD_rd, "bank row cycles": t_bank, "activations": t_act + s.tRCD_rd,
                  "command bus": t_cmd}
        name = max(bounds, key=bounds.get)
        body = bounds[name]
        if is_write:
            # acknowledged on entering the write buffer: the bursts still fitting in the write buffer and the
            # banks' command queues when the last one arrives are not waited for; below that, the buffer drains
            # one transaction per clock into the command queues
            buffered = s.trans_queue_size + s.cmd_queue_size
            for _ in range(4):  # fixed point: the banks among the buffered tail each hold a command queue
                buffered = s.trans_queue_size + s.cmd_queue_size * len(np.unique(key_bank[-buffered:]))
            body = max(body * max(n - buffered, 0) / n, float(max(n - s.trans_queue_size, 0)))
            return body + 2.0, acts, acts, name
        return body + s.read_delay + 2.0, acts, acts, name

    def _with_refresh(self, cycles: float, rank: np.ndarray, start_ns: float) -> tuple[float, int]:
        """Add the refreshes that fall inside the transfer. A refresh blocks its rank for tRP + tRFC; it delays the
        transfer by that times the share of the bursts in flight at that moment (the controllers' queues around
        the burst position reached by then, assuming a steady rate) that are on the refreshed rank."""
        s = self.spec
        if s.refresh_policy == "NONE":
            return cycles, 0
        simultaneous = s.refresh_policy == "RANK_LEVEL_SIMULTANEOUS"
        interval = s.tREFI if simultaneous else max(s.tREFI // s.ranks, 1)
        n = len(rank)
        half_window = (s.trans_queue_size + s.cmd_queue_size) * s.channels
        start = start_ns / s.tCK_ns
        k = math.floor(start / interval) + 1
        end, count = start + cycles, 0
        while k * interval < end:
            pos = int((k * interval - start) / (end - start) * n)
            in_flight = rank[max(pos - half_window, 0):min(pos + half_window + 1, n)]
            refreshed = range(s.ranks) if simultaneous else [(k - 1) % s.ranks]
            share = max(float(np.mean(in_flight == r)) for r in refreshed) if len(in_flight) else 0.0
            end += (s.tRP + s.tRFC) * share
            k += 1
            count += 1
        return end - start, count
