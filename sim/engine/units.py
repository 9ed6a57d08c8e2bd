"""SimPy hardware units: compute units and DMA engines (capacity-1 Resources that log busy intervals) and the two
DRAM ports (bulk transfers on a shared data bus at `tile` fidelity; every burst through the transaction-level model
at `transaction` fidelity). Simulation time is in machine clock cycles."""

from __future__ import annotations

import math
from collections import defaultdict

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


class FixedRateDramPort:
    """An idealised DRAM for hand-checked cases: a shared bus moving `bytes_per_cycle` after `latency_cycles`,
    duration rounded up to whole cycles."""

    def __init__(self, env: simpy.Environment, bytes_per_cycle: float, latency_cycles: int = 0) -> None:
        if not bytes_per_cycle > 0:
            raise ValueError(f"bytes_per_cycle must be positive, got {bytes_per_cycle}")
        self.env = env
        self.bytes_per_cycle = bytes_per_cycle
        self.latency_cycles = latency_cycles
        self.bus = simpy.Resource(env, capacity=1)
        self.intervals: list[tuple[float, float, str]] = []
        self.channel_bytes: dict[int, int] = defaultdict(int)
        self.bytes_read = 0
        self.bytes_written = 0
        self.model_events = 0

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
        if is_write:
            self.bytes_written += nbytes
        else:
            self.bytes_read += nbytes
        return start, self.env.now


class BulkCost:
    """Transfer times from the bulk DRAM model (hwmodels.dram.bulk), memoised so a step costs O(1) model calls.

    The bulk model's cost grows with the bursts of a transfer (vectorised numpy per call, ~1-50 ms for 64 KB-8 MB)
    and a training step moves tens of thousands of transfers. So a read below `line_from_bytes` is costed exactly,
    memoised by (address phase within one sweep of the channel interleave, size). A larger read, and every write,
    costs latency + bytes x the sustained ns/byte, the slope of the bulk model between 1 MB and 4 MB transfers
    (long enough to include refresh at its average rate). Latency is the spec's ACT-to-data time (tRCD + AL + CL +
    burst) for reads and zero for writes. Writes always take the sustained rate because the bulk model acknowledges
    a write when it enters the controller's write buffer: alone that is nearly free for a small write, but on one
    shared bus the next transfer waits for the data to drain (in the transaction-level model a stream of 8 KB
    writes takes 2.4x the bulk model's single-write time).
    """

    def __init__(self, spec, line_from_bytes: int = 64 * 1024) -> None:
        from hwmodels.dram.bulk import BulkDram

        self.spec = spec
        self.bulk = BulkDram(spec)
        split = ChannelSplit(spec)
        # the phase that decides how a small read spreads over channels: one sweep of the channel interleave
        self.period_bytes = split.stride * split.channels * spec.request_bytes
        self.line_from_bytes = line_from_bytes
        self._memo: dict[tuple[int, int], tuple[float, int]] = {}
        self._ns_per_byte: dict[bool, float] = {}
        self.read_latency_ns = (spec.tRCD_rd + spec.read_delay) * spec.tCK_ns
        self.model_calls = 0

    def _call(self, addr: int, nbytes: int, is_write: bool) -> tuple[float, int]:
        self.model_calls += 1
        r = self.bulk.transfer(addr, nbytes, is_write)
        return float(r.ns), int(r.events)

    def ns(self, addr: int, nbytes: int, is_write: bool) -> tuple[float, int]:
        """(nanoseconds, bulk-model events) of one contiguous transfer."""
        events = 0
        if nbytes < self.line_from_bytes and not is_write:
            key = (addr % self.period_bytes, nbytes)
            hit = self._memo.get(key)
            if hit is None:
                hit = self._memo[key] = self._call(key[0], nbytes, False)
                events = hit[1]
            return hit[0], events
        rate = self._ns_per_byte.get(is_write)
        if rate is None:
            (t0, e0), (t1, e1) = self._call(0, 1 << 20, is_write), self._call(0, 4 << 20, is_write)
            rate = self._ns_per_byte[is_write] = (t1 - t0) / (3 << 20)
            events = e0 + e1
        return (0.0 if is_write else self.read_latency_ns) + rate * nbytes, events


_BULK_COSTS: dict = {}


