"""Linear classifiers' losses and their analytic gradients (CS231n optimisation notes).

Shapes, throughout: W (C, D) with D = 3072 + 1 (bias trick: the last column of X is 1 and the
last column of W is the bias), X (N, D), y (N,) ints in [0, C), scores = X @ W.T (N, C).
The dtype of W is the computation dtype (float32 and float64 both work): X is cast to it.

Every loss has the same signature, so a registry caller can pass every option to any loss::

    loss, dW = LOSSES[name](W, X, y, reg, delta=delta, reg_bias=reg_bias)

It returns the mean data loss over the N examples plus ``reg * sum(W * W)`` (the bias column
excluded when ``reg_bias`` is False), as a Python float, and dW (C, D) of W's dtype.

The ``*_naive`` twins loop over examples and classes in Python: they are the slow, obvious
reference that the tests and ``svmtrain gradcheck --reference`` compare against.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ---------------------------------------------------------------------------------------------
# Per-example losses as functions of the scores. The vectorised losses are built on these, and
# svmtrain.core.gradients uses them to evaluate many probes of W at once from cached scores.


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


def softmax_example_losses(scores: np.ndarray, y: np.ndarray, *, delta: float = 1.0) -> np.ndarray:
    """Cross-entropy of each example: -log softmax(s_i)[y_i]. ``delta`` is ignored (no margin).

    scores: (..., N, C); y: (N,). Returns (..., N) of scores' dtype.
    """
    return -_log_softmax(scores)[..., np.arange(scores.shape[-2]), y]


# ---------------------------------------------------------------------------------------------
# Regularisation


def _regularised(A: np.ndarray, reg_bias: bool) -> np.ndarray:
    """The part of A (C, D) that the L2 penalty covers: a view, without the bias column if asked."""
    return A if reg_bias else A[:, :-1]


def reg_loss(W: np.ndarray, reg: float, reg_bias: bool = True) -> float:
    """reg * sum(W * W) over W (C, D), the bias column excluded when ``reg_bias`` is False."""
    V = _regularised(W, reg_bias)
    return float(reg * np.vdot(V, V))


def _with_reg(
    data_loss: float, dW: np.ndarray, W: np.ndarray, reg: float, reg_bias: bool
) -> tuple[float, np.ndarray]:
    """Adds the L2 penalty and its gradient 2 * reg * W to (data_loss, dW) in place."""
    if reg:
        _regularised(dW, reg_bias)[...] += (2 * reg) * _regularised(W, reg_bias)
    return data_loss + reg_loss(W, reg, reg_bias), dW


# ---------------------------------------------------------------------------------------------
# Vectorised losses


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
    X = np.asarray(X, dtype=W.dtype)
    n = X.shape[0]
    hinge = _svm_hinge(X @ W.T, y, delta)
    data_loss = float(hinge.sum()) / n
    # Each violated margin adds x_i to its class's row and takes x_i from the correct row.
    coef = (hinge > 0).astype(W.dtype)
    rows = np.arange(n)
    coef[rows, y] = -coef.sum(axis=1)
    coef /= n
    return _with_reg(data_loss, coef.T @ X, W, reg, reg_bias)


def softmax_loss(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """Softmax (cross-entropy) loss and gradient, vectorised and numerically stable.

    W: (C, D); X: (N, D), cast to W's dtype; y: (N,) ints in [0, C).
    ``delta`` is accepted so that every loss takes the same options, and ignored.
    Returns (loss, dW (C, D) of W's dtype).
    """
    X = np.asarray(X, dtype=W.dtype)
    n = X.shape[0]
    rows = np.arange(n)
    logp = _log_softmax(X @ W.T)
    data_loss = -float(logp[rows, y].sum()) / n
    coef = np.exp(logp)  # the probabilities; d loss_i / d s_ij = p_ij - [j == y_i]
    coef[rows, y] -= 1
    coef /= n
    return _with_reg(data_loss, coef.T @ X, W, reg, reg_bias)


# ---------------------------------------------------------------------------------------------
# The loop references: one example and one class at a time, nothing shared with the above.


def _reg_naive(
    loss: float, dW: np.ndarray, W: np.ndarray, reg: float, reg_bias: bool
) -> tuple[float, np.ndarray]:
    end = W.shape[1] if reg_bias else W.shape[1] - 1
    for j in range(W.shape[0]):
        w = W[j, :end]
        loss += reg * float(w @ w)
        dW[j, :end] += 2 * reg * w
    return loss, dW


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
                loss += float(margin) / n
                dW[j] += x / n
                dW[y[i]] -= x / n
    return _reg_naive(loss, dW, W, reg, reg_bias)


def softmax_loss_naive(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    reg: float = 0.0,
    *,
    delta: float = 1.0,
    reg_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """:func:`softmax_loss` with explicit loops over examples and classes (the reference)."""
    num_classes, n = W.shape[0], X.shape[0]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n):
        x = X[i].astype(W.dtype)
        scores = [float(W[j] @ x) for j in range(num_classes)]
        top = max(scores)
        exps = [np.exp(s - top) for s in scores]
        total = sum(exps)
        loss -= np.log(exps[y[i]] / total) / n
        for j in range(num_classes):
            dW[j] += (exps[j] / total - (j == y[i])) * x / n
    return _reg_naive(float(loss), dW, W, reg, reg_bias)


# ---------------------------------------------------------------------------------------------
# Registries

LossFn = Callable[..., tuple[float, np.ndarray]]

LOSSES: dict[str, LossFn] = {"svm": svm_loss, "softmax": softmax_loss}
NAIVE_LOSSES: dict[str, LossFn] = {"svm": svm_loss_naive, "softmax": softmax_loss_naive}
EXAMPLE_LOSSES: dict[str, Callable[..., np.ndarray]] = {
    "svm": svm_example_losses,
    "softmax": softmax_example_losses,
}


def predict(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(N,) intp: the class with the highest score for each row of X (N, D), W (C, D)."""
    return np.argmax(X @ W.T, axis=1)
