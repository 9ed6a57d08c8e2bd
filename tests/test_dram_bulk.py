"""The bulk-transfer model against the transaction-level model (the same front end, an idle device at t = 0)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from hwmodels.dram import BulkDram, TransactionDram, get_dram

DRAMS = ("ddr4", "hbm2", "lpddr4", "lpddr5", "gddr6", "hbm3")


def transaction_ns(dram: str, nbytes: int, is_write: bool, stride: int | None) -> float:
    env = simpy.Environment()
    model = TransactionDram(env, dram, ns_per_env_unit=1.0)
    rb = model.spec.request_bytes
    out = {}

    def dma(env):
        if stride is None:
            out["t"] = yield model.access(0, nbytes, is_write)
        else:
            done = yield simpy.AllOf(env, [model.access(k * stride, rb, is_write) for k in range(nbytes // rb)])
            out["t"] = max(done.values())

    env.process(dma(env))
    env.run()
    return out["t"]


def _compare(dram: str, nbytes: int, is_write: bool, stride_bursts: int | None) -> tuple[float, float]:
    rb = get_dram(dram).request_bytes
    stride = None if stride_bursts is None else stride_bursts * rb
    return BulkDram(dram).transfer_ns(0, nbytes, is_write, stride), transaction_ns(dram, nbytes, is_write, stride)


@pytest.mark.parametrize("dram", DRAMS)
@pytest.mark.parametrize("is_write", [False, True], ids=["read", "write"])
def test_sequential_transfers_within_5_percent(dram: str, is_write: bool) -> None:
    bulk, ref = _compare(dram, 256 << 10, is_write, None)
    assert bulk == pytest.approx(ref, rel=0.05)


@pytest.mark.parametrize("dram", ("ddr4", "hbm2", "lpddr4", "lpddr5", "gddr6"))
@pytest.mark.parametrize("stride_bursts", [2, 4])
def test_strided_reads_within_5_percent(dram: str, stride_bursts: int) -> None:
    bulk, ref = _compare(dram, 256 << 10, False, stride_bursts)
    assert bulk == pytest.approx(ref, rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("dram", DRAMS)
@pytest.mark.parametrize("nbytes", [64 << 10, 1 << 20], ids=["64KB", "1MB"])
@pytest.mark.parametrize("stride_bursts", [None, 2, 4])
@pytest.mark.parametrize("is_write", [False, True], ids=["read", "write"])
def test_bulk_matrix(dram: str, nbytes: int, stride_bursts: int | None, is_write: bool) -> None:
    """The wider sweep: 5 % on sequential and strided reads except HBM3 with a 2-burst stride (row switches of one
    bank are exposed: about -7 %); 5 % on one-channel writes except LPDDR5 with a 4-burst stride (activation-bound:
    banks waiting for their ACT hold their queues longer than the round-robin count assumes, -9 to -16 %); 12 % on
    multi-channel writes, whose posted end depends on how the in-order front end interleaves the channels."""
    bulk, ref = _compare(dram, nbytes, is_write, stride_bursts)
    one_channel = get_dram(dram).channels == 1
    if not is_write:
        tol = 0.05 if (dram, stride_bursts) != ("hbm3", 2) else 0.12
    elif one_channel:
        tol = 0.05 if (dram, stride_bursts) != ("lpddr5", 4) else 0.20
    else:
        tol = 0.12 if nbytes > 64 << 10 else 0.35  # 64 KB mostly fits in the queues: a few hundred ns of admission
    assert bulk == pytest.approx(ref, rel=tol)


def test_large_transfers_use_the_peak_rate_and_report_their_work() -> None:
    spec = get_dram("hbm2")
    r = BulkDram(spec).transfer(0, 64 << 20, False)
    assert r.ns > (64 << 20) / spec.peak_gbps
    assert (64 << 20) / r.ns > 0.85 * spec.peak_gbps
    assert sum(r.bytes_per_channel) == 64 << 20 and len(r.bytes_per_channel) == spec.channels
    rows = (64 << 20) // spec.row_bytes
    assert rows <= r.row_activations <= rows + spec.channels * spec.banks
    assert r.events < rows * 1.1 + 100  # work in proportion to rows, not to the 1M bursts


def test_mechanisms() -> None:
    ddr4 = BulkDram("ddr4")
    seq = ddr4.transfer(0, 1 << 20, False)
    assert seq.bound == "columns"
    remapped = BulkDram(get_dram("ddr4").with_overrides(address_mapping="rochrabacobg")).transfer(0, 1 << 20, False)
    assert remapped.ns < 0.75 * seq.ns  # tCCD_L bound removed by bank-group interleave
    row_stride = BulkDram("ddr4").transfer(0, 256 << 10, False, stride_bytes=get_dram("ddr4").row_bytes * 32)
    assert row_stride.bound in ("activations", "bank row cycles")  # every burst opens a row
    faster = BulkDram(get_dram("ddr4").scaled(2)).transfer_ns(0, 1 << 20, False)
    assert faster == pytest.approx(seq.ns / 2, rel=0.02)
    with pytest.raises(ValueError, match="stride_bytes"):
        ddr4.transfer(0, 4096, False, stride_bytes=16)
    with pytest.raises(ValueError, match="nbytes"):
        ddr4.transfer(0, 0, False)


@pytest.mark.parametrize("dram", (*DRAMS, "hbm3-h100"))
@pytest.mark.parametrize("nbytes", [8 << 10, 32 << 10], ids=["8KB", "32KB"])
def test_small_reads_within_5_percent(dram: str, nbytes: int) -> None:
    """Latency-bound reads: on the many-channel HBM3s a few bursts per channel, bound by the activation schedule."""
    bulk, ref = _compare(dram, nbytes, False, None)
    assert bulk == pytest.approx(ref, rel=0.05)


@pytest.mark.parametrize("dram,nbytes", [(d, n) for d in (*DRAMS, "hbm3-h100") for n in (64 << 10, 1 << 20)
                                          if (d, n) != ("hbm2", 64 << 10)])
def test_sequential_writes_within_5_percent(dram: str, nbytes: int) -> None:
    """Posted writes end when the write buffer takes the last burst. HBM2's 64 KB write is left out (about -11 %:
    its queued tail is one bank's row, drained at tCCD_L; see the README; test_bulk_matrix holds it to 35 %)."""
    bulk, ref = _compare(dram, nbytes, True, None)
    assert bulk == pytest.approx(ref, rel=0.05)


