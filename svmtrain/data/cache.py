"""The data directory: its lock, the archive's stamp, and the parsed ``.npy`` cache.

The data directory holds::

    cifar-10-binary.tar.gz        the archive, renamed into place only once verified
    cifar-10-binary.tar.gz.part   a partial download, resumed with an HTTP Range request
    cifar-10-binary.tar.gz.json   the archive's digests, source URL and stat, so that a warm
                                  load need not hash 170 MB again
    parsed/<sha256>/              x_train.npy, y_train.npy, x_test.npy, y_test.npy, meta.json
    .lock                         flock'ed by whoever writes any of the above; holds its PID

``x`` arrays are (N, 3072) uint8 as stored in the archive, ``y`` arrays (N,) uint8 in 0..9.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from svmtrain.config.keys import is_hex_digest
from svmtrain.data.archive import parse_archive
from svmtrain.data.format import (
    ARCHIVE_NAME,
    IMAGE_BYTES,
    RECORD_BYTES,
    TEST_MEMBER,
    TRAIN_MEMBERS,
)
from svmtrain.data.source import ENV_DIR, Source
from svmtrain.errors import DataError, Notice
from svmtrain.fileio import atomic_write, fsync_path, read_json

PART_NAME = ARCHIVE_NAME + ".part"
STAMP_NAME = ARCHIVE_NAME + ".json"
LOCK_NAME = ".lock"
PARSED_DIR = "parsed"

_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_ROWS_PER_WRITE = 4096  # images copied out of the records per write: 12 MB at a time
# what build_parsed makes in parsed/: a digest's directory, or its mkdtemp(prefix=".tmp-")
_PARSED_NAME = re.compile(r"[0-9a-f]{64}|\.tmp-[A-Za-z0-9_]{8}")
_JSON_BYTES = 1 << 20  # the stamp and a description are a few hundred bytes; more is not ours


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; identity is the honest equality
class CIFAR10:
    """The dataset as stored: x (N, 3072) uint8 (R, G, B planes of 32x32), y (N,) uint8 in 0..9.

    ``x_*`` and ``y_*`` are read-only memory maps of the parsed cache.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    archive: Path
    sha256: str


@dataclass(frozen=True)
class Stamp:
    """What we know of the archive in place, valid while its stat is unchanged."""

    sha256: str
    md5: str
    url: str | None  # None: the archive was found in place, not downloaded by us
    stat: list[int]  # [size, mtime_ns, inode] of the archive


def no_data(root: Path) -> DataError:
    """The error for a data directory without an archive: how to get one."""
    return DataError(
        f"No CIFAR-10 archive in {root}. Get it with `svmtrain data download` (with the same "
        f"--data-dir), or point --data-dir or {ENV_DIR} at the directory that has it."
    )


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``root/.lock`` (one writer across threads and processes);
    an OSError inside becomes one DataError naming the directory.

    A directory that exists but cannot be written (a read-only mount, another user's cache)
    is only read: then a shared flock is held on its ``.lock`` if there is one to open, so a
    writer with more rights is waited for, and no lock at all otherwise."""
    mode = fcntl.LOCK_EX
    try:
        if root.is_dir() and not _writable(root):
            mode, fd = fcntl.LOCK_SH, _open_if_present(root / LOCK_NAME)
        else:
            root.mkdir(parents=True, exist_ok=True)
            fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise _unusable(root, err) from None
    try:
        if fd is not None:
            _acquire(fd, mode, root)
        yield
    except OSError as err:
        raise _unusable(root, err) from None
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _acquire(fd: int, mode: int, root: Path) -> None:
    """flock ``fd`` in ``mode``, first saying whom we wait for (a :class:`Notice`) if someone
    holds it.
    An exclusive holder records its PID in the file, for the next one's message."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        warnings.warn(
            Notice(f"Waiting for {_holder(fd)} to finish with the data directory {root} ..."),
            stacklevel=2,
        )
        fcntl.flock(fd, mode)
    if mode == fcntl.LOCK_EX:
        with contextlib.suppress(OSError):  # only for that message: a full disk must not stop us
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _holder(fd: int) -> str:
    """Who holds the lock on ``fd``, from the PID its holder recorded."""
    try:
        pid = int(os.pread(fd, 32, 0))
    except (OSError, ValueError):
        return "another svmtrain process"
    if pid == os.getpid():
        return "another thread of this process"
    return f"another svmtrain process (PID {pid})"


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


def _open_if_present(path: Path) -> int | None:
    """A read-only descriptor of ``path``, or None if it cannot be opened."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


def _unusable(root: Path, err: OSError) -> DataError:
    if root.exists() and not root.is_dir():
        reason = "it exists and is not a directory"
    else:
        reason = f"{err.strerror or err}" + (f" ({err.filename})" if err.filename else "")
    return DataError(
        f"Cannot write to the data directory {root}: {reason}. "
        f"Choose a writable directory with --data-dir or {ENV_DIR}."
    )


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _recorded_stamp(root: Path) -> Stamp | None:
    """The stamp file's contents, whatever archive is in place now; None if absent or bad."""
    try:
        stamp = Stamp(**read_json(root / STAMP_NAME, "stamp", DataError, "", _JSON_BYTES))
    except (DataError, TypeError):
        return None
    # Stamps are written in lower case; any other is not ours.
    valid = (
        isinstance(stamp.sha256, str)
        and is_hex_digest(stamp.sha256, "sha256")
        and stamp.sha256 == stamp.sha256.lower()
    )
    return stamp if valid else None


