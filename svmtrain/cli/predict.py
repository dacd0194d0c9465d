"""``svmtrain predict``: the class and the class scores of image files and CIFAR-10 test images."""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    data_dir_option,
    json_option,
    progress_enabled,
    quiet_option,
    weights_option,
)
from svmtrain.experiments.predict import predict, predictions_text
from svmtrain.io.records import to_json


@click.command("predict", short_help="The class and scores of image files and test images.")
@weights_option
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--test-index",
    "-i",
    "test_indices",
    multiple=True,
    type=click.IntRange(min=0),
    metavar="I",
    help="Also score CIFAR-10 test image number I (0-based). Repeatable.",
)
@data_dir_option
@json_option
@quiet_option
def predict_cmd(weights_path, images, test_indices, data_dir, as_json, quiet):
    """Predict the class of each IMAGE file (PNG, JPEG, any size) and test image.

    Each image is turned to RGB and its central square resized to 32 x 32 (needs the image
    extra: pip install 'svmtrain[image]'). Prints the predicted class and the score of every
    class; test images also show their true class.
    """
    if not images and not test_indices:
        raise click.UsageError("Give at least one IMAGE file or --test-index I.")
    results = predict(
        weights_path,
        images,
        test_indices,
        data_dir=data_dir,
        progress=progress_enabled(quiet),
    )
    if as_json:
        click.echo(to_json(results))
        return
    click.echo(predictions_text(results))
