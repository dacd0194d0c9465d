"""The fault catalogue: every fault and bad input a user has met, as one table (docs/faults.md).

Each row is a command line as a user types it, the exit code it must end with, fragments of the
message that must name the thing at fault and the fix, and what may change on disk. Every row
also checks, without saying so:

- no Traceback and no leaked Python warning (a RuntimeWarning of numpy's) in the output, and
  (in-process) no exception escaped the CLI's edge;
- every file that was in the row's directory before the command is byte-identical after it
  (lock files, which only hold a PID, excepted), unless ``changes`` lets it change;
- no file appears that ``creates`` does not name: no half-written files, no temporaries.

Rows run through click's CliRunner in this process; ``process=True`` rows run ``svmtrain`` in
a child process with a timeout (a signal, a real mount, a possible hang or a dying process), so
a regression fails instead of hanging the session.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.core.losses import LOSSES
from svmtrain.data.cache import PART_NAME
from svmtrain.data.format import ARCHIVE_NAME
from svmtrain.data.preprocess import PIXELS, PixelTransform
from svmtrain.experiments import train
from svmtrain.features.cache import STAMP
from svmtrain.features.flips import MOMENTS
from svmtrain.io import runs
from svmtrain.model import LinearModel

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for a child process: far above its need, far below a hang's
SVMTRAIN = [sys.executable, "-m", "svmtrain"]
ALIAS_BOMB_FILE = REPO / "tests" / "alias_bomb.yaml"  # 407 bytes that expand to 9**9 values
ALIAS_BOMB = ALIAS_BOMB_FILE.read_text()


# ---------------------------------------------------------------------------------------------
# A row and the scene it runs in


@dataclass(frozen=True)
class Fault:
    """One fault: what the user runs, and what must come of it.

    cmd: the arguments after ``svmtrain``, shell-quoted, with ``{name}`` filled from the
    scene's variables (``{root}`` is the row's directory; the setup adds others).
    setup: prepares the scene (files, servers, patches) before the command.
    says: fragments the output (stdout and stderr, wherever it wraps) must contain; never:
    fragments it must not (a misleading clause, a leaked warning).
    creates / changes: glob patterns, relative to ``{root}``, of files the command may add /
    may alter. during: for a child process, what happens while it runs (e.g. a signal); it
    returns the output it read, if any. closed: for a child process, the standard streams it
    starts without (0 stdin, 1 stdout), as ``<&-`` and ``>&-`` start it. issue: where the
    fault was reported (``14.3``: issue 14, item 3), if it was. xfail: why the fault still gets
    through (the row says how it should behave, and fails strictly once it does). slow: the
    row takes more than a few seconds (a Dask cluster, a timeout): marked slow, so ``make
    test-fast`` leaves it out.
    """

    id: str
    cmd: str
    exit_code: int
    says: tuple[str, ...]
    never: tuple[str, ...] = ()
    setup: Callable[[Scene], None] | None = None
    creates: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    process: bool = False
    during: Callable[[Scene, subprocess.Popen], str | None] | None = None
    closed: tuple[int, ...] = ()
    issue: str = ""
    xfail: str = ""
    slow: bool = False


@dataclass
class Scene:
    """The row's directory, its placeholders and the fixtures a setup may use."""

    root: Path
    request: pytest.FixtureRequest
    monkeypatch: pytest.MonkeyPatch
    vars: dict[str, str] = field(default_factory=dict)  # {name}: a value (a path, a URL)
    options: dict[str, str] = field(default_factory=dict)  # {name}: options, shell-quoted
    holder: subprocess.Popen | None = None  # a process holding a lock for the row
    cluster: Any = None  # a Dask cluster (tests/dask_cluster.py) started for the row

    def fixture(self, name: str):
        return self.request.getfixturevalue(name)

    def set(self, **values) -> None:
        self.vars.update({k: str(v) for k, v in values.items()})

    def argv(self, cmd: str) -> list[str]:
        quoted = {k: shlex.quote(v) for k, v in self.vars.items()}
        return shlex.split(cmd.format(**quoted, **self.options))


def _files(root: Path) -> dict[str, bytes]:
    """Every regular file below root by relative path, with its bytes (lock files: b'')."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            name = path.relative_to(root).as_posix()
            found[name] = b"" if path.name == runs.LOCK else path.read_bytes()
    return found


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


# ---------------------------------------------------------------------------------------------
# Setups: small, named, reused by many rows


def tiny(scene: Scene, **options):
    """A tiny CIFAR-10 archive (300 train, 50 test), built with conftest's make_tiny_archive."""
    options = {"train_counts": (60,) * 5, "test_count": 50, **options}
    archive = scene.fixture("tiny_archive")(**options)
    scene.set(sha256=archive.sha256, md5=archive.md5)
    return archive


def served(scene: Scene, archive=None, **behaviour):
    """The archive on a loopback server: {url}, {base}, {sha256}, {md5}."""
    archive = archive or tiny(scene)
    server = scene.fixture("http_server")(archive.body, **behaviour)
    scene.set(url=server.url, base=server.base)
    return server


def no_backoff(scene: Scene) -> None:
    """Retries without their waits (only the CLI's thread: the servers' threads sleep on)."""
    from svmtrain.data import fetch

    main_thread, real_sleep = threading.current_thread(), time.sleep

    def sleep(seconds):
        if threading.current_thread() is not main_thread:
            real_sleep(seconds)

    scene.monkeypatch.setattr(fetch.time, "sleep", sleep)


def short_reads(scene: Scene) -> None:
    """Every HTTP read gives up after 0.2 s instead of 30 s (a stalled server, quickly)."""
    from svmtrain.data import fetch

    real_get = fetch.requests.get
    scene.monkeypatch.setattr(
        fetch.requests, "get", lambda url, **kw: real_get(url, **{**kw, "timeout": (1.0, 0.2)})
    )
    no_backoff(scene)


def cached(scene: Scene) -> None:
    """conftest's tiny_run_data: {data} (its --set options), {data_dir}, {url}, {sha256}."""
    data = scene.fixture("tiny_run_data")
    scene.options["data"] = shlex.join(data.args)
    scene.set(data_dir=data.data_dir, url=data.url, sha256=data.archive.sha256)


def fitted(scene: Scene) -> None:
    """A finished run in {run}, its weights {weights} (and the data cache), made by the CLI."""
    cached(scene)
    run = scene.root / "run"
    scene.set(run=run, weights=run / runs.WEIGHTS)
    result = CliRunner().invoke(main, scene.argv("fit -c quick {data} --out {run} -q"))
    assert result.exit_code == 0, result.output


def diverged(scene: Scene) -> None:
    """A run in {run} that diverged in its first epoch; {weights} are its untrained W."""
    cached(scene)
    run = scene.root / "run"
    scene.set(run=run, weights=run / runs.WEIGHTS)
    argv = scene.argv("fit -c quick {data} --set optim.learning_rate=1e9 --out {run} -q")
    assert CliRunner().invoke(main, argv).exit_code == 1


def searched(scene: Scene) -> None:
    """A finished search in {root}/out (and the data cache)."""
    cached(scene)
    argv = scene.argv("search {data} --lr 1e-6 --epochs 1 -j 1 --out {root}/out -q")
    assert CliRunner().invoke(main, argv).exit_code == 0


def interrupted(scene: Scene, options: str = "") -> None:
    """An unfinished run in {run}: Ctrl-C in its second epoch (a checkpoint of epoch 1), of
    fit with ``options`` added."""
    cached(scene)
    run = scene.root / "run"
    scene.set(run=run)
    calls = [0]

    def interrupt_in_epoch_two(state, updates):
        calls[0] += 1
        if calls[0] == 12:
            raise KeyboardInterrupt

    with train.step_hook(interrupt_in_epoch_two):
        argv = scene.argv("fit -c quick {data} --out {run} -q " + options)
        result = CliRunner().invoke(main, argv)
    assert result.exit_code == 130, result.output


def users_files(scene: Scene) -> None:
    """{mine}: a directory of the user's own files, named like a run's."""
    mine = scene.root / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("# my notes\n")
    (mine / "metrics.jsonl").write_text("my numbers\n")
    scene.set(mine=mine)


def interrupted_before_training(scene: Scene) -> None:
    """{run}: a fit stopped by Ctrl-C after it wrote config.yaml, before training started."""
    from svmtrain.experiments import fit as fitting

    cached(scene)
    scene.set(run=scene.root / "run")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "init_state", interrupt)
        result = CliRunner().invoke(main, scene.argv("fit -c quick {data} --out {run} -q"))
    assert result.exit_code == 130, result.output


def another_runs_checkpoint(scene: Scene) -> None:
    """{run}: an interrupted run whose checkpoint.npz is another (interrupted) run's."""
    interrupted(scene)
    run, other = scene.root / "run", scene.root / "other"
    run.rename(other)
    interrupted(scene, "--set model.reg=0.5")
    (other / runs.CHECKPOINT).write_bytes((run / runs.CHECKPOINT).read_bytes())
    shutil.rmtree(run)
    other.rename(run)


def damaged_checkpoint(**meta: object) -> Callable[[Scene], None]:
    """Setup: {run} an interrupted run whose checkpoint.npz has the scalars ``meta`` instead."""

    def damage(scene: Scene) -> None:
        interrupted(scene)
        path = scene.root / "run" / runs.CHECKPOINT
        arrays, saved = runs.load_checkpoint(path)
        runs.save_checkpoint(path, arrays, {**saved, **meta})

    return damage


def a_file(name: str, text: str | bytes) -> Callable[[Scene], None]:
    """Setup: {file} is root/name holding text."""

    def make(scene: Scene) -> None:
        path = scene.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        scene.set(file=path)

    return make


def both(*setups: Callable[[Scene], None]) -> Callable[[Scene], None]:
    """Setup: each of ``setups``, in order."""

    def run(scene: Scene) -> None:
        for setup in setups:
            setup(scene)

    return run


def weights_file(**arrays) -> Callable[[Scene], None]:
    """Setup: {weights} is an .npz of good weights with ``arrays`` replacing or adding some
    (None removes one)."""

    def make(scene: Scene) -> None:
        good = {
            "W": np.zeros((10, PIXELS + 1), np.float32),
            "mean": np.zeros(PIXELS, np.float32),
            "scale": np.ones(PIXELS, np.float32),
            "class_names": np.array(list("abcdefghij")),
            "config": np.array(""),
        }
        contents = {k: v for k, v in {**good, **arrays}.items() if v is not None}
        path = scene.root / "weights.npz"
        with open(path, "wb") as f:
            np.savez(f, **contents)
        scene.set(weights=path)

    return make


