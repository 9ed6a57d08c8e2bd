"""SimPy hardware units: compute units and DMA engines (capacity-1 Resources that log busy intervals) and the two
DRAM ports (bulk transfers on a shared data bus at `tile` fidelity; every burst through the transaction-level model
at `transaction` fidelity). Simulation time is in machine clock cycles."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np
import simpy


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that can say how many events it scheduled (the engine's work measure)."""

    @property
    def events_scheduled(self) -> int:
        # SimPy numbers every scheduled event from one counter (Environment._eid); reading it costs nothing per
        # event, unlike overriding schedule(). Taking a number advances the counter, which only shifts later ids.
        return next(self._eid)


class ChannelSplit:
    """Which DRAM channels a contiguous transfer touches, and how many bursts each, from the DRAM's address map
    (closed form: O(channels) per transfer, not O(bursts))."""

    def __init__(self, spec) -> None:
        from hwmodels.dram.spec import address_map

        amap = address_map(spec)
        self.shift = amap.shift_bits
        self.stride = amap.stride["ch"]      # consecutive bursts that stay in one channel
        self.channels = amap.count["ch"]
        self.request_bytes = spec.request_bytes
        self._arrays: dict[tuple[int, int], np.ndarray] = {}

    def bursts(self, addr: int, nbytes: int) -> dict[int, int]:
        first = addr >> self.shift
        last = (addr + nbytes - 1) >> self.shift  # inclusive
        out: dict[int, int] = {}
        b0, b1 = first // self.stride, last // self.stride  # stride blocks touched
        nblocks = b1 - b0 + 1
        full_rounds, _ = divmod(nblocks, self.channels)
        if full_rounds:
            for ch in range(self.channels):
                out[ch] = full_rounds * self.stride
        for q in range(b0 + full_rounds * self.channels, b1 + 1):
            ch = q % self.channels
            out[ch] = out.get(ch, 0) + self.stride
        # trim the partial first and last blocks
        out[b0 % self.channels] -= first - b0 * self.stride
        out[b1 % self.channels] -= (b1 + 1) * self.stride - 1 - last
        return {ch: n for ch, n in out.items() if n > 0}

    def burst_array(self, addr: int, nbytes: int) -> np.ndarray:
        """`bursts` as an array over all channels, memoised by the transfer's phase in the channel interleave."""
        span = self.stride * self.channels
        first = addr >> self.shift
        key = (first % span, ((addr + nbytes - 1) >> self.shift) - first)
        hit = self._arrays.get(key)
        if hit is None:
            hit = np.zeros(self.channels, dtype=np.int64)
            for ch, n in self.bursts(addr, nbytes).items():
                hit[ch] = n
            self._arrays[key] = hit
        return hit


class Unit:
    """A compute unit or DMA engine: one job at a time, FIFO; `intervals` logs (start, end, label) of work done."""

    def __init__(self, env: simpy.Environment, name: str) -> None:
        self.env = env
        self.name = name
        self.resource = simpy.Resource(env, capacity=1)
        self.intervals: list[tuple[float, float, str]] = []

    def log(self, start: float, end: float, label: str) -> None:
        if end > start:
            self.intervals.append((start, end, label))


