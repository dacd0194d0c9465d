"""The feature cache: built once, learned from the training split only, atomic, listed, cleared."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.config import load_config
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


def _abandoned(tmp_path, dirname: str, tag: str):
    """A build's temporary directory, stamped, whose process died (its stamp's lock is free)."""
    leftover = tmp_path / cache.FEATURES_DIR / f".{dirname}.{tag}.tmp"
    leftover.mkdir(parents=True)
    (leftover / cache.STAMP).write_text("1\n")
    (leftover / "train.npy").write_bytes(b"half")
    return leftover


def test_a_killed_build_is_listed_as_unfinished_then_swept(tmp_path):
    """Judged by its lock, not its PID: a leftover named with this very PID (a PID reused, as
    in a container) is abandoned all the same, and the next build sweeps it."""
    dataset = _dataset()
    dirname, _ = cache.cache_key(
        dataset.sha256, "kmeans", make_extractor("kmeans", KMEANS).settings_dict(), TRAIN
    )
    leftover = _abandoned(tmp_path, dirname, str(os.getpid()))
    (listed,) = cache.list_caches(tmp_path)
    assert not listed["finished"] and not listed["building"]
    _build(dataset, tmp_path)
    assert not leftover.exists()
    assert [e["finished"] for e in cache.list_caches(tmp_path)] == [True]


def test_a_folder_svmtrain_did_not_make_is_no_cache(tmp_path):
    """A user's folders under features/ (named like a build's or not) are neither listed nor
    deleted, and a build beside them leaves them as they were."""
    mine = [tmp_path / cache.FEATURES_DIR / name for name in ("mine", ".kmeans-0123.77.tmp")]
    for folder in mine:
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("mine\n")
    assert cache.list_caches(tmp_path) == []
    with pytest.raises(DataError, match="not made by svmtrain"):
        cache.remove_caches([str(mine[0])])
    _build(_dataset(), tmp_path)
    assert all((folder / "notes.txt").read_text() == "mine\n" for folder in mine)


def test_a_damaged_cache_is_rebuilt(tmp_path, caplog):
    dataset = _dataset()
    built = _build(dataset, tmp_path)
    expected = np.array(built.train)
    (built.path / "test.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(DataError, match="damaged"):
        cache.open_cache(built.path)
    rebuilt = _build(dataset, tmp_path)
    (notice,) = caplog.messages
    assert notice.startswith(f"The feature cache {built.path} is damaged (")
    assert notice.endswith("); building it again.")
    np.testing.assert_array_equal(rebuilt.train, expected)


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
    lines = shown.output.replace(str(tmp_path), "<data dir>").splitlines()  # paths are as long
    assert max(len(line) for line in lines) < 100  # as they are: the rest must fit
    words = shown.output.split()
    for key, value in built.meta["settings"].items():
        assert f"{key}={value}" in words


def test_a_running_build_is_not_cleared(tmp_path):
    """A build holds its stamp's lock while it runs: listed as building, never deleted."""
    running = tmp_path / cache.FEATURES_DIR / ".kmeans-0123.x1y2.tmp"
    running.mkdir(parents=True)
    with cache._stamped(running):
        (listed,) = cache.list_caches(tmp_path)
        assert listed["building"]
        result = CliRunner().invoke(main, ["features", "clear", "-y", "--data-dir", str(tmp_path)])
        assert result.exit_code == 0 and running.is_dir()
    assert not cache.list_caches(tmp_path)[0]["building"]


def test_a_disk_that_fills_during_extraction_is_an_error_not_sigbus(tmp_path, small_tmpfs):
    """Issue 19 #3: writing features into a memory map on a full disk was SIGBUS (exit 135,
    no message, the temporary directory left). With the disk's room misreported, so that the
    check before any work passes, the blocks are claimed before mapping: one DataError. In a
    child process, as a regression would kill the process."""
    full = small_tmpfs(320 * 1024)  # room for the learned state, not the features
    driver = (
        "import shutil, sys\n"
        "import numpy as np\n"
        "from svmtrain.data.cache import CIFAR10\n"
        "from svmtrain.errors import DataError\n"
        "from svmtrain.features import cache\n"
        "plenty = shutil._ntuple_diskusage(1 << 40, 0, 1 << 40)\n"
        "cache.shutil.disk_usage = lambda path: plenty\n"
        "rng = np.random.default_rng(0)\n"
        "images = rng.integers(0, 256, (400, 3072), dtype=np.uint8)\n"
        "data = CIFAR10(images, images[:, 0], images[:40], images[:40, 0], tuple('abcdefghij'),"
        " None, 'ab' * 32)\n"
        "settings = {'num_centroids': 64, 'stride': 4, 'kmeans_iterations': 1,"
        " 'patches_sampled': 200}\n"
        "try:\n"
        "    cache.load_or_build(data, 'kmeans', settings, slice(0, 300), sys.argv[1],"
        " progress=False)\n"
        "except DataError as err:\n"
        "    print(err)\n"
        "    sys.exit(1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", driver, str(full)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stdout and "--data-dir" in done.stdout
    assert [p.name for p in (full / cache.FEATURES_DIR).iterdir()] == []


def test_a_cache_built_before_stamps_is_known_by_its_name_and_meta(tmp_path):
    """A finished cache without the stamp (built by svmtrain before it stamped them) is
    still svmtrain's, as its name is the digest of what its meta.json says it holds: listed
    and cleared. Renamed, it is a folder like any other."""
    built = _build(_dataset(), tmp_path)
    (built.path / cache.STAMP).unlink()
    assert [e["path"] for e in cache.list_caches(tmp_path)] == [str(built.path)]
    renamed = built.path.with_name("kmeans-" + "0" * 16)
    built.path.rename(renamed)
    assert cache.list_caches(tmp_path) == []
    renamed.rename(built.path)
    assert cache.remove_caches([str(built.path)]) > 0 and not built.path.exists()


def test_a_cache_is_readable_by_others_as_the_data_cache_is(tmp_path):
    built = _build(_dataset(), tmp_path)
    assert built.path.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize(
    ("name", "directory"),
    # kmeans-917dd5f532ef4d88 until its numbers changed (KMeansFeatures.version 2, issue 18)
    [("kmeans", "kmeans-2cd29417765b0871"), ("hog", "hog_color-15c417a74618b7cb")],
)
def test_the_shipped_feature_configs_keep_their_cache_directories(name, directory):
    """The names the code gave before extractor settings became typed config sections (commit
    1cdcf73): a cache built then is found now."""
    cfg = load_config(name)
    settings = make_extractor(cfg.features.name, getattr(cfg.features, cfg.features.name))
    key = cache.cache_key("0" * 64, cfg.features.name, settings.settings_dict(), slice(0, 29000))
    assert key[0] == directory
