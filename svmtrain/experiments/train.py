"""Mini-batch SGD for a linear classifier: the loop, its fast stepper, and the run's length.

:func:`train` is the loop: it touches no files and calls ``on_epoch`` after every epoch so the
caller can checkpoint (:mod:`svmtrain.experiments.fit` does, for ``svmtrain fit``).

Reproducibility: every random draw comes from generators seeded by ``train.seed`` through
:func:`~svmtrain.experiments.common.random_streams` (separate streams for the initial W, the
batch order and the fixed train-accuracy sample). The batch-order generator's state is part of
:class:`TrainState`, so a resumed run draws exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from svmtrain.config import Config
from svmtrain.core.blas import limited_threads
from svmtrain.core.losses import LOSSES, reg_loss
from svmtrain.core.metrics import accuracy
from svmtrain.core.optim import SCHEDULES, sgd_step
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ConfigError
from svmtrain.experiments.common import divergence_error, predict_rows, random_streams
from svmtrain.experiments.pixel_steps import PixelStepper


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


def _streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for (initial W, batch order, train-accuracy sample)."""
    return random_streams(seed, 3)


def init_state(cfg: Config, num_classes: int, num_features: int) -> TrainState:
    """W = init_scale * standard normal, (num_classes, num_features) in the configured dtype."""
    init_rng, sampler, _ = _streams(cfg.train.seed)
    dtype = np.dtype(cfg.preprocess.dtype)
    W = (cfg.model.init_scale * init_rng.standard_normal((num_classes, num_features))).astype(dtype)
    return TrainState(W=W, velocity=np.zeros_like(W), sampler=sampler.bit_generator.state)


def batch_indices(
    rng: np.random.Generator, n: int, batch: int, steps: int, sampling: str
) -> np.ndarray:
    """(steps, batch) row indices into n rows, drawn with ``rng``: ``sampling`` "shuffle" takes
    them without replacement from one permutation (steps * batch <= n), "replacement" with it."""
    if sampling == "replacement":
        return rng.integers(0, n, size=(steps, batch))
    return rng.permutation(n)[: steps * batch].reshape(steps, batch)


def _generator(state: dict) -> np.random.Generator:
    """A Generator continuing from a saved ``bit_generator.state`` dict."""
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
    """Run the remaining epochs of ``state`` on ``splits.X_train``; returns ``state``.

    Raw pixels train with :class:`~svmtrain.experiments.pixel_steps.PixelStepper` (uint8 until
    the batch), design matrices with :class:`Stepper`.

    After every epoch ``state`` holds the epoch-boundary state and ``on_epoch(state)`` is called.
    On divergence (:class:`DivergenceError`) or Ctrl-C (KeyboardInterrupt) the partial epoch is
    rolled back first, so ``state`` is the last finished epoch and can be saved as it is.
    """
    n = len(splits.y_train)
    p = plan(cfg, n)
    o, t = cfg.optim, cfg.train
    schedule = SCHEDULES[cfg.schedule.name]
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
    if splits.pixels:
        stepper = PixelStepper(
            cfg,
            splits.X_train,
            splits.y_train,
            splits.transform,
            len(splits.class_names),
            on_step=bar.update,
        )
    else:
        stepper = Stepper(cfg, splits.X_train, splits.y_train, on_step=bar.update)
    try:
        while state.epoch < p.epochs and not state.stopped_early:
            started = time.perf_counter()
            lr = schedule(o.learning_rate, state.epoch, p.epochs, cfg.schedule)
            bar.set_description(f"epoch {state.epoch + 1}/{p.epochs}")
            rng = _generator(state.sampler)
            steps = min(p.steps_per_epoch, p.total_steps - state.step)
            batches = batch_indices(rng, n, t.batch_size, steps, t.sampling)
            good_W, good_velocity = state.W.copy(), state.velocity.copy()
            try:
                losses, regs, initial_loss = stepper.run(state, batches, lr)
                val_acc = accuracy(splits.y_val, predict_rows(splits, state.W, splits.X_val))
                epoch, step = state.epoch + 1, state.step + steps
                seconds = state.seconds + time.perf_counter() - started
                record = {
                    "epoch": epoch,
                    "step": step,
                    "loss": float(losses.mean()),
                    "data_loss": float((losses - regs).mean()),
                    "reg_loss": float(regs.mean()),
                    "train_acc": accuracy(y_sample, predict_rows(splits, state.W, X_sample)),
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


class Stepper:
    """The SGD steps of one epoch over X (N, D) and y (N,): gather a batch, loss and gradient,
    divergence check, update.

    Batches are gathered with ``np.take(mode="clip")`` into two buffers reused by every step
    (the indices lie in [0, N), so clipping never moves one), on a worker thread one batch
    ahead of the loss, while the products run on one BLAS thread (see
    :mod:`~svmtrain.core.blas`; the measurements behind this are in
    docs/benchmarks.md). The gathered rows equal ``X[idx]``, so the weights are those of the
    plain loop, to float32 rounding. ``on_step()`` is called after every update.
    """

    def __init__(self, cfg: Config, X: np.ndarray, y: np.ndarray, on_step: Callable[[], object]):
        self.cfg, self.X, self.y, self.on_step = cfg, X, y, on_step
        self.loss_fn = LOSSES[cfg.model.loss]
        self.loss_options = {"reg_bias": cfg.model.reg_bias, **self.loss_fn.options(cfg.model)}
        shape = (cfg.train.batch_size, X.shape[1])
        self.buffers = (np.empty(shape, dtype=X.dtype), np.empty(shape, dtype=X.dtype))

    def run(
        self, state: TrainState, batches: np.ndarray, lr: float
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Update state.W and state.velocity in place over ``batches`` (S, B) of row indices,
        with learning rate ``lr``.

        Returns the (S,) minibatch losses, their (S,) regularisation parts, and the initial
        loss (the first batch's loss of the whole run, the yardstick for divergence).
        Raises :class:`DivergenceError` when a loss is not finite or exceeds
        ``train.divergence_factor`` times the initial loss; W and velocity are then mid-epoch.
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
                loss, dW = self.loss_fn(state.W, Xb, self.y[idx], m.reg, **self.loss_options)
                initial = loss if initial is None else initial
                if not math.isfinite(loss) or loss > self.cfg.train.divergence_factor * initial:
                    raise divergence_error(self.cfg, state, i, loss, initial, lr)
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
