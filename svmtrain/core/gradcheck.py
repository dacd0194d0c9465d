"""The gradient check: an analytic gradient against finite differences, with a verdict.

:func:`check_gradient` compares the analytic gradient of a registered loss with finite
differences (:mod:`svmtrain.core.differences`) on sampled or all weights, sets apart the
weights at a kink and those whose finite difference is too coarse to judge them
(:mod:`svmtrain.core.fd_error`), and returns a :class:`GradCheck`. Its :meth:`GradCheck.verdict`
(PASS or FAIL, with the reason and the advice), :meth:`GradCheck.notes` and
:meth:`GradCheck.to_dict` are exactly what ``svmtrain gradcheck`` prints.

Relative error, per coordinate: |a - n| / max(|a| + |n|, tiny). A weight is *unresolved* when
its relative error is above the tolerance but |a - n| is within the estimated error of n:
finite differences cannot tell right from wrong there (docs/gradcheck.md has the story).

Shapes: W (C, D), X (N, D), y (N,), coords (K,) flat indices into W. Pure: nothing printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from svmtrain.core.differences import check_method, loss_partials, probe_kinks, probed_columns
from svmtrain.core.fd_error import finite_difference_error, probe_passes, truncation_known
from svmtrain.core.losses import LOSSES, LossFn
from svmtrain.errors import ArgumentError, StepTooLarge

# The exit status of ``svmtrain gradcheck`` by GradCheck.status. 2 is taken by bad arguments
# (click's usage errors), so an inconclusive check, which is neither a pass nor a failure of
# the code, gets 3 (as monitoring plugins' UNKNOWN).
EXIT_STATUS = {"pass": 0, "fail": 1, "inconclusive": 3}

TINY = np.finfo(np.float64).tiny  # the floor of |a| + |n|, so that 0 vs 0 is an error of 0

# Default tolerance on the largest relative error away from kinks, by (dtype, method);
# docs/gradcheck.md says where each comes from.
TOLERANCES: dict[tuple[str, str], float] = {
    ("float64", "centered"): 1e-7,
    ("float64", "forward"): 1e-4,
    ("float32", "centered"): 3e-3,
    ("float32", "forward"): 1e-2,
}


def relative_error(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """|a - n| / max(|a| + |n|, tiny), elementwise, in float64. a, n: same shape."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    return _relative_to(np.abs(a - n), a, n)


def _relative_to(size: np.ndarray, a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """size / max(|a| + |n|, tiny): an absolute difference as a relative error."""
    return size / np.maximum(np.abs(a) + np.abs(n), TINY)


def default_tolerance(dtype: Any, method: str) -> float:
    """The tolerance on the largest relative error for a check in ``dtype`` with ``method``."""
    return TOLERANCES[(np.dtype(dtype).name, method)]


def reference_tolerance(dtype: Any) -> float:
    """Vectorised against loop: the same sums in another order, so rounding differences only."""
    return 1e-9 if np.dtype(dtype) == np.float64 else 1e-3


def bands_apply(dtype: Any, method: str) -> bool:
    """Whether the CS231n bands read a relative error: only float64 centred differences."""
    return np.dtype(dtype) == np.float64 and method == "centered"


def _band(max_rel: float, dtype: Any, method: str) -> str:
    """The CS231n reading of a largest relative error, or why there is none."""
    if np.isnan(max_rel):
        return "nothing to judge: every checked weight is at a kink or unresolved"
    if not bands_apply(dtype, method):
        why = []
        if np.dtype(dtype) != np.float64:
            why.append(
                f"{np.dtype(dtype).name} rounding alone gives relative errors of 1e-3 and more"
            )
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


def _worst(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].max())