class _Planted:
    """Unpickling this makes the directory {planted}: proof that a file was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def pickled_weights(scene: Scene) -> None:
    planted = scene.root / "planted"
    scene.set(planted=planted)
    W = np.empty(1, dtype=object)
    W[0] = _Planted(planted)
    weights_file(W=W)(scene)


def bomb_in_weights(scene: Scene, config_yaml: str = ALIAS_BOMB) -> None:
    """{weights}: good pixel weights whose stored config is ``config_yaml`` (an alias bomb)."""
    LinearModel(
        W=np.zeros((10, PIXELS + 1), np.float32),
        transform=PixelTransform(np.zeros(PIXELS, np.float32), np.ones(PIXELS, np.float32)),
        class_names=tuple("abcdefghij"),
        loss="svm",
        config_yaml=config_yaml,
    ).save(scene.root / "weights.npz")
    scene.set(weights=scene.root / "weights.npz")


def summing_weights(scene: Scene) -> None:
    """{weights}: a pixel model whose score of class a is the sum of an image's 3,072 levels
    (mean 0, scale 1, W's first row ones), so --json shows what levels predict read."""
    W = np.zeros((10, PIXELS + 1), np.float32)
    W[0, :PIXELS] = 1
    weights_file(W=W)(scene)


def kmeans_weights(**state) -> Callable[[Scene], None]:
    """Setup: {weights} is a k-means model (4 centroids of 3 x 3 patches) with ``state``
    replacing arrays of the extractor's state, written as the file's members are."""

    def make(scene: Scene) -> None:
        from svmtrain.features import EXTRACTORS
        from svmtrain.features.transform import FeatureTransform

        settings = {"num_centroids": 4, "patch_size": 3, "patches_sampled": 4}
        extractor = EXTRACTORS["kmeans"](settings)
        good = {k: np.full(shape, 0.1, np.float32) for k, shape in extractor.state_shapes().items()}
        good["whitening"] = np.eye(len(good["whitening"]), dtype=np.float32)
        extractor = EXTRACTORS["kmeans"].from_state(settings, good)
        F = extractor.dim
        model = LinearModel(
            W=np.zeros((10, F + 1), np.float32),
            transform=FeatureTransform(extractor, np.zeros(F, np.float32), np.ones(F, np.float32)),
            class_names=tuple("abcdefghij"),
            loss="svm",
        )
        path = scene.root / "weights.npz"
        model.save(path)
        with np.load(path) as npz:
            arrays = dict(npz)
        arrays.update({f"features.state.{k}": v for k, v in state.items()})
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        scene.set(weights=path)

    return make


DEEP = "[" * 20_000 + "]" * 20_000  # 40 KB of nesting: deeper than Python's recursion limit
BIG_INT = "9" * 5000  # more digits than Python converts from text (4,300)


def a_fifo(scene: Scene) -> None:
    """{fifo}: a named pipe nobody writes to (opening it to read would wait forever)."""
    os.mkfifo(scene.root / "fifo")
    scene.set(fifo=scene.root / "fifo")


def deep_in_weights(part: str) -> Callable[[Scene], None]:
    """Setup: {weights} holds 40 KB of nested lists where ``part`` ("config": the stored
    config's YAML; "extractor": the feature extractor's JSON) goes."""

    def make(scene: Scene) -> None:
        if part == "config":
            bomb_in_weights(scene, config_yaml=f"train:\n  seed: {DEEP}\n")
            return
        weights_file(
            format_version=np.array(2),
            loss=np.array("svm"),
            transform=np.array("features"),
            **{"features.extractor": np.array(DEEP)},
        )(scene)

    return make


def zipped(name: str, members: Callable[[], dict], deflated: bool = False):
    """Setup: {file} is root/name, a zip of ``members()``: name to bytes, or to (bytes, n):
    those bytes and then n zero bytes, streamed (so a huge member costs no memory here)."""
    import zipfile

    def make(scene: Scene) -> None:
        path = scene.root / name
        method = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
        with zipfile.ZipFile(path, "w", method) as z:
            for member, data in members().items():
                prefix, zeros = (data, 0) if isinstance(data, bytes) else data
                with z.open(member, "w", force_zip64=zeros > 0) as f:
                    f.write(prefix)
                    for start in range(0, zeros, 1 << 24):
                        f.write(bytes(min(1 << 24, zeros - start)))
        scene.set(file=path)

    return make


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _good_weight_members() -> dict[str, bytes]:
    return {
        "W.npy": _npy(np.zeros((10, PIXELS + 1), np.float32)),
        "mean.npy": _npy(np.zeros(PIXELS, np.float32)),
        "scale.npy": _npy(np.ones(PIXELS, np.float32)),
        "class_names.npy": _npy(np.array(list("abcdefghij"))),
        "config.npy": _npy(np.array("")),
    }


def _mean_of_300_mb() -> dict:
    """Good weights but for a mean declaring 75 million float32 (300 MB of zeros, deflated)."""
    empty = _npy(np.zeros(0, np.float32))  # the header's padding makes room for the digits
    header = empty.replace(b"(0,), }" + b" " * 7, b"(75000000,), }")
    return {**_good_weight_members(), "mean.npy": (header, 300_000_000)}


def an_image(name: str, make: Callable[[], bytes]) -> Callable[[Scene], None]:
    """Setup: {file} is root/name holding the bytes ``make()`` builds (with Pillow)."""

    def setup(scene: Scene) -> None:
        a_file(name, make())(scene)

    return setup


def _saved(pixels: np.ndarray, fmt: str, **options) -> bytes:
    """``pixels`` (H, W) or (H, W, 3), as Pillow saves them in ``fmt``."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A grey PNG of width x height pixels holding one row of data (88 bytes at 9000 x 9000)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" + b"\x80" * width, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def _noise(side: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _blp_of_unknown_compression() -> bytes:
    """A BLP whose compression field (bytes 4-8) is 128: Pillow raises BLPFormatError."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_noise()).convert("P").save(buffer, "BLP")
    data = bytearray(buffer.getvalue())
    data[4:8] = (128).to_bytes(4, "little")
    return bytes(data)


def _tiff_of_2048_samples_per_pixel() -> bytes:
    """An LZW TIFF whose SamplesPerPixel says 2048: libtiff complains on standard error."""
    data = bytearray(_saved(_noise(), "TIFF", compression="tiff_lzw"))
    entry = data.rindex(b"\x15\x01\x03\x00\x01\x00\x00\x00")  # tag 277, SHORT, count 1
    data[entry + 8 : entry + 10] = (2048).to_bytes(2, "little")
    return bytes(data)


def _jpeg_with_truncated_exif() -> bytes:
    """A JPEG whose EXIF block (an orientation tag) is cut short: Pillow warns."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    return _saved(_noise(), "JPEG", exif=exif.tobytes()[:20])


def deep_run_config(scene: Scene) -> None:
    """{run}: an unfinished run whose config.yaml is 40 KB of nested lists."""
    interrupted_before_training(scene)
    (scene.root / "run" / runs.CONFIG).write_text(f"train:\n  seed: {DEEP}\n")


def run_locked_by_another(scene: Scene) -> None:
    """{run} held by another process's run-directory lock until the row ends."""
    run = scene.root / "run"
    run.mkdir()
    scene.set(run=run)
    code = (
        "import sys; from pathlib import Path; from svmtrain.io import runs\n"
        "with runs.locked(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); sys.stdin.read()"
    )
    _holder(scene, code, run)


def _holder(scene: Scene, code: str, path: Path) -> subprocess.Popen:
    """A process that runs ``code`` with ``path`` as sys.argv[1]; it prints 'locked' once it
    holds its lock and lets go when its stdin closes (at the latest when the row ends)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )

    def let_go() -> None:
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=TIMEOUT)

    scene.request.addfinalizer(let_go)
    assert holder.stdout.readline() == b"locked\n"
    return holder


def cache_locked_by_another(scene: Scene) -> None:
    """The archive served, and {root}/data locked by another process until the row lets go."""
    served(scene)
    code = (
        "import sys; from pathlib import Path; from svmtrain.data import cache\n"
        "with cache.locked(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); sys.stdin.read()"
    )
    scene.holder = _holder(scene, code, scene.root / "data")


def release_once_waiting(scene: Scene, proc: subprocess.Popen) -> str:
    """During: read the child's first line on stderr (it waits for the lock), then let go."""
    first = proc.stderr.readline()
    scene.holder.stdin.close()
    return first


def signal_once_downloading(sig: int) -> Callable[[Scene, subprocess.Popen], None]:
    """During: once the partial download holds bytes, send ``sig`` to the process."""

    def send(scene: Scene, proc: subprocess.Popen) -> None:
        part = scene.root / "data" / PART_NAME
        deadline = time.monotonic() + TIMEOUT
        while _size(part) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(sig)

    return send


def read_only(what: str) -> Callable[[Scene], None]:
    """Setup: {ro} is a read-only view of root/what (a real bind mount; skips without mount)."""

    def make(scene: Scene) -> None:
        source = scene.root / what
        source.mkdir(exist_ok=True)
        scene.set(ro=scene.fixture("read_only_view")(source))

    return make


def full_disk(size: int) -> Callable[[Scene], None]:
    """Setup: {full} is an empty tmpfs of ``size`` bytes (skips without mount)."""

    def make(scene: Scene) -> None:
        scene.set(full=scene.fixture("small_tmpfs")(size))

    return make


def no_matplotlib(scene: Scene) -> None:
    import builtins

    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    scene.monkeypatch.setattr(builtins, "__import__", refuse)


def out_of_memory(scene: Scene) -> None:
    def too_big(*args, **kwargs):
        raise MemoryError

    scene.monkeypatch.setattr(sys.modules["svmtrain.cli.fit"], "fit_run", too_big)


def bias_gradient_sign_flipped(scene: Scene) -> None:
    """The SVM's analytic gradient with the bias column's sign flipped (issue 14 #10)."""
    true_svm = LOSSES["svm"]

    def wrong(*args, **kwargs):
        loss, dW = true_svm(*args, **kwargs)
        dW = dW.copy()
        dW[:, -1] *= -1
        return loss, dW

    scene.monkeypatch.setitem(LOSSES, "svm", replace(true_svm, vectorised=wrong))


def reference_overflows(scene: Scene) -> None:
    """The SVM's loop reference returning an infinite loss (as the loop softmax once did)."""
    true_svm = LOSSES["svm"]

    def overflows(W, *args, **kwargs):
        return float("inf"), np.zeros_like(W)

    scene.monkeypatch.setitem(LOSSES, "svm", replace(true_svm, naive=overflows))


def signal_after_first_epoch(sig: int) -> Callable[[Scene, subprocess.Popen], None]:
    """During: once the run's first checkpoint is written, send ``sig`` to the process."""

    def send(scene: Scene, proc: subprocess.Popen) -> None:
        checkpoint = scene.root / "run" / runs.CHECKPOINT
        deadline = time.monotonic() + TIMEOUT
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(sig)

    return send


def silent_port(scene: Scene) -> None:
    """{scheduler}: tcp://127.0.0.1:PORT of a server that accepts connections and never
    answers, until the row ends."""
    import socket

    from dask_cluster import free_port

    server = socket.socket()
    server.bind(("127.0.0.1", free_port()))
    server.listen(8)
    held: list[socket.socket] = []

    def hold() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=hold, daemon=True).start()

    def close() -> None:
        server.close()
        for conn in held:
            conn.close()

    scene.request.addfinalizer(close)
    scene.set(scheduler=f"tcp://127.0.0.1:{server.getsockname()[1]}")


def http_port(scene: Scene) -> None:
    """{scheduler}: tcp:// at the port of an HTTP server (a dashboard's, say)."""
    server = served(scene)
    scene.set(scheduler=f"tcp://127.0.0.1:{server.base.rsplit(':', 1)[1]}")


def dask_cluster(scene: Scene) -> None:
    """{data} (cached) and {scheduler}: a Dask scheduler with one worker, which downloads the
    tiny archive itself from a loopback server into its own cache; stopped when the row ends."""
    pytest.importorskip("distributed")
    from dask_cluster import Cluster

    cached(scene)
    data = scene.fixture("tiny_run_data")
    server = scene.fixture("http_server")(data.archive.body)
    scene.options["data"] += f" --set data.url={server.url}"
    directory = scene.fixture("tmp_path_factory").mktemp("dask")
    scene.cluster = Cluster(directory, [{"SVMTRAIN_DATA_DIR": str(directory / "cache")}])
    scene.request.addfinalizer(scene.cluster.close)
    scene.set(scheduler=scene.cluster.address)


def finished_trials(out: Path) -> int:
    """How many trials the search writing ``out`` has finished, by its results.json."""
    try:
        return json.loads((out / "results.json").read_text())["finished"]
    except (OSError, ValueError, KeyError):
        return 0


