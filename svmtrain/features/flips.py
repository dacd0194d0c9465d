"""The features of the training images mirrored left to right, kept beside a feature cache.

``features.flip`` trains on every training image and its mirror image (CIFAR-10's usual
augmentation: a mirrored cat is a cat). The mirrored images are never validation or test
images. Their features go in ``train_flipped.npy`` inside the cache directory they belong to,
row i the mirror of ``train.npy``'s row i, so the extractor state and the cache key are shared;
the moments of the mirrored training split go beside them (``train_flipped_moments.npz``), so
that training standardises with the moments of the rows it trains on: a feature almost never
active in the training images but active in their mirrors would otherwise be divided by a
standard deviation near 0. Each file is written under a hidden temporary name and renamed into
place when complete, by a process holding an exclusive lock on the cache's stamp; the next
process to take it removes the temporary files of one that died.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from svmtrain.errors import DataError, SvmtrainError
from svmtrain.features.base import as_planes
from svmtrain.features.cache import (
    DTYPE,
    STAMP,
    FeatureCache,
    allocated_memmap,
    feature_moments,
    write_in_blocks,
)
from svmtrain.features.progress import Phases
from svmtrain.features.sizes import Needs, check_room, human_bytes
from svmtrain.fileio import advice, atomic_write, fsync_path, read_npz

FLIPPED = "train_flipped.npy"
MOMENTS = "train_flipped_moments.npz"


def mirrored(images: np.ndarray) -> np.ndarray:
    """(n, 3072) uint8 images as stored -> the same images mirrored left to right, (n, 3072)."""
    return np.ascontiguousarray(as_planes(images)[:, :, :, ::-1]).reshape(len(images), -1)


def mirrors(
    cache: FeatureCache, dataset, phases: Phases
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, mean, std): rows (N, dim), a read-only memory map of the features of every
    training image of ``dataset`` (the archive ``cache`` was built from) mirrored; mean and std
    (dim,) float64 of the training split's rows and their mirrors' together. Each is computed
    and kept first if need be, under an exclusive lock on the cache's stamp, so that `features
    clear` leaves the cache alone meanwhile and a second process waits instead of computing
    them too. Raises ConfigError when the disk cannot hold them, DataError when they cannot be
    written or something not svmtrain's is in their place."""
    with _locked(cache.path, phases):
        rows = _rows(cache, dataset, phases)
        return rows, *_moments(cache, rows, phases)


@contextmanager
def _locked(directory: Path, phases: Phases) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the stamp of the cache ``directory`` for the block (none
    for a cache from before stamps), and remove the temporary files of writers gone."""
    try:
        fd = os.open(directory / STAMP, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            phases.say("waiting for another svmtrain process adding the mirrored images")
            fcntl.flock(fd, fcntl.LOCK_EX)
        for name in (FLIPPED, MOMENTS):
            for stale in directory.glob(f".{name}.*.tmp"):  # their writers held this lock
                with suppress(OSError):
                    stale.unlink()
        yield
    finally:
        os.close(fd)


def _rows(cache: FeatureCache, dataset, phases: Phases) -> np.ndarray:
    """The mirrored rows of :func:`mirrors`, extracted and kept first if missing or damaged."""
    path, shape = cache.path / FLIPPED, cache.train.shape
    if os.path.lexists(path) and not path.is_file():
        raise DataError(
            f"{path} is not a file svmtrain wrote (svmtrain keeps the mirrored images' features "
            "there); move it away and run again."
        )
    try:
        if path.is_file():
            try:
                flipped = np.load(path, mmap_mode="r")
                if flipped.shape == shape and flipped.dtype == DTYPE:
                    return flipped
            except (OSError, ValueError, EOFError):
                pass
            path.unlink()  # damaged (e.g. truncated): built again below
        needs = Needs(shape[0], shape[1], shape[0] * shape[1] * np.dtype(DTYPE).itemsize, 0)
        check_room(needs, cache.path, cache.extractor)
        phases.say(
            f"mirrored training images: {shape[0]:,} images x {shape[1]:,} features, "
            f"{human_bytes(needs.disk)} on disk"
        )
        tmp = cache.path / f".{FLIPPED}.{os.getpid()}.tmp"
        try:
            out = allocated_memmap(tmp, shape)
            with phases.phase("extracting mirrored", shape[0], "images", rate=True) as bar:
                write_in_blocks(cache.extractor, dataset.x_train, out, bar.update, mirrored)
            del out
            fsync_path(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_path(cache.path)
    except OSError as err:
        raise DataError(f"Cannot write {path}: {err.strerror or err}. {advice(err)}") from None
    return np.load(path, mmap_mode="r")


def _moments(
    cache: FeatureCache, flipped: np.ndarray, phases: Phases
) -> tuple[np.ndarray, np.ndarray]:
    """The pooled (mean, std) of :func:`mirrors`: the mirrors' moments are computed once and
    kept (where the cache cannot be written, computed for each run)."""
    path = cache.path / MOMENTS
    try:
        saved = read_npz(path, "moments file", DataError, "", names=("mean", "std"))
        mean, std = saved["mean"], saved["std"]
        if not all(a.shape == cache.mean.shape and np.isfinite(a).all() for a in (mean, std)):
            raise DataError(f"{path} does not hold {cache.mean.shape[0]} finite moments")
    except (DataError, KeyError):  # missing (a cache from before) or damaged: computed again
        start, stop = cache.meta["fit_images"]
        with phases.phase("moments of the mirrored", stop - start, "images"):
            mean, std = feature_moments(flipped[start:stop])
        try:
            with atomic_write(path) as f:
                np.savez(f, mean=mean, std=std)
        except SvmtrainError as err:  # e.g. a read-only cache: right for this run, not kept
            phases.say(f"the mirrored images' moments serve this run only: {err}")
    shift = (cache.mean - mean) / 2  # two halves of equal size: pooled mean and variance
    return cache.mean - shift, np.sqrt((cache.std**2 + std**2) / 2 + shift**2)
