"""CIFAR-10, binary version: the entry points that download, verify, parse and load it.

The archive is fetched once into the data directory (see :mod:`svmtrain.data.cache` for its
layout), verified against its digest, and read straight from the compressed tar into ``.npy``
files that later loads memory-map.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from svmtrain.data.cache import (
    CIFAR10,
    PARSED_DIR,
    PART_NAME,
    Stamp,
    build_parsed,
    hash_file,
    load_parsed,
    locked,
    no_data,
    present_stamp,
    read_stamp,
    satisfies,
    write_stamp,
)
from svmtrain.data.fetch import BACKOFF_SECONDS, RETRIES, STALL_SECONDS, TIMEOUT, fetch
from svmtrain.data.format import ARCHIVE_NAME, NUM_CLASSES
from svmtrain.data.source import (
    ENV_DIGEST,
    ENV_URL,
    OFFICIAL_SHA256,
    OPTION_DIGEST,
    Source,
    resolve_data_dir,
    resolve_source,
)
from svmtrain.errors import ChecksumError, Interrupted, SigTerm, Terminated
from svmtrain.fileio import fsync_path


class UnverifiedArchiveWarning(UserWarning):
    """An archive was accepted with no digest to check it against (custom URL, no digest)."""


def download(
    source: Source,
    data_dir: str | os.PathLike | None,
    *,
    progress: bool = True,
    retries: int = RETRIES,
    backoff: float = BACKOFF_SECONDS,
    timeout: tuple[float, float] = TIMEOUT,
    stall: float = STALL_SECONDS,
) -> Path:
    """Fetch and verify the archive into ``data_dir`` unless a verified copy is already there
    (then no network request at all). Returns the archive's path.

    data_dir None: see :func:`~svmtrain.data.source.resolve_data_dir`; retries, backoff,
    timeout, stall: see :func:`~svmtrain.data.fetch.fetch`. Raises DataError (or a subclass)
    when the archive cannot be fetched, verified or stored."""
    root = resolve_data_dir(data_dir)
    with locked(root):
        _ensure_archive(
            root,
            source,
            progress=progress,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            stall=stall,
        )
    return root / ARCHIVE_NAME


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    url: str | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    *,
    progress: bool = True,
    given_as: str = OPTION_DIGEST,
) -> CIFAR10:
    """The whole dataset, downloaded and parsed on first use, memory-mapped from the cache after:
    a :class:`CIFAR10` whose x_train (N, 3072) and x_test (M, 3072) are uint8 rows (the red
    plane, then green, then blue, each 32 x 32), y_train (N,) and y_test (M,) the class
    indices into its class_names.

    A warm load reads a small JSON file, stats the archive and maps four ``.npy`` files.
    ``given_as``: how the caller's digests are set, named in a mismatch's advice (see
    :func:`~svmtrain.data.source.resolve_source`). Raises ConfigError for a bad url or digest,
    DataError (or a subclass) for the rest.
    """
    source = resolve_source(url, sha256, md5, given_as)
    return _open(resolve_data_dir(data_dir), source, progress=progress)[1]


def dataset_info(data_dir: str | os.PathLike | None = None) -> dict:
    """Where the cached dataset is, its digests, and image counts per split and class.

    Never downloads: raises DataError saying how to get the data when none is cached.
    """
    root = resolve_data_dir(data_dir)
    if not (root / ARCHIVE_NAME).is_file():
        raise no_data(root)
    stamp, data = _open(root, None, progress=False)
    return {
        "data_dir": str(root),
        "archive": str(data.archive),
        "archive_bytes": stamp.stat[0],
        "sha256": stamp.sha256,
        "md5": stamp.md5,
        "official": stamp.sha256 == OFFICIAL_SHA256,
        "source_url": stamp.url,
        "parsed_cache": str(root / PARSED_DIR / stamp.sha256),
        "class_names": list(data.class_names),
        "splits": {
            split: {"count": len(y), "per_class": _class_counts(y, data.class_names)}
            for split, y in (("train", data.y_train), ("test", data.y_test))
        },
    }


def _class_counts(y: np.ndarray, class_names: tuple[str, ...]) -> dict[str, int]:
    """Images per class name; y: (N,) uint8 in 0..9."""
    return dict(zip(class_names, np.bincount(y, minlength=NUM_CLASSES).tolist(), strict=True))


def _open(root: Path, source: Source | None, *, progress: bool) -> tuple[Stamp, CIFAR10]:
    """Load from the cache, fetching and parsing what is missing. source None: use whatever
    archive is in place and never touch the network."""
    stamp = read_stamp(root)
    if stamp is not None and (source is None or satisfies(stamp, source)):
        try:
            return stamp, load_parsed(root, stamp)
        except (OSError, ValueError, KeyError, EOFError):
            pass  # missing or damaged: rebuilt below, under the lock
    with locked(root):
        if source is None:
            stamp = present_stamp(root)
            if stamp is None:
                raise no_data(root)
        else:
            stamp = _ensure_archive(root, source, progress=progress)
        try:
            return stamp, load_parsed(root, stamp)
        except (OSError, ValueError, KeyError, EOFError):
            build_parsed(root, stamp)
            return stamp, load_parsed(root, stamp)


def _ensure_archive(
    root: Path,
    source: Source,
    *,
    progress: bool,
    retries: int = RETRIES,
    backoff: float = BACKOFF_SECONDS,
    timeout: tuple[float, float] = TIMEOUT,
    stall: float = STALL_SECONDS,
) -> Stamp:
    """The stamp of an archive that satisfies ``source``, downloading it if the one in place
    does not. Call with the lock held."""
    stamp = present_stamp(root)
    if stamp is not None and satisfies(stamp, source):
        return stamp
    part = root / PART_NAME
    try:
        fetch(
            source.url,
            part,
            progress=progress,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            stall=stall,
        )
        digests = hash_file(part)
    except KeyboardInterrupt as stop:
        size = part.stat().st_size if part.exists() else 0
        kept = (
            f"The partial download ({size:,} bytes) is kept in {part}; run the same command "
            "again to resume it."
            if size
            else "Nothing was downloaded yet; run the same command again to start over."
        )
        if isinstance(stop, SigTerm):
            raise Terminated(f"Download stopped by {stop.name}. {kept}", stop.signum) from None
        raise Interrupted(f"Download interrupted. {kept}") from None
    _verify(source, digests, part)
    os.replace(part, root / ARCHIVE_NAME)
    fsync_path(root)
    return write_stamp(root, digests, source.url)


def _digest_advice(source: Source, algo: str, got: str) -> str:
    """What to do about a download whose ``algo`` digest is ``got``, not the one expected."""
    fix_url = f"fix the URL (--url, data.url in the config, or {ENV_URL})"
    how = source.origin.get(algo)
    if how is None:  # a Source made by hand: where its digest came from is not known
        how = f"--{{algo}} {{value}} or {ENV_DIGEST[algo]}={{value}}"
    if not how:  # the official digest: the download is damaged, or the URL serves another file
        return f"Run the command again, or {fix_url}."
    return (
        f"If this archive is the one you want, expect it where the {algo} came from: "
        f"{how.format(algo=algo, value=got)}; otherwise {fix_url}."
    )


def _verify(source: Source, digests: dict[str, str], part: Path) -> None:
    """Raise ChecksumError (deleting ``part``) unless every expected digest matches; warn when
    there is none to check."""
    expected = source.digests()
    for algo, want in expected.items():
        got = digests[algo]
        if got != want:
            part.unlink()
            raise ChecksumError(
                f"The download from {source.url} does not match the expected {algo}: "
                f"expected {want}, got {got}. The download was deleted. "
                + _digest_advice(source, algo, got)
            )
    if not expected:
        sha = digests["sha256"]
        warnings.warn(
            UnverifiedArchiveWarning(
                f"No digest given for {source.url}, so the archive was accepted unchecked. "
                f"Its sha256 is {sha}: pin it with --sha256 {sha} or {ENV_DIGEST['sha256']}."
            ),
            stacklevel=2,
        )
