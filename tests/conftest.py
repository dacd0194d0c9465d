"""Shared fixtures: a loopback HTTP server, tiny synthetic CIFAR-10 archives, the real mirror.

- ``http_server(body, **behaviour)`` serves bytes on 127.0.0.1 and records every request.
- ``tiny_archive(**options)`` builds a small CIFAR-10 binary archive, optionally corrupted.
- ``tiny_run_data``: a tiny archive in a data cache and the --set options that train on it.
- ``mirror_archive`` (session) is the real 30k/10k mirror built by ../shared/cifar10/make-mirror.
- ``cifar_data_dir`` (session) is a data dir filled from that mirror through the user's own code
  path; later loads with its url and sha256 come from the cache, with no network request.

Every test runs with the SVMTRAIN_DATA_* variables unset and XDG_CACHE_HOME in a temporary
directory, so nothing reads or writes the user's own cache.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import re
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from svmtrain.data import load_cifar10
from svmtrain.data.format import (
    ARCHIVE_NAME,
    IMAGE_BYTES,
    META_MEMBER,
    NUM_CLASSES,
    RECORD_BYTES,
    TEST_MEMBER,
    TRAIN_MEMBERS,
)
from svmtrain.data.source import ENV_DIGEST, ENV_DIR, ENV_URL, OFFICIAL_URL

REPO = Path(__file__).resolve().parent.parent
MAKE_MIRROR = REPO.parent / "shared" / "cifar10" / "make-mirror"
CLASS_NAMES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ---------------------------------------------------------------------------------------------
# Environment


@pytest.fixture(scope="session", autouse=True)
def _loopback_without_proxy() -> Iterator[None]:
    """A proxy from the environment must not carry requests meant for 127.0.0.1."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield


