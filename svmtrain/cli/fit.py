"""``svmtrain fit`` and ``svmtrain evaluate``."""

from __future__ import annotations

import click
import numpy as np

from svmtrain.cli._common import (
    config_option,
    data_dir_option,
    format_table,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.experiments.evaluate import SPLITS, evaluate
from svmtrain.experiments.train import fit as fit_run
from svmtrain.io.plots import plot_confusion, plot_run, require_matplotlib
from svmtrain.io.records import to_json


@click.command()
@config_option
@set_option
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Run directory [default: <output.dir>/<timestamp>-<output.name>].",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, exists=True),
    help="Continue the interrupted run in this directory (its config.yaml and checkpoint).",
)
@data_dir_option
@quiet_option
@click.option(
    "--plot",
    is_flag=True,
    help="Also draw weights.png, curves.png and confusion.png in the run (needs svmtrain[plot]).",
)
def fit(config_path, overrides, out, resume, data_dir, quiet, plot):
    """Train a linear classifier on CIFAR-10 with mini-batch SGD.

    Downloads and caches the data on first use, then writes a run directory with
    config.yaml, metrics.jsonl, weights.npz, summary.json and a checkpoint. Ctrl-C saves
    the checkpoint; --resume continues it bit-identically.

    \b
    Examples:
      svmtrain fit --config configs/default.yaml
      svmtrain fit -c configs/quick.yaml --set train.epochs=2 --out runs/try
      svmtrain fit --resume runs/20261126-101500-default
    """
    if resume and (config_path or overrides or out):
        raise click.UsageError(
            "--resume takes the run's own config.yaml; drop --config/--set/--out."
        )
    if plot:
        require_matplotlib()  # say so now, not after the training
    cfg = None if resume else load_config(config_path, overrides)
    progress = progress_enabled(quiet)
    result = fit_run(cfg, out=out, resume=resume, data_dir=data_dir, progress=progress)
    s = result.summary
    click.echo(
        f"test accuracy {s['test_acc']:.4f}  val accuracy {s['val_acc']:.4f}  "
        f"({s['epochs']} epochs, {s['steps']} steps, {s['wall_seconds']:.1f} s training)  "
        f"-> {result.run_dir}"
    )
    if plot:
        for path in plot_run(result.run_dir):
            click.echo(f"wrote {path}")


@click.command("evaluate")
@click.option(
    "--weights",
    "-w",
    "weights_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="A weights.npz written by 'svmtrain fit'.",
)
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Also draw the confusion matrix as a PNG to this file (needs svmtrain[plot]).",
)
@quiet_option
def evaluate_cmd(weights_path, split, data_dir, as_json, plot_path, quiet):
    """Accuracy, per-class accuracy and confusion matrix of saved weights.

    The data are preprocessed with the mean image and scale stored in the weights file;
    --split test (the default) scores the whole test batch.
    """
    if plot_path:
        require_matplotlib()
    result = evaluate(weights_path, split, data_dir=data_dir, progress=progress_enabled(quiet))
    if plot_path:
        path = plot_confusion(np.array(result["confusion"]), result["class_names"], plot_path)
        click.echo(f"wrote {path}", err=as_json)
    if as_json:
        click.echo(to_json(result))
        return
    names = result["class_names"]
    click.echo(f"{split} accuracy: {result['accuracy']:.4f} ({result['num_examples']} images)\n")
    click.echo(
        format_table(
            ["class", "accuracy"],
            [(n, f"{a:.4f}") for n, a in result["per_class_acc"].items()],
        )
    )
    click.echo("\nconfusion matrix (rows: true class, columns: predicted)\n")
    short = [n[:5] for n in names]
    click.echo(
        format_table(
            ["", *short], [(s, *row) for s, row in zip(short, result["confusion"], strict=True)]
        )
    )
