"""Atomic file writes, bounded reads, and one-line messages for file-system errors."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import struct
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from svmtrain.errors import SvmtrainError

_ELSEWHERE = "Choose a writable location."
# How deep JSON or YAML read back may nest (svmtrain's own nest 3 or 4; deeper recursion
# would end in a RecursionError).
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
    """Open a temporary sibling of ``path`` for writing; on success fsync and rename it over
    ``path``, and fsync the directory.

    On any exception (Ctrl-C included) the temporary is removed and ``path`` left as it was.
    Raises :class:`SvmtrainError` naming the file for a failure of the file system.
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
            f"Cannot write {target}: {err.strerror or err}. {advice(err)}"
        ) from None
    except BaseException:
        _discard(tmp)
        raise


def refuse_existing(paths: Sequence[str | os.PathLike], force: bool = False) -> None:
    """Refuse, before any work, to replace existing files the user did not ask to replace.

    ``force`` (the user's --force) lets a file be overwritten; a directory never is. Raises
    one SvmtrainError naming every file in the way and the two ways on.
    """
    targets = [Path(p) for p in paths]
    for target in targets:
        if target.is_dir():
            raise SvmtrainError(f"{target} is a directory; choose a file name.")
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        if len(existing) == 1:
            raise SvmtrainError(
                f"{existing[0]} already exists; choose a new file name or pass --force."
            )
        raise SvmtrainError(
            f"{', '.join(existing[:-1])} and {existing[-1]} already exist; choose new file "
            "names or pass --force."
        )


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; where it cannot be (a read-only file system
    refuses even to look), it was never made, and the error that brought us here is the one."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def os_error_message(err: OSError) -> str:
    """One line for a file-system error that no caller turned into its own message: the file,
    what went wrong, and the way on."""
    where = f" {err.filename}" if err.filename is not None else ""
    return f"Cannot use{where}: {err.strerror or err}. {advice(err)}"


def advice(err: OSError) -> str:
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


# An .npz svmtrain reads back holds a few arrays: a zip directory (about 100 bytes a member)
# larger than this, or more members, is not one of its files, and is refused before it is parsed.
MAX_NPZ_MEMBERS = 100
_MAX_DIRECTORY_BYTES = MAX_NPZ_MEMBERS * 1024
_EOCD = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record
_EOCD_SIGNATURE = b"PK\x05\x06"


