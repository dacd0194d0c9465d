"""Preprocessing against float64 numpy written out directly."""

from types import SimpleNamespace

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.core.scaling import SCALINGS
from svmtrain.data.preprocess import PIXELS, fit_stats, prepare, split_indices, transform
from svmtrain.errors import ConfigError


def _pixels(rng, n, low=0, high=256):
    return rng.integers(low, high, size=(n, PIXELS), dtype=np.uint8)


@pytest.mark.parametrize("scaling", list(SCALINGS))
def test_fit_stats_match_float64_numpy(scaling):
    x = _pixels(np.random.default_rng(0), 5000)  # more rows than one conversion chunk
    mean, scale = fit_stats(x, scaling=scaling)
    ref_mean = x.astype(np.float64).mean(axis=0)
    ref_scale = {"none": 1.0, "unit": 255.0, "standardize": x.astype(np.float64).std(axis=0)}
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6)
    np.testing.assert_allclose(scale, np.broadcast_to(ref_scale[scaling], (PIXELS,)), rtol=1e-5)
    assert mean.dtype == scale.dtype == np.float32


def test_no_mean_subtraction_gives_zero_mean():
    mean, _ = fit_stats(_pixels(np.random.default_rng(1), 10), subtract_mean=False)
    assert not mean.any()


def test_constant_pixel_is_not_divided_by_zero():
    x = _pixels(np.random.default_rng(2), 50)
    x[:, 7] = 42
    mean, scale = fit_stats(x, scaling="standardize")
    X = transform(x, mean, scale, np.float32)
    assert scale[7] == 1.0
    assert np.all(X[:, 7] == 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_centres_scales_and_appends_bias(dtype):
    rng = np.random.default_rng(3)
    x = _pixels(rng, 4500)
    mean = rng.uniform(0, 255, PIXELS).astype(np.float32)
    scale = rng.uniform(1, 80, PIXELS).astype(np.float32)
    X = transform(x, mean, scale, dtype)
    assert X.shape == (4500, PIXELS + 1) and X.dtype == dtype
    ref = (x.astype(np.float64) - mean.astype(np.float64)) / scale.astype(np.float64)
    np.testing.assert_allclose(X[:, :PIXELS], ref, rtol=1e-5 if dtype == np.float32 else 1e-7)
    assert np.all(X[:, PIXELS] == 1.0)


@pytest.mark.parametrize(
    ("n", "val_size", "num_train", "train", "val"),
    [
        (100, 10, None, slice(0, 90), slice(90, 100)),
        (100, 10, 50, slice(0, 50), slice(90, 100)),
        (100, 99, 1, slice(0, 1), slice(1, 100)),
    ],
)
def test_split_indices(n, val_size, num_train, train, val):
    assert split_indices(n, val_size, num_train) == (train, val)


@pytest.mark.parametrize(
    ("n", "val_size", "num_train", "message"),
    [
        (100, 100, None, "data.val_size must be smaller than the 100 training images. Got 100"),
        (100, 10, 91, "data.num_train must be at most 90"),
    ],
)
def test_split_indices_rejects_impossible_sizes(n, val_size, num_train, message):
    with pytest.raises(ConfigError, match=message):
        split_indices(n, val_size, num_train)


def _dataset(rng):
    """Train and test sets whose pixel levels differ, so leaks of test statistics show."""
    return SimpleNamespace(
        x_train=_pixels(rng, 120, 0, 100),
        y_train=rng.integers(0, 10, 120).astype(np.uint8),
        x_test=_pixels(rng, 30, 150, 256),
        y_test=rng.integers(0, 10, 30).astype(np.uint8),
        class_names=tuple("abcdefghij"),
        sha256="0" * 64,
    )


def test_prepare_uses_training_split_statistics_only():
    data = _dataset(np.random.default_rng(4))
    cfg = load_config(overrides=["data.val_size=20", "data.num_train=80", "data.num_test=25"])
    s = prepare(data, cfg)
    np.testing.assert_allclose(s.mean, data.x_train[:80].astype(np.float64).mean(0), rtol=1e-6)
    # The pixels stay as the dataset holds them: the very rows, uint8, views and not copies.
    assert s.X_train.dtype == np.uint8 and s.num_features == PIXELS + 1
    np.testing.assert_array_equal(s.X_train, data.x_train[:80])
    np.testing.assert_array_equal(s.X_val, data.x_train[100:])
    np.testing.assert_array_equal(s.X_test, data.x_test[:25])
    for X, source in ((s.X_train, data.x_train), (s.X_val, data.x_train), (s.X_test, data.x_test)):
        assert X.dtype == np.uint8 and np.shares_memory(X, source)
    np.testing.assert_array_equal(s.y_val, data.y_train[100:])
    assert s.y_train.dtype == np.intp
    assert s.data_sha256 == "0" * 64
    X_test = s.design(s.X_test, np.float32)
    assert X_test.shape == (25, PIXELS + 1) and X_test.dtype == np.float32
    np.testing.assert_allclose(X_test[:, :PIXELS], data.x_test[:25] - s.mean, rtol=1e-6)
    np.testing.assert_array_equal(X_test[:, PIXELS], 1.0)


def test_prepare_rejects_more_test_images_than_exist():
    cfg = load_config(overrides=["data.val_size=20", "data.num_test=31"])
    with pytest.raises(ConfigError, match=r"data.num_test must be at most 30"):
        prepare(_dataset(np.random.default_rng(5)), cfg)


def test_moments_over_many_chunks_are_exact():
    """More rows than two chunks, with the largest bytes (where uint16 squares and uint32 sums
    are tightest): the integer sums equal float64 ones."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (9000, PIXELS), dtype=np.uint8)
    x[:, 0] = 255
    mean, scale = fit_stats(x, scaling="standardize")
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(scale[1:], x[:, 1:].astype(np.float64).std(axis=0), rtol=1e-6)
    assert mean[0] == 255.0 and scale[0] == 1.0  # a constant pixel is left unscaled
