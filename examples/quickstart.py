# %% [markdown]
# # dsqsim quickstart: a closed-loop study, a what-if sweep, a report
#
# Run as a script (`python examples/quickstart.py`) or cell by cell in Jupyter / VS Code (`# %%` cells).
# Everything returns pandas DataFrames and dataclasses; files are views of them.

# %%
from reports import write_report
from reports.plots import speedup_vs_bandwidth
from sim.study import StudyConfig, run_study
from sim.sweep import run_sweep

# %% [markdown]
# ## 1. A closed-loop study
# Train the NumPy reference Transformer on the `numwords` task under each policy (real quantization at q0..q3),
# then cost each policy's recorded precision timeline on the IWSLT-sized Transformer on the edge NPU.

# %%
config = StudyConfig(task="numwords", workload="transformer-iwslt", hw="edge-npu",
                     policies=("fp32", "fixed16", "dsq"), steps=60)
study = run_study(config, out_dir="dsqsim-example", resume=True, log=print)
study.summary[["policy", "final_valid_loss", "final_bleu", "time_s", "speedup", "dram_bytes",
               "traffic_reduction", "arith_bitops", "bitops_reduction"]]

# %%
# DRAM traffic of the whole run by DSQ point, one column per policy
study.traffic[study.traffic.by == "point"].pivot(index="key", columns="policy", values="dram_bytes")

# %% [markdown]
# ## 2. A what-if sweep: where does DSQ pay off?
# Each point costs a policy's schedule on a machine whose DRAM bandwidth is scaled; run in parallel, resumable.

# %%
sweep = run_sweep("transformer-iwslt", "edge-npu", ["fp32", "fixed16", "dsq"], [0.25, 0.5, 1, 2, 4],
                  out="dsqsim-example/sweep.parquet", resume=True, workers=2)
sweep.pivot(index="dram_bw_scale", columns="policy", values="time_s")

# %%
fig = speedup_vs_bandwidth(sweep)  # in Jupyter the figure shows inline
fig.savefig("dsqsim-example/speedup.png")

# %% [markdown]
# ## 3. Reports

# %%
print("study report:", study.report_path)
print("sweep report:", write_report("dsqsim-example/sweep.parquet", "dsqsim-example/sweep-report.html"))
