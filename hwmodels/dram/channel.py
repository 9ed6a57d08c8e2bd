"""One channel's memory controller and bank state machines, cycle-accurate in DRAMSim3's sense.

Per memory clock the controller does what DRAMSim3's Controller::ClockTick does: advance the refresh counter, issue
at most one command (two on HBM when one is a column and one a row command) chosen FR-FCFS from per-bank command
queues visited round-robin, then move at most one transaction from the read queue (or the write buffer while it
drains) into its bank's command queue. Commands obey every bank/bank-group/rank timing constraint, tFAW and
refresh. Transactions are acknowledged like DRAMSim3's: reads when their data has returned (issue + CL + burst),
writes one cycle after entering the write buffer.

Speed: instead of ticking every clock, `tick(clk)` is only called at cycles where something can happen. Each bank
queue keeps a lower bound on the earliest cycle any of its commands can issue; issuing a command elsewhere only
ever delays other banks (timing constraints only grow), so bounds stay valid until the bank's own state or queue
changes, which resets them. Visiting only the minimum of these bounds gives the same command trace as ticking every
cycle. A tick resolves the bounds it reset (by scanning those banks for the next cycle), so the next visit is the next
cycle at which a command can really issue rather than a cycle that only rediscovers the bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from operator import itemgetter

from hwmodels.dram.spec import DramSpec
from hwmodels.dram.timing import ACT, PRE, RD, REF, WR, build_timing

INF = 1 << 62
_BANK = itemgetter(1)  # bank of a read-queue / write-buffer entry (addr, bank, row, is_write)
ROW_HIT_LIMIT_DEFAULT = 4


class ChannelController:
    """Transaction queues, per-bank command queues, bank states and refresh of one channel."""

    def __init__(self, spec: DramSpec, channel: int, on_done: Callable[[object, int, int, bool], None]):
        self.spec, self.channel, self.on_done = spec, channel, on_done
        self.T = build_timing(spec)
        self.ranks, self.banks = spec.ranks, spec.banks
        nb = spec.ranks * spec.banks
        self.nq = nb
        self.bank_rank = [b // spec.banks for b in range(nb)]
        self.bank_group = [b // spec.banks_per_group for b in range(nb)]  # rank * bankgroups + bg
        ng = spec.ranks * spec.bankgroups
        self.t_bank = [[0] * nb for _ in range(5)]
        self.t_group = [[0] * ng for _ in range(5)]
        self.t_rank = [[0] * spec.ranks for _ in range(5)]
        # the hot readiness tests index these per-type lists directly (same list objects as above)
        self.tb_act, self.tb_pre, self.tb_rd, self.tb_wr = (self.t_bank[y] for y in (ACT, PRE, RD, WR))
        self.tg_act, self.tg_rd, self.tg_wr = self.t_group[ACT], self.t_group[RD], self.t_group[WR]
        self.tr_act, self.tr_pre, self.tr_rd, self.tr_wr = (self.t_rank[y] for y in (ACT, PRE, RD, WR))
        # per issued command type: the (earliest-time list, latency) pairs it raises, per scope
        T = self.T
        self._raises = [([(self.t_bank[y], lat) for y, lat in T.bank[typ]],
                         [(self.t_group[y], lat) for y, lat in T.group[typ]],
                         [(self.t_rank[y], lat) for y, lat in T.rank[typ]],
                         [(self.t_rank[y], lat) for y, lat in T.other_ranks[typ]] if spec.ranks > 1 else [])
                        for typ in range(5)]
        self.open_row = [-1] * nb
        self.hits = [0] * nb
        self.queues: list[list[tuple[int, bool, int]]] = [[] for _ in range(nb)]
        self.qrows: list[list[int]] = [[] for _ in range(nb)]  # rows of queues[b]: a C-speed "any row hit?" test
        # round-robin visiting order after bank k was served: k+1, ..., nb-1, 0, ..., k
        self.rr_order = [tuple(range((k + 1) % nb, nb)) + tuple(range((k + 1) % nb)) for k in range(nb)]
        self.bound = [INF] * nb
        self.q_writes = [0] * nb  # writes among queues[b]
        self.room = [True] * nb  # room[b]: len(queues[b]) < cmd_cap (kept in step where queue lengths change)
        self.cmd_cap = spec.cmd_queue_size
        self.trans_cap = spec.trans_queue_size
        self.n_cmds = 0
        self.four_aw: list[list[int]] = [[] for _ in range(spec.ranks)]
        self.aw32: list[list[int]] = [[] for _ in range(spec.ranks)]
        self.hit_limit = spec.row_hit_limit
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
        self.in_ref = False
        self.ref_rank = -1
        self.queue_idx = 0
        self.next_due = self.ref_interval if self.ref_interval else INF
        # statistics
        self.n_read_cmds = self.n_write_cmds = self.n_act = self.n_pre = self.n_ref = 0
        self.n_row_hits = 0
        self.read_latency_sum = 0
        self.n_reads_done = 0
        self.n_writes_done = 0
        self.last_busy_cycle = 0

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

    # --- readiness -------------------------------------------------------------------------------------------------
    def _act_time(self, b: int) -> int:
        r = self.bank_rank[b]
        t = max(self.tb_act[b], self.tg_act[self.bank_group[b]], self.tr_act[r])
        faw = self.four_aw[r]
        if len(faw) >= 4 and faw[0] > t:
            t = faw[0]
        if self.T.t32aw:
            aw = self.aw32[r]
            if len(aw) >= 32 and aw[0] > t:
                t = aw[0]
        return t

    def _scan(self, b: int, clk: int) -> int:
        """DRAMSim3 GetFirstReadyInQueue for bank b: index of the command to issue now, or -1 (bound updated)."""
        q = self.queues[b]
        if not q:
            self.bound[b] = INF
            return -1
        orow = self.open_row[b]
        rows = self.qrows[b]
        if orow < 0:  # closed: every entry needs ACT; the first one is the candidate
            t = self._act_time(b)
        elif orow not in rows:  # no row hit: the only candidate is precharging for the oldest entry
            t = max(self.tb_pre[b], self.tr_pre[self.bank_rank[b]])
        else:
            n_wr = self.q_writes[b]
            if n_wr and n_wr < len(q) and (rows[0] != orow or rows.count(orow) > 1):
                return self._scan_hits(b, orow, clk, q)  # reads and writes mixed, several candidates
            # Every hit is of one kind (so all hits share one time and no read-after-write block exists), or the
            # oldest entry is the only hit: the first hit is the only column candidate.
            if q[0][1] if rows[0] == orow else n_wr:
                t = max(self.tb_wr[b], self.tg_wr[self.bank_group[b]], self.tr_wr[self.bank_rank[b]])
            else:
                t = max(self.tb_rd[b], self.tg_rd[self.bank_group[b]], self.tr_rd[self.bank_rank[b]])
            if rows[0] != orow:  # the oldest entry misses: it may precharge first, but only over the hit cap
                j = rows.index(orow)
                if self.hits[b] >= self.hit_limit:
                    t_pre = max(self.tb_pre[b], self.tr_pre[self.bank_rank[b]])
                    if t_pre <= clk:
                        return 0
                    if t_pre < t:
                        if t <= clk:
                            return j
                        self.bound[b] = t_pre
                        return -1
                if t <= clk:
                    return j
                self.bound[b] = t
                return -1
        if t <= clk:
            return 0
        self.bound[b] = t
        return -1

    def _scan_hits(self, b: int, orow: int, clk: int, q: list[tuple[int, bool, int]]) -> int:
        """`_scan` of a bank with an open row that some queued entry hits: FR-FCFS over its entries."""
        t_rd = t_wr = -1
        best = INF
        pre_ok = self.hits[b] >= self.hit_limit  # below the hit cap, waiting row hits hold off the precharge
        for i, (row, is_write, addr) in enumerate(q):
            if row == orow:
                if is_write:
                    if t_wr < 0:
                        t_wr = max(self.tb_wr[b], self.tg_wr[self.bank_group[b]], self.tr_wr[self.bank_rank[b]])
                    elif t_wr >= best:
                        continue  # neither issues now nor lowers the bound (a write before it did not)
                    if i and any(not e[1] and e[2] == addr for e in q[:i]):
                        continue  # read-after-write dependency on the same address
                    t = t_wr
                elif t_rd < 0:
                    t = t_rd = max(self.tb_rd[b], self.tg_rd[self.bank_group[b]], self.tr_rd[self.bank_rank[b]])
                else:
                    continue  # a later read hit: same time as the first one, already considered
            elif i or not pre_ok:  # precharge only for the oldest entry
                continue
            else:
                t = max(self.tb_pre[b], self.tr_pre[self.bank_rank[b]])
            if t <= clk:
                return i
            if t < best:
                best = t
        self.bound[b] = best
        return -1

    def _next_command(self, clk: int) -> tuple[int, int] | None:
        """DRAMSim3 GetCommandToIssue: round-robin over bank queues, skipping the rank being refreshed."""
        bound = self.bound
        scan = self._scan
        # only banks whose bound has come can issue; the others are passed over at the cost of one comparison
        if self.in_ref:
            skip_rank, bank_rank = self.ref_rank, self.bank_rank
            for q in self.rr_order[self.queue_idx]:
                if bound[q] <= clk and bank_rank[q] != skip_rank:
                    i = scan(q, clk)
                    if i >= 0:
                        self.queue_idx = q
                        return q, i
        else:
            for q in self.rr_order[self.queue_idx]:
                if bound[q] <= clk:
                    i = scan(q, clk)
                    if i >= 0:
                        self.queue_idx = q
                        return q, i
        return None

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
        elif typ == PRE:
            self.n_pre += 1
            self.open_row[b] = -1
            self.hits[b] = 0
        else:  # REF: the whole rank
            self.n_ref += 1
            self.refresh_q.popleft()
            self.in_ref, self.ref_rank = False, -1
        self._update_timing(typ, b, r, clk)
        if typ == ACT:
            self._raise_act_bounds(r, clk)
        self.bound[b] = 0
        return typ

    def _record_act(self, r: int, clk: int) -> None:
        faw = self.four_aw[r]
        if faw and clk >= faw[0]:
            del faw[0]
        faw.append(clk + self.T.faw)
        if self.T.t32aw:
            aw = self.aw32[r]
            if aw and clk >= aw[0]:
                del aw[0]
            aw.append(clk + self.T.t32aw)

    def _raise_act_bounds(self, r: int, clk: int) -> None:
        """After an ACT, closed banks of the rank (whose only candidate is an ACT) cannot issue before the rank's
        new ACT floor (tRRD_S, tFAW): raising their bounds saves rescanning them every cycle until then."""
        faw = self.four_aw[r]
        floor = max(self.t_rank[ACT][r] if self.t_rank[ACT][r] > clk + 1 else clk + 1,
                    faw[0] if len(faw) >= 4 else 0)
        bound, open_row = self.bound, self.open_row
        for b in range(r * self.banks, (r + 1) * self.banks):
            if bound[b] < floor and open_row[b] < 0:
                bound[b] = floor

    def _update_timing(self, typ: int, b: int, r: int, clk: int) -> None:
        same_bank, same_group, same_rank, other_ranks = self._raises[typ]
        for arr, lat in same_bank:
            if clk + lat > arr[b]:
                arr[b] = clk + lat
        if same_group:
            g = self.bank_group[b]
            for arr, lat in same_group:
                if clk + lat > arr[g]:
                    arr[g] = clk + lat
        for arr, lat in same_rank:
            if clk + lat > arr[r]:
                arr[r] = clk + lat
        for arr, lat in other_ranks:
            for r2 in range(self.ranks):
                if r2 != r and clk + lat > arr[r2]:
                    arr[r2] = clk + lat

    # --- transaction scheduling ---------------------------------------------------------------------------------------
    def _schedule(self) -> int:
        """DRAMSim3 ScheduleTransaction: move one transaction into its bank's command queue; returns that bank or -1."""
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
        self.bound[b] = 0
        del queue[j]
        if not self._can_schedule():  # settled: saves a visit next cycle that would find nothing to move
            self.sched_stale = False
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