class DramPort:
    """What every DRAM port keeps: the shared data bus (one DMA batch at a time), busy intervals overall and per
    channel, bytes per channel and direction, and the DRAM-model events it cost. Subclasses implement
    `transfer(transfers, is_write, label)` as a SimPy process returning (start, end) cycles."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.bus = simpy.Resource(env, capacity=1)
        self.intervals: list[tuple[float, float, str]] = []
        self.channel_intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
        self.channel_bytes: dict[int, int] = defaultdict(int)
        self.bytes_read = 0
        self.bytes_written = 0
        self.model_events = 0

    def _count(self, nbytes: int, is_write: bool) -> None:
        if is_write:
            self.bytes_written += nbytes
        else:
            self.bytes_read += nbytes

    def finish(self) -> None:
        """Called once when the step ends."""


class FixedRateDramPort(DramPort):
    """An idealised DRAM for hand-checked cases: a shared bus moving `bytes_per_cycle` after `latency_cycles`,
    duration rounded up to whole cycles."""

    def __init__(self, env: simpy.Environment, bytes_per_cycle: float, latency_cycles: int = 0) -> None:
        if not bytes_per_cycle > 0:
            raise ValueError(f"bytes_per_cycle must be positive, got {bytes_per_cycle}")
        super().__init__(env)
        self.bytes_per_cycle = bytes_per_cycle
        self.latency_cycles = latency_cycles

    def transfer(self, transfers, is_write: bool, label: str):
        """Hold the bus for the batch of transfers; returns (start, end) cycles."""
        cycles = sum(self.latency_cycles + math.ceil(t.nbytes / self.bytes_per_cycle - 1e-9) for t in transfers)
        nbytes = sum(t.nbytes for t in transfers)
        with self.bus.request() as req:
            yield req
            start = self.env.now
            yield self.env.timeout(cycles)
        self.intervals.append((start, self.env.now, label))
        self.channel_bytes[0] += nbytes
        self._count(nbytes, is_write)
        return start, self.env.now


BATCH_MEMO_MAX = 100_000  # memo entries per DRAM (a batch with its rank counters is ~3 KB: at most ~0.3 GB)


class WorkMemo:
    """DRAM work in DRAM clocks, shared by the specs that differ only in tCK_ns: each transfer's by (phase, size,
    direction), and each batch's summed work by its transfers ((direction, ((addr, size), ...))) once a second
    spec shares the memo. A what-if DRAM clocked faster or slower replays exactly the same batches; one simulation
    alone seldom repeats a batch (~80 % of them are distinct) and would only pay for holding them."""

    __slots__ = ("entries", "specs")

    def __init__(self) -> None:
        self.entries: dict[tuple, object] = {}
        self.specs = 0  # BulkCosts sharing it


class BulkCost:
    """Batch times from the bulk DRAM model (hwmodels.dram.bulk), with each transfer's per-channel work memoised.

    A DMA batch (a step's loads, or its stores) is offered to the DRAM together, as at `transaction` fidelity, so
    its transfers share the channels and overlap their latencies: the batch is timed once on the sum of its
    transfers' work (`ChannelWork`), with the refresh phase of its start time. A transfer's work depends on its
    address only through its phase in the channel and bank interleave, so it is memoised by (phase, size,
    direction). A transfer longer than `chunk_bytes` (a whole number of sweeps, >= 256 KB) repeats the work of one
    chunk, so only the chunk and the remainder are decoded: the model's cost stays O(1) per distinct transfer.
    """

    def __init__(self, spec, chunk_min_bytes: int = 256 * 1024, memo: WorkMemo | None = None) -> None:
        from hwmodels.dram.bulk import BulkDram

        self.spec = spec
        # no queue replay (hwmodels.dram.queues): replaying every distinct transfer doubled tile-fidelity wall time
        # on HBM machines for no change at the workload level (tile vs transaction on tiny-lm/tiny-mt, three
        # machines: within 1.2 % either way); batches, and transfers after others, use the row-level bounds anyway
        self.bulk = BulkDram(spec, replay=False)
        # the phase that decides how a transfer spreads over channels and banks
        self.period_bytes = self.bulk.row_span_bytes
        self.chunk_bytes = -(-chunk_min_bytes // self.period_bytes) * self.period_bytes
        # ChannelWork counts DRAM clocks, not ns: `memo` may be shared with specs that differ only in tCK_ns
        self.shared = WorkMemo() if memo is None else memo
        self.shared.specs += 1
        self._memo = self.shared.entries
        self.model_calls = 0

    def _work(self, phase: int, nbytes: int, is_write: bool) -> tuple[object, int]:
        """(work, bulk-model events spent computing it: 0 when memoised)."""
        key = (phase, nbytes, is_write)
        hit = self._memo.get(key)
        if hit is not None:
            return hit, 0
        self.model_calls += 1
        w = self._memo[key] = self.bulk.work(phase, nbytes, is_write)
        return w, w.visits

    def work(self, addr: int, nbytes: int, is_write: bool) -> tuple[object, int]:
        """(ChannelWork, model events) of one contiguous transfer."""
        phase = addr % self.period_bytes
        rows = self.bulk.row_of(addr) - self.bulk.row_of(phase)
        chunks, rest = divmod(nbytes, self.chunk_bytes)
        if chunks == 0 or (chunks == 1 and rest == 0):
            w, events = self._work(phase, nbytes, is_write)
            return w.row_shifted(rows), events
        w, events = self._work(phase, self.chunk_bytes, is_write)
        step = self.chunk_bytes // self.period_bytes
        w = w.repeated(chunks, step)
        if rest:
            r, e = self._work(phase, rest, is_write)
            w, events = w + r.row_shifted(chunks * step), events + e
        return w.row_shifted(rows), events

    def batch_work(self, transfers, is_write: bool) -> tuple[object, int]:
        """(ChannelWork of the transfers offered together, model events spent: 0 when memoised). Its transfers'
        work is always memoised; the batch whole once the memo is shared by several specs (`WorkMemo`) and while
        it holds fewer than BATCH_MEMO_MAX entries."""
        whole = self.shared.specs > 1
        if whole:
            key = (is_write, tuple([(t.addr, t.nbytes) for t in transfers]))
            hit = self._memo.get(key)
            if hit is not None:
                return hit, 0
        total, events = None, 0
        for t in transfers:
            w, e = self.work(t.addr, t.nbytes, is_write)
            total = w if total is None else total + w
            events += e
        if whole and len(self._memo) < BATCH_MEMO_MAX:
            self._memo[key] = total
        return total, events

    def batch(self, transfers, is_write: bool, start_ns: float, state=None) -> tuple[float, float, int]:
        """(ns until done, ns until every burst has gone to the DRAM, model events) of transfers offered together;
        for writes the first is when the last burst is accepted into the write buffer (posted). `state`
        (a bulk.DeviceState) carries open rows, bus direction and writes still buffered from batch to batch, and
        is updated."""
        at_once = 2 * self.spec.tCK_ns  # a transaction the controller answers from its buffers
        if state is not None and not is_write:
            transfers = [t for t in transfers if not state.buffered(t.addr, t.nbytes)]
            if not transfers:
                return at_once, at_once, 0
        total, events = self.batch_work(transfers, is_write)
        if state is not None and is_write:
            total = state.post(total, [(t.addr, t.nbytes) for t in transfers])
            if total is None:
                return at_once, at_once, events
        r = self.bulk.time(total, is_write, start_ns, state)
        if state is not None:
            state.record(total, is_write, start_ns, r)
        return r.ns, r.drain_ns, events + r.events - total.visits


_BULK_COSTS: dict = {}
_WORK_MEMOS: dict[object, WorkMemo] = {}


def bulk_cost(spec) -> BulkCost:
    """One memo per DRAM spec, shared by every simulation in the process (a policy's configurations, sweeps). The
    per-transfer work is in DRAM clocks, so a DRAM clocked faster or slower (`DramSpec.scaled`: the what-if
    bandwidth scales of studies and sweeps) reuses it, and then its batches too (`WorkMemo`); only the timing of
    each batch is computed again."""
    if spec not in _BULK_COSTS:
        clocks_only = dataclasses.replace(spec, name="", tCK_ns=1.0)
        _BULK_COSTS[spec] = BulkCost(spec, memo=_WORK_MEMOS.setdefault(clocks_only, WorkMemo()))
    return _BULK_COSTS[spec]


class BulkDramPort(DramPort):
    """`tile` fidelity: each DMA batch is costed by the bulk DRAM model (see BulkCost) and holds the shared data bus
    for its duration; reads and writes therefore serialise, as they do on a real half-duplex DRAM bus. A write
    batch is done (posted) when the DRAM accepts its last burst; the state it leaves (`DeviceState`: open rows, the
    last column command of the drain, writes still buffered) delays what follows as the controller would."""

    def __init__(self, env: simpy.Environment, spec, clock_ghz: float) -> None:
        from hwmodels.dram.bulk import DeviceState

        super().__init__(env)
        self.spec = spec
        self.clock_ghz = clock_ghz
        self.cost = bulk_cost(spec)
        self.state = DeviceState(spec)
        self.split = ChannelSplit(spec)
        self._batches: list = []  # (start, busy end, label, bursts per channel) of each batch

    def _cycles(self, ns: float) -> int:
        return max(1, math.ceil(ns * self.clock_ghz - 1e-9))

    def transfer(self, transfers, is_write: bool, label: str):
        """Hold the bus for the batch of transfers, costed together by the bulk model; returns (start, end) cycles."""
        touched = None
        for t in transfers:
            n = self.split.burst_array(t.addr, t.nbytes)
            touched = n if touched is None else touched + n
            self._count(t.nbytes, is_write)
        req = self.bus.request()
        yield req
        start = self.env.now
        done_ns, drain_ns, events = self.cost.batch(transfers, is_write, start / self.clock_ghz, self.state)
        self.model_events += events
        cycles = self._cycles(done_ns)
        yield self.env.timeout(cycles)
        self.bus.release(req)
        # the DRAM stays busy until posted writes have drained; the next batch overlaps its activations with that
        # and its column commands wait for the drain's (DeviceState)
        busy_end = self.env.now + max(self._cycles(drain_ns) - cycles, 0)
        self.intervals.append((start, busy_end, label))
        self._batches.append((start, busy_end, label, touched))
        return start, self.env.now

    def finish(self) -> None:
        """Per-channel bytes and busy intervals from the batches (kept per batch: O(1) each while running), clipped
        at the end of the step: writes still draining then are the next step's."""
        end = self.env.now
        self.intervals = [(a, min(b, end), x) for a, b, x in self.intervals]
        rb = self.split.request_bytes
        total = None
        for a, b, x, bursts in self._batches:
            if bursts is None:
                continue
            total = bursts if total is None else total + bursts
            for ch in np.flatnonzero(bursts).tolist():
                self.channel_intervals[ch].append((a, min(b, end), x))
        if total is not None:
            for ch in np.flatnonzero(total).tolist():
                self.channel_bytes[ch] += int(total[ch]) * rb
        self._batches = []


class TransactionDramPort(DramPort):
    """`transaction` fidelity: every burst goes through the transaction-level DRAM model sharing this environment.
    As at `tile` fidelity, one DMA batch (a step's loads, or its stores) is in flight at a time, so the two levels
    see the same transfer schedule and differ only in how the DRAM times it."""

    # False: one access() per transfer, the core advanced by a SimPy wake-up per memory cycle with work (the
    # reference the batched path is tested against: tests/test_engine_transaction.py)
    batched: bool = True

    def __init__(self, env: simpy.Environment, spec, clock_ghz: float) -> None:
        from hwmodels.dram.transaction import TransactionDram

        super().__init__(env)
        self.spec = spec
        self.clock_ghz = clock_ghz
        self.dram = TransactionDram(env, spec, ns_per_env_unit=1.0 / clock_ghz)
        self.split = ChannelSplit(spec)

    def transfer(self, transfers, is_write: bool, label: str):
        """Issue the batch's accesses together (the controller takes their bursts in order) and wait for every
        burst; returns (start, end) cycles."""
        with self.bus.request() as req:
            yield req
            start = self.env.now
            # the bus is held until every burst is done, so nothing else reaches the DRAM meanwhile: the batch may
            # run in the compiled core in one call (same command trace, no SimPy wake-up per memory cycle)
            if self.batched:
                events = self.dram.access_batch([(t.addr, t.nbytes) for t in transfers], is_write)
            else:
                events = [self.dram.access(t.addr, t.nbytes, is_write) for t in transfers]
            yield self.env.all_of(events) if len(events) > 1 else events[0]
        self.intervals.append((start, self.env.now, label))
        touched = {ch for t in transfers for ch in self.split.bursts(t.addr, t.nbytes)}
        for ch in touched:
            self.channel_intervals[ch].append((start, self.env.now, label))
        for t in transfers:
            self._count(t.nbytes, is_write)
        return start, self.env.now

    def finish(self) -> None:
        """Per-channel bytes as the model moved them (whole bursts)."""
        for ch, st in self.dram.stats()["channels"].items():
            self.channel_bytes[int(ch)] += int(st["bytes_read"]) + int(st["bytes_written"])