@pytest.mark.parametrize("dram", ("ddr4", "lpddr4", "gddr6"))
@pytest.mark.parametrize("nbytes", [8 << 10, 32 << 10, 256 << 10], ids=["8KB", "32KB", "256KB"])
@pytest.mark.parametrize("stride_bursts", [None, 2, 4])
def test_one_channel_writes_within_5_percent(dram: str, nbytes: int, stride_bursts: int | None) -> None:
    """Posted writes on one-channel DRAMs, small and strided: their end depends on how many writes the controller
    still holds, which the round-robin queue count gives (before it, 32 KB strided LPDDR4 writes were +48 %)."""
    bulk, ref = _compare(dram, nbytes, True, stride_bursts)
    assert bulk == pytest.approx(ref, rel=0.05)


def test_queued_at_last_write_counts_the_controller_state() -> None:
    """Hand-checked cases of the round-robin queue count (buffer 32, command queues 8, columns at once)."""
    from hwmodels.dram.bulk import queued_at_last_write

    def count(pairs: list[tuple[int, int]], nbanks: int = 4, open_slots: int = 0, switch_slots: int = 0) -> int:
        return queued_at_last_write(np.array(pairs, dtype=np.int64).tobytes(), nbanks, 32, 8, open_slots,
                                    switch_slots)

    assert count([(0, 0)] * 20) == 20            # fits in the queues: nothing issued before the last is taken
    assert count([(0, 0)] * 100) == 40           # one bank: a full buffer and one full command queue
    assert count([(0, 0)] * 50 + [(1, 0)] * 50) == 48  # the earlier bank still holds a full queue (round-robin)
    # a bank switching rows cannot serve its queue meanwhile: more writes are still held at the end
    assert count([(0, 0)] * 50 + [(0, 1)] * 50, switch_slots=30) >= count([(0, 0)] * 50 + [(0, 1)] * 50)


