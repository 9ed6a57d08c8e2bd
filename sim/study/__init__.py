"""Closed-loop studies: train under each policy, cost each recorded precision timeline, integrate over the run."""

from sim.study.costing import TimelineCost, cost_timeline, step_figures
from sim.study.run import StudyConfig, StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "TimelineCost", "cost_timeline", "run_study", "step_figures"]
