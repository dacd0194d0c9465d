"""Numerical gradients and gradient checks (CS231n optimisation notes). Pure: nothing printed.

- :func:`numerical_partials` / :func:`numerical_gradient`: finite differences of any scalar
  function of an array, one coordinate at a time, each probed value written back exactly.
- :func:`linear_numerical_partials`: the same finite differences of a linear classifier's loss,
  fast, using that a probe of W[c, d] moves only the scores of class c (see its docstring).
- :func:`svm_kinks`: the weights whose probe moves a hinge margin across 0, where a finite
  difference disagrees with a correct gradient.
- :func:`finite_difference_error`: how far each finite difference may be from the true
  derivative (truncation and rounding, an :class:`FdError`), so that a check can tell a wrong
  gradient from a difference too coarse to judge it.
- :func:`check_gradient`: analytic against numerical (and optionally the loop reference) on
  sampled or all weights, summarised in a :class:`GradCheck` with a verdict.

Relative error, per coordinate: |a - n| / max(|a| + |n|, tiny).

Why a per-coordinate error estimate: a finite difference n has an absolute error (truncation,
O(h^2) for centred differences of a smooth loss, plus rounding, about eps * |f| / h) that does
not shrink with the derivative. On a weight whose gradient is a hundred times smaller than
typical (its terms cancel over the examples) that fixed error becomes a relative error above
the tolerance although the analytic gradient is right: a correct softmax gradient on 200
pixel-scale examples gave 1.3e-6 on such weights against a median of 8e-11. Such a weight is
reported as *unresolved*: its relative error is above the tolerance but |a - n| is within the
estimated error of n, so finite differences cannot tell right from wrong there. It is counted,
listed and flagged like a kink, never counted as a pass; a weight whose |a - n| exceeds the
error estimate still fails, so a wrong gradient is caught wherever finite differences can see
it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from svmtrain.core.losses import EXAMPLE_LOSSES, LOSSES, NAIVE_LOSSES, LossFn, reg_loss

METHODS = ("centered", "forward")
TINY = np.finfo(np.float64).tiny  # the floor of |a| + |n|, so that 0 vs 0 is an error of 0

# Default tolerance on the largest relative error away from kinks, by (dtype, method).
# float64 centred: the notes' "1e-7 and less you should be happy". Forward differences carry an
# O(h) truncation error (h * f'' / 2; the L2 term alone gives h * reg in absolute terms), so
# they get the edge of the band the notes accept only for objectives with kinks. float32 rounds
# every score to ~1e-7 of its size, which a step of h turns into relative errors of 1e-4 on
# typical weights and near 1e-2 on weights with a small gradient: only gross errors show.
TOLERANCES: dict[tuple[str, str], float] = {
    ("float64", "centered"): 1e-7,
    ("float64", "forward"): 1e-4,
    ("float32", "centered"): 1e-1,
    ("float32", "forward"): 1e-1,
}

# The default step h. The SVM loss is piecewise linear, so away from kinks centred differences
# are exact but for rounding, which a larger step only lowers: the notes' 1e-5. Softmax is
# smooth; its O(h^2) truncation error grows with the cube of the score change h * |x|, and with
# pixel-scale inputs (|x| ~ 64) h = 1e-5 leaves relative errors near 1e-7 on ordinary weights,
# which 1e-6 cuts a hundredfold. In float32 rounding dominates, so the larger step stays.
_SMOOTH_FLOAT64_H = 1e-6
DEFAULT_H = 1e-5

# The weights of one class probed together by linear_numerical_partials: about 2**20 scores
# (8 MB in float64) per batch of probes, small enough to stay in cache-friendly territory.
_PROBE_BATCH_SCORES = 1 << 20
_KINK_BATCH = 4096

# Losses that, between kinks, are polynomials of degree <= 2 in each weight: the hinge is
# piecewise linear in W and the L2 penalty quadratic. A centred difference is exact for such a
# function, and a forward one is off by exactly reg * t (half the penalty's second derivative
# 2 * reg, times the step t), so their truncation error is known without a second probe. Any
# other loss is taken as smooth and its truncation error is estimated by Richardson's
# comparison of the steps h and 2h (see finite_difference_error).
PIECEWISE_QUADRATIC = frozenset({"svm"})

# Richardson's estimate of the truncation error is exact to leading order in h only. Doubling
# it covers the next orders: with the score steps h * |x| near 0.06 (pixels, h = 1e-3) it was
# still within 5% of the actual error, and at the default steps the next orders are ~1e-8 of
# it. Checked in tests/test_gradients.py.
_TRUNCATION_SAFETY = 2.0


class StepTooSmall(ValueError):
    """x + h rounds back to x: the step h is below the resolution of x's dtype there.

    h, dtype (a name) and value (the first such x) say where, for a caller to advise on."""

    def __init__(self, h: float, dtype: str, value: float) -> None:
        super().__init__(
            f"h={h:g} is too small for {dtype} values near {value:.3g}: "
            f"x + h rounds back to x. Use a larger h."
        )
        self.h, self.dtype, self.value = h, dtype, value


def relative_error(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """|a - n| / max(|a| + |n|, tiny), elementwise, in float64. a, n: same shape."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    return _relative_to(np.abs(a - n), a, n)


