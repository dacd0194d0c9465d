"""CIFAR-10, binary version: download, verify, parse and cache.

The archive is fetched once into the data directory, verified against its digest, and read
straight from the compressed tar (nothing is extracted, nothing is unpickled) into ``.npy`` files
that later loads memory-map. The data directory holds::

    cifar-10-binary.tar.gz        the archive, renamed into place only once verified
    cifar-10-binary.tar.gz.part   a partial download, resumed with an HTTP Range request
    cifar-10-binary.tar.gz.json   the archive's digests, source URL and stat, so that a warm
                                  load need not hash 170 MB again
    parsed/<sha256>/              x_train.npy, y_train.npy, x_test.npy, y_test.npy, meta.json
    .lock                         flock'ed by whoever writes any of the above

Records are 1 label byte then 3072 pixel bytes (R, G, B planes of 32x32, row-major), kept as
stored: ``x`` arrays are (N, 3072) uint8, ``y`` arrays (N,) uint8 in 0..9.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import requests
import urllib3
from tqdm import tqdm

from svmtrain.errors import (
    ArchiveError,
    ChecksumError,
    ConfigError,
    DataError,
    DownloadError,
    Interrupted,
)
from svmtrain.io.fileio import atomic_write, fsync_path

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
OFFICIAL_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
OFFICIAL_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"

ENV_URL = "SVMTRAIN_DATA_URL"
ENV_DIGEST = {"sha256": "SVMTRAIN_DATA_SHA256", "md5": "SVMTRAIN_DATA_MD5"}
ENV_DIR = "SVMTRAIN_DATA_DIR"

# Network behaviour; download() takes each as a keyword so tests can make backoff tiny.
TIMEOUT = (10.0, 60.0)  # seconds: (connect, read between two chunks)
RETRIES = 4  # further attempts after connection errors and 5xx; progress resets the count
BACKOFF_SECONDS = 1.0  # wait before retry k (1-based): BACKOFF_SECONDS * 2 ** (k - 1)
CHUNK_BYTES = 1 << 16

ARCHIVE_NAME = "cifar-10-binary.tar.gz"
PART_NAME = ARCHIVE_NAME + ".part"
STAMP_NAME = ARCHIVE_NAME + ".json"
LOCK_NAME = ".lock"
PARSED_DIR = "parsed"

MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"{MEMBER_DIR}/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = f"{MEMBER_DIR}/test_batch.bin"
META_MEMBER = f"{MEMBER_DIR}/batches.meta.txt"
IMAGE_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + IMAGE_BYTES
NUM_CLASSES = 10

_HEX_DIGITS = {"sha256": 64, "md5": 32}
_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


class UnverifiedArchiveWarning(UserWarning):
    """An archive was accepted with no digest to check it against (custom URL, no digest)."""


@dataclass(frozen=True)
class Source:
    """Where the archive comes from and the digests it must match (None: not checked)."""

    url: str
    sha256: str | None
    md5: str | None

    def digests(self) -> dict[str, str]:
        """The expected digests that are set, by algorithm name."""
        return {algo: value for algo in ("sha256", "md5") if (value := getattr(self, algo))}


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
class _Stamp:
    """What we know of the archive in place, valid while its stat is unchanged."""

    sha256: str
    md5: str
    url: str | None  # None: the archive was found in place, not downloaded by us
    stat: list[int]  # [size, mtime_ns, inode] of the archive


class _Transient(Exception):
    """A network failure that a retry may fix; the message says what happened."""


# ---------------------------------------------------------------------------------------------
# Where: source and directory


def resolve_source(
    url: str | None = None, sha256: str | None = None, md5: str | None = None
) -> Source:
    """Each of url, sha256, md5: the argument, else its environment variable, else the official
    value. The official digests apply only to the official URL; a custom URL without a digest is
    accepted with an :class:`UnverifiedArchiveWarning` at download time."""
    url = url or os.environ.get(ENV_URL) or OFFICIAL_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"The data URL must start with http:// or https://. Got {url!r} instead "
            f"(from --url, the config or {ENV_URL})."
        )
    digests = {"sha256": sha256, "md5": md5}
    for algo, value in digests.items():
        value = (value or os.environ.get(ENV_DIGEST[algo]) or "").strip().lower()
        if value and not _is_hex(value, algo):
            raise ConfigError(
                f"The {algo} digest must be {_HEX_DIGITS[algo]} hexadecimal digits. Got "
                f"{value!r} instead (from --{algo}, the config or {ENV_DIGEST[algo]})."
            )
        digests[algo] = value or None
    if url == OFFICIAL_URL and not any(digests.values()):
        digests = {"sha256": OFFICIAL_SHA256, "md5": OFFICIAL_MD5}
    return Source(url=url, **digests)


def _is_hex(value: str, algo: str) -> bool:
    return re.fullmatch(f"[0-9a-f]{{{_HEX_DIGITS[algo]}}}", value) is not None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, else $SVMTRAIN_DATA_DIR, else
    $XDG_CACHE_HOME/svmtrain, else ~/.cache/svmtrain (absolute; not created here)."""
    chosen = data_dir or os.environ.get(ENV_DIR)
    if not chosen:
        cache = os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
        chosen = Path(cache) / "svmtrain"
    return Path(chosen).expanduser().absolute()


