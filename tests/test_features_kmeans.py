"""K-means features against a slow, obvious version written from the paper's definitions."""

from __future__ import annotations

import numpy as np
import pytest

from svmtrain.errors import ConfigError, WeightsError
from svmtrain.features.kmeans import (
    CONTRAST_EPSILON,
    KMeansFeatures,
    centroid_images,
    extract_patches,
    lloyd,
    nearest_centroid,
    region_edges,
)

SETTINGS = {
    "num_centroids": 5,
    "patch_size": 6,
    "stride": 3,
    "pooling_grid": 2,
    "kmeans_iterations": 3,
    "patches_sampled": 400,
}


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _slow_features(extractor: KMeansFeatures, images: np.ndarray) -> np.ndarray:
    """Every patch by loops, in float64: normalise, whiten, distances, triangle, quadrant sums."""
    s, state = extractor.settings, extractor.state
    mean = state["whitening_mean"].astype(np.float64)
    whitening = state["whitening"].astype(np.float64)
    centroids = state["centroids"].astype(np.float64)
    p = s.patch_size
    out = np.zeros((len(images), s.pooling_grid, s.pooling_grid, s.num_centroids))
    for i, image in enumerate(images.reshape(-1, 3, 32, 32).astype(np.float64)):
        for row in range(0, 32 - p + 1, s.stride):
            for col in range(0, 32 - p + 1, s.stride):
                x = image[:, row : row + p, col : col + p].ravel()
                x = (x - x.mean()) / np.sqrt(x.var(ddof=1) + CONTRAST_EPSILON)
                x = (x - mean) @ whitening
                z = np.array([np.sqrt(np.sum((x - c) ** 2)) for c in centroids])
                f = np.maximum(0.0, z.mean() - z)
                # the region of a position: the quadrant its index falls in, halves rounded up
                n = (32 - p) // s.stride + 1
                r = int(row // s.stride >= (n + 1) // 2)
                c = int(col // s.stride >= (n + 1) // 2)
                out[i, r, c] += f
    return out.reshape(len(images), -1)


def _fitted(settings=SETTINGS, images=None, seed=0) -> KMeansFeatures:
    extractor = KMeansFeatures(settings)
    extractor.fit(_images(12, 1) if images is None else images, np.random.default_rng(seed))
    return extractor


@pytest.mark.parametrize("stride", [1, 3])
def test_transform_matches_the_loop_version(stride):
    extractor = _fitted({**SETTINGS, "stride": stride})
    images = _images(3, 2)
    fast = extractor.transform(images, workers=2)
    assert fast.dtype == np.float32
    assert fast.shape == (3, 4 * 5)
    slow = _slow_features(extractor, images)
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-3 * np.abs(slow).max())


def test_features_do_not_depend_on_chunking_or_threads():
    extractor = _fitted()
    images = _images(40, 3)
    together = extractor.transform(images, workers=2)
    alone = np.concatenate([extractor.transform(images[i : i + 1], workers=1) for i in range(40)])
    np.testing.assert_array_equal(together, alone)


def test_same_seed_gives_bit_identical_state_and_features():
    a, b = _fitted(seed=7), _fitted(seed=7)
    for key in a.state:
        np.testing.assert_array_equal(a.state[key], b.state[key])
    images = _images(5, 4)
    np.testing.assert_array_equal(a.transform(images), b.transform(images))
    c = _fitted(seed=8)
    assert not np.array_equal(a.state["centroids"], c.state["centroids"])


def test_state_round_trips_through_plain_arrays():
    a = _fitted()
    b = KMeansFeatures.from_state(a.settings_dict(), {k: v.copy() for k, v in a.state.items()})
    images = _images(4, 5)
    np.testing.assert_array_equal(a.transform(images), b.transform(images))


def test_a_state_of_the_wrong_shape_is_refused():
    a = _fitted()
    with pytest.raises(WeightsError, match="centroids"):
        KMeansFeatures.from_state({**SETTINGS, "num_centroids": 6}, a.state)
    with pytest.raises(WeightsError, match="whitening"):
        KMeansFeatures.from_state(SETTINGS, {"centroids": a.state["centroids"]})


def test_whitening_makes_sampled_patches_uncorrelated():
    extractor = KMeansFeatures({**SETTINGS, "patches_sampled": 4000})
    rng = np.random.default_rng(0)
    patches = extractor.sample_patches(_images(50, 6), rng).astype(np.float64)
    extractor.fit(_images(50, 6), np.random.default_rng(0))
    white = (patches - extractor.state["whitening_mean"]) @ extractor.state["whitening"]
    cov = np.cov(white, rowvar=False)
    eigenvalues = np.linalg.eigvalsh(np.cov(patches, rowvar=False))
    expected = np.sort(eigenvalues / (np.maximum(eigenvalues, 0) + 0.1))
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(cov)), expected, atol=2e-4)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 2e-4 + 0.05 * np.abs(cov).max()


