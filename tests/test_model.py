"""svmtrain.model.LinearModel: scores of raw images against a float64 hand computation, and
weights.npz written, read back and refused when damaged."""

import numpy as np
import pytest

from svmtrain import __version__
from svmtrain.core.losses import LOSSES
from svmtrain.data.preprocess import PixelTransform
from svmtrain.errors import ImageError, SvmtrainError, WeightsError
from svmtrain.model import CHUNK, FORMAT_VERSION, LinearModel

C, P = 10, 3072
NAMES = tuple(f"class{i}" for i in range(C))


def _model(dtype=np.float32, seed=0, loss="svm"):
    rng = np.random.default_rng(seed)
    mean = rng.uniform(60, 190, P).astype(np.float32)
    scale = rng.uniform(20, 80, P).astype(np.float32)
    W = rng.standard_normal((C, P + 1)).astype(dtype)
    return LinearModel(
        W, PixelTransform(mean, scale), NAMES, loss, config_yaml="model:\n  loss: svm\n"
    )


def _images(n, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, P), dtype=np.uint8)


def _reference_scores(model, rows):
    """The notes' model by hand, in float64: ((x - mean) / scale, 1) @ W.T."""
    t = model.transform
    X = (rows.astype(np.float64) - t.mean.astype(np.float64)) / t.scale.astype(np.float64)
    X = np.hstack([X, np.ones((len(X), 1))])
    return X @ model.W.astype(np.float64).T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scores_match_the_hand_computation_across_chunks(dtype):
    model, rows = _model(dtype), _images(CHUNK + 7)
    scores = model.scores(rows)
    assert scores.shape == (CHUNK + 7, C) and scores.dtype == dtype
    expected = _reference_scores(model, rows)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert np.abs(scores - expected).max() <= tol * np.abs(expected).max()
    assert np.array_equal(model.predict(rows), np.argmax(scores, axis=1))


def test_the_three_layouts_give_the_same_scores(tmp_path):
    model, rows = _model(), _images(40)
    planes = rows.reshape(40, 3, 32, 32)
    hwc = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
    expected = model.scores(rows)
    assert np.array_equal(model.scores(planes), expected)
    assert np.array_equal(model.scores(hwc), expected)
    # A hand-built channels-last image: pixel (row r, column c) of channel k.
    assert hwc[3, 5, 7, 2] == rows[3, 2 * 1024 + 5 * 32 + 7]
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.uint8, rows.shape)
    mapped[:] = rows
    assert np.array_equal(model.scores(mapped), expected)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, P), np.float32), "must be raw uint8 pixels"),
        (np.zeros((2, P), np.int64), "got int64"),
        (np.zeros((P,), np.uint8), "images[None]"),
        (np.zeros((2, 32, 32), np.uint8), "expected (N, 3072) rows"),
        (np.zeros((2, 64, 64, 3), np.uint8), "resized to 32 x 32"),
        ([[0] * P], "must be a numpy array"),
    ],
)
def test_bad_images_are_one_clear_error(images, message):
    with pytest.raises(ImageError) as err:
        _model().scores(images)
    assert message in str(err.value)
    assert isinstance(err.value, SvmtrainError)


