"""How tests/data/scalesim_gemm_extra.csv was made (kept for provenance; not run by the tests).

Needs SCALE-Sim 3.0.0 in a throwaway venv: `python3 -m venv /tmp/scalesim-venv && /tmp/scalesim-venv/bin/pip
install scalesim 'numpy<2.3'`, then `/tmp/scalesim-venv/bin/python tests/data/make_scalesim_extra.py OUT.csv`.
SCALE-Sim simulates a few thousand cycles per wall second, so the points are small.
"""

import contextlib
import io
import os
import random
import sys
import tempfile
import time

CFG = """[general]
run_name = ref

[architecture_presets]
ArrayHeight:    {R}
ArrayWidth:     {C}
IfmapSramSzkB:   {S}
FilterSramSzkB:  {S}
OfmapSramSzkB:   {S}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : {DF}
Bandwidth : 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

HEADER = ("array_rows,array_cols,dataflow,M,K,N,bw_mode,user_bw_words_per_cycle,compute_cycles,stall_cycles,"
          "total_cycles,util_pct,sram_ifmap_read_words,sram_filter_read_words,sram_ofmap_write_words,"
          "dram_read_words,dram_write_words,sram_sizes_kb,word_bytes,wall_s,dram_ifmap_read_words,"
          "dram_filter_read_words")


def run(rows: int, cols: int, dataflow: str, m: int, k: int, n: int, sram_kb: int) -> str:
    from scalesim.scale_sim import scalesim

    d = tempfile.mkdtemp()
    cfg, topo, lay = (os.path.join(d, f) for f in ("c.cfg", "t.csv", "l.csv"))
    with open(cfg, "w") as f:
        f.write(CFG.format(R=rows, C=cols, S=sram_kb, DF=dataflow))
    with open(topo, "w") as f:
        f.write(f"Layer,M,N,K,\nL0,{m},{n},{k},\n")
    with open(lay, "w") as f:
        f.write("Layer name,a,\nL0," + ",".join(["1"] * 20) + ",\n")
    t0 = time.time()
    sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=lay, input_type_gemm=True)
    with contextlib.redirect_stdout(io.StringIO()):
        sim.run_scale(top_path=d)
    wall = time.time() - t0
    layer = sim.runner.single_layer_sim_object_list[0]
    comp = layer.get_compute_report_items()  # overall, total, stall, util %, mapping eff %, compute util %
    total, stall = comp[1], comp[2]
    row = [rows, cols, dataflow, m, k, n, "CALC", "", total - stall, stall, total, round(comp[3], 3),
           layer.ifmap_sram_reads, layer.filter_sram_reads, layer.ofmap_sram_writes,
           layer.ifmap_dram_reads + layer.filter_dram_reads, layer.ofmap_dram_writes,
           f"ifmap{sram_kb}/filter{sram_kb}/ofmap{sram_kb}", 1, round(wall, 2), layer.ifmap_dram_reads,
           layer.filter_dram_reads]
    return ",".join(str(x) for x in row)


def points() -> list[tuple]:
    out = []
    rng = random.Random(7)  # batch 1: small arrays, M/K/N in 1..90
    arrays = [(4, 4), (8, 8), (16, 16), (8, 4), (4, 16), (12, 6), (5, 7), (16, 8)]
    for i in range(48):
        rows, cols = arrays[i % len(arrays)]
        m, k, n = (rng.randint(1, 90) for _ in range(3))
        out.append((rows, cols, ("os", "ws", "is")[i % 3], m, k, n, rng.choice([1, 1, 2, 4, 64])))
    out += [(8, 8, df, m, k, n, s) for df in ("os", "ws", "is")
            for (m, k, n, s) in [(16, 16, 16, 1), (1, 40, 33, 1), (33, 1, 9, 1), (64, 64, 8, 2), (7, 130, 3, 1)]]
    rng = random.Random(11)  # batch 2: larger and thin arrays, M/K/N in 20..260, small buffers
    arrays = [(32, 32), (16, 32), (64, 16), (24, 40), (32, 8), (3, 5), (1, 8), (8, 1)]
    for i in range(36):
        rows, cols = arrays[i % len(arrays)]
        m, k, n = (rng.randint(20, 260) for _ in range(3))
        out.append((rows, cols, ("os", "ws", "is")[(i // len(arrays)) % 3], m, k, n, rng.choice([1, 2, 3, 8, 16])))
    return [p for p in out if p[:6] not in SKIPPED]


# thin-array points of batch 2 whose SCALE-Sim runs (145k-1.4M cycles) took too long on the shared build machine
SKIPPED = {(8, 1, "ws", 161, 258, 235), (1, 8, "is", 140, 116, 201), (3, 5, "os", 65, 194, 163),
           (1, 8, "os", 134, 150, 68), (8, 1, "os", 127, 184, 118)}


if __name__ == "__main__":
    with open(sys.argv[1], "w") as f:
        f.write(HEADER + "\n")
        for point in points():
            f.write(run(*point) + "\n")
            f.flush()
