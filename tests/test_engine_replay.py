"""The SimPy replay on hand-made plans with an idealised DRAM (1 byte/cycle): exact time logs worked out by hand."""

from sim.engine.plan import Access, OpPlan, Step, Transfer
from sim.engine.replay import EngineOptions, Replay, stall_breakdown, union_length
from sim.engine.units import FixedRateDramPort


def _plan(index, name, unit, steps, deps=(), kind="gemm"):
    accesses = [Access("a", "activation", "q0", "bf16", False, 0, 10**6, 10**6),
                Access("c", "activation", "q0", "bf16", True, 10**6, 10**6, 10**6)]
    return OpPlan(index, name, kind, "forward", 0, unit, accesses, steps, sum(s.cycles for s in steps), len(steps),
                  deps=deps)


def _step(load_bytes, cycles, store_bytes):
    loads = (Transfer(0, 0, load_bytes),) if load_bytes else ()
    stores = (Transfer(1, 10**6, store_bytes),) if store_bytes else ()
    return Step(loads, cycles, stores)


def _run(plans, options=None, bytes_per_cycle=1.0):
    r = Replay(plans, lambda env: FixedRateDramPort(env, bytes_per_cycle), options or EngineOptions())
    end = r.run()
    return r, end


def _log(intervals):
    return [(label, s, e) for s, e, label in intervals]


def test_double_buffered_pipeline_time_log():
    # 3 steps: load 10 B (10 cycles), compute 5, store 4 B (4 cycles); loads and stores share the DRAM bus.
    # load0 [0,10); compute0 [10,15) while load1 [10,20); store0 asks at 15, gets the bus at 20 -> [20,24);
    # load2 (asked at 20, after store0) [24,34); compute1 [20,25); store1 asks at 25 -> [34,38) after load2;
    # compute2 [34,39) (output buffer of step 0 drained at 24); store2 [39,43).
    r, end = _run([_plan(0, "g", "array", [_step(10, 5, 4)] * 3)])
    assert _log(r.dram.intervals) == [("g", 0, 10), ("g", 10, 20), ("g", 20, 24), ("g", 24, 34), ("g", 34, 38),
                                      ("g", 39, 43)]
    assert _log(r.units["array"].intervals) == [("g", 10, 15), ("g", 20, 25), ("g", 34, 39)]
    assert end == 43
    rec = r.records[0]
    assert (rec["start_cycle"], rec["compute_end_cycle"], rec["end_cycle"]) == (0, 39, 43)


def test_input_double_buffer_limits_prefetch():
    # compute-bound: loads 1 cycle, compute 10. The loader may run at most two steps ahead of compute:
    # load0 [0,1) load1 [1,2); load2 waits for compute0 to end (11) -> [11,12); load3 waits for compute1 (21).
    r, end = _run([_plan(0, "g", "array", [_step(1, 10, 0)] * 4)])
    assert _log(r.dram.intervals) == [("g", 0, 1), ("g", 1, 2), ("g", 11, 12), ("g", 21, 22)]
    assert _log(r.units["array"].intervals) == [("g", 1, 11), ("g", 11, 21), ("g", 21, 31), ("g", 31, 41)]
    assert end == 41


def test_dependencies_and_unit_overlap():
    # A (array) and V (vector) are independent and overlap; B depends on A and also needs the array.
    a = _plan(0, "A", "array", [_step(5, 20, 5)])
    v = _plan(1, "V", "vector", [_step(5, 3, 5)], kind="elementwise")
    b = _plan(2, "B", "array", [_step(5, 10, 0)], deps=(0,))
    r, end = _run([a, v, b])
    # bus: A load [0,5), V load [5,10), V store [13,18) (V computed [10,13)); A computes [5,25), store [25,30);
    # B ready at 30: load [30,35), compute [35,45).
    assert _log(r.dram.intervals) == [("A", 0, 5), ("V", 5, 10), ("V", 13, 18), ("A", 25, 30), ("B", 30, 35)]
    assert _log(r.units["array"].intervals) == [("A", 5, 25), ("B", 35, 45)]
    assert _log(r.units["vector"].intervals) == [("V", 10, 13)]
    assert end == 45
    recs = {x["name"]: x for x in r.records}
    assert recs["B"]["ready_cycle"] == 30


def test_serial_option_runs_ops_in_trace_order():
    a = _plan(0, "A", "array", [_step(5, 20, 5)])
    v = _plan(1, "V", "vector", [_step(5, 3, 5)], kind="elementwise")
    r, end = _run([a, v], EngineOptions(overlap=False))
    # V waits for A to finish (30): load [30,35), compute [35,38), store [38,43)
    assert _log(r.units["vector"].intervals) == [("V", 35, 38)]
    assert end == 43


def test_stall_breakdown_partitions_the_step():
    compute = [(0, 10, "x"), (20, 30, "y")]
    dram = [(5, 25, "z")]
    s = stall_breakdown(compute, dram, 40)
    assert s == {"compute_overlap_dram": 10, "compute_only": 10, "dram_only": 10, "idle": 10}
    assert union_length([(0, 5, ""), (3, 8, ""), (10, 11, "")]) == 9
