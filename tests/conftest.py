"""Shared fixtures: a tiny study written to disk once per session (fake training, analytic costing: seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_study_dir(tmp_path_factory):
    """A study directory with tables, plots and report.html (two policies, stand-in training, roofline fidelity)."""
    from test_study import _FakeTrain  # tests/ is on sys.path (pytest prepends a rootless test folder)

    from sim.study import StudyConfig, run_study

    out = tmp_path_factory.mktemp("tiny-study") / "study"
    cfg = StudyConfig(task="numwords", workload="tiny-mt", hw="edge-npu", policies=("fp32", "dsq"), steps=10,
                      eval_every=5, fidelity="roofline", dram_bw_scales=(0.5, 1.0, 2.0))
    run_study(cfg, out, train_fn=_FakeTrain([]), workers=1)
    return out