class NpzReader:
    """An .npz opened to read the members a format names, each checked before its data are.

    Opening reads the zip's directory only, after checking from its end record that it is
    small (at most MAX_NPZ_MEMBERS members). :meth:`read` then reads one member: its size in
    the directory against ``max_bytes``, its .npy header (dtype, shape) against the shape the
    caller expects and against that size, and only then its data. Python objects are refused,
    never unpickled. Every fault is one ``error`` naming the file, ending with ``hint``.
    Use it as a context manager.
    """

    def __init__(
        self, path: str | os.PathLike, what: str, error: type[SvmtrainError], hint: str
    ) -> None:
        self.path, self.what, self.error, self.hint = Path(path), what, error, hint
        if self.path.exists() and not self.path.is_file():  # a pipe or a device: may never end
            raise error(f"{self.path} is not a regular file, so not a {what}. {hint}")
        if not self.path.is_file():
            raise error(f"No {what} at {self.path}. {hint}")
        try:
            self._check_directory_size()
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile, EOFError):
            raise self._fault(f"is not a {what} (not an .npz archive)") from None
        members = self._zip.infolist()
        if len(members) > MAX_NPZ_MEMBERS:
            self.close()
            raise self._fault(f"has {len(members):,} members; a {what} has a few arrays")
        self._members = {m.filename[: -len(".npy")]: m for m in members if _is_npy(m)}
        if members and not self._members:
            self.close()
            raise self._fault(
                f"is not a {what}: its members ({_names(m.filename for m in members)}) "
                "are not .npy arrays"
            )

    def _check_directory_size(self) -> None:
        """Refuse, from its end record, a zip whose directory is too big to be one of ours."""
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _EOCD.size - 0xFFFF))
            tail = f.read()
        at = tail.rfind(_EOCD_SIGNATURE)
        if at < 0 or len(tail) - at < _EOCD.size:
            raise zipfile.BadZipFile("no zip directory at its end")
        entries, directory_bytes = _EOCD.unpack_from(tail, at)[4:6]
        if entries > MAX_NPZ_MEMBERS or directory_bytes > _MAX_DIRECTORY_BYTES:
            many = f"{entries:,}" if entries < 0xFFFF else f"{entries:,} or more"  # the field's top
            raise self._fault(
                f"has a zip directory of {many} members ({directory_bytes:,} bytes); a "
                f"{self.what} has a few arrays"
            )

    def _fault(self, what: str) -> SvmtrainError:
        return self.error(f"{self.path} {what}. {self.hint}")

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def names(self) -> frozenset[str]:
        """The arrays' names (the members' names without .npy)."""
        return frozenset(self._members)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape the .npy header of array ``name`` declares (its data are not read)."""
        try:
            with self._zip.open(self._members[name]) as f:
                return self._header(f, name)[0]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise self._fault(f"is not a readable {self.what} ({name}: {err})") from None

    def _header(self, f: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
        """The .npy header ``f`` starts with; Python objects are refused (never unpickled)."""
        header = _npy_header(f)
        if header[2].hasobject:
            raise self._fault(
                f"is not a readable {self.what} ({name} holds Python objects, which svmtrain "
                "never unpickles: allow_pickle=False)"
            )
        return header

    def _check_size(self, member: zipfile.ZipInfo, name: str, max_bytes: int | None) -> None:
        if max_bytes is not None and member.file_size > max_bytes + _NPY_HEADER_BYTES:
            raise self._fault(
                f"holds {member.file_size:,} bytes in {name}, more than svmtrain reads for "
                f"a {self.what}'s {name} ({max_bytes:,})"
            )

    def read(
        self,
        name: str,
        *,
        shape: tuple[int, ...] | None = None,
        max_bytes: int | None = None,
    ) -> np.ndarray:
        """The array ``name``, read only once its size (at most ``max_bytes``) and its .npy
        header (of ``shape``, if given; never Python objects) are checked. Raises ``error``
        (KeyError if there is no such member: check :attr:`names` first)."""
        member = self._members[name]
        self._check_size(member, name, max_bytes)
        try:
            with self._zip.open(member) as f:
                found, fortran, dtype = self._header(f, name)
                if shape is not None and found != shape:
                    raise self._fault(f"holds {name} of shape {found}; expected {shape}")
                nbytes = math.prod(found) * dtype.itemsize
                if f.tell() + nbytes != member.file_size:
                    raise self._fault(
                        f"is damaged: {name} declares {nbytes:,} bytes of data in "
                        f"{member.file_size - f.tell():,}"
                    )
                data = np.empty(nbytes, dtype=np.uint8)
                view, got = memoryview(data), 0
                while got < nbytes:
                    n = f.readinto(view[got:])
                    if not n:
                        raise EOFError("its data end early")
                    got += n
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise self._fault(f"is not a readable {self.what} ({name}: {err})") from None
        return data.view(dtype).reshape(found, order="F" if fortran else "C")


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy file ``f`` is at the start of."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format {version[0]}.{version[1]}, which numpy.save does not write")


_NPY_HEADER_BYTES = 4096  # an .npy header is far shorter; numpy pads it to 64 or 4096 bytes


def _is_npy(member: zipfile.ZipInfo) -> bool:
    return member.filename.endswith(".npy") and len(member.filename) > len(".npy")


def _names(names: Iterator[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed[:3]) + (f" and {len(listed) - 3} more" if len(listed) > 3 else "")


def read_npz(
    path: Path,
    what: str,
    error: type[SvmtrainError],
    hint: str,
    names: tuple[str, ...] | None = None,
    max_bytes: int | None = None,
) -> dict:
    """The arrays ``names`` (those of them it holds; every one if None) of the .npz at
    ``path``, through :class:`NpzReader`: each at most ``max_bytes``. Any fault is one
    ``error`` naming the file. Never unpickles."""
    with NpzReader(path, what, error, hint) as npz:
        wanted = npz.names if names is None else npz.names & set(names)
        return {name: npz.read(name, max_bytes=max_bytes) for name in sorted(wanted)}


MAX_TEXT_BYTES = 64 << 20  # the largest text file svmtrain writes, a search's results, is far less


def read_text(
    path: str | os.PathLike,
    what: str,
    error: type[SvmtrainError],
    hint: str,
    limit: int = MAX_TEXT_BYTES,
) -> str:
    """The UTF-8 text of the regular file ``path`` (a ``what``, e.g. "scheduler file"), read
    only up to ``limit`` bytes. Any fault (not a regular file, missing, larger, unreadable,
    not UTF-8) is one ``error`` naming the file, then ``hint``."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a pipe or a device: reading may never end
        raise error(f"{path} is not a regular file, so not a {what}. {hint}".strip())
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise error(f"{path} cannot be read ({err.strerror or err}). {hint}".strip()) from None
    if len(data) > limit:
        raise error(f"{path} is larger than a {what} can be ({limit:,} bytes). {hint}".strip())
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path} is not a readable {what} (not UTF-8: {err}). {hint}".strip()) from None


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


def read_json(
    path: str | os.PathLike,
    what: str,
    error: type[SvmtrainError],
    hint: str,
    limit: int = MAX_TEXT_BYTES,
) -> dict:
    """The JSON object in the file ``path``, read by :func:`read_text` and :func:`loads_json`;
    any fault (those of read_text, not JSON, nested too deep, not an object) is one ``error``
    naming the file, then ``hint``."""
    text = read_text(path, what, error, hint, limit)
    try:
        value = loads_json(text)
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise error(f"{path} is not a readable {what} ({reason}). {hint}".strip()) from None
    if not isinstance(value, dict):
        raise error(f"{path} is not a {what} (not a JSON object). {hint}".strip())
    return value
