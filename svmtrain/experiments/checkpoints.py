"""A run's checkpoint: the :class:`~svmtrain.experiments.train.TrainState` at an epoch boundary,
and the identity (config and data) a resumed run must share with the run it continues."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from svmtrain.config import Config, config_to_yaml
from svmtrain.data.preprocess import Splits
from svmtrain.errors import SvmtrainError
from svmtrain.experiments.train import TrainState, optimizer
from svmtrain.fileio import loads_json
from svmtrain.io import runs

# The scalars of a TrainState and what each must be: (types, lowest, highest or None).
_SCALARS = {
    "epoch": (int, 0, None),
    "step": (int, 0, None),
    "best_val_acc": (float, -1.0, 1.0),
    "best_epoch": (int, 0, None),
    "epochs_since_best": (int, 0, None),
    "stopped_early": (bool, None, None),
    "seconds": (float, 0.0, None),
    "sampler": (dict, None, None),
    "metrics": (list, None, None),
}
_OPTIMIZER = "optimizer."  # the prefix of the optimiser's arrays in checkpoint.npz


def config_digest(cfg: Config) -> str:
    """sha256 (hex) of the config less where the data are fetched from: equal for two configs
    that train the same run."""
    where = dataclasses.replace(cfg.data, dir=None, url=None, sha256=None, md5=None)
    text = config_to_yaml(dataclasses.replace(cfg, data=where))
    return hashlib.sha256(text.encode()).hexdigest()


def run_identity(cfg: Config, splits: Splits) -> dict:
    """{"config": :func:`config_digest`, "data": the archive's sha256}: what a resumed run must
    share with the run it continues."""
    return {"config": config_digest(cfg), "data": splits.data_sha256}


def save_checkpoint(run_dir: Path, state: TrainState, identity: dict) -> None:
    """run_dir/checkpoint.npz: the arrays of ``state`` plus its scalars and ``identity`` as JSON,
    written atomically."""
    arrays = {
        "W": state.W,
        "loss_history": np.asarray(state.loss_history, dtype=np.float64),
        **{_OPTIMIZER + k: v for k, v in state.optimizer.items()},
    }
    if state.best_W is not None:
        arrays["best_W"] = state.best_W
    meta = {name: getattr(state, name) for name in _SCALARS}
    runs.save_checkpoint(run_dir / runs.CHECKPOINT, arrays, {**meta, "identity": identity})


def load_checkpoint(run_dir: Path, cfg: Config, splits: Splits) -> TrainState:
    """The TrainState saved in run_dir, checked against the config and data it must continue.

    Its arrays must be those of a fresh state of this config (W, best_W, the optimiser's),
    its scalars of their types and ranges, within the run's plan. Raises
    :class:`SvmtrainError` naming the fault and the fix when the config was edited, the data
    differ, or the checkpoint is unreadable or damaged.
    """
    path = run_dir / runs.CHECKPOINT
    arrays, meta = runs.load_checkpoint(path)
    again = runs.restart_hint(run_dir)
    identity = run_identity(cfg, splits)
    saved = meta.pop("identity", {})
    if saved.get("config") != identity["config"]:
        if _from_another_run(run_dir, meta.get("metrics")):
            raise SvmtrainError(
                f"{path} belongs to another run (a config and epochs other than this "
                f"directory's), so it cannot continue the run in {run_dir}. Put back the run's "
                f"own checkpoint, or: {again}"
            )
        raise SvmtrainError(
            f"{run_dir / runs.CONFIG} was changed after the run started, so the checkpoint "
            f"cannot continue it. {again}"
        )
    if saved.get("data") != identity["data"]:
        raise SvmtrainError(
            f"The run in {run_dir} was trained on the archive with sha256 {saved.get('data')}, "
            f"but the data now come from {identity['data']}. Point SVMTRAIN_DATA_URL and "
            "SVMTRAIN_DATA_SHA256 (or --data-dir) back at that archive to resume."
        )
    W, fault = arrays.get("W"), _fault(arrays, meta, cfg, splits)
    if fault:
        raise SvmtrainError(f"{path} is damaged: it {fault}. {again}")
    prefix = len(_OPTIMIZER)
    return TrainState(
        W=W,
        optimizer={k[prefix:]: v for k, v in arrays.items() if k.startswith(_OPTIMIZER)},
        best_W=arrays.get("best_W"),
        loss_history=arrays["loss_history"].tolist(),
        **{k: meta[k] for k in _SCALARS},
    )


def _fault(arrays: dict, meta: dict, cfg: Config, splits: Splits) -> str | None:
    """What is wrong with a checkpoint's ``arrays`` and ``meta`` for this config and data (the
    words after "it"), or None. Arrays must have the names, shapes and dtypes of a fresh state;
    each scalar its type and range, and the counts must fit the run's plan."""
    W = np.zeros((len(splits.class_names), splits.num_features), np.dtype(cfg.preprocess.dtype))
    fresh = {"W": W, "loss_history": np.zeros(0)}
    fresh |= {_OPTIMIZER + k: v for k, v in optimizer(cfg).init_state(W).items()}
    missing = [k for k in fresh if k not in arrays] + [k for k in _SCALARS if k not in meta]
    if missing:
        return f"lacks {', '.join(missing)}"
    for k, a in arrays.items():
        want = fresh.get(k, W if k == "best_W" else None)
        if want is None:
            return f"holds {k}, which this run's optimiser ({cfg.optim.name}) does not have"
        if a.dtype != want.dtype or (a.shape != want.shape and k != "loss_history"):
            shape = "(N,)" if k == "loss_history" else want.shape
            return f"{k} is not {shape} {want.dtype}"
    for k, (kind, low, high) in _SCALARS.items():
        if not _valid(meta[k], kind, low, high):
            return f"has {k} = {_shown(meta[k])}, not {_wording(kind, low, high)}"
    rounds, updates = optimizer(cfg).plan(len(splits.y_train))
    if meta["epoch"] > rounds or meta["step"] > updates or meta["best_epoch"] > meta["epoch"]:
        return (
            f"has epoch {meta['epoch']}, step {meta['step']} (best epoch {meta['best_epoch']}), "
            f"beyond this run's {rounds} rounds of {updates} updates"
        )
    if len(meta["metrics"]) != meta["epoch"] or len(arrays["loss_history"]) != meta["step"]:
        return f"has {len(meta['metrics'])} rounds of metrics for epoch {meta['epoch']}"
    return None


def _valid(value: object, kind: type, low: float | None, high: float | None) -> bool:
    """Whether a scalar read from JSON is of ``kind`` (a bool is no number) in [low, high]."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    ok = isinstance(value, (int, float) if kind is float else kind)
    ok = ok and (kind is not float or math.isfinite(value))
    return ok and (low is None or (low <= value and (high is None or value <= high)))


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wording(kind: type, low: float | None, high: float | None) -> str:
    words = {int: "a whole number", float: "a finite number", bool: "true or false"}
    text = words.get(kind, f"a {'mapping' if kind is dict else 'list'}")
    if low is not None:
        text += f" >= {low:g}" if high is None else f" in [{low:g}, {high:g}]"
    return text


def _from_another_run(run_dir: Path, saved_metrics: object) -> bool:
    """Whether the checkpoint whose epochs are ``saved_metrics`` was not saved by the run in
    run_dir: its epochs (each with its own wall time) are not those of run_dir/metrics.jsonl,
    which is written right after every checkpoint (so it may lag one epoch behind, no more).
    False when metrics.jsonl cannot tell (missing or unreadable)."""
    try:
        lines = (run_dir / runs.METRICS).read_text(encoding="utf-8").splitlines()
        written = [loads_json(line) for line in lines if line.strip()]
    except (OSError, ValueError):
        return False
    if not isinstance(saved_metrics, list):
        return True
    return written not in (saved_metrics, saved_metrics[:-1])
