"""Random local search, the CS231n notes' Strategy 2: perturb W, keep the change if the loss drops.

Each try is W + ``random_local_search.step`` * standard normal (C, D), its loss measured on the
whole training split (the notes' ``L(Xtr_cols, Ytr, Wtry)``); W moves there when that loss is
below the best so far. As in the notes the best starts at infinity, so the first try is always
taken, from where every run starts, ``model.init_scale`` * standard normal (the notes start
this one at 0.001: ``--set model.init_scale=1e-3``). Rounds and state are random search's
(:class:`~svmtrain.core.optimizers.random_search.Tries`).
"""

from __future__ import annotations

import numpy as np

from svmtrain.core.optimizers.base import Optimizer
from svmtrain.core.optimizers.random_search import Tries


class RandomLocalSearch(Tries, Optimizer):
    name = "random_local_search"
    keys = ("random_local_search",)
    round_name = "round"
    order = 3

    def draw(self, W: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """W + step * standard normal."""
        step = self.cfg.random_local_search.step
        return W + (step * rng.standard_normal(W.shape)).astype(W.dtype)
