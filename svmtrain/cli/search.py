"""``svmtrain search``: a hyperparameter search ranked on validation accuracy."""

from __future__ import annotations

import os

import click

from svmtrain.cli.options import (
    check_output_files,
    check_png_path,
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
from svmtrain.experiments.search import MAX_TRIALS, search_hyperparameters
from svmtrain.io.plots import INSTALL_HINT
from svmtrain.io.records import to_json


@click.command(
    "search",
    short_help="Rank short runs over lr, reg or other keys by val accuracy.",
    epilog=f"--plot needs matplotlib: {INSTALL_HINT}",
)
@config_option
@set_option
@click.option(
    "--lr",
    "lr_spec",
    metavar="V1,V2,...|LOW:HIGH",
    help="Learning rates (optim.learning_rate): values for the grid, or with --random a range "
    "sampled log-uniformly.",
)
@click.option(
    "--reg",
    "reg_spec",
    metavar="V1,V2,...|LOW:HIGH",
    help="Regularisation strengths (model.reg), as --lr.",
)
@click.option(
    "--grid",
    "grid_specs",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="Any other model/optim/schedule/train key and its values (a LOW:HIGH range with "
    "--random), e.g. train.batch_size=128,256. Repeatable.",
)
@click.option(
    "--random",
    "random_count",
    type=click.IntRange(min=1),
    metavar="N",
    help="Sample N trials instead of trying every combination: ranges log-uniformly, listed "
    "values uniformly, seeded by train.seed. Needs at least one LOW:HIGH range (lists alone "
    "would repeat trials: search their grid instead).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Train every trial this many epochs (short runs) [default: the config's]. "
    "best.yaml keeps the config's length for the full run.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="the CPU count",
    help="Trials trained at once, in local worker processes (not used with --scheduler).",
)
@click.option(
    "--scheduler",
    envvar="SVMTRAIN_SCHEDULER",
    metavar="tcp://HOST:PORT",
    help="Run the trials on the workers of this Dask distributed scheduler instead of local "
    "processes (needs pip install 'svmtrain[dask]'; env SVMTRAIN_SCHEDULER).",
)
@click.option(
    "--scheduler-file",
    type=click.Path(dir_okay=False),
    help="As --scheduler, with the address from the file `dask scheduler --scheduler-file` writes.",
)
@click.option(
    "--halving",
    is_flag=True,
    help="Successive halving: every trial trains --min-epochs epochs, the best "
    "1/--reduction-factor go on for --reduction-factor times as long, and so on up to "
    "--epochs. Continued trials retrain from their seed.",
)
@click.option(
    "--reduction-factor",
    type=click.IntRange(min=2),
    help="With --halving: the share of trials kept per rung is 1/this, and each rung trains "
    "this many times longer.  [default: 3]",
)
@click.option(
    "--min-epochs",
    type=click.IntRange(min=1),
    help="With --halving: the epochs of the first rung.  [default: 1]",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=2),
    metavar="K",
    help="Train every setting K times (train.seed the config's, +1, +2, ...) and rank the "
    "settings by their mean validation accuracy, with its standard deviation: whether a "
    "difference is more than seed noise. Not with --halving.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Results directory [default: <output.dir>/<timestamp>-search].",
)
@json_option
@plot_option("validation accuracy over lr x reg")
@force_option("--plot")
@click.option("--yes", is_flag=True, help=f"Run a search of more than {MAX_TRIALS:,} trials.")
@data_dir_option
@quiet_option
def search(
    config_path,
    overrides,
    lr_spec,
    reg_spec,
    grid_specs,
    random_count,
    epochs,
    jobs,
    scheduler,
    scheduler_file,
    halving,
    reduction_factor,
    min_epochs,
    seeds,
    out,
    as_json,
    plot_path,
    force,
    yes,
    data_dir,
    quiet,
):
    """Which learning rate and regularisation to use: short runs ranked by validation accuracy.

    Trains one run per combination of the given values (or N random samples with --random),
    each from the same config and seed, in parallel worker processes (or on the workers of a
    Dask cluster with --scheduler); picks the best by
    validation accuracy (the test split is never looked at). A run whose loss diverges is
    recorded as diverged. Same config, same results, whatever --jobs is.

    \b
    Writes into the results directory, after every finished trial:
      results.csv, results.json  every trial, ranked
      best.yaml                  the config with the best trial's values, for
                                 svmtrain fit --config DIR/best.yaml
    Ctrl-C stops the workers and keeps the finished trials' results.

    \b
    Examples:
      svmtrain search --lr 1e-7,5e-7,1e-6 --reg 2.5e4,5e4 --epochs 2
      svmtrain search --random 20 --lr 1e-8:1e-5 --reg 1e3:1e5 --epochs 2
      svmtrain search -c quick --lr 1e-7,1e-6 --grid optim.momentum=0,0.9
      svmtrain search --lr 1e-8:1e-5 --reg 1e3:1e5 --random 27 --epochs 9 --halving
      svmtrain search -c default --lr 3e-5,1e-4 --reg 0.1,1 --epochs 5 --seeds 3
      svmtrain search --lr 1e-7,1e-6 --epochs 2 --scheduler tcp://scheduler.example:8786
    """
    if scheduler is not None and scheduler_file is not None:
        source = click.get_current_context().get_parameter_source("scheduler")
        if source is click.core.ParameterSource.ENVIRONMENT:
            scheduler = None  # the file, given on the command line, beats the environment
    check_png_path(plot_path)
    check_output_files(force, plot_path)
    found = search_hyperparameters(
        config_path,
        config_overrides(overrides, data_dir),
        lr=lr_spec,
        reg=reg_spec,
        grid=grid_specs,
        random=random_count,
        epochs=epochs,
        jobs=jobs,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        halving=halving,
        reduction_factor=reduction_factor,
        min_epochs=min_epochs,
        seeds=seeds,
        out=out,
        progress=progress_enabled(quiet),
        yes=yes,
    )
    click.echo(to_json(found.document()) if as_json else found.text())
    if plot_path:
        from svmtrain.io.plots import plot_search

        document = found.document()
        points = document["settings"] if seeds else document["results"]  # the means, if seeded
        click.echo(f"wrote {plot_search(points, plot_path)}")
    found.require_best()
