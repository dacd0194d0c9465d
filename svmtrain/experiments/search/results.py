"""What trials gave: their results, ranked by validation accuracy (never test), and the
results files (results.csv, results.json, best.yaml), rewritten after every finished trial so
that an interrupted search keeps what it finished.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svmtrain.config import Config, save_config
from svmtrain.errors import DivergenceError, SvmtrainError
from svmtrain.experiments.search.space import LR, REG, SEED, Axis, Halving, Trial
from svmtrain.fileio import read_json
from svmtrain.io import runs
from svmtrain.io.records import cell, format_table, write_csv, write_json

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


def setting_records(results: Sequence[TrialResult]) -> list[dict]:
    """The trials of a search with --seeds, grouped by their settings but train.seed, ranked:
    one dict per setting with its rank, settings (without the seed), learning_rate, reg, the
    trial numbers and seeds of its runs, how many finished ok, and the mean, sample standard
    deviation (0.0 for one run), min and max of their val_acc; "val_acc" is the mean (what the
    settings are ranked by, highest first; a setting with a diverged or crashed run last, ties
    by the lowest trial number), "status" ok unless a run was not.
    """
    groups: dict[str, list[TrialResult]] = {}
    for r in sorted(results, key=lambda r: r.number):
        key = json.dumps({k: v for k, v in r.settings.items() if k != SEED}, sort_keys=True)
        groups.setdefault(key, []).append(r)
    records = []
    for runs_ in groups.values():
        accs = [r.val_acc for r in runs_ if r.status == OK and r.val_acc is not None]
        bad = [r.status for r in runs_ if r.status != OK]
        mean = sum(accs) / len(accs) if accs else None
        spread = (
            math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
            if len(accs) > 1
            else 0.0
            if accs
            else None
        )
        first = runs_[0]
        records.append(
            {
                "settings": {k: v for k, v in first.settings.items() if k != SEED},
                "learning_rate": first.learning_rate,
                "reg": first.reg,
                "trials": [r.number for r in runs_],
                "seeds": [r.settings.get(SEED) for r in runs_],
                "finished": len(accs),
                "val_acc": mean,
                "val_acc_std": spread,
                "val_acc_min": min(accs) if accs else None,
                "val_acc_max": max(accs) if accs else None,
                "status": bad[0] if bad else OK,
            }
        )
    records.sort(key=lambda g: (g["status"] != OK, -(g["val_acc"] or 0.0), g["trials"][0]))
    return [{"rank": position, **g} for position, g in enumerate(records, 1)]


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
    seeds: int | None = None  # --seeds: runs per setting, ranked by their mean
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

    def _best(self, ranked: Sequence[TrialResult]) -> Trial | None:
        """The trial best.yaml is made of: the best-ranked trial, or with --seeds the first run
        (the base config's seed) of the setting of the best mean."""
        if self.seeds is None:
            return best_trial(ranked, self.trials)
        settings = setting_records(self.results)
        if not settings or settings[0]["status"] != OK:
            return None
        return next(t for t in self.trials if t.number == settings[0]["trials"][0])

    def document(self) -> dict:
        """results.json: the search, the best trial and every result, ranked; with --seeds
        also "settings" (:func:`setting_records`) and "best_setting", the first of them."""
        ranked = rank(self.results)
        records = result_records(ranked)
        chosen = self._best(ranked)
        best = next((r for r in records if chosen and r["trial"] == chosen.number), None)
        seeded = {}
        if self.seeds is not None:
            settings = setting_records(self.results)
            seeded = {
                "seeds": self.seeds,
                "best_setting": settings[0] if best is not None else None,
                "settings": settings,
            }
        return {
            "selected_by": "val_acc" if self.seeds is None else "mean val_acc over seeds",
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
            **seeded,
            "results": records,
        }

    def text(self) -> str:
        """What ``svmtrain search`` prints: the ranked table (of settings with --seeds), the
        successive-halving rungs, the best trial, and where the files are."""
        document = self.document()
        if self.seeds is not None:
            return self._seeded_text(document)
        others = [a.key for a in self.axes if a.key not in (LR, REG)]

        rung_epochs = document["halving"]["rung_epochs"] if self.halving else []

        rows = [
            (
                r["rank"],
                r["trial"],
                f"{r['learning_rate']:g}",
                f"{r['reg']:g}",
                *(str(r["settings"][k]) for k in others),
                *([rung_epochs[r["rung"]]] if self.halving else []),
                cell(r["final_loss"], ".4g"),
                cell(r["train_acc"], ".4f"),
                cell(r["val_acc"], ".4f"),
                f"{r['seconds']:.1f}",
                r["status"],
            )
            for r in document["results"]
        ]
        rung = ["rung epochs"] if self.halving else []
        headers = ["rank", "trial", "lr", "reg", *others, *rung]
        headers += ["final loss", "train acc", "val acc", "seconds", "status"]
        lines = [format_table(headers, rows), ""]
        if self.halving is not None:
            rungs = ", ".join(str(e) for e in rung_epochs)
            lines.append(
                f"successive halving: rungs of {rungs} epochs; {document['runs']} trial runs, "
                f"{document['epochs_trained']} epochs in all"
            )
            lines.append(
                "ranked by the rung reached first (judged on a longer run), then by val accuracy"
            )
        best = document["best"]
        if best is not None:
            chosen = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
            at = f" at the last rung ({rung_epochs[best['rung']]} epochs)" if self.halving else ""
            lines.append(
                f"best: trial {best['trial']} ({chosen}), val accuracy {best['val_acc']:.4f}{at}"
            )
        return "\n".join([*lines, *self._where(best is not None)])

    def _where(self, best: bool) -> list[str]:
        """The text's last lines: where the results are, and how to train the best fully."""
        out, every = self.out_dir, " (every trial)" if self.seeds else ""
        lines = [f"results: {out / RESULTS_CSV}{every}, {out / RESULTS_JSON}"]
        if best:
            lines.append(f"train it fully: svmtrain fit --config {out / BEST_YAML}")
        return lines

    def _seeded_text(self, document: dict) -> str:
        """:meth:`text` with --seeds: one row per setting, its runs' mean and spread."""
        others = [a.key for a in self.axes if a.key not in (LR, REG)]
        rows = [
            (
                g["rank"],
                f"{g['trials'][0]}-{g['trials'][-1]}" if len(g["trials"]) > 1 else g["trials"][0],
                f"{g['learning_rate']:g}",
                f"{g['reg']:g}",
                *(str(g["settings"][k]) for k in others),
                f"{g['finished']}/{self.seeds}",
                cell(g["val_acc"], ".4f"),
                cell(g["val_acc_std"], ".4f"),
                cell(g["val_acc_min"], ".4f"),
                cell(g["val_acc_max"], ".4f"),
                g["status"],
            )
            for g in document["settings"]
        ]
        first = self.trials[0].config.train.seed  # the base config's: the first of every setting
        seeds = ", ".join(str(first + k) for k in range(self.seeds))
        headers = ["rank", "trials", "lr", "reg", *others, "seeds", "mean val", "std"]
        headers += ["min", "max", "status"]
        lines = [
            format_table(headers, rows),
            "",
            f"each setting trained with {self.seeds} seeds (train.seed {seeds}), ranked by the "
            "mean val accuracy; std: the sample standard deviation over the seeds",
        ]
        best = document["best_setting"]
        if best is not None:
            chosen = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
            lines.append(
                f"best: {chosen}, val accuracy {best['val_acc']:.4f} +- {best['val_acc_std']:.4f}"
                f" over {best['finished']} seeds"
            )
        return "\n".join([*lines, *self._where(best is not None)])

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
        best = self._best(ranked)
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
        finished = read_json(results_json, "search's results", SvmtrainError, "")["finished"]
    except (SvmtrainError, KeyError, TypeError):
        return None
    return finished if isinstance(finished, int) else None
