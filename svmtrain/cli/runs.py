"""``svmtrain runs``: list the run directories ``fit`` wrote, and compare some of them."""

from __future__ import annotations

import click

from svmtrain.cli.options import json_option
from svmtrain.experiments.runs import compare_document, compare_text, find_runs, runs_text
from svmtrain.io.records import to_json


@click.group("runs", short_help="List and compare run directories.")
def runs_group() -> None:
    """List the runs fit wrote (their state, config and accuracies) and compare some of
    them (the config keys that differ, and what each gave)."""


@runs_group.command("list", short_help="Every run: its state, config and accuracies.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False))
@json_option
def list_cmd(paths, as_json) -> None:
    """The runs in PATHS (run directories, or directories holding runs) [default: runs].

    Each run's state is finished, stopped (fit --resume continues it), diverged or not
    started.

    \b
    Examples:
      svmtrain runs list
      svmtrain runs list runs/20261207-101500-default other-runs/
    """
    found = find_runs(paths or ["runs"])
    click.echo(to_json([info.record() for info in found]) if as_json else runs_text(found))


@runs_group.command("compare", short_help="What differs between runs, and what each gave.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(file_okay=False))
@json_option
def compare_cmd(paths, as_json) -> None:
    """The config keys that differ between the runs in PATHS, and each run's results.

    \b
    Examples:
      svmtrain runs compare runs/A runs/B
      svmtrain runs compare runs/         every run in runs/
    """
    found = find_runs(paths)
    if len(found) < 2:
        raise click.UsageError(f"Give two runs or more to compare; {paths[0]} is one run.")
    click.echo(to_json(compare_document(found)) if as_json else compare_text(found))