def read_stamp(root: Path) -> Stamp | None:
    """The stamp, if present and still describing the archive in place (same stat)."""
    stamp = _recorded_stamp(root)
    try:
        current = _stat_key(root / ARCHIVE_NAME)
    except OSError:
        return None
    return stamp if stamp is not None and stamp.stat == current else None


def write_stamp(root: Path, digests: dict[str, str], url: str | None) -> Stamp:
    """Record ``digests`` (sha256, md5) and ``url`` for the archive in place; returns the stamp."""
    stamp = Stamp(**digests, url=url, stat=_stat_key(root / ARCHIVE_NAME))
    with atomic_write(root / STAMP_NAME, "w") as f:
        f.write(json.dumps(asdict(stamp), indent=2) + "\n")
    return stamp


def present_stamp(root: Path) -> Stamp | None:
    """The stamp of the archive in place; None if there is no archive. Call with the lock held.

    An archive whose stat differs from the stamp's (new, changed, or copied from elsewhere) is
    hashed again; when its contents are the stamped ones, the source URL is kept. The new stamp
    is written, unless the directory is read-only: then it is only returned."""
    stamp = read_stamp(root)
    if stamp is not None or not (root / ARCHIVE_NAME).is_file():
        return stamp
    digests = hash_file(root / ARCHIVE_NAME)
    recorded = _recorded_stamp(root)
    url = recorded.url if recorded is not None and recorded.sha256 == digests["sha256"] else None
    if not _writable(root):
        return Stamp(**digests, url=url, stat=_stat_key(root / ARCHIVE_NAME))
    return write_stamp(root, digests, url)


def satisfies(stamp: Stamp, source: Source) -> bool:
    """Whether the archive in place is what ``source`` asks for: every expected digest matches,
    or, with none to check, it came from the same URL."""
    expected = source.digests()
    if expected:
        return all(getattr(stamp, algo) == value for algo, value in expected.items())
    return stamp.url == source.url


def hash_file(path: Path) -> dict[str, str]:
    """The sha256 and md5 hex digests of a file, by algorithm name."""
    hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            for h in hashers.values():
                h.update(block)
    return {algo: h.hexdigest() for algo, h in hashers.items()}


def build_parsed(root: Path, stamp: Stamp) -> None:
    """Parse the archive into ``parsed/<sha256>/`` (built in a temporary directory, renamed into
    place whole), after removing what else svmtrain put in ``parsed/`` (caches of other
    archives, leftovers of a build that crashed; a folder of the user's stays). Call with the
    lock held.

    Raises ArchiveError for a damaged archive, DataError when the disk is full (nothing
    half-written is left), OSError for other failures to write."""
    records, class_names = parse_archive(root / ARCHIVE_NAME)
    parsed = root / PARSED_DIR
    parsed.mkdir(exist_ok=True)
    for stale in parsed.iterdir():
        if _PARSED_NAME.fullmatch(stale.name) and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    target = parsed / stamp.sha256
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parsed))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from others
        _save_split(tmp, "train", [records[name] for name in TRAIN_MEMBERS])
        _save_split(tmp, "test", [records[TEST_MEMBER]])
        meta = {"class_names": list(class_names), "sha256": stamp.sha256}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        for path in tmp.iterdir():
            fsync_path(path)
        os.replace(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            needed = sum(len(batch) for batch in records.values()) * RECORD_BYTES
            raise _no_space(root, err, needed) from None
        raise
    fsync_path(parsed)


def _no_space(root: Path, err: OSError, needed: int) -> DataError:
    try:
        free = f"; {shutil.disk_usage(root).free:,} are free"
    except OSError:
        free = ""
    return DataError(
        f"Not enough space in the data directory {root} to parse the archive: "
        f"{err.strerror or err}. The parsed arrays need {needed:,} bytes{free}. Free some "
        f"space, or choose a directory on another disk with --data-dir or {ENV_DIR}. The "
        "archive is kept, so it will not be downloaded again."
    )


def _save_split(directory: Path, split: str, batches: list[np.ndarray]) -> None:
    """Write x_<split>.npy (N, 3072) and y_<split>.npy (N,) from record batches (n_i, 3073).

    Ordinary writes, not a memory map: a full disk must be an OSError, not a SIGBUS."""
    n = sum(len(batch) for batch in batches)
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
        "fortran_order": False,
        "shape": (n, IMAGE_BYTES),
    }
    with open(directory / f"x_{split}.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for batch in batches:
            for start in range(0, len(batch), _ROWS_PER_WRITE):
                rows = batch[start : start + _ROWS_PER_WRITE, 1:]
                f.write(np.ascontiguousarray(rows).data)
    np.save(directory / f"y_{split}.npy", np.concatenate([batch[:, 0] for batch in batches]))


def load_parsed(root: Path, stamp: Stamp) -> CIFAR10:
    """Memory-map the parsed cache of ``stamp``'s archive; OSError or ValueError if it is
    missing or not what we wrote."""
    directory = root / PARSED_DIR / stamp.sha256
    try:
        meta = read_json(directory / "meta.json", "description", DataError, "", _JSON_BYTES)
    except DataError as err:
        raise ValueError(str(err)) from None
    names = meta.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise ValueError(f"parsed cache {directory} has no class names")
    arrays = {
        name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in _ARRAYS
    }
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if (
            (x.dtype, y.dtype) != (np.uint8, np.uint8)
            or y.ndim != 1
            or x.shape != (len(y), IMAGE_BYTES)
            or (len(y) and int(y.max()) >= len(meta["class_names"]))
        ):
            raise ValueError(f"parsed cache {directory} has unexpected {split} arrays")
    return CIFAR10(
        **arrays,
        class_names=tuple(meta["class_names"]),
        archive=root / ARCHIVE_NAME,
        sha256=stamp.sha256,
    )
