"""Policy search: `dsqsim tune` (multi-objective, Optuna) over time-adaptive DSQ policies."""

from sim.tune.search import OBJECTIVES, TuneConfig, TuneResult, run_tune
from sim.tune.space import LADDERS, suggest_policy, to_toml

__all__ = ["OBJECTIVES", "LADDERS", "TuneConfig", "TuneResult", "run_tune", "suggest_policy", "to_toml"]
