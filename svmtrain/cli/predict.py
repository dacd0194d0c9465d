"""``svmtrain predict``: the class and the class scores of image files and CIFAR-10 test images."""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    check_output_files,
    check_png_path,
    data_dir_option,
    force_option,
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
@click.option(
    "--top",
    type=click.IntRange(min=1),
    metavar="K",
    help="Show only the K most likely classes of each image, best first.",
)
@click.option(
    "--show",
    "show_path",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Also write the 32 x 32 images the model saw (enlarged 4 times, side by side, in "
    "the order scored) as a PNG to FILE.png.",
)
@force_option("--show")
@data_dir_option
@json_option
@quiet_option
def predict_cmd(
    weights_path, images, test_indices, top, show_path, force, data_dir, as_json, quiet
):
    """Predict the class of each IMAGE file (PNG, JPEG, any size) and test image.

    Each image is turned to RGB (a note says so for a grey or transparent one) and its
    central square resized to 32 x 32 (needs the image extra: pip install
    'svmtrain[image]'). Prints the predicted class and, for a softmax model, the probability
    of every class (for an SVM, its scores); test images also show their true class.

    \b
    Examples:
      svmtrain predict -w runs/try cat.jpg dog.png --top 3
      svmtrain predict -w runs/try cat.jpg --show seen.png
      svmtrain predict -w runs/try -i 0 -i 7 --json
    """
    if not images and not test_indices:
        raise click.UsageError("Give at least one IMAGE file or --test-index I.")
    check_png_path(show_path, "--show")
    check_output_files(force, show_path)
    results = predict(
        weights_path,
        images,
        test_indices,
        data_dir=data_dir,
        progress=progress_enabled(quiet),
        top=top,
        show=show_path,
    )
    for r in results:
        if "converted" in r:
            click.echo(f"Note: {r['image']} was converted to RGB: {r['converted']}.", err=True)
    click.echo(to_json(results) if as_json else predictions_text(results))
    if show_path is not None:
        click.echo(f"wrote {show_path}", err=as_json)