@dataclass(frozen=True)
class GradCheck:
    """The outcome of :func:`check_gradient`. Arrays are (K,), one entry per checked weight."""

    loss: str  # the registry name of the loss checked
    reg: float  # its L2 strength (the forward truncation advice quotes h * reg)
    coords: np.ndarray  # (K, 2) intp: (class c, column d) of each weight
    analytic: np.ndarray  # float64
    numerical: np.ndarray  # float64
    rel_error: np.ndarray  # analytic vs numerical
    kink: np.ndarray  # bool: the probe crosses a kink of the loss; left out of the statistics
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

    @property
    def by_truncation(self) -> np.ndarray:
        """(K,) bool: unresolved weights whose fd error is mostly truncation (a smaller h
        helps); the other unresolved ones are mostly rounding (their gradients are small)."""
        return self.unresolved & (2 * self.fd_truncation > self.fd_error)

    def where(self, mask: np.ndarray, limit: int = 5) -> str:
        """'W[c, d], ...' for the first ``limit`` weights in ``mask`` (K,), by relative error."""
        worst = np.flatnonzero(mask)[np.argsort(-self.rel_error[mask])]
        named = ", ".join(f"W[{c}, {d}]" for c, d in self.coords[worst[:limit]])
        return named + (f" and {len(worst) - limit:,} more" if len(worst) > limit else "")

    def truncation_advice(self) -> str:
        """What the truncation error of the unresolved weights is, and what lowers it."""
        by_truncation = self.by_truncation
        if self.method == "forward" and truncation_known(self.loss, self.method):
            # Between kinks the forward difference is off by exactly reg * t, the penalty's part.
            size = f"about h*reg = {self.h * self.reg:.2g}"
        else:
            size = f"up to {_worst(self.fd_truncation, by_truncation):.1e}"
        kind = "forward" if self.method == "forward" else "centred"
        fix = "use --method centered or a smaller --h" if kind == "forward" else "use a smaller --h"
        return (
            f"{kind} differences carry a truncation error of {size} here, up to "
            f"{_worst(self.relative_truncation, by_truncation):.1e} relative to |analytic| + "
            f"|numerical|, more than --tol allows: {fix}"
        )

    def unresolved_summary(self) -> str:
        """One line on the unresolved weights: how far off, why (truncation or rounding) and
        which. Meaningful only when num_unresolved > 0."""
        by_truncation = self.by_truncation
        causes = []
        if by_truncation.any():
            causes.append(
                f"{int(by_truncation.sum()):,} by truncation ({self.truncation_advice()})"
            )
        by_rounding = self.unresolved & ~by_truncation
        if by_rounding.any():
            causes.append(
                f"{int(by_rounding.sum()):,} by rounding (their gradients are too small against "
                "the rounding error of the loss at this h)"
            )
        return (
            f"unresolved: relative error above the tolerance (up to "
            f"{_worst(self.rel_error, self.unresolved):.1e}) but within the resolution of the "
            f"finite difference (up to {_worst(self.resolution, self.unresolved):.1e}: fd error "
            "/ (|analytic| + |numerical|), the finest relative error it can confirm); "
            f"{'; '.join(causes)}: {self.where(self.unresolved)}"
        )

    @property
    def status(self) -> str:
        """ "pass", "fail", or "inconclusive": no weight could be judged (every one at a kink
        or unresolved) and the loop reference, if asked for, agrees; that says nothing about
        the gradient, right or wrong. The CLI's exit status follows (EXIT_STATUS)."""
        if self.passed:
            return "pass"
        reference_failed = self.reference is not None and not (
            self.reference_max_rel_error <= self.reference_tol
        )
        return "inconclusive" if math.isnan(self.max_rel_error) and not reference_failed else "fail"

    def verdict(self) -> str:
        """'PASS: ...', 'FAIL: ...' or 'INCONCLUSIVE: ...', one paragraph: why, and what to
        change when nothing could be judged."""
        if self.status == "inconclusive":
            advice = []
            if self.by_truncation.any():
                sentence = self.truncation_advice()
                advice.append(sentence[0].upper() + sentence[1:] + ".")
            if (self.kink | (self.unresolved & ~self.by_truncation)).any():
                advice.append("Check more weights (--checks), another --seed or another --h.")
            return (
                "INCONCLUSIVE: every checked weight is at a kink or unresolved, so nothing "
                "could be judged; this is no verdict on the gradient, right or wrong. "
                + " ".join(advice)
            )
        reasons = []
        set_aside = self.kink | self.unresolved
        if math.isnan(self.max_rel_error):
            reasons.append("no weight could be judged (every one at a kink or unresolved)")
        elif self.max_rel_error > self.tol:
            c, d = self.coords[np.nanargmax(np.where(set_aside, np.nan, self.rel_error))]
            reasons.append(
                f"the largest relative error away from kinks and unresolved weights, "
                f"{self.max_rel_error:.1e} at W[{c}, {d}], is above the tolerance {self.tol:g}"
            )
        if self.reference is not None and not math.isfinite(self.reference_loss):
            reasons.append(
                f"the loop reference's loss is {self.reference_loss} (the vectorised loss "
                f"{self.loss_value!r}): one of the two implementations overflows"
            )
        elif self.reference is not None and self.reference_max_rel_error > self.reference_tol:
            reasons.append(
                f"the vectorised loss or gradient differs from the loop reference by a relative "
                f"error of {self.reference_max_rel_error:.1e} (tolerance {self.reference_tol:g})"
            )
        if reasons:
            return "FAIL: " + "; ".join(reasons) + "."
        verdict = (
            f"PASS: the largest relative error away from kinks and unresolved weights, "
            f"{self.max_rel_error:.1e}, is within the tolerance {self.tol:g}."
        )
        if self.num_unresolved:
            verdict += (
                f" {self.num_unresolved:,} unresolved weight(s) agree only to within their "
                f"finite-difference error: relative errors up to "
                f"{_worst(self.rel_error, self.unresolved):.1e}, within a resolution of up to "
                f"{_worst(self.resolution, self.unresolved):.1e}."
            )
        return verdict

    def notes(self) -> list[str]:
        """What the dtype and method of this check can and cannot prove, one note each."""
        notes = []
        if self.dtype == "float32":
            notes.append(
                "float32: rounding alone gives relative errors of 1e-3 and more, so this check "
                "catches a gradient wrong by about 1% (centred) or 10% (forward) but not less; "
                "use --dtype float64 to check the maths."
            )
        if self.method == "forward":
            penalty = self.h * self.reg
            truncation = (
                f" (the L2 term alone contributes h*reg = {penalty:.2g})" if self.reg else ""
            )
            notes.append(
                "forward differences have an O(h) truncation error"
                f"{truncation}, so their errors are clearly larger than centred ones; prefer "
                "--method centered."
            )
        return notes

    def weight_records(self) -> list[dict]:
        """One dict per checked weight: c, d, analytic, numerical, rel_error, fd_error, kink,
        unresolved (and reference, reference_rel_error with the loop reference)."""
        weights = []
        for k in range(len(self.rel_error)):
            entry = {
                "c": int(self.coords[k, 0]),
                "d": int(self.coords[k, 1]),
                "analytic": float(self.analytic[k]),
                "numerical": float(self.numerical[k]),
                "rel_error": float(self.rel_error[k]),
                "fd_error": float(self.fd_error[k]),
                "kink": bool(self.kink[k]),
                "unresolved": bool(self.unresolved[k]),
            }
            if self.reference is not None:
                entry["reference"] = float(self.reference[k])
                entry["reference_rel_error"] = float(self.reference_rel_error[k])
            weights.append(entry)
        return weights

    def to_dict(self) -> dict:
        """The check as a JSON-ready document (floats may be NaN): passed, status, verdict,
        band, loss, reg, dtype, method, h, tol, loss_value, checked, num_kinks, num_unresolved,
        max_rel_error, median_rel_error, reference (None, or loss, max_rel_error, tol), notes
        and weights (:meth:`weight_records`)."""
        reference = None
        if self.reference is not None:
            reference = {
                "loss": self.reference_loss,
                "max_rel_error": self.reference_max_rel_error,
                "tol": self.reference_tol,
            }
        return {
            "passed": self.passed,
            "status": self.status,
            "verdict": self.verdict(),
            "band": self.band,
            "loss": self.loss,
            "reg": self.reg,
            "dtype": self.dtype,
            "method": self.method,
            "h": self.h,
            "tol": self.tol,
            "loss_value": self.loss_value,
            "checked": len(self.rel_error),
            "num_kinks": self.num_kinks,
            "num_unresolved": self.num_unresolved,
            "max_rel_error": self.max_rel_error,
            "median_rel_error": self.median_rel_error,
            "reference": reference,
            "notes": self.notes(),
            "weights": self.weight_records(),
        }


