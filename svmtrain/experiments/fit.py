"""``fit``, the whole job of ``svmtrain fit``: load and prepare the data, train, evaluate, and
write the run directory (:mod:`svmtrain.io.runs` describes it)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svmtrain import __version__
from svmtrain.config import Config, config_file_text, config_to_yaml, load_config
from svmtrain.core.metrics import accuracy
from svmtrain.data.preprocess import Splits
from svmtrain.errors import (
    ConfigError,
    DivergenceError,
    Interrupted,
    SigTerm,
    SvmtrainError,
    Terminated,
)
from svmtrain.experiments.checkpoints import (
    load_checkpoint,
    run_identity,
    save_checkpoint,
)
from svmtrain.experiments.common import load_splits, predict_rows, sigterm_as_interrupt
from svmtrain.experiments.evaluate import classification_metrics
from svmtrain.experiments.train import TrainState, final_weights, init_state, optimizer, train
from svmtrain.fileio import read_json
from svmtrain.io import runs
from svmtrain.io.plots import plot_run, require_matplotlib
from svmtrain.io.records import plural
from svmtrain.model import LinearModel, kept_after_divergence


@dataclass(frozen=True)
class FitResult:
    """Where the run was written, its summary.json contents, and the pictures drawn in it.

    summary["train_seconds"] is the training time of every epoch (over resumes too);
    summary["wall_seconds"] the whole ``fit`` call's, from its start to the summary (data,
    features, training, evaluation), the resumed call's alone after a --resume."""

    run_dir: Path
    summary: dict
    pictures: tuple[Path, ...] = ()
    already_finished: bool = False  # --resume of a run that had finished: nothing was trained

    def text(self) -> str:
        """The line ``svmtrain fit`` prints: accuracies, run length, time, and the run dir
        (after a note when the run had already finished)."""
        s = self.summary
        note = (
            f"The run in {self.run_dir} had already finished; nothing to resume. Its result:\n"
            if self.already_finished
            else ""
        )
        return note + (
            f"test accuracy {s['test_acc']:.4f}  val accuracy {s['val_acc']:.4f}  "
            f"({plural(s['epochs'], 'epoch')}, {plural(s['steps'], 'step')}, "
            f"{_seconds(s)})  -> {self.run_dir}"
        )


def _seconds(summary: dict) -> str:
    """The time in fit's line, e.g. "2.7 s training, 3.5 s in all" (a summary of svmtrain 0.1.0
    has the training's alone, as wall_seconds)."""
    if "train_seconds" not in summary:
        return f"{summary['wall_seconds']:.1f} s training"
    whole = "since the resume" if summary.get("resumed") else "in all"
    return f"{summary['train_seconds']:.1f} s training, {summary['wall_seconds']:.1f} s {whole}"


