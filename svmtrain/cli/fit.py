"""``svmtrain fit``: train a config, writing a run directory."""

from __future__ import annotations

import click

from svmtrain.cli.options import (
    config_option,
    data_dir_option,
    phase_log,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.experiments.fit import fit as fit_run


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
    config.yaml, metrics.jsonl, weights.npz, summary.json and a checkpoint. --out must be
    new or empty; the directory is locked while the run writes it. Ctrl-C (exit 130) or
    SIGTERM (exit 143) and SIGHUP (129) save the checkpoint; --resume continues it bit-identically.

    \b
    Examples:
      svmtrain fit -c default
      svmtrain fit -c quick --set train.epochs=2 --out runs/try
      svmtrain fit --resume runs/20261126-101500-default
    """
    if resume and (config_path or overrides or out):
        raise click.UsageError(
            "--resume takes the run's own config.yaml; drop --config/--set/--out."
        )
    cfg = None if resume else load_config(config_path, overrides)
    result = fit_run(
        cfg,
        out=out,
        resume=resume,
        data_dir=data_dir,
        progress=progress_enabled(quiet),
        plot=plot,
        log=phase_log(quiet),
    )
    click.echo(result.text())
    for path in result.pictures:
        click.echo(f"wrote {path}")
