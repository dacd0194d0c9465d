"""Parameter updates and learning-rate schedules.

Schedules are looked up by name in :data:`SCHEDULES` and give the learning rate of an epoch;
:class:`SGD` applies one update in place (plain, momentum, or Nesterov momentum as written in
the CS231n notes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# A schedule maps (base_lr, epoch (0-based), total_epochs, params) to the epoch's learning rate.
Schedule = Callable[[float, int, int, dict], float]


def constant(base_lr: float, epoch: int, total_epochs: int, params: dict) -> float:
    return base_lr


def step(base_lr: float, epoch: int, total_epochs: int, params: dict) -> float:
    """Multiply by ``gamma`` every ``step_epochs`` epochs (the notes' "step decay")."""
    return base_lr * params["gamma"] ** (epoch // params["step_epochs"])


def exponential(base_lr: float, epoch: int, total_epochs: int, params: dict) -> float:
    """Multiply by ``gamma`` every epoch."""
    return base_lr * params["gamma"] ** epoch


def cosine(base_lr: float, epoch: int, total_epochs: int, params: dict) -> float:
    """Half a cosine from ``base_lr`` at the first epoch to ``min_lr`` at the last."""
    if total_epochs <= 1:
        return base_lr
    progress = epoch / (total_epochs - 1)
    min_lr = params["min_lr"]
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


SCHEDULES: dict[str, Schedule] = {
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "cosine": cosine,
}


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum, updating W in place.

    The velocity has W's shape and dtype and is part of the state a checkpoint must keep.
    """

    def __init__(self, shape: tuple[int, ...], dtype, momentum: float = 0.0, nesterov: bool = False):
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros(shape, dtype=dtype)
        self._previous = np.zeros(shape, dtype=dtype) if nesterov else None

    def update(self, W: np.ndarray, dW: np.ndarray, lr: float) -> None:
        """One step: W (C, D) moves against dW (C, D) with learning rate lr."""
        if self.momentum == 0.0:
            W -= W.dtype.type(lr) * dW
            return
        mu = W.dtype.type(self.momentum)
        v = self.velocity
        if self.nesterov:
            # v_prev = v; v = mu*v - lr*dW; W += -mu*v_prev + (1+mu)*v
            np.copyto(self._previous, v)
        v *= mu
        v -= W.dtype.type(lr) * dW
        if self.nesterov:
            W -= mu * self._previous
            W += (1 + mu) * v
        else:
            W += v
