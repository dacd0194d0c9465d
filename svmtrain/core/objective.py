"""The training objective: a loss's mean over rows of a data layout plus L2, and its gradient.

The rows, :class:`AffineRows`: raw rows x (N, F) of any numeric dtype (uint8 pixels, a feature
cache; memory-mapped or not; an array or :class:`StackedRows`) whose features are
(x - mean) / scale plus a bias: D = F + 1 columns. The affine map is folded into W for the
scores (scores = x @ V.T + offset, V = W / scale, offset = bias - V @ mean) and unfolded from
the gradient, so a batch needs only a conversion to float and no float copy of the rows is
ever made; the pages of a memory map read are let go after every batch (the kernel maps a
large folio, up to 2 MB, for each row a batch reads from the page cache).

:class:`Objective` evaluates ``loss`` (a :class:`~svmtrain.core.losses.Loss` record) over them
in W's dtype: on a batch of rows, on the whole split chunk by chunk, and on a run of batches
with the fast path SGD uses (two lanes; see docs/benchmarks.md). Every path gives the bits of
the one-batch path for the same rows.
"""

from __future__ import annotations

import itertools
import mmap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from svmtrain.core.blas import limited_threads
from svmtrain.core.losses import Loss, reg_loss, with_reg

CHUNK_BYTES = 1 << 24  # a chunk of full() converts at most this many bytes of floats
LANES = 2  # the calling thread and one worker share each batch


def release_pages(x: np.ndarray) -> None:
    """Let go of the pages of a memory-mapped x already read, so reading a large cached matrix
    does not also keep it in this process's memory (the OS keeps it in its cache)."""
    if isinstance(x, StackedRows):
        for block in x.blocks:
            release_pages(block)
        return
    mapping = getattr(x, "_mmap", None)
    if isinstance(x, np.memmap) and mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def take_rows(x: np.ndarray, idx: np.ndarray, part: int = 64) -> np.ndarray:
    """x[idx] (B, F) for row indices idx (B,) of x (N, F) (an array or StackedRows), gathered
    ``part`` rows at a time with the pages of a memory map let go after each part."""
    out = np.empty((len(idx), x.shape[1]), x.dtype)
    for start in range(0, len(idx), part):
        np.take(x, idx[start : start + part], axis=0, out=out[start : start + part])
        release_pages(x)
    return out


class StackedRows:
    """Row blocks (N_i, F) of one dtype, e.g. memory maps of two files, read as one (sum N_i, F)
    matrix without joining them: slices, index arrays and ``np.take(rows, idx, axis=0, out=)``
    (which calls :meth:`take`) give what they would give on the stacked matrix."""

    def __init__(self, *blocks: np.ndarray):
        self.blocks = blocks
        self.starts = np.cumsum([0] + [len(b) for b in blocks])
        self.shape = (int(self.starts[-1]), blocks[0].shape[1])
        self.dtype = blocks[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(len(self)))
        return self.take(np.asarray(rows))

    def take(self, indices, axis=0, out=None, mode="raise") -> np.ndarray:
        """Rows ``indices`` (B,) ints in [0, N) into ``out`` (B, F) (made when None)."""
        if out is None:
            out = np.empty((len(indices), self.shape[1]), self.dtype)
        which = np.searchsorted(self.starts, indices, side="right") - 1
        for k, block in enumerate(self.blocks):
            at = np.flatnonzero(which == k)
            out[at] = block[indices[at] - self.starts[k]]
        return out


