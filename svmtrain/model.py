"""The fitted model: raw CIFAR-10 images in, class scores out.

A :class:`LinearModel` holds everything a prediction needs: the learned input transform (for
raw pixels, the training split's mean image and per-pixel scale), the weights W, the class
names and the loss it was trained with. ``weights.npz`` stores it whole, so ``evaluate``,
``predict``, ``plot`` and Python callers never rebuild any part of it from a config.

W is the notes' W: (C, F + 1), one row per class, in the coordinates of the transformed
features (for pixels, F = 3072 preprocessed pixels), the last column the bias. Scores of an
image are ``features(image) @ W[:, :F].T + W[:, F]``.

Images are raw uint8 pixels in one of three layouts, each (N, ...) for N images:

- ``(N, 3072)`` rows as CIFAR-10 stores them: the red plane, then green, then blue, each
  32 x 32 row by row;
- ``(N, 3, 32, 32)`` the same bytes as channels x height x width;
- ``(N, 32, 32, 3)`` height x width x channels, as Pillow and matplotlib give them.

The transform slot: a transform turns (n, 3072) uint8 rows into (n, F) float features. It is
looked up by its ``kind`` in :data:`TRANSFORMS` when a weights file is read, and saves its
learned arrays with the model; a new feature extractor is one more class there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from svmtrain import __version__
from svmtrain.config.yamltext import parse_yaml
from svmtrain.core.blas import limited_threads
from svmtrain.core.losses import LOSSES
from svmtrain.data.preprocess import PIXELS, PixelTransform
from svmtrain.errors import ImageError, WeightsError
from svmtrain.features.transform import FeatureTransform
from svmtrain.fileio import atomic_write, read_npz

SIDE, CHANNELS = 32, 3
CHUNK = 1024  # images transformed at a time: a float buffer of CHUNK x F, never N x F

# weights.npz formats. 1: svmtrain 0.1.0 (W, mean, scale, class_names, config; no
# format_version). 2: the model whole (adds format_version, loss, transform, svmtrain_version);
# a pixel model keeps mean and scale under their old names, so 0.1.0 still reads it.
FORMAT_VERSION = 2
_HINT = "Pass the weights.npz that 'svmtrain fit' wrote in its run directory."


class Transform(Protocol):
    """What a model needs of its input transform (raw uint8 rows to float features)."""

    kind: ClassVar[str]  # its name in TRANSFORMS and in weights.npz
    num_features: int  # F

    def features(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Features of ``rows`` (n, 3072) uint8 into ``out`` (n, F) float; returns ``out``."""

    def arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays, by name, to save with the model."""


TRANSFORMS: dict[str, Callable[[dict[str, np.ndarray], str, str], Transform]] = {
    PixelTransform.kind: PixelTransform.from_arrays,
    FeatureTransform.kind: FeatureTransform.from_arrays,  # any extractor of svmtrain.features
}


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A fitted linear classifier on raw images.

    W: (C, F + 1) float32 or float64, F = transform.num_features, the last column the bias;
    class_names: C names; loss: its name in svmtrain.core.losses.LOSSES; config_yaml: the
    config the model was trained with (where its data came from), or "" when unknown.
    ``diverged_in_epoch`` is set when training diverged in that epoch (1-based): W is then the
    last good weights, those after the epoch before it (the untrained initial W for epoch 1).
    """

    W: np.ndarray
    transform: Transform
    class_names: tuple[str, ...]
    loss: str
    config_yaml: str = ""
    diverged_in_epoch: int | None = None

    def __post_init__(self) -> None:
        _check_model(self.W, self.transform.num_features, self.class_names, self.loss, "model")

    def divergence_note(self) -> str | None:
        """What these weights are when their run diverged, in a sentence; None otherwise."""
        if self.diverged_in_epoch is None:
            return None
        return (
            f"These weights come from a run that diverged in epoch {self.diverged_in_epoch}: "
            f"{kept_after_divergence(self.diverged_in_epoch)}."
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def scores(
        self, images: np.ndarray, on_chunk: Callable[[int], object] | None = None
    ) -> np.ndarray:
        """Class scores (N, C) of W's dtype for ``images``, raw uint8 in a layout of the module
        docstring (see :func:`linear_scores`; ``on_chunk(n)`` as each chunk of n images is
        scored). Raises :class:`ImageError` for anything else."""
        return linear_scores(self.W, self.transform, images, on_chunk)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N,) intp: the index of the highest-scoring class of each image (see :meth:`scores`)."""
        return np.argmax(self.scores(images), axis=1)

    def scores_of_features(self, raw: np.ndarray) -> np.ndarray:
        """Class scores (N, C) of images whose features are ``raw`` (N, F), the extractor's
        output before scaling (rows of a feature cache made by this model's extractor):
        the same numbers :meth:`scores` gives for the images. TypeError for a pixel model."""
        if not isinstance(self.transform, FeatureTransform):
            raise TypeError("scores_of_features needs a model of features, not of pixels")
        return chunked_scores(self.W, self.transform.scaled, raw)

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` as an .npz (no pickled objects), atomically."""
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "svmtrain_version": np.array(__version__),
            "W": self.W,
            "class_names": np.array(self.class_names),
            "loss": np.array(self.loss),
            "transform": np.array(self.transform.kind),
            "config": np.array(self.config_yaml),
        }
        if self.diverged_in_epoch is not None:
            arrays["diverged_in_epoch"] = np.array(self.diverged_in_epoch, dtype=np.int64)
        for name, value in self.transform.arrays().items():
            key = (
                name
                if self.transform.kind == PixelTransform.kind
                else f"{self.transform.kind}.{name}"
            )
            arrays[key] = value
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        """Read and check a weights.npz (format 1 or 2); any fault is one WeightsError naming
        the file and what to do."""
        path = Path(path)
        arrays = read_npz(path, "weights file", WeightsError, _HINT)
        version = _format_version(arrays, path)
        if version == 1:  # svmtrain 0.1.0: a pixel model; its loss is in its config
            missing = [
                k for k in ("W", "mean", "scale", "class_names", "config") if k not in arrays
            ]
            if missing:
                raise WeightsError(f"{path} lacks {', '.join(missing)}. {_HINT}")
            config_yaml = _text(arrays, "config", path)
            loss, kind = _loss_of_config(config_yaml, path), PixelTransform.kind
        else:
            missing = [
                k for k in ("W", "class_names", "loss", "transform", "config") if k not in arrays
            ]
            if missing:
                raise WeightsError(f"{path} lacks {', '.join(missing)}. {_HINT}")
            config_yaml = _text(arrays, "config", path)
            loss, kind = _text(arrays, "loss", path), _text(arrays, "transform", path)
            if kind not in TRANSFORMS:
                raise WeightsError(
                    f"{path} uses the input transform '{kind}', which this svmtrain "
                    f"({__version__}) does not know (it knows {', '.join(TRANSFORMS)}). "
                    "Upgrade svmtrain to the version that wrote it."
                )
        if kind == PixelTransform.kind:
            own = arrays
        else:
            own = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{kind}.")}
        transform = TRANSFORMS[kind](own, str(path), _HINT)
        names = arrays["class_names"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise WeightsError(f"{path}: class_names must list two or more class names. {_HINT}")
        class_names = tuple(str(n) for n in names)
        _check_model(arrays["W"], transform.num_features, class_names, loss, str(path))
        diverged = arrays.get("diverged_in_epoch")
        if diverged is not None and (
            diverged.shape != () or diverged.dtype.kind not in "iu" or diverged < 1
        ):
            raise WeightsError(f"{path}: diverged_in_epoch must be one int >= 1. {_HINT}")
        return cls(
            W=arrays["W"],
            transform=transform,
            class_names=class_names,
            loss=loss,
            config_yaml=config_yaml,
            diverged_in_epoch=None if diverged is None else int(diverged),
        )


def linear_scores(
    W: np.ndarray,
    transform: Transform,
    images,
    on_chunk: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Scores (N, C) of W's dtype: ``transform``'s features of ``images`` @ W[:, :F].T + bias.

    W: (C, F + 1); images: raw uint8 in a layout of the module docstring. Works chunk by chunk
    (CHUNK images), two chunks at a time on two threads with one BLAS thread each: memory-mapped
    images are read once, no float copy of more than two chunks is made, and each score is the
    same whichever thread computes it; ``on_chunk(n)`` after each chunk of n images. Raises
    :class:`ImageError` for anything but such images.
    """
    return chunked_scores(W, transform.features, image_rows(images), on_chunk)


def chunked_scores(
    W: np.ndarray,
    features: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rows: np.ndarray,
    on_chunk: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Scores (N, C) of W's dtype: ``features(chunk, out)`` of each chunk of ``rows`` (N, ...)
    @ W[:, :F].T + bias, as :func:`linear_scores` describes; ``on_chunk(n)`` after each chunk
    of n rows (from the scoring threads)."""
    F = W.shape[1] - 1
    out = np.empty((len(rows), W.shape[0]), dtype=W.dtype)
    weights, bias = W[:, :F].T, W[:, F]
    local = threading.local()

    def score(start: int) -> None:
        chunk = rows[start : start + CHUNK]
        if not hasattr(local, "buffer"):
            local.buffer = np.empty((min(CHUNK, len(rows)), F), dtype=W.dtype)
        scores = out[start : start + len(chunk)]
        np.matmul(features(chunk, local.buffer[: len(chunk)]), weights, out=scores)
        scores += bias
        if on_chunk is not None:
            on_chunk(len(chunk))

    starts = range(0, len(rows), CHUNK)
    with limited_threads(1):
        if len(starts) == 1:
            score(0)
        else:
            with ThreadPoolExecutor(2, thread_name_prefix="svmtrain-score") as pool:
                list(pool.map(score, starts))
    return out


def kept_after_divergence(epoch: int) -> str:
    """Which weights a run that diverged in ``epoch`` (1-based) keeps, as a phrase."""
    if epoch == 1:
        return "the untrained initial weights (no epoch finished)"
    return f"the weights after epoch {epoch - 1}, the last good one"


def _check_model(W, num_features: int, class_names: tuple, loss: str, where: str) -> None:
    """One WeightsError naming ``where`` for the first thing wrong with the model's parts."""
    hint = "" if where == "model" else f" {_HINT}"
    if len(class_names) < 2 or any(not n for n in class_names):
        raise WeightsError(f"{where}: class_names must list two or more class names.{hint}")
    if not isinstance(W, np.ndarray) or W.ndim != 2 or W.shape[1] != num_features + 1:
        shape = getattr(W, "shape", None)
        raise WeightsError(
            f"{where}: W has shape {shape}, expected (classes, {num_features + 1}): one row per "
            f"class, {num_features} features plus the bias.{hint}"
        )
    if W.shape[0] != len(class_names):
        raise WeightsError(
            f"{where}: W has {W.shape[0]} rows but class_names lists {len(class_names)} "
            f"classes.{hint}"
        )
    if W.dtype not in (np.float32, np.float64) or not np.all(np.isfinite(W)):
        raise WeightsError(f"{where}: W must hold finite float32 or float64 numbers.{hint}")
    if loss not in LOSSES:
        raise WeightsError(f"{where}: loss must be one of {', '.join(LOSSES)}; got {loss!r}.{hint}")


def _format_version(arrays: dict[str, np.ndarray], path: Path) -> int:
    if "format_version" not in arrays:
        return 1
    v = arrays["format_version"]
    if v.shape != () or v.dtype.kind not in "iu" or int(v) < 2:
        raise WeightsError(f"{path}: format_version must be a whole number >= 2. {_HINT}")
    if int(v) > FORMAT_VERSION:
        wrote = arrays.get("svmtrain_version")
        by = (
            f"svmtrain {wrote}"
            if wrote is not None and wrote.dtype.kind == "U"
            else "a newer svmtrain"
        )
        raise WeightsError(
            f"{path} was written by {by} in weights format {int(v)}; this svmtrain "
            f"({__version__}) reads formats 1 to {FORMAT_VERSION}. Upgrade svmtrain to load it."
        )
    return int(v)


def _text(arrays: dict[str, np.ndarray], key: str, path: Path) -> str:
    a = arrays[key]
    if a.shape != () or a.dtype.kind != "U":
        raise WeightsError(f"{path}: {key} must be a text value; got {a.dtype} {a.shape}. {_HINT}")
    return str(a)


def _loss_of_config(config_yaml: str, path: Path) -> str:
    """model.loss of a format-1 file's stored config ("svm", the default then, if absent),
    read as configs are read (anchors and aliases refused: a ConfigError naming the file)."""
    data = parse_yaml(config_yaml, f"the config stored in {path}") or {}
    model = data.get("model", {}) if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise WeightsError(f"{path}: its stored config is not a readable svmtrain config. {_HINT}")
    return model.get("loss", "svm")


def image_rows(images) -> np.ndarray | _ChannelsLast:
    """``images`` as (N, 3072) uint8 rows in CIFAR-10's order (a view where the layout allows;
    channels-last images are reordered chunk by chunk when read, see :class:`_ChannelsLast`).

    Raises :class:`ImageError` naming the problem for anything but raw uint8 images in one of
    the module docstring's layouts.
    """
    if not isinstance(images, np.ndarray):
        raise ImageError(
            f"Images must be a numpy array of uint8 pixels; got {type(images).__name__}."
        )
    if images.dtype != np.uint8:
        hint = (
            " If they are floats in [0, 1], pass (images * 255).round().astype(np.uint8)."
            if images.dtype.kind == "f"
            else ""
        )
        raise ImageError(f"Images must be raw uint8 pixels (0..255); got {images.dtype}.{hint}")
    shape = images.shape
    if images.ndim == 2 and shape[1] == PIXELS:
        return images
    if images.ndim == 4 and shape[1:] == (CHANNELS, SIDE, SIDE):
        return images.reshape(len(images), PIXELS)
    if images.ndim == 4 and shape[1:] == (SIDE, SIDE, CHANNELS):
        return _ChannelsLast(images)
    single = " (for one image, add a leading axis: images[None])" if images.ndim in (1, 3) else ""
    raise ImageError(
        f"Images have shape {shape}; expected (N, {PIXELS}) rows, (N, {CHANNELS}, {SIDE}, {SIDE})"
        f" or (N, {SIDE}, {SIDE}, {CHANNELS}){single}. Other sizes must be resized to "
        f"{SIDE} x {SIDE} RGB first (as 'svmtrain predict' does for image files)."
    )


class _ChannelsLast:
    """(N, 32, 32, 3) images read as (N, 3072) CIFAR-order rows, one slice at a time."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, rows: slice) -> np.ndarray:
        chunk = self.images[rows]
        return np.ascontiguousarray(chunk.transpose(0, 3, 1, 2)).reshape(len(chunk), PIXELS)
