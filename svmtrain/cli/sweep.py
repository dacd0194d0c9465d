"""``svmtrain sweep-step`` (the notes' step-size experiment) and ``svmtrain search``."""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from svmtrain.cli._common import (
    config_option,
    data_dir_option,
    data_dir_override,
    format_table,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.errors import DivergenceError, ProblemSizeError
from svmtrain.experiments import search as searching
from svmtrain.experiments.sweep import (
    GRADIENTS,
    Sweep,
    numerical_evaluations,
    parse_range,
    parse_steps,
    run_sweep,
)
from svmtrain.experiments.train import load_splits
from svmtrain.io.plots import INSTALL_HINT, require_matplotlib
from svmtrain.io.records import to_json, write_csv

DEFAULT_RANGE = "-10:-1"


def _parsed(parse):
    """A click callback running ``parse`` on the option's text; its ValueError is a usage error."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None

    return callback


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the results as JSON instead."
)


def _plot_option(what: str):
    return click.option(
        "--plot",
        "plot_path",
        type=click.Path(dir_okay=False),
        help=f"Also draw {what} as a PNG to FILE.",
    )


def _check_plot_path(plot_path: str | None) -> None:
    """Fail now, not after the work, if --plot cannot be drawn: no matplotlib, or no such
    directory for the file."""
    if plot_path is None:
        return
    require_matplotlib()
    folder = Path(plot_path).parent
    if not folder.is_dir():
        raise click.BadParameter(
            f"the directory {str(folder)!r} does not exist; create it or choose another file.",
            param_hint="--plot",
        )


def _config_overrides(overrides: tuple[str, ...], data_dir: str | None) -> list[str]:
    return [*overrides, *data_dir_override(data_dir)]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---------------------------------------------------------------------------------------------
# sweep-step


@click.command("sweep-step", epilog=f"--plot needs matplotlib: {INSTALL_HINT}")
@config_option
@set_option
@click.option(
    "--steps",
    metavar="S1,S2,...",
    callback=_parsed(parse_steps),
    help="Step sizes to try, e.g. 1e-10,1e-8,1e-6 (sorted ascending).",
)
@click.option(
    "--range",
    "step_range",
    metavar="LOW:HIGH",
    callback=_parsed(parse_range),
    help=f"Step sizes 10**k for every integer k from LOW to HIGH [default: {DEFAULT_RANGE}].",
)
@click.option(
    "--gradient",
    "method",
    type=click.Choice(GRADIENTS),
    default="analytic",
    show_default=True,
    help="The gradient to step along: the loss's formula, or the notes' centred finite "
    "differences (2 loss evaluations per weight: slow; the cost is estimated first).",
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
@_json_option
@_plot_option("loss against step size (log axes)")
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
    data_dir,
    quiet,
):
    """Why the step size matters: the loss after one step along the negative gradient.

    Starts from W = rand(10, 3073) * 0.001 (seeded), computes the loss and its gradient dW
    on the training split, then evaluates the loss at W - step * dW for each step size. Too
    small a step barely lowers the loss, a good one lowers it most, larger ones overshoot and
    the loss explodes. The loss, reg, delta and data come from the config.

    With the default config (mean-subtracted pixels in 0..255, reg 2.5e4) the default range
    shows all three: on CIFAR-10 the loss is lowest at 1e-5 and explodes above. The notes'
    figure has no regularisation: --set model.reg=0 (lowest at 1e-6, as in the notes).
    Standardized pixels without regularisation move the minimum to 1e-3: add --range -8:1.

    \b
    Examples:
      svmtrain sweep-step
      svmtrain sweep-step --range -9:-3 --csv sweep.csv --plot sweep.png
      svmtrain sweep-step --gradient numerical --num-examples 500
    """
    if steps is not None and step_range is not None:
        raise click.UsageError("--steps and --range both give the step sizes; use one of them.")
    steps = steps or step_range or parse_range(DEFAULT_RANGE)
    _check_plot_path(plot_path)
    cfg = load_config(config_path, _config_overrides(overrides, data_dir))
    progress = progress_enabled(quiet)
    splits = load_splits(cfg, progress=progress)
    seed = cfg.train.seed if seed is None else seed
    try:
        result = run_sweep(
            cfg,
            splits,
            steps,
            method=method,
            num_examples=num_examples,
            seed=seed,
            progress=progress,
            on_numerical_cost=_warn_numerical_cost,
        )
    except ProblemSizeError as err:
        raise click.BadParameter(str(err), param_hint="--num-examples") from None
    records = result.records()
    if csv_path:
        write_csv(csv_path, ["step", "loss", "change", "best", "worse"], records)
    if as_json:
        m = cfg.model
        document = {
            "loss": m.loss,
            "reg": m.reg,
            "delta": m.delta,
            "reg_bias": m.reg_bias,
            "dtype": cfg.preprocess.dtype,
            "gradient": method,
            "num_examples": num_examples or len(splits.y_train),
            "seed": seed,
            "original_loss": result.original_loss,
            "best_step": None if result.best is None else records[result.best]["step"],
            "steps": records,
        }
        click.echo(to_json(document))
    else:
        click.echo(_sweep_text(result))
    if plot_path:
        from svmtrain.io.plots import plot_sweep

        click.echo(
            f"wrote {plot_sweep(result.steps, result.losses, result.original_loss, plot_path)}"
        )
    if not np.isfinite(result.losses).any():
        raise DivergenceError(_OVERFLOW)


_OVERFLOW = "Every step made the loss overflow; try smaller steps, e.g. --range -14:-8."


_FEASIBLE_EXAMPLES = 500  # the -n the warning suggests: minutes, not hours, on CIFAR-10


def _warn_numerical_cost(seconds: float, num_weights: int, num_examples: int) -> None:
    evaluations = numerical_evaluations(num_weights)
    total = evaluations * seconds
    fewer = (
        f"-n {_FEASIBLE_EXAMPLES} would take about "
        f"{_duration(total * _FEASIBLE_EXAMPLES / num_examples)}; "
        if num_examples > _FEASIBLE_EXAMPLES
        else ""
    )
    click.echo(
        f"Warning: the numerical gradient takes {evaluations:,} loss evaluations (2 per weight) "
        f"on {num_examples:,} images: about {_duration(total)} at {seconds * 1000:.3g} ms each. "
        f"The time is proportional to the images (-n): {fewer}"
        "--gradient analytic takes one evaluation.",
        err=True,
    )


def _sweep_text(result: Sweep) -> str:
    """The notes' printout, then a table marking the best step and the steps that made the
    loss worse, then a one-line verdict (none when every loss overflowed: that is an error)."""
    lines = [f"original loss: {result.original_loss:f}"]
    lines += [
        f"for step size {step:.1e} new loss: {loss:f}"
        for step, loss in zip(result.steps, result.losses, strict=True)
    ]
    best = result.best
    rows = []
    for k, r in enumerate(result.records()):
        marks = (["best"] if k == best else []) + (["worse"] if r["worse"] else [])
        rows.append(
            (f"{r['step']:.1e}", f"{r['loss']:.6g}", f"{r['change']:+.4g}", ", ".join(marks))
        )
    table = format_table(["step size", "new loss", "change", ""], rows)
    worse = int(result.worse.sum())
    if not np.isfinite(result.losses).any():
        return "\n".join([*lines, "", table])  # the command then fails with _OVERFLOW
    if best is None:
        causes = []
        if result.unchanged.any():
            causes.append(
                f"{int(result.unchanged.sum())} left it unchanged (too small: try larger steps, "
                f"e.g. --range {DEFAULT_RANGE})"
            )
        if worse:
            causes.append(
                f"{worse} made it worse (too large: try smaller ones, e.g. --range -14:-8; or "
                "the gradient is wrong: svmtrain gradcheck)"
            )
        verdict = f"No step lowered the loss: {'; '.join(causes)}."
    else:
        verdict = (
            f"Best step {result.steps[best]:.1e}: loss {result.losses[best]:.6g} "
            f"({result.change[best] / result.original_loss:+.1%}); {worse} of "
            f"{len(result.steps)} steps made the loss worse."
        )
    return "\n".join([*lines, "", table, "", verdict])


# ---------------------------------------------------------------------------------------------
# search


@click.command("search", epilog=f"--plot needs matplotlib: {INSTALL_HINT}")
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
@_json_option
@_plot_option("validation accuracy over lr x reg")
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
      svmtrain search -c configs/quick.yaml --lr 1e-7,1e-6 --grid optim.momentum=0,0.9
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
    _check_plot_path(plot_path)
    base_overrides = _config_overrides(overrides, data_dir)
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
