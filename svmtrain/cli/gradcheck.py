"""``svmtrain gradcheck``: the analytic gradient against finite differences."""

from __future__ import annotations

import math
import time

import click
import numpy as np
from tqdm import tqdm

from svmtrain.cli._common import (
    config_option,
    data_dir_option,
    data_dir_override,
    format_table,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.core.gradients import (
    METHODS,
    PIECEWISE_QUADRATIC,
    GradCheck,
    StepTooSmall,
    bands_apply,
    check_gradient,
    default_step,
    default_tolerance,
    probe_passes,
)
from svmtrain.core.losses import LOSSES
from svmtrain.errors import ProblemSizeError
from svmtrain.experiments.gradcheck import make_problem
from svmtrain.io.records import to_json

DTYPES = ("float64", "float32")
DEFAULT_CHECKS = 10
# make_problem's arguments as options, with what to add to its message.
_SIZE_OPTIONS = {
    "num_examples": ("'--num-examples'", ""),
    "checks": ("'--checks'", " Use --all to check every weight."),
}


class _FiniteFloat(click.ParamType):
    """A finite float above ``low`` (or at it, when ``inclusive``): NaN and inf are refused."""

    name = "float"

    def __init__(self, low: float, inclusive: bool) -> None:
        self.low, self.inclusive = low, inclusive

    def convert(self, value, param, ctx):
        op = ">=" if self.inclusive else ">"
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number) and (number > self.low or (self.inclusive and number == self.low)):
            return number
        self.fail(f"must be a finite number {op} {self.low:g}. Got {value!r} instead.", param, ctx)


_POSITIVE = _FiniteFloat(0.0, inclusive=False)
_NON_NEGATIVE = _FiniteFloat(0.0, inclusive=True)


def _too_large_weights(err: StepTooSmall, weight_scale: float) -> str:
    """Why the default step rounds away: the weights are too large for it, not h too small."""
    return (
        f"the default step h={err.h:g} rounds away on {err.dtype} weights near {err.value:.3g} "
        f"(W = {weight_scale:g} * N(0, 1)): w + h == w. Use a smaller --weight-scale (or "
        "model.init_scale), or pass a larger --h."
    )


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1e}"


def _shown(result: GradCheck, rows: int) -> tuple[np.ndarray, str]:
    """Which rows of the table to print: all of them in index order, or the worst ``rows``."""
    k = len(result.rel_error)
    if k <= rows:
        return np.arange(k), ""
    # Largest errors first (unresolved weights among them, flagged), kinks after the rest.
    order = np.lexsort((-result.rel_error, result.kink))[:rows]
    return order, f"the {rows} largest relative errors of {k:,} weights (--json lists all)"


def _flag(result: GradCheck, k: int) -> str:
    if result.kink[k]:
        return "kink"
    return "unresolved" if result.unresolved[k] else ""


def _worst(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].max())


def _where(result: GradCheck, mask: np.ndarray, limit: int = 5) -> str:
    """'W[c, d], ...' for the first ``limit`` weights in ``mask``, by relative error."""
    worst = np.flatnonzero(mask)[np.argsort(-result.rel_error[mask])]
    named = ", ".join(f"W[{c}, {d}]" for c, d in result.coords[worst[:limit]])
    return named + (f" and {len(worst) - limit:,} more" if len(worst) > limit else "")


def _table(result: GradCheck, rows: int) -> str:
    shown, caption = _shown(result, rows)
    headers = ["weight (c, d)", "analytic", "numerical", "rel. error", "fd error", "flag"]
    if result.reference is not None:
        headers += ["loop", "rel. error (loop)"]
    lines = []
    for k in shown:
        c, d = result.coords[k]
        line = [
            f"({c}, {d})",
            f"{result.analytic[k]:+.6e}",
            f"{result.numerical[k]:+.6e}",
            f"{result.rel_error[k]:.1e}",
            f"{result.fd_error[k]:.1e}",
            _flag(result, k),
        ]
        if result.reference is not None:
            line += [f"{result.reference[k]:+.6e}", f"{result.reference_rel_error[k]:.1e}"]
        lines.append(line)
    table = format_table(headers, lines)
    return f"{caption}:\n{table}" if caption else table


def _by_truncation(result: GradCheck) -> np.ndarray:
    """(K,) bool: unresolved weights whose fd error is mostly truncation (a smaller h helps);
    the other unresolved ones are mostly rounding (their gradients are small against it)."""
    return result.unresolved & (2 * result.fd_truncation > result.fd_error)


