"""``svmtrain gradcheck``: the analytic gradient against finite differences.

Parses the options and prints what :func:`svmtrain.experiments.gradcheck.run_gradcheck`
returns; the verdict, the report and the JSON document are the library's.
"""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    config_option,
    config_overrides,
    data_dir_option,
    json_option,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import DTYPES, load_config
from svmtrain.core.differences import METHODS
from svmtrain.core.gradcheck import EXIT_STATUS, TOLERANCES
from svmtrain.core.losses import HYPERPARAMETERS, LOSSES, whose
from svmtrain.experiments.gradcheck import DEFAULT_CHECKS, run_gradcheck
from svmtrain.io.records import to_json


def _hyperparameter_options(command):
    """One option per loss hyperparameter of the registry (--delta for the svm loss's delta),
    passed to :func:`run_gradcheck` by name only when given. run_gradcheck checks the values."""
    for name in sorted(HYPERPARAMETERS, reverse=True):
        command = click.option(
            "--" + name.replace("_", "-"),
            name,
            metavar="FLOAT",
            help=f"{whose(name).capitalize()} {name}. [default: model.{name}]",
        )(command)
    return command


def _short(value: float) -> str:
    """1e-05 as '1e-5', 2.5e-05 as '2.5e-5', 0.1 as '1e-1'."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _by_dtype(values: dict[str, float]) -> str:
    """'1e-5' when every dtype has the same value, else '1e-6 in float64, 1e-5 in float32'."""
    texts = {dtype: _short(value) for dtype, value in values.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return ", ".join(f"{text} in {dtype}" for dtype, text in texts.items())


# The defaults --h and --tol show, read from the loss records and the tolerance table.
def _by_method(table: dict[tuple[str, str], float]) -> str:
    """'centered 1e-5, forward 1e-9 in float64, 1e-5 in float32' from {(dtype, method): v}."""
    return ", ".join(
        f"{method} {_by_dtype({d: v for (d, m), v in table.items() if m == method})}"
        for method in METHODS
    )


_DEFAULT_STEPS = "; ".join(
    f"{name}: {_by_method(dict(loss.default_steps))}" for name, loss in LOSSES.items()
)
_DEFAULT_TOLERANCES = _by_method(TOLERANCES)


@click.command(short_help="Check the analytic gradient against finite differences.")
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
    metavar="FLOAT",
    help=f"Finite-difference step. [default: the loss's: {_DEFAULT_STEPS}]",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="centered",
    show_default=True,
    help="Finite differences: centred (f(w+h) - f(w-h)) / 2h, or forward (f(w+h) - f(w)) / h.",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default="float64",
    show_default=True,
    help="The dtype of W and the images, in which the loss is computed.",
)
@click.option("--reg", metavar="FLOAT", help="L2 strength. [default: model.reg]")
@_hyperparameter_options
@click.option(
    "--reg-bias/--no-reg-bias",
    default=None,
    help="Whether the bias column is regularised. [default: model.reg_bias]",
)
@click.option(
    "--weight-scale",
    metavar="FLOAT",
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
    metavar="FLOAT",
    help="Pass when the largest relative error away from kinks and unresolved weights is "
    f"at most this. [default: {_DEFAULT_TOLERANCES}]",
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
@json_option
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
    **hyperparameters,
):
    """Check the analytic gradient of the loss against finite differences.

    W is drawn at random and the loss is taken over --num-examples images. Each checked weight
    gets its relative error |a - n| / (|a| + |n|) and the estimated error of its finite
    difference (fd error: truncation + rounding). Two kinds of weight are flagged, counted and
    left out of the verdict: "kink", whose probe moves a margin across 0 (a kink of the hinge
    losses); and "unresolved", whose relative error is above --tol while |a - n| is within the
    fd error: finite differences at this h cannot confirm it to the tolerance (the report says
    whether truncation or rounding is in the way, and what to change).

    \b
    Exit status:
      0  PASS: every judged weight within --tol (and the loop reference agrees)
      1  FAIL: a judged weight beyond --tol, or the loop reference disagrees
      3  INCONCLUSIVE: no weight could be judged (all at kinks or unresolved);
         no verdict on the gradient: try more --checks, another --h or --seed

    From the config (--config, --set) gradcheck takes model.* (loss, delta, reg, reg_bias,
    init_scale) and, without --synthetic, data.* and preprocess.*; its own options override
    them, e.g. --set preprocess.scaling=unit checks on unit-scaled pixels.

    \b
    Reading the largest relative error (CS231n notes; float64, centred differences):
      <= 1e-7        the gradient is right
      1e-7 .. 1e-4   questionable: fine near kinks, too high for a smooth loss
      1e-4 .. 1e-2   uncomfortable; above 1e-2 the gradient is probably wrong
    The bands read float64 centred differences only: forward differences are clearly less
    accurate, and float32 errors near 1e-2 prove little.

    \b
    Examples:
      svmtrain gradcheck --synthetic
      svmtrain gradcheck --synthetic --all --num-examples 200
      svmtrain gradcheck -c softmax --checks 50 --reference
    """
    if check_all and checks is not None:
        raise click.UsageError("Use either --checks K or --all, not both.")
    cfg = load_config(config_path, config_overrides(overrides, data_dir))
    run = run_gradcheck(
        cfg,
        loss=loss,
        num_examples=num_examples,
        synthetic=synthetic,
        checks=None if check_all else (checks or DEFAULT_CHECKS),
        h=h,
        method=method,
        dtype=dtype,
        tol=tol,
        reg=reg,
        reg_bias=reg_bias,
        weight_scale=weight_scale,
        seed=seed,
        full_loss=full_loss,
        reference=reference,
        progress=progress_enabled(quiet),
        **{name: value for name, value in hyperparameters.items() if value is not None},
    )
    click.echo(to_json(run.to_dict()) if as_json else run.report(rows))
    raise SystemExit(EXIT_STATUS[run.result.status])
