"""How far a finite difference may be from the true derivative: truncation plus rounding.

- :func:`rounding_error_bound`: a bound on the rounding error of each difference quotient.
- :func:`finite_difference_error`: truncation (known for a loss that is a polynomial of low
  enough degree between kinks, estimated by Richardson's comparison of the steps h and 2h
  otherwise) and rounding, as an :class:`FdError`, so that a check can tell a wrong gradient
  from a difference too coarse to judge it. docs/gradcheck.md explains why a check needs this
  and how the bounds were tested.

Shapes: W (C, D), X (N, D), y (N,), coords (K,) flat indices into W. Pure: nothing printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from svmtrain.core.differences import (
    DEFAULT_H,
    check_method,
    loss_partials,
    penalised_columns,
    probed_columns,
)
from svmtrain.core.losses import LOSSES, reg_loss

# Richardson's estimate of the truncation error is exact to leading order in h only; doubling
# it covers the next orders (docs/gradcheck.md; checked in tests/test_gradients.py).
_TRUNCATION_SAFETY = 2.0
_ORDER = {"centered": 2, "forward": 1}  # the order p of each method's truncation error, O(h^p)


def truncation_known(loss: str, method: str) -> bool:
    """Whether the truncation error of ``method``'s differences of ``loss`` is known without a
    second probe: 0 for centred differences of a loss of degree <= 2 between kinks (a
    quadratic's centred differences are exact), reg * t for forward differences of a piecewise
    linear one (the L2 term's alone). Otherwise it is estimated from a second pass at 2h."""
    degree = LOSSES[loss].piecewise_degree
    return degree is not None and degree <= _ORDER[method]


def probe_passes(loss: str, method: str) -> int:
    """How many passes over the weights a check of ``loss`` by ``method`` makes: 1, or 2 when
    its truncation error must be estimated at a second step 2h (:func:`truncation_known`). The
    farthest probe is ``probe_passes * h`` from W: the kinks to look for lie within it."""
    return 1 if truncation_known(loss, method) else 2


def rounding_error_bound(
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
    full_loss: bool = False,
    **hyperparameters: float,
) -> np.ndarray:
    """A bound on the rounding error of each difference quotient (F(up) - F(down)) / step.

    Each of the two loss values carries a rounding error of eps (W's dtype) times the size of
    the numbers it is computed from, and the quotient divides their sum by the step: the
    textbook eps * |f| / h, with |f| replaced by the size of f's terms, which is what rounding
    scales with when they cancel. Per example that size is M_i = |l_i| + sum_j |s_ij| (the loss
    and the scores it is computed from); for the penalty, reg * v^2 at each probed value v.
    On the fast path each example's loss difference rounds on its own, so the two values carry
    2 * eps * mean(M_i). A whole-loss evaluation (``full_loss``) is one pairwise sum of the
    N * C data terms and one of the C * D penalty terms, whose rounding grows by
    ceil(log2(count)).

    hyperparameters: the loss's own (e.g. delta). Returns (K,) float64.
    """
    X = np.asarray(X, dtype=W.dtype)
    scores = X @ W.T
    examples = LOSSES[loss].example_losses(scores, y, **hyperparameters)
    size = np.abs(examples) + np.abs(scores).sum(axis=1)
    ds, up, down = probed_columns(W, coords, h, method)
    if full_loss:
        data_growth = np.ceil(np.log2(max(2, y.size * W.shape[0])))
        reg_growth = np.ceil(np.log2(max(2, W.size)))
        per_value = data_growth * float(size.mean()) + reg_growth * reg_loss(W, reg, reg_bias)
        terms = 2 * per_value
    else:
        penalised = penalised_columns(W.shape[1], reg_bias)[ds]
        terms = 2 * float(size.mean()) + np.where(penalised, reg * (up * up + down * down), 0)
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
    reg_bias: bool = True,
    h: float = DEFAULT_H,
    method: str = "centered",
    full_loss: bool = False,
    progress: Callable[[int], None] | None = None,
    **hyperparameters: float,
) -> FdError:
    """An estimate of |numerical - true partial derivative| for each finite difference, as
    truncation plus :func:`rounding_error_bound`, kept apart (an :class:`FdError`) so that a
    report can say which one keeps a weight from being judged: a smaller h lowers truncation,
    a larger one rounding. Kink crossings are not covered (:func:`probe_kinks`).

    numerical: (K,) the differences at step h, as
    :func:`~svmtrain.core.differences.loss_partials` returned them for these arguments.

    Truncation is known where :func:`truncation_known` says, and estimated from a second pass
    at step 2h (Richardson) otherwise: exactly for a loss of degree <= p + 1 between kinks (p:
    the method's order, 2 centred, 1 forward: e.g. forward differences of a piecewise quadratic
    loss), with a safety factor for a smooth one; docs/gradcheck.md ("Error estimates") derives
    it. ``progress(1)`` is called per weight of that second pass, and only with ``full_loss``.

    Returns an FdError of (K,) float64 arrays. Raises :class:`~svmtrain.errors.ArgumentError`
    for an unknown method.
    """
    check_method(method)
    options = {"reg": reg, "reg_bias": reg_bias, "method": method, **hyperparameters}
    rounding = rounding_error_bound(loss, W, X, y, coords, h=h, full_loss=full_loss, **options)
    if truncation_known(loss, method):
        if method == "centered":
            return FdError(np.zeros_like(rounding), rounding)
        ds, up, down = probed_columns(W, coords, h, method)
        penalty = np.where(penalised_columns(W.shape[1], reg_bias)[ds], reg * (up - down), 0.0)
        return FdError(penalty, rounding)
    coarse = loss_partials(
        loss, W, X, y, coords, h=2 * h, full_loss=full_loss, progress=progress, **options
    )
    coarse_rounding = rounding_error_bound(
        loss, W, X, y, coords, h=2 * h, full_loss=full_loss, **options
    )
    order, degree = _ORDER[method], LOSSES[loss].piecewise_degree
    # Between kinks a polynomial of degree <= p + 1 has D(h) = f' + c h^p exactly: no next orders.
    safety = 1.0 if degree is not None and degree <= order + 1 else _TRUNCATION_SAFETY
    q = 2.0**order - 1
    truncation = safety * np.abs(coarse - numerical) / q
    return FdError(truncation, ((q + 1) * rounding + coarse_rounding) / q)
