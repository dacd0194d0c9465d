"""Small pieces the commands share: the progress switch, common options and their checks."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from svmtrain.config.shipped import shipped_names
from svmtrain.errors import ArgumentError
from svmtrain.fileio import refuse_existing
from svmtrain.io.images import require_pillow
from svmtrain.io.plots import require_matplotlib
from svmtrain.io.runs import weights_file


def progress_enabled(quiet: bool) -> bool:
    """Progress bars only for a person watching: not with --quiet, not when stderr is a pipe."""
    return not quiet and sys.stderr.isatty()


def phase_log(quiet: bool) -> Callable[[str], None] | None:
    """Where a long job's phase lines go (stderr, beside the bars), or None with --quiet."""
    if quiet:
        return None
    return lambda line: click.echo(line, err=True)


def phase_lines(quiet: bool) -> Callable[[str], None] | None:
    """Where a long phase's lines go when stderr is a file or a pipe (a log, where bars would
    be noise): :func:`phase_log`'s; None on a terminal (bars show there) or with --quiet."""
    return None if sys.stderr.isatty() else phase_log(quiet)


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars; print only the results."
)


def _note_a_file_named_like_a_shipped_config(ctx, param, value: str | None) -> str | None:
    """An existing path wins over a shipped config's name; say so, as it may surprise."""
    if value is not None and value in shipped_names() and os.path.exists(value):
        click.echo(
            f"Note: using the file {os.path.join('.', value)}, not the shipped config "
            f"{value!r} (rename or move the file to use the shipped one).",
            err=True,
        )
    return value


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    callback=_note_a_file_named_like_a_shipped_config,
    metavar="FILE|NAME",
    help="A YAML config file, or the name of a shipped config (svmtrain configs list): "
    f"{', '.join(shipped_names())}. Without it, the built-in defaults, named 'notes' "
    "(the CS231n notes' lr 1e-7 and reg 2.5e4).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config value, e.g. --set optim.learning_rate=1e-6. Repeatable.",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="CIFAR-10 cache directory [default: $SVMTRAIN_DATA_DIR, else $XDG_CACHE_HOME/svmtrain].",
)


def data_dir_override(data_dir: str | None) -> list[str]:
    """``--data-dir`` as a ``--set`` override, quoted so YAML reads it back as the very string
    (a directory named ``null``, ``123`` or ``a #b`` included)."""
    return [f"data.dir={json.dumps(data_dir)}"] if data_dir else []


def parsed(parse):
    """A click callback running ``parse`` on the option's text; its ArgumentError is a usage error
    of this option."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return None
        try:
            return parse(value)
        except ArgumentError as err:
            raise click.BadParameter(err.reason) from None

    return callback


weights_option = click.option(
    "--weights",
    "-w",
    "weights_path",
    required=True,
    type=click.Path(),
    callback=lambda ctx, param, value: weights_file(value),
    help="A weights.npz written by 'svmtrain fit', or the run directory that holds it.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the results as JSON instead."
)


def plot_option(what: str):
    return click.option(
        "--plot",
        "plot_path",
        type=click.Path(dir_okay=False),
        help=f"Also draw {what} as a PNG to FILE (a name ending in .png).",
    )


def force_option(*options: str):
    """--force, whose help names the command's output file ``options`` ("--csv", "--plot")."""
    return click.option(
        "--force",
        is_flag=True,
        help=f"Overwrite the files named by {' or '.join(options)} if they exist (never done "
        "without it).",
    )


def confirm(question: str) -> bool:
    """Ask ``question`` (default no) and return the answer; with standard input closed (no
    one can answer), a usage error that says to pass --yes instead."""
    if sys.stdin is None or sys.stdin.closed:
        raise click.UsageError(
            f"{question} No answer can be read: standard input is closed. Pass --yes to go "
            "ahead without being asked."
        )
    return click.confirm(question, default=False)


def check_output_files(force: bool, *paths: str | None) -> None:
    """Fail now, not after the work, if any of ``paths`` (output file options; None: not given)
    exists and --force was not given, naming every one in the way: a user's file is never
    overwritten without being asked."""
    refuse_existing([p for p in paths if p is not None], force)


def check_png_path(path: str | None, option: str = "--plot") -> None:
    """Fail now, not after the work, if the picture ``option`` names cannot be written: a name
    not ending in .png (the picture is a PNG whatever the name), no library to draw it
    (matplotlib for --plot, Pillow otherwise), or no such directory for the file. Whether it
    exists already is :func:`check_output_files`' business."""
    if path is None:
        return
    if Path(path).suffix.lower() != ".png":
        raise click.BadParameter(
            f"{path!r} does not end in .png; the picture is a PNG, so name it FILE.png.",
            param_hint=option,
        )
    if option == "--plot":
        require_matplotlib()
    else:
        require_pillow()
    folder = Path(path).parent
    if not folder.is_dir():
        raise click.BadParameter(
            f"the directory {str(folder)!r} does not exist; create it or choose another file.",
            param_hint=option,
        )


def config_overrides(overrides: tuple[str, ...], data_dir: str | None) -> list[str]:
    return [*overrides, *data_dir_override(data_dir)]
