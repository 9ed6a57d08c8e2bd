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
        cycles, acts, names = self._channel_cycles(ch, rank, bg, bank, row, is_write)
        per_bytes = (np.bincount(ch, minlength=s.channels) * rb).tolist()
        per_ns = cycles.tolist()
        acts_total = int(acts.sum())
        events = acts_total
        slowest_ch = int(np.argmax(cycles))
        slowest, bound = float(cycles[slowest_ch]), names[slowest_ch]
        # the in-order front end hands out at most issue_width transactions per clock over all channels
        width = self.issue_width
        front = n / width if width else 0.0
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

    def _channel_cycles(self, ch: np.ndarray, rank: np.ndarray, bg: np.ndarray, bank: np.ndarray, row: np.ndarray,
                        is_write: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Per channel: (cycles, row activations, name of the binding bound), vectorised over all channels."""
        s = self.spec
        nch, burst = s.channels, s.burst_cycles
        t_l = max(burst, s.tCCD_L if s.bankgroups > 1 else s.tCCD_S)
        t_s = max(burst, s.tCCD_S)
        # each channel's bursts in issue order, channel after channel
        order = np.argsort(ch, kind="stable")
        chs = ch[order]
        n_ch = np.bincount(ch, minlength=nch)
        ends = np.cumsum(n_ch)
        starts = ends - n_ch
        n = len(ch)
        # column time: bank groups visible within the controller's lookahead (+-w bursts of the same channel)
        w = s.trans_queue_size + s.cmd_queue_size - 1
        idx = np.arange(n)
        lo = np.maximum(idx - w, starts[chs])
        hi = np.minimum(idx + w + 1, ends[chs])
        group = (rank * s.bankgroups + bg)[order]
        groups = np.zeros(n, dtype=np.int64)
        for gid in np.unique(group):
            present = np.concatenate(([0], np.cumsum(group == gid)))
            groups += (present[hi] - present[lo]) > 0
        t_col = np.bincount(chs, weights=np.maximum(t_s, t_l / groups), minlength=nch)
        # row visits: runs of the same (channel, bank, row) in each bank's order
        nb = s.ranks * s.banks
        key_bank = chs * nb + ((rank * s.bankgroups + bg) * s.banks_per_group + bank)[order]
        rows = row[order]
        by_bank = np.argsort(key_bank, kind="stable")
        kb, kr = key_bank[by_bank], rows[by_bank]
        new_visit = np.ones(n, dtype=bool)
        new_visit[1:] = (kb[1:] != kb[:-1]) | (kr[1:] != kr[:-1])
        visit_len = np.bincount(np.cumsum(new_visit) - 1)
        visit_bank = kb[new_visit]
        recovery = (s.CWL + burst + s.tWR) if is_write else (s.AL + s.tRTP)
        occupancy = np.maximum(s.tRAS + s.tRP, s.tRCD_rd + (visit_len - 1) * t_l + recovery + s.tRP).astype(float)
        last_of_bank = np.ones(len(visit_len), dtype=bool)
        last_of_bank[:-1] = visit_bank[1:] != visit_bank[:-1]
        # a bank's last visit ends at its last column command (no recovery or precharge to wait for)
        occupancy[last_of_bank] = s.tRCD_rd + (visit_len[last_of_bank] - 1) * t_l
        t_bank = np.bincount(visit_bank, weights=occupancy, minlength=nch * nb).reshape(nch, nb).max(axis=1)
        visit_ch = visit_bank // nb
        acts = np.bincount(visit_ch, minlength=nch)
        visit_rank = visit_ch * s.ranks + (visit_bank % nb) // s.banks
        acts_rank = np.bincount(visit_rank, minlength=nch * s.ranks).reshape(nch, s.ranks).max(axis=1)
        t_act = acts_rank * max(s.tRRD_S, s.tFAW / 4)
        t_cmd = n_ch + 2.0 * acts
        names = ["columns", "bank row cycles", "activations", "command bus"]
        table = np.stack([t_col + s.tRCD_rd, t_bank, t_act + s.tRCD_rd, t_cmd])
        which = table.argmax(axis=0)
        body = table.max(axis=0)
        if is_write:
            # acknowledged on entering the write buffer: the bursts still fitting in the write buffer and the
            # banks' command queues when the last one arrives are not waited for; below that, the buffer drains
            # one transaction per clock into the command queues
            buffered = np.full(nch, s.trans_queue_size + s.cmd_queue_size)
            for c in np.flatnonzero(n_ch):
                tail_banks = key_bank[starts[c]:ends[c]]
                for _ in range(4):  # fixed point: the banks among the buffered tail each hold a command queue
                    buffered[c] = s.trans_queue_size + s.cmd_queue_size * len(np.unique(tail_banks[-buffered[c]:]))
            frac = np.maximum(n_ch - buffered, 0) / np.maximum(n_ch, 1)
            cycles = np.maximum(body * frac, np.maximum(n_ch - s.trans_queue_size, 0)) + 2.0
        else:
            cycles = body + s.read_delay + 2.0
        cycles = np.where(n_ch > 0, cycles, 0.0)
        return cycles, acts, [names[k] for k in which]

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