def test_sampled_patches_are_patches_of_the_images():
    extractor = KMeansFeatures(SETTINGS)
    images = _images(3, 9)
    sampled = extractor.sample_patches(images, np.random.default_rng(1))
    every = np.concatenate([extract_patches(images, 6, 1)])
    every -= every.mean(axis=1, keepdims=True)
    var = (every**2).sum(axis=1) / 107
    every /= np.sqrt(var + CONTRAST_EPSILON)[:, None]
    for patch in sampled[:20]:
        assert np.abs(every - patch).max(axis=1).min() < 1e-4


def test_extract_patches_orders_positions_and_pixels():
    images = _images(2, 10)
    patches = extract_patches(images, 4, 2)
    planes = images.reshape(2, 3, 32, 32)
    positions = (32 - 4) // 2 + 1
    assert patches.shape == (2 * positions**2, 48)
    k = 1 * positions**2 + 3 * positions + 5  # second image, row 3, column 5
    np.testing.assert_array_equal(patches[k], planes[1, :, 6:10, 10:14].ravel())


def test_lloyd_matches_a_loop_version():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 4)).astype(np.float32)
    centroids = lloyd(x, 6, 4, np.random.default_rng(3))
    start = x[np.random.default_rng(3).choice(300, size=6, replace=False)].astype(np.float64)
    c = start.copy()
    for _ in range(4):
        labels = [int(np.argmin([np.sum((row - ck) ** 2) for ck in c])) for row in x]
        for k in range(6):
            members = x[np.array(labels) == k]
            assert len(members)  # this data leaves no centroid empty
            c[k] = members.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(centroids, c, rtol=1e-5, atol=1e-6)


def test_nearest_centroid_against_a_loop():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3)).astype(np.float32)
    c = rng.standard_normal((7, 3)).astype(np.float32)
    expected = [int(np.argmin(((c - row) ** 2).sum(axis=1))) for row in x]
    np.testing.assert_array_equal(nearest_centroid(x, c), expected)


def test_region_edges_round_half_up():
    np.testing.assert_array_equal(region_edges(27, 2), [0, 14, 27])
    np.testing.assert_array_equal(region_edges(9, 3), [0, 3, 6, 9])
    np.testing.assert_array_equal(region_edges(10, 4), [0, 3, 5, 8, 10])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("num_centroids", 0),
        ("patch_size", 33),
        ("stride", 1.5),
        ("whitening_epsilon", 0),
        ("pooling_grid", 0),
        ("kmeans_iterations", True),
        ("patches_sampled", 4),
        ("seed", -1),
    ],
)
def test_bad_settings_are_refused_by_name(key, value):
    with pytest.raises(ConfigError, match=f"features.kmeans.{key}"):
        KMeansFeatures({**SETTINGS, key: value})


def test_unknown_settings_are_refused():
    with pytest.raises(ConfigError, match="num_centriods"):
        KMeansFeatures({"num_centriods": 4})


def test_centroid_images_undo_the_whitening():
    extractor = _fitted()
    images = _images(2, 11)
    patches = extract_patches(images, 6, 1)[::97][:5].astype(np.float64)
    patches -= patches.mean(axis=1, keepdims=True)
    patches /= np.sqrt((patches**2).sum(axis=1) / 107 + CONTRAST_EPSILON)[:, None]
    state = extractor.state
    white = (patches - state["whitening_mean"]) @ state["whitening"]
    extractor.state = {**state, "centroids": white.astype(np.float32)}
    shown = centroid_images(extractor)
    assert shown.shape == (5, 6, 6, 3) and shown.dtype == np.uint8
    for picture, patch in zip(shown, patches, strict=True):
        unit = (patch - patch.min()) / (patch.max() - patch.min())
        expected = np.rint(255 * unit).reshape(3, 6, 6).transpose(1, 2, 0)
        assert np.abs(picture.astype(int) - expected).max() <= 1


def test_nearest_centroid_over_many_chunks_against_float64_distances():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20_000, 5)).astype(np.float32)  # more rows than one chunk
    c = rng.standard_normal((9, 5)).astype(np.float32)
    d2 = ((x[:, None, :].astype(np.float64) - c[None].astype(np.float64)) ** 2).sum(axis=2)
    nearest = np.sort(d2, axis=1)
    clear = nearest[:, 1] - nearest[:, 0] > 1e-4  # no near-tie that float32 may resolve otherwise
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(nearest_centroid(x, c)[clear], d2.argmin(axis=1)[clear])
