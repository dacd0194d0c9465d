"""``svmtrain search``: a hyperparameter search ranked on validation accuracy."""

from __future__ import annotations

import contextlib
import os

import click

from svmtrain.cli.options import (
    check_plot_path,
    config_option,
    config_overrides,
    data_dir_option,
    json_option,
    plot_option,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.errors import DivergenceError
from svmtrain.experiments import search as searching
from svmtrain.experiments.common import load_splits
from svmtrain.io.plots import INSTALL_HINT
from svmtrain.io.records import format_table, to_json


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
    "--out",
    type=click.Path(file_okay=False),
    help="Results directory [default: <output.dir>/<timestamp>-search].",
)
@json_option
@plot_option("validation accuracy over lr x reg")
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
    out,
    as_json,
    plot_path,
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
      svmtrain search --lr 1e-7,1e-6 --epochs 2 --scheduler tcp://scheduler.example:8786
    """
    if scheduler is not None and scheduler_file is not None:
        source = click.get_current_context().get_parameter_source("scheduler")
        if source is not click.core.ParameterSource.ENVIRONMENT:
            raise click.UsageError("Give --scheduler or --scheduler-file, not both.")
        scheduler = None  # the file, given on the command line, beats the environment
    if not halving and (reduction_factor is not None or min_epochs is not None):
        raise click.UsageError("--reduction-factor and --min-epochs need --halving.")
    plan = searching.Halving(reduction_factor or 3, min_epochs or 1) if halving else None
    try:
        shortcuts = (("--lr", searching.LR, lr_spec), ("--reg", searching.REG, reg_spec))
        axes = [
            searching.parse_axis(key, spec, option)
            for option, key, spec in shortcuts
            if spec is not None
        ]
        axes += [searching.parse_grid_option(text) for text in grid_specs]
        searching.check_axes(axes, random=random_count is not None, epochs=epochs, halving=halving)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    check_plot_path(plot_path)
    base_overrides = config_overrides(overrides, data_dir)
    base = load_config(config_path, base_overrides)
    if random_count is None:
        settings = searching.grid_settings(axes)
    else:
        settings = searching.random_settings(axes, random_count, base.train.seed)
    trials = searching.make_trials(config_path, base_overrides, settings, epochs)
    if plan is not None:
        try:
            plan.rung_epochs(len(trials), trials[0].config.train.epochs)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
    progress = progress_enabled(quiet)
    cluster = None
    if scheduler is not None or scheduler_file is not None:
        cluster = searching.DaskExecutor(scheduler, scheduler_file)
    with cluster or contextlib.nullcontext():
        splits = load_splits(base, progress=progress)
        searching.check_trials(trials, len(splits.y_train))
        used = cluster.jobs if cluster is not None else searching.effective_jobs(jobs, len(trials))
        if cluster is None and used < min(jobs, len(trials)):
            click.echo(
                "Note: worker processes need fork (Linux); running the trials one at a time.",
                err=True,
            )
        job = searching.Search(
            trials=trials,
            axes=axes,
            out_dir=searching.new_search_dir(base, out),
            jobs=used,
            epochs=epochs,
            halving=plan,
        )
        searching.run_search(job, splits, executor=cluster, progress=progress)
    document = job.document()
    if as_json:
        click.echo(to_json(document))
    else:
        click.echo(_search_text(job, document))
    if plot_path:
        from svmtrain.io.plots import plot_search

        click.echo(f"wrote {plot_search(document['results'], plot_path)}")
    if document["best"] is None:
        raise DivergenceError(
            f"Every trial diverged, so there is no best.yaml (results in {job.out_dir}). "
            "Search smaller learning rates."
        )


def _search_text(job: searching.Search, document: dict) -> str:
    """The ranked table, the best trial, and where the files are."""
    others = [a.key for a in job.axes if a.key not in (searching.LR, searching.REG)]

    def number(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    rows = [
        (
            r["rank"],
            f"{r['learning_rate']:g}",
            f"{r['reg']:g}",
            *(str(r["settings"][k]) for k in others),
            *([r["rung"]] if job.halving else []),
            number(r["final_loss"], ".4g"),
            number(r["train_acc"], ".4f"),
            number(r["val_acc"], ".4f"),
            f"{r['seconds']:.1f}",
            r["status"],
        )
        for r in document["results"]
    ]
    headers = ["rank", "lr", "reg", *others, *(["rung"] if job.halving else [])]
    headers += ["final loss", "train acc", "val acc", "seconds", "status"]
    lines = [format_table(headers, rows), ""]
    if job.halving is not None:
        rungs = ", ".join(str(e) for e in document["halving"]["rung_epochs"])
        lines.append(
            f"successive halving: rungs of {rungs} epochs; {document['runs']} trial runs, "
            f"{document['epochs_trained']} epochs in all"
        )
    best = document["best"]
    if best is not None:
        chosen = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
        lines.append(f"best: trial {best['trial']} ({chosen}), val accuracy {best['val_acc']:.4f}")
    out = job.out_dir
    lines.append(f"results: {out / searching.RESULTS_CSV}, {out / searching.RESULTS_JSON}")
    if best is not None:
        lines.append(f"train it fully: svmtrain fit --config {out / searching.BEST_YAML}")
    return "\n".join(lines)
