"""``svmtrain plot RUN_DIR``: draw a finished run's pictures beside its files."""

from pathlib import Path

import click

from svmtrain.io.plots import INSTALL_HINT, plot_run


@click.command(
    "plot",
    short_help="Draw a run's class templates, curves and confusion matrix.",
    epilog=f"Needs matplotlib: {INSTALL_HINT}",
)
@click.argument("run_dir", type=click.Path(path_type=Path))
def plot(run_dir: Path) -> None:
    """Write weights.png (class templates), curves.png (loss, accuracy, learning rate) and,
    when the run was evaluated on test, confusion.png into RUN_DIR; print their paths.

    RUN_DIR is a directory made by `svmtrain fit`.
    """
    for path in plot_run(run_dir):
        click.echo(path)
