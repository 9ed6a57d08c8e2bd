"""All channels of one DRAM plus the front end that offers them transactions, in memory clocks.

The front end is the one the reference runs used (and DRAMSim3's own trace driver for issue_width=1): in each
clock, after the controllers' tick, it offers up to `issue_width` queued transactions in order; one that finds its
channel's queue full waits and blocks those behind it. A transaction offered after tick c enters the controller
with added_cycle c + 1, as DRAMSim3's AddTransaction stamps it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from hwmodels.dram.channel import INF, ChannelController
from hwmodels.dram.spec import DramSpec, address_map

DoneCallback = Callable[[object, int, int, bool], None]  # (token, added_cycle, done_cycle, is_write)


def _ignore(token: object, added: int, done: int, is_write: bool) -> None:
    pass


class DramSystem:
    """The cycle-level model of a whole DRAM: `submit` transactions, `advance` time, completions via `on_done`."""

    def __init__(self, spec: DramSpec, issue_width: int | None = None, on_done: DoneCallback | None = None):
        if issue_width is not None and issue_width <= 0:
            raise ValueError(f"issue_width must be a positive integer, got {issue_width}")
        self.spec = spec
        self.amap = address_map(spec)
        self.on_done = on_done
        # completions go straight to on_done (one Python call less per burst)
        self.channels = [ChannelController(spec, c, on_done or _ignore) for c in range(spec.channels)]
        self.issue_width = issue_width or INF
        self.inbox: deque[tuple[int, bool, object, int, int, int]] = deque()
        self.clk = -1            # last cycle processed
        self.admit_due = INF     # next cycle the front end must run even if no controller does
        self._adm_cycle = -1
        self._adm_count = 0
        self._bpg = spec.banks_per_group
        self._banks = spec.banks
        # address fields as (stride, count) pairs, looked up once: `locate` runs once per burst
        st, ct = self.amap.stride, self.amap.count
        self._shift = self.amap.shift_bits
        self._fields = tuple((st[f], ct[f]) for f in ("ch", "ra", "bg", "ba", "ro"))

    def locate(self, addr: int) -> tuple[int, int, int]:
        """(channel, flat bank index within the channel, row) of a byte address."""
        x = addr >> self._shift
        (s_ch, n_ch), (s_ra, n_ra), (s_bg, n_bg), (s_ba, n_ba), (s_ro, n_ro) = self._fields
        bank = (x // s_ra % n_ra * n_bg + x // s_bg % n_bg) * self._bpg + x // s_ba % n_ba
        return x // s_ch % n_ch, bank, x // s_ro % n_ro

    def next_cycle(self) -> int:
        """The next cycle at which anything happens (INF when idle apart from refresh)."""
        nd = min([ch.next_due for ch in self.channels])
        return nd if nd < self.admit_due else self.admit_due

    def busy(self) -> bool:
        return bool(self.inbox) or any(ch.busy() for ch in self.channels)

    def submit(self, addr: int, is_write: bool, token: object, cycle: int) -> None:
        """Offer one burst-sized transaction to the front end after the memory tick of `cycle` (>= now)."""
        if cycle > self.clk:
            self.advance(cycle)
        ch, bank, row = self.locate(addr)
        inbox = self.inbox
        c = cycle if cycle > self.clk else self.clk
        if inbox and c == self._adm_cycle:
            # the front end already stopped at this cycle (head blocked or width used): the newcomer just queues
            inbox.append((addr, is_write, token, ch, bank, row))
            return
        inbox.append((addr, is_write, token, ch, bank, row))
        self._admit(c)

    def _admit(self, c: int) -> None:
        if c != self._adm_cycle:
            self._adm_cycle, self._adm_count = c, 0
        inbox, chans, width = self.inbox, self.channels, self.issue_width
        count = self._adm_count
        while inbox and count < width:
            addr, is_write, token, ch, bank, row = inbox[0]
            chan = chans[ch]
            if len(chan.write_buffer if is_write else chan.read_queue) >= chan.trans_cap:
                break  # in-order front end: the head waits and blocks the rest
            inbox.popleft()
            chan.add(addr, bank, row, is_write, token, c + 1)
            count += 1
        self._adm_count = count
        self.admit_due = c + 1 if inbox and count >= width else INF

    def advance(self, to_cycle: int, stop_at_idle: bool = False) -> None:
        """Process every cycle up to and including `to_cycle` at which something can happen; with stop_at_idle,
        stop after the first processed cycle that leaves the system idle (`busy()` False), `clk` being that cycle."""
        chans, inbox = self.channels, self.inbox
        single = chans[0] if len(chans) == 1 else None
        while True:
            c = single.next_due if single is not None else min([ch.next_due for ch in chans])
            if self.admit_due < c:
                c = self.admit_due
            if c > to_cycle:
                break
            if single is not None:
                if single.next_due <= c:
                    single.tick(c)
            else:
                for ch in chans:
                    if ch.next_due <= c:
                        ch.tick(c)
            self.clk = c
            if inbox:
                head = inbox[0]
                chan = chans[head[3]]
                if len(chan.write_buffer if head[1] else chan.read_queue) >= chan.trans_cap:
                    self.admit_due = INF  # the head still waits: what `_admit` would find, without the call
                else:
                    self._admit(c)
            if stop_at_idle and not inbox and not any([ch.pending_rd for ch in chans]):  # `busy()`, inlined
                return
        if to_cycle > self.clk and to_cycle < INF:
            self.clk = to_cycle

    def run_until_idle(self, limit_cycle: int = INF, stop_at_idle: bool = False) -> None:
        """Advance until every submitted transaction has completed (or limit_cycle). It advances in chunks, so
        cycles after the idle point may be processed too; stop_at_idle stops at the cycle the system turns idle
        (what `run_bench` needs to count commands and rank states only up to the run's end)."""
        while self.busy():
            c = self.next_cycle()
            if c > limit_cycle:
                break
            self.advance(min(c + 1024, limit_cycle), stop_at_idle)  # in chunks: `busy()` is not free

    def log_commands(self) -> None:
        """Record every command issued from now on (for `command_log`)."""
        for ch in self.channels:
            ch.cmd_log = []

    def command_log(self) -> list[tuple[int, int, int, int]]:
        """(cycle, channel, flat bank, command type) of each command since `log_commands`, in issue order
        (channels in turn within a cycle); types are hwmodels.dram.timing.ACT, PRE, RD, WR, REF."""
        out = [(clk, ch.channel, b, typ) for ch in self.channels for clk, b, typ in (ch.cmd_log or [])]
        out.sort(key=lambda e: (e[0], e[1]))  # stable: a channel's commands of one cycle keep their order
        return out

    def last_done_cycle(self) -> int:
        """The latest completion cycle so far (0 if none)."""
        return max(ch.last_busy_cycle for ch in self.channels)

    def stats(self) -> dict:
        """Nested statistics per channel and totals (commands, row hits, bytes, busy cycles, and the rank-clocks
        with a row open / every bank precharged over the clocks processed so far, 0..clk)."""
        per = {}
        span = self.clk + 1
        ranks = self.spec.ranks
        burst = self.spec.burst_cycles
        rb = self.spec.request_bytes
        for ch in self.channels:
            per[ch.channel] = {
                "read_cmds": ch.n_read_cmds, "write_cmds": ch.n_write_cmds, "activations": ch.n_act,
                "precharges": ch.n_pre, "refreshes": ch.n_ref, "row_hits": ch.n_row_hits,
                "row_misses": ch.n_read_cmds + ch.n_write_cmds - ch.n_row_hits,
                "bytes_read": ch.n_read_cmds * rb, "bytes_written": ch.n_write_cmds * rb,
                "data_bus_busy_cycles": (ch.n_read_cmds + ch.n_write_cmds) * burst,
                "reads_done": ch.n_reads_done, "writes_done": ch.n_writes_done,
                "read_latency_sum_cycles": ch.read_latency_sum,
                "rank_active_cycles": ch.rank_active_cycles(span),
            }
            per[ch.channel]["all_bank_idle_cycles"] = span * ranks - per[ch.channel]["rank_active_cycles"]
        total = {k: sum(p[k] for p in per.values()) for k in next(iter(per.values()))}
        return {"channels": per, "total": total}
