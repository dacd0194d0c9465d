"""``svmtrain gradcheck`` as a library call: the problem, the check, the report.

:func:`make_problem` builds the problem a check runs on from a config: the data (CIFAR-10,
loaded and preprocessed as the config says by
:func:`svmtrain.experiments.common.load_splits`, or synthetic pixels from :func:`synthetic_data`),
the point W and the weights to check. :func:`run_gradcheck` builds it, runs
:func:`svmtrain.core.gradcheck.check_gradient` on it and returns a :class:`GradCheckRun`, whose
:meth:`~GradCheckRun.to_dict` and :meth:`~GradCheckRun.report` are exactly what
``svmtrain gradcheck --json`` and ``svmtrain gradcheck`` print::

    run = run_gradcheck(load_config(), synthetic=True, num_examples=200, checks=None)
    print(run.result.verdict())
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from svmtrain.config import Config
from svmtrain.core.fd_error import probe_passes
from svmtrain.core.gradcheck import GradCheck, bands_apply, check_gradient, default_tolerance
from svmtrain.core.losses import HYPERPARAMETERS, LOSSES, whose
from svmtrain.data.format import NUM_CLASSES
from svmtrain.data.preprocess import PIXELS
from svmtrain.errors import (
    ArgumentError,
    ProblemSizeError,
    StepTooSmall,
    require_count,
    require_finite,
)
from svmtrain.experiments.common import load_splits, random_streams
from svmtrain.io.records import format_table

SYNTHETIC_PIXEL_STD = 64.0  # about the spread of CIFAR-10 pixels once the mean image is subtracted
# The most synthetic examples a check draws: CIFAR-10's training set (50,000 images, 1.2 GB of
# float64 pixels). A check needs far fewer, and a larger count would only exhaust the memory.
MAX_SYNTHETIC_EXAMPLES = 50_000
DEFAULT_CHECKS = 10  # weights checked when the caller does not say


@dataclass(frozen=True)
class GradCheckProblem:
    """Where and on what to check a gradient."""

    W: np.ndarray  # (C, D) of the requested dtype
    X: np.ndarray  # (N, D) of the same dtype; the last column is the bias feature, 1
    y: np.ndarray  # (N,) intp in [0, C)
    coords: np.ndarray | None  # (K,) sorted distinct flat indices into W; None: every weight


def synthetic_data(
    num_examples: int,
    rng: np.random.Generator,
    *,
    pixel_std: float = SYNTHETIC_PIXEL_STD,
    num_pixels: int = PIXELS,
    num_classes: int = NUM_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """X (N, num_pixels + 1) float64: Gaussian pixels N(0, pixel_std^2), shaped like
    mean-subtracted CIFAR-10 by default, then the bias column of ones; y (N,) intp, uniform
    over the classes."""
    X = np.ones((num_examples, num_pixels + 1))
    X[:, :num_pixels] = rng.normal(0.0, pixel_std, (num_examples, num_pixels))
    return X, rng.integers(0, num_classes, num_examples).astype(np.intp)


def make_problem(
    cfg: Config,
    *,
    num_examples: int,
    synthetic: bool = False,
    dtype: str = "float64",
    weight_scale: float | None = None,
    seed: int = 0,
    checks: int | None = None,
    progress: bool = True,
) -> GradCheckProblem:
    """The first ``num_examples`` training images of CIFAR-10 (downloaded or cached, and
    preprocessed as ``cfg`` says; ``progress``: show the download's progress bar) or, with
    ``synthetic``, :func:`synthetic_data`; W = weight_scale * N(0, 1) (default
    cfg.model.init_scale), and ``checks`` weights drawn by :func:`spread_sample` (None: every
    one).

    Data, W and the sample come from separate streams of ``seed``, so that e.g. ``checks``
    does not change W. Raises :class:`~svmtrain.errors.ProblemSizeError` when
    ``num_examples`` or ``checks`` is below 1, ``num_examples`` more than the config's
    training images (synthetic: MAX_SYNTHETIC_EXAMPLES) or ``checks`` more than the weights.
    """
    require_count("num_examples", num_examples)
    require_count("checks", checks)
    data_rng, weight_rng, coord_rng = random_streams(seed, 3)
    if synthetic:
        if num_examples > MAX_SYNTHETIC_EXAMPLES:
            raise ProblemSizeError(
                "num_examples",
                f"must be at most {MAX_SYNTHETIC_EXAMPLES:,} with synthetic data (the size of "
                f"CIFAR-10's training set). Got {num_examples:,} instead.",
            )
        X, y = synthetic_data(num_examples, data_rng)
    else:
        splits = load_splits(cfg, progress=progress)
        available = len(splits.y_train)
        if num_examples > available:
            raise ProblemSizeError(
                "num_examples",
                f"must be at most {available} (the training images of this config). "
                f"Got {num_examples} instead.",
            )
        X = splits.design(splits.X_train[:num_examples], dtype)
        y = splits.y_train[:num_examples]
    X = X.astype(dtype, copy=False)
    scale = cfg.model.init_scale if weight_scale is None else weight_scale
    W = (scale * weight_rng.standard_normal((NUM_CLASSES, X.shape[1]))).astype(dtype)
    if checks is None:
        return GradCheckProblem(W, X, y, None)
    if checks > W.size:
        raise ProblemSizeError(
            "checks",
            f"must be at most {W.size:,} (the weights). Got {checks} instead. "
            "Use --all to check every weight.",
        )
    return GradCheckProblem(W, X, y, spread_sample(coord_rng, W.shape, checks))


def spread_sample(rng: np.random.Generator, shape: tuple[int, int], checks: int) -> np.ndarray:
    """``checks`` distinct flat indices into a W of ``shape`` (C, D), sorted, that cover as many
    class rows as they can (one weight in each of min(checks, C) rows drawn at random, one of
    those in the bias column, the last) and are otherwise drawn uniformly. So even a small
    sample sees a bug confined to the bias column or to one class. Returns (checks,) intp.
    """
    num_classes, num_columns = shape
    rows = rng.permutation(num_classes)[: min(checks, num_classes)]
    columns = rng.integers(0, num_columns - 1, size=rows.size)
    columns[0] = num_columns - 1
    spread = rows * num_columns + columns
    others = np.setdiff1d(np.arange(num_classes * num_columns), spread)
    rest = rng.choice(others, size=checks - spread.size, replace=False)
    return np.sort(np.concatenate([spread, rest])).astype(np.intp)


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1e}"


@dataclass(frozen=True)
class GradCheckRun:
    """A gradient check and what it was run on: the result, the settings, the time taken."""

    result: GradCheck
    # loss, data ("synthetic" | "cifar10"), num_examples, reg, the losses' hyperparameters
    # (e.g. delta), reg_bias, weight_scale, seed, full_loss
    settings: dict[str, Any]
    seconds: float
    tol_given: bool  # whether the tolerance was the caller's (else the default for dtype, method)

    def to_dict(self) -> dict:
        """The JSON document of ``svmtrain gradcheck --json``: the check's own document
        (:meth:`GradCheck.to_dict`) with the settings and seconds after its verdict and band."""
        check = self.result.to_dict()
        head = {key: check.pop(key) for key in ("passed", "status", "verdict", "band")}
        return {**head, **self.settings, "seconds": self.seconds, **check}

    def _table(self, rows: int) -> str:
        """The checked weights as a table: all in index order, or the worst ``rows``."""
        result = self.result
        k = len(result.rel_error)
        shown, caption = np.arange(k), ""
        if k > rows:
            # Largest errors first (unresolved weights among them, flagged), kinks after the rest.
            shown = np.lexsort((-result.rel_error, result.kink))[:rows]
            caption = f"the {rows} largest relative errors of {k:,} weights (--json lists all)"
        headers = ["weight (c, d)", "analytic", "numerical", "rel. error", "fd error", "flag"]
        if result.reference is not None:
            headers += ["loop", "rel. error (loop)"]
        lines = []
        for i in shown:
            c, d = result.coords[i]
            flag = "kink" if result.kink[i] else "unresolved" if result.unresolved[i] else ""
            line = [
                f"({c}, {d})",
                f"{result.analytic[i]:+.6e}",
                f"{result.numerical[i]:+.6e}",
                f"{result.rel_error[i]:.1e}",
                f"{result.fd_error[i]:.1e}",
                flag,
            ]
            if result.reference is not None:
                line += [f"{result.reference[i]:+.6e}", f"{result.reference_rel_error[i]:.1e}"]
            lines.append(line)
        table = format_table(headers, lines)
        return f"{caption}:\n{table}" if caption else table

    def report(self, rows: int = 20) -> str:
        """The text ``svmtrain gradcheck`` prints: the settings, a table of at most ``rows``
        weights (none for 0), the statistics, the reading, notes and the verdict."""
        result, s = self.result, self.settings
        bias = "regularised" if s["reg_bias"] else "not regularised"
        hyper = "".join(f", {name}={s[name]:g}" for name in sorted(HYPERPARAMETERS))
        tol_source = (
            "--tol"
            if self.tol_given
            else f"the default for {result.dtype} {result.method} differences"
        )
        lines = [
            f"gradcheck: {s['loss']} loss on {s['num_examples']} {s['data']} examples, "
            f"{result.dtype}, {result.method} differences with h={result.h:g}",
            f"reg={s['reg']:g}{hyper}, bias {bias}; "
            f"W = {s['weight_scale']:g} * N(0, 1), seed {s['seed']}; "
            f"{len(result.rel_error):,} weights checked in {self.seconds:.2f} s",
            "",
        ]
        if rows:
            lines += [self._table(rows), ""]
        lines += [
            f"max relative error {_fmt(result.max_rel_error)}, median "
            f"{_fmt(result.median_rel_error)} (kinks and unresolved excluded); "
            f"{result.num_kinks} at kinks, {result.num_unresolved} unresolved",
            f"tolerance {result.tol:g} ({tol_source})",
        ]
        if result.num_unresolved:
            lines.append(result.unresolved_summary())
        if result.reference is not None:
            lines.append(
                f"loop reference: loss {result.reference_loss!r} "
                f"(vectorised {result.loss_value!r}); largest relative error "
                f"{result.reference_max_rel_error:.1e} (tolerance {result.reference_tol:g})"
            )
        if bands_apply(result.dtype, result.method):
            lines.append(f"reading (CS231n bands for float64 centred differences): {result.band}")
        else:
            lines.append(f"reading: {result.band}")
        lines += [f"note: {note}" for note in result.notes()]
        lines.append(result.verdict())
        return "\n".join(lines)


def _too_large_weights(err: StepTooSmall, weight_scale: float) -> ArgumentError:
    """Why the default step rounds away: the weights are too large for it, not h too small."""
    return ArgumentError(
        ("weight_scale", "h"),
        f"the default step h={err.h:g} rounds away on {err.dtype} weights near {err.value:.3g} "
        f"(W = {weight_scale:g} * N(0, 1)): w + h == w. Use a smaller --weight-scale (or "
        "model.init_scale), or pass a larger --h.",
    )


def run_gradcheck(
    cfg: Config,
    *,
    loss: str | None = None,
    num_examples: int = 100,
    synthetic: bool = False,
    checks: int | None = DEFAULT_CHECKS,
    h: float | None = None,
    method: str = "centered",
    dtype: str = "float64",
    tol: float | None = None,
    reg: float | None = None,
    reg_bias: bool | None = None,
    weight_scale: float | None = None,
    seed: int = 0,
    full_loss: bool = False,
    reference: bool = False,
    progress: bool = True,
    **hyperparameters: float,
) -> GradCheckRun:
    """Check the gradient of a loss as ``svmtrain gradcheck`` does: :func:`make_problem`, then
    :func:`~svmtrain.core.gradcheck.check_gradient`, timed.

    loss, reg, reg_bias, weight_scale and the losses' hyperparameters (e.g. delta=2.0) default
    to cfg.model's; checks=None checks every weight; h and tol default to the loss's and the
    dtype's (:meth:`~svmtrain.core.losses.Loss.default_step`, ``default_tolerance``).
    ``progress`` shows the download's and (with ``full_loss``) the probes' progress bars.

    h, tol, weight_scale and the hyperparameters must be finite numbers > 0, reg a finite
    number >= 0; each may also be given as text (as a command line gives it), which messages
    quote as given.

    Returns a :class:`GradCheckRun`. Raises :class:`~svmtrain.errors.ArgumentError` naming the
    argument for a number out of those bounds, for a
    hyperparameter that the loss does not have (e.g. delta for softmax),
    :class:`~svmtrain.errors.ProblemSizeError` for an impossible num_examples or checks,
    :class:`~svmtrain.errors.StepTooSmall` when a given h rounds away on the weights,
    :class:`~svmtrain.errors.StepTooLarge` when the probes overflow, and ArgumentError naming
    weight_scale (and h) when the default h rounds away on the weights or the loss at W is not
    finite.
    """
    unknown = sorted(set(hyperparameters) - HYPERPARAMETERS)
    if unknown:
        known = ", ".join(sorted(HYPERPARAMETERS))
        raise ArgumentError(
            unknown[0], f"{unknown[0]!r} is not a hyperparameter of any loss (known: {known})."
        )
    h, tol, weight_scale = (
        None if value is None else require_finite(name, value)
        for name, value in (("h", h), ("tol", tol), ("weight_scale", weight_scale))
    )
    reg = None if reg is None else require_finite("reg", reg, inclusive=True)
    hyperparameters = {name: require_finite(name, v) for name, v in hyperparameters.items()}
    given = {"loss": loss, "reg": reg, "reg_bias": reg_bias, "init_scale": weight_scale}
    given.update(hyperparameters)
    model = dataclasses.replace(cfg.model, **{k: v for k, v in given.items() if v is not None})
    record = LOSSES[model.loss]
    for name in sorted(set(hyperparameters) - set(record.hyperparameters)):
        raise ArgumentError(name, f"the {model.loss} loss has no {name} ({whose(name)}).")
    problem = make_problem(
        cfg,
        num_examples=num_examples,
        synthetic=synthetic,
        dtype=dtype,
        weight_scale=model.init_scale,
        seed=seed,
        checks=checks,
        progress=progress,
    )
    W, coords = problem.W, problem.coords
    started = time.perf_counter()
    with tqdm(
        total=(W.size if coords is None else len(coords)) * probe_passes(model.loss, method),
        disable=not (progress and full_loss),
        unit="weight",
        desc="probing",
        leave=False,
    ) as bar:
        try:
            result = check_gradient(
                model.loss,
                W,
                problem.X,
                problem.y,
                coords=coords,
                reg=model.reg,
                reg_bias=model.reg_bias,
                h=h,
                method=method,
                tol=default_tolerance(dtype, method) if tol is None else tol,
                full_loss=full_loss,
                reference=reference,
                progress=bar.update,
                **record.options(model),
            )
        except StepTooSmall as err:
            if h is not None:
                raise
            raise _too_large_weights(err, model.init_scale) from None
        except ArgumentError as err:
            if err.arguments != ("W",):
                raise
            raise ArgumentError(
                "weight_scale", f"{err.reason} Use a smaller --weight-scale (or model.init_scale)."
            ) from None
    seconds = time.perf_counter() - started
    settings = {
        "loss": model.loss,
        "data": "synthetic" if synthetic else "cifar10",
        "num_examples": num_examples,
        "reg": model.reg,
        **{name: getattr(model, name) for name in sorted(HYPERPARAMETERS)},
        "reg_bias": model.reg_bias,
        "weight_scale": model.init_scale,
        "seed": seed,
        "full_loss": full_loss,
    }
    return GradCheckRun(result, settings, seconds, tol_given=tol is not None)