def _truncation_advice(result: GradCheck, loss: str, reg: float) -> str:
    """What the truncation error of the unresolved weights is, and what lowers it."""
    by_truncation = _by_truncation(result)
    if result.method == "forward" and loss in PIECEWISE_QUADRATIC:
        # Between kinks the forward difference is off by exactly reg * t, the penalty's part.
        size = f"about h*reg = {result.h * reg:.2g}"
    else:
        size = f"up to {_worst(result.fd_truncation, by_truncation):.1e}"
    kind = "forward" if result.method == "forward" else "centred"
    fix = "use --method centered or a smaller --h" if kind == "forward" else "use a smaller --h"
    return (
        f"{kind} differences carry a truncation error of {size} here, up to "
        f"{_worst(result.relative_truncation, by_truncation):.1e} relative to |analytic| + "
        f"|numerical|, more than --tol allows: {fix}"
    )


def _unresolved_line(result: GradCheck, loss: str, reg: float) -> str:
    by_truncation = _by_truncation(result)
    causes = []
    if by_truncation.any():
        causes.append(
            f"{int(by_truncation.sum()):,} by truncation ({_truncation_advice(result, loss, reg)})"
        )
    by_rounding = result.unresolved & ~by_truncation
    if by_rounding.any():
        causes.append(
            f"{int(by_rounding.sum()):,} by rounding (their gradients are too small against the "
            "rounding error of the loss at this h)"
        )
    return (
        f"unresolved: relative error above the tolerance (up to "
        f"{_worst(result.rel_error, result.unresolved):.1e}) but within the resolution of the "
        f"finite difference (up to {_worst(result.resolution, result.unresolved):.1e}: fd error "
        "/ (|analytic| + |numerical|), the finest relative error it can confirm); "
        f"{'; '.join(causes)}: {_where(result, result.unresolved)}"
    )


def _verdict(result: GradCheck, loss: str, reg: float) -> str:
    if math.isnan(result.max_rel_error):
        advice = []
        if _by_truncation(result).any():
            sentence = _truncation_advice(result, loss, reg)
            advice.append(sentence[0].upper() + sentence[1:] + ".")
        if (result.kink | (result.unresolved & ~_by_truncation(result))).any():
            advice.append("Check more weights (--checks), another --seed or another --h.")
        return (
            "FAIL: every checked weight is at a kink or unresolved, so nothing could be judged. "
            + " ".join(advice)
        )
    reasons = []
    set_aside = result.kink | result.unresolved
    if result.max_rel_error > result.tol:
        c, d = result.coords[np.nanargmax(np.where(set_aside, np.nan, result.rel_error))]
        reasons.append(
            f"the largest relative error away from kinks and unresolved weights, "
            f"{result.max_rel_error:.1e} at W[{c}, {d}], is above the tolerance {result.tol:g}"
        )
    if result.reference is not None and result.reference_max_rel_error > result.reference_tol:
        reasons.append(
            f"the vectorised loss or gradient differs from the loop reference by a relative "
            f"error of {result.reference_max_rel_error:.1e} (tolerance {result.reference_tol:g})"
        )
    if reasons:
        return "FAIL: " + "; ".join(reasons) + "."
    verdict = (
        f"PASS: the largest relative error away from kinks and unresolved weights, "
        f"{result.max_rel_error:.1e}, is within the tolerance {result.tol:g}."
    )
    if result.num_unresolved:
        verdict += (
            f" {result.num_unresolved:,} unresolved weight(s) agree only to within their "
            f"finite-difference error: relative errors up to "
            f"{_worst(result.rel_error, result.unresolved):.1e}, within a resolution of up to "
            f"{_worst(result.resolution, result.unresolved):.1e}."
        )
    return verdict


def _notes(result: GradCheck, reg: float) -> list[str]:
    notes = []
    if result.dtype == "float32":
        notes.append(
            "float32: relative errors near 1e-2 are expected from rounding alone, so this check "
            "proves little; use --dtype float64 to check the maths."
        )
    if result.method == "forward":
        truncation = f" (the L2 term alone contributes h*reg = {result.h * reg:.2g})" if reg else ""
        notes.append(
            "forward differences have an O(h) truncation error"
            f"{truncation}, so their errors are clearly larger than centred ones; prefer "
            "--method centered."
        )
    return notes


