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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from svmtrain import __version__
from svmtrain.config.yamltext import parse_yaml
from svmtrain.core.blas import limited_threads
from svmtrain.core.losses import LOSSES, log_softmax
from svmtrain.core.objective import release_pages
from svmtrain.data.preprocess import PIXELS, PixelTransform
from svmtrain.errors import ImageError, WeightsError
from svmtrain.features.transform import FeatureTransform
from svmtrain.fileio import NpzReader, atomic_write

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


TRANSFORMS: dict[str, Callable[[Mapping[str, np.ndarray], str, str], Transform]] = {
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
    Raises :class:`WeightsError` when the parts do not fit together (W's shape, the names,
    the loss).
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
        """C, the number of classes (rows of W)."""
        return len(self.class_names)

    def scores(
        self, images: np.ndarray, on_chunk: Callable[[int], object] | None = None
    ) -> np.ndarray:
        """The class scores of ``images``: (N, C) of W's dtype, row i the C scores of image i
        (the SVM's margins or softmax's logits; higher is more likely).

        images: raw uint8 pixels, (N, 3072), (N, 3, 32, 32) or (N, 32, 32, 3) (the module
        docstring); they are transformed as in training (see :func:`linear_scores`);
        ``on_chunk(n)`` is called as each chunk of n images is scored.
        Raises :class:`ImageError` for anything else (another dtype, shape or size).
        """
        return linear_scores(self.W, self.transform, images, on_chunk)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The predicted class of each image: (N,) intp indices into ``class_names``, the
        highest of the image's scores (the first on a tie).

        images: raw uint8 pixels, (N, 3072), (N, 3, 32, 32) or (N, 32, 32, 3), as for
        :meth:`scores`; ``model.class_names[i]`` names a prediction ``i``.
        Raises :class:`ImageError` for anything else (another dtype, shape or size).
        """
        return np.argmax(self.scores(images), axis=1)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The class probabilities of a softmax model: (N, C) float64, each row the softmax of
        the image's :meth:`scores` (summing to 1).

        images: as for :meth:`scores`. Raises :class:`ImageError` as :meth:`scores` does, and
        :class:`WeightsError` for an SVM, whose scores are margins, not log-probabilities.
        """
        if self.loss != "softmax":
            raise WeightsError(
                f"This is a {self.loss} model: its scores are margins, not probabilities; "
                "only a softmax model gives probabilities."
            )
        return np.exp(log_softmax(self.scores(images).astype(np.float64)))

    def scores_of_features(self, raw: np.ndarray) -> np.ndarray:
        """Class scores (N, C) of images whose features are ``raw`` (N, F), the extractor's
        output before scaling (rows of a feature cache made by this model's extractor):
        the same numbers :meth:`scores` gives for the images. Raises TypeError for a pixel
        model."""
        if not isinstance(self.transform, FeatureTransform):
            raise TypeError("scores_of_features needs a model of features, not of pixels")
        return chunked_scores(self.W, self.transform.scaled, raw)

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` as an .npz (no pickled objects), atomically.
        Raises :class:`~svmtrain.errors.SvmtrainError` naming the file when it cannot be
        written (see :func:`svmtrain.fileio.atomic_write`)."""
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
        """Read and check a weights.npz (format 1 or 2). Raises WeightsError, naming the file
        and what to do, for any fault.

        Only the members the format names are read, each after its size in the zip directory
        and its .npy header are checked (W against the exact shape the classes and the
        transform give it), so a damaged or hostile file costs no more than a good one. The
        model must give finite scores to every image (see :func:`_check_scores`)."""
        path = Path(path)
        with NpzReader(path, "weights file", WeightsError, _HINT) as npz:
            return _read_model(cls, npz, path)


def _read_model(cls: type[LinearModel], npz: NpzReader, path: Path) -> LinearModel:
    version = _format_version(npz, path)
    if version == 1:  # svmtrain 0.1.0: a pixel model; its loss is in its config
        required: tuple[str, ...] = ("W", "mean", "scale", "class_names", "config")
    else:
        required = ("W", "class_names", "loss", "transform", "config")
    missing = [k for k in required if k not in npz.names]
    if missing:
        raise WeightsError(f"{path} lacks {', '.join(missing)}. {_HINT}")
    names = npz.read("class_names", max_bytes=_MAX_TEXT_BYTES)
    if names.ndim != 1 or names.dtype.kind != "U":
        raise WeightsError(f"{path}: class_names must list two or more class names. {_HINT}")
    class_names = tuple(str(n) for n in names)
    _check_class_names(class_names, str(path))
    config_yaml = _text(npz, "config", path)
    if version == 1:
        loss, kind = _loss_of_config(config_yaml, path), PixelTransform.kind
    else:
        loss, kind = _text(npz, "loss", path), _text(npz, "transform", path)
        if kind not in TRANSFORMS:
            raise WeightsError(
                f"{path} uses the input transform '{kind}', which this svmtrain "
                f"({__version__}) does not know (it knows {', '.join(TRANSFORMS)}). "
                "Upgrade svmtrain to the version that wrote it."
            )
    prefix = "" if kind == PixelTransform.kind else f"{kind}."
    transform = TRANSFORMS[kind](_Members(npz, prefix), str(path), _HINT)
    _check_shape(npz.shape("W"), transform.num_features, len(class_names), f" {_HINT}", str(path))
    W = npz.read("W", shape=(len(class_names), transform.num_features + 1))
    _check_model(W, transform.num_features, class_names, loss, str(path))
    diverged = None
    if "diverged_in_epoch" in npz.names:
        diverged = npz.read("diverged_in_epoch", max_bytes=64)
        if diverged.shape != () or diverged.dtype.kind not in "iu" or diverged < 1:
            raise WeightsError(f"{path}: diverged_in_epoch must be one int >= 1. {_HINT}")
    model = cls(
        W=W,
        transform=transform,
        class_names=class_names,
        loss=loss,
        config_yaml=config_yaml,
        diverged_in_epoch=None if diverged is None else int(diverged),
    )
    _check_scores(model, str(path))
    return model


# Text members (the config, class names) and a transform's arrays are read up to these sizes;
# the largest shipped extractor's state is a few MB.
_MAX_TEXT_BYTES = 1 << 20
_MAX_STATE_BYTES = 256 << 20


class _Members(Mapping):
    """The arrays of an .npz whose names start with ``prefix`` (without it), each read when
    looked up, at most _MAX_STATE_BYTES: what a transform's ``from_arrays`` is given."""

    def __init__(self, npz: NpzReader, prefix: str) -> None:
        self._npz, self._prefix = npz, prefix
        self._keys = [n[len(prefix) :] for n in sorted(npz.names) if n.startswith(prefix)]
        self._read: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._read:
            self._read[key] = self._npz.read(self._prefix + key, max_bytes=_MAX_STATE_BYTES)
        return self._read[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


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
    of n rows (from the scoring threads). The pages of memory-mapped rows are let go as they
    are read."""
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
        release_pages(rows)
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
    _check_class_names(class_names, where)
    if not isinstance(W, np.ndarray):
        raise WeightsError(f"{where}: W must be a numpy array; got {type(W).__name__}.{hint}")
    _check_shape(W.shape, num_features, len(class_names), hint, where)
    if W.dtype not in (np.float32, np.float64):
        raise WeightsError(f"{where}: W must hold float32 or float64 numbers; got {W.dtype}.{hint}")
    bad = np.flatnonzero(~np.isfinite(W))
    if bad.size:
        row, column = np.unravel_index(bad[0], W.shape)
        raise WeightsError(
            f"{where}: W holds {bad.size:,} values that are not finite numbers (the first, "
            f"W[{row}, {column}], is {W[row, column]}).{_not_finite_hint(where)}"
        )
    if loss not in LOSSES:
        raise WeightsError(f"{where}: loss must be one of {', '.join(LOSSES)}; got {loss!r}.{hint}")


def _check_shape(shape: tuple, num_features: int, classes: int, hint: str, where: str) -> None:
    """WeightsError unless W's ``shape`` is (classes, num_features + 1)."""
    if len(shape) != 2 or shape[1] != num_features + 1:
        raise WeightsError(
            f"{where}: W has shape {shape}, expected (classes, {num_features + 1}): one row per "
            f"class, {num_features} features plus the bias.{hint}"
        )
    if shape[0] != classes:
        raise WeightsError(
            f"{where}: W has {shape[0]} rows but class_names lists {classes} classes.{hint}"
        )


def _check_class_names(class_names: tuple, where: str) -> None:
    """WeightsError unless there are two or more class names, none empty, none twice."""
    hint = "" if where == "model" else f" {_HINT}"
    if len(class_names) < 2 or any(not n for n in class_names):
        raise WeightsError(f"{where}: class_names must list two or more class names.{hint}")
    twice = sorted({n for n in class_names if class_names.count(n) > 1})
    if twice:
        raise WeightsError(
            f"{where}: class_names lists {twice[0]!r} more than once; each class needs its own "
            f"name.{hint}"
        )


def _not_finite_hint(where: str) -> str:
    """What to do about weights that are not finite: a file is damaged; a model being made
    (``where`` is "model") came from a training run or a caller that produced them."""
    if where != "model":
        return f" The file is damaged. {_HINT}"
    return (
        " Training produced them: a smaller model.init_scale, optim.learning_rate or "
        "model.reg keeps them finite."
    )


def _check_scores(model: LinearModel, where: str) -> None:
    """WeightsError unless the model's scores are finite for the darkest, the brightest and
    a mid-grey image: a transform whose arrays make features overflow (a pixel scale of
    1e-45) or W large enough to overflow the scores would otherwise give NaN scores."""
    probes = np.repeat(np.array([0, 128, 255], dtype=np.uint8)[:, None], PIXELS, axis=1)
    with np.errstate(all="ignore"):
        scores = model.scores(probes)
    if not np.all(np.isfinite(scores)):
        raise WeightsError(
            f"{where}: its input transform and weights give scores that are not finite numbers "
            f"(its transform's arrays or W are out of any sensible range).{_not_finite_hint(where)}"
        )


def _format_version(npz: NpzReader, path: Path) -> int:
    if "format_version" not in npz.names:
        return 1
    v = npz.read("format_version", max_bytes=64)
    if v.shape != () or v.dtype.kind not in "iu" or int(v) < 2:
        raise WeightsError(f"{path}: format_version must be a whole number >= 2. {_HINT}")
    if int(v) > FORMAT_VERSION:
        wrote = (
            npz.read("svmtrain_version", max_bytes=_MAX_TEXT_BYTES)
            if "svmtrain_version" in npz.names
            else None
        )
        by = (
            f"svmtrain {wrote}"
            if wrote is not None and wrote.dtype.kind == "U" and wrote.shape == ()
            else "a newer svmtrain"
        )
        raise WeightsError(
            f"{path} was written by {by} in weights format {int(v)}; this svmtrain "
            f"({__version__}) reads formats 1 to {FORMAT_VERSION}. Upgrade svmtrain to load it."
        )
    return int(v)


def _text(npz: NpzReader, key: str, path: Path) -> str:
    a = npz.read(key, max_bytes=_MAX_TEXT_BYTES)
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
