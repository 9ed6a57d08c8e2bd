"""Bulk-transfer DRAM model: the completion time of one DMA (KB to MB), or of a batch of DMAs queued together,
from the timing parameters, without simulating bursts one by one.

Assumptions: the transfers start with every bank closed and queues empty (the engine serialises batches), and are
offered by the same in-order front end as the transaction-level model. The bursts' addresses are decoded with
vectorised numpy into per-channel *work* (`ChannelWork`: totals that add up over the transfers of a batch, since a
channel's controller serves them from the same queues); timing the work is per channel:

  column time   each burst costs max(burst, tCCD_S, tCCD_L / g): g is the number of bank groups among the channel's
                bursts the controller can see around it (its transaction plus command queues), so one bank group
                streams at tCCD_L and interleaved groups at the bus rate
  bank time     each row visit occupies its bank for max(tRC, tRCD + columns + tRTP (reads) or write recovery + tRP)
  ACT rate      the last of a rank's k activations issues at (k-1)//4 x max(tFAW, 4 tRRD_S) + (k-1)%4 x tRRD_S
                (back-to-back at tRRD_S, every fifth waiting for the four-activate window), then tRCD and the
                columns of that row (a mean row visit, tCCD_L apart)
  command bus   one command per clock: bursts + ACT/PRE pairs
  front end     issue_width transactions per clock over all channels
  latency       reads end when the last data returns (command + CL + burst). Writes are posted: they end when the
                write buffer accepts the last burst (`ns`); `drain_ns` is when the channel has written them all
                (DRAMSim3's controller drains a buffer of more than 8 writes as soon as it has nothing else to do).
                With `replay=True` (default) a transfer short enough is replayed through the controllers' queues
                (`queues`), which know the order in which the banks are served, and ends at the replay's clock
                (reads and writes); a longer write replays its tail: the bursts before it issue at the body's mean
                rate (from the first ACT and tRCD), the tail as replayed. `replay=False`: writes are taken to leave
                the buffer plus a command queue per bank among the latest writes held, the rest spread evenly
  refresh       each refresh falling inside the transfer delays it by (tRP + tRFC) x the share of the transfer's
                bursts on the refreshed rank (staggered per rank every tREFI / ranks, phase from `start_ns`); one
                still running when the transfer starts is not charged (see README, DRAM: refresh alignment);
                computed in bounded work per transfer by `hwmodels.dram.refresh`

The channel takes the largest of these bounds; the transfer ends when its slowest channel does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from hwmodels.dram.queues import QueueTiming, replay_queues
from hwmodels.dram.refresh import RankRuns, with_refresh
from hwmodels.dram.spec import DramSpec, address_map, get_dram

WRITE_HOLD_MAX = 8  # DRAMSim3 starts draining a non-full write buffer only when it holds more than this many writes
BOUNDS = ("columns", "bank row cycles", "activations", "command bus", "queues (replayed)")


@dataclass
class BulkResult:
    ns: float                                   # completion time from the start: read data back / writes accepted
    bytes_per_channel: list[int]                # burst bytes moved per channel
    row_activations: int
    events: int                                 # row visits, bursts replayed and refresh steps (the model's work)
    bound: str = ""                             # which mechanism set the slowest channel's time
    per_channel_ns: list[float] = field(default_factory=list)
    drain_ns: float = 0.0                       # when every burst has gone to the DRAM (reads: = ns)
    last_command_ns: list[float] = field(default_factory=list)  # per channel (-inf: untouched), before refresh


@dataclass(slots=True)
class ChannelWork:
    """Per-channel totals of the mechanisms above for some bursts; the work of transfers queued one after another
    adds up. A bank that the next transfer finds open at another row switches rows: the earlier transfer's last
    visit then pays its recovery and precharge (`reopen_cycles`)."""

    bursts: np.ndarray        # [channels] bursts
    col_cycles: np.ndarray    # [channels] column cycles
    bank_cycles: np.ndarray   # [channels, ranks x banks] bank occupancy cycles
    reopen_cycles: np.ndarray  # [channels, ranks x banks] extra occupancy of each bank's last visit if a row follows
    first_row: np.ndarray     # [channels, ranks x banks] row of each bank's first / last visit (-1: untouched)
    last_row: np.ndarray
    acts_rank: np.ndarray     # [channels, ranks] activations
    unissued: np.ndarray      # [channels] writes still queued (buffer + command queues) when the last is accepted
    ranks: RankRuns           # rank of each burst in issue order, run-length encoded (refresh share; empty with
                              # one rank)
    visits: int               # row visits accounted, plus bursts replayed (the model's work)
    replayed: np.ndarray      # [channels] clock the channel's part ends (last data / last write accepted) as
                              # replayed from an idle device (NaN: not replayed, or the work of several transfers)
    tail: np.ndarray          # [channels] writes too long to replay whole: (bursts replayed at the end, clocks from
                              # their first column command to the last acceptance); NaN otherwise

    def __add__(self, other: ChannelWork) -> ChannelWork:
        mine, theirs = self.first_row >= 0, other.first_row >= 0
        again = mine & theirs & (self.last_row != other.first_row)
        return ChannelWork(self.bursts + other.bursts, self.col_cycles + other.col_cycles,
                           self.bank_cycles + other.bank_cycles + np.where(again, self.reopen_cycles, 0.0),
                           np.where(theirs, other.reopen_cycles, self.reopen_cycles),
                           np.where(mine, self.first_row, other.first_row),
                           np.where(theirs, other.last_row, self.last_row), self.acts_rank + other.acts_rank,
                           np.maximum(self.unissued, other.unissued), self.ranks + other.ranks,
                           self.visits + other.visits, *self._not_replayed())

    def _not_replayed(self) -> tuple[np.ndarray, np.ndarray]:
        """`replayed` and `tail` of work no replay timed as a whole (several transfers, or copies): shared read-only
        arrays (work is summed and copied hundreds of thousands of times per simulated step)."""
        return _not_replayed(len(self.bursts))

    def row_shifted(self, rows: int) -> ChannelWork:
        """The same work `rows` rows further on (an address a multiple of the row span higher)."""
        if rows == 0:
            return self
        touched = self.first_row >= 0
        return ChannelWork(self.bursts, self.col_cycles, self.bank_cycles, self.reopen_cycles,
                           np.where(touched, self.first_row + rows, -1), np.where(touched, self.last_row + rows, -1),
                           self.acts_rank, self.unissued, self.ranks, self.visits, self.replayed,
                           self.tail)

    def repeated(self, k: int, rows_per_copy: int) -> ChannelWork:
        """The work of k back-to-back copies, each `rows_per_copy` rows after the previous (a long stream repeats
        one chunk's pattern in the following rows)."""
        touched = self.first_row >= 0
        return ChannelWork(self.bursts * k, self.col_cycles * k, self.bank_cycles * k + self.reopen_cycles * (k - 1),
                           self.reopen_cycles, self.first_row,
                           np.where(touched, self.last_row + (k - 1) * rows_per_copy, -1), self.acts_rank * k,
                           self.unissued, self.ranks.repeated(k), self.visits * k, *self._not_replayed())


@functools.cache
def _not_replayed(channels: int) -> tuple[np.ndarray, np.ndarray]:
    replayed, tail = np.full(channels, np.nan), np.full((channels, 2), np.nan)
    replayed.flags.writeable = tail.flags.writeable = False
    return replayed, tail


class DeviceState:
    """What earlier transfers leave behind for the next one on an open-page controller: their rows stay open (a
    transfer wanting another row in such a bank first waits for the earlier access's read-to-precharge or write
    recovery, then tRP), and the data bus turns around between writes and reads. Refresh closing rows is ignored."""

    def __init__(self, spec: DramSpec) -> None:
        self.spec = spec
        nb = spec.ranks * spec.banks
        self.precharge_at = np.full((spec.channels, nb), -np.inf)  # cycle a PRE may issue; -inf: bank closed
        self.open_row = np.full((spec.channels, nb), -1, dtype=np.int64)
        self.last_column = np.full(spec.channels, -np.inf)          # cycle of each channel's last column command
        self.last_write = False
        # posted writes still in the write buffers (at most WRITE_HOLD_MAX bursts per channel are left there)
        self.held: list[tuple[int, int]] = []
        self.held_work: ChannelWork | None = None

    def buffered(self, addr: int, nbytes: int) -> bool:
        """Whether [addr, addr + nbytes) lies in a write still held in the write buffers (a read of it is served
        from there, one clock after it arrives)."""
        return any(a <= addr and addr + nbytes <= a + n for a, n in self.held)

    def post(self, work: ChannelWork, ranges: list[tuple[int, int]]) -> ChannelWork | None:
        """Writes entering the write buffers: None when every channel still holds at most WRITE_HOLD_MAX bursts
        (DRAMSim3 leaves them there until more writes come), else the work of everything now written out."""
        total = work if self.held_work is None else self.held_work + work
        if total.bursts.max() <= WRITE_HOLD_MAX:
            self.held_work = total
            self.held.extend(ranges)
            return None
        self.held_work, self.held = None, []
        return total

    def waits(self, work: ChannelWork, is_write: bool, start: float) -> tuple[np.ndarray, np.ndarray]:
        """(cycles before each bank can activate, cycles before each channel's first column command) from `start`."""
        s = self.spec
        is_open = self.open_row >= 0
        conflict = is_open & (self.open_row != work.first_row)
        # a row conflict precharges first; a row hit skips the activation (its tRCD)
        bank_wait = np.where(conflict, np.maximum(self.precharge_at - start, 0.0) + s.tRP,
                             np.where(is_open, -float(s.tRCD_rd), 0.0))
        if self.last_write and not is_write:
            turn = s.AL + s.CWL + s.burst_cycles + s.tWTR_S      # write data, then write-to-read
        elif is_write and not self.last_write:
            turn = s.CL - s.CWL + s.burst_cycles + s.tRTRS      # read data off the bus before write data
        else:
            turn = 0
        return bank_wait, np.maximum(self.last_column + turn - start, 0.0)

    def record(self, work: ChannelWork, is_write: bool, start_ns: float, result: BulkResult) -> None:
        """Update after `result` (the timing of `work` started at `start_ns`)."""
        s = self.spec
        last = start_ns / s.tCK_ns + np.asarray(result.last_command_ns) / s.tCK_ns
        touched = work.bursts > 0
        self.last_column = np.where(touched, last, self.last_column)
        recovery = (s.CWL + s.burst_cycles + s.tWR) if is_write else (s.AL + s.tRTP)
        self.precharge_at = np.where(work.bank_cycles > 0, (last + recovery)[:, None], self.precharge_at)
        self.open_row = np.where(work.first_row >= 0, work.last_row, self.open_row)
        self.last_write = is_write


SCALAR_MAX_CHANNELS = 2  # up to this many channels `time` runs channel by channel in Python (hwmodels.dram.bulk_scalar)
REPLAY_QUEUE_FULLS = 8  # a long write's tail: its last 8 controller-fulls (queue + command queues) per channel


class BulkDram:
    """Fast DMA-level timing, agreeing with the transaction-level model on sequential and strided transfers."""

    def __init__(self, spec: str | DramSpec, issue_width: int | None = None, replay: bool = True):
        self.spec = get_dram(spec)
        self.amap = address_map(self.spec)
        self.issue_width = issue_width
        self.replay = replay  # replay small transfers and long writes' tails through the controllers' queues

    @property
    def row_span_bytes(self) -> int:
        """Addresses a multiple of this apart differ only in their row: a transfer's work depends on its address
        modulo this, up to a shift of its rows (`row_of`)."""
        st, cn = self.amap.stride, self.amap.count
        return max(st[f] * cn[f] for f in ("ch", "ra", "bg", "ba", "co")) << self.amap.shift_bits

    def row_of(self, addr: int) -> int:
        return self.amap.decode(addr)[4]

    def transfer_ns(self, addr: int, nbytes: int, is_write: bool, stride_bytes: int | None = None,
                    start_ns: float = 0.0) -> float:
        return self.transfer(addr, nbytes, is_write, stride_bytes, start_ns).ns

    def transfer(self, addr: int, nbytes: int, is_write: bool, stride_bytes: int | None = None,
                 start_ns: float = 0.0) -> BulkResult:
        """Time to move nbytes from addr: contiguous, or (stride_bytes) one burst-sized chunk every stride_bytes."""
        return self.time(self.work(addr, nbytes, is_write, stride_bytes), is_write, start_ns)

    def transfer_batch(self, segments: list[tuple[int, int]], is_write: bool, start_ns: float = 0.0) -> BulkResult:
        """Time to move contiguous (addr, nbytes) segments offered together, in order (one DMA batch)."""
        if not segments:
            raise ValueError("a DRAM transfer batch needs at least one (addr, nbytes) segment")
        bursts = np.concatenate([self._bursts(addr, nbytes, None) for addr, nbytes in segments])
        return self.time(self._channel_work(*self._decode(bursts), is_write), is_write, start_ns)

    # --- work ---------------------------------------------------------------------------------------------------
    def work(self, addr: int, nbytes: int, is_write: bool, stride_bytes: int | None = None) -> ChannelWork:
        """The per-channel work of one transfer (see `transfer`)."""
        if stride_bytes is None and not self.replay and self.spec.ranks == 1 and self.spec.channels > 2:
            return self._work_by_channel_part(addr, nbytes, is_write)
        return self._channel_work(*self._decode(self._bursts(addr, nbytes, stride_bytes)), is_write)

    def _work_by_channel_part(self, addr: int, nbytes: int, is_write: bool) -> ChannelWork:
        """`work` of a contiguous transfer without replay on one rank, decoding one channel per distinct part.

        The address fields form a mixed radix, so channel c's bursts are x = (L // S) S C + c S + L % S over a range
        of local indices L (S bursts per channel stride, C channels) and every other field depends on L alone:
        channels covering the same L range do the same work (a transfer has at most three such ranges)."""
        s = self.spec
        first_burst = self._bursts(addr, 1, None)[0]  # validates addr and nbytes
        if nbytes <= 0:
            raise ValueError(f"DRAM transfer needs addr >= 0 and nbytes > 0, got addr={addr}, nbytes={nbytes}")
        shift, rb = self.amap.shift_bits, s.request_bytes
        x0 = int(first_burst) >> shift
        x1 = x0 + (addr + nbytes - int(first_burst) + rb - 1) // rb  # one past the last burst
        stride, nch = self.amap.stride["ch"], s.channels
        block = stride * nch
        c = np.arange(nch)
        q0, r0 = divmod(x0, block)
        c0, lo0 = divmod(r0, stride)
        q1, r1 = divmod(x1 - 1, block)
        c1, lo1 = divmod(r1, stride)
        l_first = np.where(c < c0, (q0 + 1) * stride, np.where(c == c0, q0 * stride + lo0, q0 * stride))
        l_last = np.where(c < c1, q1 * stride + stride - 1, np.where(c == c1, q1 * stride + lo1, q1 * stride - 1))
        nb = s.ranks * s.banks
        bursts, col = np.zeros(nch, dtype=np.int64), np.zeros(nch)
        bank_cycles, reopen = np.zeros((nch, nb)), np.zeros((nch, nb))
        first_row, last_row = np.full((nch, nb), -1, dtype=np.int64), np.full((nch, nb), -1, dtype=np.int64)
        acts = np.zeros((nch, s.ranks), dtype=np.int64)
        unissued = np.full(nch, s.trans_queue_size)
        visits = 0
        parts: dict[tuple[int, int], list[int]] = {}
        for ch, (lf, ll) in enumerate(zip(l_first.tolist(), l_last.tolist(), strict=True)):
            if ll >= lf:
                parts.setdefault((lf, ll), []).append(ch)
        for (lf, ll), chans in parts.items():
            local = np.arange(lf, ll + 1, dtype=np.int64)
            x = (local // stride) * block + chans[0] * stride + local % stride
            _, rank, bg, bank, row = self._decode(x << shift)
            w = self._channel_work(np.zeros(len(x), dtype=np.int64), rank, bg, bank, row, is_write)
            bursts[chans], col[chans] = w.bursts[0], w.col_cycles[0]
            bank_cycles[chans], reopen[chans] = w.bank_cycles[0], w.reopen_cycles[0]
            first_row[chans], last_row[chans] = w.first_row[0], w.last_row[0]
            acts[chans], unissued[chans] = w.acts_rank[0], w.unissued[0]
            visits += w.visits * len(chans)
        return ChannelWork(bursts, col, bank_cycles, reopen, first_row, last_row, acts, unissued, RankRuns(), visits,
                           np.full(nch, np.nan), np.full((nch, 2), np.nan))

    def _bursts(self, addr: int, nbytes: int, stride_bytes: int | None) -> np.ndarray:
        """Burst addresses of a transfer, in the order they are offered."""
        rb = self.spec.request_bytes
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
        return bursts

    def _decode(self, bursts: np.ndarray) -> tuple[np.ndarray, ...]:
        x = bursts >> self.amap.shift_bits
        st, cn = self.amap.stride, self.amap.count
        out = []
        for f in ("ch", "ra", "bg", "ba", "ro"):
            stride, count = st[f], cn[f]
            if count == 1:
                out.append(np.zeros_like(x))
            elif stride & (stride - 1) == 0 and count & (count - 1) == 0:  # powers of two: shifts and masks
                out.append((x >> (stride.bit_length() - 1)) & (count - 1))
            else:
                out.append((x // stride) % count)
        return tuple(out)

    def _channel_work(self, ch: np.ndarray, rank: np.ndarray, bg: np.ndarray, bank: np.ndarray, row: np.ndarray,
                      is_write: bool) -> ChannelWork:
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
        for gid in np.flatnonzero(np.bincount(group)):
            present = np.concatenate(([0], np.cumsum(group == gid)))
            groups += (present[hi] - present[lo]) > 0
        t_col = np.bincount(chs, weights=np.maximum(t_s, t_l / groups), minlength=nch)
        # row visits: runs of the same (channel, bank, row) in each bank's order
        nb = s.ranks * s.banks
        flat_bank = (rank * s.bankgroups + bg) * s.banks_per_group + bank
        key_bank = chs * nb + flat_bank[order]
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
        full = occupancy[last_of_bank]
        occupancy[last_of_bank] = s.tRCD_rd + (visit_len[last_of_bank] - 1) * t_l
        bank_cycles = np.bincount(visit_bank, weights=occupancy, minlength=nch * nb).reshape(nch, nb)
        reopen = np.zeros(nch * nb)
        reopen[visit_bank[last_of_bank]] = full - occupancy[last_of_bank]
        visit_row = kr[new_visit]
        first_of_bank = np.ones(len(visit_len), dtype=bool)
        first_of_bank[1:] = visit_bank[1:] != visit_bank[:-1]
        first_row = np.full(nch * nb, -1, dtype=np.int64)
        last_row = first_row.copy()
        first_row[visit_bank[first_of_bank]] = visit_row[first_of_bank]
        last_row[visit_bank[last_of_bank]] = visit_row[last_of_bank]
        visit_ch = visit_bank // nb
        visit_rank = visit_ch * s.ranks + (visit_bank % nb) // s.banks
        acts_rank = np.bincount(visit_rank, minlength=nch * s.ranks).reshape(nch, s.ranks)
        # posted writes: how many each channel still holds when the write buffer takes the last one
        tail = np.full(nch, s.trans_queue_size)  # a buffer-full at least (all of a smaller transfer)
        replayed = np.full(nch, np.nan)
        tail_replay = np.full((nch, 2), np.nan)
        replay_steps = 0
        if self.replay:
            window = REPLAY_QUEUE_FULLS * (s.trans_queue_size + s.cmd_queue_size * nb)
            r = replay_queues(ch, flat_bank, row, nch, nb, QueueTiming.of(s, is_write), window)
            replay_steps = r.steps
            if is_write:  # acknowledged the clock after entering the buffer, which is the clock after the offer
                tail, replayed = np.where(n_ch > 0, r.held, tail), r.last_accept_cycles + 2.0
                longer = np.isfinite(r.tail_bursts)
                tail_replay[longer, 0] = r.tail_bursts[longer]
                tail_replay[longer, 1] = r.tail_cycles[longer]
            else:
                replayed = r.last_issue_cycles + s.read_delay
        if is_write and not self.replay:
            # the write buffer plus a command queue per bank among the latest writes
            tq, cq = s.trans_queue_size, s.cmd_queue_size
            # distinct banks among a channel's last x writes = the banks whose last write lies among them
            is_last = np.zeros(n, dtype=bool)
            last_of_key = np.ones(n, dtype=bool)
            last_of_key[:-1] = kb[1:] != kb[:-1]
            is_last[by_bank[last_of_key]] = True
            marks = np.concatenate(([0], np.cumsum(is_last)))
            busy = np.flatnonzero(n_ch > tq)
            k = np.ones(len(busy), dtype=np.int64)
            active = np.ones(len(busy), dtype=bool)
            for _ in range(4):  # fixed point: the banks among the queued writes each hold a command queue
                first = np.maximum(ends[busy] - (tq + cq * k), starts[busy])
                k_next = marks[ends[busy]] - marks[first]
                active &= k_next != k
                k = np.where(active, k_next, k)
            tail[busy] = tq + cq * k
        return ChannelWork(n_ch, t_col, bank_cycles, reopen.reshape(nch, nb), first_row.reshape(nch, nb),
                           last_row.reshape(nch, nb), acts_rank, tail, RankRuns.of(rank) if s.ranks > 1 else RankRuns(),
                           len(visit_len) + replay_steps, replayed, tail_replay)

    # --- timing -------------------------------------------------------------------------------------------------
    def time(self, work: ChannelWork, is_write: bool, start_ns: float = 0.0,
             after: DeviceState | None = None) -> BulkResult:
        """Completion time of the work starting at `start_ns` (which sets the refresh phase), on an idle device with
        every bank closed, or (`after`) on the state the previous transfers left behind."""
        if self.spec.channels <= SCALAR_MAX_CHANNELS:
            from hwmodels.dram.bulk_scalar import time_scalar

            return time_scalar(self, work, is_write, start_ns, after)
        return self._time_vector(work, is_write, start_ns, after)

    def _time_vector(self, work: ChannelWork, is_write: bool, start_ns: float = 0.0,
                     after: DeviceState | None = None) -> BulkResult:
        """`time`, all channels at once in numpy."""
        s = self.spec
        n_ch = work.bursts
        acts = work.acts_rank.sum(axis=1)
        k = work.acts_rank.max(axis=1)
        rrd = s.tRRD_S
        last_act = np.where(k > 0, (k - 1) // 4 * max(s.tFAW, 4 * rrd) + (k - 1) % 4 * rrd, 0)
        # the last-activated row still has its columns to read, one bank group's tCCD_L apart (mean row visit)
        t_l = max(s.burst_cycles, s.tCCD_L if s.bankgroups > 1 else s.tCCD_S)
        last_row_cols = (np.maximum(n_ch / np.maximum(acts, 1), 1.0) - 1.0) * t_l
        bank_cycles = work.bank_cycles
        first_act = col_ready = np.zeros(s.channels)
        if after is not None:
            bank_wait, col_ready = after.waits(work, is_write, start_ns / s.tCK_ns)
            bank_cycles = bank_cycles + bank_wait
            first_act = np.where(work.bank_cycles > 0, bank_wait, np.inf).min(axis=1)
            first_act = np.where(np.isfinite(first_act), first_act, 0.0)
        table = np.stack([work.col_cycles + np.maximum(first_act + s.tRCD_rd, col_ready), bank_cycles.max(axis=1),
                          first_act + last_act + s.tRCD_rd + last_row_cols, n_ch + 2.0 * acts])
        which = table.argmax(axis=0)
        body = table.max(axis=0)
        if is_write:
            # posted: the last burst is accepted once all but the writes the controller still holds have issued,
            # their column commands spread evenly from the first (an ACT, then tRCD) to the end of the body; on an
            # idle device a replay that saw the whole stream knows the clock (a write is acknowledged the clock
            # after it enters the buffer, which is the clock after the front end offers it)
            frac = np.maximum(n_ch - work.unissued, 0) / np.maximum(n_ch, 1)
            t0 = 1.0 + s.tRCD_wr if self.replay else 0.0  # (the estimate was calibrated spreading them from 0)
            cycles = np.maximum(t0 + (body - t0) * frac, np.maximum(n_ch - s.trans_queue_size, 0)) + 2.0
            cycles = np.where(frac > 0, cycles, np.maximum(n_ch - s.trans_queue_size, 0) + 2.0)
            # a write too long to replay whole: the bursts before the replayed tail issue at the body's mean rate,
            # the tail at the replay's pace
            w, tail_cycles = work.tail[:, 0], work.tail[:, 1]
            known = np.isfinite(tail_cycles)
            before = t0 + (body - t0) * np.where(known, n_ch - w, 0) / np.maximum(n_ch, 1)
            cycles = np.where(known, before + tail_cycles + 2.0, cycles)
            drain = np.where(n_ch > WRITE_HOLD_MAX, np.maximum(body + 2.0, cycles), cycles)
        else:
            cycles = drain = body + s.read_delay + 2.0
        if after is None and self.issue_width is None:
            # replayed whole from an idle device: the replay's clock (the row-level bounds only average the order
            # in which the banks are served)
            known = np.isfinite(work.replayed)
            cycles = np.where(known, work.replayed, cycles)
            drain = np.where(known, np.maximum(drain, cycles), drain)
            drain = np.where(known & (n_ch <= WRITE_HOLD_MAX), cycles, drain)  # held writes: posted = drained
            which = np.where(known, len(BOUNDS) - 1, which)
        cycles = np.where(n_ch > 0, cycles, 0.0)
        drain = np.where(n_ch > 0, drain, 0.0)
        slowest_ch = int(np.argmax(cycles))
        slowest, bound = float(cycles[slowest_ch]), BOUNDS[which[slowest_ch]]
        # the in-order front end hands out at most issue_width transactions per clock over all channels
        width = self.issue_width
        total_bursts = int(n_ch.sum())
        front = total_bursts / width if width else 0.0
        if front > slowest:
            slowest, bound = front + s.read_delay, "front end"
        total, refreshes = with_refresh(s, slowest, work.ranks, start_ns)
        drain_max = float(drain.max())
        drained = total if drain_max <= slowest else with_refresh(s, drain_max, work.ranks, start_ns)[0]
        tck = s.tCK_ns
        return BulkResult(ns=total * tck, bytes_per_channel=(n_ch * s.request_bytes).tolist(),
                          row_activations=int(acts.sum()), events=work.visits + refreshes, bound=bound,
                          per_channel_ns=(cycles * tck).tolist(), drain_ns=drained * tck,
                          last_command_ns=(np.where(n_ch > 0, body, -np.inf) * tck).tolist())
