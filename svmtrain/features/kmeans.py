"""K-means features after Coates, Lee & Ng (AISTATS 2011): a dictionary of whitened patches.

Fit (training images only): sample ``patches_sampled`` patches of ``patch_size`` x
``patch_size`` x 3 pixels, normalise each one's brightness and contrast, learn a ZCA whitening
from them, and run ``kmeans_iterations`` of Lloyd's k-means for ``num_centroids`` centroids
in the whitened space.

Transform: for every patch position (every ``stride`` pixels), the distances z_k = ||x - c_k||
of the normalised, whitened patch x to each centroid give the "triangle" activation
f_k = max(0, mean_j z_j - z_k); each feature map is summed over a ``pooling_grid`` x
``pooling_grid`` grid of image regions, giving pooling_grid**2 * num_centroids features.

How a chunk of patches is computed (all float32, one BLAS call does most of it): with the
whitened patches W = (X - m) P, their squared norms w, and the centroids C, the squared
distances are the one product [W, w, 1] @ [-2 C^T; 1; ||c||^2]. The triangle activation is
then mu - min(z, mu) with mu the per-patch mean distance, and the pooling is one more product
with a 0/1 region matrix, so apart from two BLAS calls the (patches x K) block is touched by
just three passes: clamp-and-square-root, mean, minimum.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from svmtrain.config.sections import KMeansSettings
from svmtrain.features.base import (
    SIDE,
    Extractor,
    as_planes,
    worker_count,
)

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


def lloyd(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means on rows of x (n, d) float32: ``iterations`` rounds of assignment and
    mean update, starting from k distinct rows drawn by ``rng``; a centroid left empty moves
    to a row drawn at random. Returns (k, d) float32."""
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
    return centroids


class KMeansFeatures(Extractor):
    """Triangle k-means features; state: whitening mean and matrix, centroids (whitened)."""

    name = "kmeans"
    Settings = KMeansSettings
    chunk_images = 8

    @property
    def dim(self) -> int:
        return self.settings.pooling_grid**2 * self.settings.num_centroids

    def _fit(self, images: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        s = self.settings
        patches = self.sample_patches(images, rng)
        mean, whitening = zca(patches, s.whitening_epsilon)
        white = ((patches - mean) @ whitening).astype(np.float32)
        del patches
        centroids = lloyd(white, s.num_centroids, s.kmeans_iterations, rng)
        return {
            "whitening_mean": mean.astype(np.float32),
            "whitening": whitening.astype(np.float32),
            "centroids": centroids,
        }

    def sample_patches(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``patches_sampled`` normalised patches at random images and positions (any position,
        whatever the stride): (patches_sampled, patch_dim) float32."""
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
        return normalize_patches(patches)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        s = self.settings
        return {
            "whitening_mean": (s.patch_dim,),
            "whitening": (s.patch_dim, s.patch_dim),
            "centroids": (s.num_centroids, s.patch_dim),
        }

    # -- transform ----------------------------------------------------------------------------

    def _prepared(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(whitening, its offset m P, the augmented centroid matrix, the pooling matrix),
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
        self._prepared_arrays = (whitening, offset, augmented, self.pooling_matrix())
        return self._prepared_arrays

    def pooling_matrix(self) -> np.ndarray:
        """(grid**2, positions**2) float32 of 0/1: region r sums the positions it covers."""
        s = self.settings
        edges = region_edges(s.positions, s.pooling_grid)
        side = np.searchsorted(edges, np.arange(s.positions), side="right") - 1
        region = (side[:, None] * s.pooling_grid + side[None, :]).ravel()
        return (region[None, :] == np.arange(s.pooling_grid**2)[:, None]).astype(np.float32)

    def _transform_chunk(self, images: np.ndarray) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for i in range(len(images)):  # one image per product: no result depends on the chunk
            out[i] = self._image_features(images[i : i + 1])
        return out

    def _image_features(self, image: np.ndarray) -> np.ndarray:
        """Features of one image (1, 3072) uint8 -> (dim,) float32."""
        s = self.settings
        whitening, offset, augmented, pooling = self._prepared()
        patches = normalize_patches(extract_patches(image, s.patch_size, s.stride))
        d = s.patch_dim
        lifted = np.empty((len(patches), d + 2), dtype=np.float32)
        np.matmul(patches, whitening, out=lifted[:, :d])
        lifted[:, :d] -= offset
        lifted[:, d] = np.einsum("ij,ij->i", lifted[:, :d], lifted[:, :d])
        lifted[:, d + 1] = 1.0
        distances = lifted @ augmented  # squared distances, up to rounding (may dip below 0)
        np.maximum(distances, 0.0, out=distances)
        np.sqrt(distances, out=distances)
        mean = distances.mean(axis=1, keepdims=True)
        np.minimum(distances, mean, out=distances)
        pooled = pooling @ distances
        # the sum of max(0, mu - z) over a region is the sum of mu less the sum of min(z, mu)
        np.subtract(pooling @ mean, pooled, out=pooled)
        return pooled.ravel()


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