def once_a_trial_finished(act: Callable[[Scene, subprocess.Popen], None]):
    """During: once the search writing {root}/out has finished a trial, ``act``."""

    def during(scene: Scene, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + TIMEOUT
        while (
            finished_trials(scene.root / "out") < 1
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        act(scene, proc)

    return during


def kill_processes(which: Callable[[Scene], list[subprocess.Popen]]):
    def act(scene: Scene, proc: subprocess.Popen) -> None:
        for process in which(scene):
            os.killpg(process.pid, signal.SIGKILL)

    return act


def two_quick_ctrl_cs(scene: Scene, proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)


TWO_TRIALS_ONE_LONG = "search -c quick {data} --grid train.epochs=1,100000 -q --out {root}/out"
SEARCH_OUT = ("out", "out/*")


def signal_once_there(pattern: str, sig: int) -> Callable[[Scene, subprocess.Popen], None]:
    """During: once a path matching ``pattern`` (a glob below {root}) exists, send ``sig``."""

    def send(scene: Scene, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + TIMEOUT
        while (
            not any(scene.root.glob(pattern))
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        proc.send_signal(sig)

    return send


# k-means features small enough for a tiny archive: 16 centroids, 3 x 3 pooling, 144 features
SMALL_KMEANS = " ".join(
    f"--set features.kmeans.{key}"
    for key in ("num_centroids=16", "stride=4", "kmeans_iterations=2", "patches_sampled=200")
)
FEATURE_DIRS = ("data/features", "data/features/*")  # the feature caches beside the data


def feature_cache(scene: Scene) -> None:
    """A finished k-means feature cache of the tiny archive: {cache}, its {name}; and what
    `cached` gives."""
    cached(scene)
    scene.options["kmeans"] = SMALL_KMEANS
    argv = scene.argv("features build -c kmeans {data} {kmeans} -q")
    assert CliRunner().invoke(main, argv).exit_code == 0
    (path,) = (scene.root / "data" / "features").iterdir()
    scene.set(cache=path, name=path.name)


def edit_meta(edit: Callable[[dict], object]) -> Callable[[Scene], None]:
    """Setup: a feature cache whose meta.json ``edit`` changed (or replaced, if it returns)."""

    def make(scene: Scene) -> None:
        feature_cache(scene)
        meta = Path(scene.vars["cache"]) / "meta.json"
        data = json.loads(meta.read_text())
        replaced = edit(data)
        meta.write_text(replaced if isinstance(replaced, str) else json.dumps(data))

    return make


def emptied(name: str) -> Callable[[Scene], None]:
    """Setup: the feature cache's file ``name`` left empty (0 bytes)."""

    def make(scene: Scene) -> None:
        (Path(scene.vars["cache"]) / name).write_bytes(b"")

    return make


def folder_for(name: str) -> Callable[[Scene], None]:
    """Setup: a folder of the user's, with a file in it, in place of the cache's file ``name``."""

    def make(scene: Scene) -> None:
        folder = Path(scene.vars["cache"]) / name
        folder.unlink(missing_ok=True)
        folder.mkdir()
        (folder / "notes.txt").write_text("mine\n")

    return make


def without_the_mirrors_moments(scene: Scene) -> None:
    """The feature cache's mirrors as a version before their moments were kept left them."""
    (Path(scene.vars["cache"]) / MOMENTS).unlink()


def in_features_dir(name: str, stamped: bool = False) -> Callable[[Scene], None]:
    """Setup: a folder ``name`` with a file in it under the data's features/ ({folder}):
    a user's own (not ``stamped``), or what a build of svmtrain's that died left."""

    def make(scene: Scene) -> None:
        folder = scene.root / "data" / "features" / name.format(pid=os.getpid())
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("mine\n")
        if stamped:
            (folder / STAMP).write_text("1\n")
        scene.set(folder=folder)

    return make


def abandoned_build_with_this_pid(scene: Scene) -> None:
    """The temporary directory an earlier version's build left, named with this process's PID
    (PIDs are reused), of the very cache the row builds."""
    feature_cache(scene)
    shutil.rmtree(scene.vars["cache"])
    in_features_dir(f".{scene.vars['name']}.{{pid}}.tmp", stamped=True)(scene)


def features_on_a_full_disk(scene: Scene) -> None:
    """{full}: a tmpfs holding a copy of the cached data, with 48 KB to spare."""
    cached(scene)
    data = scene.root / "data"
    used = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    full = scene.fixture("small_tmpfs")(used + 48 * 1024 + 64 * 1024)
    shutil.copytree(data, full, dirs_exist_ok=True)
    scene.set(full=full)
    scene.options["kmeans"] = SMALL_KMEANS


def nan_rows_in_the_cache(scene: Scene) -> None:
    """A feature cache whose train.npy had NaN written over its first row."""
    feature_cache(scene)
    rows = np.load(Path(scene.vars["cache"]) / "train.npy", mmap_mode="r+")
    rows[0] = np.nan
    rows.flush()
    del rows


def _data_file(scene: Scene, pattern: str) -> Path:
    """The one file of the data cache {root}/data matching ``pattern``."""
    (path,) = (scene.root / "data").glob(pattern)
    return path


def _parsed_again_beside_a_users_folder(scene: Scene) -> None:
    """The data cache's parsed arrays removed (so they are parsed again), and a folder of the
    user's in their place's parent, data/parsed/mine."""
    parsed = scene.root / "data" / "parsed"
    for built in parsed.iterdir():
        shutil.rmtree(built)
    (parsed / "mine").mkdir()
    (parsed / "mine" / "notes.txt").write_text("mine\n")


def _edit_json(path: Path, **values) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def no_home(scene: Scene) -> None:
    """No HOME, no SVMTRAIN_DATA_DIR, no XDG_CACHE_HOME, and no passwd entry for this user."""
    import pwd

    for name in ("HOME", "SVMTRAIN_DATA_DIR", "XDG_CACHE_HOME"):
        scene.monkeypatch.delenv(name, raising=False)

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    scene.monkeypatch.setattr(pwd, "getpwuid", unknown)


def users_config_in_out(scene: Scene) -> None:
    """{file}: {root}/exp/config.yaml, the user's own commented config holding exactly the
    settings fit resolves from it."""
    from svmtrain.config import config_to_yaml, load_config

    overrides = [a for a in shlex.split(scene.options["data"]) if a != "--set"]
    text = config_to_yaml(load_config("quick", overrides))
    path = scene.root / "exp" / "config.yaml"
    path.parent.mkdir()
    path.write_text("# my experiment: quick, on the tiny data\n" + text)
    scene.set(file=path)


def out_of_memory_in_numpy(scene: Scene) -> None:
    """fit asks numpy for an array no machine holds (numpy's MemoryError says which)."""

    def too_big(*args, **kwargs):
        np.empty((10**12, 10**6), dtype=np.float32)

    scene.monkeypatch.setattr(sys.modules["svmtrain.cli.fit"], "fit_run", too_big)


# k-means features that take a second or more to extract from the tiny archive
HEAVY_KMEANS = " ".join(
    f"--set features.kmeans.{key}"
    for key in ("num_centroids=400", "kmeans_iterations=1", "patches_sampled=400")
)
LONG_NAME = "n" * 300  # one name longer than any file system takes (255 bytes)
LONG_FIT = "fit -c quick {data} --set train.epochs=1000 --out {root}/run -q"
RUN = ("run", "run/*")  # a run directory and what fit writes into it
CACHE = ("data", "data/*")  # a data cache being filled (a * spans directories)


# ---------------------------------------------------------------------------------------------
# The catalogue

DATA = [
    Fault(
        "download-404",
        "data download --data-dir {root}/data --url {base}/nope.tar.gz",
        1,
        ("{base}/nope.tar.gz", "HTTP 404", "--url"),
        setup=served,
        creates=CACHE,
    ),
    Fault(
        "download-503-until-retries-run-out",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        1,
        ("HTTP 503", "gave up after 5 failed attempts", "Check the network and the URL"),
        setup=lambda s: (served(s, fail_first=100), no_backoff(s)),
        creates=CACHE,
    ),
    Fault(
        "download-503-then-success",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256} -q",
        0,
        ("CIFAR-10 is ready: 300 training and 50 test images",),
        setup=lambda s: (served(s, fail_first=2), no_backoff(s)),
        creates=CACHE,
    ),
    Fault(
        "download-unreachable-host",
        "data download --data-dir {root}/data --url {url} --sha256 " + "0" * 64,
        1,
        ("{url}", "Connection refused", "gave up after 5 failed attempts", "Check the network"),
        setup=lambda s: (s.set(url=s.fixture("closed_port_url")), no_backoff(s)),
        creates=CACHE,
    ),
    Fault(
        "download-dropped-and-resumed",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256} -q",
        0,
        ("CIFAR-10 is ready",),
        setup=lambda s: (served(s, drop_after=50_000, drop_times=3), no_backoff(s)),
        creates=CACHE,
    ),
    Fault(
        "download-stalled-after-headers",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        1,
        ("Could not download {url}", "timed out", "retrying in"),
        setup=lambda s: (served(s, stall_after=0), short_reads(s)),
        creates=CACHE,
        issue="14.7",
    ),
    Fault(
        "download-wrong-sha256",
        "data download --data-dir {root}/data --url {url} --sha256 " + "f" * 64,
        1,
        ("f" * 64, "{sha256}", "--sha256"),
        setup=served,
        creates=CACHE,
    ),
    Fault(
        "download-malformed-md5",
        "data download --data-dir {root}/data --md5 xyz",
        1,
        ("md5 digest must be 32 hexadecimal digits",),
    ),
    Fault(
        "download-corrupt-archive",
        "data download --data-dir {root}/data --url {url} --md5 {md5}",
        1,
        ("data_batch_2.bin", "rm {root}/data/" + ARCHIVE_NAME),
        setup=lambda s: served(s, tiny(s, corrupt="wrong_size")),
        creates=CACHE,
    ),
    Fault(
        "download-truncated-archive",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        1,
        ("corrupt or truncated", "rm {root}/data/" + ARCHIVE_NAME),
        setup=lambda s: served(s, tiny(s, corrupt="truncated_gzip")),
        creates=CACHE,
    ),
    Fault(
        "download-archive-missing-a-batch",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        1,
        ("data_batch_3.bin", "rm {root}/data/" + ARCHIVE_NAME),
        setup=lambda s: served(s, tiny(s, corrupt="missing_member")),
        creates=CACHE,
    ),
    Fault(
        "download-label-out-of-range",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        1,
        ("data_batch_4.bin record 0 has label 10; labels are 0 to 9", "rm {root}/data/"),
        setup=lambda s: served(s, tiny(s, corrupt="bad_label")),
        creates=CACHE,
    ),
    Fault(
        "download-member-header-size-wrong",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        1,
        ("data_batch_3.bin", "damaged", "rm {root}/data/" + ARCHIVE_NAME),
        setup=lambda s: served(s, tiny(s, corrupt="short_header_size")),
        creates=CACHE,
        issue="14.11",
    ),
    Fault(
        "download-archive-with-a-path-escaping-member",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256} -q",
        0,
        ("CIFAR-10 is ready",),
        setup=lambda s: served(s, tiny(s, extra_members={"../evil": b"x"})),
        creates=CACHE,
    ),
    Fault(
        "download-data-dir-below-a-file",
        "data download --data-dir {file}/cache",
        1,
        ("{file}/cache", "--data-dir", "SVMTRAIN_DATA_DIR"),
        setup=a_file("a-file", "a regular file"),
    ),
    Fault(
        "download-ctrl-c",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        130,
        ("Download interrupted", "{root}/data/" + PART_NAME, "resume"),
        setup=lambda s: served(
            s,
            chunk=1 << 16,
            interrupt_after=1 << 16,
            interrupt_when=lambda: _size(s.root / "data" / PART_NAME) > 0,
        ),
        creates=CACHE,
    ),
    Fault(
        "download-disk-full",
        "data download --data-dir {full} --url {url} --sha256 {sha256}",
        1,
        ("No space left on device", "bytes are kept in {full}/" + PART_NAME, "to resume"),
        setup=lambda s: (full_disk(32 * 1024)(s), served(s), no_backoff(s)),
        creates=("tmpfs-0/*",),
        issue="14.11",
    ),
    Fault(
        "parse-disk-full",
        "data download --data-dir {full} --url {url} --sha256 {sha256} -q",
        1,
        ("No space left on device", "Free some space", "--data-dir"),
        setup=lambda s: (full_disk(len(tiny(s).body) + 64 * 1024)(s), served(s)),
        creates=("tmpfs-0/*",),
        process=True,  # the regression was SIGBUS: it kills the process
        issue="14.1",
    ),
    Fault(
        "download-sigterm",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        143,
        ("{root}/data/" + PART_NAME, "resume"),
        setup=lambda s: served(s, stall_after=1 << 17),
        during=signal_once_downloading(signal.SIGTERM),
        creates=CACHE,
        process=True,
        issue="14.11",
    ),
    Fault(
        "download-waiting-for-another-process",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256} -q",
        0,
        ("Waiting for another svmtrain process (PID", "{root}/data", "CIFAR-10 is ready"),
        setup=cache_locked_by_another,
        during=release_once_waiting,
        creates=CACHE,
        process=True,
        issue="14.7",
    ),
    Fault(
        "info-without-data",
        "data info --data-dir {root}/nothing",
        1,
        ("No CIFAR-10 archive", "svmtrain data download"),
    ),
    Fault(
        "info-on-read-only-media",
        "data info --data-dir {ro}",
        0,
        ("{sha256}", "300"),
        setup=lambda s: (cached(s), s.set(ro=s.fixture("read_only_view")(s.root / "data"))),
        issue="14.6",
    ),
    Fault(
        "download-sighup",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256}",
        129,
        ("Download stopped by SIGHUP", "{root}/data/" + PART_NAME, "resume"),
        setup=lambda s: served(s, stall_after=1 << 17),
        during=signal_once_downloading(signal.SIGHUP),
        creates=CACHE,
        process=True,
        issue="19.27",
    ),
    Fault(
        "data-dir-of-a-user-without-a-home",
        "data info",
        1,
        ("HOME is not set", "SVMTRAIN_DATA_DIR", "XDG_CACHE_HOME", "--data-dir"),
        setup=no_home,
        issue="19.23",
    ),
    Fault(
        "download-url-a-malformed-ipv6-address",
        "data download --data-dir {root}/data --url http://[::1",
        1,
        ("'http://[::1'", "must start with http:// or https:// and name a host"),
        issue="19.22",
    ),
    Fault(
        "download-env-url-a-malformed-ipv6-address",
        "data download --data-dir {root}/data",
        1,
        ("'http://[::1'", "SVMTRAIN_DATA_URL"),
        setup=lambda s: s.monkeypatch.setenv("SVMTRAIN_DATA_URL", "http://[::1"),
        issue="19.22",
    ),
    Fault(
        "fit-on-a-data-cache-whose-description-is-a-list",
        "fit -c quick {data} --out {root}/run -q",
        0,
        ("test accuracy",),
        setup=lambda s: (cached(s), _data_file(s, "parsed/*/meta.json").write_text("[]")),
        creates=RUN,
        changes=CACHE,
        issue="19.16",
    ),
    Fault(
        "fit-on-a-data-cache-whose-images-file-is-empty",
        "fit -c quick {data} --out {root}/run -q",
        0,
        ("test accuracy",),
        setup=lambda s: (cached(s), _data_file(s, "parsed/*/x_train.npy").write_bytes(b"")),
        creates=RUN,
        changes=CACHE,
        issue="18",
    ),
    Fault(
        "fit-on-a-data-cache-whose-stamp-has-a-number-for-a-digest",
        "fit -c quick {data} --out {root}/run -q",
        0,
        ("test accuracy",),
        setup=lambda s: (cached(s), _edit_json(_data_file(s, ARCHIVE_NAME + ".json"), sha256=7)),
        creates=RUN,
        changes=CACHE,
        issue="19.16",
    ),
    Fault(
        "parse-spares-the-users-folder-in-parsed",
        "data download --data-dir {root}/data --url {url} --sha256 {sha256} -q",
        0,
        ("CIFAR-10 is ready",),
        setup=lambda s: (cached(s), _parsed_again_beside_a_users_folder(s)),
        creates=CACHE,
        issue="19.1",
    ),
    Fault(
        "download-into-read-only-media",
        "data download --data-dir {ro} --url {url} --sha256 {sha256}",
        1,
        ("Cannot write to the data directory {ro}: Read-only file system", "--data-dir"),
        setup=lambda s: (served(s), read_only("empty")(s)),
    ),
]

