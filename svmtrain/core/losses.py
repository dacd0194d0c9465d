"""Linear classifiers' losses and their analytic gradients (CS231n optimisation notes).

Shapes, throughout: W (C, D) with D = 3072 + 1 (bias trick: the last column of X is 1 and the
last column of W is the bias), X (N, D), y (N,) ints in [0, C), scores = X @ W.T (N, C).
The dtype of W is the computation dtype (float32 and float64 both work): X is cast to it.

Each loss is one :class:`Loss` record in the registry ``LOSSES`` (name -> record): its
vectorised function, its loop reference, its per-example losses, its own hyperparameters and
what a gradient check needs to know about it. A record is called like its vectorised function,
with reg, reg_bias and its own hyperparameters only (taken from a config by
:meth:`Loss.options`)::

    loss = LOSSES[cfg.model.loss]
    value, dW = loss(W, X, y, cfg.model.reg, reg_bias=cfg.model.reg_bias, **loss.options(cfg.model))

It returns the mean data loss over the N examples plus ``reg * sum(W * W)`` (the bias column
excluded when ``reg_bias`` is False), as a Python float, and dW (C, D) of W's dtype.

The ``*_naive`` functions loop over examples and classes in Python: they are the slow, obvious
reference that the tests and ``svmtrain gradcheck --reference`` compare against.

A new loss is one more record at the bottom of this module (and its hand-computed tests); the
registry-driven tests, the config, training and the gradient check pick it up from there. A
new hyperparameter also needs its ``model.<name>`` key (default and rule) in the config.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

# The dtypes W may have, in which every loss computes (preprocess.dtype, gradcheck --dtype).
DTYPES = ("float32", "float64")

# ---------------------------------------------------------------------------------------------
# Per-example losses as functions of the scores. The vectorised losses are built on these, and
# svmtrain.core.differences uses them to evaluate many probes of W at once from cached scores.


def _svm_hinge(scores: np.ndarray, y: np.ndarray, delta: float) -> np.ndarray:
    """max(0, s_j - s_{y_i} + delta) for every j, and 0 at j = y_i.

    scores: (..., N, C); y: (N,). Returns a new (..., N, C) array of scores' dtype.
    """
    rows = np.arange(scores.shape[-2])
    hinge = scores - (scores[..., rows, y] - delta)[..., None]
    np.maximum(hinge, 0, out=hinge)
    hinge[..., rows, y] = 0  # the correct class is not a margin
    return hinge


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    """log p_j = s_j - log sum_k exp(s_k), shifted by the row max so exp never overflows.

    scores: (..., C). Returns a new array of the same shape and dtype.
    """
    logp = scores - scores.max(axis=-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    return logp


def svm_example_losses(scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0) -> np.ndarray:
    """Weston-Watkins hinge loss of each example: sum_{j != y_i} max(0, s_j - s_{y_i} + delta).

    scores: (..., N, C); y: (N,). Returns (..., N) of scores' dtype.
    """
    # A row sum: einsum is several times faster than .sum(axis=-1) over a short last axis.
    return np.einsum("...j->...", _svm_hinge(scores, y, delta))


def squared_hinge_example_losses(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> np.ndarray:
    """Squared (L2-SVM) hinge loss of each example: sum_{j != y_i} max(0, s_j - s_{y_i} + delta)^2.

    scores: (..., N, C); y: (N,). Returns (..., N) of scores' dtype.
    """
    hinge = _svm_hinge(scores, y, delta)
    return np.einsum("...j,...j->...", hinge, hinge)


def softmax_example_losses(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy of each example: -log softmax(s_i)[y_i].

    scores: (..., N, C); y: (N,). Returns (..., N) of scores' dtype.
    """
    return -_log_softmax(scores)[..., np.arange(scores.shape[-2]), y]


def svm_kink_gaps(scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0) -> np.ndarray:
    """How far each score may move, either way, before a hinge of its example crosses its kink
    (a margin of 0, where the hinge's slope jumps, and the squared hinge's curvature).

    Moving s_ij (j != y_i) moves the margin s_ij - s_{y_i} + delta alone; moving s_{y_i} moves
    every margin of example i. So the gap is |margin_ij| for j != y_i, and the smallest
    |margin| of the example for j = y_i (inf for a single class).

    scores: (N, C); y: (N,). Returns (N, C) of scores' dtype.
    """
    rows = np.arange(len(y))
    gap = np.abs(scores - scores[rows, y][:, None] + delta)
    gap[rows, y] = np.inf  # not a margin
    gap[rows, y] = gap.min(axis=1)
    return gap