@pytest.mark.parametrize("dram,stride_bursts", [("hbm3", 4), ("hbm3-h100", 2), ("hbm3-h100", 4)])
@pytest.mark.parametrize("nbytes", [64 << 10, 256 << 10, 1 << 20], ids=["64KB", "256KB", "1MB"])
def test_hbm3_strided_reads_within_5_percent(dram: str, stride_bursts: int, nbytes: int) -> None:
    bulk, ref = _compare(dram, nbytes, False, stride_bursts)
    assert bulk == pytest.approx(ref, rel=0.05)


def _batch_reference(dram: str, segments: list[tuple[int, int]], is_write: bool) -> float:
    env = simpy.Environment()
    model = TransactionDram(env, dram, ns_per_env_unit=1.0)
    out = {}

    def dma(env):
        done = yield simpy.AllOf(env, [model.access(a, n, is_write) for a, n in segments])
        out["t"] = max(done.values())

    env.process(dma(env))
    env.run()
    return out["t"]


@pytest.mark.parametrize("dram", ("ddr4", "hbm2", "lpddr4", "lpddr5", "gddr6", "hbm3-h100"))
def test_batch_of_small_reads_overlaps_latency(dram: str) -> None:
    """Three small reads of different tensors offered together (on one channel their rows conflict in a bank; on
    the 80-channel HBM3 they spread and take about one latency, not three)."""
    segments = [(0, 1024), (3 << 20, 1024), (7 << 20, 2048)]
    bulk = BulkDram(dram)
    together = bulk.transfer_batch(segments, False).ns
    assert together == pytest.approx(_batch_reference(dram, segments, False), rel=0.05)
    if dram == "hbm3-h100":
        assert together < 0.5 * sum(bulk.transfer_ns(a, n, False) for a, n in segments)


def test_batch_split_of_one_stream_costs_the_same() -> None:
    bulk = BulkDram("hbm2")
    whole = bulk.transfer_ns(0, 256 << 10, False)
    assert bulk.transfer_batch([(0, 128 << 10), (128 << 10, 128 << 10)], False).ns == pytest.approx(whole, rel=0.02)
    with pytest.raises(ValueError, match="segment"):
        bulk.transfer_batch([], False)


def test_device_state_open_rows_and_buffered_writes() -> None:
    """A read after a write to other rows of the same banks waits for write recovery and precharge (LPDDR4, one
    channel: within 6 % of the transaction-level model); a read of data still in the write buffer is served at
    once, as the transaction-level model does."""
    from hwmodels.dram.bulk import DeviceState

    for dram, writes, reads, tol in [
        ("lpddr4", [(16318464, 512), (16121856, 512), (14483456, 512)], [(15664128, 512), (14025728, 512)], 0.06),
        ("ddr4", [(0, 16384)], [(1 << 20, 16384)], 0.05),
        ("hbm3-h100", [(0, 512)], [(0, 512)], 0.0),
    ]:
        bulk = BulkDram(dram)
        state = DeviceState(bulk.spec)
        w = bulk.transfer_batch(writes, True)
        work = bulk.work(*writes[0], True)
        for seg in writes[1:]:
            work = work + bulk.work(*seg, True)
        posted = state.post(work, writes)
        if posted is not None:
            state.record(posted, True, 0.0, bulk.time(posted, True, 0.0, state))
        fresh = bulk.transfer_batch(reads, False).ns
        if all(state.buffered(a, n) for a, n in reads):
            read_end = w.ns + 2 * bulk.spec.tCK_ns
        else:
            rwork = bulk.work(*reads[0], False)
            for seg in reads[1:]:
                rwork = rwork + bulk.work(*seg, False)
            read_end = w.ns + bulk.time(rwork, False, w.ns, state).ns
            assert read_end - w.ns > fresh  # the state costs something
        env = simpy.Environment()
        model = TransactionDram(env, dram, ns_per_env_unit=1.0)
        out = {}

        def dma(env, model=model, out=out, writes=writes, reads=reads):
            yield simpy.AllOf(env, [model.access(a, n, True) for a, n in writes])
            done = yield simpy.AllOf(env, [model.access(a, n, False) for a, n in reads])
            out["t"] = max(done.values())

        env.process(dma(env))
        env.run()
        assert read_end == pytest.approx(out["t"], rel=tol, abs=1.0), dram