CONFIG = [
    Fault(
        "config-random-search-without-tries",
        "fit --set optim.name=random_search --set random_search.tries=0 --out {root}/run",
        1,
        ("random_search.tries must be an int >= 1. Got 0 instead.",),
    ),
    Fault(
        "config-local-search-step-without-its-optimiser",
        "fit --set random_local_search.step=1e-3 --out {root}/run",
        1,
        (
            "random_local_search.step is 0.001, but it means nothing to optim.name=sgd",
            "set optim.name=random_local_search",
        ),
    ),
    Fault(
        "config-random-search-with-a-learning-rate",
        "fit --set optim.name=random_search --set optim.learning_rate=1e-3 --out {root}/run",
        1,
        ("optim.learning_rate is 0.001, but it means nothing to optim.name=random_search",),
    ),
    Fault(
        "config-typo-in-a-key",
        "fit -c {file} --out {root}/run",
        1,
        ("'learning_rat' is not a key of optim; did you mean 'learning_rate'?",),
        setup=a_file("bad.yaml", "optim:\n  learning_rat: 1e-3\n"),
    ),
    Fault(
        "config-unknown-section",
        "fit -c {file} --out {root}/run",
        1,
        ("'trian'", "did you mean 'train'?"),
        setup=a_file("bad.yaml", "trian:\n  epochs: 2\n"),
    ),
    Fault(
        "config-bad-value",
        "fit -c {file} --out {root}/run",
        1,
        ("train.batch_size must be an int >= 1. Got 0 instead.",),
        setup=a_file("bad.yaml", "train:\n  batch_size: 0\n"),
    ),
    Fault(
        "config-wrong-type",
        "fit -c {file} --out {root}/run",
        1,
        ("optim.learning_rate must be a float", "'fast'"),
        setup=a_file("bad.yaml", "optim:\n  learning_rate: fast\n"),
    ),
    Fault(
        "config-yaml-syntax-error",
        "fit -c {file} --out {root}/run",
        1,
        ("{file}", "invalid YAML at line 2"),
        setup=a_file("bad.yaml", "train: [1, 2\n"),
    ),
    Fault(
        "config-tab-indentation",
        "fit -c {file} --out {root}/run",
        1,
        ("{file}", "line 2"),
        setup=a_file("bad.yaml", "optim:\n\tlearning_rate: 1\n"),
    ),
    Fault(
        "config-duplicate-key",
        "fit -c {file} --out {root}/run",
        1,
        ("{file}", "learning_rate", "line 3"),
        setup=a_file("bad.yaml", "optim:\n  learning_rate: 1\n  learning_rate: 2\n"),
    ),
    Fault(
        "config-top-level-list",
        "fit -c {file} --out {root}/run",
        1,
        ("the top level must be a mapping",),
        setup=a_file("bad.yaml", "- just\n- a list\n"),
    ),
    Fault(
        "config-missing-file",
        "fit -c {root}/nope.yaml --out {root}/run",
        1,
        ("Config file {root}/nope.yaml does not exist",),
    ),
    Fault(
        "config-is-a-directory",
        "fit -c {root} --out {root}/run",
        2,
        ("is a directory",),
    ),
    Fault(
        "config-not-utf8",
        "fit -c {file} --out {root}/run",
        1,
        ("Config file {file} is not UTF-8 text", "byte 24"),
        setup=a_file("bad.yaml", b"optim:\n  momentum: 0.9 \xff\n"),
    ),
    Fault(
        "config-hyperparameter-of-another-loss",
        "fit --set model.loss=softmax --set model.delta=2 --out {root}/run",
        1,
        ("the softmax loss has no delta", "remove model.delta"),
    ),
    Fault(
        "set-unknown-key",
        "fit --set optim.lr=1 --out {root}/run",
        1,
        ("--set 'optim.lr=1': 'lr' is not a key of optim; valid: name, learning_rate",),
    ),
    Fault(
        "set-without-equals",
        "fit --set optim.learning_rate --out {root}/run",
        1,
        ("--set 'optim.learning_rate': expected section.key=value",),
    ),
    Fault(
        "set-bad-value",
        "fit --set train.epochs=0 --out {root}/run",
        1,
        ("train.epochs must be null or an int >= 1. Got 0 instead.",),
    ),
    Fault(
        "set-nul-in-output-name",
        "fit --set 'output.name=\"a\\0b\"' --out {root}/run",
        1,
        ("output.name must be a non-empty string without '/' or NUL",),
        issue="19.21",
    ),
    Fault(
        "set-nul-in-data-dir",
        "fit --set 'data.dir=\"{root}/a\\0b\"' --out {root}/run",
        1,
        ("data.dir must be null or a non-empty string without NUL",),
        issue="19.21",
    ),
    Fault(
        "set-an-output-name-too-long-for-a-file-name",
        "fit --set output.name=" + LONG_NAME + " --out {root}/run",
        1,
        ("output.name must be", "at most 239 bytes"),
        issue="19.20",
    ),
    Fault(
        "alias-bomb-in-a-config-file",
        "fit -c {file} --out {root}/run",
        1,
        ("{file}", "YAML anchors and aliases are not allowed in a config", "'&l0'"),
        setup=lambda s: s.set(file=ALIAS_BOMB_FILE),
        process=True,
        issue="14.2",
    ),
    Fault(
        "alias-bomb-in-set",
        "fit --set {bomb} --out {root}/run",
        1,
        ("--set 'train.sampling=", "YAML anchors and aliases are not allowed in a config"),
        setup=lambda s: s.set(bomb="train.sampling=" + ALIAS_BOMB[len("train: {sampling: ") : -2]),
        process=True,
        issue="14.2",
    ),
    Fault(
        "alias-bomb-in-a-weights-file",
        "evaluate -w {weights} --data-dir {root}/data",
        1,
        ("the config stored in {weights}", "YAML anchors and aliases are not allowed"),
        setup=bomb_in_weights,
        process=True,
        issue="14.2",
    ),
    Fault(
        "config-is-a-fifo",
        "fit -c {fifo} --out {root}/run",
        1,
        ("Config file {fifo} is not a regular file", "a named pipe"),
        setup=a_fifo,
        process=True,
        issue="19.7",
    ),
    Fault(
        "weights-is-a-fifo",
        "evaluate -w {fifo} --data-dir {root}/data",
        1,
        ("{fifo} is not a regular file, so not a weights file",),
        setup=a_fifo,
        process=True,
        issue="19.7",
    ),
    Fault(
        "config-is-dev-zero",
        "fit -c /dev/zero --out {root}/run",
        1,
        ("Config file /dev/zero is not a regular file", "a device"),
        process=True,
        issue="19.7",
    ),
    Fault(
        "config-is-dev-urandom",
        "fit -c /dev/urandom --out {root}/run",
        1,
        ("Config file /dev/urandom is not a regular file",),
        process=True,
        issue="19.7",
    ),
    Fault(
        "config-far-too-large",
        "fit -c {file} --out {root}/run",
        1,
        ("Config file {file} is 2.0 MB", "a config is a few KB"),
        setup=a_file("big.yaml", "# " + "x" * 2_000_000 + "\n"),
        issue="19.7",
    ),
    Fault(
        "config-nested-too-deeply",
        "fit -c {file} --out {root}/run",
        1,
        ("{file}: values nested more than", "at line 2, column"),
        setup=a_file("deep.yaml", f"train:\n  seed: {DEEP}\n"),
        process=True,
        issue="19.18",
    ),
    Fault(
        "set-nested-too-deeply",
        "fit --set train.seed={deep} --out {root}/run",
        1,
        ("--set 'train.seed=[[[", "values nested more than"),
        setup=lambda s: s.set(deep=DEEP),
        process=True,
        issue="19.18",
    ),
    Fault(
        "run-config-nested-too-deeply",
        "fit --resume {run} -q",
        1,
        ("{run}/config.yaml: values nested more than",),
        setup=deep_run_config,
        process=True,
        issue="19.18",
    ),
    Fault(
        "weights-config-nested-too-deeply",
        "evaluate -w {weights} --data-dir {root}/data",
        1,
        ("the config stored in {weights}: values nested more than",),
        setup=deep_in_weights("config"),
        process=True,
        issue="19.18",
    ),
    Fault(
        "weights-extractor-nested-too-deeply",
        "evaluate -w {weights} --data-dir {root}/data",
        1,
        ("{weights}: its feature extractor cannot be read", "nested more than"),
        setup=deep_in_weights("extractor"),
        process=True,
        issue="19.18",
    ),
    Fault(
        "set-integer-over-4300-digits",
        "fit --set train.seed={big} --out {root}/run",
        1,
        ("--set 'train.seed=99999", "has 5000 digits"),
        setup=lambda s: s.set(big=BIG_INT),
        issue="19.19",
    ),
    Fault(
        "config-integer-over-4300-digits",
        "fit -c {file} --out {root}/run",
        1,
        ("{file}: the number at line 2, column 9 has 5000 digits",),
        setup=a_file("big.yaml", f"train:\n  seed: {BIG_INT}\n"),
        issue="19.19",
    ),
    Fault(
        "search-lr-integer-over-4300-digits",
        "search -c quick --lr {big} --out {root}/out",
        1,
        ("Trial 1 (optim.learning_rate=99999", "...)", "has 5000 digits"),
        setup=lambda s: s.set(big=BIG_INT),
        issue="19.19",
    ),
]

