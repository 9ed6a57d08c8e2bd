"""The controllers' queues replayed for one transfer, one step per burst: when it ends, and for writes how many
bursts the controllers still hold when the last is accepted.

A read DMA ends with its last data and a posted write DMA when the write buffer takes its last burst (DRAMSim3
acknowledges a write on entry). Both depend on the order in which the DRAM serves the banks, which the row-level
bulk model only averages, so this module replays the bursts with DRAMSim3's rules and the timing that decides that
order:

- the in-order front end offers the bursts; one whose channel's queue (read queue or write buffer) is full blocks
  the rest;
- one transaction per clock moves into its bank's command queue, the oldest whose queue has room; the write buffer
  drains in batches (once full, or holding more than 8 writes while the command queues are empty, the next
  len(buffer) moves go ahead);
- per clock one command (on HBM a row and a column command together): the first ready in round-robin order from
  the bank after the last command, PREs and ACTs included; within a bank FR-FCFS (row hits first, at most 4 before
  an older miss gets its precharge);
- timing: tRCD, tRAS, tRP, tRRD_S/L and tFAW for the row commands; read-to-precharge or write recovery; tCCD_S/L and
  the data bus (burst, plus tRTRS between reads of different ranks) for the column commands.

Left out: refresh (the caller adds it) and mixes of reads and writes. Replayed whole, a transfer ends within a few
clocks of the transaction-level model (tests/test_dram_queues.py). `BulkDram` replays a transfer whole when that
takes at most `budget` steps; of a longer write only each channel's tail, for the count still held and the tail's
own pace.
"""

from __future__ import annotations

import functools
import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np

from hwmodels.dram.spec import DramSpec

REPLAY_BUDGET = 8192  # steps a whole replay may take (bursts, or bursts of distinct channel patterns): <= ~0.2 s


@dataclass(frozen=True)
class QueueTiming:
    """The controller's sizes and the timing (memory cycles) that decide the order in which banks are served."""

    is_write: bool
    buffer_size: int       # read queue / write buffer entries
    queue_size: int        # command queue entries per bank
    banks_per_group: int
    banks_per_rank: int
    slot: int              # cycles between column commands on the bus: max(burst, tCCD_S)
    rank_slot: int         # ... to another rank than the last: burst (+ tRTRS for reads: DRAMSim3's *_o)
    group_gap: int         # cycles between column commands within a bank group: tCCD_L
    rcd: int               # ACT to column command
    recovery: int          # last column command to the bank's precharge: read-to-precharge or write recovery
    ras: int               # ACT to precharge
    rp: int                # precharge to ACT
    rrd_s: int
    rrd_l: int
    faw: int
    hit_limit: int         # FR-FCFS: row hits served before an older miss, per activation
    dual_issue: bool       # HBM: a row command (ACT) and a column command may share a clock

    @classmethod
    def of(cls, s: DramSpec, is_write: bool) -> QueueTiming:
        slot = max(s.burst_cycles, s.tCCD_S)
        recovery = (s.CWL + s.burst_cycles + s.tWR) if is_write else (s.AL + s.tRTP)
        return cls(is_write, s.trans_queue_size, s.cmd_queue_size, s.banks_per_group, s.banks, slot,
                   s.burst_cycles + (0 if is_write else s.tRTRS),
                   max(slot, s.tCCD_L if s.bankgroups > 1 else s.tCCD_S), s.tRCD_wr if is_write else s.tRCD_rd,
                   recovery, s.tRAS, s.tRP, s.tRRD_S, s.tRRD_L, s.tFAW, s.row_hit_limit,
                   s.protocol.upper().startswith("HBM"))


@dataclass
class QueueReplay:
    """Per channel (NaN where the replay saw only the transfer's tail, or for reads, did not run): the clock (from
    the transfer's start) its last burst was accepted and its last column command issued, and the bursts still
    held when the transfer's last was accepted."""

    held: np.ndarray
    last_accept_cycles: np.ndarray
    last_issue_cycles: np.ndarray
    tail_cycles: np.ndarray   # writes: from the replayed part's first column command to its last acceptance
    tail_bursts: np.ndarray   # bursts replayed at the end of a channel's part when not replayed whole
    steps: int = 0            # bursts replayed (the replay's work)


