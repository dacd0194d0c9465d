"""``svmtrain sweep-step``: the notes' step-size experiment."""

from __future__ import annotations

import click
import numpy as np

from svmtrain.cli._common import (
    check_plot_path,
    config_option,
    config_overrides,
    data_dir_option,
    duration,
    format_table,
    json_option,
    parsed,
    plot_option,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.errors import DivergenceError, ProblemSizeError
from svmtrain.experiments.sweep import (
    GRADIENTS,
    Sweep,
    numerical_evaluations,
    parse_range,
    parse_steps,
    run_sweep,
)
from svmtrain.experiments.train import load_splits
from svmtrain.io.plots import INSTALL_HINT
from svmtrain.io.records import to_json, write_csv

DEFAULT_RANGE = "-10:-1"


@click.command("sweep-step", epilog=f"--plot needs matplotlib: {INSTALL_HINT}")
@config_option
@set_option
@click.option(
    "--steps",
    metavar="S1,S2,...",
    callback=parsed(parse_steps),
    help="Step sizes to try, e.g. 1e-10,1e-8,1e-6 (sorted ascending).",
)
@click.option(
    "--range",
    "step_range",
    metavar="LOW:HIGH",
    callback=parsed(parse_range),
    help=f"Step sizes 10**k for every integer k from LOW to HIGH [default: {DEFAULT_RANGE}].",
)
@click.option(
    "--gradient",
    "method",
    type=click.Choice(GRADIENTS),
    default="analytic",
    show_default=True,
    help="The gradient to step along: the loss's formula, or the notes' centred finite "
    "differences (2 loss evaluations per weight: slow; the cost is estimated first).",
)
@click.option(
    "--num-examples",
    "-n",
    type=click.IntRange(min=1),
    help="Use the first N training images [default: the whole training split].",
)
@click.option(
    "--seed", type=click.IntRange(min=0), help="Seed of the starting W [default: train.seed]."
)
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the table to FILE."
)
@json_option
@plot_option("loss against step size (log axes)")
@data_dir_option
@quiet_option
def sweep_step(
    config_path,
    overrides,
    steps,
    step_range,
    method,
    num_examples,
    seed,
    csv_path,
    as_json,
    plot_path,
    data_dir,
    quiet,
):
    """Why the step size matters: the loss after one step along the negative gradient.

    Starts from W = rand(10, 3073) * 0.001 (seeded), computes the loss and its gradient dW
    on the training split, then evaluates the loss at W - step * dW for each step size. Too
    small a step barely lowers the loss, a good one lowers it most, larger ones overshoot and
    the loss explodes. The loss, reg, delta and data come from the config.

    With the built-in 'notes' config (mean-subtracted pixels in 0..255, reg 2.5e4) the
    default range shows all three: on CIFAR-10 the loss is lowest at 1e-5 and explodes above.
    The notes' figure has no regularisation: --set model.reg=0 (lowest at 1e-6, as in the
    notes).
    Standardized pixels without regularisation move the minimum to 1e-3: add --range -8:1.

    \b
    Examples:
      svmtrain sweep-step
      svmtrain sweep-step --range -9:-3 --csv sweep.csv --plot sweep.png
      svmtrain sweep-step --gradient numerical --num-examples 500
    """
    if steps is not None and step_range is not None:
        raise click.UsageError("--steps and --range both give the step sizes; use one of them.")
    steps = steps or step_range or parse_range(DEFAULT_RANGE)
    check_plot_path(plot_path)
    cfg = load_config(config_path, config_overrides(overrides, data_dir))
    progress = progress_enabled(quiet)
    splits = load_splits(cfg, progress=progress)
    seed = cfg.train.seed if seed is None else seed
    try:
        result = run_sweep(
            cfg,
            splits,
            steps,
            method=method,
            num_examples=num_examples,
            seed=seed,
            progress=progress,
            on_numerical_cost=_warn_numerical_cost,
        )
    except ProblemSizeError as err:
        raise click.BadParameter(str(err), param_hint="--num-examples") from None
    records = result.records()
    if csv_path:
        write_csv(csv_path, ["step", "loss", "change", "best", "worse"], records)
    if as_json:
        m = cfg.model
        document = {
            "loss": m.loss,
            "reg": m.reg,
            "delta": m.delta,
            "reg_bias": m.reg_bias,
            "dtype": cfg.preprocess.dtype,
            "gradient": method,
            "num_examples": num_examples or len(splits.y_train),
            "seed": seed,
            "original_loss": result.original_loss,
            "best_step": None if result.best is None else records[result.best]["step"],
            "steps": records,
        }
        click.echo(to_json(document))
    else:
        click.echo(_sweep_text(result))
    if plot_path:
        from svmtrain.io.plots import plot_sweep

        click.echo(
            f"wrote {plot_sweep(result.steps, result.losses, result.original_loss, plot_path)}"
        )
    if not np.isfinite(result.losses).any():
        raise DivergenceError(_OVERFLOW)