# ---------------------------------------------------------------------------------------------
# Regularisation


def _regularised(A: np.ndarray, reg_bias: bool) -> np.ndarray:
    """The part of A (C, D) that the L2 penalty covers: a view, without the bias column if asked."""
    return A if reg_bias else A[:, :-1]


def reg_loss(W: np.ndarray, reg: float, reg_bias: bool = True) -> float:
    """reg * sum(W * W) over W (C, D), the bias column excluded when ``reg_bias`` is False.

    0.0 when reg is 0, even where sum(W * W) overflows W's dtype (0 * inf would be NaN); inf,
    without a warning, where the penalty overflows (the caller judges: training diverged).
    """
    if not reg:
        return 0.0
    V = _regularised(W, reg_bias)
    with np.errstate(over="ignore"):
        return float(reg * np.vdot(V, V))


def with_reg(
    data_loss: float, dW: np.ndarray, W: np.ndarray, reg: float, reg_bias: bool
) -> tuple[float, np.ndarray]:
    """Adds the L2 penalty and its gradient 2 * reg * W to (data_loss, dW) in place (inf where
    they overflow, without a warning)."""
    if reg:
        with np.errstate(over="ignore"):
            _regularised(dW, reg_bias)[...] += (2 * reg) * _regularised(W, reg_bias)
    return data_loss + reg_loss(W, reg, reg_bias), dW


# ---------------------------------------------------------------------------------------------
# Vectorised losses


def _hinge_score_gradient(
    scores: np.ndarray, y: np.ndarray, delta: float, *, squared: bool
) -> tuple[float, np.ndarray]:
    """The mean (squared) hinge data loss of ``scores`` (N, C) with labels y (N,), and its
    gradient with respect to the scores, (N, C) of scores' dtype: the coefficients with which
    the examples' features make dW (dW = coef.T @ X). Each active margin m adds its slope (1,
    or 2 m squared) times x_i to its class's row and takes it from the correct row; at a margin
    of exactly 0 the slope taken is 0."""
    n = scores.shape[0]
    hinge = _svm_hinge(scores, y, delta)
    if squared:
        data_loss, coef = float(np.vdot(hinge, hinge)) / n, 2 * hinge
    else:
        data_loss, coef = float(hinge.sum()) / n, (hinge > 0).astype(scores.dtype)
    rows = np.arange(n)
    coef[rows, y] = -coef.sum(axis=1)
    coef /= n
    return data_loss, coef


def _linear(
    score_gradient: Callable[..., tuple[float, np.ndarray]],
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float,
    reg_bias: bool,
    **hyperparameters: float,
) -> tuple[float, np.ndarray]:
    """(loss, dW (C, D) of W's dtype) of a linear model W (C, D) on X (N, D), cast to W's
    dtype, from the loss's ``score_gradient`` of the scores X @ W.T, plus the L2 term."""
    X = np.asarray(X, dtype=W.dtype)
    data_loss, coef = score_gradient(X @ W.T, y, **hyperparameters)
    return with_reg(data_loss, coef.T @ X, W, reg, reg_bias)