FIT = [
    Fault(
        "fit-diverges",
        "fit -c quick {data} --set optim.learning_rate=1e9 --out {root}/run -q",
        1,
        ("Training diverged", "Try a smaller learning rate"),
        setup=cached,
        creates=RUN,
    ),
    Fault(
        "fit-init-scale-1e300",
        "fit -c quick {data} --set model.init_scale=1e300 --out {root}/run -q",
        1,
        ("model.init_scale (1e+300) is larger than the largest float32", "use a smaller"),
        setup=cached,
        issue="19.32",
    ),
    Fault(
        "fit-learning-rate-1e300",
        "fit -c quick {data} --set optim.learning_rate=1e300 --out {root}/run -q",
        1,
        ("optim.learning_rate (1e+300) is larger than the largest float32",),
        never=("Warning",),
        setup=cached,
        issue="19.33",
    ),
    Fault(
        "fit-ctrl-c-mid-run",
        LONG_FIT,
        130,
        ("continue with: svmtrain fit --resume {root}/run",),
        setup=cached,
        during=signal_after_first_epoch(signal.SIGINT),
        creates=RUN,
        process=True,
    ),
    Fault(
        "fit-sigterm-mid-run",
        LONG_FIT,
        143,
        ("SIGTERM after epoch", "continue with: svmtrain fit --resume {root}/run"),
        setup=cached,
        during=signal_after_first_epoch(signal.SIGTERM),
        creates=RUN,
        process=True,
        issue="14.11",
    ),
    Fault(
        "fit-sighup-mid-run",
        LONG_FIT,
        129,
        ("SIGHUP after epoch", "continue with: svmtrain fit --resume {root}/run"),
        setup=cached,
        during=signal_after_first_epoch(signal.SIGHUP),
        creates=RUN,
        process=True,
        issue="19.27",
    ),
    Fault(
        "fit-resume-after-ctrl-c",
        "fit --resume {run} -q",
        0,
        ("test accuracy", "{run}"),
        setup=interrupted,
        creates=RUN,
        changes=RUN,
    ),
    Fault(
        "fit-resume-with-an-edited-config",
        "fit --resume {run} -q",
        1,
        ("{run}/config.yaml was changed after the run started", "--out NEW_DIR"),
        setup=lambda s: (
            interrupted(s),
            (s.root / "run" / runs.CONFIG).write_text(
                (s.root / "run" / runs.CONFIG).read_text().replace("epochs: 2", "epochs: 3")
            ),
        ),
    ),
    Fault(
        "fit-resume-with-a-new-config",
        "fit --resume {root} -c quick",
        2,
        ("--resume takes the run's own config.yaml",),
    ),
    Fault(
        "fit-resume-a-directory-without-a-run",
        "fit --resume {root}/empty",
        1,
        ("{root}/empty is not a run directory: it has no config.yaml",),
        setup=lambda s: (s.root / "empty").mkdir(),
    ),
    Fault(
        "fit-resume-a-missing-directory",
        "fit --resume {root}/nope",
        2,
        ("--resume", "does not exist"),
    ),
    Fault(
        "fit-resume-a-finished-run",
        "fit --resume {run} -q",
        0,
        ("The run in {run} had already finished; nothing to resume", "test accuracy"),
        setup=fitted,
    ),
    Fault(
        "fit-out-onto-the-users-files",
        "fit -c quick {data} --out {mine} -q",
        1,
        ("{mine} is not empty", "Choose a new or empty directory with --out"),
        setup=both(cached, users_files),
        issue="14.4",
    ),
    Fault(
        "fit-out-onto-a-finished-run",
        "fit -c quick {data} --out {run} -q",
        1,
        ("{run} already holds a finished run; choose another --out",),
        setup=fitted,
    ),
    Fault(
        "fit-out-onto-an-unfinished-run",
        "fit -c quick {data} --out {run} -q",
        1,
        ("svmtrain fit --resume {run}",),
        setup=interrupted,
    ),
    Fault(
        "fit-out-onto-a-diverged-run",
        "fit -c quick {data} --out {run} -q",
        1,
        ("{run} holds the weights of a run that diverged; choose another --out",),
        setup=diverged,
    ),
    Fault(
        "fit-out-is-a-file",
        "fit -c quick {data} --out {file} -q",
        2,
        ("Invalid value for '--out'", "{file}' is a file"),
        setup=both(cached, a_file("a-file", "mine")),
    ),
    Fault(
        "fit-out-below-a-file",
        "fit -c quick {data} --out {file}/run -q",
        1,
        ("Cannot create the directory {file}/run", "--out"),
        setup=both(cached, a_file("a-file", "mine")),
    ),
    Fault(
        "fit-two-fits-into-one-out",
        "fit -c quick {data} --out {run} -q",
        1,
        ("{run} is in use by another 'svmtrain fit' (PID", "choose another --out"),
        setup=both(cached, run_locked_by_another),
        issue="14.3",
    ),
    Fault(
        "fit-out-on-read-only-media",
        "fit -c quick {data} --out {ro}/run -q",
        1,
        ("Cannot create the directory {ro}/run: Read-only file system", "--out"),
        setup=both(cached, read_only("media")),
        issue="14.5",
    ),
    Fault(
        "fit-out-on-a-full-disk",
        "fit -c quick {data} --out {full}/run -q",
        1,
        ("Cannot write {full}/run/", "No space left on device", "Free some space"),
        setup=both(cached, full_disk(64 * 1024)),
        creates=("tmpfs-0/run", "tmpfs-0/run/*"),
    ),
    Fault(
        "fit-batch-larger-than-the-data",
        "fit -c quick {data} --set train.batch_size=5000 --out {root}/run -q",
        1,
        ("train.batch_size must be at most the 250",),
        setup=cached,
    ),
    Fault(
        "fit-more-validation-than-data",
        "fit -c quick {data} --set data.val_size=300 --out {root}/run -q",
        1,
        ("data.val_size must be smaller than the 300 training images",),
        setup=cached,
    ),
    Fault(
        "fit-plot-without-matplotlib",
        "fit -c quick --out {root}/run --plot",
        1,
        ("pip install 'svmtrain[plot]'",),
        setup=no_matplotlib,
    ),
    Fault(
        "fit-out-of-memory",
        "fit -c quick --out {root}/run",
        1,
        ("Out of memory", "--num-examples"),
        setup=out_of_memory,
    ),
    Fault(
        "fit-out-onto-the-users-weights-npz",
        "fit -c quick {data} --out {root}/d -q",
        1,
        ("{root}/d is not empty (weights.npz) and holds no run",),
        setup=both(cached, a_file("d/weights.npz", "hi\n")),
    ),
    Fault(
        "fit-ctrl-c-before-training-started",
        "fit --resume {run} -q",
        0,
        ("test accuracy", "{run}"),
        setup=interrupted_before_training,
        creates=RUN,
        changes=RUN,
    ),
    Fault(
        "fit-out-holding-the-users-config-of-the-same-settings",
        "fit -c {file} --out {root}/exp -q",
        1,
        ("{file} is not the config.yaml fit writes", "Choose a new or empty directory"),
        setup=both(cached, users_config_in_out),
        issue="19.2",
    ),
    Fault(
        "fit-out-with-a-name-too-long",
        "fit -c quick {data} --out {root}/" + LONG_NAME + " -q",
        1,
        ("{root}/" + LONG_NAME, "File name too long", "choose a shorter one"),
        setup=cached,
        issue="19.20",
    ),
    Fault(
        "fit-reg-so-large-the-weight-decay-diverges",
        "fit -c quick {data} --set model.reg=1e300 --out {root}/run -q",
        1,
        ("Training diverged", "smaller model.reg", "with model.reg=1e+300 the weight decay alone"),
        setup=cached,
        creates=RUN,
        issue="19.10",
    ),
    Fault(
        "fit-out-of-memory-says-what-did-not-fit",
        "fit -c quick --out {root}/run",
        1,
        ("Out of memory (unable to allocate", "shape (1000000000000, 1000000)", "fewer examples"),
        setup=out_of_memory_in_numpy,
        issue="19.31",
    ),
    Fault(
        "fit-resume-with-another-runs-checkpoint",
        "fit --resume {run} -q",
        1,
        ("{run}/checkpoint.npz belongs to another run",),
        setup=another_runs_checkpoint,
    ),
    Fault(
        "fit-resume-checkpoint-epoch-negative",
        "fit --resume {run} -q",
        1,
        (
            "{run}/checkpoint.npz is damaged: it has epoch = -5, not a whole number >= 0",
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"epoch": -5}),
        issue="19.26",
    ),
    Fault(
        "fit-resume-checkpoint-epoch-huge",
        "fit --resume {run} -q",
        1,
        (
            "{run}/checkpoint.npz is damaged: it has epoch 1000000000000000000000000000000, step",
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"epoch": 1000000000000000000000000000000}),
        issue="19.26",
    ),
    Fault(
        "fit-resume-checkpoint-step-fraction",
        "fit --resume {run} -q",
        1,
        (
            "{run}/checkpoint.npz is damaged: it has step = 1.5, not a whole number >= 0",
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"step": 1.5}),
        issue="19.26",
    ),
    Fault(
        "fit-resume-checkpoint-epoch-a-string",
        "fit --resume {run} -q",
        1,
        (
            '{run}/checkpoint.npz is damaged: it has epoch = "3", not a whole number >= 0',
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"epoch": "3"}),
        issue="19.26",
    ),
    Fault(
        "fit-resume-checkpoint-metrics-not-a-list",
        "fit --resume {run} -q",
        1,
        (
            '{run}/checkpoint.npz is damaged: it has metrics = {{"epoch": 1}}, not a list',
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"metrics": {"epoch": 1}}),
        issue="19.26",
    ),
    Fault(
        "fit-resume-checkpoint-seconds-negative",
        "fit --resume {run} -q",
        1,
        (
            "{run}/checkpoint.npz is damaged: it has seconds = -1.0, not a finite number >= 0",
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"seconds": -1.0}),
        issue="19.26",
    ),
    Fault(
        "fit-resume-checkpoint-stopped-early-a-number",
        "fit --resume {run} -q",
        1,
        (
            "{run}/checkpoint.npz is damaged: it has stopped_early = 1, not true or false",
            "--out NEW_DIR",
        ),
        setup=damaged_checkpoint(**{"stopped_early": 1}),
        issue="19.26",
    ),
]

EVALUATE = [
    Fault(
        "evaluate-missing-weights",
        "evaluate -w {root}/weights.npz",
        1,
        ("No weights file at {root}/weights.npz", "weights.npz that 'svmtrain fit' wrote"),
    ),
    Fault(
        "evaluate-weights-of-the-wrong-shape",
        "evaluate -w {weights}",
        1,
        ("W has shape (10, 3072)", "weights.npz that 'svmtrain fit' wrote"),
        setup=weights_file(W=np.zeros((10, PIXELS))),
    ),
    Fault(
        "evaluate-weights-lacking-the-mean",
        "evaluate -w {weights}",
        1,
        ("lacks mean",),
        setup=weights_file(mean=None),
    ),
    Fault(
        "evaluate-weights-that-are-not-numbers",
        "evaluate -w {weights}",
        1,
        ("mean must be 3072 finite floats",),
        setup=weights_file(mean=np.full(PIXELS, np.nan)),
    ),
    Fault(
        "evaluate-pickled-weights",
        "evaluate -w {weights}",
        1,
        ("{weights} is not a readable weights file", "allow_pickle=False"),
        setup=pickled_weights,
    ),
    Fault(
        "evaluate-weights-not-an-npz",
        "evaluate -w {file}",
        1,
        ("{file} is not a weights file (not an .npz archive)",),
        setup=a_file("weights.npz", "not a zip"),
    ),
    Fault(
        "evaluate-weights-of-a-diverged-run",
        "evaluate -w {weights} -q",
        0,
        ("diverged in epoch 1", "untrained initial weights"),
        setup=diverged,
        issue="14.8",
    ),
    Fault(
        "evaluate-an-unknown-split",
        "evaluate -w {root}/weights.npz --split train",
        2,
        ("'train' is not one of 'test', 'val'",),
    ),
    Fault(
        "evaluate-val-split-larger-than-the-data",
        "evaluate -w {weights} --split val -q",
        1,
        ("data.val_size must be smaller than the 300 training images", "Got 1000"),
        setup=lambda s: (
            cached(s),
            weights_file(
                config=np.array(
                    "data: {{dir: {data_dir}, url: {url}, sha256: {sha256}, "
                    "val_size: 1000}}".format(**s.vars)
                )
            )(s),
        ),
    ),
    Fault(
        "evaluate-plot-into-a-missing-directory",
        "evaluate -w {weights} --plot {root}/nope/c.png -q",
        2,  # checked before any work, as sweep-step and search check theirs
        ("--plot", "{root}/nope", "does not exist"),
        setup=fitted,
    ),
    Fault(
        "evaluate-plot-onto-read-only-media",
        "evaluate -w {weights} --plot {ro}/c.png -q",
        1,
        ("Cannot write {ro}/c.png: Read-only file system", "Choose a writable location"),
        setup=both(fitted, read_only("media")),
        issue="14.5",
    ),
    Fault(
        "evaluate-plot-onto-an-existing-file",
        "evaluate -w {weights} --plot {file} -q",
        1,
        ("{file} already exists; choose a new file name or pass --force",),
        setup=both(fitted, a_file("p.png", "my picture")),
    ),
    Fault(
        "evaluate-plot-named-txt",
        "evaluate -w {weights} --plot {root}/c.txt -q",
        2,
        ("--plot", "does not end in .png"),
        setup=fitted,
    ),
    Fault(
        "evaluate-a-run-directory",
        "evaluate -w {run} -q",
        0,
        ("accuracy",),
        setup=fitted,
    ),
    Fault(
        "evaluate-a-checkpoint",
        "evaluate -w {run}/checkpoint.npz -q",
        1,
        ("{run}/checkpoint.npz is a checkpoint", "{run}/weights.npz"),
        setup=interrupted,
    ),
    Fault(
        "evaluate-weights-path-with-a-name-too-long",
        "evaluate -w {root}/" + LONG_NAME + "/weights.npz",
        1,
        ("File name too long", "choose a shorter one"),
        issue="19.20",
    ),
    Fault(
        "predict-an-image-with-a-name-too-long",
        "predict -w {weights} {root}/" + LONG_NAME + ".png",
        1,
        ("{root}/" + LONG_NAME + ".png", "File name too long"),
        setup=fitted,
        issue="19.20",
    ),
    Fault(
        "evaluate-an-unfinished-run-directory",
        "evaluate -w {run} -q",
        1,
        ("svmtrain fit --resume {run}",),
        setup=interrupted,
    ),
]