def test_float_images_get_the_conversion_hint():
    with pytest.raises(ImageError, match=r"\* 255"):
        _model().predict(np.zeros((1, 32, 32, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_then_load_is_the_same_model(tmp_path, dtype):
    model = _model(dtype, loss="softmax")
    model.save(tmp_path / "weights.npz")
    back = LinearModel.load(tmp_path / "weights.npz")
    assert back.W.dtype == dtype and np.array_equal(back.W, model.W)
    assert np.array_equal(back.transform.mean, model.transform.mean)
    assert np.array_equal(back.transform.scale, model.transform.scale)
    assert back.class_names == NAMES and back.loss == "softmax"
    assert back.config_yaml == model.config_yaml
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as npz:
        assert int(npz["format_version"]) == FORMAT_VERSION
        assert str(npz["svmtrain_version"]) == __version__


def _release_010_file(path, model, config="model:\n  loss: softmax\n"):
    """A weights.npz as svmtrain 0.1.0 wrote it (io/runs.save_weights of that release)."""
    np.savez(
        path,
        W=model.W,
        mean=model.transform.mean,
        scale=model.transform.scale,
        class_names=np.array(model.class_names),
        config=np.array(config),
    )


def test_a_diverged_run_is_saved_and_said(tmp_path):
    good = _model()
    diverged = LinearModel(good.W, good.transform, NAMES, "svm", diverged_in_epoch=3)
    diverged.save(tmp_path / "w.npz")
    back = LinearModel.load(tmp_path / "w.npz")
    assert back.diverged_in_epoch == 3
    assert "diverged in epoch 3" in back.divergence_note()
    assert "after epoch 2" in back.divergence_note()
    assert good.divergence_note() is None


def test_a_weights_file_of_release_0_1_0_still_loads(tmp_path):
    model = _model()
    _release_010_file(tmp_path / "old.npz", model)
    back = LinearModel.load(tmp_path / "old.npz")
    assert back.loss == "softmax" and back.class_names == NAMES
    assert np.array_equal(back.scores(_images(5)), model.scores(_images(5)))
    _release_010_file(tmp_path / "old-default.npz", model, config="data:\n  val_size: 10\n")
    assert LinearModel.load(tmp_path / "old-default.npz").loss == "svm"


def test_a_newer_format_names_the_version(tmp_path):
    path = tmp_path / "new.npz"
    _model().save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["format_version"] = np.array(FORMAT_VERSION + 1)
    arrays["svmtrain_version"] = np.array("9.0.0")
    np.savez(path, **arrays)
    with pytest.raises(WeightsError) as err:
        LinearModel.load(path)
    assert "svmtrain 9.0.0" in str(err.value) and f"format {FORMAT_VERSION + 1}" in str(err.value)
    assert "Upgrade svmtrain" in str(err.value)


def _damaged(tmp_path, **changes):
    path = tmp_path / "damaged.npz"
    _model().save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"W": None}, "lacks W"),
        ({"loss": None}, "lacks loss"),
        ({"mean": None}, "lacks mean"),
        ({"W": np.zeros((C, 100), np.float32)}, "expected (classes, 3073)"),
        ({"W": np.zeros((3, P + 1), np.float32)}, "W has 3 rows but class_names lists 10"),
        ({"W": np.full((C, P + 1), np.nan, np.float32)}, "finite float32 or float64"),
        ({"W": np.zeros((C, P + 1), np.int32)}, "finite float32 or float64"),
        ({"scale": np.zeros(P, np.float32)}, "scale must be positive"),
        ({"mean": np.zeros(5, np.float32)}, "mean must be 3072 finite floats"),
        ({"class_names": np.array(["one"])}, "two or more class names"),
        ({"class_names": np.arange(C)}, "two or more class names"),
        ({"loss": np.array("hinge")}, f"loss must be one of {', '.join(LOSSES)}; got 'hinge'"),
        ({"transform": np.array("kmeans")}, "uses the input transform 'kmeans'"),
        ({"format_version": np.array(1.5)}, "format_version must be a whole number"),
        ({"config": np.arange(3)}, "config must be a text value"),
        ({"diverged_in_epoch": np.array(0)}, "diverged_in_epoch must be one int >= 1"),
    ],
)
def test_a_damaged_weights_file_is_one_clear_error(tmp_path, changes, message):
    path = _damaged(tmp_path, **changes)
    with pytest.raises(WeightsError) as err:
        LinearModel.load(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_unreadable_and_pickled_files_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="No weights file"):
        LinearModel.load(tmp_path / "nothing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(WeightsError, match=r"not an \.npz archive"):
        LinearModel.load(tmp_path / "text.npz")
    pickled = tmp_path / "pickled.npz"
    model = _model()
    np.savez(
        pickled,
        W=model.W,
        mean=model.transform.mean,
        scale=model.transform.scale,
        class_names=np.array(NAMES, dtype=object),
        config=np.array("x"),
    )
    with pytest.raises(WeightsError, match="not a readable weights file"):
        LinearModel.load(pickled)


def test_a_model_is_checked_when_built():
    good = _model()
    with pytest.raises(WeightsError, match="expected \\(classes, 3073\\)"):
        LinearModel(good.W[:, :10], good.transform, NAMES, "svm")
    with pytest.raises(WeightsError, match="loss must be one of"):
        LinearModel(good.W, good.transform, NAMES, "hinge")
