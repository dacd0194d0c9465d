"""The SGD steps of an epoch on raw uint8 pixels, as the cache holds them.

The training images stay uint8 (memory-mapped) until a batch is formed: no float copy of any
split exists. What the steps do instead of ``X[idx] @ W.T`` on a float design matrix:

- **The affine map folded into W.** A feature is (x - mean) / scale plus a bias column, so
  scores = x @ V.T + offset with V = W / scale and offset = bias - V @ mean
  (``PixelTransform.fold`` in :mod:`svmtrain.data.preprocess`), and W's gradient follows from
  G = coef.T @ x and the column sums of coef (``PixelTransform.unfold_gradient``).
  A batch then needs only a uint8 to float conversion, a quarter of the work of subtracting
  and dividing, and W stays the notes' W in preprocessed-pixel coordinates.
- **Two lanes.** Each step is split between the calling thread and one worker thread, each on
  one BLAS thread: each gathers and converts half the batch's rows and computes their scores;
  after the loss (on the calling thread), each computes half the gradient's columns. The split
  is fixed (it does not depend on how many cores there are), no sum is split between the lanes,
  so the weights are bit-identical from run to run, and equal those of the plain path (float
  design matrices, one product each) to float32 rounding.

docs/benchmarks.md has the measurements behind these choices.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from svmtrain.config import Config
from svmtrain.core.blas import limited_threads
from svmtrain.core.losses import LOSSES, reg_loss, with_reg
from svmtrain.core.optim import sgd_step
from svmtrain.data.preprocess import PIXELS, PixelTransform
from svmtrain.experiments.common import divergence_error

LANES = 2  # the calling thread and one worker


class PixelStepper:
    """The SGD steps of one epoch on x (N, 3072) uint8 rows (memory-mapped or not) with labels
    y (N,) intp, for W (C, 3073) of the config's dtype in ``transform``'s coordinates.

    The buffers (one batch of uint8 rows and of floats, the scores, the gradient) are made once
    and reused by every step. ``lanes``: how many threads share each step (the benchmark
    compares 1 and 2). The shares depend on ``lanes`` alone, never on the machine's load, so
    the weights are bit-identical from run to run.
    """

    def __init__(
        self,
        cfg: Config,
        x: np.ndarray,
        y: np.ndarray,
        transform: PixelTransform,
        num_classes: int,
        on_step: Callable[[], object],
        lanes: int = LANES,
    ):
        self.cfg, self.x, self.y, self.transform, self.on_step = cfg, x, y, transform, on_step
        self.loss = LOSSES[cfg.model.loss]
        self.options = self.loss.options(cfg.model)
        dtype, batch = np.dtype(cfg.preprocess.dtype), cfg.train.batch_size
        self.raw = np.empty((batch, PIXELS), dtype=np.uint8)
        self.floats = np.empty((batch, PIXELS), dtype=dtype)
        self.scores = np.empty((batch, num_classes), dtype=dtype)
        self.G = np.empty((num_classes, PIXELS), dtype=dtype)
        self.dW = np.empty((num_classes, PIXELS + 1), dtype=dtype)
        self.row_parts = _parts(batch, lanes)
        self.column_parts = _parts(PIXELS, lanes)

    def run(self, state, batches: np.ndarray, lr: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Update state.W and state.velocity in place over ``batches`` (S, B) of row indices.

        Returns the S minibatch losses, their S regularisation parts, and the initial loss
        (the first batch's loss of the whole run, the yardstick for divergence).
        """
        m, o = self.cfg.model, self.cfg.optim
        losses, regs = np.empty(len(batches)), np.empty(len(batches))
        initial = state.initial_loss
        W = state.W
        with (
            ThreadPoolExecutor(
                max(1, len(self.row_parts) - 1), thread_name_prefix="svmtrain-lane"
            ) as worker,
            limited_threads(1),
        ):
            for i, idx in enumerate(batches):
                V, offset = self.transform.fold(W)
                self._in_lanes(worker, self._scores, [(idx, r, V, offset) for r in self.row_parts])
                data_loss, coef = self.loss.score_gradient(self.scores, self.y[idx], **self.options)
                self._in_lanes(worker, self._gradient, [(coef, c) for c in self.column_parts])
                self.transform.unfold_gradient(self.G, coef.sum(axis=0), self.dW)
                loss, dW = with_reg(data_loss, self.dW, W, m.reg, m.reg_bias)
                initial = loss if initial is None else initial
                if not math.isfinite(loss) or loss > self.cfg.train.divergence_factor * initial:
                    raise divergence_error(self.cfg, state, i, loss, initial, lr)
                regs[i] = reg_loss(W, m.reg, m.reg_bias)
                losses[i] = loss
                sgd_step(W, dW, state.velocity, lr, o.momentum, o.nesterov)
                self.on_step()
        return losses, regs, initial

    @staticmethod
    def _in_lanes(worker: ThreadPoolExecutor, part: Callable, args: list[tuple]) -> None:
        """``part(*args[k])`` for every lane k: lane 0 on this thread, the rest on the worker."""
        ahead = [worker.submit(part, *a) for a in args[1:]]
        part(*args[0])
        for future in ahead:
            future.result()

    def _scores(self, idx: np.ndarray, rows: slice, V: np.ndarray, offset: np.ndarray) -> None:
        """Gather, convert and score the batch's ``rows``."""
        # mode="clip": with "raise" and ``out``, numpy gathers into a temporary first. The
        # indices come from [0, N), so clipping never moves one.
        np.take(self.x, idx[rows], axis=0, out=self.raw[rows], mode="clip")
        np.copyto(self.floats[rows], self.raw[rows], casting="unsafe")
        np.matmul(self.floats[rows], V.T, out=self.scores[rows])
        self.scores[rows] += offset

    def _gradient(self, coef: np.ndarray, columns: slice) -> None:
        np.matmul(coef.T, self.floats[:, columns], out=self.G[:, columns])


def _parts(n: int, k: int) -> list[slice]:
    """[0, n) cut into k contiguous slices of sizes differing by at most one."""
    bounds = [n * j // k for j in range(k + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]