def svm_score_gradient(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> tuple[float, np.ndarray]:
    """The mean multiclass SVM data loss of ``scores`` (N, C) with labels y (N,), and its
    gradient with respect to the scores, (N, C) (:func:`_hinge_score_gradient`)."""
    return _hinge_score_gradient(scores, y, delta, squared=False)


def svm_loss(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """Multiclass SVM loss and gradient, vectorised (no Python loop over examples or classes).

    W: (C, D); X: (N, D), cast to W's dtype; y: (N,) ints in [0, C); delta: the margin.
    Returns (loss, dW (C, D) of W's dtype). At a margin of exactly 0 the subgradient taken is 0.
    """
    return _linear(svm_score_gradient, W, X, y, reg, reg_bias, delta=delta)


def squared_hinge_score_gradient(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> tuple[float, np.ndarray]:
    """The mean squared-hinge data loss of ``scores`` (N, C) with labels y (N,), and its
    gradient with respect to the scores, (N, C) (:func:`_hinge_score_gradient`)."""
    return _hinge_score_gradient(scores, y, delta, squared=True)


def squared_hinge_loss(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """Squared hinge (L2-SVM, Weston-Watkins) loss and gradient, vectorised.

    W: (C, D); X: (N, D), cast to W's dtype; y: (N,) ints in [0, C); delta: the margin.
    Returns (loss, dW (C, D) of W's dtype). Differentiable everywhere: at a margin of 0 the
    gradient is 0 from both sides.
    """
    return _linear(squared_hinge_score_gradient, W, X, y, reg, reg_bias, delta=delta)


def softmax_score_gradient(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean cross-entropy of ``scores`` (N, C) with labels y (N,), and its gradient with
    respect to the scores, (N, C) of scores' dtype (see :func:`svm_score_gradient`)."""
    n = scores.shape[0]
    rows = np.arange(n)
    logp = _log_softmax(scores)
    data_loss = -float(logp[rows, y].sum()) / n
    coef = np.exp(logp)  # the probabilities; d loss_i / d s_ij = p_ij - [j == y_i]
    coef[rows, y] -= 1
    coef /= n
    return data_loss, coef


def softmax_loss(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """Softmax (cross-entropy) loss and gradient, vectorised and numerically stable.

    W: (C, D); X: (N, D), cast to W's dtype; y: (N,) ints in [0, C).
    Returns (loss, dW (C, D) of W's dtype).
    """
    return _linear(softmax_score_gradient, W, X, y, reg, reg_bias)


# ---------------------------------------------------------------------------------------------
# The loop references: one example and one class at a time, nothing shared with the above.


def _reg_naive(
    loss: float, dW: np.ndarray, W: np.ndarray, reg: float, reg_bias: bool
) -> tuple[float, np.ndarray]:
    if not reg:  # no penalty, even where w @ w overflows (0 * inf would be NaN)
        return loss, dW
    end = W.shape[1] if reg_bias else W.shape[1] - 1
    for j in range(W.shape[0]):
        w = W[j, :end]
        loss += reg * float(w @ w)
        dW[j, :end] += 2 * reg * w
    return loss, dW


def _hinge_loss_naive(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float,
    delta: float,
    reg_bias: bool,
    *,
    squared: bool,
) -> tuple[float, np.ndarray]:
    """The (squared) hinge loss and gradient, one example and one margin at a time."""
    num_classes, n = W.shape[0], X.shape[0]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n):
        x = X[i].astype(W.dtype)
        scores = [W[j] @ x for j in range(num_classes)]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + delta
            if margin > 0:
                loss += (float(margin) ** 2 if squared else float(margin)) / n
                slope = 2 * margin if squared else 1
                dW[j] += slope * x / n
                dW[y[i]] -= slope * x / n
    return _reg_naive(loss, dW, W, reg, reg_bias)


def svm_loss_naive(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """:func:`svm_loss` with explicit loops over examples and classes (the reference)."""
    return _hinge_loss_naive(W, X, y, reg, delta, reg_bias, squared=False)


def squared_hinge_loss_naive(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """:func:`squared_hinge_loss` with explicit loops over examples and classes (the reference)."""
    return _hinge_loss_naive(W, X, y, reg, delta, reg_bias, squared=True)


def softmax_loss_naive(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """:func:`softmax_loss` with explicit loops over examples and classes (the reference)."""
    num_classes, n = W.shape[0], X.shape[0]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n):
        x = X[i].astype(W.dtype)
        scores = [float(W[j] @ x) for j in range(num_classes)]
        top = max(scores)  # shifted by the max, as the vectorised loss, so exp never overflows
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        # -log p_y = log(total) - (s_y - top): never log(0), even where p_y underflows to 0.
        loss += (math.log(total) - (scores[y[i]] - top)) / n
        for j in range(num_classes):
            dW[j] += (exps[j] / total - (j == y[i])) * x / n
    return _reg_naive(float(loss), dW, W, reg, reg_bias)


# ---------------------------------------------------------------------------------------------
# The records and the registry

LossFn = Callable[..., tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Loss:
    """Everything svmtrain knows about one loss. Called like :attr:`vectorised`.

    name: the registry key (``model.loss``).
    vectorised: (W (C, D), X (N, D), y (N,), reg=0.0, *, reg_bias=True, **hyperparameters)
        -> (loss, dW (C, D)); the loss that trains.
    naive: the same signature and result, with loops over examples and classes (the reference).
    example_losses: (scores (..., N, C), y (N,), **hyperparameters) -> (..., N): the data loss
        of each example, of which the vectorised loss is the mean (before the L2 term).
    score_gradient: (scores (N, C), y (N,), **hyperparameters) -> (mean data loss, its
        gradient (N, C) with respect to the scores): the vectorised loss without the products,
        for callers that compute scores their own way (training on uint8 pixels).
    hyperparameters: the names of its own keyword options besides reg and reg_bias, each a
        ``model.<name>`` key of the config (svm, squared_hinge: delta; softmax: none).
    kink_gaps: (scores (N, C), y (N,), **hyperparameters) -> (N, C): how far each score may
        move before an example's loss crosses a kink (where it changes from one polynomial
        piece to the next: svm's slope jumps, squared_hinge's curvature); None for a smooth loss.
    piecewise_degree: the degree of each example's loss as a polynomial in the scores between
        kinks (svm 1: piecewise linear; squared_hinge 2), or None for a loss that is no
        piecewise polynomial (softmax): what the finite-difference error model needs
        (svmtrain.core.fd_error).
    default_steps: the finite-difference step h for a gradient check, by (dtype name,
        method): ("float64" | "float32", "centered" | "forward"); docs/gradcheck.md says how
        they were chosen.
    """

    name: str
    vectorised: LossFn
    naive: LossFn
    example_losses: Callable[..., np.ndarray]
    score_gradient: Callable[..., tuple[float, np.ndarray]]
    hyperparameters: tuple[str, ...]
    kink_gaps: Callable[..., np.ndarray] | None
    piecewise_degree: int | None
    default_steps: Mapping[tuple[str, str], float]

    def __call__(
        self, W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float = 0.0, **options: Any
    ) -> tuple[float, np.ndarray]:
        """:attr:`vectorised` (W, X, y, reg, **options): (loss, dW (C, D) of W's dtype)."""
        return self.vectorised(W, X, y, reg, **options)

    @property
    def has_kinks(self) -> bool:
        """Whether some probes of a finite difference can straddle a kink (see kink_gaps)."""
        return self.kink_gaps is not None

    def options(self, settings: object) -> dict[str, Any]:
        """This loss's hyperparameters read from ``settings`` (e.g. a ModelConfig), by name:
        the keyword options to pass it besides reg and reg_bias."""
        return {name: getattr(settings, name) for name in self.hyperparameters}

    def default_step(self, dtype: Any, method: str = "centered") -> float:
        """The finite-difference step h for checking this loss's gradient in ``dtype`` with
        ``method`` ("centered" or "forward")."""
        return self.default_steps[(np.dtype(dtype).name, method)]


def _steps(
    centered: tuple[float, float], forward: tuple[float, float]
) -> Mapping[tuple[str, str], float]:
    """Default steps by (dtype, method), from (float64, float32) pairs per method."""
    pairs = {"centered": centered, "forward": forward}
    return MappingProxyType(
        {(d, m): pair[d == "float32"] for m, pair in pairs.items() for d in ("float64", "float32")}
    )


LOSSES: dict[str, Loss] = {
    "svm": Loss(
        name="svm",
        vectorised=svm_loss,
        naive=svm_loss_naive,
        example_losses=svm_example_losses,
        score_gradient=svm_score_gradient,
        hyperparameters=("delta",),
        kink_gaps=svm_kink_gaps,
        piecewise_degree=1,
        default_steps=_steps(centered=(1e-5, 1e-5), forward=(1e-9, 1e-5)),
    ),
    "softmax": Loss(
        name="softmax",
        vectorised=softmax_loss,
        naive=softmax_loss_naive,
        example_losses=softmax_example_losses,
        score_gradient=softmax_score_gradient,
        hyperparameters=(),
        kink_gaps=None,
        piecewise_degree=None,
        default_steps=_steps(centered=(1e-6, 1e-5), forward=(1e-9, 1e-5)),
    ),
    "squared_hinge": Loss(
        name="squared_hinge",
        vectorised=squared_hinge_loss,
        naive=squared_hinge_loss_naive,
        example_losses=squared_hinge_example_losses,
        score_gradient=squared_hinge_score_gradient,
        hyperparameters=("delta",),
        kink_gaps=svm_kink_gaps,
        piecewise_degree=2,
        default_steps=_steps(centered=(1e-5, 1e-5), forward=(1e-9, 1e-5)),
    ),
}

# Every loss's own hyperparameter names, for the config to tell which loss a key belongs to.
HYPERPARAMETERS: frozenset[str] = frozenset(
    name for loss in LOSSES.values() for name in loss.hyperparameters
)


def owners(hyperparameter: str) -> tuple[str, ...]:
    """The names of the losses that take ``hyperparameter`` (e.g. delta), in registry order."""
    return tuple(name for name, loss in LOSSES.items() if hyperparameter in loss.hyperparameters)


def whose(hyperparameter: str) -> str:
    """Whose ``hyperparameter`` is, for messages: "the svm loss's", "the svm and squared_hinge
    losses'"."""
    names = owners(hyperparameter)
    return f"the {' and '.join(names)} " + ("loss's" if len(names) == 1 else "losses'")


def predict(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(N,) intp: the class with the highest score for each row of X (N, D), W (C, D)."""
    return np.argmax(X @ W.T, axis=1)
