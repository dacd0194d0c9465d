"""The run directory: everything a training run leaves behind, written atomically.

RUN_DIR/
    config.yaml        the resolved config; ``svmtrain fit --config RUN_DIR/config.yaml`` replays it
    metrics.jsonl      one JSON object per epoch
    loss_history.npy   (S,) float64, the minibatch loss of every step
    weights.npz        the fitted model (svmtrain.model.LinearModel), all that predictions need
    summary.json       final accuracies, confusion matrix, wall time
    checkpoint.npz     the full training state at the last finished epoch (for --resume)
    .lock              locked by the one ``fit`` writing the directory; holds its PID
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from svmtrain.config import Config, save_config
from svmtrain.errors import SvmtrainError
from svmtrain.fileio import atomic_write, loads_json, read_npz
from svmtrain.io.records import write_json

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
LOSS_HISTORY = "loss_history.npy"
WEIGHTS = "weights.npz"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.npz"
LOCK = ".lock"
# The numbers every line of metrics.jsonl holds (plus "seconds").
METRIC_KEYS = ("epoch", "step", "loss", "data_loss", "reg_loss", "train_acc", "val_acc")


def run_dir_for(cfg: Config, out: str | Path | None = None) -> Path:
    """The run directory to use: ``out``, or ``<output.dir>/<timestamp>-<output.name>``.

    A directory that already holds a run is refused, so no run is ever overwritten by accident,
    and so is a non-empty one that holds anything but the start of a run (its config.yaml):
    svmtrain never overwrites files it did not write. Whether that config.yaml is the same
    config is the caller's to check. Raises SvmtrainError saying which and what to do.
    """
    run_dir = Path(out) if out is not None else default_dir(cfg, cfg.output.name)
    if run_dir.exists() and not run_dir.is_dir():
        raise SvmtrainError(f"{run_dir} is a file, not a directory; choose another --out.")
    if (run_dir / SUMMARY).exists():
        raise SvmtrainError(f"{run_dir} already holds a finished run; choose another --out.")
    if (run_dir / CHECKPOINT).exists():
        raise SvmtrainError(
            f"{run_dir} already holds an unfinished run. Continue it with "
            f"'svmtrain fit --resume {run_dir}' or choose another --out."
        )
    if diverged_weights(run_dir / WEIGHTS):
        raise SvmtrainError(
            f"{run_dir} holds the weights of a run that diverged; choose another --out "
            "(or delete that directory)."
        )
    others = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    others = [name for name in others if name not in (CONFIG, LOCK)]
    if others:
        raise SvmtrainError(
            f"{run_dir} is not empty ({listing(others)}) and holds no run, so fit would "
            "overwrite files it did not write. Choose a new or empty directory with --out."
        )
    return run_dir


def listing(names: list[str]) -> str:
    """The first five of ``names`` and how many more, for a message: 'a, b and 3 more'."""
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def diverged_weights(path: Path) -> bool:
    """Whether ``path`` is the weights file of a run that diverged (it records the epoch); a
    user's file of that name, or a run's that did not diverge, is not."""
    try:
        with zipfile.ZipFile(path) as npz:
            return "diverged_in_epoch.npy" in npz.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold run_dir's lock file (an exclusive ``flock``, with this process's PID in it) for the
    block, so one ``fit`` at a time writes the directory; the lock is released when the block
    ends or the process dies. Raises SvmtrainError naming the PID of the process that holds it.
    """
    path = run_dir / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise SvmtrainError(
            f"Cannot create the lock file {path}: {err.strerror}. Choose another --out."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise SvmtrainError(
                f"{run_dir} is in use by another 'svmtrain fit' (PID {pid}). Wait for it to "
                "finish, or choose another --out."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _remove_stale_temporaries(run_dir)
        yield
    finally:
        os.close(fd)


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Remove what a fit killed outright (SIGKILL, a power cut) left of its atomic writes:
    ``.<run file>.<pid>.tmp``, as :func:`~svmtrain.fileio.atomic_write` names them. Called
    with the lock held, so no other fit is writing them; nothing else is touched."""
    for name in (CONFIG, METRICS, LOSS_HISTORY, WEIGHTS, SUMMARY, CHECKPOINT):
        for path in run_dir.glob(f".{name}.*.tmp"):
            if path.name[len(name) + 2 : -len(".tmp")].isdigit():
                path.unlink(missing_ok=True)


def default_dir(cfg: Config, name: str) -> Path:
    """``<output.dir>/<timestamp>-<name>``: where a run or a search goes without --out."""
    return Path(cfg.output.dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def create_run_dir(run_dir: Path) -> None:
    """Make the output directory (and its parents); a failure is one SvmtrainError."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SvmtrainError(
            f"Cannot create the directory {run_dir}: {err.strerror}. "
            "Choose another with --out or output.dir."
        ) from None


def write_config(run_dir: Path, cfg: Config) -> None:
    """run_dir/config.yaml: ``cfg`` resolved, which ``fit --config`` replays (atomically)."""
    save_config(cfg, run_dir / CONFIG)


def write_metrics(run_dir: Path, metrics: list[dict], loss_history: np.ndarray) -> None:
    """Rewrite metrics.jsonl (one line per epoch) and loss_history.npy, each atomically."""
    with atomic_write(run_dir / METRICS, "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in metrics)
    with atomic_write(run_dir / LOSS_HISTORY) as f:
        np.save(f, np.asarray(loss_history, dtype=np.float64))


def write_summary(run_dir: Path, summary: dict) -> None:
    """summary.json, strict JSON (see :func:`svmtrain.io.records.write_json`)."""
    write_json(run_dir / SUMMARY, summary)


def restart_hint(run_dir: Path) -> str:
    """The advice for a run that cannot be continued: start it again in a new directory."""
    return f"Start the run again with 'svmtrain fit --config {run_dir / CONFIG} --out NEW_DIR'."


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Arrays plus a JSON-able dict of scalars and RNG state, in one atomic .npz."""
    with atomic_write(path) as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the decoded metadata of a checkpoint.npz (see :func:`save_checkpoint`)."""
    hint = restart_hint(path.parent)
    arrays = read_npz(path, "checkpoint", SvmtrainError, hint)
    try:
        meta = loads_json(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        raise SvmtrainError(f"{path} is not a readable checkpoint (no metadata). {hint}") from None
    if not isinstance(meta, dict):
        raise SvmtrainError(f"{path} is not a readable checkpoint (bad metadata). {hint}")
    return arrays, meta


# --- reading a run back -------------------------------------------------------------------


def new_run_hint(run_dir: Path) -> str:
    """How to make a run: into ``run_dir`` itself when ``fit`` would take it (it does not exist
    or is empty), else into a new directory."""
    empty = not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir()))
    target = run_dir if empty else "NEW_DIR"
    return f"make one with `svmtrain fit -c default --out {target}`"


def unusable_run(run_dir: Path) -> str | None:
    """Why the run in run_dir has no results to read, and what to do, if it is a run that
    stopped before the end (interrupted, or diverged in its first epoch); None otherwise."""
    if (run_dir / CHECKPOINT).exists() and not (run_dir / WEIGHTS).exists():
        return (
            f"The run in {run_dir} is unfinished (it was stopped); continue it with "
            f"`svmtrain fit --resume {run_dir}`, then try again."
        )
    if diverged_weights(run_dir / WEIGHTS) and not (run_dir / METRICS).exists():
        return (
            f"The run in {run_dir} diverged in its first epoch, so it has no results; fit "
            f"again with a smaller learning rate: `svmtrain fit --config {run_dir / CONFIG} "
            "--set optim.learning_rate=LR --out NEW_DIR`."
        )
    return None


def weights_file(path: str | os.PathLike) -> Path:
    """The weights file ``path`` names: itself, or RUN_DIR/weights.npz for a run directory.

    Raises SvmtrainError for a run directory without weights (saying why: unfinished,
    diverged, or no run) and for a checkpoint.npz given as weights (naming the weights file).
    """
    path = Path(path)
    if path.is_dir():
        if (path / WEIGHTS).is_file():
            return path / WEIGHTS
        raise SvmtrainError(unusable_run(path) or run_file_fault(path / WEIGHTS, "not found"))
    if _is_checkpoint(path):
        raise SvmtrainError(
            f"{path} is a checkpoint (the training state fit --resume continues), not weights; "
            f"the run's weights are {path.parent / WEIGHTS}."
        )
    return path


def _is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a checkpoint.npz (see :func:`save_checkpoint`): its meta and W."""
    if not path.is_file():  # opening a named pipe to look would wait for a writer
        return False
    try:
        with zipfile.ZipFile(path) as npz:
            return {"meta.npy", "W.npy", "loss_history.npy"} <= set(npz.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def run_file_fault(path: Path, what: str) -> str:
    """The message for a run file that is missing or broken: the file, the fault, the fix."""
    return f"{path} {what}; {new_run_hint(path.parent)}."


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SvmtrainError(run_file_fault(path, f"cannot be read ({err})")) from None


def read_metrics(run_dir: Path) -> list[dict]:
    """The per-epoch records of run_dir/metrics.jsonl, each with numeric (or null) METRIC_KEYS.

    Raises SvmtrainError naming the file, the line and the fix when it is unreadable, not JSON,
    lacks a key, or holds no epoch.
    """
    path = run_dir / METRICS
    records = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = loads_json(line)
        except json.JSONDecodeError as err:
            raise SvmtrainError(
                run_file_fault(path, f"line {number} is not JSON ({err})")
            ) from None
        if not isinstance(record, dict):
            record = {}
        bad = [key for key in METRIC_KEYS if not _number_or_null(record.get(key, ""))]
        if bad:
            raise SvmtrainError(
                run_file_fault(path, f"line {number} lacks numbers for {', '.join(bad)}")
            )
        records.append(record)
    if not records:
        raise SvmtrainError(
            run_file_fault(path, "has no epochs (the run stopped before its first one ended)")
        )
    return records


def _number_or_null(value: Any) -> bool:
    # null is allowed: val_acc with no validation split, a loss of a diverged epoch.
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def read_loss_history(run_dir: Path) -> np.ndarray | None:
    """The (S,) per-step losses of run_dir/loss_history.npy, or None if there is no such file.

    Raises SvmtrainError when it is not a readable one-dimensional numeric .npy.
    """
    path = run_dir / LOSS_HISTORY
    if not path.exists():
        return None
    try:
        history = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SvmtrainError(run_file_fault(path, f"is not a readable .npy file ({err})")) from None
    if history.ndim != 1 or not np.issubdtype(history.dtype, np.number):
        raise SvmtrainError(
            run_file_fault(
                path, f"holds {history.dtype} of shape {history.shape}; expected (steps,)"
            )
        )
    return history


def read_test_confusion(run_dir: Path, classes: int) -> np.ndarray | None:
    """The (C, C) int64 test confusion matrix of run_dir/summary.json, or None if there is no
    summary or it has none. Raises SvmtrainError when summary.json is not JSON or its confusion
    entry is not ``classes`` x ``classes`` counts."""
    path = run_dir / SUMMARY
    if not path.exists():
        return None
    try:
        summary = loads_json(_read_text(path))
    except json.JSONDecodeError as err:
        raise SvmtrainError(run_file_fault(path, f"is not JSON ({err})")) from None
    if not isinstance(summary, dict) or summary.get("confusion") is None:
        return None
    try:
        confusion = np.asarray(summary["confusion"], dtype=np.int64)
    except (TypeError, ValueError):
        confusion = None
    if confusion is None or confusion.shape != (classes, classes) or (confusion < 0).any():
        raise SvmtrainError(
            run_file_fault(path, f"has a confusion entry that is not {classes} x {classes} counts")
        )
    return confusion
