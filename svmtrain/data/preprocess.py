"""From raw CIFAR-10 bytes to what training reads: splits, mean image, scaling, bias column.

The statistics come from the training split only. The pixels stay uint8 (memory-mapped): the
mean and scale are applied a batch or a chunk at a time, never to a whole split.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from svmtrain.core.objective import release_pages
from svmtrain.core.scaling import SCALINGS
from svmtrain.data.format import IMAGE_BYTES
from svmtrain.errors import ConfigError, WeightsError

if TYPE_CHECKING:
    from svmtrain.config import Config

PIXELS = IMAGE_BYTES  # features before the bias column: one per byte of a CIFAR-10 image
_CHUNK = 4096  # rows converted at a time, so no float64 copy of a whole split ever exists


@dataclass(frozen=True, eq=False)
class PixelTransform:
    """Preprocessed pixels: (x - mean) / scale per pixel, F = 3072 (:meth:`features` takes rows
    of any width F, e.g. a feature cache's, with mean and scale of that width).

    mean, scale: (3072,) float32, learned from the training split (mean zeros and scale ones
    when preprocessing leaves the pixels alone); scale > 0.
    """

    mean: np.ndarray
    scale: np.ndarray
    kind: ClassVar[str] = "pixels"
    num_features: ClassVar[int] = PIXELS

    def features(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        # Convert, then subtract and divide in place: the same rounding as
        # np.subtract(rows, mean, dtype=...), several times faster (docs/benchmarks.md).
        np.copyto(out, rows, casting="unsafe")
        out -= self.mean.astype(out.dtype)
        out /= self.scale.astype(out.dtype)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], where: str, hint: str = ""
    ) -> PixelTransform:
        """The transform saved in ``arrays`` (as :meth:`arrays` gives them); a fault is a
        WeightsError naming ``where`` and ending with ``hint``."""
        for key in ("mean", "scale"):
            if key not in arrays:
                raise WeightsError(f"{where} lacks {key}. {hint}")
            a = arrays[key]
            if a.shape != (PIXELS,) or a.dtype.kind != "f" or not np.all(np.isfinite(a)):
                raise WeightsError(
                    f"{where}: {key} must be {PIXELS} finite floats; got {a.dtype} of shape "
                    f"{a.shape}. {hint}"
                )
        if not np.all(arrays["scale"] > 0):
            raise WeightsError(f"{where}: scale must be positive (it divides every pixel). {hint}")
        return cls(mean=arrays["mean"].astype(np.float32), scale=arrays["scale"].astype(np.float32))


@dataclass(frozen=True)
class Splits:
    """The splits training reads: every y (N,) intp, and every X raw rows (N, F) whose features
    are (X - mean) / scale: uint8 pixels (views of the cache, as :func:`prepare` makes them), or
    a feature cache's rows (memory-mapped; training rows with their mirror images stacked as a
    :class:`~svmtrain.core.objective.StackedRows`). Nothing is copied into a design matrix.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray  # (F,) float32, subtracted from every row (zeros when disabled)
    scale: np.ndarray  # (F,) float32, divides every centred row (ones when disabled)
    class_names: tuple[str, ...]
    data_sha256: str = ""  # the archive the splits come from (empty for data made in memory)
    # The model's transform when X are rows of features (a layer above: a
    # svmtrain.features.FeatureTransform); None: pixels, whose transform is mean and scale.
    feature_transform: Any = None

    @property
    def affine(self) -> PixelTransform:
        """(x - mean) / scale of rows of any width F: the map from X to the model's input."""
        return PixelTransform(self.mean, self.scale)

    @property
    def transform(self):
        """The model's input transform: the features' when there are, else the pixels'."""
        if self.feature_transform is not None:
            return self.feature_transform
        return self.affine

    @property
    def num_features(self) -> int:
        """D, the columns of W: F + 1 (3073 for pixels, with the bias)."""
        return self.X_train.shape[1] + 1

    def design(self, X: np.ndarray, dtype) -> np.ndarray:
        """The (n, D) design matrix of ``dtype`` for a few rows X of a split."""
        return transform(X, self.mean, self.scale, dtype)


