"""One channel's memory controller and bank state machines, cycle-accurate in DRAMSim3's sense.

Per memory clock the controller does what DRAMSim3's Controller::ClockTick does: advance the refresh counter, issue
at most one command (two on HBM when one is a column and one a row command) chosen FR-FCFS from per-bank command
queues visited round-robin, then move at most one transaction from the read queue (or the write buffer while it
drains) into its bank's command queue. Commands obey every bank/bank-group/rank timing constraint, tFAW and
refresh. Transactions are acknowledged like DRAMSim3's: reads when their data has returned (issue + CL + burst),
writes one cycle after entering the write buffer.

Speed: instead of ticking every clock, `tick(clk)` is only called at cycles where something can happen: the
minimum of the banks' bounds (banks.py), a refresh, or a transaction to move. A tick resolves the bounds it reset (by
scanning those banks for the next cycle), so the next visit is a cycle at which a command can really issue rather
than one that only rediscovers a bound; and a scheduler with nothing it could move (every waiting transaction's bank
queue full, no write drain to start) asks for no visit. Ticking every cycle gives the same command trace (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from operator import itemgetter

from hwmodels.dram.banks import INF, BankCommands
from hwmodels.dram.spec import DramSpec
from hwmodels.dram.timing import ACT, PRE, RD, REF, WR

__all__ = ["INF", "ChannelController"]

_BANK = itemgetter(1)  # bank of a read-queue / write-buffer entry (addr, bank, row, is_write)
ROW_HIT_LIMIT_DEFAULT = 4


class ChannelController(BankCommands):
    """Transaction queues, write buffer, scheduling and refresh of one channel, over its banks' command queues."""

    def __init__(self, spec: DramSpec, channel: int, on_done: Callable[[object, int, int, bool], None]):
        super().__init__(spec)
        nb = self.nq
        self.spec, self.channel, self.on_done = spec, channel, on_done
        self.trans_cap = spec.trans_queue_size
        self.dual_cmd = spec.protocol.upper().startswith("HBM")
        # transaction level
        self.read_queue: list[tuple[int, int, int, bool]] = []   # (addr, bank, row, is_write)
        self.write_buffer: list[tuple[int, int, int, bool]] = []
        self.pending_rd: dict[int, list[tuple[object, int]]] = {}
        self.pending_wr: set[int] = set()
        self.write_draining = 0
        self.sched_stale = False
        # entries of the read queue / write buffer whose bank command queue has room (0 => nothing can move)
        self.rq_count = [0] * nb
        self.wb_count = [0] * nb
        self.rq_eligible = 0
        self.wb_eligible = 0
        # refresh
        policy = spec.refresh_policy
        if policy == "NONE":
            self.ref_interval = 0
        elif policy == "RANK_LEVEL_SIMULTANEOUS":
            self.ref_interval = spec.tREFI
        else:
            self.ref_interval = max(spec.tREFI // spec.ranks, 1)
        self.ref_simultaneous = policy == "RANK_LEVEL_SIMULTANEOUS"
        self.next_ref_rank = 0
        self.refresh_q: deque[int] = deque()
        self.next_due = self.ref_interval if self.ref_interval else INF
        # statistics
        self.n_read_cmds = self.n_write_cmds = self.n_act = self.n_pre = self.n_ref = 0
        self.n_row_hits = 0
        self.read_latency_sum = 0
        self.n_reads_done = 0
        self.n_writes_done = 0
        self.last_busy_cycle = 0
        # rank background states (DRAM energy): open banks per rank, the clock the count last went 0 -> 1, and the
        # rank-clocks of closed open-intervals; sampled after each clock's commands, as DRAMSim3 does
        self.rank_open_banks = [0] * self.ranks
        self.rank_open_since = [0] * self.ranks
        self.rank_active_closed = 0
        self.cmd_log: list[tuple[int, int, int]] | None = None  # (clk, bank, type) per command, when enabled

    # --- front end ---------------------------------------------------------------------------------------------
    def will_accept(self, is_write: bool) -> bool:
        return len(self.write_buffer if is_write else self.read_queue) < self.trans_cap

    def add(self, addr: int, bank: int, row: int, is_write: bool, token: object, added_cycle: int) -> None:
        """DRAMSim3 AddTransaction at controller clock `added_cycle` (the cycle after the driver's)."""
        if is_write:
            if addr not in self.pending_wr:  # a write to an address already buffered is merged
                self.pending_wr.add(addr)
                self.write_buffer.append((addr, bank, row, True))
                self.wb_count[bank] += 1
                if self.room[bank]:
                    self.wb_eligible += 1
            self._done(token, added_cycle, added_cycle + 1, True)
        elif addr in self.pending_wr:  # read served from the write buffer
            self._done(token, added_cycle, added_cycle + 1, False)
        else:
            waiting = self.pending_rd.get(addr)
            if waiting is None:
                self.pending_rd[addr] = [(token, added_cycle)]
                self.read_queue.append((addr, bank, row, False))
                self.rq_count[bank] += 1
                if self.room[bank]:
                    self.rq_eligible += 1
            else:
                waiting.append((token, added_cycle))
        # A transaction that cannot move yet (its bank queue is full) and starts no write drain leaves a settled
        # scheduler settled: no visit is needed for it (the visit would schedule nothing).
        if self.sched_stale or self._can_schedule():
            self.sched_stale = True
            if added_cycle < self.next_due:
                self.next_due = added_cycle

    def _can_schedule(self) -> bool:
        """Whether `_schedule` would change anything: start a write drain or move a transaction."""
        n_wb = len(self.write_buffer)
        if self.write_draining == 0 and (n_wb >= self.trans_cap or (n_wb > 8 and self.n_cmds == 0)):
            return True
        return (self.wb_eligible if self.write_draining > 0 else self.rq_eligible) > 0

    def busy(self) -> bool:
        """Reads still waiting for their data (writes are acknowledged on entering the write buffer, and like
        DRAMSim3's, a few may stay buffered until more traffic arrives)."""
        return bool(self.pending_rd)

    def _done(self, token: object, added: int, done: int, is_write: bool) -> None:
        if is_write:
            self.n_writes_done += 1
        else:
            self.n_reads_done += 1
            self.read_latency_sum += done - added
        if done > self.last_busy_cycle:
            self.last_busy_cycle = done
        self.on_done(token, added, done, is_write)
    def _finish_refresh(self, clk: int) -> tuple[int, int] | None:
        """DRAMSim3 FinishRefresh: precharge the refreshing rank's open banks, then REFRESH it."""
        r = self.refresh_q[0]
        if not self.in_ref:
            self.in_ref, self.ref_rank = True, r
        ready = 0
        for b in range(r * self.banks, (r + 1) * self.banks):
            if self.open_row[b] >= 0:
                if max(self.t_bank[PRE][b], self.t_rank[PRE][r]) <= clk:
                    return b, -PRE - 1
            elif max(self.t_bank[REF][b], self.t_rank[REF][r]) <= clk:
                ready += 1
        if ready == self.banks:
            return r * self.banks, -REF - 1
        return None

    def _refresh_bound(self) -> int:
        r = self.refresh_q[0]
        rng = range(r * self.banks, (r + 1) * self.banks)
        open_banks = [b for b in rng if self.open_row[b] >= 0]
        if open_banks:
            return min(max(self.t_bank[PRE][b], self.t_rank[PRE][r]) for b in open_banks)
        return max(max(self.t_bank[REF][b], self.t_rank[REF][r]) for b in rng)
    def rank_active_cycles(self, end_cycle: int) -> int:
        """Rank-clocks 0..end_cycle-1 with at least one open row, summed over ranks (end_cycle > the last clock
        at which a command issued)."""
        return self.rank_active_closed + sum(end_cycle - since for n, since in
                                             zip(self.rank_open_banks, self.rank_open_since, strict=True) if n)

    # --- issue -----------------------------------------------------------------------------------------------------
    def _issue(self, b: int, i: int, clk: int) -> int:
        """Issue the command entry i of bank b needs (i < 0: a refresh-side command -i-1). Returns its type."""
        r = self.bank_rank[b]
        if i < 0:
            typ = -i - 1
        else:
            row, is_write, addr = self.queues[b][i]
            orow = self.open_row[b]
            typ = ACT if orow < 0 else ((WR if is_write else RD) if row == orow else PRE)
        if typ == RD or typ == WR:
            q = self.queues[b]
            if len(q) == self.cmd_cap:  # the bank's queue regains room: its waiting transactions become eligible
                self.rq_eligible += self.rq_count[b]
                self.wb_eligible += self.wb_count[b]
                self.room[b] = True
            del q[i]
            del self.qrows[b][i]
            if is_write:
                self.q_writes[b] -= 1
            self.n_cmds -= 1
            if self.hits[b]:
                self.n_row_hits += 1
            self.hits[b] += 1
            if typ == RD:
                self.n_read_cmds += 1
                done = clk + self.T.read_delay
                waiting = self.pending_rd.pop(addr)
                self.n_reads_done += len(waiting)
                if done > self.last_busy_cycle:
                    self.last_busy_cycle = done
                on_done = self.on_done
                for token, added in waiting:  # what `_done` does, per read merged into this burst
                    self.read_latency_sum += done - added
                    on_done(token, added, done, False)
            else:
                self.n_write_cmds += 1
                self.pending_wr.discard(addr)
            self.sched_stale = True
        elif typ == ACT:
            self.n_act += 1
            self.open_row[b] = row
            self.hits[b] = 0
            self._record_act(r, clk)
            if self.rank_open_banks[r] == 0:  # an ACT always opens a closed bank: the ACT's clock counts as active
                self.rank_open_since[r] = clk
            self.rank_open_banks[r] += 1
        elif typ == PRE:
            self.n_pre += 1
            self.open_row[b] = -1
            self.hits[b] = 0
            self.rank_open_banks[r] -= 1  # a PRE always closes an open bank (a REF finds the rank all closed)
            if self.rank_open_banks[r] == 0:  # the closing clock counts as precharged
                self.rank_active_closed += clk - self.rank_open_since[r]
        else:  # REF: the whole rank
            self.n_ref += 1
            self.refresh_q.popleft()
            self.in_ref, self.ref_rank = False, -1
        if self.cmd_log is not None:
            self.cmd_log.append((clk, b, typ))
        self._update_timing(typ, b, r, clk)
        if typ == ACT:
            self._raise_act_bounds(r, clk)
        self.bound[b] = 0
        return typ

    # --- transaction scheduling ---------------------------------------------------------------------------------------
    def _schedule(self) -> int:
        """DRAMSim3 ScheduleTransaction: move one transaction into its bank's command queue. Returns the bank if its
        bound was reset (the move may let it issue earlier), else -1."""
        wb = self.write_buffer
        if self.write_draining == 0 and (len(wb) >= self.trans_cap or (len(wb) > 8 and self.n_cmds == 0)):
            self.write_draining = len(wb)
        draining = self.write_draining > 0
        if (self.wb_eligible if draining else self.rq_eligible) == 0:
            self.sched_stale = False  # every waiting transaction's bank queue is full
            return -1
        queue = wb if draining else self.read_queue
        # the oldest transaction whose bank queue has room, found at C speed: under load it is often the newest
        try:
            j = 0 if self.room[queue[0][1]] else list(map(self.room.__getitem__, map(_BANK, queue))).index(True)
        except ValueError:
            raise RuntimeError("DRAM controller: eligible-transaction count out of step with the queues") from None
        addr, b, row, is_write = queue[j]
        if is_write:
            if addr in self.pending_rd:  # a read of this address must go first
                self.write_draining = 0
                return -1
            self.write_draining -= 1
            self.wb_count[b] -= 1
            self.wb_eligible -= 1
        else:
            self.rq_count[b] -= 1
            self.rq_eligible -= 1
        q = self.queues[b]
        q.append((row, is_write, addr))
        self.qrows[b].append(row)
        if is_write:
            self.q_writes[b] += 1
        if len(q) == self.cmd_cap:  # now full: the bank's other waiting transactions are no longer eligible
            self.rq_eligible -= self.rq_count[b]
            self.wb_eligible -= self.wb_count[b]
            self.room[b] = False
        self.n_cmds += 1
        del queue[j]
        if not self._can_schedule():  # settled: saves a visit next cycle that would find nothing to move
            self.sched_stale = False
        if len(q) > 1 and row != self.open_row[b]:
            return -1  # a younger row miss is never a candidate (only the oldest entry activates or precharges)
        self.bound[b] = 0
        return b

    # --- one memory clock --------------------------------------------------------------------------------------
    def tick(self, clk: int) -> None:
        ri = self.ref_interval
        if ri and clk % ri == 0 and clk > 0:
            if self.ref_simultaneous:
                self.refresh_q.extend(range(self.ranks))
            else:
                self.refresh_q.append(self.next_ref_rank)
                self.next_ref_rank = (self.next_ref_rank + 1) % self.ranks
        cmd = self._finish_refresh(clk) if self.refresh_q else None
        if cmd is None:
            cmd = self._next_command(clk)
        b1 = b2 = -1
        if cmd is not None:
            b1 = cmd[0]
            typ = self._issue(b1, cmd[1], clk)
            if self.dual_cmd:
                second = self._next_command(clk)
                if second is not None:
                    b2, i2 = second
                    row = self.queues[b2][i2][0]
                    orow = self.open_row[b2]
                    if (orow >= 0 and row == orow) != (typ == RD or typ == WR):
                        self._issue(b2, i2, clk)
        bs = self._schedule() if self.sched_stale else -1
        # Resolve the bounds this tick reset (banks that issued or received a command) by scanning them for the
        # next cycle: otherwise the next visit would only rediscover them. A bank ready then keeps bound clk + 1.
        # (Ready banks the round-robin did not reach keep their bound <= clk and are scanned next cycle.)
        bound, nxt = self.bound, clk + 1
        for b in (b1, b2, bs):
            if b >= 0 and bound[b] <= clk and self._scan(b, nxt) >= 0:
                bound[b] = nxt
        # the next cycle at which anything can happen here
        if self.in_ref:  # the refreshing rank's queues wait for the refresh, whose own bound is added below
            lo, hi = self.ref_rank * self.banks, (self.ref_rank + 1) * self.banks
            nd = min(min(bound[:lo], default=INF), min(bound[hi:], default=INF))
        else:
            nd = min(bound)
        if nd <= clk or (self.sched_stale and (self.read_queue or self.write_buffer)):
            nd = nxt
        if self.refresh_q:
            rb = self._refresh_bound()
            nd = min(nd, max(rb, nxt))
        if ri:
            nr = (clk // ri + 1) * ri
            if nr < nd:
                nd = nr
        self.next_due = nd
