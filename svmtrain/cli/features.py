"""``svmtrain features``: build, list and delete the feature caches beside the data."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click

from svmtrain.cli.options import (
    config_option,
    config_overrides,
    confirm,
    data_dir_option,
    phase_log,
    progress_enabled,
    quiet_option,
    set_option,
)
from svmtrain.config import load_config
from svmtrain.data.source import resolve_data_dir
from svmtrain.experiments.common import build_features
from svmtrain.features import EXTRACTORS, cache
from svmtrain.io.records import format_table


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


INFO_WIDTH = 96  # features info stays this narrow: the settings wrap under their cache


def _describe(entry: dict) -> tuple[tuple[str, str, str], str]:
    """A cache's row (name, images x features or its state, size) and its settings."""
    name, size = Path(entry["path"]).name, _megabytes(entry["bytes"])
    if not entry["finished"]:
        state = "building" if entry["building"] else "unfinished (interrupted build)"
        return (name, state, size), ""
    if "damaged" in entry:
        return (name, f"damaged: {entry['damaged']}", size), ""
    meta = entry["meta"]
    settings = " ".join(f"{k}={v}" for k, v in meta["settings"].items())
    shape = f"{meta['train_images'] + meta['test_images']:,} x {meta['dim']:,}"
    if entry["building"]:
        shape += " (adding the mirrored images)"
    return (name, shape, size), settings


def _info_table(entries: list[dict]) -> str:
    """One row per cache, its settings wrapped on indented lines beneath it."""
    described = [_describe(entry) for entry in entries]
    table = format_table(["cache", "images x features", "size"], [row for row, _ in described])
    header, rule, *rows = table.splitlines()
    lines = [header, rule]
    for line, (_, settings) in zip(rows, described, strict=True):
        lines.append(line)
        lines += textwrap.wrap(
            settings, INFO_WIDTH, initial_indent="    ", subsequent_indent="    "
        )
    return "\n".join(lines)


@click.group(
    help=f"""Build, list and delete cached {" and ".join(EXTRACTORS)} features.

    A cache is keyed on the archive's digest, the extractor's settings and the training
    split it learns from, so a run whose config asks for the same features reuses it.
    """
)
def features() -> None:
    """The features command group; its help names the extractors of the registry."""


@features.command()
@config_option
@set_option
@data_dir_option
@quiet_option
def build(config_path, overrides, data_dir, quiet) -> None:
    """Compute and cache the features a config's features section names.

    Learns the extractor's state from the config's training split, then extracts every
    training and test image. Nothing to do when the cache is already there; `svmtrain fit`
    with the same config builds it too, so this is for doing it ahead of time.

    \b
    Examples:
      svmtrain features build -c kmeans
      svmtrain features build -c kmeans --set features.kmeans.num_centroids=400
    """
    cfg = load_config(config_path, config_overrides(overrides, data_dir))
    built = build_features(cfg, progress=progress_enabled(quiet), log=phase_log(quiet))
    meta = built.meta
    rows = meta["train_images"] + meta["test_images"]
    click.echo(
        f"features {meta['extractor']}: {rows:,} images x {meta['dim']:,} features "
        f"({_megabytes(built.train.nbytes + built.test.nbytes)}) in {built.path}"
    )


@features.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def info(data_dir: str | None, as_json: bool) -> None:
    """List the feature caches: what each holds and how big it is on disk."""
    root = resolve_data_dir(data_dir)
    entries = cache.list_caches(root)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo(f"No feature caches in {cache.features_root(root)}.")
        return
    total = sum(entry["bytes"] for entry in entries)
    click.echo(_info_table(entries))
    click.echo(f"\n{len(entries)} in {cache.features_root(root)}, {_megabytes(total)} in all.")


@features.command()
@data_dir_option
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@click.argument("names", nargs=-1)
def clear(data_dir: str | None, yes: bool, names: tuple[str, ...]) -> None:
    """Delete the feature caches NAMES, or all of them.

    NAMES as `svmtrain features info` lists them. Asks first unless --yes; a build still
    running is never deleted, nor is a folder svmtrain did not make."""
    root = resolve_data_dir(data_dir)
    listed = cache.list_caches(root)
    entries = [e for e in listed if not e["building"]]
    if names:
        known = {Path(e["path"]).name: e for e in entries}
        busy = [n for n in names if n in {Path(e["path"]).name for e in listed} - set(known)]
        if busy:
            raise click.BadParameter(
                f"another svmtrain process is writing into the feature cache {busy[0]!r}; "
                "clear it once that process ends.",
                param_hint="NAMES",
            )
        unknown = [n for n in names if n not in known]
        if unknown:
            raise click.BadParameter(
                f"no feature cache named {unknown[0]!r} in {cache.features_root(root)}; "
                "`svmtrain features info` lists them.",
                param_hint="NAMES",
            )
        entries = [known[n] for n in names]
    if not entries:
        click.echo(f"No feature caches to delete in {cache.features_root(root)}.")
        return
    total = sum(e["bytes"] for e in entries)
    question = f"Delete {len(entries)} feature cache(s), {_megabytes(total)}?"
    if not yes and not confirm(question):
        raise click.Abort()
    freed = cache.remove_caches([e["path"] for e in entries])
    click.echo(f"Deleted {len(entries)} feature cache(s), freed {_megabytes(freed)}.")
