"""``svmtrain configs``: list the shipped configs, print one to start your own."""

from __future__ import annotations

import click

from svmtrain.config.loading import shipped_config
from svmtrain.config.shipped import explained_text, shipped_summaries, write_new


@click.group(short_help="List the shipped configs, or print one to start your own.")
def configs() -> None:
    """The configs shipped with svmtrain, usable by name: svmtrain fit -c NAME.

    \b
    Examples:
      svmtrain configs list
      svmtrain configs show quick --out my.yaml   then edit my.yaml and
      svmtrain fit -c my.yaml
    """


@configs.command("list")
def list_configs() -> None:
    """Each shipped config's name and what it is."""
    summaries = shipped_summaries()
    width = max(map(len, summaries))
    for name, summary in summaries.items():
        click.echo(f"{name.ljust(width)}  {summary}")


@configs.command(short_help="Print a shipped config, or write it to --out.")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write it to this new file instead of printing it (an existing file is never "
    "overwritten; - is standard output).",
)
def show(name: str, out: str | None) -> None:
    """Print the shipped config NAME resolved, every key explained, or write it to --out."""
    text = explained_text(name, shipped_config(name))
    if out is None or out == "-":
        click.echo(text, nl=False)
        return
    click.echo(f"wrote {write_new(text, out)}")
