"""The compiled core (`_dramcore.c`, built by `pip install`) behind the same interface as `DramSystem`.

The C core follows system.py / channel.py / banks.py decision for decision, so both give the same command trace
(tests/test_dram_core.py compares completions and counters on random cases). `make_system` picks the compiled core
when it was built and the pure-Python `DramSystem` otherwise (with one warning per process), or as asked.

Completions are buffered in C and delivered to `on_done` in order after each `submit` / `advance` call returns (the
Python path delivers them during the call); with `on_done=None` nothing is buffered.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from hwmodels.dram.banks import INF
from hwmodels.dram.spec import DramSpec, address_map
from hwmodels.dram.system import DramSystem
from hwmodels.dram.timing import build_timing

try:
    from hwmodels.dram import _dramcore
except ImportError:  # not built (no C compiler at install time): the pure-Python path
    _dramcore = None

__all__ = ["CompiledDramSystem", "compiled_available", "make_system"]

DoneCallback = Callable[[object, int, int, bool], None]
STAT_KEYS = ("read_cmds", "write_cmds", "activations", "precharges", "refreshes", "row_hits", "reads_done",
             "writes_done", "read_latency_sum_cycles", "last_busy_cycle", "rank_active_cycles")
_warned = False


def compiled_available() -> bool:
    """Whether the compiled core was built and imports."""
    return _dramcore is not None


def make_system(spec: DramSpec, issue_width: int | None = None, on_done: DoneCallback | None = None,
                compiled: bool | None = None) -> DramSystem | CompiledDramSystem:
    """A DRAM system: compiled=None -> the compiled core if available (else Python, warning once); True -> compiled
    (RuntimeError if it was not built); False -> the pure-Python `DramSystem`."""
    global _warned
    if compiled is None:
        compiled = _dramcore is not None
        if not compiled and not _warned:
            _warned = True
            warnings.warn("hwmodels.dram: compiled core not built (reinstall with a C compiler: pip install -e .); "
                          "using the pure-Python DRAM model, several times slower", RuntimeWarning, stacklevel=2)
    if compiled:
        if _dramcore is None:
            raise RuntimeError("hwmodels.dram: the compiled core was not built (pip install -e . with a C compiler)")
        return CompiledDramSystem(spec, issue_width=issue_width, on_done=on_done)
    return DramSystem(spec, issue_width=issue_width, on_done=on_done)


def _core_args(spec: DramSpec) -> tuple:
    """(geometry, timing, mapping) in the form `_dramcore.System` takes; derived as channel.py / banks.py do."""
    T = build_timing(spec)
    policy = spec.refresh_policy
    if policy == "NONE":
        ref_interval = 0
    elif policy == "RANK_LEVEL_SIMULTANEOUS":
        ref_interval = spec.tREFI
    else:
        ref_interval = max(spec.tREFI // spec.ranks, 1)
    geometry = (spec.channels, spec.ranks, spec.banks, spec.banks_per_group, spec.bankgroups, spec.cmd_queue_size,
                spec.trans_queue_size, spec.row_hit_limit, int(spec.protocol.upper().startswith("HBM")),
                ref_interval, int(policy == "RANK_LEVEL_SIMULTANEOUS"), T.read_delay, T.faw, T.t32aw)
    timing = tuple((T.bank[t], T.group[t], T.rank[t], T.other_ranks[t]) for t in range(5))
    amap = address_map(spec)
    mapping = (amap.shift_bits, tuple((amap.stride[f], amap.count[f]) for f in ("ch", "ra", "bg", "ba", "ro")))
    return geometry, timing, mapping


class CompiledDramSystem:
    """`DramSystem`'s interface over the compiled core: submit, advance, next_cycle, busy, run_until_idle, stats."""

    def __init__(self, spec: DramSpec, issue_width: int | None = None, on_done: DoneCallback | None = None):
        if issue_width is not None and issue_width <= 0:
            raise ValueError(f"issue_width must be a positive integer, got {issue_width}")
        if _dramcore is None:
            raise RuntimeError("hwmodels.dram: the compiled core was not built")
        self.spec = spec
        self.on_done = on_done
        self.issue_width = issue_width or INF
        self._core = _dramcore.System(*_core_args(spec), issue_width or 0, on_done is not None)
        self._tokens: list[object] = []   # tag -> token of a transaction not yet completed
        self._free: list[int] = []        # tags free for reuse (each transaction completes exactly once)

    @property
    def clk(self) -> int:
        return self._core.clk

    def submit(self, addr: int, is_write: bool, token: object, cycle: int) -> None:
        """Offer one burst-sized transaction to the front end after the memory tick of `cycle` (>= now)."""
        if self.on_done is None:
            self._core.submit(addr, is_write, 0, cycle)
        elif self._core.submit(addr, is_write, self._tag(token), cycle):
            self._deliver()

    def submit_many(self, addrs: list[int], writes: list[bool], tokens: list[object], cycle: int) -> None:
        """`submit` of each in turn, in one call (completions are delivered after the last)."""
        if self.on_done is None:
            self._core.submit_many(addrs, writes, [0] * len(addrs), cycle)
        elif self._core.submit_many(addrs, writes, [self._tag(t) for t in tokens], cycle):
            self._deliver()

    def run_batch(self, firsts: list[int], counts: list[int], is_write: bool, cycle: int) -> list[int]:
        """Submit access k = `counts[k]` consecutive bursts from `firsts[k]` at `cycle`, as `submit_many` would, and
        advance until every burst has completed; returns each access's completion cycle. Completions are counted in
        C, not delivered to `on_done`. Needs an idle front end (`busy()` false); the core stops right after the
        memory cycle of the last completion, so the command trace is that of submit_many + advance."""
        return self._core.run_batch(firsts, counts, self.spec.request_bytes, is_write, cycle)

    def advance(self, to_cycle: int) -> None:
        if self._core.advance(min(to_cycle, INF)) and self.on_done is not None:
            self._deliver()

    def next_cycle(self) -> int:
        return self._core.next_cycle()

    def busy(self) -> bool:
        return self._core.busy()

    def run_until_idle(self, limit_cycle: int = INF, stop_at_idle: bool = False) -> None:
        """As `DramSystem.run_until_idle`."""
        self._core.run_until_idle(min(limit_cycle, INF), stop_at_idle)
        if self.on_done is not None:
            self._deliver()

    def log_commands(self) -> None:
        """Record every command issued from now on (for `command_log`)."""
        self._core.log_commands()

    def command_log(self) -> list[tuple[int, int, int, int]]:
        """As `DramSystem.command_log`: (cycle, channel, flat bank, command type) in issue order."""
        return self._core.command_log()

    def last_done_cycle(self) -> int:
        """The latest completion cycle so far (0 if none)."""
        return max([s[9] for s in self._core.channel_stats()])  # STAT_KEYS' last_busy_cycle

    def stats(self) -> dict:
        """As `DramSystem.stats`."""
        burst, rb = self.spec.burst_cycles, self.spec.request_bytes
        span_ranks = (self._core.clk + 1) * self.spec.ranks
        per = {}
        for ch, row in enumerate(self._core.channel_stats()):
            c = dict(zip(STAT_KEYS, row, strict=True))
            rw = c["read_cmds"] + c["write_cmds"]
            per[ch] = {
                "read_cmds": c["read_cmds"], "write_cmds": c["write_cmds"], "activations": c["activations"],
                "precharges": c["precharges"], "refreshes": c["refreshes"], "row_hits": c["row_hits"],
                "row_misses": rw - c["row_hits"], "bytes_read": c["read_cmds"] * rb,
                "bytes_written": c["write_cmds"] * rb, "data_bus_busy_cycles": rw * burst,
                "reads_done": c["reads_done"], "writes_done": c["writes_done"],
                "read_latency_sum_cycles": c["read_latency_sum_cycles"],
                "rank_active_cycles": c["rank_active_cycles"],
                "all_bank_idle_cycles": span_ranks - c["rank_active_cycles"],
            }
        total = {k: sum(p[k] for p in per.values()) for k in next(iter(per.values()))}
        return {"channels": per, "total": total}

    def _tag(self, token: object) -> int:
        if self._free:
            tag = self._free.pop()
            self._tokens[tag] = token
            return tag
        self._tokens.append(token)
        return len(self._tokens) - 1

    def _deliver(self) -> None:
        done = self._core.take_done()
        if not done:
            return
        tokens, free, on_done = self._tokens, self._free, self.on_done
        for tag, added, finished, is_write in done:
            token = tokens[tag]
            tokens[tag] = None
            free.append(tag)
            on_done(token, added, finished, is_write)