# ---------------------------------------------------------------------------------------------
# Public entry points


def download(
    source: Source,
    data_dir: str | os.PathLike | None,
    *,
    progress: bool = True,
    retries: int = RETRIES,
    backoff: float = BACKOFF_SECONDS,
    timeout: tuple[float, float] = TIMEOUT,
) -> Path:
    """Fetch and verify the archive into ``data_dir`` unless a verified copy is already there
    (then no network request at all). Returns the archive's path.

    data_dir None: see :func:`resolve_data_dir`."""
    root = resolve_data_dir(data_dir)
    with _locked(root):
        _ensure_archive(
            root, source, progress=progress, retries=retries, backoff=backoff, timeout=timeout
        )
    return root / ARCHIVE_NAME


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    url: str | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    *,
    progress: bool = True,
) -> CIFAR10:
    """The whole dataset, downloaded and parsed on first use, memory-mapped from the cache after.

    A warm load reads a small JSON file, stats the archive and maps four ``.npy`` files.
    """
    source = resolve_source(url, sha256, md5)
    return _open(resolve_data_dir(data_dir), source, progress=progress)[1]


def dataset_info(data_dir: str | os.PathLike | None = None) -> dict:
    """Where the cached dataset is, its digests, and image counts per split and class.

    Never downloads: raises DataError saying how to get the data when none is cached.
    """
    root = resolve_data_dir(data_dir)
    if not (root / ARCHIVE_NAME).is_file():
        raise _no_data(root)
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


def _open(root: Path, source: Source | None, *, progress: bool) -> tuple[_Stamp, CIFAR10]:
    """Load from the cache, fetching and parsing what is missing. source None: use whatever
    archive is in place and never touch the network."""
    stamp = _read_stamp(root)
    if stamp is not None and (source is None or _satisfies(stamp, source)):
        try:
            return stamp, _load_parsed(root, stamp)
        except (OSError, ValueError, KeyError):
            pass  # missing or damaged: rebuilt below, under the lock
    with _locked(root):
        if source is None:
            stamp = _present_stamp(root)
            if stamp is None:
                raise _no_data(root)
        else:
            stamp = _ensure_archive(root, source, progress=progress)
        try:
            return stamp, _load_parsed(root, stamp)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(root / PARSED_DIR / stamp.sha256, ignore_errors=True)
            _build_parsed(root, stamp)
            return stamp, _load_parsed(root, stamp)


def _no_data(root: Path) -> DataError:
    return DataError(
        f"No CIFAR-10 archive in {root}. Get it with `svmtrain data download` (with the same "
        f"--data-dir), or point --data-dir or {ENV_DIR} at the directory that has it."
    )


