"""Finite differences of a loss, and the probes of them that straddle a kink.

Shapes: W (C, D), X (N, D), y (N,), coords (K,) flat indices into W. Pure: nothing printed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svmtrain.core.losses import LOSSES
from svmtrain.errors import ArgumentError, StepTooLarge, StepTooSmall

METHODS = ("centered", "forward")
DEFAULT_H = 1e-5  # the CS231n notes' step, the default of the generic finite differences

_PROBE_BATCH_SCORES = 1 << 20  # scores per batch of probes of one class (docs/gradcheck.md)
_KINK_BATCH = 4096


def check_method(method: str) -> None:
    """Raises :class:`~svmtrain.errors.ArgumentError` unless ``method`` is one of METHODS."""
    if method not in METHODS:
        raise ArgumentError(
            "method", f"Unknown method {method!r}: choose one of {', '.join(METHODS)}."
        )


def probe_values(x0: np.ndarray, h: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(up, down): x0 + h and (centred) x0 - h or (forward) x0, as stored in x0's dtype.

    x0: (K,) floats. Raises :class:`~svmtrain.errors.StepTooSmall` when a step rounds to
    nothing, :class:`~svmtrain.errors.StepTooLarge` when a probed value overflows.
    """
    with np.errstate(over="ignore"):
        step = x0.dtype.type(h)
        up = x0 + step
        down = x0 - step if method == "centered" else x0
    if not (np.isfinite(up).all() and np.isfinite(down).all()):
        raise StepTooLarge(h, x0.dtype.name)
    flat = np.flatnonzero(up == down)
    if flat.size:
        raise StepTooSmall(h, x0.dtype.name, float(x0[flat[0]]))
    return up, down


def probed_columns(
    W: np.ndarray, coords: np.ndarray, h: float, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, up, down) for the probes of W at the flat indices ``coords``: each weight's column
    and its two probed values as stored (:func:`probe_values`), in float64. (K,) each."""
    cs, ds = np.unravel_index(np.asarray(coords, dtype=np.intp), W.shape)
    up, down = probe_values(W[cs, ds], h, method)
    return ds, up.astype(np.float64), down.astype(np.float64)


def penalised_columns(num_columns: int, reg_bias: bool) -> np.ndarray:
    """(D,) bool: the columns of W that the L2 penalty covers (all, or all but the bias)."""
    penalised = np.ones(num_columns, dtype=bool)
    penalised[-1] = reg_bias
    return penalised


def numerical_partials(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    coords: np.ndarray,
    h: float = DEFAULT_H,
    method: str = "centered",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Finite-difference partial derivatives of f at x, at the flat indices ``coords``.

    f: any scalar function of x (probed in place, each value written back even if f raises);
    coords: (K,) flat indices into x; the divisor is the step as stored in x's dtype.
    ``progress(1)`` is called after each coordinate. Returns (K,) float64. Raises ArgumentError
    for an unknown method and :class:`~svmtrain.errors.StepTooSmall` when x + h rounds to x.
    """
    check_method(method)
    coords = np.asarray(coords, dtype=np.intp)
    idx = np.unravel_index(coords, x.shape)
    saved = x[idx]  # a copy
    up, down = probe_values(saved, h, method)
    steps = up.astype(np.float64) - down.astype(np.float64)
    f_down = f(x) if method == "forward" else None
    out = np.empty(coords.size)
    for k in range(coords.size):
        at = tuple(i[k] for i in idx)
        try:
            x[at] = up[k]
            f_up = f(x)
            if method == "centered":
                x[at] = down[k]
                f_down = f(x)
        finally:
            x[at] = saved[k]
        out[k] = (f_up - f_down) / steps[k]
        if progress is not None:
            progress(1)
    return out


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = DEFAULT_H, method: str = "centered"
) -> np.ndarray:
    """The full finite-difference gradient of f at x: an array of x's shape, float64."""
    return numerical_partials(f, x, np.arange(x.size), h, method).reshape(x.shape)


