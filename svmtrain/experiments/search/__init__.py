"""Hyperparameter search: short training runs over a grid or random samples, ranked by
validation accuracy (never test).

- :mod:`.space`: what to search (axes, grid or random settings) and the trials they make.
- :mod:`.runner`: running the trials in worker processes, Ctrl-C and dead workers.
- :mod:`.results`: ranking, the results files and the best trial.
- :mod:`.cluster`: running the trials on a Dask distributed cluster (imports Dask only when
  used).
- :mod:`.run`: :func:`search_hyperparameters`, one whole search from ``svmtrain search``'s
  options to the ranked results.

The names below are the public API; ``from svmtrain.experiments import search`` gives them all.
"""

from svmtrain.experiments.search.cluster import DaskExecutor
from svmtrain.experiments.search.results import (
    BEST_YAML,
    CRASHED,
    DIVERGED,
    OK,
    RESULTS_CSV,
    RESULTS_JSON,
    Search,
    TrialResult,
    best_trial,
    new_search_dir,
    rank,
    result_records,
    search_dir,
    setting_records,
)
from svmtrain.experiments.search.run import FORK_NOTE, search_hyperparameters
from svmtrain.experiments.search.runner import (
    BLAS_THREADS,
    Executor,
    LocalPool,
    WorkerDied,
    can_fork,
    config_value,
    crashed_result,
    effective_jobs,
    run_search,
    run_trial,
)
from svmtrain.experiments.search.space import (
    LR,
    MAX_CONFIRMED_TRIALS,
    MAX_TRIALS,
    REG,
    SEED,
    Axis,
    Halving,
    Trial,
    check_axes,
    check_trial_count,
    check_trials,
    for_rung,
    grid_settings,
    make_trials,
    parse_axis,
    parse_grid_option,
    random_settings,
    trial_count,
    with_seeds,
)

__all__ = [
    "BEST_YAML",
    "BLAS_THREADS",
    "CRASHED",
    "DIVERGED",
    "FORK_NOTE",
    "LR",
    "MAX_CONFIRMED_TRIALS",
    "MAX_TRIALS",
    "OK",
    "REG",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "SEED",
    "Axis",
    "DaskExecutor",
    "Executor",
    "Halving",
    "LocalPool",
    "Search",
    "Trial",
    "TrialResult",
    "WorkerDied",
    "best_trial",
    "can_fork",
    "check_axes",
    "check_trial_count",
    "check_trials",
    "config_value",
    "crashed_result",
    "effective_jobs",
    "for_rung",
    "grid_settings",
    "make_trials",
    "new_search_dir",
    "parse_axis",
    "parse_grid_option",
    "random_settings",
    "rank",
    "result_records",
    "run_search",
    "run_trial",
    "search_dir",
    "search_hyperparameters",
    "setting_records",
    "trial_count",
    "with_seeds",
]