# ---------------------------------------------------------------------------------------------
# The data directory: lock, stamp, atomic writes


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``root/.lock`` (one writer across threads and processes);
    an OSError inside becomes one DataError naming the directory."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise _unusable(root, err) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    except OSError as err:
        raise _unusable(root, err) from None
    finally:
        os.close(fd)  # releases the lock


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


def _read_stamp(root: Path) -> _Stamp | None:
    """The stamp, if present and still describing the archive in place."""
    try:
        stamp = _Stamp(**json.loads((root / STAMP_NAME).read_text()))
        current = _stat_key(root / ARCHIVE_NAME)
    except (OSError, ValueError, TypeError):
        return None
    valid = stamp.stat == current and _is_hex(stamp.sha256, "sha256")
    return stamp if valid else None


def _write_stamp(root: Path, digests: dict[str, str], url: str | None) -> _Stamp:
    stamp = _Stamp(**digests, url=url, stat=_stat_key(root / ARCHIVE_NAME))
    with atomic_write(root / STAMP_NAME, "w") as f:
        f.write(json.dumps(asdict(stamp), indent=2) + "\n")
    return stamp


def _present_stamp(root: Path) -> _Stamp | None:
    """The stamp of the archive in place, hashing it when it is new or changed; None if absent.
    Call with the lock held."""
    stamp = _read_stamp(root)
    if stamp is None and (root / ARCHIVE_NAME).is_file():
        stamp = _write_stamp(root, _hash_file(root / ARCHIVE_NAME), url=None)
    return stamp


def _satisfies(stamp: _Stamp, source: Source) -> bool:
    """Whether the archive in place is what ``source`` asks for: every expected digest matches,
    or, with none to check, it came from the same URL."""
    expected = source.digests()
    if expected:
        return all(getattr(stamp, algo) == value for algo, value in expected.items())
    return stamp.url == source.url


def _hash_file(path: Path) -> dict[str, str]:
    hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            for h in hashers.values():
                h.update(block)
    return {algo: h.hexdigest() for algo, h in hashers.items()}


# ---------------------------------------------------------------------------------------------
# Download: resume, retry, verify, rename into place


def _ensure_archive(
    root: Path,
    source: Source,
    *,
    progress: bool,
    retries: int = RETRIES,
    backoff: float = BACKOFF_SECONDS,
    timeout: tuple[float, float] = TIMEOUT,
) -> _Stamp:
    """The stamp of an archive that satisfies ``source``, downloading it if the one in place
    does not. Call with the lock held."""
    stamp = _present_stamp(root)
    if stamp is not None and _satisfies(stamp, source):
        return stamp
    part = root / PART_NAME
    try:
        _fetch(
            source.url, part, progress=progress, retries=retries, backoff=backoff, timeout=timeout
        )
        digests = _hash_file(part)
    except KeyboardInterrupt:
        size = part.stat().st_size if part.exists() else 0
        kept = (
            f"The partial download ({size:,} bytes) is kept in {part}; run the same command "
            "again to resume it."
            if size
            else "Nothing was downloaded yet; run the same command again to start over."
        )
        raise Interrupted(f"Download interrupted. {kept}") from None
    _verify(source, digests, part)
    os.replace(part, root / ARCHIVE_NAME)
    fsync_path(root)
    return _write_stamp(root, digests, source.url)


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
                f"expected {want}, got {got}. The download was deleted. If this archive is the "
                f"one you want, pass --{algo} {got} (or set {ENV_DIGEST[algo]}={got}); "
                f"otherwise fix the URL (--url or {ENV_URL})."
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


