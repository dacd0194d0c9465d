"""The run directory: everything a training run leaves behind, written atomically.

RUN_DIR/
    config.yaml        the resolved config; ``svmtrain fit --config RUN_DIR/config.yaml`` replays it
    metrics.jsonl      one JSON object per epoch
    loss_history.npy   (S,) float64, the minibatch loss of every step
    weights.npz        W, mean, scale, class_names, config: all that ``evaluate`` needs
    summary.json       final accuracies, confusion matrix, wall time
    checkpoint.npz     the full training state at the last finished epoch (for --resume)
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svmtrain.config import Config, save_config
from svmtrain.errors import SvmtrainError, WeightsError
from svmtrain.fileio import atomic_write
from svmtrain.preprocess import PIXELS

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
LOSS_HISTORY = "loss_history.npy"
WEIGHTS = "weights.npz"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"


def new_run_dir(cfg: Config, out: str | Path | None = None) -> Path:
    """Create the run directory: ``out``, or ``<output.dir>/<timestamp>-<output.name>``.

    An existing directory that already holds a run is refused, so a finished run is never
    overwritten by accident.
    """
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(cfg.output.dir) / f"{stamp}-{cfg.output.name}"
    run_dir = Path(out)
    if (run_dir / CHECKPOINT).exists() or (run_dir / WEIGHTS).exists():
        raise SvmtrainError(
            f"{run_dir} already holds a run. Continue it with 'svmtrain fit --resume {run_dir}' "
            "or choose another --out."
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SvmtrainError(
            f"Cannot create the run directory {run_dir}: {err.strerror}. "
            "Choose another with --out or output.dir."
        ) from None
    return run_dir


def write_config(run_dir: Path, cfg: Config) -> None:
    save_config(cfg, run_dir / CONFIG)


def write_metrics(run_dir: Path, metrics: list[dict], loss_history: np.ndarray) -> None:
    """Rewrite metrics.jsonl (one line per epoch) and loss_history.npy, each atomically."""
    with atomic_write(run_dir / METRICS, "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in metrics)
    with atomic_write(run_dir / LOSS_HISTORY) as f:
        np.save(f, np.asarray(loss_history, dtype=np.float64))


def write_summary(run_dir: Path, summary: dict) -> None:
    with atomic_write(run_dir / SUMMARY, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


@dataclass(frozen=True)
class Weights:
    """A trained model: W (C, 3073), mean and scale (3072,), class names, and its config (YAML)."""

    W: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    class_names: tuple[str, ...]
    config_yaml: str


def save_weights(path: Path, weights: Weights) -> None:
    with atomic_write(path) as f:
        np.savez(
            f,
            W=weights.W,
            mean=weights.mean,
            scale=weights.scale,
            class_names=np.array(weights.class_names),
            config=np.array(weights.config_yaml),
        )


def load_weights(path: str | Path) -> Weights:
    """Read and check a weights.npz; every problem is one WeightsError that names the file."""
    path = Path(path)
    hint = "Pass the weights.npz that 'svmtrain fit' wrote in its run directory."
    if not path.is_file():
        raise WeightsError(f"No weights file at {path}. {hint}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsError(f"{path} is not a readable .npz weights file ({err}). {hint}") from None
    missing = [k for k in ("W", "mean", "scale", "class_names", "config") if k not in arrays]
    if missing:
        raise WeightsError(f"{path} lacks {', '.join(missing)}. {hint}")
    W, names = arrays["W"], arrays["class_names"]
    if W.ndim != 2 or W.shape[1] != PIXELS + 1 or W.shape[0] != len(names) or len(names) < 2:
        raise WeightsError(
            f"{path}: W has shape {W.shape}, expected ({len(names)}, {PIXELS + 1}) "
            f"(one row per class, {PIXELS} pixels plus the bias). {hint}"
        )
    if not np.issubdtype(W.dtype, np.floating) or not np.all(np.isfinite(W)):
        raise WeightsError(f"{path}: W must hold finite floating-point numbers. {hint}")
    for key in ("mean", "scale"):
        if arrays[key].shape != (PIXELS,):
            raise WeightsError(
                f"{path}: {key} has shape {arrays[key].shape}, expected ({PIXELS},). {hint}"
            )
    return Weights(
        W=W,
        mean=arrays["mean"],
        scale=arrays["scale"],
        class_names=tuple(str(n) for n in names),
        config_yaml=str(arrays["config"]),
    )


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Arrays plus a JSON-able dict of scalars and RNG state, in one atomic .npz."""
    with atomic_write(path) as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    if not path.is_file():
        raise SvmtrainError(
            f"No checkpoint at {path}: the run has none to resume (it finished before its "
            "first epoch ended, or this is not a run directory)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise SvmtrainError(f"{path} is not a readable checkpoint ({err}).") from None
    return arrays, meta
