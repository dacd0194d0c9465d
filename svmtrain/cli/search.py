"""``svmtrain search``: a hyperparameter search ranked on validation accuracy."""

from __future__ import annotations

import os

import click

from svmtrain.cli._common import (
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
    help="Trials trained at once, in worker processes.",
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
    out,
    as_json,
    plot_path,
    data_dir,
    quiet,
):
    """Which learning rate and regularisation to use: short runs ranked by validation accuracy.

    Trains one run per combination of the given values (or N random samples with --random),
    each from the same config and seed, in parallel worker processes; picks the best by
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
    """
    try:
        shortcuts = (("--lr", searching.LR, lr_spec), ("--reg", searching.REG, reg_spec))
        axes = [
            searching.parse_axis(key, spec, option)
            for option, key, spec in shortcuts
            if spec is not None
        ]
        axes += [searching.parse_grid_option(text) for text in grid_specs]
        searching.check_axes(axes, random=random_count is not None, epochs=epochs)
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
    progress = progress_enabled(quiet)
    splits = load_splits(base, progress=progress)
    searching.check_trials(trials, len(splits.y_train))
    used = searching.effective_jobs(jobs, len(trials))
    if used < min(jobs, len(trials)):
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
    )
    searching.run_search(job, splits, progress=progress)
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
            number(r["final_loss"], ".4g"),
            number(r["train_acc"], ".4f"),
            number(r["val_acc"], ".4f"),
            f"{r['seconds']:.1f}",
            r["status"],
        )
        for r in document["results"]
    ]
    headers = ["rank", "lr", "reg", *others]
    headers += ["final loss", "train acc", "val acc", "seconds", "status"]
    lines = [format_table(headers, rows), ""]
    best = document["best"]
    if best is not None:
        chosen = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
        lines.append(f"best: trial {best['trial']} ({chosen}), val accuracy {best['val_acc']:.4f}")
    out = job.out_dir
    lines.append(f"results: {out / searching.RESULTS_CSV}, {out / searching.RESULTS_JSON}")
    if best is not None:
        lines.append(f"train it fully: svmtrain fit --config {out / searching.BEST_YAML}")
    return "\n".join(lines)
