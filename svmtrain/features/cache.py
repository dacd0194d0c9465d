"""Feature matrices computed once and kept on disk beside the data, memory-mapped after.

A cache directory holds, for one archive, one extractor with its settings and one training
split (the images its state is learned from)::

    <data dir>/features/<name>-<key>/
        meta.json     what the features are: archive digest, extractor, settings, split, sizes
        state.npz     the extractor's learned state (plain arrays, no pickle)
        moments.npz   mean and std of each feature over the training split, float64
        train.npy     features of every image of the archive's training batches, (N, dim)
        test.npy      features of every test image, (M, dim)
        .svmtrain     the stamp: svmtrain made this directory; its build holds a lock on it

``key`` is a digest of everything in meta.json that decides the numbers. A build writes into
a hidden sibling ``.<name>-<key>.<random>.tmp``, stamped and locked (``flock``) for as long
as the build runs, and renames it into place only when every file is complete and flushed, so
a directory with the final name is always a finished cache, and an interrupted build leaves at
most a hidden temporary directory that no run reads and whose lock is free (``clear`` deletes
it; the next build of the same cache too). Nothing without the stamp is ever deleted: a
user's own folder under ``features/`` is not a cache.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from svmtrain.core.objective import release_pages
from svmtrain.errors import ConfigError, DataError, SvmtrainError
from svmtrain.features import EXTRACTORS, make_extractor
from svmtrain.features.base import Extractor
from svmtrain.features.progress import Phases
from svmtrain.features.sizes import MOMENT_BYTES, build_needs, check_room
from svmtrain.fileio import fsync_path, read_json, read_npz
from svmtrain.progress import notify

FEATURES_DIR = "features"
FORMAT = 1  # bump when the files' layout changes (an extractor's numbers: its own version)
DTYPE = np.float32
_WRITE_ROWS = 2048  # images extracted between two flushes of the memory map
_TMP_SUFFIX = ".tmp"
STAMP = ".svmtrain"  # in every directory a build made; locked while the build runs
_META_BYTES = 1 << 20  # a meta.json is a few hundred bytes; more is not one
# meta.json's keys a reader relies on, and the type of each
_META_TYPES = {
    "extractor": str,
    "settings": dict,
    "archive_sha256": str,
    "fit_images": list,
    "dim": int,
    "train_images": int,
    "test_images": int,
}
_LEGACY_IDENTITY = ("format", "archive_sha256", "extractor", "settings", "fit_images", "dtype")


@dataclass(frozen=True, eq=False)
class FeatureCache:
    """A finished cache, memory-mapped: ``train`` (N, dim) and ``test`` (M, dim) float32 are
    read-only; ``mean`` and ``std`` (dim,) float64 are over the training split's rows."""

    path: Path
    meta: dict
    extractor: Extractor
    train: np.ndarray
    test: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def cache_key(sha256: str, name: str, settings: dict, train: slice) -> tuple[str, dict]:
    """(directory name, identity) of the features of archive ``sha256`` by extractor ``name``
    with ``settings``, learned from training images ``train`` (a slice with start and stop)."""
    identity = {
        "format": FORMAT,
        "archive_sha256": sha256,
        "extractor": name,
        "settings": settings,
        "fit_images": [train.start or 0, train.stop],
        "dtype": np.dtype(DTYPE).name,
    }
    version = EXTRACTORS[name].version
    if version > 1:  # the numbers changed: caches of older versions are not read
        identity["extractor_version"] = version
    return f"{name}-{_digest(identity)}", identity


