"""Every command on features: fit, evaluate, plot, gradcheck, sweep-step, search, features build,
and weights.npz alone turning raw images into predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.config import HogColorSettings, KMeansSettings, load_config
from svmtrain.errors import ConfigError, WeightsError
from svmtrain.features import check_feature_name, make_extractor
from svmtrain.io import runs
from svmtrain.model import LinearModel

QUICK = Path(__file__).resolve().parent.parent / "configs" / "quick.yaml"
KMEANS = [
    "features.name=kmeans",
    "features.kmeans.num_centroids=6",
    "features.kmeans.stride=4",
    "features.kmeans.kmeans_iterations=2",
    "features.kmeans.patches_sampled=300",
    "preprocess.scaling=standardize",
    "optim.learning_rate=1e-3",
    "model.reg=1e-3",
]


@pytest.fixture
def run_data(feature_run_data):
    return feature_run_data


@pytest.fixture
def archive(run_data):
    return run_data.archive


@pytest.fixture
def data_args(run_data):
    return run_data.args


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _sets(settings):
    return [arg for s in settings for arg in ("--set", s)]


def test_fit_on_kmeans_features_then_evaluate_with_the_weights_alone(archive, data_args, tmp_path):
    out = tmp_path / "run"
    fitted = _run("fit", "-c", QUICK, *data_args, *_sets(KMEANS), "--out", out, "-q")
    assert fitted.exit_code == 0, fitted.output
    summary = json.loads((out / runs.SUMMARY).read_text())
    weights = LinearModel.load(out / runs.WEIGHTS)
    assert weights.W.shape == (10, 4 * 6 + 1)
    assert weights.transform.extractor.name == "kmeans"

    report = json.loads(_run("evaluate", "--weights", out / runs.WEIGHTS, "--json", "-q").output)
    assert report["accuracy"] == summary["test_acc"]
    # An independent reference: the extractor rebuilt from the file's arrays by hand, its
    # features of the archive's own test images, the stored scaling and W, in float64.
    with np.load(out / runs.WEIGHTS) as npz:
        assert str(npz["transform"]) == "features"
        settings = json.loads(str(npz["features.extractor"]))["settings"]
        prefix = "features.state."
        state = {k[len(prefix) :]: npz[k] for k in npz.files if k.startswith(prefix)}
        extractor = type(make_extractor("kmeans", settings)).from_state(settings, state)
        features = extractor.transform(archive.x_test).astype(np.float64)
        X = (features - npz["features.mean"]) / npz["features.scale"]
        scores = np.hstack([X, np.ones((len(X), 1))]) @ npz["W"].astype(np.float64).T
    assert report["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == archive.y_test))
    predicted = _run("predict", "-w", out / runs.WEIGHTS, "-i", 0, "-i", 7, "--json", "-q")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.output)
    classes = [row["class"] for row in rows]
    names = LinearModel.load(out / runs.WEIGHTS).class_names
    assert classes == [names[scores[0].argmax()], names[scores[7].argmax()]]
    np.testing.assert_allclose(list(rows[1]["scores"].values()), scores[7], rtol=1e-4, atol=1e-5)
    # Evaluate needs the weights alone: without the feature cache, the same report.
    data_dir = next(a.split("=", 1)[1] for a in data_args if a.startswith("data.dir="))
    cleared = _run("features", "clear", "--yes", "--data-dir", data_dir)
    assert cleared.exit_code == 0 and "Deleted 1" in cleared.output
    again = json.loads(_run("evaluate", "--weights", out / runs.WEIGHTS, "--json", "-q").output)
    assert again == report


def test_fit_is_bit_identical_with_the_same_seed_and_reuses_the_cache(data_args, tmp_path):
    args = ["fit", "-c", QUICK, *data_args, *_sets(KMEANS), "-q", "--out"]
    assert _run(*args, tmp_path / "a").exit_code == 0
    assert _run(*args, tmp_path / "b").exit_code == 0
    a, b = (np.load(tmp_path / run / runs.WEIGHTS) for run in ("a", "b"))
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    shown = _run("features", "info", "--data-dir", tmp_path / "data")
    assert shown.output.count("kmeans-") == 1


def test_fit_on_hog_color_features_and_plot(data_args, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    hog = ["features.name=hog_color", "preprocess.scaling=standardize"]
    fitted = _run("fit", "-c", QUICK, *data_args, *_sets(hog), "--out", out, "-q", "--plot")
    assert fitted.exit_code == 0, fitted.output
    assert LinearModel.load(out / runs.WEIGHTS).W.shape == (10, 16 * 9 + 10 + 1)
    assert (out / "curves.png").is_file() and not (out / "weights.png").exists()


def test_plot_of_a_kmeans_run_draws_the_centroids(data_args, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert _run("fit", "-c", QUICK, *data_args, *_sets(KMEANS), "--out", out, "-q").exit_code == 0
    drawn = _run("plot", out)
    assert drawn.exit_code == 0, drawn.output
    assert str(out / "centroids.png") in drawn.output
    assert (out / "centroids.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradcheck_sweep_and_search_run_on_the_feature_matrix(data_args, tmp_path):
    checked = _run(
        "gradcheck",
        "-c",
        QUICK,
        *data_args,
        *_sets(KMEANS),
        "--num-examples",
        10,
        "--all",
        "--json",
    )
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["passed"] and report["checked"] == 10 * 25  # W of 4 * 6 features and bias
    swept = _run(
        "sweep-step",
        "-c",
        QUICK,
        *data_args,
        *_sets(KMEANS),
        "--steps",
        "1e-6,1e-3",
        "-n",
        10,
        "--json",
    )
    assert swept.exit_code == 0, swept.output
    searched = _run(
        "search",
        "-c",
        QUICK,
        *data_args,
        *_sets(KMEANS),
        "--lr",
        "1e-3,1e-2",
        "--reg",
        "1e-3",
        "--epochs",
        1,
        "-j",
        1,
        "--out",
        tmp_path / "search",
        "--json",
        "-q",
    )
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.output)["trials"] == 2


def test_features_build_then_fit_reads_the_cache(data_args, tmp_path, monkeypatch):
    built = _run("features", "build", "-c", QUICK, *data_args, *_sets(KMEANS), "-q")
    assert built.exit_code == 0, built.output
    assert "kmeans" in built.output and "130 images x 24 features" in built.output

    def refuse(*_args, **_kwargs):
        raise AssertionError("the features were computed again")

    monkeypatch.setattr(type(make_extractor("kmeans")), "_fit", refuse)
    fitted = _run("fit", "-c", QUICK, *data_args, *_sets(KMEANS), "--out", tmp_path / "r", "-q")
    assert fitted.exit_code == 0, fitted.output


def test_features_build_of_pixels_says_there_is_nothing_to_build(data_args):
    result = _run("features", "build", "-c", QUICK, *data_args, "-q")
    assert result.exit_code == 1
    assert "features.name is pixels" in result.output


def test_config_settings_of_extractors(tmp_path):
    cfg = load_config(None, ["features.name=kmeans", "features.kmeans.num_centroids=400"])
    assert cfg.features.kmeans == KMeansSettings(num_centroids=400)  # the rest: defaults
    settings = make_extractor("kmeans", cfg.features.kmeans).settings_dict()
    assert settings["num_centroids"] == 400 and settings["patch_size"] == 6
    path = tmp_path / "c.yaml"
    path.write_text("features:\n  name: hog_color\n  hog_color:\n    cell_size: 4\n")
    assert load_config(path).features.hog_color == HogColorSettings(cell_size=4)
    for bad, message in [
        (
            ["features.kmeans.num_centroids=0"],
            "features.kmeans.num_centroids must be an int >= 1. Got 0 instead.",
        ),
        (
            ["features.kmeans.centroids=4"],
            "--set 'features.kmeans.centroids=4': 'centroids' is not a key of features.kmeans; "
            "did you mean 'num_centroids'?",
        ),
        (
            ["features.kmeans.whitening_epsilon=-1"],
            "features.kmeans.whitening_epsilon must be a float > 0. Got -1.0 instead.",
        ),
        (
            ["features.kmeans=4"],
            "features.kmeans must be a mapping of its keys (num_centroids, patch_size, stride, "
            "whitening_epsilon, pooling_grid, kmeans_iterations, patches_sampled, seed) to "
            "values. Got an int instead.",
        ),
        (["train.epochs.x=1"], "--set 'train.epochs.x=1': the key must be section.key"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(None, bad)
        assert str(caught.value).startswith(message)
    with pytest.raises(ConfigError, match=r"features\.name must be one of pixels, kmeans, hog"):
        check_feature_name(load_config(None, ["features.name=sift"]).features)


def test_a_weights_file_whose_extractor_is_damaged_is_refused(data_args, tmp_path):
    out = tmp_path / "run"
    assert _run("fit", "-c", QUICK, *data_args, *_sets(KMEANS), "--out", out, "-q").exit_code == 0
    with np.load(out / runs.WEIGHTS) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["features.state.centroids"] = arrays["features.state.centroids"][:3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(WeightsError, match="centroids"):
        LinearModel.load(tmp_path / "bad.npz")
    result = _run("evaluate", "--weights", tmp_path / "bad.npz", "-q")
    assert result.exit_code == 1 and "feature extractor" in result.output


def test_features_too_big_for_the_disk_are_refused_before_any_work(data_args, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(type(make_extractor("hog_color")), "_fit", refuse)
    free = shutil.disk_usage("/")._replace(free=5 * 10**8)
    monkeypatch.setattr("svmtrain.features.sizes.shutil.disk_usage", lambda _path: free)
    hog = ["features.name=hog_color", "features.hog_color.orientation_bins=100000"]
    for command in (["features", "build"], ["fit"]):
        result = _run(*command, "-c", QUICK, *data_args, *_sets(hog), "-q")
        assert result.exit_code == 1, result.output
        # 130 images x (16 cells x 100,000 bins + 10 hues) float32: 832.0 MB
        assert "features of 130 images (1,600,010 each) need 0.83 GB in" in result.output
        assert "0.50 GB are free" in result.output


def test_features_too_big_for_memory_are_refused_with_the_figure(data_args, monkeypatch):
    monkeypatch.setattr("svmtrain.features.sizes.available_memory", lambda: 10**8)
    hog = ["features.name=hog_color", "features.hog_color.orientation_bins=10000"]
    result = _run("features", "build", "-c", QUICK, *data_args, *_sets(hog), "-q")
    assert result.exit_code == 1, result.output
    assert "of memory to build, and this machine has 100.0 MB available" in result.output


def test_a_build_says_what_it_needs_then_a_line_per_phase(data_args):
    result = _run("features", "build", "-c", QUICK, *data_args, *_sets(KMEANS))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("features kmeans:")]
    assert "130 images x 24 features: 12.5 kB on disk" in lines[0]
    phases = [line.split(": ")[1].split(" ")[0] for line in lines[1:-1]]
    assert phases == ["sampling", "whitening", "k-means", "extracting", "moments"]
    assert "extracting 130 images in" in result.output
    quiet = _run("features", "build", "-c", QUICK, *data_args, *_sets(KMEANS), "-q")
    assert quiet.output.count("\n") == 1  # the result line alone


def test_evaluate_and_predict_read_the_cache_only_when_its_state_is_the_models(
    data_args, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    assert _run("fit", "-c", QUICK, *data_args, *_sets(KMEANS), "--out", out, "-q").exit_code == 0
    weights = out / runs.WEIGHTS
    report = _run("evaluate", "--weights", weights, "--json", "-q").output
    val = _run("evaluate", "--weights", weights, "--split", "val", "--json", "-q").output
    predicted = _run("predict", "-w", weights, "-i", 3, "-i", 0, "--json", "-q").output
    kmeans = type(make_extractor("kmeans"))
    computed = kmeans._transform_chunk

    def refuse(self, images):
        if len(images) > 3:  # loading a model scores 3 probe images (finite scores) only
            raise AssertionError("the features were computed, not read from the cache")
        return computed(self, images)

    monkeypatch.setattr(kmeans, "_transform_chunk", refuse)
    assert _run("evaluate", "--weights", weights, "--json", "-q").output == report
    assert _run("evaluate", "-w", weights, "--split", "val", "--json", "-q").output == val
    assert _run("predict", "-w", weights, "-i", 3, "-i", 0, "--json", "-q").output == predicted
    # A cache under the same name whose state is not the model's is not read: the features are
    # computed, with a line that says so, and the report is the same.
    (cache_dir,) = (Path(a.split("=", 1)[1]) / "features" for a in data_args if "data.dir=" in a)
    (path,) = cache_dir.glob("kmeans-*")
    with np.load(path / "state.npz") as npz:
        state = {k: npz[k] for k in npz.files}
    state["centroids"] = state["centroids"] + np.float32(1e-3)
    np.savez(path / "state.npz", **state)
    calls = []

    def count(self, images):
        calls.append(len(images))
        return computed(self, images)

    monkeypatch.setattr(kmeans, "_transform_chunk", count)
    again = _run("evaluate", "--weights", weights, "--json")
    assert again.exit_code == 0 and sum(calls) == 3 + 30  # the 3 probes of loading, the split
    assert "evaluate: scoring test 30 images in" in again.output
    assert json.loads(again.output[again.output.index("{") :]) == json.loads(report)