@pytest.fixture(autouse=True)
def _hermetic_data_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """No test sees the user's SVMTRAIN_DATA_* settings or touches ~/.cache."""
    for name in (ENV_URL, ENV_DIR, *ENV_DIGEST.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


# ---------------------------------------------------------------------------------------------
# A loopback HTTP server with chosen misbehaviours


@dataclass
class Behaviour:
    """How the server answers. Counters run over the server's requests in arrival order."""

    honour_range: bool = True  # False: answer 200 with the whole body even to a Range request
    fail_first: int = 0  # the first n requests get fail_status and no body
    fail_status: int = 503
    drop_after: int | None = None  # close the connection after this many body bytes ...
    drop_times: int = 1  # ... in this many responses (the first ones that send a body)
    content_length: bool = True  # False: no Content-Length; the body ends when the connection does
    delay: float = 0.0  # seconds to sleep between chunks (throttle)
    chunk: int = 1 << 14
    interrupt_after: int | None = None  # Ctrl-C: SIGINT to the main thread after this many body
    # bytes of the first response; the server then stalls so the client is mid-read
    interrupt_when: Callable[[], bool] | None = None  # ... and once this is true (polled, 5 s)
    hold_until: Callable[[], bool] | None = None  # after the headers, send no body until this
    # is true (polled, 30 s at most)
    stall_after: int | None = None  # send the body up to this byte of the file, then nothing
    # until the server is closed (a server that hangs there; a resume past it gets headers only)


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    """``body`` served at ``path`` on 127.0.0.1; ``requests`` records every request."""

    body: bytes
    path: str = "/cifar-10-binary.tar.gz"
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._drops = 0
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return self.base + self.path

    @property
    def gets(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET"]

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _record(self, request: Request) -> int:
        with self._lock:
            self.requests.append(request)
            return len(self.requests) - 1

    def _take_drop(self) -> bool:
        with self._lock:
            if self.behaviour.drop_after is None or self._drops >= self.behaviour.drop_times:
                return False
            self._drops += 1
            return True


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            index = server._record(Request("GET", self.path, dict(self.headers)))
            b = server.behaviour
            if self.path != server.path:
                self.send_error(404)
                return
            if index < b.fail_first:
                self.send_error(b.fail_status)
                return
            body, start = server.body, 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if match and b.honour_range:
                start = int(match[1])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            if b.content_length:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if server._take_drop():
                payload = payload[: b.drop_after]  # then the connection closes: a short body
            if b.hold_until is not None:
                _wait_for(b.hold_until, seconds=30)
            if b.stall_after is not None:
                self._send(payload[: max(0, b.stall_after - start)], interrupt=False)
                server._stop.wait(30)
                return
            self._send(payload, interrupt=index == 0 and b.interrupt_after is not None)

        def _send(self, payload: bytes, *, interrupt: bool) -> None:
            b = server.behaviour
            try:
                for i in range(0, len(payload), b.chunk):
                    self.wfile.write(payload[i : i + b.chunk])
                    self.wfile.flush()
                    if interrupt and i + b.chunk >= b.interrupt_after:
                        _wait_for(b.interrupt_when or (lambda: True), seconds=5)
                        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                        server._stop.wait(10)
                        return
                    if b.delay:
                        time.sleep(b.delay)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away (e.g. after Ctrl-C); nothing to do

    return Handler


def _wait_for(condition: Callable[[], bool], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.fixture
def http_server() -> Iterator[Callable[..., LoopbackServer]]:
    """Factory: ``http_server(body, path=..., **Behaviour fields)`` -> a started LoopbackServer.
    Every server is shut down at teardown."""
    servers: list[LoopbackServer] = []

    def start(body: bytes, path: str = "/cifar-10-binary.tar.gz", **behaviour) -> LoopbackServer:
        server = LoopbackServer(body, path, Behaviour(**behaviour))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was bound, then released)."""
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as httpd:
        port = httpd.server_address[1]
    return f"http://127.0.0.1:{port}/cifar-10-binary.tar.gz"


# ---------------------------------------------------------------------------------------------
# Tiny synthetic archives

CORRUPTIONS = ("wrong_size", "missing_member", "bad_label", "truncated_gzip", "short_header_size")


@dataclass(frozen=True)
class TinyArchive:
    """An archive on disk and, independently built, the arrays it must parse to."""

    path: Path
    body: bytes
    sha256: str
    md5: str
    x_train: np.ndarray  # (N_train, 3072) uint8
    y_train: np.ndarray  # (N_train,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


def _record_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """The binary-version layout written record by record (the reference for the parser)."""
    return b"".join(bytes([int(label)]) + row.tobytes() for row, label in zip(x, y, strict=True))


def make_tiny_archive(
    path: Path,
    *,
    train_counts: tuple[int, ...] = (3, 1, 4, 1, 5),
    test_count: int = 2,
    seed: int = 0,
    corrupt: str | None = None,
    extra_members: dict[str, bytes] | None = None,
) -> TinyArchive:
    """Write a CIFAR-10 binary-version tar.gz with ``train_counts[i]`` records in data_batch_i.

    corrupt: one of CORRUPTIONS. extra_members: more members by name (e.g. '../evil').
    """
    if corrupt not in (None, *CORRUPTIONS):
        raise ValueError(f"corrupt must be one of {CORRUPTIONS}, got {corrupt!r}")
    rng = np.random.default_rng(seed)
    counts = (*train_counts, test_count)
    xs = [rng.integers(0, 256, (n, IMAGE_BYTES), dtype=np.uint8) for n in counts]
    ys = [rng.integers(0, NUM_CLASSES, n, dtype=np.uint8) for n in counts]
    members = {
        name: _record_bytes(x, y)
        for name, x, y in zip((*TRAIN_MEMBERS, TEST_MEMBER), xs, ys, strict=True)
    }
    members[META_MEMBER] = ("\n".join(CLASS_NAMES) + "\n\n").encode()
    if corrupt == "wrong_size":
        members[TRAIN_MEMBERS[1]] += b"\0"
    elif corrupt == "missing_member":
        del members[TRAIN_MEMBERS[2]]
    elif corrupt == "bad_label":
        members[TRAIN_MEMBERS[3]] = bytes([NUM_CLASSES]) + members[TRAIN_MEMBERS[3]][1:]
    members.update(extra_members or {})

    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for name, data in members.items():
            if name == TRAIN_MEMBERS[2]:
                header_at = tar.offset  # where its header goes
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    plain = tar_bytes.getvalue()
    if corrupt == "short_header_size":  # the header says one record fewer than the data holds
        plain = _with_member_size(plain, header_at, len(members[TRAIN_MEMBERS[2]]) - RECORD_BYTES)
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(plain)
    body = raw.getvalue()
    if corrupt == "truncated_gzip":
        body = body[: len(body) // 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return TinyArchive(
        path=path,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        md5=hashlib.md5(body).hexdigest(),
        x_train=np.concatenate(xs[:-1]),
        y_train=np.concatenate(ys[:-1]),
        x_test=xs[-1],
        y_test=ys[-1],
        class_names=CLASS_NAMES,
    )


def _with_member_size(tar: bytes, header_at: int, size: int) -> bytes:
    """``tar`` with the size field of the ustar header at ``header_at`` set to ``size`` and the
    header's checksum recomputed (the checksum field counts as eight blanks)."""
    header = bytearray(tar[header_at : header_at + 512])
    header[124:136] = b"%011o\0" % size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return tar[:header_at] + bytes(header) + tar[header_at + 512 :]


@pytest.fixture
def tiny_archive(tmp_path: Path) -> Callable[..., TinyArchive]:
    """Factory: ``tiny_archive(**make_tiny_archive options)``; each call writes a new file
    under tmp_path/archives/."""
    made = iter(range(1_000_000))

    def make(**options) -> TinyArchive:
        return make_tiny_archive(
            tmp_path / "archives" / str(next(made)) / "cifar-10-binary.tar.gz", **options
        )

    return make


class TinyRunData(NamedTuple):
    archive: TinyArchive  # 300 train images (60 per batch), 50 test
    data_dir: Path  # a data cache holding it
    url: str  # where it was served; the server is gone, so a download would fail
    args: list[str]  # --set options for a command on it: 250 train, 50 val, 2 epochs of 32


def cached_tiny_run_data(
    tiny_archive,
    http_server,
    data_dir: Path,
    *,
    per_batch: int,
    test_count: int,
    val_size: int,
    batch_size: int,
) -> TinyRunData:
    """A tiny archive (``per_batch`` images in each of the five training batches and
    ``test_count`` test images) in a data cache at ``data_dir``, and --set options that train
    on it: the last ``val_size`` training images for validation (and as many for the training
    accuracy), batches of ``batch_size``, 2 epochs."""
    archive = tiny_archive(train_counts=(per_batch,) * 5, test_count=test_count)
    with http_server(archive.body) as server:
        load_cifar10(data_dir, url=server.url, sha256=archive.sha256, progress=False)
        url = server.url
    settings = [
        f"data.dir={data_dir}",
        f"data.url={url}",
        f"data.sha256={archive.sha256}",
        f"data.val_size={val_size}",
        "data.num_train=null",
        f"train.batch_size={batch_size}",
        "train.epochs=2",
        f"train.train_acc_samples={val_size}",
    ]
    return TinyRunData(archive, data_dir, url, [a for s in settings for a in ("--set", s)])


@pytest.fixture
def feature_run_data(tiny_archive, http_server, tmp_path) -> TinyRunData:
    """A tiny cached archive for the feature tests: 20 images in each training batch, 30 test
    images, the last 20 training images for validation, batches of 16."""
    return cached_tiny_run_data(
        tiny_archive,
        http_server,
        tmp_path / "data",
        per_batch=20,
        test_count=30,
        val_size=20,
        batch_size=16,
    )


@pytest.fixture
def tiny_run_data(tiny_archive, http_server, tmp_path) -> TinyRunData:
    """A tiny archive in a data cache at tmp_path/data, and the options that train on it."""
    return cached_tiny_run_data(
        tiny_archive,
        http_server,
        tmp_path / "data",
        per_batch=60,
        test_count=50,
        val_size=50,
        batch_size=32,
    )


# ---------------------------------------------------------------------------------------------
# The real mirror


class CifarData(NamedTuple):
    data_dir: Path
    url: str
    sha256: str


ENV_TEST_ARCHIVE = "SVMTRAIN_TEST_ARCHIVE"
ENV_MIRROR_DIR = "SVMTRAIN_MIRROR_DIR"


def real_archive() -> Path | str:
    """The CIFAR-10 archive the real-data tests use: $SVMTRAIN_TEST_ARCHIVE (any
    cifar-10-binary.tar.gz, e.g. the official one), else the cifar-10-binary.tar.gz in
    $SVMTRAIN_MIRROR_DIR, else the mirror ../shared/cifar10/make-mirror builds there (or in
    <repo>/.cache/mirror); or, when there is none of them, why not (a str)."""
    given = os.environ.get(ENV_TEST_ARCHIVE)
    if given:
        path = Path(given).expanduser()
        return path if path.is_file() else f"{ENV_TEST_ARCHIVE}={given} is not a file"
    out = Path(os.environ.get(ENV_MIRROR_DIR) or REPO / ".cache" / "mirror")
    if (out / ARCHIVE_NAME).is_file():
        return out / ARCHIVE_NAME
    if not MAKE_MIRROR.exists():
        return (
            f"no CIFAR-10 archive for the real-data tests: set {ENV_TEST_ARCHIVE} to a "
            f"{ARCHIVE_NAME} (the official one, {OFFICIAL_URL}, or any of its format), or "
            f"{ENV_MIRROR_DIR} to a directory holding one"
        )
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".building", "w") as lock:  # test workers (pytest -n) build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([str(MAKE_MIRROR), str(out)], check=True, stdout=subprocess.DEVNULL)
    return out / ARCHIVE_NAME


@pytest.fixture(scope="session")
def mirror_archive() -> Path:
    """The real CIFAR-10 archive of :func:`real_archive`; the real-data tests skip, saying how
    to point them at one, when there is none (and fail in CI)."""
    found = real_archive()
    if isinstance(found, str):
        if os.environ.get("CI"):
            pytest.fail(found)
        pytest.skip(found)
    return found


def archive_sha256(path: Path) -> str:
    """The sha256 in the .sha256 file beside ``path``, else computed from the file."""
    beside = Path(f"{path}.sha256")
    if beside.is_file():
        return beside.read_text().split()[0]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="session")
