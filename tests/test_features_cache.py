"""The feature cache: built once, learned from the training split only, atomic, listed, cleared."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.data.cache import CIFAR10
from svmtrain.errors import DataError
from svmtrain.features import cache, make_extractor

KMEANS = {"num_centroids": 4, "stride": 4, "kmeans_iterations": 2, "patches_sampled": 200}
TRAIN = slice(0, 30)  # the first 30 of 40 training images; the last 10 play validation


def _dataset(seed: int = 0, sha: str = "ab" * 32) -> CIFAR10:
    rng = np.random.default_rng(seed)
    return CIFAR10(
        x_train=rng.integers(0, 256, (40, 3072), dtype=np.uint8),
        y_train=rng.integers(0, 10, 40, dtype=np.uint8),
        x_test=rng.integers(0, 256, (12, 3072), dtype=np.uint8),
        y_test=rng.integers(0, 10, 12, dtype=np.uint8),
        class_names=tuple("abcdefghij"),
        archive=None,
        sha256=sha,
    )


def _build(dataset, tmp_path, settings=KMEANS, train=TRAIN):
    return cache.load_or_build(dataset, "kmeans", settings, train, tmp_path, progress=False)


def test_cache_holds_the_features_of_every_image(tmp_path):
    dataset = _dataset()
    built = _build(dataset, tmp_path)
    again = make_extractor("kmeans", KMEANS)
    again.fit(dataset.x_train[TRAIN], np.random.default_rng(0))
    for key in again.state:
        np.testing.assert_array_equal(built.extractor.state[key], again.state[key])
    np.testing.assert_array_equal(built.train, again.transform(dataset.x_train))
    np.testing.assert_array_equal(built.test, again.transform(dataset.x_test))
    rows = built.train[TRAIN].astype(np.float64)
    np.testing.assert_allclose(built.mean, rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(built.std, rows.std(axis=0), rtol=1e-9)
    assert not built.train.flags.writeable


def test_a_second_call_reads_the_cache_without_fitting(tmp_path, monkeypatch):
    dataset = _dataset()
    first = _build(dataset, tmp_path)

    def refuse(*_args, **_kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr(type(first.extractor), "_fit", refuse)
    second = _build(dataset, tmp_path)
    assert second.path == first.path
    np.testing.assert_array_equal(second.train, first.train)


def test_state_is_learned_from_the_training_split_only(tmp_path):
    original = _dataset()
    changed = _dataset()
    changed.x_train[TRAIN.stop :] = 255 - changed.x_train[TRAIN.stop :]  # other validation
    changed.x_test[:] = 0  # other test images
    a = _build(original, tmp_path / "a")
    b = _build(changed, tmp_path / "b")
    for key in a.extractor.state:
        np.testing.assert_array_equal(a.extractor.state[key], b.extractor.state[key])
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.train[TRAIN], b.train[TRAIN])
    assert not np.array_equal(a.test, b.test)
    changed.x_train[0] = 0  # a training image: the centroids move
    c = _build(changed, tmp_path / "c")
    assert not np.array_equal(a.extractor.state["centroids"], c.extractor.state["centroids"])


def test_the_key_follows_archive_settings_and_split(tmp_path):
    dataset = _dataset()
    paths = {
        _build(dataset, tmp_path).path,
        _build(dataset, tmp_path, settings={**KMEANS, "seed": 1}).path,
        _build(dataset, tmp_path, train=slice(0, 20)).path,
        _build(_dataset(sha="cd" * 32), tmp_path).path,
    }
    assert len(paths) == 4
    assert len(cache.list_caches(tmp_path)) == 4


def test_an_interrupted_build_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    dataset = _dataset()
    extractor_class = type(make_extractor("kmeans", KMEANS))
    real = extractor_class._transform_chunk
    calls = []

    def interrupted(self, images):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, images)

    monkeypatch.setattr(extractor_class, "_transform_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.load_or_build(dataset, "kmeans", KMEANS, TRAIN, tmp_path, progress=False)
    assert list((tmp_path / cache.FEATURES_DIR).iterdir()) == []
    monkeypatch.setattr(extractor_class, "_transform_chunk", real)
    assert _build(dataset, tmp_path).train.shape == (40, 16)


def test_a_killed_build_is_listed_as_unfinished_then_swept(tmp_path):
    dataset = _dataset()
    dirname, _ = cache.cache_key(
        dataset.sha256, "kmeans", make_extractor("kmeans", KMEANS).settings_dict(), TRAIN
    )
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    leftover = tmp_path / cache.FEATURES_DIR / f".{dirname}.{int(dead.stdout)}.tmp"
    leftover.mkdir(parents=True)
    (leftover / "train.npy").write_bytes(b"half")
    (listed,) = cache.list_caches(tmp_path)
    assert not listed["finished"] and not listed["building"]
    _build(dataset, tmp_path)
    assert not leftover.exists()
    assert [e["finished"] for e in cache.list_caches(tmp_path)] == [True]


def test_a_damaged_cache_is_rebuilt(tmp_path):
    dataset = _dataset()
    built = _build(dataset, tmp_path)
    expected = np.array(built.train)
    (built.path / "test.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(DataError, match="damaged"):
        cache.open_cache(built.path)
    np.testing.assert_array_equal(_build(dataset, tmp_path).train, expected)


def test_cli_info_and_clear(tmp_path):
    dataset = _dataset()
    built = _build(dataset, tmp_path)
    runner = CliRunner()
    shown = runner.invoke(main, ["features", "info", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert built.path.name in shown.output and "num_centroids=4" in shown.output
    refused = runner.invoke(main, ["features", "clear", "--data-dir", str(tmp_path)], input="n\n")
    assert refused.exit_code != 0 and built.path.is_dir()
    unknown = runner.invoke(main, ["features", "clear", "-y", "--data-dir", str(tmp_path), "x"])
    assert unknown.exit_code == 2 and "'x'" in unknown.output and built.path.is_dir()
    cleared = runner.invoke(
        main, ["features", "clear", "--yes", "--data-dir", str(tmp_path), built.path.name]
    )
    assert cleared.exit_code == 0, cleared.output
    assert not built.path.exists()
    empty = runner.invoke(main, ["features", "info", "--data-dir", str(tmp_path)])
    assert "No feature caches" in empty.output


def test_cli_info_stays_under_100_columns_with_kmeans_settings(tmp_path):
    """Every setting is shown, wrapped under its cache, none cut."""
    built = _build(_dataset(), tmp_path)
    shown = CliRunner().invoke(main, ["features", "info", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert max(len(line) for line in shown.output.splitlines()) < 100
    words = shown.output.split()
    for key, value in built.meta["settings"].items():
        assert f"{key}={value}" in words


def test_a_running_build_is_not_cleared(tmp_path):
    running = tmp_path / cache.FEATURES_DIR / f".kmeans-0123.{os.getpid()}.tmp"
    running.mkdir(parents=True)
    result = CliRunner().invoke(main, ["features", "clear", "-y", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and running.is_dir()
