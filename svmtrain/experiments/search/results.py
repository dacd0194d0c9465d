"""What trials gave: their results, ranked by validation accuracy (never test), and the
results files (results.csv, results.json, best.yaml), rewritten after every finished trial so
that an interrupted search keeps what it finished.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svmtrain.config import Config, save_config
from svmtrain.errors import DivergenceError, SvmtrainError
from svmtrain.experiments.search.space import LR, REG, Axis, Halving, Trial
from svmtrain.fileio import loads_json
from svmtrain.io import runs
from svmtrain.io.records import format_table, write_csv, write_json

RESULTS_CSV, RESULTS_JSON, BEST_YAML = "results.csv", "results.json", "best.yaml"
_WRITTEN = (RESULTS_CSV, RESULTS_JSON, BEST_YAML)  # every file a search writes in its directory
OK, DIVERGED, CRASHED = "ok", "diverged", "crashed"


@dataclass(frozen=True)
class TrialResult:
    """What one trial gave. Accuracies are on the train sample and the validation split."""

    number: int
    settings: dict[str, Any]  # searched key -> its value as the config holds it
    learning_rate: float
    reg: float
    status: str  # OK, DIVERGED, or CRASHED (its worker died)
    final_loss: float | None  # mean minibatch loss of the last epoch; None unless OK
    train_acc: float | None  # of the kept weights (the best epoch's with early stopping)
    val_acc: float | None
    epochs: int  # epochs finished
    seconds: float  # wall time, the only field that depends on the machine and --jobs
    message: str = ""  # why it diverged or crashed, or that it ran again
    rung: int = 0  # successive halving: the last rung the trial ran in (0: the first)
    retries: int = 0  # times it ran again because its worker died (Dask)


def rank(results: Sequence[TrialResult]) -> list[TrialResult]:
    """Diverged and crashed trials last; then the highest rung first (successive halving);
    then the highest validation accuracy; ties by trial number."""
    return sorted(
        results,
        key=lambda r: (
            r.status != OK,
            -r.rung,
            -(r.val_acc if r.val_acc is not None else 0.0),
            r.number,
        ),
    )


def result_records(ranked: Sequence[TrialResult]) -> list[dict]:
    """One flat dict per trial, in rank order, with its rank (1 = best)."""
    return [
        {
            "rank": position,
            "trial": r.number,
            "settings": r.settings,
            "learning_rate": r.learning_rate,
            "reg": r.reg,
            "status": r.status,
            "final_loss": r.final_loss,
            "train_acc": r.train_acc,
            "val_acc": r.val_acc,
            "epochs": r.epochs,
            "seconds": round(r.seconds, 3),
            "message": r.message,
            "rung": r.rung,
            "retries": r.retries,
        }
        for position, r in enumerate(ranked, 1)
    ]


def best_trial(ranked: Sequence[TrialResult], trials: Sequence[Trial]) -> Trial | None:
    """The trial ranked first, if it did not diverge."""
    if not ranked or ranked[0].status != OK:
        return None
    return next(t for t in trials if t.number == ranked[0].number)


@dataclass
class Search:
    """A search in progress or done: its trials, what finished, where the results go."""

    trials: list[Trial]
    axes: list[Axis]
    out_dir: Path
    jobs: int
    epochs: int | None  # the --epochs override, if any
    halving: Halving | None = None
    results: list[TrialResult] = field(default_factory=list)  # each trial's latest
    interrupted: bool = False
    runs: int = 0  # trial runs finished (a trial runs once per rung it reaches)
    epochs_trained: int = 0  # over every run: what the search cost

    def record(self, result: TrialResult) -> None:
        """Add a finished run; it replaces the same trial's result from an earlier rung."""
        self.results = [r for r in self.results if r.number != result.number]
        self.results.append(result)
        self.runs += 1
        self.epochs_trained += result.epochs

    def rung_epochs(self) -> list[int | None]:
        """Each rung's epochs; [None] (one rung, the trials' own length) without halving."""
        if self.halving is None:
            return [None]
        return self.halving.rung_epochs(len(self.trials), self.trials[0].config.train.epochs)

    def planned_runs(self) -> int:
        """Trial runs the search makes if nothing diverges."""
        count, total = len(self.trials), 0
        for _ in self.rung_epochs():
            total += count
            count = self.halving.survivors(count) if self.halving else count
        return total

    def document(self) -> dict:
        """results.json: the search, the best trial and every result, ranked."""
        records = result_records(rank(self.results))
        best = records[0] if records and records[0]["status"] == OK else None
        return {
            "selected_by": "val_acc",
            "searched": [a.key for a in self.axes],
            "epochs_per_trial": self.epochs,
            "trials": len(self.trials),
            "finished": sum(r.status != CRASHED for r in self.results),
            "interrupted": self.interrupted,
            "jobs": self.jobs,
            "halving": None
            if self.halving is None
            else {
                "reduction_factor": self.halving.reduction_factor,
                "min_epochs": self.halving.min_epochs,
                "rung_epochs": self.rung_epochs(),
            },
            "runs": self.runs,
            "epochs_trained": self.epochs_trained,
            "best": best,
            "best_config": str(self.out_dir / BEST_YAML) if best else None,
            "results": records,
        }

    def text(self) -> str:
        """What ``svmtrain search`` prints: the ranked table, the successive-halving rungs, the
        best trial, and where the files are."""
        document = self.document()
        others = [a.key for a in self.axes if a.key not in (LR, REG)]

        def number(value, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        rows = [
            (
                r["rank"],
                r["trial"],
                f"{r['learning_rate']:g}",
                f"{r['reg']:g}",
                *(str(r["settings"][k]) for k in others),
                *([r["rung"]] if self.halving else []),
                number(r["final_loss"], ".4g"),
                number(r["train_acc"], ".4f"),
                number(r["val_acc"], ".4f"),
                f"{r['seconds']:.1f}",
                r["status"],
            )
            for r in document["results"]
        ]
        headers = ["rank", "trial", "lr", "reg", *others, *(["rung"] if self.halving else [])]
        headers += ["final loss", "train acc", "val acc", "seconds", "status"]
        lines = [format_table(headers, rows), ""]
        if self.halving is not None:
            rungs = ", ".join(str(e) for e in document["halving"]["rung_epochs"])
            lines.append(
                f"successive halving: rungs of {rungs} epochs; {document['runs']} trial runs, "
                f"{document['epochs_trained']} epochs in all"
            )
        best = document["best"]
        if best is not None:
            chosen = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
            lines.append(
                f"best: trial {best['trial']} ({chosen}), val accuracy {best['val_acc']:.4f}"
            )
        out = self.out_dir
        lines.append(f"results: {out / RESULTS_CSV}, {out / RESULTS_JSON}")
        if best is not None:
            lines.append(f"train it fully: svmtrain fit --config {out / BEST_YAML}")
        return "\n".join(lines)

    def require_best(self) -> None:
        """Raises :class:`~svmtrain.errors.DivergenceError` if no trial succeeded (every one
        diverged or crashed), so there is no best.yaml."""
        if not any(r.status == OK for r in self.results):
            raise DivergenceError(
                f"Every trial diverged, so there is no best.yaml (results in {self.out_dir}). "
                "Search smaller learning rates."
            )

    def write(self) -> None:
        """Rewrite results.csv, results.json and best.yaml (once a trial succeeded), atomically."""
        ranked = rank(self.results)
        records = result_records(ranked)
        keys = [a.key for a in self.axes if a.key not in (LR, REG)]
        columns = ["rank", "trial", "learning_rate", "reg", *keys]
        columns += ["rung"] if self.halving else []
        columns += ["final_loss", "train_acc", "val_acc", "epochs", "seconds", "status", "message"]
        rows = [{**r, **{k: r["settings"][k] for k in keys}} for r in records]
        write_csv(self.out_dir / RESULTS_CSV, columns, rows)
        write_json(self.out_dir / RESULTS_JSON, self.document())
        best = best_trial(ranked, self.trials)
        if best is not None:
            save_config(best.full_config, self.out_dir / BEST_YAML)


def search_dir(cfg: Config, out: str | os.PathLike | None) -> Path:
    """``out``, or ``<output.dir>/<timestamp>-search``, not created yet. Refuses a directory
    with a search's results, unless that search finished no trial (interrupted at once): it is
    overwritten. Refuses any other non-empty directory: search never overwrites files it did
    not write. Raises SvmtrainError."""
    path = Path(out) if out is not None else runs.default_dir(cfg, "search")
    if (path / RESULTS_JSON).exists() and _finished_trials(path / RESULTS_JSON) != 0:
        raise SvmtrainError(f"{path} already holds a search's results; choose another --out.")
    others = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if others and not ((path / RESULTS_JSON).exists() and set(others) <= set(_WRITTEN)):
        raise SvmtrainError(
            f"{path} is not empty ({runs.listing(others)}) and holds no search, so search would "
            "overwrite files it did not write. Choose a new or empty directory with --out."
        )
    return path


def new_search_dir(cfg: Config, out: str | os.PathLike | None) -> Path:
    """:func:`search_dir`, created."""
    path = search_dir(cfg, out)
    runs.create_run_dir(path)
    return path


def _finished_trials(results_json: Path) -> int | None:
    """How many trials results.json says finished; None if it cannot be read as ours."""
    try:
        finished = loads_json(results_json.read_text())["finished"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return finished if isinstance(finished, int) else None