def cifar_data_dir(mirror_archive: Path, tmp_path_factory) -> CifarData:
    """A data dir filled with the mirror exactly as a user's download does it: served on
    127.0.0.1 and fetched with the sha256 read from the file beside the archive.

    The server is gone afterwards: ``load_cifar10(data_dir, url=url, sha256=sha256)`` must be
    (and is) answered from the cache."""
    sha256 = archive_sha256(mirror_archive)
    data_dir = tmp_path_factory.mktemp("cifar10")
    with LoopbackServer(mirror_archive.read_bytes(), behaviour=Behaviour(chunk=1 << 20)) as server:
        load_cifar10(data_dir, url=server.url, sha256=sha256, progress=False)
    return CifarData(data_dir, server.url, sha256)


# ---------------------------------------------------------------------------------------------
# Real file-system faults: a small tmpfs (disk full) and a read-only bind mount


def _mount(*args: str) -> None:
    """Run mount(8); skip the test when this machine does not let us (not root, no mount)."""
    try:
        subprocess.run(["mount", *args], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or err
        pytest.skip(f"cannot mount here ({str(detail).strip()})")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Factory: ``small_tmpfs(size_bytes)`` -> an empty directory on a tmpfs of that size, where
    writing more fails with ENOSPC. Skips when mounting is not permitted; unmounted at teardown."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"tmpfs-{len(mounted)}"
        where.mkdir()
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Factory: ``read_only_view(directory)`` -> the same directory seen through a read-only
    bind mount (writes fail with EROFS, even for root). Skips when mounting is not permitted."""
    mounted: list[Path] = []

    def mount(directory: Path) -> Path:
        where = tmp_path / f"read-only-{len(mounted)}"
        where.mkdir()
        _mount("--bind", str(directory), str(where))
        mounted.append(where)
        _mount("-o", "remount,bind,ro", str(where))
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)