WEIGHTS = [
    Fault(
        "evaluate-weights-with-a-member-of-300-mb",
        "evaluate -w {file}",
        1,
        ("{file} holds 300,000,128 bytes in mean", "more than svmtrain reads for a weights"),
        setup=zipped("weights.npz", _mean_of_300_mb, deflated=True),
        process=True,  # before the fix, it read the 300 MB
        issue="19.12",
    ),
    Fault(
        "evaluate-weights-of-1000-members",
        "evaluate -w {file}",
        1,
        ("{file} has a zip directory of 1,005 members", "a weights file has a few arrays"),
        setup=zipped(
            "weights.npz",
            lambda: {**_good_weight_members(), **{f"x{i}.npy": b"" for i in range(1000)}},
        ),
        issue="19.12",
    ),
    Fault(
        "evaluate-a-zip-whose-members-are-not-npy",
        "evaluate -w {file}",
        1,
        (
            "{file} is not a weights file: its members (W, class_names, config and 2 more) are "
            "not .npy arrays",
        ),
        setup=zipped(
            "weights.npz", lambda: {k[: -len(".npy")]: v for k, v in _good_weight_members().items()}
        ),
        issue="19.25",
    ),
    Fault(
        "predict-weights-whose-w-is-not-finite",
        "predict -w {weights} {file}",
        1,
        (
            "{weights}: W holds 30,730 values that are not finite numbers",
            "W[0, 0]",
            "The file is damaged",
        ),
        setup=both(
            weights_file(W=np.full((10, PIXELS + 1), np.nan, np.float32)),
            an_image("cat.png", lambda: _saved(_noise(), "PNG")),
        ),
        issue="19.32",
    ),
    Fault(
        "predict-weights-of-pixel-scale-1e-45",
        "predict -w {weights} {file}",
        1,
        ("{weights}: its input transform and weights give scores that are not finite",),
        setup=both(
            weights_file(scale=np.full(PIXELS, 1e-45, np.float32)),
            an_image("cat.png", lambda: _saved(_noise(), "PNG")),
        ),
        issue="19.9",
    ),
    Fault(
        "evaluate-weights-with-nan-centroids",
        "evaluate -w {weights}",
        1,
        ("{weights}", "centroids holds values that are not finite numbers"),
        setup=kmeans_weights(centroids=np.full((4, 27), np.nan, np.float32)),
        issue="19.9",
    ),
    Fault(
        "evaluate-weights-with-infinite-whitening",
        "evaluate -w {weights}",
        1,
        ("{weights}", "whitening holds values that are not finite numbers"),
        setup=kmeans_weights(whitening=np.full((27, 27), np.inf, np.float32)),
        issue="19.9",
    ),
    Fault(
        "evaluate-weights-with-complex-centroids",
        "evaluate -w {weights}",
        1,
        ("{weights}", "centroids must hold real numbers; got complex64"),
        never=("ComplexWarning",),
        setup=kmeans_weights(centroids=np.full((4, 27), 1 + 1j, np.complex64)),
        issue="19.33",
    ),
    Fault(
        "predict-weights-naming-a-class-twice",
        "predict -w {weights} {file} --json",
        1,
        ("{weights}: class_names lists 'a' more than once",),
        setup=both(
            weights_file(class_names=np.array(list("aacdefghij"))),
            an_image("cat.png", lambda: _saved(_noise(), "PNG")),
        ),
        issue="19.35",
    ),
]

PREDICT = [
    Fault(
        "predict-a-16-bit-grey-png",
        "predict -w {weights} {file} --json",
        0,
        ('"a": 479232.0',),  # 40000 of 65535 is level 156 of 255, in each of 3,072 values
        setup=both(
            summing_weights,
            an_image("grey16.png", lambda: _saved(np.full((64, 64), 40000, np.uint16), "PNG")),
        ),
        issue="19.8",
    ),
    Fault(
        "predict-a-float-tiff-in-0-1",
        "predict -w {weights} {file} --json",
        0,
        ('"a": 393216.0',),  # 0.5 is level 128
        setup=both(
            summing_weights,
            an_image("half.tif", lambda: _saved(np.full((64, 64), 0.5, np.float32), "TIFF")),
        ),
        issue="19.8",
    ),
    Fault(
        "predict-a-float-tiff-holding-nan",
        "predict -w {weights} {file}",
        1,
        ("{file} holds levels that are not finite numbers",),
        setup=both(
            summing_weights,
            an_image("nan.tif", lambda: _saved(np.full((8, 8), np.nan, np.float32), "TIFF")),
        ),
        issue="19.8",
    ),
    Fault(
        "predict-a-damaged-blp",
        "predict -w {weights} {file}",
        1,
        ("{file} cannot be read as an image; it is damaged", "BLPFormatError"),
        setup=both(summing_weights, an_image("icon.blp", _blp_of_unknown_compression)),
        issue="19.17",
    ),
    Fault(
        "predict-a-tiff-libtiff-complains-of",
        "predict -w {weights} {file}",
        1,
        ("{file} is not an image Pillow can read",),
        never=("More samples per pixel",),  # libtiff's own line, on the process's stderr
        setup=both(summing_weights, an_image("bad.tif", _tiff_of_2048_samples_per_pixel)),
        process=True,
        issue="19.33",
    ),
    Fault(
        "predict-a-jpeg-with-a-truncated-exif-block",
        "predict -w {weights} {file}",
        0,
        ("{file}",),
        never=("Corrupt EXIF", "UserWarning"),
        setup=both(summing_weights, an_image("photo.jpg", _jpeg_with_truncated_exif)),
        issue="19.33",
    ),
    Fault(
        "predict-a-100-megapixel-png",
        "predict -w {weights} {file}",
        1,
        ("{file} is 10,000 x 10,000 pixels", "50 megapixels", "shrink it first"),
        never=("DecompressionBombWarning",),
        setup=both(summing_weights, an_image("huge.png", lambda: _png_declaring(10_000, 10_000))),
        issue="19.33",
    ),
    Fault(
        "predict-a-png-declaring-9000-x-9000-with-one-row",
        "predict -w {weights} {file}",
        1,
        ("{file} is 9,000 x 9,000 pixels", "shrink it first"),
        setup=both(summing_weights, an_image("tall.png", lambda: _png_declaring(9000, 9000))),
        issue="19.34",
    ),
]

GRADCHECK = [
    Fault(
        "gradcheck-h-zero",
        "gradcheck --synthetic --h 0",
        2,
        ("Invalid value for '--h': must be a finite number > 0. Got '0' instead.",),
    ),
    Fault(
        "gradcheck-h-nan",
        "gradcheck --synthetic --h nan",
        2,
        ("Invalid value for '--h': must be a finite number > 0.",),
    ),
    Fault(
        "gradcheck-h-so-large-the-loss-overflows",
        "gradcheck --synthetic -n 20 --h 1e300",
        2,
        ("Invalid value for '--h': h=1e+300 is too large", "Use a smaller h"),
        issue="14.11",
    ),
    Fault(
        "gradcheck-h-too-small-for-float32",
        "gradcheck --synthetic -n 20 --dtype float32 --h 1e-30",
        2,
        ("Invalid value for '--h': h=1e-30 is too small", "Use a larger h"),
    ),
    Fault(
        "gradcheck-checks-zero",
        "gradcheck --synthetic --checks 0",
        2,
        ("Invalid value for '--checks'", "0 is not in the range x>=1"),
    ),
    Fault(
        "gradcheck-more-checks-than-weights",
        "gradcheck --synthetic -n 20 --checks 40000",
        2,
        ("must be at most 30,730 (the weights). Got 40000 instead. Use --all",),
    ),
    Fault(
        "gradcheck-checks-and-all",
        "gradcheck --synthetic --all --checks 3",
        2,
        ("Use either --checks K or --all, not both.",),
    ),
    Fault(
        "gradcheck-num-examples-zero",
        "gradcheck --synthetic --num-examples 0",
        2,
        ("Invalid value for '--num-examples'", "0 is not in the range x>=1"),
    ),
    Fault(
        "gradcheck-num-examples-beyond-synthetic",
        "gradcheck --synthetic --num-examples 100000000",
        2,
        ("Invalid value for '--num-examples': must be at most 50,000 with synthetic data",),
    ),
    Fault(
        "gradcheck-num-examples-beyond-the-data",
        "gradcheck {data} --num-examples 1000 -q",
        2,
        ("Invalid value for '--num-examples'", "at most 250"),
        setup=cached,
    ),
    Fault(
        "gradcheck-delta-of-softmax",
        "gradcheck --synthetic --loss softmax --delta 2",
        2,
        ("Invalid value for '--delta': the softmax loss has no delta",),
    ),
    Fault(
        "gradcheck-reg-0-where-sum-w-squared-overflows-float32",
        "gradcheck --synthetic -n 20 --dtype float32 --reg 0 --weight-scale 1e20 --h 1e17 -q",
        0,
        ("reg=0", "PASS"),
        issue="14.9",
    ),
    Fault(
        "gradcheck-bias-column-bug",
        "gradcheck --synthetic -n 20",
        1,
        ("FAIL", "W[", ", 3072]"),
        setup=bias_gradient_sign_flipped,
        issue="14.10",
    ),
    Fault(
        "gradcheck-forward-with-the-built-in-defaults",
        "gradcheck --synthetic --method forward",
        0,
        ("forward differences with h=1e-09", "PASS"),
        issue="20",
    ),
    Fault(
        "gradcheck-nothing-can-be-judged",
        "gradcheck --synthetic --tol 1e-300",
        3,
        ("INCONCLUSIVE: every checked weight is at a kink or unresolved", "no verdict"),
        issue="20",
    ),
    Fault(
        "gradcheck-softmax-reference-where-a-probability-underflows",
        "gradcheck --synthetic --loss softmax --reference --weight-scale 1",
        0,
        ("loop reference: loss 775727158.19870", "PASS"),
        issue="19.13",
    ),
    Fault(
        "gradcheck-reference-not-finite",
        "gradcheck --synthetic -n 20 --reference",
        1,
        ("FAIL: the loop reference's loss is inf", "overflows"),
        setup=reference_overflows,
        issue="19.13",
    ),
]

SWEEP = [
    Fault(
        "sweep-help-on-the-notes-differences",
        "sweep-step --help",
        0,
        ("centred (2 loss evaluations per weight)", "the notes' code takes forward differences"),
        issue="14.11",
    ),
    Fault(
        "sweep-steps-not-numbers",
        "sweep-step --steps 1e-6,abc",
        2,
        ("Invalid value for '--steps'", "'abc' is not a number"),
    ),
    Fault(
        "sweep-steps-zero",
        "sweep-step --steps 0,1e-6",
        2,
        ("'--steps'", "finite number > 0. Got '0'"),
    ),
    Fault(
        "sweep-steps-repeated",
        "sweep-step --steps 1e-6,1e-6",
        2,
        ("'--steps'", "1e-06 twice"),
    ),
    Fault(
        "sweep-range-reversed",
        "sweep-step --range -1:-10",
        2,
        ("'--range'", "did you mean -10:-1?"),
    ),
    Fault(
        "sweep-range-not-exponents",
        "sweep-step --range 1e-10:1e-1",
        2,
        ("'--range'", "two integer exponents"),
    ),
    Fault(
        "sweep-steps-and-range",
        "sweep-step --range -5:-1 --steps 1e-6",
        2,
        ("--steps and --range both give",),
    ),
    Fault(
        "sweep-every-loss-overflows",
        "sweep-step {data} --steps 1e30,1e35 -q",
        1,
        ("Every step made the loss overflow; try smaller steps",),
        setup=cached,
    ),
    Fault(
        "sweep-csv-into-proc",
        "sweep-step {data} --steps 1e-6 --csv /proc/svmtrain-sweep.csv -q",
        1,
        ("Cannot write /proc/svmtrain-sweep.csv", "No new file can be created in /proc"),
        setup=cached,
        issue="14.11",
    ),
    Fault(
        "sweep-csv-onto-read-only-media",
        "sweep-step {data} --steps 1e-6 --csv {ro}/s.csv -q",
        1,
        ("Cannot write {ro}/s.csv: Read-only file system", "Choose a writable location"),
        setup=both(cached, read_only("media")),
        issue="14.5",
    ),
    Fault(
        "sweep-plot-into-a-missing-directory",
        "sweep-step --steps 1e-6 --plot {root}/nope/s.png",
        2,
        ("--plot", "{root}/nope", "does not exist"),
    ),
    Fault(
        "sweep-csv-onto-an-existing-file",
        "sweep-step --steps 1e-6 --csv {file}",
        1,
        ("{file} already exists; choose a new file name or pass --force",),
        setup=a_file("s.csv", "my table"),
    ),
    Fault(
        "sweep-plot-onto-an-existing-file",
        "sweep-step --steps 1e-6 --plot {file}",
        1,
        ("{file} already exists; choose a new file name or pass --force",),
        setup=a_file("s.png", "my picture"),
    ),
    Fault(
        "sweep-plot-named-pdf",
        "sweep-step --steps 1e-6 --plot {root}/s.pdf",
        2,
        ("--plot", "does not end in .png"),
    ),
]

