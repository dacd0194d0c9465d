"""The training loop, the same for every optimiser: rounds (SGD: epochs; L-BFGS: iterations)
of the optimiser ``optim.name`` names, with validation, best weights and early stopping.

:func:`train` touches no files and calls ``on_epoch`` after every round so the caller can
checkpoint (:mod:`svmtrain.experiments.fit` does, for ``svmtrain fit``), and ``on_step`` after
every update (a progress hook; tests stop a run there as Ctrl-C would).

Reproducibility: every random draw comes from generators seeded by ``train.seed`` through
:func:`~svmtrain.experiments.common.random_streams` (separate streams for the initial W, the
batch order and the fixed train-accuracy sample). The batch-order generator's state is part of
:class:`TrainState`, so a resumed run draws exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from svmtrain.config import Config
from svmtrain.core.losses import LOSSES
from svmtrain.core.metrics import accuracy
from svmtrain.core.objective import AffineRows, Objective, take_rows
from svmtrain.core.optimizers import OPTIMIZERS, Optimizer, Progress
from svmtrain.data.preprocess import Splits
from svmtrain.experiments.common import predict_rows, random_streams
from svmtrain.progress import tqdm


@dataclass
class TrainState:
    """Everything needed to continue training bit-identically, at a round boundary."""

    W: np.ndarray  # (C, D)
    optimizer: dict[str, np.ndarray]  # the optimiser's state (SGD: the momentum buffer, ...)
    sampler: dict  # bit_generator state of the batch-order generator
    epoch: int = 0  # rounds finished
    step: int = 0  # updates done
    best_val_acc: float = -1.0
    best_epoch: int = 0
    best_W: np.ndarray | None = None
    epochs_since_best: int = 0
    stopped_early: bool = False
    seconds: float = 0.0  # training wall time so far
    metrics: list[dict] = field(default_factory=list)
    loss_history: list[float] = field(default_factory=list)


StepHook = Callable[["TrainState", int], object]
_STEP_HOOKS: list[StepHook] = []


@contextmanager
def step_hook(hook: StepHook) -> Iterator[None]:
    """Within the block, ``hook(state, updates)`` is called after every update of every run in
    this process (also those ``svmtrain fit`` starts), as :func:`train`'s ``on_step`` is. A
    hook may raise KeyboardInterrupt (or send SIGTERM) to stop the run there, as Ctrl-C would."""
    _STEP_HOOKS.append(hook)
    try:
        yield
    finally:
        _STEP_HOOKS.remove(hook)


def optimizer(cfg: Config) -> Optimizer:
    """The optimiser ``cfg.optim.name`` names, configured by ``cfg``."""
    return OPTIMIZERS[cfg.optim.name](cfg)


def _streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for (initial W, batch order, train-accuracy sample)."""
    return random_streams(seed, 3)


def init_state(cfg: Config, num_classes: int, num_features: int) -> TrainState:
    """W = init_scale * standard normal, (num_classes, num_features) in the configured dtype."""
    init_rng, sampler, _ = _streams(cfg.train.seed)
    dtype = np.dtype(cfg.preprocess.dtype)
    W = (cfg.model.init_scale * init_rng.standard_normal((num_classes, num_features))).astype(dtype)
    return TrainState(W, optimizer(cfg).init_state(W), sampler.bit_generator.state)


def objective(cfg: Config, splits: Splits) -> Objective:
    """The training objective of ``cfg.model`` on ``splits``' training split: its raw rows with
    the affine map folded (no float copy)."""
    rows = AffineRows(splits.X_train, splits.mean, splits.scale)
    m, loss = cfg.model, LOSSES[cfg.model.loss]
    return Objective(
        loss,
        rows,
        splits.y_train,
        reg=m.reg,
        reg_bias=m.reg_bias,
        options=loss.options(m),
        num_classes=len(splits.class_names),
    )


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
    on_step: StepHook | None = None,
) -> TrainState:
    """Run the remaining rounds of ``state`` on ``splits.X_train``; returns ``state``.

    After every round ``state`` holds the round-boundary state and ``on_epoch(state)`` is
    called; after every update ``on_step(state, updates)``, with ``state`` still at the last
    boundary and ``updates`` the updates done in this round so far. On divergence
    (:class:`DivergenceError`) or Ctrl-C (KeyboardInterrupt, also when raised by a hook) the
    partial round is rolled back first, so ``state`` is the last finished round and can be
    saved as it is.
    """
    opt, target = optimizer(cfg), objective(cfg, splits)
    rounds, total = opt.plan(target.n)
    t = cfg.train
    _, _, sample_rng = _streams(t.seed)
    n = target.n
    sample = np.sort(sample_rng.choice(n, size=min(t.train_acc_samples, n), replace=False))
    X_sample, y_sample = take_rows(splits.X_train, sample), splits.y_train[sample]
    bar = tqdm(
        total=total,
        initial=state.step,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    updates, hooks = [0], [h for h in (on_step, *_STEP_HOOKS) if h is not None]

    def hook() -> None:
        updates[0] += 1
        bar.update()
        for h in hooks:
            h(state, updates[0])

    try:
        while (
            state.epoch < rounds and not state.stopped_early and not opt.finished(state.optimizer)
        ):
            started = time.perf_counter()
            bar.set_description(f"{opt.round_name} {state.epoch + 1}/{rounds}")
            rng = _generator(state.sampler)
            good_W = state.W.copy()
            good = {k: v.copy() for k, v in state.optimizer.items()}
            updates[0] = 0
            try:
                done = Progress(state.epoch, state.step)
                fields, losses = opt.run_round(target, state.W, state.optimizer, done, rng, hook)
                val_acc = accuracy(splits.y_val, predict_rows(splits, state.W, splits.X_val))
                epoch, step = state.epoch + 1, state.step + len(losses)
                seconds = state.seconds + time.perf_counter() - started
                record = {
                    "epoch": epoch,
                    "step": step,
                    **fields,
                    "train_acc": accuracy(y_sample, predict_rows(splits, state.W, X_sample)),
                    "val_acc": val_acc,
                    "seconds": round(seconds, 3),
                }
                changes = {
                    "sampler": rng.bit_generator.state,
                    "epoch": epoch,
                    "step": step,
                    "seconds": seconds,
                    "loss_history": state.loss_history + losses.tolist(),
                    "metrics": [*state.metrics, record],
                    **_best(state, val_acc, epoch, t.early_stopping, t.patience),
                }
            except BaseException:
                # Roll back to the round boundary: what is saved then resumes bit-identically.
                np.copyto(state.W, good_W)
                for k, v in good.items():
                    np.copyto(state.optimizer[k], v)
                raise
            # Commit the round in one call: Ctrl-C lands before or after it, never inside.
            vars(state).update(changes)
            bar.set_postfix(loss=f"{fields['loss']:.4g}", val_acc=f"{val_acc:.3f}")
            if on_epoch is not None:
                on_epoch(state)
    finally:
        bar.close()
    return state


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
