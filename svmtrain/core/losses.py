"""Linear classifiers' losses and their analytic gradients, one :class:`Loss` record each.

Shapes: W (C, D) with the bias as its last column, X (N, D), y (N,) ints in [0, C),
scores = X @ W.T (N, C). W's dtype is the computation dtype; X is cast to it. Every loss
returns (mean data loss + reg * sum(W * W), as a float; dW (C, D) of W's dtype)::

    loss = LOSSES[cfg.model.loss]
    value, dW = loss(W, X, y, cfg.model.reg, reg_bias=cfg.model.reg_bias, **loss.options(cfg.model))

The ``*_naive`` functions are the loop references (docs/losses.md).
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
# Per-example losses as functions of the scores (also used by svmtrain.core.differences).


def _svm_hinge(scores: np.ndarray, y: np.ndarray, delta: float) -> np.ndarray:
    """max(0, s_j - s_{y_i} + delta) for every j, and 0 at j = y_i.

    scores: (..., N, C); y: (N,). Returns a new (..., N, C) array of scores' dtype.
    """
    rows = np.arange(scores.shape[-2])
    hinge = scores - (scores[..., rows, y] - delta)[..., None]
    np.maximum(hinge, 0, out=hinge)
    hinge[..., rows, y] = 0  # the correct class is not a margin
    return hinge


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, shifted by the row max so exp never overflows.

    scores: (..., C). Returns a new array of the same shape and dtype.
    """
    logp = scores - scores.max(axis=-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    return logp


def svm_example_losses(scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0) -> np.ndarray:
    """sum_{j != y_i} max(0, s_j - s_{y_i} + delta) per example: (..., N) of scores (..., N, C)."""
    # A row sum: einsum is several times faster than .sum(axis=-1) over a short last axis.
    return np.einsum("...j->...", _svm_hinge(scores, y, delta))


def squared_hinge_example_losses(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> np.ndarray:
    """sum_{j != y_i} max(0, s_j - s_{y_i} + delta)^2 per example: (..., N) of (..., N, C)."""
    hinge = _svm_hinge(scores, y, delta)
    return np.einsum("...j,...j->...", hinge, hinge)


def _ovr_targets(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """t (N, C) of scores' (..., N, C) dtype: t_ij = +1 at j = y_i, else -1."""
    t = np.full(scores.shape[-2:], -1, dtype=scores.dtype)
    t[np.arange(len(y)), y] = 1
    return t


def _ovr_hinge(scores: np.ndarray, y: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """(max(0, delta - t_ij s_ij), t) of :func:`_ovr_targets`: each class against the rest.
    scores: (..., N, C); y: (N,). Returns new (..., N, C) and (N, C) arrays of scores' dtype."""
    t = _ovr_targets(scores, y)
    hinge = delta - t * scores
    np.maximum(hinge, 0, out=hinge)
    return hinge, t


def ovr_squared_hinge_example_losses(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> np.ndarray:
    """sum_j max(0, delta - t_ij s_ij)^2 per example (t: +1 at y_i, else -1): (..., N)."""
    hinge, _ = _ovr_hinge(scores, y, delta)
    return np.einsum("...j,...j->...", hinge, hinge)


def ovr_kink_gaps(scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0) -> np.ndarray:
    """How far each score may move before its own hinge reaches a margin of 0: |delta - t s|
    (N, C) of scores' dtype; each score is in one hinge only."""
    return np.abs(delta - _ovr_targets(scores, y) * scores)


def softmax_example_losses(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-log softmax(s_i)[y_i] per example: (..., N) of scores (..., N, C)."""
    return -log_softmax(scores)[..., np.arange(scores.shape[-2]), y]


def svm_kink_gaps(scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0) -> np.ndarray:
    """How far each score may move before a hinge of its example reaches a margin of 0.

    |margin_ij| for j != y_i; for j = y_i, which moves every margin, the smallest (inf for a
    single class). scores: (N, C); y: (N,). Returns (N, C) of scores' dtype.
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

    0.0 when reg is 0 (even where sum(W * W) overflows); inf, without a warning, on overflow.
    """
    if not reg:
        return 0.0
    V = _regularised(W, reg_bias)
    with np.errstate(over="ignore"):
        return float(reg * np.vdot(V, V))


def with_reg(
    data_loss: float, dW: np.ndarray, W: np.ndarray, reg: float, reg_bias: bool
) -> tuple[float, np.ndarray]:
    """(data_loss, dW) plus the L2 penalty and its gradient 2 * reg * W (dW in place)."""
    if reg:
        with np.errstate(over="ignore"):
            _regularised(dW, reg_bias)[...] += (2 * reg) * _regularised(W, reg_bias)
    return data_loss + reg_loss(W, reg, reg_bias), dW


# ---------------------------------------------------------------------------------------------
# Vectorised losses


def _hinge_score_gradient(
    scores: np.ndarray, y: np.ndarray, delta: float, *, squared: bool
) -> tuple[float, np.ndarray]:
    """The mean (squared) hinge data loss of scores (N, C) and its gradient coef (N, C) with
    respect to them (dW = coef.T @ X). At a margin of exactly 0 the slope taken is 0."""
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
    """(loss, dW) of W on X from the loss's ``score_gradient`` of X @ W.T, plus the L2 term."""
    X = np.asarray(X, dtype=W.dtype)
    data_loss, coef = score_gradient(X @ W.T, y, **hyperparameters)
    return with_reg(data_loss, coef.T @ X, W, reg, reg_bias)


def svm_score_gradient(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> tuple[float, np.ndarray]:
    """The mean multiclass SVM data loss of scores (N, C) and its gradient (N, C) by them."""
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
    """Multiclass SVM loss and gradient, vectorised; delta is the margin."""
    return _linear(svm_score_gradient, W, X, y, reg, reg_bias, delta=delta)


def squared_hinge_score_gradient(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> tuple[float, np.ndarray]:
    """The mean squared-hinge data loss of scores (N, C) and its gradient (N, C) by them."""
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
    """Squared hinge (L2-SVM, Weston-Watkins) loss and gradient, vectorised; delta: the margin."""
    return _linear(squared_hinge_score_gradient, W, X, y, reg, reg_bias, delta=delta)


def ovr_squared_hinge_score_gradient(
    scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0
) -> tuple[float, np.ndarray]:
    """The mean one-vs-rest squared hinge (the L2-SVM of Coates, Lee & Ng) data loss of
    scores (N, C) and its gradient (N, C) by them: -2 t max(0, delta - t s) / N."""
    n = scores.shape[0]
    hinge, t = _ovr_hinge(scores, y, delta)
    data_loss = float(np.vdot(hinge, hinge)) / n
    hinge *= t
    hinge *= scores.dtype.type(-2 / n)
    return data_loss, hinge


def ovr_squared_hinge_loss(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """The one-vs-rest squared hinge loss and its gradient (module docstring)."""
    return _linear(ovr_squared_hinge_score_gradient, W, X, y, reg, reg_bias, delta=delta)


def softmax_score_gradient(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean cross-entropy of scores (N, C) and its gradient (N, C) by them."""
    n = scores.shape[0]
    rows = np.arange(n)
    logp = log_softmax(scores)
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
    """Softmax (cross-entropy) loss and gradient, vectorised and numerically stable."""
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


def ovr_squared_hinge_loss_naive(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """:func:`ovr_squared_hinge_loss` with explicit loops over examples and classes."""
    num_classes, n = W.shape[0], X.shape[0]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n):
        x = X[i].astype(W.dtype)
        for j in range(num_classes):
            target = 1 if j == y[i] else -1
            margin = delta - target * (W[j] @ x)
            if margin > 0:
                loss += float(margin) ** 2 / n
                dW[j] -= 2 * margin * target * x / n
    return _reg_naive(loss, dW, W, reg, reg_bias)


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
    vectorised: (W, X, y, reg=0.0, *, reg_bias=True, **hyperparameters) -> (loss, dW).
    naive: the same, with loops over examples and classes (the reference).
    example_losses: (scores (..., N, C), y, **hyperparameters) -> (..., N) data losses.
    score_gradient: (scores (N, C), y, **hyperparameters) -> (mean data loss, its gradient
        (N, C) by the scores), for callers that compute the scores their own way.
    hyperparameters: its own options besides reg and reg_bias, each a ``model.<name>`` key.
    kink_gaps: (scores (N, C), y, **hyperparameters) -> (N, C), how far each score may move
        before the loss changes polynomial piece; None for a smooth loss.
    piecewise_degree: the degree of each example's loss between kinks, None if not polynomial.
    default_steps: the gradient check's step h by (dtype name, method) (docs/gradcheck.md).
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
        """This loss's hyperparameters read by name from ``settings`` (e.g. a ModelConfig)."""
        return {name: getattr(settings, name) for name in self.hyperparameters}

    def default_step(self, dtype: Any, method: str = "centered") -> float:
        """The gradient check's step h in ``dtype`` by ``method`` ("centered" or "forward")."""
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
    "ovr_squared_hinge": Loss(
        name="ovr_squared_hinge",
        vectorised=ovr_squared_hinge_loss,
        naive=ovr_squared_hinge_loss_naive,
        example_losses=ovr_squared_hinge_example_losses,
        score_gradient=ovr_squared_hinge_score_gradient,
        hyperparameters=("delta",),
        kink_gaps=ovr_kink_gaps,
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
    """For messages: "the svm loss's", "the svm and squared_hinge losses'"."""
    names = owners(hyperparameter)
    return f"the {' and '.join(names)} " + ("loss's" if len(names) == 1 else "losses'")


def predict(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(N,) intp: the class with the highest score for each row of X (N, D), W (C, D)."""
    return np.argmax(X @ W.T, axis=1)
