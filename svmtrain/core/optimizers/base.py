"""What every optimiser is: a class over one round (SGD: an epoch; L-BFGS: an iteration)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from svmtrain.core.objective import Objective

State = dict[str, np.ndarray]


class Progress(NamedTuple):
    """Where a run is: rounds and updates finished."""

    round: int
    step: int


class Optimizer(ABC):
    """One optimiser, configured by ``cfg`` (a :class:`svmtrain.config.Config`, read by name).

    name: its ``optim.name``; keys: the config keys only it reads ("section.key", or a whole
    section), which must keep their defaults when another optimiser is chosen; round_name: what
    the progress bar calls a round; order: its place in lists.
    """

    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    round_name: ClassVar[str]
    order: ClassVar[int]

    def __init__(self, cfg: Any):
        self.cfg = cfg

    @abstractmethod
    def plan(self, n: int) -> tuple[int, int]:
        """(rounds, updates) of a whole run on n rows. Raises ConfigError when it cannot run."""

    @abstractmethod
    def init_state(self, W: np.ndarray) -> State:
        """The state (name -> array) before the first round, for W (C, D); saved whole in the
        checkpoint, so the arrays alone must let a run continue bit-identically."""

    @abstractmethod
    def run_round(
        self,
        objective: Objective,
        W: np.ndarray,
        state: State,
        done: Progress,
        rng: np.random.Generator,
        hook: Callable[[], object],
    ) -> tuple[dict[str, float], np.ndarray]:
        """One round after ``done``: updates W (C, D) and ``state`` in place, calls ``hook()``
        after every update, and returns the round's metrics fields and the losses of its
        updates (U,). Raises DivergenceError when the loss is not finite or runs away; W and
        state are then mid-round (the loop restores them)."""

    def finished(self, state: State) -> bool:
        """Whether the run has converged (no further round would change W)."""
        return False