def _pixel_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per pixel of x: (N, 3072) uint8. Returns two (3072,) float64.

    Exact integer sums: a byte's square fits in uint16, _CHUNK of them in uint32, the totals in
    int64, so the result does not depend on the two threads.
    """

    def sums(start: int) -> tuple[np.ndarray, np.ndarray]:
        chunk = x[start : start + _CHUNK]
        squares = np.multiply(chunk, chunk, dtype=np.uint16)
        return chunk.sum(axis=0, dtype=np.uint32), squares.sum(axis=0, dtype=np.uint32)

    total = np.zeros(x.shape[1], dtype=np.int64)
    total_sq = np.zeros(x.shape[1], dtype=np.int64)
    with ThreadPoolExecutor(2, thread_name_prefix="svmtrain-moments") as pool:
        for chunk_sum, chunk_sq in pool.map(sums, range(0, len(x), _CHUNK)):
            total += chunk_sum
            total_sq += chunk_sq
    mean = total / len(x)
    var = np.maximum(total_sq / len(x) - np.square(mean), 0.0)
    return mean, np.sqrt(var)


def stats_from_moments(
    mean: np.ndarray, std: np.ndarray, *, subtract_mean: bool, scaling: str
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) to apply, from the training split's per-input mean and std (D,) float64:
    the mean or zeros, and the scale ``scaling`` names. Returns two (D,) float32."""
    if not subtract_mean:
        mean = np.zeros_like(mean)
    return mean.astype(np.float32), SCALINGS[scaling](std).astype(np.float32)


def fit_stats(
    x_train: np.ndarray, *, subtract_mean: bool = True, scaling: str = "none"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean image and per-pixel scale from x_train: (N, 3072) uint8. Returns two (3072,) float32."""
    mean, std = _pixel_moments(x_train)
    return stats_from_moments(mean, std, subtract_mean=subtract_mean, scaling=scaling)


def transform(
    x: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype, out: np.ndarray | None = None
) -> np.ndarray:
    """(x - mean) / scale with a bias column of ones appended: a design matrix.

    x: (N, D) uint8 pixels or float32 features; mean, scale: (D,). Returns (N, D + 1) of
    ``dtype`` (into ``out`` when given, e.g. rows of a larger matrix), filled chunk by chunk
    (the affine map of :meth:`PixelTransform.features`, which takes any width), so the peak
    extra memory is one chunk, not a float64 copy of x (nor, when x is memory-mapped, x itself).
    """
    width = x.shape[1]
    if out is None:
        out = np.empty((len(x), width + 1), dtype=np.dtype(dtype))
    affine = PixelTransform(mean, scale)
    for start in range(0, len(x), _CHUNK):
        affine.features(x[start : start + _CHUNK], out[start : start + _CHUNK, :width])
        release_pages(x)
    out[:, width] = 1.0
    return out


def split_indices(n_train: int, val_size: int, num_train: int | None) -> tuple[slice, slice]:
    """Training and validation slices of the n_train training images: validation the last
    ``val_size``, training the first ``num_train`` of the rest (None: all). Raises ConfigError."""
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


def split_rows(dataset, cfg: Config) -> tuple[slice, slice, slice]:
    """(train, val, test) rows of ``dataset``: train and val of its training images
    (:func:`split_indices`), test of its test images (``data.num_test`` of them)."""
    train, val = split_indices(len(dataset.y_train), cfg.data.val_size, cfg.data.num_train)
    n_test = len(dataset.y_test)
    if cfg.data.num_test is not None and cfg.data.num_test > n_test:
        raise ConfigError(
            f"data.num_test must be at most {n_test} (the test images). "
            f"Got {cfg.data.num_test} instead."
        )
    return train, val, slice(0, cfg.data.num_test or n_test)


def prepare(dataset, cfg: Config) -> Splits:
    """Splits of ``dataset`` (a :class:`~svmtrain.data.cache.CIFAR10`) as ``cfg`` says: raw
    uint8 pixels (views of its memory maps) and the statistics of the training split."""
    train, val, test = split_rows(dataset, cfg)
    x_train = dataset.x_train[train]
    mean, scale = fit_stats(
        x_train, subtract_mean=cfg.preprocess.subtract_mean, scaling=cfg.preprocess.scaling
    )

    def labels(y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.intp)

    return Splits(  # views of the memory maps: nothing is read or copied here
        X_train=x_train,
        y_train=labels(dataset.y_train[train]),
        X_val=dataset.x_train[val],
        y_val=labels(dataset.y_train[val]),
        X_test=dataset.x_test[test],
        y_test=labels(dataset.y_test[test]),
        mean=mean,
        scale=scale,
        class_names=tuple(dataset.class_names),
        data_sha256=dataset.sha256,
    )