def _fetch(
    url: str,
    part: Path,
    *,
    progress: bool,
    retries: int,
    backoff: float,
    timeout: tuple[float, float],
) -> None:
    """Download ``url`` into ``part``, resuming what is there, retrying transient failures with
    exponential backoff. Returns once ``part`` holds the whole body (not yet verified)."""
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _fetch_once(url, part, progress=progress, timeout=timeout)
            return
        except _Transient as err:
            now = part.stat().st_size if part.exists() else 0
            failures = 1 if now > before else failures + 1  # a flaky link is not a dead one
            if failures > retries:
                kept = (
                    f" The partial download ({now:,} bytes) is kept in {part}; run again to "
                    "resume it."
                    if now
                    else ""
                )
                raise DownloadError(
                    f"Could not download {url}: {err} (gave up after {failures} failed "
                    f"attempts in a row).{kept} Check the network and the URL (--url or "
                    f"{ENV_URL})."
                ) from None
            time.sleep(backoff * 2 ** (failures - 1))


def _fetch_once(url: str, part: Path, *, progress: bool, timeout: tuple[float, float]) -> None:
    """One GET that appends to ``part`` (Range) or rewrites it (the server ignored Range).

    Raises _Transient for what a retry may fix (including a resume the server refused, after
    discarding ``part``) and DownloadError for what it cannot (404 and other 4xx)."""
    offset = part.stat().st_size if part.exists() else 0
    # identity: some servers gzip-encode a .tar.gz on the fly; we want the file's own bytes
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as err:
        raise _Transient(_reason(err)) from err
    except requests.RequestException as err:  # a malformed URL, too many redirects: no retry
        raise DownloadError(f"Could not download {url}: {_reason(err)}.") from None
    with response:
        status = response.status_code
        start, total = _content_range(response.headers.get("Content-Range", ""))
        if status == 416 and offset and total == offset:
            return  # the partial was already whole: it was interrupted before verification
        if status == 416 or (status == 206 and start != offset):
            part.unlink(missing_ok=True)
            raise _Transient(f"the server cannot resume from byte {offset:,}; starting over")
        if status >= 500:
            raise _Transient(f"HTTP {status} {response.reason}")
        if status not in (200, 206):
            raise DownloadError(
                f"Could not download {url}: HTTP {status} {response.reason}. "
                f"Check the URL (--url or {ENV_URL})."
            )
        if status == 200:
            offset = 0  # Range ignored: the body is the whole file, so start over
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=ARCHIVE_NAME,
                file=sys.stderr,
                disable=not (progress and sys.stderr.isatty()),
            ) as bar,
        ):
            for chunk in _body(response):
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Transient(f"the connection closed after {size:,} of {total:,} bytes")


def _body(response: requests.Response) -> Iterator[bytes]:
    """The raw body bytes (never content-decoded); a failed read becomes _Transient."""
    try:
        yield from response.raw.stream(CHUNK_BYTES, decode_content=False)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
        raise _Transient(f"the connection was lost: {_reason(err)}") from err


