"""features.flip: the mirrored training images' features, kept beside the cache, added to the
training split only."""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager

import numpy as np
import pytest
from click.testing import CliRunner
from test_features_commands import KMEANS, QUICK

from svmtrain.cli import main
from svmtrain.config import load_config
from svmtrain.core.objective import StackedRows
from svmtrain.errors import ConfigError
from svmtrain.experiments.common import load_splits
from svmtrain.features import check_feature_name, make_extractor
from svmtrain.features.cache import STAMP
from svmtrain.features.flips import FLIPPED, MOMENTS, mirrored


@pytest.fixture
def run_data(feature_run_data):
    return feature_run_data


def _config(run_data, *more):
    sets = run_data.args[1::2]
    return load_config(QUICK, [*sets, *KMEANS, *more])


def test_mirrored_reverses_every_row_of_every_plane():
    images = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    flipped = mirrored(images)
    for n in range(3):
        for c in range(3):
            for row in range(32):
                for col in range(32):
                    at = c * 1024 + row * 32
                    assert flipped[n, at + col] == images[n, at + 31 - col]


def test_flip_adds_the_mirrored_training_images_only(run_data, monkeypatch):
    plain = load_splits(_config(run_data), progress=False)
    lines = []
    flip = ("features.flip=true", "preprocess.scaling=standardize")
    flipped = load_splits(_config(run_data, *flip), progress=False)
    n = len(plain.y_train)
    # no copy: every split is rows of the cache's memory maps, the mirrors a second block
    assert all(isinstance(getattr(plain, s), np.memmap) for s in ("X_train", "X_val", "X_test"))
    assert isinstance(flipped.X_train, StackedRows)
    assert all(isinstance(block, np.memmap) for block in flipped.X_train.blocks)
    assert flipped.X_train.shape == (2 * n, plain.X_train.shape[1])
    np.testing.assert_array_equal(flipped.X_train[:n], plain.X_train)
    # standardised with the moments of every row it trains on, the mirrors' too
    both = np.asarray(flipped.X_train[:], dtype=np.float64)
    np.testing.assert_allclose(flipped.mean, both.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flipped.scale, both.std(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(flipped.mean, plain.mean, rtol=1e-3)
    np.testing.assert_array_equal(flipped.y_train, np.concatenate([plain.y_train] * 2))
    for split in ("X_val", "X_test", "y_val", "y_test"):
        np.testing.assert_array_equal(getattr(flipped, split), getattr(plain, split))
    # An independent reference: the images mirrored in the channels-last layout by np.flip,
    # their features by the same extractor. Blocks of other sizes meet other BLAS kernels (an
    # AVX2 machine's differ by 3e-5 where the distances cancel); a wrong row differs by O(1).
    images = run_data.archive.x_train[:n].reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
    by_hand = np.flip(images, axis=2).transpose(0, 3, 1, 2).reshape(n, 3072)
    features = flipped.feature_transform.extractor.transform(np.ascontiguousarray(by_hand))
    np.testing.assert_allclose(flipped.X_train[n : 2 * n], features, rtol=1e-4, atol=1e-4)
    # The mirrored features are cached: a second load computes nothing.
    (cache_dir,) = (run_data.data_dir / "features").glob("kmeans-*")
    assert (cache_dir / FLIPPED).is_file()

    def refuse(*_args, **_kwargs):
        raise AssertionError("the features were computed again")

    monkeypatch.setattr(type(make_extractor("kmeans")), "_transform_chunk", refuse)
    again = load_splits(_config(run_data, *flip), progress=False, log=lines.append)
    np.testing.assert_array_equal(again.X_train[:], flipped.X_train[:])
    np.testing.assert_array_equal(again.scale, flipped.scale)
    assert lines == []  # nothing built, nothing copied: the rows are read from the cache


@pytest.mark.parametrize("damage", ["missing", "not an npz", "wrong size"])
def test_the_mirrors_moments_are_computed_again_when_missing_or_damaged(run_data, damage):
    first = load_splits(_config(run_data, "features.flip=true"), progress=False)
    (cache_dir,) = (run_data.data_dir / "features").glob("kmeans-*")
    path = cache_dir / MOMENTS
    if damage == "missing":  # a cache whose mirrors were built before their moments were kept
        path.unlink()
    elif damage == "not an npz":
        path.write_bytes(b"garbage")
    else:
        np.savez(path, mean=np.zeros(3), std=np.ones(3))
    lines = []
    again = load_splits(_config(run_data, "features.flip=true"), progress=False, log=lines.append)
    assert any("moments of the mirrored" in line for line in lines), lines
    np.testing.assert_array_equal(again.mean, first.mean)
    np.testing.assert_array_equal(again.scale, first.scale)
    assert sorted(p.name for p in cache_dir.glob(".*tmp")) == []


def test_fit_with_flip_says_so_and_trains(run_data, tmp_path):
    sets = [a for s in [*KMEANS, "features.flip=true"] for a in ("--set", s)]
    result = CliRunner().invoke(
        main, ["fit", "-c", str(QUICK), *run_data.args, *sets, "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    # every training image of the archive, as train.npy holds them; fit takes its split's rows
    assert "features kmeans: extracting mirrored 100 images in" in result.output


def test_flip_of_pixels_is_refused():
    with pytest.raises(ConfigError, match=r"features\.flip adds"):
        check_feature_name(load_config(None, ["features.flip=true"]).features)


@contextmanager
def _adding_mirrors(cache_dir):
    """The lock a process adding the mirrored images holds on the cache's stamp."""
    fd = os.open(cache_dir / STAMP, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_a_cache_whose_mirrors_are_being_added_is_not_cleared(run_data):
    load_splits(_config(run_data, "features.flip=true"), progress=False)
    (cache_dir,) = (run_data.data_dir / "features").glob("kmeans-*")
    data_dir = ["--data-dir", str(run_data.data_dir)]
    with _adding_mirrors(cache_dir):
        info = CliRunner().invoke(main, ["features", "info", *data_dir])
        assert "(adding the mirrored images)" in info.output
        every = CliRunner().invoke(main, ["features", "clear", "-y", *data_dir])
        assert every.exit_code == 0 and "No feature caches to delete" in every.output
        named = CliRunner().invoke(main, ["features", "clear", "-y", cache_dir.name, *data_dir])
        assert named.exit_code == 2 and "another svmtrain process is writing" in named.output
        assert (cache_dir / FLIPPED).is_file()
    done = CliRunner().invoke(main, ["features", "clear", "-y", *data_dir])
    assert done.exit_code == 0 and not cache_dir.exists()


def test_a_second_process_waits_for_the_mirrors_and_sweeps_what_a_dead_one_left(run_data):
    first = load_splits(_config(run_data, "features.flip=true"), progress=False)
    (cache_dir,) = (run_data.data_dir / "features").glob("kmeans-*")
    left = [cache_dir / f".{FLIPPED}.999999.tmp", cache_dir / f".{MOMENTS}.999999.tmp"]
    for path in left:  # what a process killed while adding the mirrors left
        path.write_bytes(b"partial")
    lines, got = [], []
    with _adding_mirrors(cache_dir):
        waiting = threading.Thread(
            target=lambda: got.append(
                load_splits(_config(run_data, "features.flip=true"), log=lines.append)
            )
        )
        waiting.start()
        waiting.join(timeout=2)
        assert waiting.is_alive() and not got  # it waits for the lock
    waiting.join(timeout=60)
    assert got and any("waiting for another svmtrain process" in line for line in lines)
    np.testing.assert_array_equal(got[0].scale, first.scale)
    assert not any(path.exists() for path in left)
