"""HOG and colour features after CS231n's assignment 1: gradient orientations of the grey
image per cell, and a histogram of hue.

- HOG: grey = 0.299 R + 0.587 G + 0.114 B; gradients are forward differences (0 on the last
  column for x, the last row for y); each pixel adds its gradient magnitude to the bin of its
  unsigned orientation (angle modulo 180 degrees, ``orientation_bins`` equal bins) in its
  ``cell_size`` x ``cell_size`` cell; a cell's histogram is the mean over its pixels (pixels
  past the last whole cell are left out). (32 // cell_size)**2 * orientation_bins features.
- Colour: the fraction of the image's pixels whose hue (HSV, in [0, 1)) falls in each of
  ``hue_bins`` equal bins; grey pixels have hue 0. ``hue_bins`` features.

Nothing is learned from the training images: the state is empty (the feature scaling lives
with the model, like every extractor's).
"""

from __future__ import annotations

import numpy as np

from svmtrain.config.sections import HogColorSettings
from svmtrain.features.base import SIDE, Extractor, as_planes
from svmtrain.features.progress import Phases

GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma


def grey_levels(planes: np.ndarray) -> np.ndarray:
    """(n, 3, 32, 32) uint8 -> (n, 32, 32) float32 luma in 0..255."""
    r, g, b = (planes[:, c].astype(np.float32) for c in range(3))
    w = GREY_WEIGHTS
    return np.float32(w[0]) * r + np.float32(w[1]) * g + np.float32(w[2]) * b


def hog(grey: np.ndarray, cell_size: int, bins: int) -> np.ndarray:
    """Cell histograms of unsigned gradient orientation: grey (n, 32, 32) float32 ->
    (n, cells * cells * bins) float32, cells in row-major order, bins within a cell."""
    n = len(grey)
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, :, :-1] = grey[:, :, 1:] - grey[:, :, :-1]
    gy[:, :-1, :] = grey[:, 1:, :] - grey[:, :-1, :]
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.float32(np.pi))  # [0, pi]: pi itself folds below
    which = np.minimum((angle * np.float32(bins / np.pi)).astype(np.intp), bins - 1)
    cells = SIDE // cell_size
    covered = cells * cell_size
    cell_of = np.arange(covered) // cell_size
    cell = (cell_of[:, None] * cells + cell_of[None, :])[None]  # (1, covered, covered)
    image = np.arange(n)[:, None, None] * (cells * cells)
    index = ((image + cell) * bins + which[:, :covered, :covered]).ravel()
    sums = np.bincount(
        index, weights=magnitude[:, :covered, :covered].ravel(), minlength=n * cells * cells * bins
    )
    return (sums / (cell_size * cell_size)).astype(np.float32).reshape(n, -1)


def hue(planes: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 1) of (n, 3, 32, 32) uint8 pixels -> (n, 32, 32) float64 (0 for grey)."""
    rgb = planes.astype(np.float64) / 255.0
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    high = rgb.max(axis=1)
    delta = high - rgb.min(axis=1)
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(
        high == r,
        (g - b) / safe,
        np.where(high == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
    )
    return np.where(delta > 0, np.mod(h / 6.0, 1.0), 0.0)


def hue_histogram(planes: np.ndarray, bins: int) -> np.ndarray:
    """Fraction of each image's pixels per hue bin: (n, 3, 32, 32) uint8 -> (n, bins) float32."""
    n = len(planes)
    which = np.minimum((hue(planes) * bins).astype(np.intp), bins - 1)
    index = (np.arange(n)[:, None, None] * bins + which).ravel()
    counts = np.bincount(index, minlength=n * bins).reshape(n, bins)
    return (counts / (SIDE * SIDE)).astype(np.float32)


class HogColorFeatures(Extractor):
    """HOG of the grey image and a hue histogram; nothing is learned."""

    name = "hog_color"
    Settings = HogColorSettings
    chunk_images = 256

    @property
    def dim(self) -> int:
        s = self.settings
        return (SIDE // s.cell_size) ** 2 * s.orientation_bins + s.hue_bins

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def _fit(
        self, images: np.ndarray, rng: np.random.Generator, phases: Phases
    ) -> dict[str, np.ndarray]:
        return {}

    def chunk_bytes(self) -> int:
        # per image: float32 and intp planes of the gradients and the hue (about 100 bytes a
        # pixel), and the histograms: float64 sums, their mean, float32, the concatenation
        return self.chunk_images * (100 * SIDE * SIDE + 28 * self.dim)

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        s = self.settings
        planes = as_planes(images)
        return np.concatenate(
            [
                hog(grey_levels(planes), s.cell_size, s.orientation_bins),
                hue_histogram(planes, s.hue_bins),
            ],
            axis=1,
        )
