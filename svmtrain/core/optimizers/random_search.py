"""Random search, the CS231n notes' Strategy 1: draw W at random, keep the best by loss.

Each try is ``random_search.scale`` * standard normal (C, D), and its loss is measured on the
whole training split (the notes' ``L(X_train, Y_train, W)``); W is the best try so far. The
run's starting W only holds the place: the first try replaces it, as the notes' ``bestloss =
inf`` makes it.

:class:`Tries` is what both random strategies share (random_local_search.py is the other): a
round of up to TRIES_PER_ROUND tries, each kept when its loss is below the best so far, the
best loss the whole state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from svmtrain.core.losses import reg_loss
from svmtrain.core.objective import Objective
from svmtrain.core.optimizers.base import Optimizer, Progress, State

TRIES_PER_ROUND = 100  # a metrics line, a validation accuracy and a checkpoint every 100 tries


class Tries:
    """A search of ``<name>.tries`` tries that keeps a try when it lowers the loss (mixed into
    an Optimizer; its ``draw`` gives the next try)."""

    cfg: object
    name: str

    def plan(self, n: int) -> tuple[int, int]:
        """(rounds, tries): TRIES_PER_ROUND tries a round, the last one the rest."""
        tries = getattr(self.cfg, self.name).tries
        return math.ceil(tries / TRIES_PER_ROUND), tries

    def init_state(self, W: np.ndarray) -> State:
        return {"best_loss": np.array(np.inf)}

    def draw(self, W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The next try (C, D) of W's dtype, W as it is now."""
        raise NotImplementedError

    def run_round(
        self,
        objective: Objective,
        W: np.ndarray,
        state: State,
        done: Progress,
        rng: np.random.Generator,
        hook: Callable[[], object],
    ) -> tuple[dict[str, float], np.ndarray]:
        """Up to TRIES_PER_ROUND tries, each made W (in place) when its loss is below
        ``state["best_loss"]``. Fields: loss (of the kept W), data_loss, reg_loss and accepted
        (tries kept this round); and the loss of every try (U,)."""
        best = state["best_loss"]
        losses = np.empty(min(TRIES_PER_ROUND, self.plan(objective.n)[1] - done.step))
        accepted = 0
        for i in range(len(losses)):
            candidate = self.draw(W, rng)
            losses[i] = objective.value(candidate)
            if losses[i] < best:
                W[...], best[...] = candidate, losses[i]
                accepted += 1
            hook()
        m = self.cfg.model
        penalty = reg_loss(W, m.reg, m.reg_bias)
        fields = {"loss": float(best), "data_loss": float(best) - penalty, "reg_loss": penalty}
        return {**fields, "accepted": accepted}, losses


class RandomSearch(Tries, Optimizer):
    name = "random_search"
    keys = ("random_search",)
    round_name = "round"
    order = 2

    def draw(self, W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """scale * standard normal, whatever W is."""
        return (self.cfg.random_search.scale * rng.standard_normal(W.shape)).astype(W.dtype)
