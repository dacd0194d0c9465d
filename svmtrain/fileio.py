"""Atomic file writes: a reader never sees a truncated file that looks complete.

Everything svmtrain writes (weights, checkpoints, metrics, configs, pictures) goes through
:func:`atomic_write`: the bytes go to a hidden temporary file in the same directory, are
flushed to disk, and only then renamed over the target, which POSIX makes atomic; the
directory is flushed too, so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from svmtrain.errors import SvmtrainError

_ELSEWHERE = "Choose a writable location."
# How deep the values of any JSON or YAML svmtrain reads back may nest (its own nest 3 or 4):
# parsing deeper text recurses until Python's stack runs out (a RecursionError).
MAX_NESTING = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")
_ADVICE = {
    errno.ENOSPC: "Free some space, or choose a location on another disk.",
    errno.EDQUOT: "Free some space, or choose a location on another disk.",
    errno.ENOENT: "Its directory does not exist: create it or choose another location.",
    errno.ENOTDIR: "A part of that path is a file, not a directory: choose another location.",
    errno.ENAMETOOLONG: "A name in that path is longer than the file system allows (255 "
    "bytes): choose a shorter one.",
}


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success rename it to ``path``.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is left
    exactly as it was. A failure of the file system (disk full, read-only, no such directory)
    becomes one :class:`SvmtrainError` that names the file.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_path(target.parent)
    except OSError as err:
        _discard(tmp)
        raise SvmtrainError(
            f"Cannot write {target}: {err.strerror or err}. {_advice(err)}"
        ) from None
    except BaseException:
        _discard(tmp)
        raise


def refuse_existing(path: str | os.PathLike, force: bool = False) -> None:
    """Refuse, before any work, to replace an existing file the user did not ask to replace.

    ``force`` (the user's --force) lets a file be overwritten; a directory never is. Raises
    SvmtrainError naming the file and the two ways on.
    """
    target = Path(path)
    if target.is_dir():
        raise SvmtrainError(f"{target} is a directory; choose a file name.")
    if (target.exists() or target.is_symlink()) and not force:
        raise SvmtrainError(f"{target} already exists; choose a new file name or pass --force.")


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; where it cannot be (a read-only file system
    refuses even to look), it was never made, and the error that brought us here is the one."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def os_error_message(err: OSError) -> str:
    """One line for a file-system error that no caller turned into its own message: the file,
    what went wrong, and the way on."""
    where = f" {err.filename}" if err.filename is not None else ""
    return f"Cannot use{where}: {err.strerror or err}. {_advice(err)}"


def _advice(err: OSError) -> str:
    """How to get past ``err``, raised by writing the temporary file or renaming it."""
    failed = Path(err.filename) if isinstance(err.filename, str) else None
    if err.errno == errno.ENOENT and failed is not None and failed.parent.is_dir():
        # the directory is there but makes no new files (e.g. /proc)
        return f"No new file can be created in {failed.parent}: choose a writable location."
    return _ADVICE.get(err.errno, _ELSEWHERE)


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a directory's entries to disk (a rename is durable once its dir is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_npz(path: Path, what: str, error: type[SvmtrainError], hint: str) -> dict:
    """Every array of the .npz at ``path``; any fault is one ``error`` naming the file.

    Never unpickles: an npz holding Python objects is refused, not loaded.
    """
    if path.exists() and not path.is_file():  # a pipe or a device: reading may never end
        raise error(f"{path} is not a regular file, so not a {what}. {hint}")
    if not path.is_file():
        raise error(f"No {what} at {path}. {hint}")
    if not zipfile.is_zipfile(path):
        raise error(f"{path} is not a {what} (not an .npz archive). {hint}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise error(f"{path} is not a readable {what} ({err}). {hint}") from None


def loads_json(text: str | bytes) -> Any:
    """``json.loads(text)``, bounded: ValueError (as for text that is not JSON) if its values
    nest deeper than MAX_NESTING. Every JSON svmtrain reads back is read by this."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_NESTING:
            raise ValueError(f"values nested more than {MAX_NESTING} levels deep")
    return json.loads(text)


def read_json(path: Path, what: str, error: type[SvmtrainError], hint: str, limit: int) -> dict:
    """The JSON object in the file ``path``, read only if it is at most ``limit`` bytes; any
    fault (missing, too large, not UTF-8, not JSON, nested too deep, not an object) is one
    ``error`` naming the file, then ``hint``."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise error(f"{path} cannot be read ({err.strerror or err}). {hint}".strip()) from None
    if len(data) > limit:
        raise error(f"{path} is larger than a {what} can be ({limit:,} bytes). {hint}".strip())
    try:
        value = loads_json(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise error(f"{path} is not a readable {what} ({reason}). {hint}".strip()) from None
    if not isinstance(value, dict):
        raise error(f"{path} is not a {what} (not a JSON object). {hint}".strip())
    return value
