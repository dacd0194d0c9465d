"""Feature matrices computed once and kept on disk beside the data, memory-mapped after.

A cache directory holds, for one archive, one extractor with its settings and one training
split (the images its state is learned from)::

    <data dir>/features/<name>-<key>/
        meta.json     what the features are: archive digest, extractor, settings, split, sizes
        state.npz     the extractor's learned state (plain arrays, no pickle)
        moments.npz   mean and std of each feature over the training split, float64
        train.npy     features of every image of the archive's training batches, (N, dim)
        test.npy      features of every test image, (M, dim)

``key`` is a digest of everything in meta.json that decides the numbers. A build writes into
a hidden sibling ``.<name>-<key>.<pid>.tmp`` and renames it into place only when every file is
complete and flushed, so a directory with the final name is always a finished cache, and an
interrupted build leaves at most a hidden temporary directory that no run reads (``clear``
deletes it; the next build removes it once its process is gone).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from svmtrain.data.preprocess import _release as release_pages
from svmtrain.errors import DataError
from svmtrain.features import make_extractor
from svmtrain.features.base import Extractor
from svmtrain.features.progress import Phases
from svmtrain.features.sizes import MOMENT_BYTES, build_needs, check_room
from svmtrain.fileio import fsync_path

FEATURES_DIR = "features"
FORMAT = 2  # bump when the files' layout or an extractor's numbers change
DTYPE = np.float32
_TMP_SUFFIX = ".tmp"
_WRITE_ROWS = 2048  # images extracted between two flushes of the memory map


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
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{name}-{digest[:16]}", identity


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
    ``np.random.default_rng(settings' seed, else 0)``. ``log`` receives one line per stage.
    Raises ConfigError for bad settings, DataError if the cache cannot be written or read.
    """
    extractor = make_extractor(name, settings)
    dirname, identity = cache_key(dataset.sha256, name, extractor.settings_dict(), train)
    root = features_root(data_dir)
    final = root / dirname
    if final.is_dir():
        try:
            return open_cache(final)
        except DataError:
            shutil.rmtree(final, ignore_errors=True)  # damaged: built again below
    phases = Phases(f"features {name}", bar=progress, log=log)
    rows = len(dataset.x_train) + len(dataset.x_test)
    needs = build_needs(extractor, train.stop - (train.start or 0), rows)
    check_room(needs, root, f"features {name} with these settings")
    phases.say(f"building the cache in {final}: {needs.text()}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(root, dirname)
        tmp = root / f".{dirname}.{os.getpid()}{_TMP_SUFFIX}"
        tmp.mkdir()
    except OSError as err:
        raise _unwritable(root, err) from None
    try:
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
    return open_cache(final)


def _build(
    dataset, extractor: Extractor, identity: dict, train: slice, tmp: Path, phases: Phases
) -> None:
    seed = int(getattr(extractor.settings, "seed", 0))
    started = time.perf_counter()
    extractor.fit(dataset.x_train[train], np.random.default_rng(seed), phases)
    fit_seconds = time.perf_counter() - started
    np.savez(tmp / "state.npz", **extractor.state)
    timings = {"fit_seconds": round(fit_seconds, 3)}
    total = len(dataset.x_train) + len(dataset.x_test)
    started = time.perf_counter()
    with phases.phase("extracting", total, "images", rate=True) as bar:
        for split, images in (("train", dataset.x_train), ("test", dataset.x_test)):
            out = open_memmap(
                tmp / f"{split}.npy", mode="w+", dtype=DTYPE, shape=(len(images), extractor.dim)
            )
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


def feature_moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof=0) of each column of rows (N, dim), summed in float64
    chunk by chunk. Returns two (dim,) float64."""
    total = np.zeros(rows.shape[1])
    total_sq = np.zeros(rows.shape[1])
    step = max(1, MOMENT_BYTES // (8 * rows.shape[1]))  # rows of float64 at a time
    for start in range(0, len(rows), step):
        chunk = np.asarray(rows[start : start + step], dtype=np.float64)
        release_pages(rows)
        total += chunk.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", chunk, chunk)
    mean = total / len(rows)
    return mean, np.sqrt(np.maximum(total_sq / len(rows) - mean**2, 0.0))


def open_cache(path: Path) -> FeatureCache:
    """A finished cache directory, memory-mapped; DataError if any part is missing or damaged."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        with np.load(path / "state.npz", allow_pickle=False) as state:
            extractor = type(make_extractor(meta["extractor"], meta["settings"])).from_state(
                meta["settings"], dict(state)
            )
        with np.load(path / "moments.npz", allow_pickle=False) as moments:
            mean, std = moments["mean"], moments["std"]
        train = np.load(path / "train.npy", mmap_mode="r")
        test = np.load(path / "test.npy", mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"The feature cache {path} is damaged ({err}); delete it with "
            f"`svmtrain features clear` and build it again."
        ) from None
    expected = {
        "train": (meta["train_images"], meta["dim"]),
        "test": (meta["test_images"], meta["dim"]),
    }
    for split, array in (("train", train), ("test", test)):
        if array.shape != expected[split] or array.dtype != DTYPE:
            raise DataError(
                f"The feature cache {path} is damaged ({split}.npy is "
                f"{array.shape} {array.dtype}); delete it with "
                f"`svmtrain features clear` and build it again."
            )
    return FeatureCache(path, meta, extractor, train, test, mean, std)


def list_caches(data_dir: Path) -> list[dict]:
    """Every cache directory under ``data_dir``: finished ones with their meta.json, unfinished
    ones (a build running or interrupted) marked so; each with its path and size in bytes."""
    root = features_root(data_dir)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if not path.is_dir():
            continue
        entry = {"path": str(path), "bytes": _size(path), "finished": _is_finished(path)}
        if entry["finished"]:
            entry["meta"] = json.loads((path / "meta.json").read_text())
        else:
            entry["building"] = _owner_alive(path)
        found.append(entry)
    return found


def remove_caches(paths: list[str]) -> int:
    """Delete these cache directories (as :func:`list_caches` gives them). Returns bytes freed."""
    freed = 0
    for path in paths:
        freed += _size(Path(path))
        shutil.rmtree(path, ignore_errors=True)
    return freed


def _is_finished(path: Path) -> bool:
    return not path.name.startswith(".") and (path / "meta.json").is_file()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _owner_pid(path: Path) -> int | None:
    """The pid in a temporary directory's name ``.<dirname>.<pid>.tmp``."""
    parts = path.name.removesuffix(_TMP_SUFFIX).rsplit(".", 1)
    return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None


def _owner_alive(path: Path) -> bool:
    pid = _owner_pid(path)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned(root: Path, dirname: str) -> None:
    """Remove temporary directories of builds of ``dirname`` whose process is gone."""
    stale: Iterator[Path] = root.glob(f".{dirname}.*{_TMP_SUFFIX}")
    for path in stale:
        if not _owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)


def _unwritable(root: Path, err: OSError) -> DataError:
    return DataError(
        f"Cannot write the feature cache in {root}: {err.strerror or err}. "
        f"Free some space or choose another --data-dir."
    )