_OVERFLOW = "Every step made the loss overflow; try smaller steps, e.g. --range -14:-8."


_FEASIBLE_EXAMPLES = 500  # the -n the warning suggests: minutes, not hours, on CIFAR-10


def _warn_numerical_cost(seconds: float, num_weights: int, num_examples: int) -> None:
    evaluations = numerical_evaluations(num_weights)
    total = evaluations * seconds
    fewer = (
        f"-n {_FEASIBLE_EXAMPLES} would take about "
        f"{duration(total * _FEASIBLE_EXAMPLES / num_examples)}; "
        if num_examples > _FEASIBLE_EXAMPLES
        else ""
    )
    click.echo(
        f"Warning: the numerical gradient takes {evaluations:,} loss evaluations (2 per weight) "
        f"on {num_examples:,} images: about {duration(total)} at {seconds * 1000:.3g} ms each. "
        f"The time is proportional to the images (-n): {fewer}"
        "--gradient analytic takes one evaluation.",
        err=True,
    )


def _sweep_text(result: Sweep) -> str:
    """The notes' printout, then a table marking the best step and the steps that made the
    loss worse, then a one-line verdict (none when every loss overflowed: that is an error)."""
    lines = [f"original loss: {result.original_loss:f}"]
    lines += [
        f"for step size {step:.1e} new loss: {loss:f}"
        for step, loss in zip(result.steps, result.losses, strict=True)
    ]
    best = result.best
    rows = []
    for k, r in enumerate(result.records()):
        marks = (["best"] if k == best else []) + (["worse"] if r["worse"] else [])
        rows.append(
            (f"{r['step']:.1e}", f"{r['loss']:.6g}", f"{r['change']:+.4g}", ", ".join(marks))
        )
    table = format_table(["step size", "new loss", "change", ""], rows)
    worse = int(result.worse.sum())
    if not np.isfinite(result.losses).any():
        return "\n".join([*lines, "", table])  # the command then fails with _OVERFLOW
    if best is None:
        causes = []
        if result.unchanged.any():
            causes.append(
                f"{int(result.unchanged.sum())} left it unchanged (too small: try larger steps, "
                f"e.g. --range {DEFAULT_RANGE})"
            )
        if worse:
            causes.append(
                f"{worse} made it worse (too large: try smaller ones, e.g. --range -14:-8; or "
                "the gradient is wrong: svmtrain gradcheck)"
            )
        verdict = f"No step lowered the loss: {'; '.join(causes)}."
    else:
        verdict = (
            f"Best step {result.steps[best]:.1e}: loss {result.losses[best]:.6g} "
            f"({result.change[best] / result.original_loss:+.1%}); {worse} of "
            f"{len(result.steps)} steps made the loss worse."
        )
    return "\n".join([*lines, "", table, "", verdict])