def replay_queues(channels: np.ndarray, banks: np.ndarray, rows: np.ndarray, nchannels: int, nbanks: int,
                  timing: QueueTiming, window: int, budget: int = REPLAY_BUDGET) -> QueueReplay:
    """Replay the bursts (channel, flat bank, row per burst, in the order the front end offers them) through the
    controllers: whole if that takes at most `budget` steps; else, for writes, each channel's last `window` (the
    state at the end does not depend on much more), and for reads nothing (NaN).

    The channels are replayed together, behind the in-order front end (a channel that stalls holds up the others'
    bursts). Beyond `budget` bursts, unless the transfer reaches the channels in runs long enough to fill a
    good part of a queue (then the front end stalls on one channel while the others run dry), each channel is
    replayed alone, as if the front end came back to it whenever its queue had room, and channels with the same
    pattern of banks and rows once (a step per burst of each distinct pattern): exact for streams that treat the
    channels alike (tested), cheaper by the number of channels. Rows only matter relative to each other; replays
    are cached by pattern."""
    out = QueueReplay(np.zeros(nchannels, dtype=np.int64), *(np.full(nchannels, np.nan) for _ in range(4)))
    counts = np.bincount(channels, minlength=nchannels)
    total = len(channels)
    change = np.flatnonzero(np.diff(channels)) + 1
    longest_run = int(np.diff(np.concatenate(([0], change, [total]))).max())
    if nchannels > 1 and (total <= budget or longest_run * 2 >= timing.buffer_size):
        whole = total <= budget
        if not whole and not timing.is_write:
            return out
        lo = 0 if whole else max(total - window * int((counts > 0).sum()), 0)
        r = rows[lo:]
        triples = np.stack([channels[lo:], banks[lo:], r - r.min()], axis=1).astype(np.int64)
        held, accepted, first, issued = _replay_together(triples.tobytes(), nchannels, nbanks, timing)
        out.held[:], out.steps = held, len(triples)
        out.tail_cycles[:] = np.where(np.array(first) >= 0, np.array(accepted) - np.array(first), np.nan)
        if lo == 0:
            out.last_accept_cycles[:], out.last_issue_cycles[:] = accepted, issued
        else:
            out.tail_bursts[:] = np.bincount(channels[lo:], minlength=nchannels)
        return out
    order = np.argsort(channels, kind="stable")
    ends = np.cumsum(counts)
    patterns = {}
    for c in np.flatnonzero(counts):
        idx = order[ends[c] - counts[c]:ends[c]]
        pairs = np.stack([banks[idx], rows[idx] - rows[idx].min()], axis=1).astype(np.int64)
        patterns.setdefault(pairs.tobytes(), []).append(c)
    whole = sum(len(p) // 16 for p in patterns) <= budget
    if not whole and not timing.is_write:
        return out
    for pattern, chans in patterns.items():
        if not whole:
            pairs = np.frombuffer(pattern, dtype=np.int64).reshape(-1, 2)[-window:]
            pattern = (pairs - [0, pairs[:, 1].min()]).astype(np.int64).tobytes()
        held, accepted, first, issued = _replay_alone(pattern, nbanks, timing)
        out.steps += len(pattern) // 16
        for c in chans:
            out.held[c] = held
            out.tail_cycles[c] = accepted - first if first >= 0 else np.nan
            if whole:
                out.last_accept_cycles[c], out.last_issue_cycles[c] = accepted, issued
            else:
                out.tail_bursts[c] = len(pattern) // 16
    return out


class _Channel:
    """One controller: read queue or write buffer, per-bank command queues, and the bank state that decides which
    bank it serves next. `tick(c)` does what DRAMSim3's controller does in a clock for these bursts: issue at most
    one command (an ACT or a column command; on HBM one of each), the first ready in round-robin order from the
    bank after the last command, then move at most one transaction into its bank's queue (writes only while the
    buffer drains). It may be called at any clock; `next_event` says which clocks can be skipped (a test checks
    both give the same result)."""

    def __init__(self, nbanks: int, t: QueueTiming):
        self.t = t
        self.nbanks = nbanks
        self.queues: list[deque] = [deque() for _ in range(nbanks)]   # rows of the bursts in each command queue
        self.waiting: list[deque] = [deque() for _ in range(nbanks)]  # (arrival no., row, first clock it may
        self.in_buffer = 0                                            # move) of each bank's queued transactions
        self.movable: list[tuple[int, int]] = []  # heap of (arrival no., bank): banks whose oldest transaction
        self.draining = 0                         # may move (checked when popped)
        self.first_issue = self.last_issue = -1
        self.n_cmds = 0
        self.open_row = [-1] * nbanks       # the row open in each bank (-1: closed or closing)
        self.ready = [0] * nbanks           # cycle from which the open row takes column commands (tRCD)
        self.act_row = [-1] * nbanks        # the row a PRE/ACT is waiting to open (-1: none)
        self.pre_at = [-1] * nbanks         # earliest cycle of the PRE it waits for first (-1: none, closed)
        self.act_at = [0] * nbanks          # earliest cycle of the ACT (after that PRE: tRP)
        self.acted = [-(1 << 30)] * nbanks  # cycle of each bank's last ACT
        self.hits = [0] * nbanks            # column commands since that ACT
        self.last_col = [-(1 << 30)] * nbanks
        self.group_free = [0] * max(nbanks // t.banks_per_group, 1)
        self.acts: list[deque] = [deque(maxlen=4) for _ in range(max(nbanks // t.banks_per_rank, 1))]
        self.admitted = self.issued = 0
        self.last = nbanks - 1              # bank of the last command issued (round-robin starts after it)
        self.next_slot = 0                  # earliest cycle of its next column command to the same rank
        self.next_slot_other = 0            # ... to another rank (the data bus turns around, tRTRS)
        self.col_rank = 0                   # rank of the last column command
        self.issue_at = 1 << 62             # no command can issue before this (a lower bound)
        self.rr_order = [[(last + j) % nbanks for j in range(1, nbanks + 1)] for last in range(nbanks)]
        self.group_of = [b // t.banks_per_group for b in range(nbanks)]
        self.rank_of = [b // t.banks_per_rank for b in range(nbanks)]

    def _act_time(self, b: int) -> int:
        """Earliest cycle the pending row command of bank b may issue: its PRE, or its ACT (its own wait, the
        rank's tRRD and tFAW)."""
        if self.pre_at[b] >= 0:
            return self.pre_at[b]
        t = self.t
        at = self.act_at[b]
        window = self.acts[b // t.banks_per_rank]
        if window:
            pg, pc = window[-1]
            at = max(at, pc + (t.rrd_l if pg == b // t.banks_per_group else t.rrd_s))
            if len(window) == 4:
                at = max(at, window[0][1] + t.faw)
        return at

    def _plan(self, b: int, c: int) -> None:
        """After bank b's queue changed at clock c: if nothing queued hits its open row (or the hit cap is
        reached and the oldest misses), it must open the oldest's row: a PRE first if a row is open (after the
        last column's recovery and tRAS after the ACT), then the ACT."""
        q, orow = self.queues[b], self.open_row[b]
        if not q or self.act_row[b] >= 0 or q[0] == orow or (orow in q and self.hits[b] < self.t.hit_limit):
            return
        self.act_row[b], self.open_row[b] = q[0], -1
        if orow >= 0:
            at = self.pre_at[b] = max(c + 1, self.last_col[b] + self.t.recovery, self.acted[b] + self.t.ras)
        else:
            at = self.act_at[b] = c + 1
        if at < self.issue_at:
            self.issue_at = at

    def admit(self, b: int, row: int, cycle: int) -> None:
        """The front end hands over a burst after the tick of `cycle` (the caller checked the queue has room)."""
        w = self.waiting[b]
        w.append((self.admitted, row, cycle + 1))
        if len(w) == 1 and len(self.queues[b]) < self.t.queue_size:
            heapq.heappush(self.movable, (self.admitted, b))
        self.admitted += 1
        self.in_buffer += 1

    def _scan(self, c: int, want: int) -> int:
        """The first bank (round-robin from the one after the last command) with a command ready at c: an ACT
        (want 1), a column command (want 2) or either (3); -1 if none (then `issue_at` is the soonest)."""
        queues, act_row, open_row, ready = self.queues, self.act_row, self.open_row, self.ready
        group_free, group_of, rank_of = self.group_free, self.group_of, self.rank_of
        same, other, col_rank = self.next_slot, self.next_slot_other, self.col_rank
        soonest = 1 << 62
        for b in self.rr_order[self.last]:
            if not queues[b]:
                continue
            if act_row[b] >= 0:
                if want & 1:
                    at = self._act_time(b)
                    if at <= c:
                        return b
                    if at < soonest:
                        soonest = at
            elif want & 2 and open_row[b] >= 0:
                at = ready[b]
                gf = group_free[group_of[b]]
                if gf > at:
                    at = gf
                bus = same if rank_of[b] == col_rank else other
                if bus > at:
                    at = bus
                if at <= c:
                    return b
                if at < soonest:
                    soonest = at
        if want == 3:
            self.issue_at = soonest
        return -1

    def _command(self, b: int, c: int) -> bool:
        """Issue bank b's ready command at c; True if it was a column command."""
        t = self.t
        self.last = b
        if self.pre_at[b] >= 0:             # PRE: the ACT may follow tRP later
            self.pre_at[b], self.act_at[b] = -1, c + t.rp
            if self.act_at[b] < self.issue_at:
                self.issue_at = self.act_at[b]
            return False
        if self.act_row[b] >= 0:
            window = self.acts[b // t.banks_per_rank]
            window.append((b // t.banks_per_group, c))
            self.open_row[b], self.ready[b], self.acted[b], self.hits[b] = self.act_row[b], c + t.rcd, c, 0
            self.act_row[b] = -1
            return False
        self.issued += 1
        self.n_cmds -= 1
        self.last_col[b] = self.last_issue = c
        if self.first_issue < 0:
            self.first_issue = c
        self.group_free[b // t.banks_per_group] = c + t.group_gap
        self.next_slot, self.next_slot_other, self.col_rank = c + t.slot, c + t.rank_slot, b // t.banks_per_rank
        q = self.queues[b]
        q.remove(self.open_row[b])          # FR-FCFS: the oldest entry that hits the open row
        self.hits[b] += 1
        self._plan(b, c)
        if self.waiting[b] and len(q) == t.queue_size - 1:  # the queue just got room for a waiting transaction
            heapq.heappush(self.movable, (self.waiting[b][0][0], b))
        return True

    def _issue(self, c: int) -> None:
        b = self._scan(c, 3)
        if b < 0:
            return
        column = self._command(b, c)
        if self.t.dual_issue:               # HBM: a row and a column command may go together
            other = self._scan(c, 1 if column else 2)
            if other >= 0:
                self._command(other, c)
        self.issue_at = c + 1

    def _move(self, c: int) -> None:
        """DRAMSim3 moves the first transaction (in arrival order) whose bank's queue has room."""
        heap, cap = self.movable, self.t.queue_size
        while heap:
            no, b = heap[0]
            w = self.waiting[b]
            if not w or w[0][0] != no or len(self.queues[b]) >= cap:
                heapq.heappop(heap)         # stale: moved already, or the queue filled up
                continue
            if w[0][2] > c:
                return                      # taken by the front end this clock: it may move from the next
            heapq.heappop(heap)
            _, row, _ = w.popleft()
            self.in_buffer -= 1
            self.draining -= 1
            q = self.queues[b]
            q.append(row)
            self.n_cmds += 1
            self._plan(b, c)
            if self.act_row[b] < 0 and self.open_row[b] >= 0:
                at = max(self.ready[b], self.group_free[b // self.t.banks_per_group])
                if at < self.issue_at:
                    self.issue_at = at
            if w and len(q) < cap:
                heapq.heappush(heap, (w[0][0], b))
            return

    def tick(self, c: int) -> None:
        if self.n_cmds and c >= self.issue_at:
            self._issue(c)
        if not self.t.is_write:
            if self.movable:
                self._move(c)
        elif self.in_buffer:
            # DRAMSim3 drains the write buffer in batches: when it is full, or holds more than 8 writes and the
            # command queues are empty, the next len(buffer) moves go ahead, then it waits for that again
            if not self.draining and (self.in_buffer >= self.t.buffer_size or (self.in_buffer > 8 and not self.n_cmds)):
                self.draining = self.in_buffer
            if self.draining and self.movable:
                self._move(c)

    def next_event(self, c: int) -> int:
        """The next cycle after c at which `tick` can do something (-1: nothing until a burst arrives)."""
        nxt = -1
        if self.movable and (not self.t.is_write or self.draining or self.in_buffer >= self.t.buffer_size
                             or (self.in_buffer > 8 and not self.n_cmds)):
            nxt = c + 1
        if self.n_cmds:
            at = max(self.issue_at, c + 1)
            nxt = at if nxt < 0 else min(nxt, at)
        return nxt


@functools.lru_cache(maxsize=4096)
def _replay_alone(pairs_bytes: bytes, nbanks: int, t: QueueTiming) -> tuple[int, int, int, int]:
    """One channel fed by a front end that offers its next burst whenever its queue has room: (bursts held when
    the last is accepted, that clock, the clocks of the first and the last column command; for writes, up to the
    last acceptance)."""
    bursts = np.frombuffer(pairs_bytes, dtype=np.int64).reshape(-1, 2).tolist()
    ch = _Channel(nbanks, t)
    head, n, c = 0, len(bursts), 0
    accepted = held = -1
    while True:
        while head < n and ch.in_buffer < t.buffer_size:
            ch.admit(*bursts[head], c)
            head += 1
        if head == n and accepted < 0:
            accepted, held = c, ch.admitted - ch.issued
            if t.is_write:
                return held, accepted, ch.first_issue, ch.last_issue
        c = ch.next_event(c)
        if c < 0:
            return held, accepted, ch.first_issue, ch.last_issue
        ch.tick(c)


@functools.lru_cache(maxsize=256)
def _replay_together(triples_bytes: bytes, nchannels: int, nbanks: int,
                     t: QueueTiming) -> tuple[tuple[int, ...], ...]:
    """All channels behind one in-order front end: a burst whose channel's queue is full blocks the rest."""
    bursts = np.frombuffer(triples_bytes, dtype=np.int64).reshape(-1, 3).tolist()
    chans = [_Channel(nbanks, t) for _ in range(nchannels)]
    last_accept = [0] * nchannels
    held: tuple[int, ...] = ()
    due: list[tuple[int, int]] = []         # (cycle, channel) heap; stale entries are skipped
    when = [-1] * nchannels
    head, n, c = 0, len(bursts), 0
    while True:
        # the front end, after the controllers' tick of cycle c, offers bursts until one finds its queue full
        while head < n:
            ch_id, b, row = bursts[head]
            ch = chans[ch_id]
            if ch.in_buffer >= t.buffer_size:
                break
            ch.admit(b, row, c)
            last_accept[ch_id] = c
            if when[ch_id] < 0 or when[ch_id] > c + 1:
                when[ch_id] = c + 1
                heapq.heappush(due, (c + 1, ch_id))
            head += 1
        if head == n and not held:
            held = tuple(ch.admitted - ch.issued for ch in chans)
        # the next clock at which some controller can act; every controller due then ticks
        first = -1
        while due and not (held and t.is_write):
            c, ch_id = heapq.heappop(due)
            if when[ch_id] == c:
                first = ch_id
                break
        if first < 0:                       # writes: the last is accepted; reads: every burst has issued
            return (held, tuple(last_accept), tuple(ch.first_issue for ch in chans),
                    tuple(ch.last_issue for ch in chans))
        ticked = [first]
        while due and due[0][0] == c:
            _, other = heapq.heappop(due)
            if when[other] == c and other not in ticked:  # a channel may have been pushed twice for c
                ticked.append(other)
        for ch_id in ticked:
            ch = chans[ch_id]
            ch.tick(c)
            nxt = ch.next_event(c)
            when[ch_id] = nxt
            if nxt >= 0:
                heapq.heappush(due, (nxt, ch_id))