class AffineRows:
    """Raw rows x (N, F) of any numeric dtype with features (x - mean) / scale and a bias.

    mean, scale: (F,) floats, scale > 0. lanes: how many threads share each SGD step (the
    benchmark compares 1 and 2); the bits depend on it alone, never on the machine's load.
    """

    def __init__(self, x: np.ndarray, mean: np.ndarray, scale: np.ndarray, lanes: int = LANES):
        self.x, self.mean, self.scale, self.lanes = x, mean, scale, lanes
        self.n, self.width = x.shape
        self.num_features = self.width + 1

    def fold(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(V (C, F), offset (C,)) of W's dtype with ``x @ V.T + offset`` equal to W's scores."""
        V = W[:, : self.width] / self.scale.astype(W.dtype)
        return V, W[:, self.width] - V @ self.mean.astype(W.dtype)

    def unfold(self, G: np.ndarray, coef_sums: np.ndarray, out: np.ndarray) -> np.ndarray:
        """W's gradient into ``out`` (C, D) from G = coef.T @ x (C, F) and coef_sums =
        coef.sum(axis=0) (C,): dW[:, :F] = (G - coef_sums x mean) / scale, dW[:, F] = coef_sums."""
        F = self.width
        np.subtract(G, np.multiply.outer(coef_sums, self.mean.astype(G.dtype)), out=out[:, :F])
        out[:, :F] /= self.scale.astype(G.dtype)
        out[:, F] = coef_sums
        return out

    def chunk(self, rows: slice, dtype: np.dtype) -> np.ndarray:
        A = self.x[rows].astype(dtype)
        release_pages(self.x)
        return A

    def scores(self, A: np.ndarray, W: np.ndarray) -> np.ndarray:
        V, offset = self.fold(W)
        return A @ V.T + offset

    def gradient(self, A: np.ndarray, coef: np.ndarray, W: np.ndarray) -> np.ndarray:
        return self.unfold(coef.T @ A, coef.sum(axis=0), np.empty_like(W))

    def run(self, objective: Objective, W: np.ndarray, batches: np.ndarray) -> Iterator:
        """(loss, dW) of each batch (S, B) at W as it is when asked, in two lanes: the calling
        thread and one worker, each on one BLAS thread, each gather, convert and score half the
        batch's rows, then each compute half the gradient's columns. The shares are fixed, no
        sum is split between lanes, so the bits do not depend on the machine. The buffers are
        made once; a yielded dW is rewritten by the next step."""
        dtype, C, B = W.dtype, W.shape[0], batches.shape[1]
        raw, floats = np.empty((B, self.width), self.x.dtype), np.empty((B, self.width), dtype)
        scores, G, dW = np.empty((B, C), dtype), np.empty((C, self.width), dtype), np.empty_like(W)
        row_parts, column_parts = _parts(B, self.lanes), _parts(self.width, self.lanes)

        def score(idx: np.ndarray, rows: slice, V: np.ndarray, offset: np.ndarray) -> None:
            # mode="clip": with "raise" and ``out``, numpy gathers into a temporary first.
            np.take(self.x, idx[rows], axis=0, out=raw[rows], mode="clip")
            np.copyto(floats[rows], raw[rows], casting="unsafe")
            np.matmul(floats[rows], V.T, out=scores[rows])
            scores[rows] += offset

        def gradient(coef: np.ndarray, columns: slice) -> None:
            np.matmul(coef.T, floats[:, columns], out=G[:, columns])

        with (
            ThreadPoolExecutor(
                max(1, self.lanes - 1), thread_name_prefix="svmtrain-lane"
            ) as worker,
            limited_threads(1),
        ):
            for idx in batches:
                V, offset = self.fold(W)
                _in_lanes(worker, score, [(idx, r, V, offset) for r in row_parts])
                data_loss, coef = objective.loss.score_gradient(
                    scores, objective.y[idx], **objective.loss_options
                )
                _in_lanes(worker, gradient, [(coef, c) for c in column_parts])
                self.unfold(G, coef.sum(axis=0), dW)
                release_pages(self.x)
                yield with_reg(data_loss, dW, W, objective.reg, objective.reg_bias)[0], dW


class Objective:
    """mean over rows of ``loss`` + reg * sum(W * W) (the bias column excluded unless
    ``reg_bias``), on ``rows`` with labels y (N,) ints in [0, C).

    options: the loss's own hyperparameters (``loss.options(model_config)``); num_classes: C
    (None: the largest label + 1). Every method computes in W's dtype; W is (C, D) with
    D = ``rows.num_features``.
    """

    def __init__(
        self,
        loss: Loss,
        rows: AffineRows,
        y: np.ndarray,
        *,
        reg: float = 0.0,
        reg_bias: bool = True,
        options: dict[str, Any] | None = None,
        num_classes: int | None = None,
    ):
        self.loss, self.rows, self.y, self.reg, self.reg_bias = loss, rows, y, reg, reg_bias
        self.loss_options = dict(options or {})
        self.options = {"reg_bias": reg_bias, **self.loss_options}
        self.n, self.num_features = rows.n, rows.num_features
        self.num_classes = num_classes if num_classes is not None else int(y.max()) + 1

    def batches(self, W: np.ndarray, batches: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        """(loss, dW (C, D)) of each batch of ``batches`` (S, B) row indices in turn, at W as it
        is when the next one is asked for (SGD updates W in place between). A dW is reused by
        the next step; close the iterator (``contextlib.closing``) to stop early."""
        return self.rows.run(self, W, batches)

    def batch(self, W: np.ndarray, idx: np.ndarray) -> tuple[float, np.ndarray]:
        """(loss, dW (C, D)) over the rows ``idx`` (B,)."""
        steps = self.batches(W, np.asarray(idx)[None])
        loss, dW = next(steps)
        steps.close()
        return loss, dW.copy()

    def full(self, W: np.ndarray, *, gradient: bool = True) -> tuple[float, np.ndarray | None]:
        """(loss, dW (C, D) of W's dtype, or None without ``gradient``) over every row,
        accumulated chunk by chunk in float64 (a chunk converts at most CHUNK_BYTES of floats).
        The chunks run two at a time on LANES threads, one BLAS thread each, and are summed in
        order: the bits depend neither on the load nor on the BLAS's thread count."""
        size = max(1, CHUNK_BYTES // (self.num_features * W.dtype.itemsize))

        def part(start: int) -> tuple[float, np.ndarray | None]:
            rows = slice(start, min(start + size, self.n))
            A = self.rows.chunk(rows, W.dtype)
            data_loss, coef = self.loss.score_gradient(
                self.rows.scores(A, W), self.y[rows], **self.loss_options
            )
            share = (rows.stop - rows.start) / self.n
            G = self.rows.gradient(A, coef * coef.dtype.type(share), W) if gradient else None
            return data_loss * share, G

        total, dW = 0.0, np.zeros(W.shape) if gradient else None
        with (
            ThreadPoolExecutor(LANES, thread_name_prefix="svmtrain-chunk") as pool,
            limited_threads(1),
        ):
            for loss, G in pool.map(part, range(0, self.n, size)):
                total += loss
                if gradient:
                    dW += G
        if not gradient:
            return total + reg_loss(W, self.reg, self.reg_bias), None
        loss, dW = with_reg(total, dW, W.astype(np.float64), self.reg, self.reg_bias)
        return loss, dW.astype(W.dtype, copy=False)

    def value(self, W: np.ndarray, idx: np.ndarray | None = None) -> float:
        """The loss alone: over the rows ``idx`` (B,), or over every row when None."""
        return self.full(W, gradient=False)[0] if idx is None else self.batch(W, idx)[0]


def _in_lanes(worker: ThreadPoolExecutor, part: Callable, args: list[tuple]) -> None:
    """``part(*args[k])`` for every lane k: lane 0 on this thread, the rest on the worker."""
    ahead = [worker.submit(part, *a) for a in args[1:]]
    part(*args[0])
    for future in ahead:
        future.result()


def _parts(n: int, k: int) -> list[slice]:
    """[0, n) cut into k contiguous slices of sizes differing by at most one."""
    bounds = [n * j // k for j in range(k + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]
