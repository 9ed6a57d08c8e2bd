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

    shared_bus = True

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


class BulkDramPort:
    """`tile` fidelity: each transfer is one bulk DRAM request (hwmodels.dram BulkDram) holding the shared data bus
    for its duration; reads and writes therefore serialise, as they do on a real half-duplex DRAM bus."""

    def __init__(self, env: simpy.Environment, spec, clock_ghz: float) -> None:
        from hwmodels.dram import BulkDram

        self.env = env
        self.spec = spec
        self.clock_ghz = clock_ghz
        self.bulk = BulkDram(spec)
        self.split = ChannelSplit(spec)
        self.bus = simpy.Resource(env, capacity=1)
        self.intervals: list[tuple[float, float, str]] = []
        self.channel_intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
        self.channel_bytes: dict[int, int] = defaultdict(int)
        self.bytes_read = 0
        self.bytes_written = 0
        self.model_events = 0

    def _cost(self, addr: int, nbytes: int, is_write: bool) -> tuple[int, int]:
        """(cycles, model events) of one transfer through the bulk model."""
        r = self.bulk.transfer(addr, nbytes, is_write)
        return max(1, math.ceil(r.ns * self.clock_ghz - 1e-9)), int(getattr(r, "events", 0))

    shared_bus = True

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
    """`transaction` fidelity: every burst goes through the transaction-level DRAM model sharing this environment;
    reads and writes from different DMA engines overlap and contend inside the model."""

    def __init__(self, env: simpy.Environment, spec, clock_ghz: float) -> None:
        from hwmodels.dram.transaction import TransactionDram

        self.env = env
        self.spec = spec
        self.clock_ghz = clock_ghz
        self.dram = TransactionDram(env, spec, ns_per_env_unit=1.0 / clock_ghz)
        self.split = ChannelSplit(spec)
        self.intervals: list[tuple[float, float, str]] = []
        self.channel_intervals: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
        self.channel_bytes: dict[int, int] = defaultdict(int)
        self.bytes_read = 0
        self.bytes_written = 0
        self.model_events = 0

    shared_bus = False

    def transfer(self, transfers, is_write: bool, label: str):
        """Issue the batch's accesses together and wait for every burst; returns (start, end) cycles."""
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
