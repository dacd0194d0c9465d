"""``svmtrain sweep-step``: the notes' step-size experiment."""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    check_output_files,
    check_png_path,
    config_option,
    config_overrides,
    data_dir_option,
    force_option,
    json_option,
    parsed,
    phase_lines,
    plot_option,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.experiments.sweep import (
    DEFAULT_RANGE,
    GRADIENTS,
    numerical_cost_warning,
    parse_range,
    parse_steps,
    run_sweep,
)
from svmtrain.io.plots import INSTALL_HINT
from svmtrain.io.records import to_json


@click.command(
    "sweep-step",
    short_help="The loss after one step along -gradient, for each step size.",
    epilog=f"--plot needs matplotlib: {INSTALL_HINT}",
)
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
    help="The gradient to step along: the loss's formula, or finite differences with the "
    "notes' h = 1e-5, centred (2 loss evaluations per weight) where the notes' code takes "
    "forward differences (1 per weight): more accurate, twice the cost. Slow: the cost is "
    "estimated first.",
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
@force_option("--csv", "--plot")
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
    force,
    data_dir,
    quiet,
):
    """Why the step size matters: the loss after one step along the negative gradient.

    Starts from W = rand(10, 3073) * 0.001 (seeded), computes the loss and its gradient dW
    on the training split, then evaluates the loss at W - step * dW for each step size. Too
    small a step barely lowers the loss, a good one lowers it most, larger ones overshoot and
    the loss explodes. The loss, reg, delta and data come from the config.

    With the built-in 'notes' config (mean-subtracted pixels in 0..255, reg 2.5e4) the
    default range shows all three; docs/sweep-step.md has where the loss is lowest on
    CIFAR-10. The notes' figure has no regularisation: --set model.reg=0. Standardized pixels
    without regularisation take larger steps: add --range -8:1.

    \b
    Examples:
      svmtrain sweep-step
      svmtrain sweep-step --range -9:-3 --csv sweep.csv --plot sweep.png
      svmtrain sweep-step --gradient numerical --num-examples 500
    """
    if steps is not None and step_range is not None:
        raise click.UsageError("--steps and --range both give the step sizes; use one of them.")
    check_png_path(plot_path)
    check_output_files(force, csv_path, plot_path)
    cfg = load_config(config_path, config_overrides(overrides, data_dir))
    result = run_sweep(
        cfg,
        None,
        steps or step_range,
        method=method,
        num_examples=num_examples,
        seed=seed,
        progress=progress_enabled(quiet),
        log=phase_lines(quiet),
        on_numerical_cost=lambda *cost: click.echo(numerical_cost_warning(*cost), err=True),
    )
    click.echo(to_json(result.to_dict()) if as_json else result.text())
    if csv_path:
        click.echo(f"wrote {result.write_csv(csv_path)}", err=as_json)
    if plot_path:
        from svmtrain.io.plots import plot_sweep

        drawn = plot_sweep(
            result.steps, result.losses, result.original_loss, plot_path, result.description()
        )
        click.echo(f"wrote {drawn}", err=as_json)
    result.require_a_finite_loss()
