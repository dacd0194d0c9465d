"""A run's checkpoint: the :class:`~svmtrain.experiments.train.TrainState` at an epoch boundary,
and the identity (config and data) a resumed run must share with the run it continues."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from svmtrain.config import Config, config_to_yaml
from svmtrain.data.preprocess import Splits
from svmtrain.errors import SvmtrainError
from svmtrain.experiments.train import TrainState
from svmtrain.fileio import loads_json
from svmtrain.io import runs

_SCALARS = (
    "epoch",
    "step",
    "initial_loss",
    "best_val_acc",
    "best_epoch",
    "epochs_since_best",
    "stopped_early",
    "seconds",
    "sampler",
    "metrics",
)


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
        "velocity": state.velocity,
        "loss_history": np.asarray(state.loss_history, dtype=np.float64),
    }
    if state.best_W is not None:
        arrays["best_W"] = state.best_W
    meta = {name: getattr(state, name) for name in _SCALARS}
    runs.save_checkpoint(run_dir / runs.CHECKPOINT, arrays, {**meta, "identity": identity})


def load_checkpoint(run_dir: Path, cfg: Config, splits: Splits) -> TrainState:
    """The TrainState saved in run_dir, checked against the config and data it must continue.

    W, velocity (and best_W) must be (classes, features) of the config's dtype. Raises
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
    shape, dtype = (
        (len(splits.class_names), splits.num_features),
        np.dtype(cfg.preprocess.dtype),
    )
    missing = [k for k in ("W", "velocity", "loss_history") if k not in arrays]
    missing += [k for k in _SCALARS if k not in meta]
    wrong = [
        k
        for k in ("W", "velocity", "best_W")
        if k in arrays and (arrays[k].shape != shape or arrays[k].dtype != dtype)
    ]
    if missing or wrong:
        fault = (
            f"lacks {', '.join(missing)}"
            if missing
            else f"{', '.join(wrong)} is not {shape} {dtype}"
        )
        raise SvmtrainError(f"{path} is damaged: it {fault}. {again}")
    return TrainState(
        W=arrays["W"],
        velocity=arrays["velocity"],
        best_W=arrays.get("best_W"),
        loss_history=arrays["loss_history"].tolist(),
        **{k: meta[k] for k in _SCALARS},
    )


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
