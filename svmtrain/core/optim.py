"""Parameter updates and learning-rate schedules.

Schedules are looked up by name in :data:`SCHEDULES` and give the learning rate of an epoch;
:func:`sgd_step` applies one update in place (plain, momentum, or Nesterov momentum as in
the CS231n notes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np


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
    """Half a cosine from ``base_lr`` at the first epoch towards ``min_lr`` after the last.

    The curve reaches ``min_lr`` at epoch ``total_epochs``, one past the last that trains (as
    PyTorch's CosineAnnealingLR with T_max = epochs), so no epoch is spent at ``min_lr`` = 0.
    """
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
    W += -mu*v_prev + (1+mu)*v, which equals W += mu*v - lr*dW with the new v, so no copy of
    the previous velocity is needed.
    """
    step = W.dtype.type(lr) * dW
    if momentum == 0.0:
        W -= step
        return
    velocity *= W.dtype.type(momentum)
    velocity -= step
    if nesterov:
        W += W.dtype.type(momentum) * velocity
        W -= step
    else:
        W += velocity
