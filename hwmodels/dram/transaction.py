"""The transaction-level DRAM as a SimPy component: `access()` returns an event, every burst goes through the
cycle-level controllers of `DramSystem` (or its compiled core, hwmodels/dram/compiled.py).

Time: the SimPy environment keeps its own unit (e.g. compute cycles); `ns_per_env_unit` converts. The model advances
lazily and only to the current SimPy time: on each `access()` call and on a wake-up scheduled (a plain SimPy
timeout with a callback) at the next cycle where a controller has something to do. Superseded wake-ups are ignored.
When nothing is pending no wake-up is scheduled; refresh bookkeeping catches up on the next access.
"""

from __future__ import annotations

import math

import simpy

from hwmodels.dram.channel import INF
from hwmodels.dram.compiled import make_system
from hwmodels.dram.spec import DramSpec, get_dram


class _Access:
    __slots__ = ("remaining", "done_cycle", "event", "is_write")

    def __init__(self, remaining: int, event: simpy.Event, is_write: bool):
        self.remaining, self.done_cycle, self.event, self.is_write = remaining, 0, event, is_write


class TransactionDram:
    """A DRAM whose `access(addr, nbytes, is_write)` events complete when every burst is done.

    issue_width: transactions the front end may hand the controllers per memory clock (in order, blocking when a
    queue is full); None = as many as the queues accept. compiled: None -> the compiled core if built, else the
    pure-Python model (same results); True / False to choose.
    """

    def __init__(self, env: simpy.Environment, spec: str | DramSpec, ns_per_env_unit: float = 1.0,
                 issue_width: int | None = None, compiled: bool | None = None):
        if not (ns_per_env_unit > 0 and math.isfinite(ns_per_env_unit)):
            raise ValueError(f"ns_per_env_unit must be a positive number, got {ns_per_env_unit!r}")
        self.env = env
        self.spec = get_dram(spec)
        self.units_per_cycle = self.spec.tCK_ns / ns_per_env_unit
        self.system = make_system(self.spec, issue_width=issue_width, on_done=self._burst_done, compiled=compiled)
        self._wake: simpy.Event | None = None
        self._wake_cycle = INF
        self.bytes_requested_read = 0
        self.bytes_requested_written = 0
        self.accesses = 0

    # --- public -------------------------------------------------------------------------------------------------
    def access(self, addr: int, nbytes: int, is_write: bool) -> simpy.Event:
        """An event that succeeds (value: completion time in env units) when all bursts covering
        [addr, addr + nbytes) have been read back or accepted into the write buffer."""
        if addr < 0 or nbytes <= 0:
            raise ValueError(f"DRAM access needs addr >= 0 and nbytes > 0, got addr={addr}, nbytes={nbytes}")
        rb = self.spec.request_bytes
        first = addr - addr % rb
        n_bursts = (addr + nbytes - first + rb - 1) // rb
        event = self.env.event()
        rec = _Access(n_bursts, event, is_write)
        now_cycle = self._now_cycle()
        if now_cycle < self.system.clk:  # only after access_batch ran ahead and its events have not all succeeded
            raise RuntimeError("TransactionDram: an access while a batch is still in flight (access_batch)")
        submit_many = getattr(self.system, "submit_many", None)
        if submit_many is not None:  # the compiled core: one call for all bursts
            submit_many(range(first, first + n_bursts * rb, rb), [is_write] * n_bursts, [rec] * n_bursts, now_cycle)
        else:
            submit = self.system.submit
            for k in range(n_bursts):
                submit(first + k * rb, is_write, rec, now_cycle)
        self.accesses += 1
        if is_write:
            self.bytes_requested_written += nbytes
        else:
            self.bytes_requested_read += nbytes
        self._schedule_wake()
        return event

    def access_batch(self, transfers, is_write: bool) -> list[simpy.Event]:
        """`access` for each (addr, nbytes) in `transfers`, all reads or all writes, offered together. For a caller
        that submits nothing else until every returned event has succeeded (the engine's DRAM port holds its bus):
        on the compiled core, when nothing is pending, the whole batch runs in C in one call (no wake-up per memory
        cycle, no callback per burst) and each event is scheduled at its completion; the same command trace and
        completion times as `access` one by one. Otherwise it is exactly that."""
        run_batch = getattr(self.system, "run_batch", None)
        if run_batch is None or self.system.busy() or len(transfers) == 0:
            return [self.access(addr, nbytes, is_write) for addr, nbytes in transfers]
        rb = self.spec.request_bytes
        firsts, counts = [], []
        for addr, nbytes in transfers:
            if addr < 0 or nbytes <= 0:
                raise ValueError(f"DRAM access needs addr >= 0 and nbytes > 0, got addr={addr}, nbytes={nbytes}")
            first = addr - addr % rb
            firsts.append(first)
            counts.append((addr + nbytes - first + rb - 1) // rb)
            self.accesses += 1
            if is_write:
                self.bytes_requested_written += nbytes
            else:
                self.bytes_requested_read += nbytes
        done = run_batch(firsts, counts, is_write, self._now_cycle())
        events = []
        for cycle in done:
            t = cycle * self.units_per_cycle
            event = self.env.event()
            timer = self.env.timeout(max(t - self.env.now, 0.0))
            timer.callbacks.append(lambda _ev, event=event, t=t: event.succeed(t))
            events.append(event)
        return events

    def stats(self) -> dict:
        """Nested dict: totals and per channel (commands, row hits/misses, bytes, data-bus busy time in ns)."""
        s = self.system.stats()
        tck = self.spec.tCK_ns
        for part in list(s["channels"].values()) + [s["total"]]:
            part["busy_ns"] = part["data_bus_busy_cycles"] * tck
        s["requested"] = {"bytes_read": self.bytes_requested_read, "bytes_written": self.bytes_requested_written,
                          "accesses": self.accesses}
        return s

    # --- internals ----------------------------------------------------------------------------------------------
    def _now_cycle(self) -> int:
        return int(math.floor(self.env.now / self.units_per_cycle + 1e-9))

    def _burst_done(self, rec: object, added: int, done: int, is_write: bool) -> None:
        assert isinstance(rec, _Access)
        rec.remaining -= 1
        if done > rec.done_cycle:
            rec.done_cycle = done
        if rec.remaining == 0:
            t = rec.done_cycle * self.units_per_cycle
            timer = self.env.timeout(max(t - self.env.now, 0.0))
            event = rec.event
            timer.callbacks.append(lambda _ev: event.succeed(t))

    def _schedule_wake(self) -> None:
        nxt = self.system.next_cycle()
        if nxt >= INF or not self.system.busy():
            return
        if self._wake is not None and self._wake_cycle <= nxt:
            return
        self._wake_cycle = nxt
        delay = max(nxt * self.units_per_cycle - self.env.now, 0.0)
        wake = self.env.timeout(delay)
        wake.callbacks.append(self._on_wake)
        self._wake = wake

    def _on_wake(self, event: simpy.Event) -> None:
        if event is not self._wake:
            return  # superseded by an earlier wake-up
        self._wake, self._wake_cycle = None, INF
        self.system.advance(max(self._now_cycle(), self.system.clk))
        self._schedule_wake()