LANDSCAPE = [
    Fault(
        "landscape-span-zero",
        "landscape --span 0",
        2,
        ("Invalid value for '--span'", "0.0 is not in the range 0<x<=1000000"),
    ),
    Fault(
        "landscape-grid-too-fine",
        "landscape --grid 5000",
        2,
        ("Invalid value for '--grid'", "5000 is not in the range 3<=x<=501"),
    ),
    Fault(
        "landscape-config-and-weights",
        "landscape -c quick -w {root}/w.npz",
        2,
        ("--config and --weights both give the config", "change it with --set"),
    ),
    Fault(
        "landscape-more-examples-than-the-training-split",
        "landscape {data} -n 251 -q",
        2,
        ("'--num-examples'", "the training split has 250 images"),
        setup=cached,
    ),
    Fault(
        "landscape-pickled-weights",
        "landscape -w {weights} -q",
        1,
        ("{weights} is not a readable weights file", "allow_pickle=False"),
        setup=pickled_weights,
    ),
    Fault(
        "landscape-an-unfinished-run-directory",
        "landscape -w {run} -q",
        1,
        ("svmtrain fit --resume {run}",),
        setup=interrupted,
    ),
    Fault(
        "landscape-around-the-weights-of-a-diverged-run",
        "landscape -w {weights} -n 5 --grid 3 --points 3 -q",
        0,
        ("Warning: These weights come from a run that diverged in epoch 1",),
        setup=diverged,
    ),
    Fault(
        "landscape-csv-onto-an-existing-file",
        "landscape --csv {file}",
        1,
        ("{file} already exists; choose a new file name or pass --force",),
        setup=a_file("l.csv", "my table"),
    ),
    Fault(
        "landscape-plot-onto-an-existing-file",
        "landscape --plot {file}",
        1,
        ("{file} already exists; choose a new file name or pass --force",),
        setup=a_file("l.png", "my picture"),
    ),
    Fault(
        "landscape-plot-named-pdf",
        "landscape --plot {root}/l.pdf",
        2,
        ("--plot", "does not end in .png"),
    ),
    Fault(
        "landscape-csv-into-proc",
        "landscape {data} -n 5 --grid 3 --points 3 --csv /proc/svmtrain-landscape.csv -q",
        1,
        ("Cannot write /proc/svmtrain-landscape.csv", "No new file can be created in /proc"),
        setup=cached,
    ),
]

SEARCH = [
    Fault(
        "search-nothing-to-search",
        "search --out {root}/out",
        2,
        ("Nothing to search: give --lr, --reg or --grid",),
    ),
    Fault(
        "search-range-without-random",
        "search --lr 1e-7:1e-5 --out {root}/out",
        2,
        ("only --random N samples", "--lr 1e-7,1e-6"),
    ),
    Fault(
        "search-random-with-lists-only",
        "search --random 3 --lr 1e-7,1e-6 --out {root}/out",
        2,
        ("would repeat the same 2 combinations",),
    ),
    Fault(
        "search-lr-repeated",
        "search --lr 1e-7,1e-7 --out {root}/out",
        2,
        ("--lr '1e-7,1e-7' lists 1e-7 twice",),
    ),
    Fault(
        "search-grid-unknown-key",
        "search --grid optim.lr=1 --out {root}/out",
        2,
        ("'optim.lr' is not a config key; the keys of optim",),
    ),
    Fault(
        "search-grid-without-values",
        "search --grid optim.momentum --out {root}/out",
        2,
        ("expected KEY=V1,V2,...",),
    ),
    Fault(
        "search-grid-twice-the-same-key",
        "search --lr 1e-6 --grid optim.learning_rate=1e-5 --out {root}/out",
        2,
        ("searched twice",),
    ),
    Fault(
        "search-jobs-zero",
        "search --lr 1e-6 --jobs 0 --out {root}/out",
        2,
        ("'--jobs'", "0 is not in the range x>=1"),
    ),
    Fault(
        "search-a-trial-with-a-bad-value",
        "search {data} --grid optim.momentum=0,2 --out {root}/out",
        1,
        ("Trial 2 (optim.momentum=2): optim.momentum must be a float in [0, 1).",),
        setup=cached,
    ),
    Fault(
        "search-out-onto-the-users-files",
        "search {data} --lr 1e-6 --epochs 1 -j 1 --out {mine} -q",
        1,
        ("{mine} is not empty", "Choose a new or empty directory with --out"),
        setup=both(cached, users_files),
    ),
    Fault(
        "search-out-onto-a-finished-search",
        "search {data} --lr 1e-6 --epochs 1 -j 1 --out {root}/out -q",
        1,
        ("{root}/out already holds a search's results; choose another --out",),
        setup=searched,
    ),
    Fault(
        "search-every-trial-diverges",
        "search {data} --lr 1e9,1e10 --epochs 1 -j 1 --out {root}/out -q",
        1,
        ("Every trial diverged, so there is no best.yaml", "Search smaller learning rates"),
        setup=cached,
        creates=("out", "out/*"),
    ),
    Fault(
        "search-plot-onto-an-existing-file",
        "search --lr 1e-6 --plot {file} --out {root}/out",
        1,
        ("{file} already exists; choose a new file name or pass --force",),
        setup=a_file("g.png", "my picture"),
    ),
    Fault(
        "search-random-a-billion-trials",
        "search --lr 1e-9:1e-5 --random 1000000000 --out {root}/out",
        2,
        ("1,000,000,000 trials", "at most 100,000 in one search", "lower --random"),
        process=True,  # before the fix, it built every trial first: minutes and gigabytes
        issue="19.6",
    ),
    Fault(
        "search-random-a-billion-trials-with-yes",
        "search --lr 1e-9:1e-5 --random 1000000000 --yes --out {root}/out",
        2,
        ("1,000,000,000 trials", "at most 100,000 in one search"),
        process=True,
        issue="19.6",
    ),
    Fault(
        "search-halving-with-enough-trials-but-too-few-epochs",
        "search --lr 1e-7,1e-6,1e-5 --halving --epochs 1 --out {root}/out",
        2,
        ("needs trials of at least 3 epochs (got 1; set --epochs)",),
        never=("at least 3 trials (got 3)",),
        issue="19.36",
    ),
    Fault(
        "search-two-quick-ctrl-cs",
        TWO_TRIALS_ONE_LONG + " -j 1",
        130,
        ("Interrupted after 1 of 2 trials", "their results are in {root}/out"),
        setup=cached,
        during=once_a_trial_finished(two_quick_ctrl_cs),
        creates=SEARCH_OUT,
        process=True,
        issue="19.38",
    ),
    Fault(
        "search-a-grid-of-90000-trials",
        "search --lr 1e-9:1e-5 --random 90000 --out {root}/out",
        2,
        ("90,000 trials, more than 1,000", "--yes"),
    ),
]

DASK = [
    Fault(
        "search-dask-scheduler-that-never-answers",
        "search --lr 1e-7 --scheduler {scheduler} --out {root}/out",
        1,
        ("Cannot reach the Dask scheduler at {scheduler} within 10 s", "no answer"),
        setup=silent_port,
        process=True,  # it used to wait for ever
        slow=True,
        issue="19.4",
    ),
    Fault(
        "search-dask-scheduler-at-an-http-port",
        "search --lr 1e-7 --scheduler {scheduler} --out {root}/out",
        1,
        ("Cannot reach the Dask scheduler at {scheduler} within 10 s",),
        never=("Exception ignored",),
        setup=http_port,
        process=True,
        slow=True,
        issue="19.4",
    ),
    Fault(
        "search-dask-scheduler-file-not-json",
        "search --lr 1e-7 --scheduler-file {file} --out {root}/out",
        1,
        ("{file} is not a readable scheduler file", "dask scheduler --scheduler-file"),
        never=("Exception ignored",),
        setup=a_file("scheduler.json", "not json\n"),
        process=True,
        issue="19.15",
    ),
    Fault(
        "search-dask-scheduler-file-without-an-address",
        "search --lr 1e-7 --scheduler-file {file} --out {root}/out",
        1,
        ("The scheduler file {file} names no scheduler address",),
        never=("Exception ignored",),
        setup=a_file("scheduler.json", '{"type": "Scheduler"}\n'),
        process=True,
        issue="19.15",
    ),
    Fault(
        "search-dask-scheduler-file-with-a-number-for-its-address",
        "search --lr 1e-7 --scheduler-file {file} --out {root}/out",
        1,
        ("The scheduler file {file} names no scheduler address", '"address" must be a string'),
        never=("Exception ignored",),
        setup=a_file("scheduler.json", '{"address": 8786}\n'),
        process=True,
        issue="19.15",
    ),
    Fault(
        "search-dask-scheduler-not-an-address",
        "search --lr 1e-7 --scheduler tcp://127.0.0.1:notaport --out {root}/out",
        1,
        ("'tcp://127.0.0.1:notaport' is not the address of a Dask scheduler", "tcp://HOST:PORT"),
        never=("Exception ignored",),
        process=True,
        issue="19.15",
    ),
    Fault(
        "search-dask-every-worker-dies",
        TWO_TRIALS_ONE_LONG + " --scheduler {scheduler}",
        1,
        (
            "Every worker of the Dask scheduler at {scheduler} has gone (none for 30 s)",
            "1 of 2 trials finished; their results are in {root}/out",
        ),
        setup=dask_cluster,
        during=once_a_trial_finished(kill_processes(lambda s: s.cluster.processes[1:])),
        creates=SEARCH_OUT,
        process=True,
        slow=True,
        issue="19.5",
    ),
    Fault(
        "search-dask-scheduler-killed",
        TWO_TRIALS_ONE_LONG + " --scheduler {scheduler}",
        1,
        (
            "Lost the connection to the Dask scheduler at {scheduler}",
            "1 of 2 trials finished; their results are in {root}/out",
        ),
        setup=dask_cluster,
        during=once_a_trial_finished(kill_processes(lambda s: s.cluster.processes[:1])),
        creates=SEARCH_OUT,
        process=True,
        slow=True,
        issue="19.14",
    ),
    Fault(
        "search-dask-two-quick-ctrl-cs",
        TWO_TRIALS_ONE_LONG + " --scheduler {scheduler}",
        130,
        ("Interrupted after 1 of 2 trials", "their results are in {root}/out"),
        setup=dask_cluster,
        during=once_a_trial_finished(two_quick_ctrl_cs),
        creates=SEARCH_OUT,
        process=True,
        slow=True,
        issue="19.38",
    ),
]

PLOT = [
    Fault(
        "plot-a-directory-that-is-no-run",
        "plot {root}/mine",
        1,
        ("{root}/mine", "weights.npz not found", "svmtrain fit"),
        setup=users_files,
    ),
    Fault(
        "plot-a-missing-directory",
        "plot {root}/nope",
        1,
        ("{root}/nope", "does not exist"),
    ),
    Fault(
        "plot-a-diverged-run",
        "plot {run}",
        1,
        ("The run in {run} diverged in its first epoch", "--out NEW_DIR"),
        setup=diverged,
        issue="14.8",
    ),
    Fault(
        "plot-without-matplotlib",
        "plot {run}",
        1,
        ("pip install 'svmtrain[plot]'",),
        setup=both(fitted, no_matplotlib),
    ),
    Fault(
        "plot-over-the-users-own-weights-png",
        "plot {run}",
        1,
        ("{run}/weights.png is not a picture svmtrain drew",),
        setup=both(fitted, a_file("run/weights.png", b"\x89PNG\r\n\x1a\nmine")),
    ),
    Fault(
        "plot-an-interrupted-run",
        "plot {run}",
        1,
        ("svmtrain fit --resume {run}",),
        setup=interrupted,
    ),
]

