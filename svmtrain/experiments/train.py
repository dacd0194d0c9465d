"""Mini-batch SGD for a linear classifier, and ``fit``: data, training and run directory.

:func:`train` is the loop: it touches no files and calls ``on_epoch`` after every epoch so
the caller can checkpoint. :func:`fit` wires data, preprocessing, the loop and the run
directory together, and is what ``svmtrain fit`` calls.

Reproducibility: every random draw comes from generators seeded by ``train.seed`` through
one :class:`numpy.random.SeedSequence` (separate streams for the initial W, the batch order and
the fixed train-accuracy sample). The batch-order generator's state is saved with each
checkpoint, so a resumed run draws exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from svmtrain import __version__
from svmtrain.config import Config, config_to_yaml, load_config
from svmtrain.core.losses import LOSSES, predict, reg_loss
from svmtrain.core.metrics import accuracy, confusion_matrix, per_class_report
from svmtrain.core.optim import SCHEDULES, sgd_step
from svmtrain.data import load_cifar10
from svmtrain.data.preprocess import Splits, prepare
from svmtrain.errors import ConfigError, DivergenceError, Interrupted, SvmtrainError
from svmtrain.experiments._blas import limited_threads
from svmtrain.io import runs


@dataclass
class TrainState:
    """Everything needed to continue training bit-identically, at an epoch boundary."""

    W: np.ndarray  # (C, D)
    velocity: np.ndarray  # (C, D) momentum buffer
    sampler: dict  # bit_generator state of the batch-order generator
    epoch: int = 0  # epochs finished
    step: int = 0  # updates done
    initial_loss: float | None = None  # loss of the very first batch: the divergence yardstick
    best_val_acc: float = -1.0
    best_epoch: int = 0
    best_W: np.ndarray | None = None
    epochs_since_best: int = 0
    stopped_early: bool = False
    seconds: float = 0.0  # training wall time so far
    metrics: list[dict] = field(default_factory=list)
    loss_history: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """How long a run is: updates per epoch, epochs, and updates in all."""

    steps_per_epoch: int
    epochs: int
    total_steps: int


def plan(cfg: Config, n_train: int) -> Plan:
    """Each epoch is n_train // batch_size updates (the last partial batch is dropped, and with
    shuffling it is a different one every epoch). ``train.iterations`` cuts the last epoch short."""
    batch = cfg.train.batch_size
    if batch > n_train:
        raise ConfigError(
            f"train.batch_size must be at most the {n_train} training images. Got {batch} instead."
        )
    per_epoch = n_train // batch
    if cfg.train.iterations is not None:
        total = cfg.train.iterations
        return Plan(per_epoch, math.ceil(total / per_epoch), total)
    return Plan(per_epoch, cfg.train.epochs, cfg.train.epochs * per_epoch)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for (initial W, batch order, train-accuracy sample)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def init_state(cfg: Config, num_classes: int, num_features: int) -> TrainState:
    """W = init_scale * standard normal, (num_classes, num_features) in the configured dtype."""
    init_rng, sampler, _ = _streams(cfg.train.seed)
    dtype = np.dtype(cfg.preprocess.dtype)
    W = (cfg.model.init_scale * init_rng.standard_normal((num_classes, num_features))).astype(dtype)
    return TrainState(W=W, velocity=np.zeros_like(W), sampler=sampler.bit_generator.state)


def _batches(rng: np.random.Generator, n: int, batch: int, steps: int, sampling: str) -> np.ndarray:
    """(steps, batch) row indices: without replacement from one permutation, or with it."""
    if sampling == "replacement":
        return rng.integers(0, n, size=(steps, batch))
    return rng.permutation(n)[: steps * batch].reshape(steps, batch)


def _generator(state: dict) -> np.random.Generator:
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def train(
    cfg: Config,
    splits: Splits,
    state: TrainState,
    *,
    progress: bool = True,
    on_epoch: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Run the remaining epochs of ``state`` on ``splits.X_train`` (N, D); returns ``state``.

    After every epoch ``state`` holds the epoch-boundary state and ``on_epoch(state)`` is called.
    On divergence (:class:`DivergenceError`) or Ctrl-C (KeyboardInterrupt) the partial epoch is
    rolled back first, so ``state`` is the last finished epoch and can be saved as it is.
    """
    n = len(splits.y_train)
    p = plan(cfg, n)
    o, t = cfg.optim, cfg.train
    schedule = SCHEDULES[cfg.schedule.name]
    schedule_params = {
        "step_epochs": cfg.schedule.step_epochs,
        "gamma": cfg.schedule.gamma,
        "min_lr": cfg.schedule.min_lr,
    }
    _, _, sample_rng = _streams(t.seed)
    sample = np.sort(sample_rng.choice(n, size=min(t.train_acc_samples, n), replace=False))
    X_sample, y_sample = splits.X_train[sample], splits.y_train[sample]
    bar = tqdm(
        total=p.total_steps,
        initial=state.step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    stepper = _Stepper(cfg, splits.X_train, splits.y_train, on_step=bar.update)
    try:
        while state.epoch < p.epochs and not state.stopped_early:
            started = time.perf_counter()
            lr = schedule(o.learning_rate, state.epoch, p.epochs, schedule_params)
            bar.set_description(f"epoch {state.epoch + 1}/{p.epochs}")
            rng = _generator(state.sampler)
            steps = min(p.steps_per_epoch, p.total_steps - state.step)
            batches = _batches(rng, n, t.batch_size, steps, t.sampling)
            good_W, good_velocity = state.W.copy(), state.velocity.copy()
            try:
                losses, regs, initial_loss = stepper.run(state, batches, lr)
                val_acc = accuracy(splits.y_val, predict(state.W, splits.X_val))
                epoch, step = state.epoch + 1, state.step + steps
                seconds = state.seconds + time.perf_counter() - started
                record = {
                    "epoch": epoch,
                    "step": step,
                    "loss": float(losses.mean()),
                    "data_loss": float((losses - regs).mean()),
                    "reg_loss": float(regs.mean()),
                    "train_acc": accuracy(y_sample, predict(state.W, X_sample)),
                    "val_acc": val_acc,
                    "lr": lr,
                    "seconds": round(seconds, 3),
                }
                updates = {
                    "initial_loss": initial_loss,
                    "sampler": rng.bit_generator.state,
                    "epoch": epoch,
                    "step": step,
                    "seconds": seconds,
                    "loss_history": state.loss_history + losses.tolist(),
                    "metrics": [*state.metrics, record],
                    **_best(state, val_acc, epoch, t.early_stopping, t.patience),
                }
            except BaseException:
                # Roll back to the epoch boundary: what is saved then resumes bit-identically.
                np.copyto(state.W, good_W)
                np.copyto(state.velocity, good_velocity)
                raise
            # Commit the epoch in one call: Ctrl-C lands before or after it, never inside.
            vars(state).update(updates)
            bar.set_postfix(loss=f"{losses.mean():.3f}", lr=f"{lr:.2g}", val_acc=f"{val_acc:.3f}")
            if on_epoch is not None:
                on_epoch(state)
    finally:
        bar.close()
    return state


class _Stepper:
    """The SGD steps of one epoch: gather a batch, loss and gradient, check, update.

    Where an epoch's time goes (docs/benchmarks.md): the two matrix products of the loss, then
    gathering the batch's rows (a quarter to a third of the time when done in line), then
    everything else. So:

    - Batches are gathered into two buffers reused by every step (no allocation per step),
      with ``np.take(mode="clip")``: with ``out`` and the default mode "raise", numpy gathers
      into a temporary first (as its documentation warns), which made the gather 2.5x slower.
      The indices come from a permutation of, or integers drawn in, [0, n), so clipping never
      moves one.
    - A worker thread gathers batch i + 1 while the loss of batch i runs (``np.take`` releases
      the GIL), so the gather's memory traffic runs on the second core, hidden behind the
      products.
    - The products run on one BLAS thread (:mod:`~svmtrain.experiments._blas` says why):
      the worker has the other core.

    The gathered rows are the same as ``X[idx]``, so the weights are those of the plain loop.
    """

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray, on_step: Callable[[], object]):
        self.cfg, self.X, self.y, self.on_step = cfg, X, y, on_step
        self.loss_fn = LOSSES[cfg.model.loss]
        shape = (cfg.train.batch_size, X.shape[1])
        self.buffers = (np.empty(shape, dtype=X.dtype), np.empty(shape, dtype=X.dtype))

    def run(
        self, state: TrainState, batches: np.ndarray, lr: float
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Update state.W and state.velocity in place over ``batches`` (S, B) of row indices.

        Returns the S minibatch losses, their S regularisation parts, and the initial loss
        (the first batch's loss of the whole run, the yardstick for divergence).
        """
        m, o = self.cfg.model, self.cfg.optim
        losses, regs = np.empty(len(batches)), np.empty(len(batches))
        initial = state.initial_loss
        # Leaving the with-block (also on an exception) waits for the worker's last gather.
        with (
            ThreadPoolExecutor(1, thread_name_prefix="svmtrain-gather") as worker,
            limited_threads(1),
        ):
            gathered = self._gathered(worker, batches)
            for i, (idx, Xb) in enumerate(zip(batches, gathered, strict=True)):
                loss, dW = self.loss_fn(
                    state.W, Xb, self.y[idx], m.reg, delta=m.delta, reg_bias=m.reg_bias
                )
                initial = loss if initial is None else initial
                if not math.isfinite(loss) or loss > self.cfg.train.divergence_factor * initial:
                    raise self._diverged(state, i, loss, initial, lr)
                regs[i] = reg_loss(state.W, m.reg, m.reg_bias)
                losses[i] = loss
                sgd_step(state.W, dW, state.velocity, lr, o.momentum, o.nesterov)
                self.on_step()
        return losses, regs, initial

    def _gathered(self, worker: ThreadPoolExecutor, batches: np.ndarray) -> Iterator[np.ndarray]:
        """X's rows of each batch in turn, each gathered on ``worker`` while the caller works on
        the one before. A yielded buffer is rewritten as soon as the next one is asked for."""

        def gather(i: int) -> Future:
            return worker.submit(np.take, self.X, batches[i], 0, self.buffers[i % 2], "clip")

        ahead = gather(0) if len(batches) else None
        for i in range(len(batches)):
            Xb = ahead.result()
            if i + 1 < len(batches):
                ahead = gather(i + 1)
            yield Xb

    def _diverged(
        self, state: TrainState, i: int, loss: float, initial: float, lr: float
    ) -> DivergenceError:
        base = self.cfg.optim.learning_rate
        return DivergenceError(
            f"Training diverged at epoch {state.epoch + 1}, step {state.step + i + 1}: loss "
            f"{loss:.4g} (it started at {initial:.4g}) with optim.learning_rate={base:g} "
            f"(this epoch {lr:g}). Try a smaller learning rate, e.g. "
            f"--set optim.learning_rate={base / 10:g}."
        )


def _best(state: TrainState, val_acc: float, epoch: int, early_stopping: bool, patience: int):
    """The best-so-far fields after an epoch with ``val_acc``, as a dict of TrainState updates.

    The best weights are copied only when early stopping will return them.
    """
    if val_acc > state.best_val_acc:
        return {
            "best_val_acc": val_acc,
            "best_epoch": epoch,
            "best_W": state.W.copy() if early_stopping else None,
            "epochs_since_best": 0,
        }
    since = state.epochs_since_best + 1
    return {"epochs_since_best": since, "stopped_early": early_stopping and since >= patience}


def final_weights(cfg: Config, state: TrainState) -> np.ndarray:
    """With early stopping, the best epoch's weights; otherwise the last."""
    if cfg.train.early_stopping and state.best_W is not None:
        return state.best_W
    return state.W


# --- checkpoints --------------------------------------------------------------------------

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


def _identity(cfg: Config, splits: Splits) -> dict:
    """What a resumed run must share with the run it continues: the config (less where the
    data are fetched from) and the archive's digest."""
    where = dataclasses.replace(cfg.data, dir=None, url=None, sha256=None, md5=None)
    text = config_to_yaml(dataclasses.replace(cfg, data=where))
    return {"config": hashlib.sha256(text.encode()).hexdigest(), "data": splits.data_sha256}


def save_checkpoint(run_dir: Path, state: TrainState, identity: dict) -> None:
    """checkpoint.npz: the arrays of ``state`` plus its scalars and ``identity`` as JSON."""
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

    W, velocity (and best_W) must be (classes, features) of the config's dtype.
    """
    path = run_dir / runs.CHECKPOINT
    arrays, meta = runs.load_checkpoint(path)
    again = (
        f"Start the run again with 'svmtrain fit --config {run_dir / runs.CONFIG} --out NEW_DIR'."
    )
    identity = _identity(cfg, splits)
    saved = meta.pop("identity", {})
    if saved.get("config") != identity["config"]:
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
        (len(splits.class_names), splits.X_train.shape[1]),
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


# --- fit: the whole job -------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    summary: dict


def load_splits(cfg: Config, *, progress: bool = True) -> Splits:
    """Download (or find in the cache) CIFAR-10 and preprocess it as ``cfg`` says."""
    d = cfg.data
    dataset = load_cifar10(d.dir, url=d.url, sha256=d.sha256, md5=d.md5, progress=progress)
    return prepare(dataset, cfg)


def fit(
    cfg: Config | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    splits: Splits | None = None,
) -> FitResult:
    """Train as ``cfg`` says and write the run directory; or continue the run in ``resume``.

    ``data_dir`` overrides ``data.dir`` (where the cache is, not what it holds). Nothing is
    written until the data are loaded and the config is known to fit them. Ctrl-C saves a
    checkpoint and raises :class:`Interrupted` saying how to resume; divergence saves the last
    good weights and raises :class:`DivergenceError`.
    """
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / runs.CONFIG).is_file():
            raise ConfigError(f"{run_dir} is not a run directory: it has no {runs.CONFIG}.")
        cfg = load_config(run_dir / runs.CONFIG)
    else:
        cfg = cfg if cfg is not None else load_config()
        run_dir = runs.run_dir_for(cfg, out)
    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dir=str(data_dir)))
    if splits is None:
        splits = load_splits(cfg, progress=progress)
    plan(cfg, len(splits.y_train))  # reject an impossible batch size before writing anything
    identity = _identity(cfg, splits)
    if resume is not None:
        state = load_checkpoint(run_dir, cfg, splits)
    else:
        runs.create_run_dir(run_dir)
        runs.write_config(run_dir, cfg)
        state = init_state(cfg, len(splits.class_names), splits.X_train.shape[1])

    def checkpoint(s: TrainState) -> None:
        save_checkpoint(run_dir, s, identity)
        runs.write_metrics(run_dir, s.metrics, np.asarray(s.loss_history))

    resume_hint = f"continue with: svmtrain fit --resume {run_dir}"
    try:
        train(cfg, splits, state, progress=progress, on_epoch=checkpoint)
    except KeyboardInterrupt:
        checkpoint(state)
        raise Interrupted(
            f"Interrupted after epoch {state.epoch}. The checkpoint is saved in {run_dir}; "
            f"{resume_hint}"
        ) from None
    except DivergenceError as err:
        _save_weights(run_dir, cfg, splits, state.W)
        raise DivergenceError(
            f"{err} The last good weights (epoch {state.epoch}) are in {run_dir / runs.WEIGHTS}."
        ) from None
    try:
        W = final_weights(cfg, state)
        _save_weights(run_dir, cfg, splits, W)
        summary = _summary(splits, state, W)
        runs.write_summary(run_dir, summary)
    except KeyboardInterrupt:
        raise Interrupted(
            f"Interrupted while saving the results; the checkpoint in {run_dir} is complete: "
            f"{resume_hint}"
        ) from None
    return FitResult(run_dir=run_dir, summary=summary)


def _save_weights(run_dir: Path, cfg: Config, splits: Splits, W: np.ndarray) -> None:
    runs.save_weights(
        run_dir / runs.WEIGHTS,
        runs.Weights(
            W=W,
            mean=splits.mean,
            scale=splits.scale,
            class_names=splits.class_names,
            config_yaml=config_to_yaml(cfg),
        ),
    )


def _summary(splits: Splits, state: TrainState, W: np.ndarray) -> dict:
    """summary.json's contents: final accuracies, test confusion matrix, run length, time."""
    test_pred = predict(W, splits.X_test)
    confusion = confusion_matrix(splits.y_test, test_pred, len(splits.class_names))
    return {
        "val_acc": accuracy(splits.y_val, predict(W, splits.X_val)),
        "test_acc": accuracy(splits.y_test, test_pred),
        "per_class_acc": per_class_report(confusion, splits.class_names),
        "confusion": confusion.tolist(),
        "class_names": list(splits.class_names),
        "epochs": state.epoch,
        "steps": state.step,
        "best_epoch": state.best_epoch,
        "stopped_early": state.stopped_early,
        "final_loss": state.metrics[-1]["loss"] if state.metrics else None,
        "num_train": len(splits.y_train),
        "num_val": len(splits.y_val),
        "num_test": len(splits.y_test),
        "data_sha256": splits.data_sha256,
        "wall_seconds": round(state.seconds, 3),
        "svmtrain_version": __version__,
    }