def fit(
    cfg: Config | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    splits: Splits | None = None,
    plot: bool = False,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Train as ``cfg`` says (None: the built-in defaults) and write the run directory ``out``
    (None: ``<output.dir>/<timestamp>-<output.name>``); or continue the run in ``resume``.

    ``data_dir`` overrides ``data.dir`` (where the cache is, not what it holds); ``splits``
    replaces loading the data (the caller's own preprocessed splits). Nothing is written until
    the data are loaded and the config is known to fit them; ``out`` must be new, empty, or
    the start of a run of the same config (its config.yaml alone). The run directory is locked
    for the whole run (:func:`svmtrain.io.runs.locked`). ``plot``: then draw the run's
    pictures (:func:`svmtrain.io.plots.plot_run`); without matplotlib that fails first, before
    any work, with :class:`~svmtrain.errors.PlotUnavailable`. ``log`` receives a line per
    phase of the work before training (a feature build: what it needs, then each phase).
    Raises :class:`Interrupted` on Ctrl-C and :class:`Terminated` on SIGTERM or SIGHUP (in the main
    thread), after saving a checkpoint once training has started (the message says what was
    kept and how to resume); :class:`DivergenceError` on divergence, after saving the last good
    weights; :class:`ConfigError` or :class:`~svmtrain.errors.SvmtrainError` for a config that
    does not fit the data or a run directory that cannot be used or is in use.
    """
    if plot:
        require_matplotlib()  # say so now, not after the training
    started = time.perf_counter()
    with sigterm_as_interrupt():
        try:
            result = _fit(cfg, out, resume, data_dir, progress, splits, started, log)
        except SigTerm as stop:
            raise Terminated(
                f"Stopped by {stop.name} before training started; there is nothing to resume.",
                stop.signum,
            ) from None
    if plot:
        return dataclasses.replace(result, pictures=tuple(plot_run(result.run_dir)))
    return result


def _fit(
    cfg: Config | None,
    out: str | Path | None,
    resume: str | Path | None,
    data_dir: str | Path | None,
    progress: bool,
    splits: Splits | None,
    started: float,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """:func:`fit` without the SIGTERM handler and the pictures; ``started``: its
    ``time.perf_counter()`` at the start."""
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / runs.CONFIG).is_file():
            raise ConfigError(f"{run_dir} is not a run directory: it has no {runs.CONFIG}.")
        if (run_dir / runs.SUMMARY).exists():
            return _finished(run_dir)
        cfg = load_config(run_dir / runs.CONFIG)
    else:
        cfg = cfg if cfg is not None else load_config()
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dir=str(data_dir)))
    if resume is None:
        run_dir = _new_run_dir(cfg, out)
    if splits is None:
        splits = load_splits(cfg, progress=progress, log=log)
    optimizer(cfg).plan(len(splits.y_train))  # reject an impossible plan before writing
    if resume is None:
        runs.create_run_dir(run_dir)
    with runs.locked(run_dir):
        try:
            if resume is None:
                _new_run_dir(cfg, run_dir)  # again, now that no other fit can write it
                runs.write_config(run_dir, cfg)
            resumed = resume is not None and not _only_config(run_dir)
            if resumed:
                state = load_checkpoint(run_dir, cfg, splits)
            else:
                state = init_state(cfg, len(splits.class_names), splits.num_features)
        except KeyboardInterrupt as stop:
            raise _stopped(
                stop,
                f"before training started. {run_dir} holds the run's config; start it "
                "with: {resume}",
                run_dir,
            ) from None
        clock = (started, resumed)
        return _train_and_write(cfg, splits, state, run_dir, progress, clock)


def _only_config(run_dir: Path) -> bool:
    """Whether run_dir holds the start of a run and nothing more: its config.yaml (a run stopped
    before its first checkpoint), which --resume then trains from the start."""
    return {p.name for p in run_dir.iterdir()} <= {runs.CONFIG, runs.LOCK}


def _finished(run_dir: Path) -> FitResult:
    """The result of the finished run in run_dir, read back, for a --resume with nothing left."""
    try:
        summary = read_json(run_dir / runs.SUMMARY, "run summary", SvmtrainError, "")
        FitResult(run_dir, summary).text()
    except (SvmtrainError, ValueError, KeyError, TypeError):
        raise SvmtrainError(
            f"{run_dir / runs.SUMMARY} is not a readable summary, so the run cannot be resumed. "
            f"{runs.restart_hint(run_dir)}"
        ) from None
    return FitResult(run_dir, summary, already_finished=True)


def _new_run_dir(cfg: Config, out: str | Path | None) -> Path:
    """:func:`runs.run_dir_for`, and a config.yaml already there must be the very file fit
    writes for this config (the start of this run), not a file of the user's, however alike."""
    run_dir = runs.run_dir_for(cfg, out)
    path = run_dir / runs.CONFIG
    if path.exists():
        try:
            same = path.read_text(encoding="utf-8") == config_file_text(cfg)
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            raise SvmtrainError(
                f"{path} is not the config.yaml fit writes for this config (a file of yours, or "
                "another run's config); fit would overwrite it. Choose a new or empty directory "
                "with --out."
            )
    return run_dir


def _train_and_write(
    cfg: Config,
    splits: Splits,
    state: TrainState,
    run_dir: Path,
    progress: bool,
    clock: tuple[float, bool],
) -> FitResult:
    """Train ``state`` on, checkpointing every epoch, then write the weights and summary.
    ``clock``: when the fit call started (``time.perf_counter()``), and whether it resumed."""
    identity = run_identity(cfg, splits)

    def checkpoint(s: TrainState) -> None:
        save_checkpoint(run_dir, s, identity)
        runs.write_metrics(run_dir, s.metrics, np.asarray(s.loss_history))

    resume_hint = "continue with: {resume}"
    try:
        train(cfg, splits, state, progress=progress, on_epoch=checkpoint)
    except KeyboardInterrupt as stop:
        checkpoint(state)
        raise _stopped(
            stop,
            f"after epoch {state.epoch}. The checkpoint is saved in {run_dir}; " + resume_hint,
            run_dir,
        ) from None
    except DivergenceError as err:
        _save_weights(run_dir, cfg, splits, state.W, diverged_in_epoch=state.epoch + 1)
        raise DivergenceError(
            f"{err} {run_dir / runs.WEIGHTS} keeps {kept_after_divergence(state.epoch + 1)}."
        ) from None
    try:
        W = final_weights(cfg, state)
        _save_weights(run_dir, cfg, splits, W)
        started, resumed = clock
        summary = run_summary(splits, state, W)
        summary["wall_seconds"] = round(time.perf_counter() - started, 3)
        if resumed:
            summary["resumed"] = True
        runs.write_summary(run_dir, summary)
    except KeyboardInterrupt as stop:
        raise _stopped(
            stop,
            f"while saving the results; the checkpoint in {run_dir} is complete: " + resume_hint,
            run_dir,
        ) from None
    return FitResult(run_dir=run_dir, summary=summary)


def _stopped(stop: KeyboardInterrupt, what: str, run_dir: Path) -> Interrupted:
    """The error to raise for a Ctrl-C, SIGTERM or SIGHUP: "Interrupted" (or "Stopped by
    SIGTERM") and then ``what``, with the exit code of that stop; a "{resume}" in ``what``
    says how to resume the run in ``run_dir`` (see :class:`Interrupted`)."""
    if isinstance(stop, SigTerm):
        return Terminated(f"Stopped by {stop.name} {what}", stop.signum, resume=run_dir)
    return Interrupted(f"Interrupted {what}", resume=run_dir)


def _save_weights(
    run_dir: Path,
    cfg: Config,
    splits: Splits,
    W: np.ndarray,
    diverged_in_epoch: int | None = None,
) -> None:
    """run_dir/weights.npz: the model, W (C, D) with the splits' transform, class names, loss
    and ``cfg``."""
    model = LinearModel(
        W=W,
        transform=splits.transform,
        class_names=splits.class_names,
        loss=cfg.model.loss,
        config_yaml=config_to_yaml(cfg),
        diverged_in_epoch=diverged_in_epoch,
    )
    model.save(run_dir / runs.WEIGHTS)


def run_summary(splits: Splits, state: TrainState, W: np.ndarray) -> dict:
    """summary.json's contents for weights W (C, D) after ``state``: validation accuracy, the
    test metrics of :func:`classification_metrics` (as test_acc, per_class_acc, confusion,
    class_names), run length, data identity and training time (train_seconds; :func:`fit`
    adds the whole call's wall_seconds)."""
    test_pred = predict_rows(splits, W, splits.X_test)
    test = classification_metrics(splits.y_test, test_pred, splits.class_names)
    return {
        "val_acc": accuracy(splits.y_val, predict_rows(splits, W, splits.X_val)),
        "test_acc": test["accuracy"],
        "per_class_acc": test["per_class_acc"],
        "confusion": test["confusion"],
        "class_names": test["class_names"],
        "epochs": state.epoch,
        "steps": state.step,
        "best_epoch": state.best_epoch,
        "stopped_early": state.stopped_early,
        "final_loss": state.metrics[-1]["loss"] if state.metrics else None,
        "num_train": len(splits.y_train),
        "num_val": len(splits.y_val),
        "num_test": len(splits.y_test),
        "data_sha256": splits.data_sha256,
        "train_seconds": round(state.seconds, 3),
        "svmtrain_version": __version__,
    }
