"""HOG and hue features against per-pixel loops (math.atan2, colorsys for the hue)."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest

from svmtrain.errors import ConfigError
from svmtrain.features.hog_color import HogColorFeatures


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _slow_features(images: np.ndarray, cell: int, bins: int, hue_bins: int) -> np.ndarray:
    rows = []
    for image in images.reshape(-1, 3, 32, 32).astype(np.float64):
        grey = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
        cells = 32 // cell
        hist = np.zeros((cells, cells, bins))
        colours = np.zeros(hue_bins)
        for y in range(32):
            for x in range(32):
                gx = grey[y, x + 1] - grey[y, x] if x < 31 else 0.0
                gy = grey[y + 1, x] - grey[y, x] if y < 31 else 0.0
                degrees = math.degrees(math.atan2(gy, gx)) % 180.0
                b = min(int(degrees / (180.0 / bins)), bins - 1)
                if y < cells * cell and x < cells * cell:
                    hist[y // cell, x // cell, b] += math.hypot(gx, gy) / cell**2
                h = colorsys.rgb_to_hsv(*(image[:, y, x] / 255.0))[0]
                colours[min(int(h * hue_bins), hue_bins - 1)] += 1 / 1024
        rows.append(np.concatenate([hist.ravel(), colours]))
    return np.array(rows)


@pytest.mark.parametrize(("cell", "bins", "hue_bins"), [(8, 9, 10), (6, 4, 3)])
def test_transform_matches_the_loop_version(cell, bins, hue_bins):
    images = _images(3, 0)
    images[0, :1024] = images[0, 1024:2048]  # some pixels with red == green: hue ties
    images[1, 2048:] = images[1, :1024]  # red == blue
    images[2, :100] = images[2, 1024:1124] = images[2, 2048:2148] = 77  # grey: hue 0, no gradient
    extractor = HogColorFeatures(
        {"cell_size": cell, "orientation_bins": bins, "hue_bins": hue_bins}
    )
    extractor.fit(images, np.random.default_rng(0))
    fast = extractor.transform(images, workers=2)
    assert fast.dtype == np.float32
    assert fast.shape == (3, extractor.dim) == (3, (32 // cell) ** 2 * bins + hue_bins)
    np.testing.assert_allclose(fast, _slow_features(images, cell, bins, hue_bins), atol=2e-4)


def test_features_do_not_depend_on_chunking_and_state_is_empty():
    extractor = HogColorFeatures()
    assert extractor.fit(_images(2, 1), np.random.default_rng(0)) == {}
    images = _images(300, 2)
    together = extractor.transform(images)
    alone = np.concatenate([extractor.transform(images[i : i + 1]) for i in range(0, 300, 37)])
    np.testing.assert_array_equal(together[::37], alone)


@pytest.mark.parametrize(
    ("key", "value"), [("cell_size", 1), ("orientation_bins", 0), ("hue_bins", "10")]
)
def test_bad_settings_are_refused_by_name(key, value):
    with pytest.raises(ConfigError, match=f"features.hog_color.{key}"):
        HogColorFeatures({key: value})
