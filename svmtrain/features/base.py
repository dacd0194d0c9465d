"""What every feature extractor is: settings, state learned from training images, a transform.

An extractor turns raw CIFAR-10 images, (N, 3072) uint8 (R, G, B planes of 32x32, as the cache
stores them), into a float32 feature matrix (N, dim). Its settings are plain numbers declared
as a config section (they name the features: the cache key comes from them); what it learns from
the training split is its state, a dict of numpy arrays, so that a ``.npz`` file (no pickle) can
carry it beside the classifier's weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from svmtrain.config.keys import check_settings
from svmtrain.config.sections import SIDE
from svmtrain.data.format import IMAGE_BYTES
from svmtrain.errors import WeightsError
from svmtrain.features.progress import SILENT, Phases


def as_planes(images: np.ndarray) -> np.ndarray:
    """(N, 3072) uint8 as stored -> a (N, 3, 32, 32) view (no copy)."""
    return images.reshape(len(images), 3, SIDE, SIDE)


def check_images(images: np.ndarray) -> None:
    """Raise ValueError unless ``images`` is (N, 3072) uint8."""
    if images.ndim != 2 or images.shape[1] != IMAGE_BYTES or images.dtype != np.uint8:
        raise ValueError(
            f"images must be (N, {IMAGE_BYTES}) uint8 (CIFAR-10 rows as stored). "
            f"Got {images.shape} {images.dtype} instead."
        )


def worker_count() -> int:
    """The cores this process may run on (at least 1)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class Extractor(ABC):
    """A feature extractor: construct with settings, :meth:`fit` on training images (or
    :meth:`from_state` with a saved state), then :meth:`transform` any images.

    ``settings`` is a mapping (keys left out take their defaults) or a ``Settings``; a bad one
    raises ConfigError naming the key. Subclasses set ``name`` and ``Settings`` (the settings
    dataclass of config section features.NAME, :mod:`svmtrain.config.sections`), and implement
    ``dim``, ``state_shapes``, ``_fit`` and ``_transform_chunk``.
    """

    name: ClassVar[str]
    Settings: ClassVar[type]
    version: ClassVar[int] = 1  # of its numbers: a new one when the features' bits change
    chunk_images: ClassVar[int] = 64  # images per work item of transform: bounds its memory

    def __init__(self, settings: Any = None) -> None:
        self.settings = check_settings(self.Settings, settings or {}, f"features.{self.name}")
        self.state: dict[str, np.ndarray] | None = None

    @classmethod
    def from_state(cls, settings: Any, state: Mapping[str, np.ndarray]) -> Extractor:
        """An extractor with a state saved earlier; WeightsError if arrays are missing."""
        extractor = cls(settings)
        keys = extractor.state_shapes()
        missing = [key for key in keys if key not in state]
        if missing:
            raise WeightsError(
                f"The saved state of features '{cls.name}' lacks {', '.join(missing)}."
            )
        extractor.state = {key: np.asarray(state[key]) for key in keys}
        extractor._check_state()
        return extractor

    def settings_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.settings)

    def state_digest(self) -> str:
        """sha256 (hex) of the name, the settings and every array of the state (key, dtype,
        shape and bytes): equal digests, the same features of every image."""
        if self.state is None:
            raise RuntimeError(f"features '{self.name}': call fit or from_state first")
        digest = hashlib.sha256(json.dumps([self.name, self.settings_dict()]).encode())
        for key in sorted(self.state):
            array = np.ascontiguousarray(self.state[key])
            digest.update(json.dumps([key, array.dtype.str, array.shape]).encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def fit(
        self, images: np.ndarray, rng: np.random.Generator, phases: Phases = SILENT
    ) -> dict[str, np.ndarray]:
        """Learn the state from ``images`` (N, 3072) uint8, the training split only; its
        phases are said to ``phases``.

        Returns the state (also kept on the extractor): a dict of numpy arrays.
        """
        check_images(images)
        self.state = self._fit(images, rng, phases)
        return self.state

    def transform(
        self,
        images: np.ndarray,
        *,
        out: np.ndarray | None = None,
        workers: int | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Features of ``images`` (N, 3072) uint8: (N, dim) float32.

        The work goes in chunks of ``chunk_images`` images over ``workers`` threads (default:
        the cores available), so extra memory is a few chunks' worth whatever N is. The threads
        make the products: run this with one BLAS thread (the jobs do, with
        :func:`svmtrain.core.blas.limited_threads`). ``out`` (N, dim), e.g. a memory
        map, receives the rows instead of a new array; ``on_chunk(n)`` is called as each chunk
        of n images is done. Each image's features depend only on the image and the state,
        never on N or the thread count.
        """
        check_images(images)
        if self.state is None:
            raise RuntimeError(f"features '{self.name}': call fit or from_state first")
        if out is None:
            out = np.empty((len(images), self.dim), dtype=np.float32)
        starts = range(0, len(images), self.chunk_images)

        def work(start: int) -> int:
            stop = min(start + self.chunk_images, len(images))
            out[start:stop] = self._transform_chunk(np.asarray(images[start:stop]))
            return stop - start

        workers = workers or worker_count()
        if workers == 1:
            done: Iterator[int] = map(work, starts)
            for n in done:
                if on_chunk:
                    on_chunk(n)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for n in pool.map(work, starts):
                    if on_chunk:
                        on_chunk(n)
        return out

    @property
    @abstractmethod
    def dim(self) -> int:
        """Features per image."""

    @abstractmethod
    def _fit(
        self, images: np.ndarray, rng: np.random.Generator, phases: Phases
    ) -> dict[str, np.ndarray]: ...

    def fit_bytes(self, images: int) -> int:
        """Memory :meth:`fit` needs on ``images`` training images, at most (bytes)."""
        return 0

    def chunk_bytes(self) -> int:
        """Memory one worker of :meth:`transform` needs for a chunk, at most (bytes)."""
        return 2 * self.chunk_images * self.dim * 4

    @abstractmethod
    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        """Features of a few images (n, 3072) uint8 -> (n, dim) float32."""

    @abstractmethod
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each array of the state, as the settings make it."""

    def _check_state(self) -> None:
        """Raise WeightsError unless the state's arrays have the shapes the settings need;
        store them as float32."""
        for key, shape in self.state_shapes().items():
            if self.state[key].shape != shape:
                raise WeightsError(
                    f"features '{self.name}': {key} is {self.state[key].shape}, "
                    f"the settings need {shape}."
                )
            found = self.state[key]
            if found.dtype.kind not in "fiu":
                raise WeightsError(
                    f"features '{self.name}': {key} must hold real numbers; got {found.dtype}."
                )
            if not np.all(np.isfinite(found)):
                raise WeightsError(
                    f"features '{self.name}': {key} holds values that are not finite numbers "
                    "(NaN or inf)."
                )
            self.state[key] = self.state[key].astype(np.float32, copy=False)
