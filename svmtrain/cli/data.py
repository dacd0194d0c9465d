"""``svmtrain data``: fetch, verify and inspect the cached CIFAR-10 (svmtrain.data)."""

import json
import warnings
from contextlib import contextmanager

import click

from svmtrain.cli.options import data_dir_option, quiet_option
from svmtrain.data import UnverifiedArchiveWarning, dataset_info, load_cifar10
from svmtrain.data.source import ENV_DIGEST, ENV_URL, OFFICIAL_URL
from svmtrain.io.records import format_table


@contextmanager
def _warnings_as_lines():
    """Show library warnings (e.g. an unverified archive) as one 'Warning: ...' line on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UnverifiedArchiveWarning)

        def show(message, *args, **kwargs):
            click.echo(f"Warning: {message}", err=True)

        warnings.showwarning = show
        yield


@click.group(short_help="Download, verify and inspect CIFAR-10 (binary version).")
def data() -> None:
    """Download, verify and inspect the CIFAR-10 dataset (binary version).

    The archive is cached with its parsed arrays, so it is fetched and parsed once; later runs
    make no network request.
    """


@data.command()
@data_dir_option
@click.option(
    "--url",
    metavar="URL",
    help=f"Where to fetch the archive (a mirror of the official binary version). "
    f"Default: ${ENV_URL}, else {OFFICIAL_URL}.",
)
@click.option(
    "--sha256",
    metavar="HEX",
    help=f"Expected sha256 of the archive. Default: ${ENV_DIGEST['sha256']}, else the "
    "official digest when the URL is the official one.",
)
@click.option(
    "--md5",
    metavar="HEX",
    help=f"Expected md5, checked like --sha256. Default: ${ENV_DIGEST['md5']}.",
)
@quiet_option
def download(
    data_dir: str | None, url: str | None, sha256: str | None, md5: str | None, quiet: bool
) -> None:
    """Fetch CIFAR-10, verify its digest and parse it into the cache.

    Nothing is fetched when a verified archive is already cached. A partial download is resumed
    (HTTP Range); transient network errors are retried. The digest is checked before the archive
    is accepted; with a custom --url and no digest the archive is accepted with a warning that
    shows its sha256.

    \b
    Examples:
      svmtrain data download
      svmtrain data download --url http://mirror.example/cifar-10-binary.tar.gz --sha256 HEX
    """
    with _warnings_as_lines():
        dataset = load_cifar10(data_dir, url, sha256, md5, progress=not quiet)
    click.echo(
        f"CIFAR-10 is ready: {len(dataset.y_train):,} training and {len(dataset.y_test):,} test "
        f"images.\narchive  {dataset.archive}\nsha256   {dataset.sha256}"
    )


@data.command(short_help="Where the cached dataset is, its digests and image counts.")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
def info(data_dir: str | None, as_json: bool) -> None:
    """Show where the cached dataset is, its digests and its image counts per split and class.

    Never downloads: when nothing is cached it says how to get the data and exits with 1.
    """
    facts = dataset_info(data_dir)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    official = "official archive" if facts["official"] else "not the official archive"
    lines = [
        f"data directory  {facts['data_dir']}",
        f"archive         {facts['archive']} ({facts['archive_bytes']:,} bytes)",
        f"sha256          {facts['sha256']} ({official})",
        f"md5             {facts['md5']}",
        f"downloaded from {facts['source_url'] or 'unknown (found in place)'}",
        f"parsed cache    {facts['parsed_cache']}",
    ]
    train, test = facts["splits"]["train"], facts["splits"]["test"]
    rows = [
        (name, f"{train['per_class'][name]:,}", f"{test['per_class'][name]:,}")
        for name in facts["class_names"]
    ]
    rows.append(("total", f"{train['count']:,}", f"{test['count']:,}"))
    click.echo("\n".join([*lines, "", format_table(["class", "train", "test"], rows)]))