def _digest(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def features_root(data_dir: Path) -> Path:
    return Path(data_dir) / FEATURES_DIR


def load_or_build(
    dataset,
    name: str,
    settings: dict,
    train: slice,
    data_dir: Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> FeatureCache:
    """The cached features of ``dataset`` (a CIFAR10), built first if not cached.

    The extractor learns from ``dataset.x_train[train]`` only, with
    ``np.random.default_rng(settings' seed, else 0)``. ``log`` receives one line per stage; a
    damaged cache built again is a notice (:func:`svmtrain.progress.notify`). Raises
    ConfigError for bad or degenerate settings, DataError if the cache cannot be written or
    read, or a directory svmtrain did not make is in its place.
    """
    extractor = make_extractor(name, settings)
    dirname, identity = cache_key(dataset.sha256, name, extractor.settings_dict(), train)
    root = features_root(data_dir)
    final = root / dirname
    if final.is_dir():
        try:
            return open_cache(final, identity)
        except CacheDamaged as damaged:
            if not _is_ours(final):
                raise DataError(
                    f"{final} is in the way of a feature cache, and svmtrain did not make it; "
                    "move it elsewhere (or choose another --data-dir)."
                ) from None
            notify(f"The feature cache {final} is damaged ({damaged.why}); building it again.")
    phases = Phases(f"features {name}", bar=progress, log=log)
    needs = build_needs(extractor, train.stop - (train.start or 0), rows_of(dataset))
    check_room(needs, root, extractor)
    phases.say(f"building the cache in {final}: {needs.text()}")
    try:
        if final.is_dir():  # damaged, and ours (else refused above)
            _remove(final)
        root.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(root, dirname)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dirname}.", suffix=_TMP_SUFFIX, dir=root))
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from others
    except OSError as err:
        raise _unwritable(root, err) from None
    try:
        with _stamped(tmp):
            _build(dataset, extractor, identity, train, tmp, phases)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # else another process finished the same cache first
                    raise
            fsync_path(root)
    except OSError as err:
        raise _unwritable(root, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return open_cache(final, identity)


@contextmanager
def _stamped(tmp: Path) -> Iterator[None]:
    """Stamp ``tmp`` as svmtrain's (:data:`STAMP`, holding this PID) and hold an exclusive
    lock on the stamp for the block: while it is held the build is running; once the process
    is gone, by any death, the lock is free and the directory is an abandoned build."""
    fresh = tmp / f"{STAMP}.new"
    fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(fresh, tmp / STAMP)  # the stamp appears locked: never seen abandoned
        yield
    finally:
        os.close(fd)


def _build(
    dataset, extractor: Extractor, identity: dict, train: slice, tmp: Path, phases: Phases
) -> None:
    total = rows_of(dataset)
    seed = int(getattr(extractor.settings, "seed", 0))
    started = time.perf_counter()
    with np.errstate(all="ignore"):  # degenerate settings give NaN: refused just below
        extractor.fit(dataset.x_train[train], np.random.default_rng(seed), phases)
    fit_seconds = time.perf_counter() - started
    _check_state(extractor)
    np.savez(tmp / "state.npz", **extractor.state)
    timings = {"fit_seconds": round(fit_seconds, 3)}
    started = time.perf_counter()
    with phases.phase("extracting", total, "images", rate=True) as bar:
        for split, images in (("train", dataset.x_train), ("test", dataset.x_test)):
            out = allocated_memmap(tmp / f"{split}.npy", (len(images), extractor.dim))
            write_in_blocks(extractor, images, out, bar.update)
            del out
    seconds = time.perf_counter() - started
    timings |= {
        "transform_seconds": round(seconds, 3),
        "images_per_second": round(total / seconds, 1),
    }
    train_rows = np.load(tmp / "train.npy", mmap_mode="r")[train]
    with phases.phase("moments", len(train_rows), "images"):
        mean, std = feature_moments(train_rows)
        _check_features(extractor, mean, std, np.load(tmp / "test.npy", mmap_mode="r"))
    np.savez(tmp / "moments.npz", mean=mean, std=std)
    meta = {
        **identity,
        "dim": extractor.dim,
        "train_images": len(dataset.x_train),
        "test_images": len(dataset.x_test),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **timings,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    for path in tmp.iterdir():
        fsync_path(path)
    fsync_path(tmp)


def allocated_memmap(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A new .npy of ``shape`` float32, memory-mapped for writing, with its blocks allocated
    on disk first: a full disk is then an OSError here, not a SIGBUS later."""
    out = open_memmap(path, mode="w+", dtype=DTYPE, shape=shape)
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):  # cannot tell: write and see
            del out
            raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        os.close(fd)
    return out


def rows_of(dataset) -> int:
    """Images a cache of ``dataset`` holds: every training and test image."""
    return len(dataset.x_train) + len(dataset.x_test)


def write_in_blocks(
    extractor: Extractor,
    images: np.ndarray,
    out: np.memmap,
    on_chunk: Callable[[int], object],
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """The features of ``images`` into the memory map ``out``, a block of rows at a time, each
    block flushed and its pages let go of (they stay in the OS's cache, not in this process's
    memory: a 2 GB cache costs a build 2 GB of resident memory otherwise). ``prepare`` maps a
    block of images before extraction (e.g. mirrors them)."""
    for start in range(0, len(images), _WRITE_ROWS):
        block = images[start : start + _WRITE_ROWS]
        block = block if prepare is None else prepare(block)
        extractor.transform(block, out=out[start : start + len(block)], on_chunk=on_chunk)
        out.flush()
        release_pages(out)


def _degenerate(extractor: Extractor, what: str) -> ConfigError:
    settings = ", ".join(f"{k}={v}" for k, v in extractor.settings_dict().items())
    return ConfigError(
        f"features.{extractor.name} ({settings}) gives {what}, so nothing could be learned from "
        f"them; nothing was kept. Change the features.{extractor.name} settings (e.g. the "
        "defaults of `svmtrain configs show kmeans` or `hog`)."
    )


def _check_state(extractor: Extractor) -> None:
    """ConfigError if the state learned is not all finite numbers (degenerate settings)."""
    for key, array in extractor.state.items():
        if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
            raise _degenerate(extractor, f"a learned {key} that is not finite (NaN or inf)")


def _check_features(
    extractor: Extractor, mean: np.ndarray, std: np.ndarray, test: np.ndarray
) -> None:
    """ConfigError if the features are not all finite or are all constant over the training
    split (mean, std: their moments; test: the test rows)."""
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and all_finite(test)):
        raise _degenerate(extractor, "features that are not finite (NaN or inf)")
    if not std.any():
        raise _degenerate(extractor, "features that are the same for every image")


def all_finite(rows: np.ndarray) -> bool:
    """Whether every value of ``rows`` (N, dim) float32, e.g. a memory map, is finite, read a
    few rows at a time. Exact: a float64 sum of finite float32 values cannot overflow, and a
    NaN or an inf anywhere makes the sum NaN or inf."""
    step = _block_rows(rows)
    for start in range(0, len(rows), step):
        total = rows[start : start + step].sum(dtype=np.float64)
        release_pages(rows)
        if not np.isfinite(total):
            return False
    return True


def _block_rows(rows: np.ndarray) -> int:
    """Rows of ``rows`` (N, dim) read at a time: MOMENT_BYTES of float64 (2,048 rows of 1.6
    million columns were 26 GB)."""
    return max(1, MOMENT_BYTES // (8 * rows.shape[1]))


def feature_moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof=0) of each column of rows (N, dim), summed in float64
    chunk by chunk. Returns two (dim,) float64."""
    total = np.zeros(rows.shape[1])
    total_sq = np.zeros(rows.shape[1])
    step = _block_rows(rows)
    for start in range(0, len(rows), step):
        chunk = np.asarray(rows[start : start + step], dtype=np.float64)
        release_pages(rows)
        total += chunk.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", chunk, chunk)
    mean = total / len(rows)
    return mean, np.sqrt(np.maximum(total_sq / len(rows) - mean**2, 0.0))


class CacheDamaged(DataError):
    """A cache directory that cannot be used as it is: ``path`` and ``why``. The message says
    to delete it with ``svmtrain features clear NAME``."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"The feature cache {path} is damaged ({why}); delete it with "
            f"`svmtrain features clear {path.name}` and build it again."
        )
        self.path, self.why = path, why


def read_meta(path: Path) -> dict:
    """The meta.json of the cache directory ``path``, checked: a JSON object of at most
    _META_BYTES with every key a reader needs, of its type. Raises :class:`CacheDamaged`."""
    try:
        meta = read_json(path / "meta.json", "cache description", DataError, "", _META_BYTES)
    except DataError as err:
        raise CacheDamaged(path, str(err).strip()) from None
    for key, kind in _META_TYPES.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            what = "lacks" if key not in meta else "has a bad"
            raise CacheDamaged(path, f"its meta.json {what} {key!r}")
    if meta["dim"] < 1 or min(meta["train_images"], meta["test_images"]) < 0:
        raise CacheDamaged(path, "its meta.json gives impossible sizes")
    return meta


def open_cache(path: Path, identity: dict | None = None) -> FeatureCache:
    """A finished cache directory, memory-mapped. ``identity``: what it must hold (as
    :func:`cache_key` gives it); a meta.json that says otherwise was edited. Raises
    :class:`CacheDamaged` if any part is missing, damaged or not what its name says."""
    meta = read_meta(path)
    if identity is not None:
        edited = sorted(k for k, v in identity.items() if meta.get(k) != v)
        if edited:
            raise CacheDamaged(path, f"its meta.json does not match its name: {', '.join(edited)}")
    try:
        state = read_npz(path / "state.npz", "extractor state", DataError, "")
        extractor = type(make_extractor(meta["extractor"], meta["settings"])).from_state(
            meta["settings"], state
        )
        moments = read_npz(path / "moments.npz", "moments file", DataError, "")
        mean, std = moments["mean"], moments["std"]
        train = np.load(path / "train.npy", mmap_mode="r")
        test = np.load(path / "test.npy", mmap_mode="r")
    except (SvmtrainError, OSError, ValueError, KeyError, TypeError, EOFError) as err:
        raise CacheDamaged(path, str(err).strip() or f"a file of it is empty ({err!r})") from None
    expected = {
        "train": (meta["train_images"], meta["dim"]),
        "test": (meta["test_images"], meta["dim"]),
    }
    for split, array in (("train", train), ("test", test)):
        if array.shape != expected[split] or array.dtype != DTYPE:
            raise CacheDamaged(path, f"{split}.npy is {array.shape} {array.dtype}")
    for name, values in (("mean", mean), ("std", std)):
        if values.shape != (meta["dim"],) or not np.isfinite(values).all():
            raise CacheDamaged(path, f"its moments' {name} is not {meta['dim']} finite numbers")
    return FeatureCache(path, meta, extractor, train, test, mean, std)


def list_caches(data_dir: Path) -> list[dict]:
    """Every cache directory svmtrain made under ``data_dir`` (a folder it did not make is
    not one): finished ones with their meta.json, damaged ones with why, unfinished ones (a
    build running or interrupted) marked so; each with its path, size in bytes and whether a
    process writes into it now (``building``: a build, or mirrored images being added)."""
    root = features_root(data_dir)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if not (path.is_dir() and not path.is_symlink() and _is_ours(path)):
            continue
        entry = {"path": str(path), "bytes": _size(path), "finished": _is_finished(path)}
        entry["building"] = _building(path)  # finished: its mirrored images being added
        if entry["finished"]:
            try:
                entry["meta"] = read_meta(path)
            except CacheDamaged as damaged:
                entry["damaged"] = damaged.why
        found.append(entry)
    return found


def remove_caches(paths: list[str]) -> int:
    """Delete these cache directories (as :func:`list_caches` gives them). Returns bytes freed.

    Raises DataError for a directory svmtrain did not make (it is left alone) or one that
    cannot be deleted (a read-only disk), saying what was deleted before it."""
    freed = 0
    for done, path in enumerate(map(Path, paths)):
        if not _is_ours(path):
            raise DataError(f"{path} was not made by svmtrain; it is left alone.")
        size = _size(path)
        try:
            _remove(path)
        except OSError as err:
            before = f"; {done} deleted before it ({freed / 1e6:,.1f} MB)" if done else ""
            raise DataError(
                f"Cannot delete the feature cache {path}: {err.strerror or err}{before}. "
                "Check that the data directory is writable."
            ) from None
        freed += size
    return freed


def _remove(path: Path) -> None:
    """Delete a cache directory; its stamp goes last, so a half-deleted one is still ours."""
    for child in path.iterdir():
        if child.name == STAMP:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.rmtree(path)


def _is_ours(path: Path) -> bool:
    """Whether svmtrain made the directory ``path``: its stamp, or (a cache built before
    stamps) a name that is the digest of what its meta.json says it holds."""
    if (path / STAMP).is_file():
        return True
    match = re.fullmatch(r"([a-z_]+)-([0-9a-f]{16})", path.name)
    if match is None:
        return False
    try:
        meta = read_json(path / "meta.json", "", DataError, "", _META_BYTES)
        identity = {key: meta[key] for key in _LEGACY_IDENTITY}
        if "extractor_version" in meta:
            identity["extractor_version"] = meta["extractor_version"]
    except (DataError, KeyError, TypeError):
        return False
    return identity["extractor"] == match[1] and _digest(identity) == match[2]


def _is_finished(path: Path) -> bool:
    return not path.name.startswith(".") and (path / "meta.json").is_file()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _building(path: Path) -> bool:
    """Whether a build still runs in the temporary directory ``path``: its stamp is locked."""
    return held(path / STAMP)


def held(path: Path) -> bool:
    """Whether another open file holds an ``flock`` on the file ``path`` (False if it is
    gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove_abandoned(root: Path, dirname: str) -> None:
    """Remove temporary directories of builds of ``dirname`` whose process is gone."""
    stale: Iterator[Path] = root.glob(f".{dirname}.*{_TMP_SUFFIX}")
    for path in stale:
        if _is_ours(path) and not _building(path):
            shutil.rmtree(path, ignore_errors=True)


def _unwritable(root: Path, err: OSError) -> DataError:
    return DataError(
        f"Cannot write the feature cache in {root}: {err.strerror or err}. "
        f"Free some space or choose another --data-dir."
    )