CONFIGS = [
    Fault(
        "configs-show-an-unknown-name",
        "configs show nope",
        1,
        ("'nope' is not a shipped config; the shipped configs are", "svmtrain configs list"),
    ),
    Fault(
        "configs-show-out-onto-an-existing-file",
        "configs show quick --out {file}",
        1,
        ("{file} already exists; choose a new file name",),
        setup=a_file("mine.yaml", "mine\n"),
    ),
    Fault(
        "fit-config-name-misspelt",
        "fit -c defualt --out {root}/run",
        1,
        ("Config file defualt does not exist", "Did you mean 'default'?"),
    ),
    Fault(
        "configs-show-out-dash-is-standard-output",
        "configs show quick --out -",
        0,
        ("# The default SVM on 5,000 training images",),
    ),
]

COMMAND_LINE = [
    Fault("unknown-command", "frobnicate", 2, ("No such command 'frobnicate'",)),
    Fault("unknown-option", "fit --frobnicate", 2, ("No such option '--frobnicate'",)),
    Fault("option-without-its-value", "fit --out", 2, ("Option '--out' requires an argument",)),
    Fault("unknown-data-subcommand", "data fetch", 2, ("No such command 'fetch'",)),
    Fault(
        "stdout-closed",
        "configs list",
        1,
        ("Cannot write to standard output: it is closed",),
        process=True,
        closed=(1,),
        issue="19.37",
    ),
]

FEATURE_CACHE = [
    Fault(
        "features-clear-spares-the-users-folder",
        "features clear -y --data-dir {root}/data",
        0,
        ("No feature caches to delete",),
        setup=both(cached, in_features_dir("mine"), in_features_dir(".kmeans-0123.77.tmp")),
        issue="19.1",
    ),
    Fault(
        "features-clear-an-abandoned-build-named-with-a-live-pid",
        "features clear -y --data-dir {root}/data",
        0,
        ("Deleted 1 feature cache(s)",),
        setup=both(cached, in_features_dir(".kmeans-0123456789abcdef.1.tmp", stamped=True)),
        changes=FEATURE_DIRS,
        issue="19.30",
    ),
    Fault(
        "features-build-beside-an-abandoned-build-with-this-pid",
        "features build -c kmeans {data} {kmeans} -q",
        0,
        ("features kmeans: 350 images x 144 features",),
        setup=abandoned_build_with_this_pid,
        creates=FEATURE_DIRS,
        changes=FEATURE_DIRS,
        issue="19.30",
    ),
    Fault(
        "features-build-on-a-full-disk",
        "features build -c kmeans {data} {kmeans} --data-dir {full}",
        1,
        ("features of 350 images", "GB in {full}/features", "are free", "--data-dir"),
        setup=features_on_a_full_disk,
        creates=("tmpfs-0/features",),
        changes=("tmpfs-0/*.json",),  # the data cache's stamp, of a copied archive
        process=True,  # the regression is SIGBUS: it kills the process
        issue="19.3",
    ),
    Fault(
        "features-build-larger-than-any-disk",
        "features build -c kmeans {data} --set features.kmeans.num_centroids=1000000000 "
        "--set features.kmeans.patches_sampled=1000000000",
        1,
        ("9,000,000,000 each", "GB in {root}/data/features", "features.kmeans"),
        setup=cached,
        creates=("data/features",),
        issue="19.31",
    ),
    Fault(
        "features-build-with-settings-that-learn-nan",
        "features build -c kmeans {data} --set features.kmeans.num_centroids=1 "
        "--set features.kmeans.patches_sampled=1",
        1,
        ("features.kmeans (num_centroids=1", "not finite", "nothing was kept"),
        setup=cached,
        creates=("data/features",),
        issue="19.10",
    ),
    Fault(
        "features-build-with-a-whitening-epsilon-that-flattens-everything",
        "features build -c kmeans {data} {kmeans} --set features.kmeans.whitening_epsilon=1e300",
        1,
        ("whitening_epsilon=1e+300", "the same for every image", "nothing was kept"),
        setup=lambda s: (cached(s), s.options.update(kmeans=SMALL_KMEANS)),
        creates=("data/features",),
        issue="19.11",
    ),
    Fault(
        "fit-on-a-feature-cache-with-nan-rows",
        "fit -c kmeans {data} {kmeans} --out {root}/run -q",
        1,
        ("{cache} is damaged", "not finite", "svmtrain features clear {name}"),
        setup=nan_rows_in_the_cache,
        issue="19.10",
    ),
    Fault(
        "features-info-with-a-meta-json-that-is-not-json",
        "features info --data-dir {root}/data",
        0,
        ("{name}", "damaged:", "meta.json is not a readable cache description"),
        setup=edit_meta(lambda meta: "{not json"),
        issue="19.16",
    ),
    Fault(
        "features-clear-a-cache-whose-meta-json-is-not-json",
        "features clear -y --data-dir {root}/data",
        0,
        ("Deleted 1 feature cache(s)",),
        setup=edit_meta(lambda meta: "{not json"),
        changes=FEATURE_DIRS,
        issue="19.16",
    ),
    Fault(
        "fit-on-a-cache-whose-meta-json-lacks-a-key",
        "fit -c kmeans {data} {kmeans} --out {root}/run -q",
        0,
        ("{cache} is damaged", "lacks 'dim'", "building it again", "test accuracy"),
        setup=edit_meta(lambda meta: meta.pop("dim")),
        creates=(*RUN, *FEATURE_DIRS),
        changes=FEATURE_DIRS,
        issue="19.16",
    ),
    Fault(
        "fit-with-mirrors-on-a-read-only-cache-without-their-moments",
        "fit -c kmeans {data} {kmeans} --set data.dir={ro} --out {root}/run",
        0,
        ("moments of the mirrored", "serve this run only", "Read-only", "test accuracy"),
        setup=both(feature_cache, without_the_mirrors_moments, read_only("data")),
        creates=RUN,
        issue="18",
    ),
    Fault(
        "fit-on-a-cache-whose-mirrors-file-is-empty",
        "fit -c kmeans {data} {kmeans} --out {root}/run",
        0,
        ("extracting mirrored", "test accuracy"),
        setup=both(feature_cache, emptied("train_flipped.npy")),
        creates=RUN,
        changes=(*FEATURE_DIRS, "data/features/*/*"),
        issue="18",
    ),
    Fault(
        "fit-on-a-cache-whose-train-npy-is-empty",
        "fit -c kmeans {data} {kmeans} --out {root}/run",
        0,
        ("{cache} is damaged", "building it again", "test accuracy"),
        setup=both(feature_cache, emptied("train.npy")),
        creates=(*RUN, *FEATURE_DIRS, "data/features/*/*"),
        changes=(*FEATURE_DIRS, "data/features/*/*"),
        issue="18",
    ),
    Fault(
        "fit-with-a-folder-where-the-mirrors-go",
        "fit -c kmeans {data} {kmeans} --out {root}/run",
        1,
        ("{cache}/train_flipped.npy is not a file svmtrain wrote", "move it away"),
        setup=both(feature_cache, emptied("train_flipped.npy"), folder_for("train_flipped.npy")),
        creates=RUN,
        issue="18",
    ),
    Fault(
        "fit-on-a-cache-whose-settings-were-edited",
        "fit -c kmeans {data} {kmeans} --out {root}/run -q",
        0,
        ("{cache} is damaged", "does not match its name: settings", "building it again"),
        setup=edit_meta(lambda meta: meta["settings"].update(num_centroids=0)),
        creates=(*RUN, *FEATURE_DIRS),
        changes=FEATURE_DIRS,
        issue="19.29",
    ),
    Fault(
        "features-clear-on-read-only-media",
        "features clear -y --data-dir {ro}",
        1,
        ("Cannot delete the feature cache {ro}/features/{name}", "Read-only file system"),
        setup=lambda s: (feature_cache(s), s.set(ro=s.fixture("read_only_view")(s.root / "data"))),
        issue="19.28",
    ),
    Fault(
        "features-clear-with-stdin-closed",
        "features clear --data-dir {root}/data",
        2,
        ("Delete 1 feature cache(s)", "No answer can be read", "--yes"),
        setup=feature_cache,
        process=True,
        closed=(0,),
        issue="19.24",
    ),
    Fault(
        "features-build-sighup-mid-extraction",
        "features build -c kmeans {data} " + HEAVY_KMEANS,
        129,
        ("Stopped by SIGHUP",),
        setup=cached,
        during=signal_once_there("data/features/.kmeans-*.tmp/train.npy", signal.SIGHUP),
        creates=("data/features",),
        process=True,
        issue="19.27",
    ),
]

CATALOGUE = (
    DATA
    + CONFIG
    + CONFIGS
    + FIT
    + EVALUATE
    + WEIGHTS
    + PREDICT
    + GRADCHECK
    + SWEEP
    + LANDSCAPE
    + SEARCH
    + DASK
    + PLOT
    + FEATURE_CACHE
    + COMMAND_LINE
)


# ---------------------------------------------------------------------------------------------
# The one test


def _params(rows: list[Fault]) -> list:
    params = []
    for row in rows:
        marks = [pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else []
        marks += [pytest.mark.slow] if row.slow else []
        params.append(pytest.param(row, id=row.id, marks=marks))
    return params


def test_the_catalogue_has_one_row_per_fault_and_the_readme_its_count():
    ids = [row.id for row in CATALOGUE]
    assert len(ids) == len(set(ids))
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"runs {len(CATALOGUE)} faults and bad inputs" in readme


@pytest.mark.parametrize("row", _params(CATALOGUE))
def test_fault(row: Fault, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch):
    scene = Scene(tmp_path, request, monkeypatch)
    scene.set(root=tmp_path)
    if row.setup is not None:
        row.setup(scene)
    argv = scene.argv(row.cmd)
    before, existed = _files(tmp_path), set(tmp_path.rglob("*"))
    if row.process:
        output, exit_code = _run_process(scene, row, argv)
    else:
        output, exit_code = _run_in_process(argv)
    assert exit_code == row.exit_code, output
    assert "Traceback" not in output
    assert "RuntimeWarning" not in output
    flat = " ".join(output.split())  # a message may be wrapped anywhere
    for fragment in row.says:
        assert " ".join(fragment.format(**scene.vars).split()) in flat, output
    for fragment in row.never:
        assert " ".join(fragment.format(**scene.vars).split()) not in flat, output
    _assert_nothing_lost_or_half_written(tmp_path, before, existed, row)


def _run_in_process(argv: list[str]) -> tuple[str, int]:
    """The CLI's output and exit code; a warning it lets out (which pytest would otherwise
    catch before it reaches the output) is written into the output, as a user would see it."""
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, argv)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    assert escaped is None, f"{type(escaped).__name__} escaped the CLI: {escaped}"
    shown = "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in leaked
    )
    return result.output + shown, result.exit_code


def _run_process(scene: Scene, row: Fault, argv: list[str]) -> tuple[str, int]:
    def close_streams() -> None:
        for fd in row.closed:
            os.close(fd)

    proc = subprocess.Popen(
        [*SVMTRAIN, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=close_streams if row.closed else None,
    )
    try:
        seen = (row.during(scene, proc) if row.during is not None else None) or ""
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"svmtrain {shlex.join(argv)} did not end within {TIMEOUT} s")
    return seen + out + err, proc.returncode


def _assert_nothing_lost_or_half_written(
    root: Path, before: dict[str, bytes], existed: set[Path], row: Fault
) -> None:
    """Files of ``before`` unchanged (but ``row.changes``); new paths only ``row.creates``,
    never a temporary."""
    after = _files(root)
    for name, data in before.items():
        if not _matches(name, row.changes):
            assert after.get(name) == data, f"{name} was changed or removed"
    new = [p.relative_to(root).as_posix() for p in set(root.rglob("*")) - existed]
    for name in new:
        parts = name.split("/")
        assert not any(p.startswith(".tmp") or p.endswith(".tmp") for p in parts), (
            f"{name} is a temporary left behind"
        )
        if (root / name).is_file() or not any(n.startswith(name + "/") for n in new):
            assert _matches(name, row.creates), f"{name} appeared"
