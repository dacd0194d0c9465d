"""Mini-batch SGD: plain, momentum or Nesterov momentum (CS231n notes), with a learning-rate
schedule per epoch. A round is an epoch of ``train.batch_size`` batches; the state is the
momentum buffer and the first batch's loss (the yardstick for divergence)."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import closing
from typing import Protocol

import numpy as np

from svmtrain.core.losses import reg_loss
from svmtrain.core.objective import Objective
from svmtrain.core.optimizers.base import Optimizer, Progress, State
from svmtrain.errors import ConfigError, DivergenceError


class ScheduleParams(Protocol):
    """What a schedule reads (``svmtrain.config.ScheduleConfig`` has these attributes)."""

    step_epochs: int
    gamma: float
    min_lr: float


# A schedule maps (base_lr, epoch (0-based), total_epochs, params) to the epoch's learning rate.
Schedule = Callable[[float, int, int, ScheduleParams], float]


def constant(base_lr: float, epoch: int, total_epochs: int, params: ScheduleParams) -> float:
    """``base_lr`` at every epoch."""
    return base_lr


def step(base_lr: float, epoch: int, total_epochs: int, params: ScheduleParams) -> float:
    """Multiply by ``gamma`` every ``step_epochs`` epochs (the notes' "step decay")."""
    return base_lr * params.gamma ** (epoch // params.step_epochs)


def exponential(base_lr: float, epoch: int, total_epochs: int, params: ScheduleParams) -> float:
    """Multiply by ``gamma`` every epoch."""
    return base_lr * params.gamma**epoch


def cosine(base_lr: float, epoch: int, total_epochs: int, params: ScheduleParams) -> float:
    """Half a cosine from ``base_lr`` at the first epoch towards ``min_lr`` after the last (as
    PyTorch's CosineAnnealingLR with T_max = epochs), so no epoch is spent at ``min_lr``."""
    min_lr = params.min_lr
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * epoch / total_epochs))


SCHEDULES: dict[str, Schedule] = {
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "cosine": cosine,
}


def sgd_step(
    W: np.ndarray,
    dW: np.ndarray,
    velocity: np.ndarray,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> None:
    """One update of W (C, D) against its gradient dW (C, D), in place.

    ``velocity`` (C, D) is the momentum buffer, updated in place (unused when momentum is 0).
    Momentum: v = mu*v - lr*dW; W += v. Nesterov, in the notes' form
    W += -mu*v_prev + (1+mu)*v, which equals W += mu*v - lr*dW with the new v.
    """
    change = W.dtype.type(lr) * dW
    if momentum == 0.0:
        W -= change
        return
    velocity *= W.dtype.type(momentum)
    velocity -= change
    if nesterov:
        W += W.dtype.type(momentum) * velocity
        W -= change
    else:
        W += velocity


def batch_indices(
    rng: np.random.Generator, n: int, batch: int, steps: int, sampling: str
) -> np.ndarray:
    """(steps, batch) row indices into n rows, drawn with ``rng``: ``sampling`` "shuffle" takes
    them without replacement from one permutation (steps * batch <= n), "replacement" with it."""
    if sampling == "replacement":
        return rng.integers(0, n, size=(steps, batch))
    return rng.permutation(n)[: steps * batch].reshape(steps, batch)


class SGD(Optimizer):
    name = "sgd"
    keys = (
        "optim.learning_rate",
        "optim.momentum",
        "optim.nesterov",
        "schedule",
        "train.batch_size",
        "train.epochs",
        "train.iterations",
        "train.sampling",
        "train.divergence_factor",
    )
    round_name = "epoch"
    order = 0

    def plan(self, n: int) -> tuple[int, int]:
        """Each epoch is n // batch_size updates (the last partial batch is dropped, and with
        shuffling it is a different one every epoch); ``train.iterations`` cuts the last epoch
        short. Returns (epochs, updates)."""
        t = self.cfg.train
        if t.batch_size > n:
            raise ConfigError(
                f"train.batch_size must be at most the {n} training images. "
                f"Got {t.batch_size} instead."
            )
        per_epoch = n // t.batch_size
        if t.iterations is not None:
            return math.ceil(t.iterations / per_epoch), t.iterations
        return t.epochs, t.epochs * per_epoch

    def init_state(self, W: np.ndarray) -> State:
        return {"velocity": np.zeros_like(W), "initial_loss": np.array(np.nan)}

    def run_round(
        self,
        objective: Objective,
        W: np.ndarray,
        state: State,
        done: Progress,
        rng: np.random.Generator,
        hook: Callable[[], object],
    ) -> tuple[dict[str, float], np.ndarray]:
        """An epoch of mini-batch steps; fields loss, data_loss, reg_loss (means over the
        epoch's batches) and lr."""
        cfg, (m, o, t) = self.cfg, (self.cfg.model, self.cfg.optim, self.cfg.train)
        epochs, total = self.plan(objective.n)
        lr = SCHEDULES[cfg.schedule.name](o.learning_rate, done.round, epochs, cfg.schedule)
        steps = min(objective.n // t.batch_size, total - done.step)
        batches = batch_indices(rng, objective.n, t.batch_size, steps, t.sampling)
        losses, regs = np.empty(steps), np.empty(steps)
        initial = state["initial_loss"]
        with closing(objective.batches(W, batches)) as gradients:
            for i, (loss, dW) in enumerate(gradients):
                if np.isnan(initial):
                    initial[...] = loss
                if not math.isfinite(loss) or loss > t.divergence_factor * initial:
                    raise self._diverged(done, i, loss, float(initial), lr)
                regs[i] = reg_loss(W, m.reg, m.reg_bias)
                losses[i] = loss
                sgd_step(W, dW, state["velocity"], lr, o.momentum, o.nesterov)
                hook()
        fields = {
            "loss": losses.mean(),
            "data_loss": (losses - regs).mean(),
            "reg_loss": regs.mean(),
        }
        return {**{k: float(v) for k, v in fields.items()}, "lr": lr}, losses

    def _diverged(self, done: Progress, i: int, loss: float, initial: float, lr: float):
        """The error for a loss that diverged at step i of the round after ``done``: where, the
        loss against the first one, and what to change: a smaller learning rate, and model.reg
        too when the weight decay's own step (lr x reg times W) overshoots."""
        base, reg = self.cfg.optim.learning_rate, self.cfg.model.reg
        decay = lr * reg
        also = (
            f" Or a smaller model.reg (e.g. --set model.reg={0.1 / lr:.3g}): with model.reg="
            f"{reg:g} the weight decay alone moves W by {decay:.3g} times itself each step, and "
            "from about 2 that diverges whatever the data."
            if decay >= 1
            else ""
        )
        return DivergenceError(
            f"Training diverged at epoch {done.round + 1}, step {done.step + i + 1}: loss "
            f"{loss:.4g} (it started at {initial:.4g}) with optim.learning_rate={base:g} "
            f"(this epoch {lr:g}). Try a smaller learning rate, e.g. "
            f"--set optim.learning_rate={base / 10:g}.{also}"
        )
