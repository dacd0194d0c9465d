"""Fetching a file over HTTP(S) into a partial file: resume with Range, retry with backoff.

The body's raw bytes are appended as they arrive, so an interrupted fetch leaves a partial that
the next one resumes. Verifying the result is the caller's business.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests
import urllib3

from svmtrain.data.format import ARCHIVE_NAME
from svmtrain.data.source import ENV_DIR, ENV_URL
from svmtrain.errors import DataError, DownloadError
from svmtrain.progress import PercentLines, notify, tqdm

# Network behaviour; download() takes each as a keyword so tests can make them tiny.
TIMEOUT = (10.0, 30.0)  # seconds: (connect, read between two chunks)
RETRIES = 4  # further attempts after connection errors and 5xx; progress resets the count
BACKOFF_SECONDS = 1.0  # wait before retry k (1-based): BACKOFF_SECONDS * 2 ** (k - 1)
STALL_SECONDS = 90.0  # give up when no byte has arrived for this long, whatever the retries
CHUNK_BYTES = 1 << 16
LINE_PERCENT = 5  # a download to a log file says how far it got every this many percent


class _Transient(Exception):
    """A network failure that a retry may fix; the message says what happened."""


def fetch(
    url: str,
    part: Path,
    *,
    progress: bool,
    retries: int,
    backoff: float,
    timeout: tuple[float, float],
    stall: float,
) -> None:
    """Download ``url`` into ``part``, resuming what is there, retrying transient failures with
    exponential backoff. Returns once ``part`` holds the whole body (not yet verified).

    timeout: (connect, read) seconds, the read one between two chunks; stall: seconds without
    a new byte, across attempts, after which no retry is made. With ``progress``, each retry
    is announced with its reason (:func:`svmtrain.progress.notify`). Raises DownloadError
    when the retries run out, the stall deadline passes, or the failure is not transient (4xx).
    """
    failures, last_progress = 0, time.monotonic()
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            _fetch_once(url, part, progress=progress, timeout=timeout)
            return
        except _Transient as err:
            now = part.stat().st_size if part.exists() else 0
            if now > before:  # a flaky link is not a dead one
                failures, last_progress = 1, time.monotonic()
            else:
                failures += 1
            kept = f" The partial download ({now:,} bytes) is kept in {part}" if now else ""
            if failures > retries:
                raise DownloadError(
                    f"Could not download {url}: {err} (gave up after {failures} failed "
                    f"attempts in a row).{kept and kept + '; run again to resume it.'} Check the "
                    f"network and the URL (--url or {ENV_URL})."
                ) from None
            wait, silent = backoff * 2 ** (failures - 1), time.monotonic() - last_progress
            if silent + wait >= stall:
                raise DownloadError(
                    f"Could not download {url}: no data arrived for {silent:.1f} s ({err})."
                    f"{kept and kept + ' and will be resumed.'} Run the same command again to "
                    f"retry, later or from another mirror (--url or {ENV_URL})."
                ) from None
            if progress:
                notify(f"Downloading {url}: {err}; retrying in {wait:g} s.")
            time.sleep(wait)


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
        try:
            _write_body(
                response,
                part,
                offset=offset,
                total=total,
                progress=progress,
                read_timeout=timeout[1],
            )
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise _disk_full(part, total, err) from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Transient(f"the connection closed after {size:,} of {total:,} bytes")


def _write_body(
    response: requests.Response,
    part: Path,
    *,
    offset: int,
    total: int | None,
    progress: bool,
    read_timeout: float,
) -> None:
    """Append the body to ``part`` (from scratch when offset is 0) and flush it to disk.

    With ``progress``: a bar on a terminal; when stderr is a file or a pipe, a line every
    LINE_PERCENT percent of a body of known size."""
    with open(part, "ab" if offset else "wb") as out, _progress(total, offset, progress) as bar:
        for chunk in _body(response, read_timeout):
            out.write(chunk)
            bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())


def _progress(total: int | None, offset: int, progress: bool) -> tqdm | PercentLines:
    """The download's progress display (see :func:`_write_body`)."""
    if progress and total and not sys.stderr.isatty():
        return PercentLines(
            f"Downloading {ARCHIVE_NAME}",
            total,
            lambda line: print(line, file=sys.stderr, flush=True),
            initial=offset,
            every=LINE_PERCENT,
            format=lambda n: f"{n / 1e6:.1f} MB",
        )
    return tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=ARCHIVE_NAME,
        file=sys.stderr,
        disable=not (progress and sys.stderr.isatty()),
    )


def _disk_full(part: Path, total: int | None, err: OSError) -> DataError:
    """The error for a disk that filled up during the download: what is kept, how to go on."""
    kept = part.stat().st_size if part.exists() else 0
    need = f" (the archive is {total:,} bytes)" if total is not None else ""
    if kept:
        what = f"{kept:,}{f' of {total:,}' if total is not None else ''} bytes are kept in {part}"
        then = "run the same command again to resume"
    else:
        part.unlink(missing_ok=True)
        what, then = "nothing was kept", "run the same command again"
    return DataError(
        f"Not enough space in the data directory {part.parent} for the download: "
        f"{err.strerror or err}; {what}. Free some space{need} and {then}, or choose a "
        f"directory on another disk with --data-dir or {ENV_DIR}."
    )


def _body(response: requests.Response, read_timeout: float) -> Iterator[bytes]:
    """The raw body bytes (never content-decoded); a failed read becomes _Transient."""
    try:
        yield from response.raw.stream(CHUNK_BYTES, decode_content=False)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
        reason = _reason(err)
        if reason == "timed out":
            raise _Transient(f"the read timed out (nothing for {read_timeout:g} s)") from err
        raise _Transient(f"the connection was lost: {reason}") from err


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