def check_gradient(
    loss: str,
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    coords: np.ndarray | None = None,
    reg: float = 0.0,
    reg_bias: bool = True,
    h: float | None = None,
    method: str = "centered",
    tol: float | None = None,
    full_loss: bool = False,
    reference: bool = False,
    analytic_fn: LossFn | None = None,
    progress: Callable[[int], None] | None = None,
    **hyperparameters: float,
) -> GradCheck:
    """Compare the analytic gradient of ``LOSSES[loss]`` at W with finite differences.

    W: (C, D) (its dtype is the computation dtype); X: (N, D); y: (N,).
    coords: (K,) flat indices of W to check; None checks every weight.
    hyperparameters: the loss's own (e.g. delta=1.0 for svm; none for softmax).
    full_loss: evaluate the whole loss for every probe (slow, the textbook way) instead of the
    fast :func:`~svmtrain.core.differences.linear_numerical_partials`; ``progress(1)`` is then
    called per weight and pass (:func:`~svmtrain.core.fd_error.probe_passes`).
    reference: also compare with the loop implementation (the record's ``naive``).
    analytic_fn: the (loss, dW) function under test, ``LOSSES[loss]`` by default; the finite
    differences always use the registered loss. h: default the record's
    :meth:`~svmtrain.core.losses.Loss.default_step`;
    tol: default :func:`default_tolerance`.

    Each weight is judged, at a kink, or unresolved: relative error above tol while
    |analytic - numerical| is within the finite-difference error. Passing means: at least
    one weight is judged, the max relative error over the judged weights is <= tol (and, with
    ``reference``, the loss and every checked partial derivative agree with the loop's to
    :func:`reference_tolerance`).

    Returns a :class:`GradCheck` of K weights. Raises :class:`~svmtrain.errors.ArgumentError`
    for an unknown method, :class:`~svmtrain.errors.StepTooSmall` when a step h rounds away on
    some weight,
    :class:`~svmtrain.errors.StepTooLarge` when the probes overflow, and
    :class:`~svmtrain.errors.ArgumentError` (argument "W") when the loss at W is not finite.
    """
    check_method(method)
    record = LOSSES[loss]
    h = record.default_step(W.dtype, method) if h is None else h
    tol = default_tolerance(W.dtype, method) if tol is None else tol
    coords = np.arange(W.size) if coords is None else np.asarray(coords, dtype=np.intp)
    probed_columns(W, coords, h, method)  # a step that rounds away or overflows, first
    options = {"reg": reg, "reg_bias": reg_bias, **hyperparameters}
    # Overflow is checked for below and reported as one error, not as numpy warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        value, dW = (analytic_fn or record)(W, X, y, **options)
    if not math.isfinite(value):
        raise ArgumentError(
            "W",
            f"the loss at W is not finite ({value}): its scores overflow {W.dtype.name}, so "
            "there is no gradient to check there.",
        )
    idx = np.unravel_index(coords, W.shape)
    analytic = dW[idx].astype(np.float64)
    probe = {"h": h, "method": method, "full_loss": full_loss, "progress": progress, **options}
    with np.errstate(over="ignore", invalid="ignore"):
        numerical = loss_partials(loss, W, X, y, coords, **probe)
        fd = finite_difference_error(loss, W, X, y, coords, numerical, **probe)
        # Every probe (the second pass's at 2h too) must stay clear of kinks.
        reach = h * probe_passes(loss, method)
        kink = probe_kinks(loss, W, X, y, coords, h=reach, **hyperparameters)
    if not (np.isfinite(numerical).all() and np.isfinite(fd.total).all()):
        raise StepTooLarge(h, W.dtype.name)
    rel = relative_error(analytic, numerical)
    unresolved = ~kink & (rel > tol) & (np.abs(analytic - numerical) <= fd.total)
    judged = rel[~kink & ~unresolved]
    max_rel = float(judged.max()) if judged.size else float("nan")
    passed = bool(judged.size) and max_rel <= tol
    extra = {}
    if reference:
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite result FAILs below
            ref_loss, ref_dW = record.naive(W, X, y, **options)
        ref = ref_dW[idx].astype(np.float64)
        ref_tol = reference_tolerance(W.dtype)
        # A reference that is not finite agrees with nothing: its error is inf, never NaN.
        finite = math.isfinite(ref_loss) and bool(np.isfinite(ref).all())
        with np.errstate(invalid="ignore"):
            ref_rel = relative_error(analytic, ref)
        worst = math.inf
        if finite:
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
        loss=loss,
        reg=reg,
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