def _report(
    result: GradCheck,
    settings: dict,
    seconds: float,
    rows: int,
    tol_source: str,
    notes: list[str],
    verdict: str,
) -> str:
    s = settings
    bias = "regularised" if s["reg_bias"] else "not regularised"
    lines = [
        f"gradcheck: {s['loss']} loss on {s['num_examples']} {s['data']} examples, "
        f"{result.dtype}, {result.method} differences with h={result.h:g}",
        f"reg={s['reg']:g}, delta={s['delta']:g}, bias {bias}; "
        f"W = {s['weight_scale']:g} * N(0, 1), seed {s['seed']}; "
        f"{len(result.rel_error):,} weights checked in {seconds:.2f} s",
        "",
    ]
    if rows:
        lines += [_table(result, rows), ""]
    lines += [
        f"max relative error {_fmt(result.max_rel_error)}, median "
        f"{_fmt(result.median_rel_error)} (kinks and unresolved excluded); "
        f"{result.num_kinks} at kinks, {result.num_unresolved} unresolved",
        f"tolerance {result.tol:g} ({tol_source})",
    ]
    if result.num_unresolved:
        lines.append(_unresolved_line(result, s["loss"], s["reg"]))
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
    lines += [f"note: {note}" for note in notes]
    lines.append(verdict)
    return "\n".join(lines)


def _as_json(result: GradCheck, info: dict, notes: list[str], verdict: str) -> str:
    weights = []
    for k in range(len(result.rel_error)):
        entry = {
            "c": int(result.coords[k, 0]),
            "d": int(result.coords[k, 1]),
            "analytic": float(result.analytic[k]),
            "numerical": float(result.numerical[k]),
            "rel_error": float(result.rel_error[k]),
            "fd_error": float(result.fd_error[k]),
            "kink": bool(result.kink[k]),
            "unresolved": bool(result.unresolved[k]),
        }
        if result.reference is not None:
            entry["reference"] = float(result.reference[k])
            entry["reference_rel_error"] = float(result.reference_rel_error[k])
        weights.append(entry)
    reference = None
    if result.reference is not None:
        reference = {
            "loss": result.reference_loss,
            "max_rel_error": result.reference_max_rel_error,
            "tol": result.reference_tol,
        }
    doc = {
        "passed": result.passed,
        "verdict": verdict,
        "band": result.band,
        **info,
        "dtype": result.dtype,
        "method": result.method,
        "h": result.h,
        "tol": result.tol,
        "loss_value": result.loss_value,
        "checked": len(weights),
        "num_kinks": result.num_kinks,
        "num_unresolved": result.num_unresolved,
        "max_rel_error": result.max_rel_error,
        "median_rel_error": result.median_rel_error,
        "reference": reference,
        "notes": notes,
        "weights": weights,
    }
    return to_json(doc)


