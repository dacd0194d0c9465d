"""From raw CIFAR-10 bytes to design matrices: splits, mean image, scaling, bias column.

The statistics (mean image, per-pixel scale) come from the training split only and are
applied unchanged to every split, so validation and test numbers never see test data.
A design matrix has D = 3072 + 1 columns: the pixels, then a constant 1 (the bias trick).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from svmtrain.core.scaling import SCALINGS
from svmtrain.data.format import IMAGE_BYTES
from svmtrain.errors import ConfigError

if TYPE_CHECKING:
    from svmtrain.config import Config

PIXELS = IMAGE_BYTES  # features before the bias column: one per byte of a CIFAR-10 image
_CHUNK = 4096  # rows converted at a time, so no float64 copy of a whole split ever exists


@dataclass(frozen=True)
class Splits:
    """Preprocessed splits. Every X is (N, 3073) of the configured dtype; every y is (N,) intp."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray  # (3072,) float32, subtracted from every image (zeros when disabled)
    scale: np.ndarray  # (3072,) float32, divides every centred image (ones when disabled)
    class_names: tuple[str, ...]
    data_sha256: str = ""  # the archive the splits come from (empty for data made in memory)


def _pixel_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per pixel of x: (N, 3072) uint8. Returns two (3072,) float64.

    The sums of the pixels and of their squares are taken in integers: exact, and three times
    faster than converting to float64 first (a square of a byte fits in uint16).
    """
    total = np.zeros(x.shape[1], dtype=np.int64)
    total_sq = np.zeros(x.shape[1], dtype=np.int64)
    for start in range(0, len(x), _CHUNK):
        chunk = x[start : start + _CHUNK]
        total += chunk.sum(axis=0, dtype=np.int64)
        total_sq += np.square(chunk, dtype=np.uint16).sum(axis=0, dtype=np.int64)
    mean = total / len(x)
    var = np.maximum(total_sq / len(x) - np.square(mean), 0.0)
    return mean, np.sqrt(var)


def fit_stats(
    x_train: np.ndarray, *, subtract_mean: bool = True, scaling: str = "none"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean image and per-pixel scale from x_train: (N, 3072) uint8. Returns two (3072,) float32."""
    mean, std = _pixel_moments(x_train)
    if not subtract_mean:
        mean = np.zeros_like(mean)
    return mean.astype(np.float32), SCALINGS[scaling](std).astype(np.float32)


def transform(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype) -> np.ndarray:
    """(x - mean) / scale with a bias column of ones appended.

    x: (N, 3072) uint8; mean, scale: (3072,). Returns (N, 3073) of ``dtype``, filled chunk by
    chunk so the peak extra memory is one chunk, not a float64 copy of x.
    """
    dtype = np.dtype(dtype)
    out = np.empty((len(x), PIXELS + 1), dtype=dtype)
    mean, scale = mean.astype(dtype), scale.astype(dtype)
    for start in range(0, len(x), _CHUNK):
        block = out[start : start + _CHUNK, :PIXELS]
        np.subtract(x[start : start + _CHUNK], mean, out=block, dtype=dtype)
        np.divide(block, scale, out=block)
    out[:, PIXELS] = 1.0
    return out


def split_indices(n_train: int, val_size: int, num_train: int | None) -> tuple[slice, slice]:
    """Training and validation slices of the n_train training images.

    Validation is the last ``val_size`` images (as in the CS231n notes); training is the first
    ``num_train`` of the rest (all of them when None).
    """
    if val_size >= n_train:
        raise ConfigError(
            f"data.val_size must be smaller than the {n_train} training images. "
            f"Got {val_size} instead."
        )
    available = n_train - val_size
    if num_train is not None and num_train > available:
        raise ConfigError(
            f"data.num_train must be at most {available} (the {n_train} training images less "
            f"data.val_size={val_size}). Got {num_train} instead."
        )
    return slice(0, num_train or available), slice(available, n_train)


def prepare(dataset, cfg: Config) -> Splits:
    """Splits of ``dataset`` (a :class:`~svmtrain.data.cache.CIFAR10`) as ``cfg`` says."""
    train, val = split_indices(len(dataset.y_train), cfg.data.val_size, cfg.data.num_train)
    n_test = len(dataset.y_test)
    if cfg.data.num_test is not None and cfg.data.num_test > n_test:
        raise ConfigError(
            f"data.num_test must be at most {n_test} (the test images). "
            f"Got {cfg.data.num_test} instead."
        )
    test = slice(0, cfg.data.num_test or n_test)
    x_train = dataset.x_train[train]
    mean, scale = fit_stats(
        x_train, subtract_mean=cfg.preprocess.subtract_mean, scaling=cfg.preprocess.scaling
    )
    dtype = cfg.preprocess.dtype

    def design(x: np.ndarray) -> np.ndarray:
        return transform(x, mean, scale, dtype)

    def labels(y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.intp)

    return Splits(
        X_train=design(x_train),
        y_train=labels(dataset.y_train[train]),
        X_val=design(dataset.x_train[val]),
        y_val=labels(dataset.y_train[val]),
        X_test=design(dataset.x_test[test]),
        y_test=labels(dataset.y_test[test]),
        mean=mean,
        scale=scale,
        class_names=tuple(dataset.class_names),
        data_sha256=dataset.sha256,
    )
