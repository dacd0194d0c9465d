"""``svmtrain landscape``: the loss along a random line and over a random plane through W."""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    check_output_file,
    check_plot_path,
    config_option,
    config_overrides,
    data_dir_option,
    force_option,
    json_option,
    plot_option,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.experiments.landscape import (
    DEFAULT_EXAMPLES,
    DEFAULT_GRID,
    DEFAULT_POINTS,
    DEFAULT_SPAN,
    MAX_GRID,
    MAX_POINTS,
    landscape_config,
    run_landscape,
)
from svmtrain.io.plots import INSTALL_HINT
from svmtrain.io.records import to_json
from svmtrain.io.runs import weights_file


@click.command(
    "landscape",
    short_help="The loss along a random line and over a random plane through W.",
    epilog=f"--plot needs matplotlib: {INSTALL_HINT}",
)
@config_option
@set_option
@click.option(
    "--weights",
    "-w",
    "weights_path",
    type=click.Path(),
    callback=lambda ctx, param, value: None if value is None else weights_file(value),
    help="Slice around trained weights: a weights.npz written by 'svmtrain fit', or its run "
    "directory. Their stored config gives the loss and the data (change it with --set) "
    "[default: a random W, as training starts from].",
)
@click.option(
    "--num-examples",
    "-n",
    type=click.IntRange(min=1),
    help="Slice the loss of the first N training images (and of the first one alone) "
    f"[default: {DEFAULT_EXAMPLES}, as in the notes' figure, or all if fewer].",
)
@click.option(
    "--span",
    type=click.FloatRange(min=0, max=1e6, min_open=True),
    default=DEFAULT_SPAN,
    show_default=True,
    help="a and b run from -SPAN to SPAN; at a = 1 the scores move by 1 (root mean square).",
)
@click.option(
    "--points",
    type=click.IntRange(min=3, max=MAX_POINTS),
    default=DEFAULT_POINTS,
    show_default=True,
    help="Values of a along the line.",
)
@click.option(
    "--grid",
    type=click.IntRange(min=3, max=MAX_GRID),
    default=DEFAULT_GRID,
    show_default=True,
    help="Values of a and of b along each side of the plane (GRID x GRID losses).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Seed of the random W and the directions [default: train.seed].",
)
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write every loss to FILE."
)
@json_option
@plot_option("the line and a heat map of the plane")
@force_option
@data_dir_option
@quiet_option
def landscape(
    config_path,
    overrides,
    weights_path,
    num_examples,
    span,
    points,
    grid,
    seed,
    csv_path,
    as_json,
    plot_path,
    force,
    data_dir,
    quiet,
):
    """The loss landscape of the CS231n notes: slices of the loss through W.

    Draws two random directions W1 and W2 and computes the loss L(W + a W1) along the line
    and L(W + a W1 + b W2) over the plane, for the first training image and for the first N.
    The directions are scaled so that a = 1 moves the examples' scores by 1 (root mean square).
    The loss, reg, delta and data come from the config (or, with --weights, from the config
    stored in the weights).

    For the multiclass SVM without regularisation the line of one example is piecewise linear
    and the plane of many a convex bowl; the notes' figures have no regularisation, so add
    --set model.reg=0 to see them (docs/notes.md).

    \b
    Examples:
      svmtrain landscape --set model.reg=0 --plot landscape.png
      svmtrain landscape -w runs/my-run --csv landscape.csv
      svmtrain landscape --set model.loss=softmax -n 1000 --json
    """
    if weights_path is not None and config_path is not None:
        raise click.UsageError(
            "--config and --weights both give the config: the weights carry their own; "
            "change it with --set."
        )
    check_plot_path(plot_path, force)
    check_output_file(csv_path, force)
    cfg = landscape_config(config_path, weights_path, config_overrides(overrides, data_dir))
    result = run_landscape(
        cfg,
        weights_path,
        num_examples=num_examples,
        span=span,
        points=points,
        grid=grid,
        seed=seed,
        progress=progress_enabled(quiet),
    )
    if result.warning:
        click.echo(f"Warning: {result.warning}", err=True)
    if csv_path:
        result.write_csv(csv_path)
    click.echo(to_json(result.to_dict()) if as_json else result.text())
    if plot_path:
        click.echo(f"wrote {result.plot(plot_path)}", err=as_json)
