"""Turn a trace, a machine and a precision configuration into per-op work plans: steps of (loads, compute, stores).

A step is one SRAM-sized tile (GEMM) or chunk (vector op), or a group of consecutive identical-enough tiles merged
into one step of summed bytes and cycles when an op has more than `max_steps` tiles (so wall time grows with
ops x steps, never with cycles). Plans are made for the step as `sim.storage.resolve` stores it: every access
moves the tensor at the packed size of its one stored format, rounded up to whole bytes
(`sim.counting.access_bytes`, as the counting counts it); GEMM re-reads from tiling multiply it. A GEMM multiplies
at its operands' compute formats (their DSQ points) and tiles its SRAM by their stored sizes (the DMA brings
stored bytes; conversion happens as a tile enters the array).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from sim.counting import GEMM_KINDS, OTHER_POINT, access_bytes
from sim.engine.machine_view import MachineView
from sim.engine.tiling import GemmTiling, edge_counts, plan_gemm, split_total
from sim.storage import Storage, resolve

ADDRESS_ALIGN_BYTES = 1 << 16  # tensors start on 64 KiB boundaries so they begin at a row/channel boundary


@dataclass(frozen=True)
class Access:
    """One operand access of an op: which tensor, at which DSQ point, and how many bytes in total."""

    tensor: str
    role: str
    point: str          # q0..q3 or "other"
    fmt: str
    is_write: bool
    base_addr: int
    size_bytes: int     # the tensor at this format
    total_bytes: int    # size_bytes x re-reads


@dataclass(frozen=True)
class Transfer:
    access: int         # index into OpPlan.accesses
    addr: int
    nbytes: int


@dataclass(frozen=True)
class Step:
    loads: tuple[Transfer, ...]
    cycles: int
    stores: tuple[Transfer, ...]
    tiles: int = 1      # tiles merged into this step


@dataclass
class OpPlan:
    index: int
    name: str
    kind: str
    phase: str
    layer: int | None
    unit: str                       # "array" | "vector"
    accesses: list[Access]
    steps: list[Step]
    compute_cycles: int
    tiles: int
    tiling: GemmTiling | None = None
    deps: tuple[int, ...] = field(default=())


def allocate(storage: Storage) -> dict[str, int]:
    """A base address for each accessed tensor of a resolved step: a bump allocator over their stored sizes."""
    trace = storage.trace
    sizes: dict[str, int] = {}
    for op in trace.ops:
        for o in (*op.inputs, *op.outputs):
            if o.tensor not in sizes:  # the whole tensor: room for any access
                sizes[o.tensor] = access_bytes(trace.tensors[o.tensor].elements, storage.formats[o.tensor])
    bases, addr = {}, 0
    for name in sorted(sizes):  # sorted: addresses do not depend on dict order
        bases[name] = addr
        addr += -(-max(sizes[name], 1) // ADDRESS_ALIGN_BYTES) * ADDRESS_ALIGN_BYTES
    return bases


def _access(storage: Storage, operand, is_write: bool, bases: dict[str, int], reads: int = 1) -> Access:
    t = storage.trace.tensors[operand.tensor]
    fmt = storage.formats[t.name]
    size = access_bytes(storage.trace.access_elements(operand), fmt)
    return Access(t.name, t.role, operand.point or OTHER_POINT, fmt.name, is_write, bases[t.name], size,
                  size * reads)


@lru_cache(maxsize=4096)
def _compute_bits(config, point, role) -> int:
    return int(config.format_at(point, role).mult_bits)


def _transfers(accesses: list[Access], which: list[int], weights: list[float]) -> list[list[Transfer]]:
    """Split each access in `which` over the steps in proportion to `weights`; addresses advance (and wrap on
    re-reads) through the tensor."""
    per_step: list[list[Transfer]] = [[] for _ in weights]
    for ai in which:
        a = accesses[ai]
        parts = split_total(a.total_bytes, weights)
        offset = 0
        for s, nbytes in enumerate(parts):
            if nbytes:
                per_step[s].append(Transfer(ai, a.base_addr + (offset % max(a.size_bytes, 1)), nbytes))
            offset += nbytes
    return per_step


def _group_weights(total_tiles: int, max_steps: int) -> list[int]:
    """Tile counts of the merged steps: all tiles when few, else `max_steps` near-equal groups."""
    if total_tiles <= max_steps:
        return [1] * total_tiles
    return split_total(total_tiles, [1.0] * max_steps)


def plan_op(storage: Storage, index: int, config, mv: MachineView, bases: dict[str, int], max_steps: int) -> OpPlan:
    op = storage.trace.ops[index]
    if op.kind in GEMM_KINDS and op.gemm is not None and op.macs > 0 and len(op.inputs) >= 2:
        return _plan_gemm_op(storage, index, config, mv, bases, max_steps)
    return _plan_vector_op(storage, index, mv, bases, max_steps)


def _fold_batch(trace, op) -> tuple[int, int, int, int]:
    """(batch, m, k, n); a batched GEMM whose B (or A) is shared across the batch is one bigger GEMM."""
    g = op.gemm
    batch, m, k, n = g.batch, g.m, g.k, g.n
    if batch > 1:
        a_el = trace.tensors[op.inputs[0].tensor].elements
        b_el = trace.tensors[op.inputs[1].tensor].elements
        if b_el == k * n and a_el != k * n:
            return 1, batch * m, k, n
        if a_el == m * k and b_el != m * k:
            return 1, m, k, batch * n
    return batch, m, k, n


def _plan_gemm_op(storage: Storage, index, config, mv: MachineView, bases, max_steps) -> OpPlan:
    trace = storage.trace
    op = trace.ops[index]
    batch, m, k, n = _fold_batch(trace, op)
    (a, ta), (b, tb) = ((o, trace.tensors[o.tensor]) for o in op.inputs[:2])
    fa, fb = storage.formats[ta.name], storage.formats[tb.name]
    tiling = plan_gemm(m, k, n, fa.bits_per_element, fb.bits_per_element, mv.gemm_buffers_bytes,
                       mv.granule_m, mv.granule_k, mv.granule_n, batch)
    accesses = [_access(storage, op.inputs[0], False, bases, tiling.a_reads),
                _access(storage, op.inputs[1], False, bases, tiling.b_reads)]
    accesses += [_access(storage, o, False, bases) for o in op.inputs[2:]]
    accesses += [_access(storage, o, True, bases) for o in op.outputs]
    bits = (_compute_bits(config, a.point, ta.role), _compute_bits(config, b.point, tb.role))

    # compute: every distinct tile shape costs what the machine's array model says
    # compute: on an array every distinct tile shape costs what the array model says; a throughput (GPU-like)
    # machine spreads one tile over all its units only when the tile is the whole GEMM, so there each tile gets
    # its MAC share of the whole GEMM's time
    whole = None if mv.has_array else mv.gemm_cycles(m, k, n, *bits)
    shape_cycles = {}
    for sm, cm in edge_counts(m, tiling.tm):
        for sk, ck in edge_counts(k, tiling.tk):
            for sn, cn in edge_counts(n, tiling.tn):
                cyc = mv.gemm_cycles(sm, sk, sn, *bits) if whole is None else math.ceil(whole * sm * sk * sn /
                                                                                        (m * k * n))
                shape_cycles[(sm, sk, sn)] = (cm * ck * cn * batch, cyc)
    total_cycles = sum(c * cyc for c, cyc in shape_cycles.values())

    if tiling.tiles <= max_steps:
        steps = _exact_gemm_steps(tiling, accesses, shape_cycles)
    else:
        counts = _group_weights(tiling.tiles, max_steps)
        cycles = split_total(total_cycles, counts)
        loads = _transfers(accesses, [i for i, a in enumerate(accesses) if not a.is_write], counts)
        stores = _transfers(accesses, [i for i, a in enumerate(accesses) if a.is_write], counts)
        steps = [Step(tuple(ld), cyc, tuple(st), cnt) for ld, cyc, st, cnt in zip(loads, cycles, stores, counts,
                                                                                  strict=True)]
    return OpPlan(index, op.name, op.kind, op.phase, op.layer, "array", accesses, steps, total_cycles,
                  tiling.tiles, tiling)


def _exact_gemm_steps(t: GemmTiling, accesses: list[Access], shape_cycles) -> list[Step]:
    """One step per tile, in loop order; a tile of A or B is loaded only when its index changes."""
    ms, ks, ns = _extents(t.m, t.tm), _extents(t.k, t.tk), _extents(t.n, t.tn)
    a_parts = split_total(accesses[0].size_bytes, [r * c for _ in range(t.batch) for r in ms for c in ks])
    b_parts = split_total(accesses[1].size_bytes, [r * c for _ in range(t.batch) for r in ks for c in ns])
    a_off = _offsets(a_parts)
    b_off = _offsets(b_parts)
    tiles = []
    for b in range(t.batch):
        outer, inner = (range(len(ms)), range(len(ns))) if t.order == "m" else (range(len(ns)), range(len(ms)))
        for o in outer:
            for p in inner:
                i, j = (o, p) if t.order == "m" else (p, o)
                for kk in range(len(ks)):
                    tiles.append((b, i, j, kk))
    weights = [ms[i] * ks[kk] * ns[j] for _, i, j, kk in tiles]
    extra_in = [x for x in range(2, len(accesses)) if not accesses[x].is_write]
    writes = [x for x in range(2, len(accesses)) if accesses[x].is_write]
    extra_loads = _transfers(accesses, extra_in, weights)
    # C (and any extra outputs such as a stash) drain when an output tile's k loop ends
    last_k = [1.0 if kk == len(ks) - 1 else 0.0 for _, _, _, kk in tiles]
    out_w = [w * lk for w, lk in zip(weights, last_k, strict=True)]
    stores = _transfers(accesses, writes, out_w)
    steps, prev_a, prev_b = [], None, None
    for s, (b, i, j, kk) in enumerate(tiles):
        loads = []
        a_idx = (b * len(ms) + i) * len(ks) + kk
        b_idx = (b * len(ks) + kk) * len(ns) + j
        if a_idx != prev_a and a_parts[a_idx]:
            loads.append(Transfer(0, accesses[0].base_addr + a_off[a_idx], a_parts[a_idx]))
        if b_idx != prev_b and b_parts[b_idx]:
            loads.append(Transfer(1, accesses[1].base_addr + b_off[b_idx], b_parts[b_idx]))
        prev_a, prev_b = a_idx, b_idx
        loads += extra_loads[s]
        cycles = shape_cycles[(ms[i], ks[kk], ns[j])][1]
        steps.append(Step(tuple(loads), cycles, tuple(stores[s])))
    return steps


def _extents(dim: int, tile: int) -> list[int]:
    return [min(tile, dim - s) for s in range(0, dim, tile)]


def _offsets(parts: list[int]) -> list[int]:
    out, acc = [], 0
    for p in parts:
        out.append(acc)
        acc += p
    return out


def op_elements(trace, op) -> int:
    """Elements a vector op streams through: its largest operand (as sim.roofline counts it)."""
    return max((int(trace.access_elements(o)) for o in (*op.inputs, *op.outputs)), default=0)


def _plan_vector_op(storage: Storage, index, mv: MachineView, bases, max_steps) -> OpPlan:
    trace = storage.trace
    op = trace.ops[index]
    accesses = [_access(storage, o, False, bases) for o in op.inputs]
    accesses += [_access(storage, o, True, bases) for o in op.outputs]
    elements = op_elements(trace, op)
    total_cycles = mv.vector_cycles(op.kind, elements) if elements else 0
    io_bytes = sum(a.total_bytes for a in accesses)
    # chunks stream through half the SRAM each (double buffering), inputs in and outputs out
    chunks = max(1, -(-2 * io_bytes // max(int(mv.sram_bytes), 1)))
    counts = _group_weights(chunks, max_steps)
    cycles = split_total(total_cycles, counts)
    loads = _transfers(accesses, [i for i, a in enumerate(accesses) if not a.is_write], counts)
    stores = _transfers(accesses, [i for i, a in enumerate(accesses) if a.is_write], counts)
    steps = [Step(tuple(ld), cyc, tuple(st), cnt) for ld, cyc, st, cnt in zip(loads, cycles, stores, counts,
                                                                              strict=True)]
    return OpPlan(index, op.name, op.kind, op.phase, op.layer, "vector", accesses, steps, total_cycles, chunks)


def plan_trace(trace, config, mv: MachineView, max_steps: int, storage: Storage | None = None) -> list[OpPlan]:
    """Plans for every op of the trace as `config` stores it (`storage`, resolved here when not given), with their
    dependencies."""
    storage = storage if storage is not None else resolve(trace, config)
    trace = storage.trace
    bases = allocate(storage)
    deps = trace.dependencies()
    plans = []
    for i in range(len(trace.ops)):
        p = plan_op(storage, i, config, mv, bases, max_steps)
        p.deps = tuple(deps[i])
        plans.append(p)
    return plans