def linear_numerical_partials(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    reg: float = 0.0,
    reg_bias: bool = True,
    h: float = DEFAULT_H,
    method: str = "centered",
    **hyperparameters: float,
) -> np.ndarray:
    """:func:`numerical_partials` of ``LOSSES[loss](W, X, y, reg, ...)[0]`` at the flat indices
    ``coords`` of W, moving one column of the cached scores per probe (docs/gradcheck.md).

    hyperparameters: the loss's own (e.g. delta for svm). Returns (K,) float64. Raises
    :class:`~svmtrain.errors.ArgumentError` for an unknown method.
    """
    check_method(method)
    example_losses = LOSSES[loss].example_losses
    X = np.asarray(X, dtype=W.dtype)
    n, num_classes = X.shape[0], W.shape[0]
    scores = X @ W.T
    base = example_losses(scores, y, **hyperparameters)  # (N,)
    cs, ds = np.unravel_index(np.asarray(coords, dtype=np.intp), W.shape)
    w0 = W[cs, ds]
    up, down = probe_values(w0, h, method)
    penalised = penalised_columns(W.shape[1], reg_bias)

    def loss_change(k: np.ndarray, values: np.ndarray) -> np.ndarray:
        """L(W with W[c, d_k] = values) - L(W) for the probes k, all of one class c."""
        c, d = cs[k[0]], ds[k]
        t = values.astype(np.float64) - w0[k]  # (k,) the steps as stored
        probes = np.repeat(scores[None], len(k), axis=0)  # (k, N, C)
        probes[:, :, c] += t[:, None] * X[:, d].T
        data = example_losses(probes, y, **hyperparameters) - base
        data = data.sum(axis=1, dtype=np.float64) / n
        v, v0 = values.astype(np.float64), w0[k].astype(np.float64)
        return data + np.where(penalised[d], reg * (v * v - v0 * v0), 0.0)

    out = np.empty(len(cs))
    batch = max(1, _PROBE_BATCH_SCORES // (n * num_classes))
    for c in np.unique(cs):
        of_c = np.flatnonzero(cs == c)
        for start in range(0, len(of_c), batch):
            k = of_c[start : start + batch]
            rise = loss_change(k, up[k])
            fall = loss_change(k, down[k]) if method == "centered" else 0.0
            out[k] = (rise - fall) / (up[k].astype(np.float64) - down[k].astype(np.float64))
    return out


def loss_partials(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    reg: float,
    reg_bias: bool,
    h: float,
    method: str,
    full_loss: bool,
    progress: Callable[[int], None] | None,
    **hyperparameters: float,
) -> np.ndarray:
    """The finite differences of ``LOSSES[loss]`` at ``coords`` of W, by whole-loss probes
    (:func:`numerical_partials`, which calls ``progress(1)`` per weight) or by the fast path
    (:func:`linear_numerical_partials`). Returns (K,) float64."""
    if full_loss:
        loss_fn = LOSSES[loss]
        return numerical_partials(
            lambda w: loss_fn(w, X, y, reg, reg_bias=reg_bias, **hyperparameters)[0],
            W,
            coords,
            h,
            method,
            progress,
        )
    options = {"reg": reg, "reg_bias": reg_bias, "h": h, "method": method, **hyperparameters}
    return linear_numerical_partials(loss, W, X, y, coords, **options)


def probe_kinks(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    h: float = DEFAULT_H,
    **hyperparameters: float,
) -> np.ndarray:
    """Which probes of W cross a kink of ``LOSSES[loss]``: all False for a loss without kinks.

    Probing W[c, d] by +-h moves scores[i, c] by +-h * X[i, d]: a kink is crossed when that
    reaches the score's ``kink_gaps``. Returns (K,) bool.
    """
    kink_gaps = LOSSES[loss].kink_gaps
    coords = np.asarray(coords, dtype=np.intp)
    if kink_gaps is None:
        return np.zeros(coords.size, dtype=bool)
    X = np.asarray(X, dtype=W.dtype)
    gap = kink_gaps(X @ W.T, y, **hyperparameters)  # (N, C)
    cs, ds = np.unravel_index(coords, W.shape)
    out = np.empty(len(cs), dtype=bool)
    for start in range(0, len(cs), _KINK_BATCH):
        c, d = cs[start : start + _KINK_BATCH], ds[start : start + _KINK_BATCH]
        moves = h * np.abs(X[:, d])  # (N, k)
        out[start : start + _KINK_BATCH] = ((gap[:, c] <= moves) & (moves > 0)).any(axis=0)
    return out
