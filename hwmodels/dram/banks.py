"""Per-bank command queues, bank states and timing of one channel: which command can issue when (FR-FCFS).

A bank's readiness is the maximum of per-bank, per-bank-group and per-rank earliest times per command type (see
timing.py), plus the tFAW / 32-activate windows. Each bank queue keeps `bound`, a lower bound on the earliest cycle any
of its commands can issue: issuing a command elsewhere only ever delays other banks (timing constraints only grow), so
a bound stays valid until the bank's own state or queue changes, which resets it to 0. The controller visits only
cycles where some bound has come, which gives the command trace of ticking every cycle.

Speed: `_scan` answers in O(1) for the common queue shapes (bank closed; no queued row hit; all hits of one kind or
only the oldest entry hitting) and walks the queue only for mixed read/write hits. `qrows` (the rows of each queue)
and `q_writes` make those shape tests C-speed list operations.
"""

from __future__ import annotations

from hwmodels.dram.spec import DramSpec
from hwmodels.dram.timing import ACT, PRE, RD, WR, build_timing

INF = 1 << 62


class BankCommands:
    """Bank states, timing constraints and command queues; the command-level half of a channel controller."""

    def __init__(self, spec: DramSpec):
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
        self.n_cmds = 0
        self.other_ranks = [tuple(r2 for r2 in range(spec.ranks) if r2 != r) for r in range(spec.ranks)]
        self.rank_banks = [range(r * spec.banks, (r + 1) * spec.banks) for r in range(spec.ranks)]
        self.four_aw: list[list[int]] = [[] for _ in range(spec.ranks)]
        self.aw32: list[list[int]] = [[] for _ in range(spec.ranks)]
        self.hit_limit = spec.row_hit_limit
        self.queue_idx = 0
        # the rank being refreshed (its queues are skipped by the round-robin)
        self.in_ref = False
        self.ref_rank = -1

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

    # --- timing updates ------------------------------------------------------------------------------------------
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
        floor = self.tr_act[r] if self.tr_act[r] > clk + 1 else clk + 1
        if len(faw) >= 4 and faw[0] > floor:
            floor = faw[0]
        bound, open_row = self.bound, self.open_row
        for b in self.rank_banks[r]:
            if bound[b] < floor and open_row[b] < 0:
                bound[b] = floor

    def _update_timing(self, typ: int, b: int, r: int, clk: int) -> None:
        same_bank, same_group, same_rank, other_ranks = self._raises[typ]
        for arr, lat in same_bank:
            t = clk + lat
            if t > arr[b]:
                arr[b] = t
        if same_group:
            g = self.bank_group[b]
            for arr, lat in same_group:
                t = clk + lat
                if t > arr[g]:
                    arr[g] = t
        for arr, lat in same_rank:
            t = clk + lat
            if t > arr[r]:
                arr[r] = t
        if other_ranks:
            others = self.other_ranks[r]
            for arr, lat in other_ranks:
                t = clk + lat
                for r2 in others:
                    if t > arr[r2]:
                        arr[r2] = t
