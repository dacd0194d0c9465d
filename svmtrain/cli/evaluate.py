"""``svmtrain evaluate``: accuracy, per-class accuracy and confusion matrix of a weights file."""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    check_output_files,
    check_png_path,
    data_dir_option,
    force_option,
    json_option,
    phase_log,
    progress_enabled,
    quiet_option,
    weights_option,
)
from svmtrain.experiments.evaluate import SPLITS, evaluate
from svmtrain.io.records import to_json


@click.command(
    "evaluate", short_help="Accuracy, per-class accuracy and confusion of saved weights."
)
@weights_option
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="test",
    show_default=True,
    help="The split to score: the run's test images, or its validation images.",
)
@data_dir_option
@json_option
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Also draw the confusion matrix as a PNG to this .png file (needs svmtrain[plot]).",
)
@force_option("--plot")
@quiet_option
def evaluate_cmd(weights_path, split, data_dir, as_json, plot_path, force, quiet):
    """Accuracy, per-class accuracy and confusion matrix of saved weights.

    The data are preprocessed with the mean image and scale stored in the weights file;
    --split test (the default) scores the test images the run was scored on (its config's
    data.num_test; all 10,000 unless it set fewer).
    """
    check_png_path(plot_path)
    check_output_files(force, plot_path)
    result = evaluate(
        weights_path,
        split,
        data_dir=data_dir,
        progress=progress_enabled(quiet),
        plot_path=plot_path,
        log=phase_log(quiet),
    )
    if result.warning:
        click.echo(f"Warning: {result.warning}", err=True)
    if plot_path:
        click.echo(f"wrote {plot_path}", err=as_json)
    click.echo(to_json(result.to_dict()) if as_json else result.text())