def _content_range(header: str) -> tuple[int | None, int | None]:
    """(first byte, total size) of 'bytes 100-199/1000' or 'bytes */1000'; None where absent."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", header.strip())
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total.isdigit() else None)


def _reason(err: BaseException) -> str:
    """A short reason from requests' and urllib3's nested messages."""
    text = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return "timed out"
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno_text:
        return errno_text.group(1).strip()
    return text or type(err).__name__


# ---------------------------------------------------------------------------------------------
# Parse: straight from the tar stream into the .npy cache


def _bad_archive(archive: Path, what: str) -> ArchiveError:
    return ArchiveError(
        f"The archive {archive} is unusable: {what}. Delete it (rm {archive}) and run "
        f"`svmtrain data download` again; if that does not help, the source (--url or "
        f"{ENV_URL}) is not the CIFAR-10 binary version."
    )


def _parse_archive(archive: Path) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Records (N, 3073) uint8 per expected .bin member, and the class names.

    Reads the expected members from the compressed tar stream and skips every other member
    unread, whatever its path (``../evil`` included); nothing is extracted."""
    wanted = (*TRAIN_MEMBERS, TEST_MEMBER, META_MEMBER)
    data: dict[str, bytes] = {}
    where = "its first member"
    try:
        with gzip.open(archive, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name not in wanted:
                    continue
                where = name
                if name in data or not member.isfile():
                    raise _bad_archive(archive, f"{name} is repeated or not a regular file")
                if name != META_MEMBER and (member.size == 0 or member.size % RECORD_BYTES):
                    raise _bad_archive(
                        archive,
                        f"{name} has {member.size:,} bytes, not a whole number of "
                        f"{RECORD_BYTES:,}-byte records (1 label byte + {IMAGE_BYTES:,} pixels)",
                    )
                data[name] = tar.extractfile(member).read()
                where = f"the member after {name}"
            where = "the end of the archive"
            while gz.read(CHUNK_BYTES):  # to the gzip trailer: its CRC and length are checked
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise _bad_archive(archive, f"it is corrupt or truncated ({err}) at {where}") from None
    missing = [name for name in wanted if name not in data]
    if missing:
        raise _bad_archive(archive, f"it lacks {', '.join(missing)}")
    records = {name: _records(archive, name, data[name]) for name in (*TRAIN_MEMBERS, TEST_MEMBER)}
    return records, _class_names(archive, data[META_MEMBER])


def _records(archive: Path, name: str, raw: bytes) -> np.ndarray:
    """(N, 3073) uint8 view of one .bin member whose size is a whole number of records."""
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    bad = np.flatnonzero(records[:, 0] >= NUM_CLASSES)
    if bad.size:
        raise _bad_archive(
            archive,
            f"{name} record {bad[0]} has label {records[bad[0], 0]}; "
            f"labels are 0 to {NUM_CLASSES - 1}",
        )
    return records


def _class_names(archive: Path, raw: bytes) -> tuple[str, ...]:
    lines = raw.decode("utf-8", "replace").splitlines()
    names = tuple(name for line in lines if (name := line.strip()))  # the file ends in blanks
    if len(names) != NUM_CLASSES:
        raise _bad_archive(
            archive, f"{META_MEMBER} lists {len(names)} class names, not {NUM_CLASSES}"
        )
    return names


def _build_parsed(root: Path, stamp: _Stamp) -> None:
    """Parse the archive into ``parsed/<sha256>/`` (built in a temporary directory, renamed into
    place whole) and remove the caches of other archives. Call with the lock held."""
    records, class_names = _parse_archive(root / ARCHIVE_NAME)
    parsed = root / PARSED_DIR
    parsed.mkdir(exist_ok=True)
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in parsed.iterdir():
        if stale != target:
            shutil.rmtree(stale, ignore_errors=True)
    fsync_path(parsed)


def _save_split(directory: Path, split: str, batches: list[np.ndarray]) -> None:
    """Write x_<split>.npy (N, 3072) and y_<split>.npy (N,) from record batches (n_i, 3073)."""
    n = sum(len(batch) for batch in batches)
    x = np.lib.format.open_memmap(
        directory / f"x_{split}.npy", mode="w+", dtype=np.uint8, shape=(n, IMAGE_BYTES)
    )
    y = np.empty(n, dtype=np.uint8)
    row = 0
    for batch in batches:
        x[row : row + len(batch)] = batch[:, 1:]
        y[row : row + len(batch)] = batch[:, 0]
        row += len(batch)
    x.flush()
    del x
    np.save(directory / f"y_{split}.npy", y)


def _load_parsed(root: Path, stamp: _Stamp) -> CIFAR10:
    """Memory-map the parsed cache of ``stamp``'s archive; OSError or ValueError if it is
    missing or not what we wrote."""
    directory = root / PARSED_DIR / stamp.sha256
    meta = json.loads((directory / "meta.json").read_text())
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
        ):
            raise ValueError(f"parsed cache {directory} has unexpected {split} arrays")
    return CIFAR10(
        **arrays,
        class_names=tuple(meta["class_names"]),
        archive=root / ARCHIVE_NAME,
        sha256=stamp.sha256,
    )