def bulk_cost(spec) -> BulkCost:
    """One memo per DRAM spec, shared by every simulation in the process (a policy's configurations, sweeps)."""
    if spec not in _BULK_COSTS:
        _BULK_COSTS[spec] = BulkCost(spec)
    return _BULK_COSTS[spec]


class BulkDramPort:
    """`tile` fidelity: each transfer is costed by the bulk DRAM model (see BulkCost) and holds the shared data bus
    for its duration; reads and writes therefore serialise, as they do on a real half-duplex DRAM bus."""

    def __init__(self, env: simpy.Environment, spec, clock_ghz: float) -> None:
        self.env = env
        self.spec = spec
        self.clock_ghz = clock_ghz
        self.cost = bulk_cost(spec)
        self.split = ChannelSplit(spec)
        self.bus = simpy.Resource(env, capacity=1)
        self.intervals: list[tuple[float, float, str]] = []
        self.channel_intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
        self.channel_bytes: dict[int, int] = defaultdict(int)
        self.bytes_read = 0
        self.bytes_written = 0
        self.model_events = 0

    def _cost(self, addr: int, nbytes: int, is_write: bool) -> tuple[int, int]:
        """(cycles, model events) of one transfer."""
        ns, events = self.cost.ns(addr, nbytes, is_write)
        return max(1, math.ceil(ns * self.clock_ghz - 1e-9)), events

    def transfer(self, transfers, is_write: bool, label: str):
        """Hold the bus for the batch of transfers, each costed by the bulk model; returns (start, end) cycles."""
        cycles = 0
        touched: set[int] = set()
        for t in transfers:
            c, events = self._cost(t.addr, t.nbytes, is_write)
            cycles += c
            for ch, n in self.split.bursts(t.addr, t.nbytes).items():
                self.channel_bytes[ch] += n * self.split.request_bytes
                touched.add(ch)
            self.model_events += events
            if is_write:
                self.bytes_written += t.nbytes
            else:
                self.bytes_read += t.nbytes
        with self.bus.request() as req:
            yield req
            start = self.env.now
            yield self.env.timeout(cycles)
        self.intervals.append((start, self.env.now, label))
        for ch in touched:
            self.channel_intervals[ch].append((start, self.env.now, label))
        return start, self.env.now


class TransactionDramPort:
    """`transaction` fidelity: every burst goes through the transaction-level DRAM model sharing this environment.
    As at `tile` fidelity, one DMA batch (a step's loads, or its stores) is in flight at a time, so the two levels
    see the same transfer schedule and differ only in how the DRAM times it."""

    def __init__(self, env: simpy.Environment, spec, clock_ghz: float) -> None:
        from hwmodels.dram.transaction import TransactionDram

        self.env = env
        self.spec = spec
        self.clock_ghz = clock_ghz
        self.dram = TransactionDram(env, spec, ns_per_env_unit=1.0 / clock_ghz)
        self.split = ChannelSplit(spec)
        self.bus = simpy.Resource(env, capacity=1)
        self.intervals: list[tuple[float, float, str]] = []
        self.channel_intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
        self.channel_bytes: dict[int, int] = defaultdict(int)
        self.bytes_read = 0
        self.bytes_written = 0
        self.model_events = 0

    def transfer(self, transfers, is_write: bool, label: str):
        """Issue the batch's accesses together (the controller takes their bursts in order) and wait for every
        burst; returns (start, end) cycles."""
        with self.bus.request() as req:
            yield req
            start = self.env.now
            events = [self.dram.access(t.addr, t.nbytes, is_write) for t in transfers]
            yield self.env.all_of(events) if len(events) > 1 else events[0]
        self.intervals.append((start, self.env.now, label))
        touched = {ch for t in transfers for ch in self.split.bursts(t.addr, t.nbytes)}
        for ch in touched:
            self.channel_intervals[ch].append((start, self.env.now, label))
        for t in transfers:
            if is_write:
                self.bytes_written += t.nbytes
            else:
                self.bytes_read += t.nbytes
        return start, self.env.now

    def finish(self) -> None:
        """Per-channel bytes as the model moved them (whole bursts)."""
        for ch, st in self.dram.stats()["channels"].items():
            self.channel_bytes[int(ch)] += int(st["bytes_read"]) + int(st["bytes_written"])
