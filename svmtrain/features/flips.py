"""The features of the training images mirrored left to right, kept beside a feature cache.

``features.flip`` trains on every training image and its mirror image (CIFAR-10's usual
augmentation: a mirrored cat is a cat). The mirrored images are never validation or test
images. Their features go in ``train_flipped.npy`` inside the cache directory they belong to,
row i the mirror of ``train.npy``'s row i, so the extractor state and the cache key are shared;
the moments of the mirrored training split go beside them (``train_flipped_moments.npz``), so
that training standardises with the moments of the rows it trains on: a feature almost never
active in the training images but active in their mirrors would otherwise be divided by a
standard deviation near 0. Each file is written under a hidden temporary name and renamed into
place when complete; a temporary file whose process is gone (its lock free) is removed by the
next build.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np

from svmtrain.errors import DataError, SvmtrainError
from svmtrain.features.base import as_planes
from svmtrain.features.cache import (
    DTYPE,
    FeatureCache,
    allocated_memmap,
    feature_moments,
    held,
    write_in_blocks,
)
from svmtrain.features.progress import Phases
from svmtrain.features.sizes import Needs, check_room, human_bytes
from svmtrain.fileio import atomic_write, fsync_path, read_npz

FLIPPED = "train_flipped.npy"
MOMENTS = "train_flipped_moments.npz"


def mirrored(images: np.ndarray) -> np.ndarray:
    """(n, 3072) uint8 images as stored -> the same images mirrored left to right, (n, 3072)."""
    return np.ascontiguousarray(as_planes(images)[:, :, :, ::-1]).reshape(len(images), -1)


def flipped_features(cache: FeatureCache, dataset, phases: Phases) -> np.ndarray:
    """(N, dim) read-only memory map: the features of every training image of ``dataset``
    (the archive ``cache`` was built from) mirrored, computed and kept first if need be.
    Raises ConfigError when the disk cannot hold them, DataError when they cannot be written."""
    path = cache.path / FLIPPED
    shape = cache.train.shape
    if path.is_file():
        try:
            flipped = np.load(path, mmap_mode="r")
            if flipped.shape == shape and flipped.dtype == DTYPE:
                return flipped
        except (OSError, ValueError):
            pass
        path.unlink()  # damaged: built again below
    needs = Needs(shape[0], shape[1], shape[0] * shape[1] * np.dtype(DTYPE).itemsize, 0)
    check_room(needs, cache.path, cache.extractor)
    phases.say(
        f"mirrored training images: {shape[0]:,} images x {shape[1]:,} features, "
        f"{human_bytes(needs.disk)} on disk"
    )
    for stale in cache.path.glob(f".{FLIPPED}.*.tmp"):
        if not held(stale):  # its build is gone
            stale.unlink(missing_ok=True)
    tmp = cache.path / f".{FLIPPED}.{os.getpid()}.tmp"
    try:
        out = allocated_memmap(tmp, shape)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while the file is written: not stale
            with phases.phase("extracting mirrored", shape[0], "images", rate=True) as bar:
                write_in_blocks(cache.extractor, dataset.x_train, out, bar.update, mirrored)
            del out
            fsync_path(tmp)
            os.replace(tmp, path)
        finally:
            os.close(fd)
        fsync_path(cache.path)
    except OSError as err:
        raise DataError(
            f"Cannot write {path}: {err.strerror or err}. Free some space or choose another "
            f"--data-dir."
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")


def moments_with_mirrors(
    cache: FeatureCache, flipped: np.ndarray, phases: Phases
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) (dim,) float64 of the training split's rows and their mirrors' (``flipped``
    from :func:`flipped_features`) together: the mirrors' moments are computed once and kept
    (where the cache cannot be written, computed for each run)."""
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