def _relative_to(size: np.ndarray, a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """size / max(|a| + |n|, tiny): an absolute difference as a relative error."""
    return size / np.maximum(np.abs(a) + np.abs(n), TINY)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")


def _probe_values(x0: np.ndarray, h: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(up, down): the values x0 + h and (centred) x0 - h or (forward) x0 itself, as stored in
    x0's dtype. The step actually taken, up - down, is what a difference quotient divides by.

    x0: (K,) floats. Raises StepTooSmall when a step rounds to nothing.
    """
    step = x0.dtype.type(h)
    up = x0 + step
    down = x0 - step if method == "centered" else x0
    flat = np.flatnonzero(up == down)
    if flat.size:
        raise StepTooSmall(h, x0.dtype.name, float(x0[flat[0]]))
    return up, down


def numerical_partials(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    coords: np.ndarray,
    h: float = DEFAULT_H,
    method: str = "centered",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Finite-difference partial derivatives of f at x, at the flat indices ``coords``.

    f: any scalar function of x (an array of floats, probed in place); coords: (K,) flat
    indices into x. Centred: (f(x + h e) - f(x - h e)) / (2h); forward: (f(x + h e) - f(x)) / h,
    where the divisor is the step actually stored in x's dtype. After each probe x holds exactly
    the value it had (saved and written back, even if f raises). ``progress(1)`` is called after
    each coordinate. Returns (K,) float64.
    """
    _check_method(method)
    coords = np.asarray(coords, dtype=np.intp)
    idx = np.unravel_index(coords, x.shape)
    saved = x[idx]  # a copy
    up, down = _probe_values(saved, h, method)
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


def _penalised(num_columns: int, reg_bias: bool) -> np.ndarray:
    """(D,) bool: the columns of W that the L2 penalty covers (all, or all but the bias)."""
    penalised = np.ones(num_columns, dtype=bool)
    penalised[-1] = reg_bias
    return penalised


def linear_numerical_partials(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    reg: float = 0.0,
    delta: float = 1.0,
    reg_bias: bool = True,
    h: float = DEFAULT_H,
    method: str = "centered",
) -> np.ndarray:
    """:func:`numerical_partials` of ``LOSSES[loss](W, X, y, reg, ...)[0]`` at the flat indices
    ``coords`` of W, without one matrix product per probe.

    Why it is the same finite difference: scores = X @ W.T, so setting W[c, d] to w + t moves
    scores[:, c] by t * X[:, d] and nothing else. Each probe's scores are therefore the cached
    scores with that one column moved, and each probe's loss is the loss module's own
    per-example loss (``EXAMPLE_LOSSES[loss]``) of those scores, averaged, plus the L2 term.
    Many probes of one class go through the per-example loss at once, as a (k, N, C) stack.

    The difference of two probes' losses is accumulated as per-example differences (and the L2
    term as reg * ((w + t)^2 - w^2)), so the terms a probe leaves alone cancel exactly instead
    of being added and subtracted in a sum of N * C terms; rounding noise is therefore smaller
    than with two whole loss evaluations, and the two agree to that noise (tested).

    W: (C, D); X: (N, D); y: (N,); coords: (K,) flat indices into W. Returns (K,) float64.
    """
    _check_method(method)
    example_losses = EXAMPLE_LOSSES[loss]
    X = np.asarray(X, dtype=W.dtype)
    n, num_classes = X.shape[0], W.shape[0]
    scores = X @ W.T
    base = example_losses(scores, y, delta=delta)  # (N,)
    cs, ds = np.unravel_index(np.asarray(coords, dtype=np.intp), W.shape)
    w0 = W[cs, ds]
    up, down = _probe_values(w0, h, method)
    penalised = _penalised(W.shape[1], reg_bias)

    def loss_change(k: np.ndarray, values: np.ndarray) -> np.ndarray:
        """L(W with W[c, d_k] = values) - L(W) for the probes k, all of one class c."""
        c, d = cs[k[0]], ds[k]
        t = values.astype(np.float64) - w0[k]  # (k,) the steps as stored
        probes = np.repeat(scores[None], len(k), axis=0)  # (k, N, C)
        probes[:, :, c] += t[:, None] * X[:, d].T
        data = (example_losses(probes, y, delta=delta) - base).sum(axis=1, dtype=np.float64) / n
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


def svm_kinks(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    h: float = DEFAULT_H,
    delta: float = 1.0,
) -> np.ndarray:
    """Which probes of W cross a kink of the SVM hinge.

    Probing W[c, d] by +-h moves scores[i, c] by +-h * X[i, d]. That moves the margin (i, c) of
    every example i whose class is not c, and every margin of the examples whose class is c.
    A margin s_j - s_{y_i} + delta within h * |X[i, d]| of 0 makes the finite difference see
    both slopes of max(0, .), so it disagrees with a correct (sub)gradient.

    W: (C, D); X: (N, D); y: (N,); coords: (K,) flat indices into W. Returns (K,) bool.
    """
    X = np.asarray(X, dtype=W.dtype)
    scores = X @ W.T
    rows = np.arange(len(y))
    gap = np.abs(scores - scores[rows, y][:, None] + delta)  # (N, C) distance from the kink
    gap[rows, y] = np.inf  # not a margin
    gap[rows, y] = gap.min(axis=1)  # column y_i moves all of example i's margins
    cs, ds = np.unravel_index(np.asarray(coords, dtype=np.intp), W.shape)
    out = np.empty(len(cs), dtype=bool)
    for start in range(0, len(cs), _KINK_BATCH):
        c, d = cs[start : start + _KINK_BATCH], ds[start : start + _KINK_BATCH]
        moves = h * np.abs(X[:, d])  # (N, k)
        out[start : start + _KINK_BATCH] = ((gap[:, c] <= moves) & (moves > 0)).any(axis=0)
    return out


def _loss_partials(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    reg: float,
    delta: float,
    reg_bias: bool,
    h: float,
    method: str,
    full_loss: bool,
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    """The finite differences of ``LOSSES[loss]`` at ``coords`` of W, by whole-loss probes
    (:func:`numerical_partials`) or the fast path (:func:`linear_numerical_partials`)."""
    options = {"delta": delta, "reg_bias": reg_bias}
    if full_loss:
        true_fn = LOSSES[loss]
        return numerical_partials(
            lambda w: true_fn(w, X, y, reg, **options)[0], W, coords, h, method, progress
        )
    return linear_numerical_partials(loss, W, X, y, coords, reg=reg, h=h, method=method, **options)


def _probed_columns(
    W: np.ndarray, coords: np.ndarray, h: float, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, up, down) for the probes of W at the flat indices ``coords``: each weight's column
    and its two probed values as stored (:func:`_probe_values`), in float64. (K,) each."""
    cs, ds = np.unravel_index(np.asarray(coords, dtype=np.intp), W.shape)
    up, down = _probe_values(W[cs, ds], h, method)
    return ds, up.astype(np.float64), down.astype(np.float64)


def probe_passes(loss: str) -> int:
    """How many passes over the weights :func:`check_gradient` makes: 1, or 2 for a smooth loss
    (the second, at step 2h, estimates the truncation error). For progress bars."""
    return 1 if loss in PIECEWISE_QUADRATIC else 2


def rounding_error_bound(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    *,
    reg: float = 0.0,
    delta: float = 1.0,
    reg_bias: bool = True,
    h: float = DEFAULT_H,
    method: str = "centered",
    full_loss: bool = False,
) -> np.ndarray:
    """A bound on the rounding error of each difference quotient (F(up) - F(down)) / step.

    Each of the two loss values carries a rounding error of eps (W's dtype) times the size of
    the numbers it is computed from, and the quotient divides their sum by the step: the
    textbook eps * |f| / h, with |f| replaced by the size of f's terms, which is what rounding
    scales with when they cancel. Per example that size is M_i = |l_i| + sum_j |s_ij| (the loss
    and the scores it is computed from); for the penalty, reg * v^2 at each probed value v.
    On the fast path each example's loss difference rounds on its own, so the two values carry
    2 * eps * mean(M_i). A whole-loss evaluation is one pairwise sum of the N * C data terms
    and one of the C * D penalty terms, whose rounding grows by ceil(log2(count)).

    Checked against the same differences in extended precision (np.longdouble): on CIFAR-10
    (unscaled, unit, standardised) and synthetic pixels, both losses and W from 1e-4 to 1e-1,
    the largest rounding error observed was 0.2 of this bound (tests/test_gradients.py).

    W: (C, D); X: (N, D); y: (N,); coords: (K,) flat indices into W. Returns (K,) float64.
    """
    X = np.asarray(X, dtype=W.dtype)
    scores = X @ W.T
    size = np.abs(EXAMPLE_LOSSES[loss](scores, y, delta=delta)) + np.abs(scores).sum(axis=1)
    ds, up, down = _probed_columns(W, coords, h, method)
    if full_loss:
        data_growth = np.ceil(np.log2(max(2, y.size * W.shape[0])))
        reg_growth = np.ceil(np.log2(max(2, W.size)))
        per_value = data_growth * float(size.mean()) + reg_growth * reg_loss(W, reg, reg_bias)
        terms = 2 * per_value
    else:
        penalty = np.where(_penalised(W.shape[1], reg_bias)[ds], reg * (up * up + down * down), 0)
        terms = 2 * float(size.mean()) + penalty
    return float(np.finfo(W.dtype).eps) * terms / (up - down)


class FdError(NamedTuple):
    """The estimated error of finite differences, by cause; (K,) float64 each."""

    truncation: np.ndarray  # of the difference quotient itself (0 for centred SVM differences)
    rounding: np.ndarray  # of the loss values it divides (rounding_error_bound and the like)

    @property
    def total(self) -> np.ndarray:
        """(K,) float64: truncation + rounding, the bound |numerical - true| is held to."""
        return self.truncation + self.rounding


def finite_difference_error(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
    numerical: np.ndarray,
    *,
    reg: float = 0.0,
    delta: float = 1.0,
    reg_bias: bool = True,
    h: float = DEFAULT_H,
    method: str = "centered",
    full_loss: bool = False,
    progress: Callable[[int], None] | None = None,
) -> FdError:
    """An estimate of |numerical - true partial derivative| for each finite difference, as
    truncation plus :func:`rounding_error_bound`, kept apart (an :class:`FdError`) so that a
    report can say which one keeps a weight from being judged: a smaller h lowers truncation,
    a larger one rounding. Kink crossings are not covered (svm_kinks).

    numerical: (K,) the differences at step h, as :func:`linear_numerical_partials` (or, with
    ``full_loss``, :func:`numerical_partials`) returned them for these arguments.

    Truncation. For the losses in PIECEWISE_QUADRATIC it is known: 0 centred, reg * t forward
    on penalised weights. For a smooth loss it is estimated from a second pass at step 2h
    (Richardson): a difference of order p (2 centred, 1 forward) is D(h) = f' + c h^p + ...,
    so D(2h) - D(h) = (2^p - 1) c h^p, and with rounding errors r_h, r_2h bounded by rho_h,
    rho_2h,  |D(h) - f'| <= |D(2h) - D(h)| / q + ((q + 1) rho_h + rho_2h) / q,  q = 2^p - 1,
    to leading order in h; the first term is doubled to cover the next orders. ``progress(1)``
    is called per weight of that second pass, and only with ``full_loss``.

    W: (C, D); X: (N, D); y: (N,); coords: (K,) flat indices into W.
    """
    _check_method(method)
    options = {"reg": reg, "delta": delta, "reg_bias": reg_bias, "method": method}
    rounding = rounding_error_bound(loss, W, X, y, coords, h=h, full_loss=full_loss, **options)
    if loss in PIECEWISE_QUADRATIC:
        if method == "centered":
            return FdError(np.zeros_like(rounding), rounding)
        ds, up, down = _probed_columns(W, coords, h, method)
        penalty = np.where(_penalised(W.shape[1], reg_bias)[ds], reg * (up - down), 0.0)
        return FdError(penalty, rounding)
    coarse = _loss_partials(
        loss, W, X, y, coords, h=2 * h, full_loss=full_loss, progress=progress, **options
    )
    coarse_rounding = rounding_error_bound(
        loss, W, X, y, coords, h=2 * h, full_loss=full_loss, **options
    )
    q = 3.0 if method == "centered" else 1.0
    truncation = _TRUNCATION_SAFETY * np.abs(coarse - numerical) / q
    return FdError(truncation, ((q + 1) * rounding + coarse_rounding) / q)


def bands_apply(dtype: str, method: str) -> bool:
    """Whether the CS231n bands read a relative error: only float64 centred differences."""
    return np.dtype(dtype) == np.float64 and method == "centered"


def _band(max_rel: float, dtype: str, method: str) -> str:
    """The CS231n reading of a largest relative error, or why there is none."""
    if np.isnan(max_rel):
        return "nothing to judge: every checked weight is at a kink or unresolved"
    if not bands_apply(dtype, method):
        why = []
        if np.dtype(dtype) != np.float64:
            why.append(f"{np.dtype(dtype).name} rounding alone gives relative errors near 1e-2")
        if method != "centered":
            why.append("forward differences add an O(h) truncation error")
        return (
            "the CS231n bands are for float64 centred differences and do not apply: "
            + " and ".join(why)
            + "; only the tolerance judges"
        )
    if max_rel <= 1e-7:
        return "excellent (<= 1e-7): the analytic gradient matches"
    if max_rel <= 1e-4:
        return "questionable (1e-7..1e-4): fine near kinks, too high for a smooth loss"
    if max_rel <= 1e-2:
        return "uncomfortable (1e-4..1e-2): the gradient may well be wrong"
    return "the gradient is probably wrong (> 1e-2)"


@dataclass(frozen=True)
class GradCheck:
    """The outcome of :func:`check_gradient`. Arrays are (K,), one entry per checked weight."""

    coords: np.ndarray  # (K, 2) intp: (class c, column d) of each weight
    analytic: np.ndarray  # float64
    numerical: np.ndarray  # float64
    rel_error: np.ndarray  # analytic vs numerical
    kink: np.ndarray  # bool: the probe crosses a hinge kink; left out of the statistics
    fd_error: np.ndarray  # float64: the estimated error of numerical (finite_difference_error)
    fd_truncation: np.ndarray  # float64: the truncation part of fd_error (the rest is rounding)
    # bool: rel_error above tol but |analytic - numerical| within fd_error, so finite
    # differences cannot judge this weight; left out of the statistics, like kinks
    unresolved: np.ndarray
    method: str
    h: float
    dtype: str
    tol: float
    max_rel_error: float  # over the judged weights (neither kink nor unresolved); NaN if none
    median_rel_error: float
    num_kinks: int
    num_unresolved: int
    passed: bool
    band: str  # what max_rel_error means, per the CS231n notes (or why they do not apply)
    loss_value: float  # the loss at W, from the analytic function
    reference: np.ndarray | None = None  # the loop implementation's gradient, if asked for
    reference_rel_error: np.ndarray | None = None  # analytic vs reference
    reference_loss: float | None = None
    reference_max_rel_error: float | None = None  # over the loss and the checked weights
    reference_tol: float | None = None

    @property
    def resolution(self) -> np.ndarray:
        """(K,) float64: fd_error as a relative error, fd_error / (|analytic| + |numerical|):
        the finest relative error finite differences can confirm on each weight."""
        return _relative_to(self.fd_error, self.analytic, self.numerical)

    @property
    def relative_truncation(self) -> np.ndarray:
        """(K,) float64: the truncation part of fd_error, relative like :attr:`resolution`."""
        return _relative_to(self.fd_truncation, self.analytic, self.numerical)


def default_step(loss: str, dtype: str) -> float:
    """The finite-difference step h for checking ``loss`` in ``dtype`` (see DEFAULT_H)."""
    if loss == "softmax" and np.dtype(dtype) == np.float64:
        return _SMOOTH_FLOAT64_H
    return DEFAULT_H


def default_tolerance(dtype: str, method: str) -> float:
    """The tolerance on the largest relative error for a check in ``dtype`` with ``method``."""
    return TOLERANCES[(np.dtype(dtype).name, method)]


def reference_tolerance(dtype: str) -> float:
    """Vectorised against loop: the same sums in another order, so rounding differences only."""
    return 1e-9 if np.dtype(dtype) == np.float64 else 1e-3


def check_gradient(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    coords: np.ndarray | None = None,
    reg: float = 0.0,
    delta: float = 1.0,
    reg_bias: bool = True,
    h: float | None = None,
    method: str = "centered",
    tol: float | None = None,
    full_loss: bool = False,
    reference: bool = False,
    analytic_fn: LossFn | None = None,
    progress: Callable[[int], None] | None = None,
) -> GradCheck:
    """Compare the analytic gradient of ``LOSSES[loss]`` at W with finite differences.

    W: (C, D) (its dtype is the computation dtype); X: (N, D); y: (N,).
    coords: (K,) flat indices of W to check; None checks every weight.
    full_loss: evaluate the whole loss for every probe (:func:`numerical_partials`) instead of
    the fast :func:`linear_numerical_partials`; ``progress(1)`` is then called per weight and
    pass (:func:`probe_passes`).
    reference: also compare with the loop implementation (``NAIVE_LOSSES[loss]``).
    analytic_fn: the (loss, dW) function under test, ``LOSSES[loss]`` by default; the finite
    differences always use ``LOSSES[loss]``'s loss. h: default :func:`default_step`;
    tol: default :func:`default_tolerance`.

    Each weight is judged, at a kink (SVM), or unresolved: relative error above tol while
    |analytic - numerical| is within :func:`finite_difference_error`. Passing means: at least
    one weight is judged, the max relative error over the judged weights is <= tol (and, with
    ``reference``, the loss and every checked partial derivative agree with the loop's to
    :func:`reference_tolerance`).
    """
    _check_method(method)
    h = default_step(loss, W.dtype) if h is None else h
    tol = default_tolerance(W.dtype, method) if tol is None else tol
    coords = np.arange(W.size) if coords is None else np.asarray(coords, dtype=np.intp)
    options = {"reg": reg, "delta": delta, "reg_bias": reg_bias}
    value, dW = (analytic_fn or LOSSES[loss])(W, X, y, **options)
    idx = np.unravel_index(coords, W.shape)
    analytic = dW[idx].astype(np.float64)
    probe = {"h": h, "method": method, "full_loss": full_loss, "progress": progress, **options}
    numerical = _loss_partials(loss, W, X, y, coords, **probe)
    fd = finite_difference_error(loss, W, X, y, coords, numerical, **probe)
    kink = (
        svm_kinks(W, X, y, coords, h=h, delta=delta)
        if loss == "svm"
        else np.zeros(coords.size, dtype=bool)
    )
    rel = relative_error(analytic, numerical)
    unresolved = ~kink & (rel > tol) & (np.abs(analytic - numerical) <= fd.total)
    judged = rel[~kink & ~unresolved]
    max_rel = float(judged.max()) if judged.size else float("nan")
    passed = bool(judged.size) and max_rel <= tol
    extra = {}
    if reference:
        ref_loss, ref_dW = NAIVE_LOSSES[loss](W, X, y, **options)
        ref = ref_dW[idx].astype(np.float64)
        ref_rel = relative_error(analytic, ref)
        ref_tol = reference_tolerance(W.dtype)
        worst = max(float(ref_rel.max()), float(relative_error(value, ref_loss)))
        passed = passed and worst <= ref_tol
        extra = {
            "reference": ref,
            "reference_rel_error": ref_rel,
            "reference_loss": ref_loss,
            "reference_max_rel_error": worst,
            "reference_tol": ref_tol,
        }
    return GradCheck(
        coords=np.stack(idx, axis=1),
        analytic=analytic,
        numerical=numerical,
        rel_error=rel,
        kink=kink,
        fd_error=fd.total,
        fd_truncation=fd.truncation,
        unresolved=unresolved,
        method=method,
        h=h,
        dtype=W.dtype.name,
        tol=tol,
        max_rel_error=max_rel,
        median_rel_error=float(np.median(judged)) if judged.size else float("nan"),
        num_kinks=int(kink.sum()),
        num_unresolved=int(unresolved.sum()),
        passed=passed,
        band=_band(max_rel, W.dtype, method),
        loss_value=value,
        **extra,
    )
