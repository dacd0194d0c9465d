"""The run directories ``fit`` wrote, listed and compared: what ``svmtrain runs`` prints.

A run's state is read from the files it holds (:mod:`svmtrain.io.runs`): finished (its
summary.json), stopped (a checkpoint and no weights: ``fit --resume`` continues it), diverged
(weights that record the epoch), or not started (its config.yaml alone). Nothing is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from svmtrain.config import Config, config_to_dict, load_config
from svmtrain.errors import ConfigError, SvmtrainError
from svmtrain.io import runs
from svmtrain.io.records import cell, format_table

FINISHED, STOPPED, DIVERGED, NOT_STARTED = "finished", "stopped", "diverged", "not started"


@dataclass(frozen=True)
class RunInfo:
    """One run directory: its path, state (FINISHED, STOPPED, DIVERGED, NOT_STARTED), config
    (None when its config.yaml cannot be read), summary.json (None unless finished) and the
    epochs metrics.jsonl records."""

    path: Path
    state: str
    config: Config | None
    summary: dict | None
    epochs: int

    def record(self) -> dict:
        """The run as ``svmtrain runs list --json`` gives it: path, state, name, loss,
        features, learning_rate, reg, epochs (done) and planned_epochs, val_acc, test_acc and
        train_seconds (None where unknown)."""
        c, s = self.config, self.summary or {}
        return {
            "path": str(self.path),
            "state": self.state,
            "name": c.output.name if c else None,
            "loss": c.model.loss if c else None,
            "features": c.features.name if c else None,
            "learning_rate": c.optim.learning_rate if c else None,
            "reg": c.model.reg if c else None,
            "epochs": s.get("epochs", self.epochs),
            "planned_epochs": c.train.epochs if c else None,
            "val_acc": s.get("val_acc"),
            "test_acc": s.get("test_acc"),
            "train_seconds": s.get("train_seconds", s.get("wall_seconds")),
        }


def read_run(path: str | os.PathLike) -> RunInfo:
    """The run in directory ``path``. Raises SvmtrainError when it is not a run directory (no
    config.yaml)."""
    path = Path(path)
    if not (path / runs.CONFIG).is_file():
        raise SvmtrainError(f"{path} is not a run directory: it has no {runs.CONFIG}.")
    try:
        config = load_config(path / runs.CONFIG)
    except ConfigError:
        config = None
    summary = _json(path / runs.SUMMARY)
    if summary is not None:
        state = FINISHED
    elif runs.diverged_weights(path / runs.WEIGHTS):
        state = DIVERGED
    elif (path / runs.CHECKPOINT).exists():
        state = STOPPED
    else:
        state = NOT_STARTED
    return RunInfo(path, state, config, summary, _epochs(path / runs.METRICS))


def find_runs(paths: Sequence[str | os.PathLike]) -> list[RunInfo]:
    """The runs ``paths`` name: each a run directory, or a directory whose subdirectories are
    runs (``runs/``, where ``fit`` puts them), those in name order (their timestamps).
    Raises SvmtrainError naming a path that does not exist or holds no run."""
    found = []
    for given in paths:
        path = Path(given)
        if (path / runs.CONFIG).is_file():
            found.append(read_run(path))
            continue
        if not path.is_dir():
            raise SvmtrainError(
                f"{path} does not exist; give a run directory or the directory holding runs "
                "(e.g. runs)."
            )
        inside = sorted(p for p in path.iterdir() if (p / runs.CONFIG).is_file())
        if not inside:
            raise SvmtrainError(
                f"{path} holds no runs (no directory with a {runs.CONFIG}); "
                f"{runs.new_run_hint(path / 'NEW_DIR')}."
            )
        found += [read_run(p) for p in inside]
    return found


def runs_text(found: Sequence[RunInfo]) -> str:
    """What ``svmtrain runs list`` prints: one row per run."""
    rows = []
    for info in found:
        r = info.record()
        planned = r["planned_epochs"]
        rows.append(
            (
                info.path.name,
                r["name"] or "?",
                r["loss"] or "?",
                r["features"] or "?",
                cell(r["learning_rate"], "g"),
                cell(r["reg"], "g"),
                f"{r['epochs']}/{planned}" if planned is not None else str(r["epochs"]),
                cell(r["val_acc"], ".4f"),
                cell(r["test_acc"], ".4f"),
                cell(r["train_seconds"], ".1f"),
                info.state,
            )
        )
    headers = ["run", "config", "loss", "features", "lr", "reg", "epochs", "val acc"]
    headers += ["test acc", "train s", "state"]
    return format_table(headers, rows)


def compare_text(found: Sequence[RunInfo]) -> str:
    """What ``svmtrain runs compare`` prints: the config keys whose values differ between the
    runs, then their results, one column per run (A, B, ... named beneath)."""
    letters = [chr(ord("A") + k) if k < 26 else str(k + 1) for k in range(len(found))]
    differ = differences(found)
    rows = [(k, *(_cell(v) for v in values)) for k, values in differ.items()]
    records = [info.record() for info in found]
    for label, key, spec in (
        ("epochs", "epochs", "d"),
        ("val acc", "val_acc", ".4f"),
        ("test acc", "test_acc", ".4f"),
        ("train s", "train_seconds", ".1f"),
    ):
        rows.append((label, *(cell(r[key], spec) for r in records)))
    rows.append(("state", *(info.state for info in found)))
    same = "" if differ else "(the configs are the same but for output.name)\n\n"
    names = "\n".join(f"{k}: {info.path}" for k, info in zip(letters, found, strict=True))
    return f"{same}{format_table(['', *letters], rows)}\n\n{names}"


def compare_document(found: Sequence[RunInfo]) -> dict:
    """``svmtrain runs compare --json``: the differing config keys (key -> value per run) and
    every run's record."""
    return {"differences": differences(found), "runs": [info.record() for info in found]}


def differences(found: Sequence[RunInfo]) -> dict[str, list]:
    """Each config key ("section.key") whose value is not the same in every run (output.name,
    the run's own name, aside), and its value in each ("?" where a config cannot be read)."""
    configs = [_flat(info.config) for info in found]
    keys = sorted({k for c in configs for k in c})
    return {
        k: [c.get(k, "?") for c in configs]
        for k in keys
        if k != "output.name" and len({json.dumps(c.get(k, "?")) for c in configs}) > 1
    }


def _flat(cfg: Config | None) -> dict:
    if cfg is None:
        return {}
    return {
        f"{section}.{key}": value
        for section, values in config_to_dict(cfg).items()
        for key, value in values.items()
    }


def _cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _epochs(path: Path) -> int:
    """Epoch lines in metrics.jsonl (0 without the file)."""
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        return 0