@click.command()
@config_option
@set_option
@click.option("--loss", type=click.Choice(list(LOSSES)), help="[default: model.loss]")
@click.option(
    "--num-examples",
    "-n",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Examples in the loss.",
)
@click.option(
    "--checks",
    "-k",
    type=click.IntRange(min=1),
    help=f"Weights to check, drawn at random. [default: {DEFAULT_CHECKS}]",
)
@click.option("--all", "check_all", is_flag=True, help="Check every weight (30,730).")
@click.option(
    "--h",
    "h",
    type=_POSITIVE,
    help="Finite-difference step. [default: 1e-5; 1e-6 for softmax in float64]",
)
@click.option("--method", type=click.Choice(METHODS), default="centered", show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="float64", show_default=True)
@click.option("--reg", type=_NON_NEGATIVE, help="L2 strength. [default: model.reg]")
@click.option("--delta", type=_POSITIVE, help="SVM margin. [default: model.delta]")
@click.option(
    "--reg-bias/--no-reg-bias",
    default=None,
    help="Whether the bias column is regularised. [default: model.reg_bias]",
)
@click.option(
    "--weight-scale",
    type=_POSITIVE,
    help="W = scale * standard normal, where the gradient is checked. [default: model.init_scale]",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds W, the weights checked and the synthetic data.",
)
@click.option(
    "--tol",
    type=_POSITIVE,
    help="Pass when the largest relative error away from kinks and unresolved weights is "
    "at most this. "
    "[default: 1e-7 in float64 (1e-4 forward), 1e-1 in float32]",
)
@click.option(
    "--synthetic",
    is_flag=True,
    help="Random Gaussian pixels instead of CIFAR-10 (nothing downloaded).",
)
@click.option(
    "--reference",
    is_flag=True,
    help="Also compare the vectorised loss and gradient with the loop implementation.",
)
@click.option(
    "--full-loss",
    is_flag=True,
    help="Evaluate the whole loss for every probe (the textbook way: slower, noisier) instead "
    "of moving one column of cached scores.",
)
@click.option(
    "--rows",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Table rows at most; beyond that the largest errors are shown.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@data_dir_option
@quiet_option
def gradcheck(
    config_path,
    overrides,
    loss,
    num_examples,
    checks,
    check_all,
    h,
    method,
    dtype,
    reg,
    delta,
    reg_bias,
    weight_scale,
    seed,
    tol,
    synthetic,
    reference,
    full_loss,
    rows,
    as_json,
    data_dir,
    quiet,
):
    """Check the analytic gradient of the loss against finite differences.

    W is drawn at random and the loss is taken over --num-examples images. Each checked weight
    gets its relative error |a - n| / (|a| + |n|) and the estimated error of its finite
    difference (fd error: truncation + rounding). Two kinds of weight are flagged, counted and
    left out of the verdict: "kink", whose probe moves an SVM margin across 0 (a kink of the
    hinge); and "unresolved", whose relative error is above --tol while |a - n| is within the
    fd error: finite differences at this h cannot confirm it to the tolerance (the report says
    whether truncation or rounding is in the way, and what to change). Exit status 0 on pass,
    1 on fail.

    From the config (--config, --set) gradcheck takes model.* (loss, delta, reg, reg_bias,
    init_scale) and, without --synthetic, data.* and preprocess.*; its own options override
    them, e.g. --set preprocess.scaling=unit checks on unit-scaled pixels.

    \b
    Reading the largest relative error (CS231n notes; float64, centred differences):
      <= 1e-7        the gradient is right (a correct SVM gives ~1e-8 or less)
      1e-7 .. 1e-4   questionable: fine near kinks, too high for a smooth loss
      1e-4 .. 1e-2   uncomfortable; above 1e-2 the gradient is probably wrong
    The bands read float64 centred differences only: forward differences are clearly less
    accurate, and float32 errors near 1e-2 prove little.

    \b
    Examples:
      svmtrain gradcheck --synthetic
      svmtrain gradcheck --synthetic --all --num-examples 200
      svmtrain gradcheck --config configs/softmax.yaml --checks 50 --reference
    """
    if check_all and checks is not None:
        raise click.UsageError("Use either --checks K or --all, not both.")
    cfg = load_config(config_path, [*overrides, *data_dir_override(data_dir)])
    m = cfg.model
    loss = loss or m.loss
    reg = m.reg if reg is None else reg
    delta = m.delta if delta is None else delta
    reg_bias = m.reg_bias if reg_bias is None else reg_bias
    weight_scale = weight_scale or m.init_scale
    progress = progress_enabled(quiet)

    try:
        problem = make_problem(
            cfg,
            num_examples=num_examples,
            synthetic=synthetic,
            dtype=dtype,
            weight_scale=weight_scale,
            seed=seed,
            checks=None if check_all else (checks or DEFAULT_CHECKS),
            progress=progress,
        )
    except ProblemSizeError as err:
        option, advice = _SIZE_OPTIONS[err.argument]
        raise click.BadParameter(f"{err}{advice}", param_hint=option) from None
    W, X, y, coords = problem.W, problem.X, problem.y, problem.coords
    h_given = h is not None
    h = default_step(loss, dtype) if h is None else h
    tol_source = "--tol" if tol is not None else f"the default for {dtype} {method} differences"
    tol = default_tolerance(dtype, method) if tol is None else tol

    started = time.perf_counter()
    with tqdm(
        total=(W.size if coords is None else len(coords)) * probe_passes(loss),
        disable=not (progress and full_loss),
        unit="weight",
        desc="probing",
        leave=False,
    ) as bar:
        try:
            result = check_gradient(
                loss,
                W,
                X,
                y,
                coords=coords,
                reg=reg,
                delta=delta,
                reg_bias=reg_bias,
                h=h,
                method=method,
                tol=tol,
                full_loss=full_loss,
                reference=reference,
                progress=bar.update,
            )
        except StepTooSmall as err:
            if h_given:
                raise click.BadParameter(str(err), param_hint="'--h'") from None
            raise click.BadParameter(
                _too_large_weights(err, weight_scale), param_hint=["--weight-scale", "--h"]
            ) from None
    seconds = time.perf_counter() - started

    settings = {
        "loss": loss,
        "data": "synthetic" if synthetic else "cifar10",
        "num_examples": num_examples,
        "reg": reg,
        "delta": delta,
        "reg_bias": reg_bias,
        "weight_scale": weight_scale,
        "seed": seed,
        "full_loss": full_loss,
    }
    verdict = _verdict(result, loss, reg)
    notes = _notes(result, reg)
    if as_json:
        click.echo(_as_json(result, {**settings, "seconds": seconds}, notes, verdict))
    else:
        click.echo(_report(result, settings, seconds, rows, tol_source, notes, verdict))
    if not result.passed:
        raise SystemExit(1)
