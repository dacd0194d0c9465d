"""One search from the options ``svmtrain search`` takes to its ranked results."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from svmtrain.config import load_config
from svmtrain.errors import ArgumentError
from svmtrain.experiments.common import load_splits
from svmtrain.experiments.search.cluster import DaskExecutor
from svmtrain.experiments.search.results import Search, search_dir
from svmtrain.experiments.search.runner import effective_jobs, run_search
from svmtrain.experiments.search.space import (
    LR,
    REG,
    SEED,
    Halving,
    check_axes,
    check_trial_count,
    grid_settings,
    make_trials,
    parse_axis,
    parse_grid_option,
    random_settings,
    trial_count,
    with_seeds,
)
from svmtrain.io.records import plural
from svmtrain.progress import notify

FORK_NOTE = "Note: worker processes need fork (Linux); running the trials one at a time."


def search_hyperparameters(
    config_path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    lr: str | None = None,
    reg: str | None = None,
    grid: Sequence[str] = (),
    random: int | None = None,
    epochs: int | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    scheduler_file: str | os.PathLike | None = None,
    halving: bool = False,
    reduction_factor: int | None = None,
    min_epochs: int | None = None,
    seeds: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    yes: bool = False,
) -> Search:
    """Train one short run per trial and rank them by validation accuracy, as ``svmtrain
    search`` does; returns the finished :class:`Search` (``.text()``, ``.document()``,
    ``.require_best()``), whose files are in its ``out_dir``.

    ``config_path``/``overrides``: the base config, as ``fit --config --set``. ``lr``/``reg``:
    "V1,V2,..." or, with ``random``, "LOW:HIGH"; ``grid``: "KEY=V1,V2,..." per other key.
    ``random``: sample this many trials instead of the whole grid. ``epochs``: every trial's
    length. ``jobs``: local worker processes [default: the CPU count]; ``scheduler`` or
    ``scheduler_file``: run on a Dask cluster instead. ``halving``: successive halving with
    ``reduction_factor`` [3] and ``min_epochs`` [1]. ``out``: the results directory [default:
    <output.dir>/<timestamp>-search]. ``seeds``: train each setting this many times, with
    train.seed the config's, then one more each time, and rank the settings by their mean
    validation accuracy (the spread says how much of a difference is seed noise); not with
    ``halving``. ``yes``: run more than MAX_TRIALS trials (else refused); with ``progress`` a
    notice (:func:`svmtrain.progress.notify`) says how many. Without fork the trials run one
    at a time, with a notice saying so.

    Raises ArgumentError (naming no argument: the message names the options) for a search that
    cannot run, before any data are loaded; ConfigError naming the trial with a bad value;
    ClusterError, Interrupted, SvmtrainError as :func:`run_search` and :class:`DaskExecutor`.
    """
    if scheduler is not None and scheduler_file is not None:
        raise ArgumentError((), "Give --scheduler or --scheduler-file, not both.")
    if not halving and (reduction_factor is not None or min_epochs is not None):
        raise ArgumentError((), "--reduction-factor and --min-epochs need --halving.")
    plan = Halving(reduction_factor or 3, min_epochs or 1) if halving else None
    if seeds is not None and halving:
        raise ArgumentError(
            (),
            "--seeds and --halving do not go together: halving keeps single runs by their "
            "accuracy. Drop one of them.",
        )
    shortcuts = (("--lr", LR, lr), ("--reg", REG, reg))
    axes = [parse_axis(key, spec, option) for option, key, spec in shortcuts if spec is not None]
    axes += [parse_grid_option(text) for text in grid]
    check_axes(axes, random=random is not None, epochs=epochs, halving=halving)
    if seeds is not None and any(a.key == SEED for a in axes):
        raise ArgumentError((), f"--seeds sets {SEED}; drop --grid {SEED}=... or --seeds.")
    base = load_config(config_path, overrides)
    count = trial_count(axes, random) * (seeds or 1)
    check_trial_count(count, confirmed=yes)
    if plan is not None:  # trials cannot search their length: each has the base's, or --epochs
        plan.rung_epochs(count, epochs if epochs is not None else base.train.epochs)
    if progress:
        notify(f"search: {plural(count, 'trial')}")
    if random is None:
        settings = grid_settings(axes)
    else:
        settings = random_settings(axes, random, base.train.seed)
    if seeds is not None:
        settings = with_seeds(settings, base.train.seed, seeds)
    trials = make_trials(config_path, overrides, settings, epochs)
    jobs = jobs if jobs is not None else os.cpu_count() or 1
    cluster = None
    if scheduler is not None or scheduler_file is not None:
        cluster = DaskExecutor(scheduler, scheduler_file)
    with cluster or contextlib.nullcontext():
        splits = load_splits(base, progress=progress)
        used = cluster.jobs if cluster is not None else effective_jobs(jobs, len(trials))
        if cluster is None and used < min(jobs, len(trials)):
            notify(FORK_NOTE)
        job = Search(
            trials=trials,
            axes=axes,
            out_dir=search_dir(base, out),
            jobs=used,
            epochs=epochs,
            halving=plan,
            seeds=seeds,
        )
        return run_search(job, splits, executor=cluster, progress=progress)
