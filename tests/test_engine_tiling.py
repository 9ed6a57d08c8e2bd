"""GEMM tiling: SRAM fit, loop-order re-reads checked against a brute-force walk of the loop nest."""

import itertools

import pytest

from sim.engine.tiling import edge_counts, plan_gemm, reads_for, split_total, sram_need_bytes


def _walk_reads(order: str, nm: int, nk: int, nn: int) -> tuple[int, int]:
    """Count tile loads by walking the loop nest: a tile is loaded when its index differs from the previous step."""
    a_loads = b_loads = 0
    prev_a = prev_b = None
    outer, inner = (nm, nn) if order == "m" else (nn, nm)
    for o, p, kk in itertools.product(range(outer), range(inner), range(nk)):
        i, j = (o, p) if order == "m" else (p, o)
        if (i, kk) != prev_a:
            a_loads += 1
        if (kk, j) != prev_b:
            b_loads += 1
        prev_a, prev_b = (i, kk), (kk, j)
    # loads of whole A = loads / number of distinct A tiles
    return a_loads // (nm * nk), b_loads // (nk * nn)


@pytest.mark.parametrize("order", ["m", "n"])
@pytest.mark.parametrize("nm,nk,nn", list(itertools.product([1, 2, 3], [1, 2, 4], [1, 3])))
def test_reads_match_loop_nest_walk(order, nm, nk, nn):
    assert reads_for(order, nm, nk, nn) == _walk_reads(order, nm, nk, nn)


def test_everything_fits_is_one_tile_minimal_traffic():
    t = plan_gemm(64, 32, 48, 16, 16, sram_bytes=1 << 20, granule_m=8, granule_k=8, granule_n=8)
    assert (t.tm, t.tk, t.tn, t.tiles, t.a_reads, t.b_reads) == (64, 32, 48, 1, 1, 1)


def test_tiles_fit_sram_and_cover_the_gemm():
    sram = 64 * 1024
    for m, k, n, bits in [(512, 768, 3072, 16), (1000, 300, 77, 4.5), (4096, 64, 4096, 8)]:
        t = plan_gemm(m, k, n, bits, bits, sram, 16, 16, 16)
        assert sram_need_bytes(t.tm, t.tk, t.tn, bits, bits) <= sram
        assert t.nm * t.tm >= m and t.nk * t.tk >= k and t.nn * t.tn >= n
        assert t.tiles > 1
    # B (77x300 at 4.5 bits) stays resident: A streams through once, nothing is re-read
    t = plan_gemm(1000, 300, 77, 4.5, 4.5, sram, 16, 16, 16)
    assert (t.a_reads, t.b_reads, t.tk, t.tn) == (1, 1, 300, 77)
    # 512x768 A and 768x3072 B (16-bit) are each far larger than 64 KB: something must be re-read
    t = plan_gemm(512, 768, 3072, 16, 16, sram, 16, 16, 16)
    assert max(t.a_reads, t.b_reads) > 1


def test_lower_precision_needs_fewer_rereads():
    sram = 256 * 1024
    wide = plan_gemm(2048, 1024, 2048, 16, 16, sram, 32, 32, 32)
    narrow = plan_gemm(2048, 1024, 2048, 4.5, 4.5, sram, 32, 32, 32)
    traffic = lambda t, bits: (t.a_reads * t.m * t.k + t.b_reads * t.k * t.n) * bits / 8  # noqa: E731
    assert traffic(narrow, 4.5) < traffic(wide, 16) * 4.5 / 16


def test_chosen_plan_is_the_least_traffic_among_all_candidates():
    m, k, n, bits, sram = 300, 200, 500, 8, 48 * 1024
    best = plan_gemm(m, k, n, bits, bits, sram, 16, 16, 16)
    best_traffic = best.a_reads * m * k + best.b_reads * k * n
    for tm, tk, tn in itertools.product(range(16, 513, 16), repeat=3):
        if sram_need_bytes(tm, tk, tn, bits, bits) > sram:
            continue
        for order in "mn":
            ar, br = reads_for(order, -(-m // tm), -(-k // tk), -(-n // tn))
            assert ar * m * k + br * k * n >= best_traffic


def test_sram_too_small_is_a_value_error():
    with pytest.raises(ValueError, match="SRAM"):
        plan_gemm(256, 256, 256, 16, 16, sram_bytes=1024, granule_m=32, granule_k=32, granule_n=32)


def test_edge_counts_and_split_total():
    assert edge_counts(10, 4) == [(4, 2), (2, 1)]
    assert edge_counts(8, 4) == [(4, 2)]
    parts = split_total(1001, [1, 2, 3, 0, 4])
    assert sum(parts) == 1001 and parts[3] == 0 and all(p >= 0 for p in parts)
    assert split_total(7, [0.0, 0.0]) == [0, 0]
