"""K-means features after Coates, Lee & Ng (AISTATS 2011): a dictionary of whitened patches.

Fit (training images only): sample ``patches_sampled`` patches of ``patch_size`` x
``patch_size`` x 3 pixels, normalise each one's brightness and contrast, learn a ZCA whitening
from them, and run ``kmeans_iterations`` of Lloyd's k-means for ``num_centroids`` centroids
in the whitened space.

Transform: for every patch position (every ``stride`` pixels), the distances z_k = ||x - c_k||
of the normalised, whitened patch x to each centroid give the "triangle" activation
f_k = max(0, mean_j z_j - z_k); each feature map is summed over a ``pooling_grid`` x
``pooling_grid`` grid of image regions, giving pooling_grid**2 * num_centroids features.

How an image is computed (all float32, two BLAS products do most of it): with the whitened
patches W = (X - m) P, their squared norms w, and the centroids C, the squared distances are
the one product [W, w, 1] @ [-2 C^T; 1; ||c||^2]. The patch positions are ordered region by
region, so a region's pooled sum is a sum of contiguous rows (a product with a row of ones),
and the per-patch mean distance mu is a product with a column of ones; the triangle
activation is mu - min(z, mu). Apart from the products, the (patches x K) block is touched by
three elementwise passes: absolute value, square root, minimum.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from svmtrain.config.sections import KMeansSettings
from svmtrain.features.base import (
    SIDE,
    Extractor,
    as_planes,
    worker_count,
)
from svmtrain.features.progress import Phases

CHANNELS = 3
CONTRAST_EPSILON = 10.0  # added to each patch's pixel variance (0..255 scale), as in the paper
_ASSIGN_ROWS = 8192  # patches assigned at a time during k-means: bounds its memory


def region_edges(positions: int, grid: int) -> np.ndarray:
    """Boundaries of ``grid`` pooling regions over ``positions`` patch positions (one side):
    (grid + 1,) ints from 0 to positions, the i-th at round-half-up(i * positions / grid)."""
    return (2 * np.arange(grid + 1) * positions + grid) // (2 * grid)


def extract_patches(images: np.ndarray, size: int, stride: int) -> np.ndarray:
    """All patches of ``images`` (n, 3072) uint8 at every ``stride`` pixels.

    Returns (n * positions**2, 3 * size * size) float32, one row per patch, patches of an image
    in row-major order of their top-left corner, each patch flattened as (channel, row, col).
    """
    planes = as_planes(images)
    windows = np.lib.stride_tricks.sliding_window_view(planes, (size, size), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (n, 3, p, p, size, size)
    n, _, rows, cols = windows.shape[:4]
    patches = np.empty((n, rows, cols, CHANNELS, size, size), dtype=np.float32)
    patches[...] = windows.transpose(0, 2, 3, 1, 4, 5)
    return patches.reshape(n * rows * cols, CHANNELS * size * size)


def normalize_patches(patches: np.ndarray) -> np.ndarray:
    """Brightness and contrast normalisation, in place: each row minus its mean, divided by
    sqrt(its variance (ddof=1, as the paper's code) + CONTRAST_EPSILON). Returns patches."""
    patches -= patches.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", patches, patches) / np.float32(patches.shape[1] - 1)
    patches /= np.sqrt(var + np.float32(CONTRAST_EPSILON))[:, None]
    return patches


def zca(patches: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """ZCA whitening of rows: (mean (d,), P (d, d)) with P = V diag(1/sqrt(lambda + eps)) V^T
    from the eigendecomposition of the covariance (ddof=1), both float64."""
    x = patches.astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    cov = (x.T @ x) / (len(x) - 1)
    eigenvalues, vectors = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(np.maximum(eigenvalues, 0.0) + epsilon)
    return mean, (vectors * scale) @ vectors.T


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centroid (squared Euclidean), ties to the lowest index.

    x: (n, d) float32, centroids (k, d) float32. Returns (n,) intp. Chunks of rows go to a
    thread per core (memory bounded by a chunk per thread); the chunks are the same whatever
    the thread count, so are the labels.
    """
    half_norms = 0.5 * np.einsum("ij,ij->i", centroids, centroids)
    labels = np.empty(len(x), dtype=np.intp)

    def assign(start: int) -> None:
        scores = x[start : start + _ASSIGN_ROWS] @ centroids.T
        scores -= half_norms
        labels[start : start + _ASSIGN_ROWS] = scores.argmax(axis=1)

    with ThreadPoolExecutor(worker_count()) as pool:
        list(pool.map(assign, range(0, len(x), _ASSIGN_ROWS)))
    return labels


def lloyd(
    x: np.ndarray,
    k: int,
    iterations: int,
    rng: np.random.Generator,
    on_round: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Lloyd's k-means on rows of x (n, d) float32: ``iterations`` rounds of assignment and
    mean update, starting from k distinct rows drawn by ``rng``; a centroid left empty moves
    to a row drawn at random; ``on_round(1)`` after each round. Returns (k, d) float32."""
    centroids = x[rng.choice(len(x), size=k, replace=False)].copy()
    for _ in range(iterations):
        labels = nearest_centroid(x, centroids)
        counts = np.bincount(labels, minlength=k)
        order = np.argsort(labels, kind="stable")
        occupied = counts > 0
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[occupied]
        sums = np.add.reduceat(x[order].astype(np.float64), starts, axis=0)
        centroids[occupied] = (sums / counts[occupied, None]).astype(np.float32)
        empty = np.flatnonzero(~occupied)
        if len(empty):
            centroids[empty] = x[rng.choice(len(x), size=len(empty), replace=False)]
        if on_round is not None:
            on_round(1)
    return centroids


class KMeansFeatures(Extractor):
    """Triangle k-means features; state: whitening mean and matrix, centroids (whitened)."""

    name = "kmeans"
    Settings = KMeansSettings
    chunk_images = 8
    version = 2  # 2: positions in region order, |.| before sqrt (the last bits changed)

    @property
    def dim(self) -> int:
        return self.settings.pooling_grid**2 * self.settings.num_centroids

    def _fit(
        self, images: np.ndarray, rng: np.random.Generator, phases: Phases
    ) -> dict[str, np.ndarray]:
        s = self.settings
        with phases.phase("sampling", s.patches_sampled, "patches") as bar:
            patches = self.sample_patches(images, rng, on_rows=bar.update)
        with phases.phase("whitening"):
            mean, whitening = zca(patches, s.whitening_epsilon)
            white = ((patches - mean) @ whitening).astype(np.float32)
        del patches
        with phases.phase("k-means", s.kmeans_iterations, "rounds") as bar:
            centroids = lloyd(white, s.num_centroids, s.kmeans_iterations, rng, bar.update)
        return {
            "whitening_mean": mean.astype(np.float32),
            "whitening": whitening.astype(np.float32),
            "centroids": centroids,
        }

    def sample_patches(
        self,
        images: np.ndarray,
        rng: np.random.Generator,
        on_rows: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """``patches_sampled`` normalised patches at random images and positions (any position,
        whatever the stride): (patches_sampled, patch_dim) float32. ``on_rows(n)`` is called
        as each part of n patches is gathered."""
        s = self.settings
        n = s.patches_sampled
        which = np.sort(rng.integers(0, len(images), size=n))
        corner = rng.integers(0, SIDE - s.patch_size + 1, size=(n, 2))
        planes = as_planes(images)
        offsets = np.arange(s.patch_size)
        rows = (corner[:, 0, None] + offsets)[:, None, :, None]
        cols = (corner[:, 1, None] + offsets)[:, None, None, :]
        patches = np.empty((n, s.patch_dim), dtype=np.float32)
        channels = np.arange(CHANNELS)[None, :, None, None]
        step = 16384
        for start in range(0, n, step):
            part = slice(start, start + step)
            block = planes[which[part, None, None, None], channels, rows[part], cols[part]]
            patches[part] = block.reshape(len(block), -1)
            if on_rows is not None:
                on_rows(len(block))
        return normalize_patches(patches)

    def fit_bytes(self, images: int) -> int:
        s = self.settings
        # whitening: the float32 sample, its float64 copy and product (24 bytes a value);
        # k-means: the whitened sample, its sorted copy in float64, a block of scores per core
        sample = s.patches_sampled * s.patch_dim
        scores = worker_count() * _ASSIGN_ROWS * s.num_centroids * 8
        return max(24 * sample, 16 * sample + scores)

    def chunk_bytes(self) -> int:
        s = self.settings
        patches = self.chunk_images * s.positions**2 * s.patch_dim * 4
        image = s.positions**2 * (s.patch_dim + 2 + s.num_centroids) * 4
        return 3 * patches + image + self.chunk_images * self.dim * 4

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        s = self.settings
        return {
            "whitening_mean": (s.patch_dim,),
            "whitening": (s.patch_dim, s.patch_dim),
            "centroids": (s.num_centroids, s.patch_dim),
        }

    # -- transform ----------------------------------------------------------------------------

    def _prepared(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(whitening, its offset m P, the augmented centroid matrix, the region order),
        computed once per extractor."""
        cached = getattr(self, "_prepared_arrays", None)
        if cached is not None:
            return cached
        s, state = self.settings, self.state
        whitening = state["whitening"]
        offset = (state["whitening_mean"].astype(np.float64) @ whitening).astype(np.float32)
        c = state["centroids"]
        augmented = np.empty((s.patch_dim + 2, s.num_centroids), dtype=np.float32)
        augmented[: s.patch_dim] = -2.0 * c.T
        augmented[s.patch_dim] = 1.0
        augmented[s.patch_dim + 1] = np.einsum("ij,ij->i", c, c)
        self._prepared_arrays = (whitening, offset, augmented, self.region_order())
        return self._prepared_arrays

    def region_of_position(self) -> np.ndarray:
        """(positions**2,) intp: the pooling region of each patch position (row-major)."""
        s = self.settings
        edges = region_edges(s.positions, s.pooling_grid)
        side = np.searchsorted(edges, np.arange(s.positions), side="right") - 1
        return (side[:, None] * s.pooling_grid + side[None, :]).ravel()

    def region_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, bounds): the patch positions sorted by region (stable), and (grid**2 + 1,)
        offsets into that order where each region starts (the last: positions**2)."""
        region = self.region_of_position()
        order = np.argsort(region, kind="stable")
        counts = np.bincount(region, minlength=self.settings.pooling_grid**2)
        return order, np.concatenate(([0], np.cumsum(counts)))

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        s = self.settings
        _, _, _, (order, _) = self._prepared()
        patches = normalize_patches(extract_patches(images, s.patch_size, s.stride))
        patches = patches.reshape(len(images), len(order), s.patch_dim)[:, order]
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i in range(len(images)):  # one image per product: no result depends on the chunk
            self._image_features(patches[i], out[i].reshape(s.pooling_grid**2, -1))
        return out

    def _image_features(self, patches: np.ndarray, out: np.ndarray) -> None:
        """Features of one image into ``out`` (grid**2, K) from its normalised ``patches``
        (positions**2, patch_dim) float32, positions in region order."""
        s = self.settings
        whitening, offset, augmented, (_, bounds) = self._prepared()
        d = s.patch_dim
        lifted = np.empty((len(patches), d + 2), dtype=np.float32)
        np.matmul(patches, whitening, out=lifted[:, :d])
        lifted[:, :d] -= offset
        lifted[:, d] = np.einsum("ij,ij->i", lifted[:, :d], lifted[:, :d])
        lifted[:, d + 1] = 1.0
        distances = lifted @ augmented  # squared distances, up to rounding (may dip below 0)
        # |.| rather than max(., 0): a squared distance rounded below 0 is a distance within
        # rounding of 0 either way, and abs is a bit mask where maximum is 5x slower
        np.abs(distances, out=distances)
        np.sqrt(distances, out=distances)
        mean = distances @ np.ones((s.num_centroids, 1), dtype=np.float32)
        mean *= np.float32(1.0 / s.num_centroids)
        np.minimum(distances, mean, out=distances)
        ones = np.ones((1, len(patches)), dtype=np.float32)
        for r in range(len(out)):
            # the sum of max(0, mu - z) over a region is the sum of mu less the sum of min(z, mu)
            rows = slice(bounds[r], bounds[r + 1])
            np.matmul(ones[:, : rows.stop - rows.start], distances[rows], out=out[r : r + 1])
            np.subtract(mean[rows].sum(dtype=np.float32), out[r], out=out[r])


def centroid_images(extractor: KMeansFeatures, limit: int | None = None) -> np.ndarray:
    """The first ``limit`` (default all) centroids as colour patches: un-whitened
    (c P^-1 + m, back in the space of normalised patches), each stretched to 0..255 by its own
    minimum and maximum. Returns (n, patch_size, patch_size, 3) uint8 (a constant patch: 0)."""
    s, state = extractor.settings, extractor.state
    centroids = state["centroids"][:limit].astype(np.float64)
    patches = np.linalg.solve(state["whitening"].astype(np.float64), centroids.T).T
    patches += state["whitening_mean"]
    low = patches.min(axis=1, keepdims=True)
    span = patches.max(axis=1, keepdims=True) - low
    unit = np.divide(patches - low, span, out=np.zeros_like(patches), where=span > 0)
    images = np.rint(255.0 * unit).astype(np.uint8)
    return images.reshape(-1, CHANNELS, s.patch_size, s.patch_size).transpose(0, 2, 3, 1)
