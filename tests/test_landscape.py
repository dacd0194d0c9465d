"""The loss landscape: its values against a plain loop over the grid with each loss record's
vectorised function, the SVM's shapes the notes show (piecewise linear along a line for one
example, a convex bowl over a plane for many), and ``svmtrain landscape`` through Click."""

import csv
import json

import numpy as np
import pytest
from cli_helpers import assert_clean_failure, run

from svmtrain.config import load_config
from svmtrain.core.losses import LOSSES
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ProblemSizeError
from svmtrain.experiments.common import load_splits
from svmtrain.experiments.landscape import landscape_config, run_landscape, slice_losses
from svmtrain.io import plots


def _sets(args):
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


@pytest.fixture
def cfg(tiny_run_data):
    """The notes' config on the tiny cached archive (250 training images), without reg."""
    return load_config(None, [*_sets(tiny_run_data.args), "model.reg=0"])


def _loop(cfg, W, directions, coefficients, n):
    """The loss at W + sum c_k W_k for each row c, one vectorised-loss call per point, on the
    first n training images as a design matrix in float64 (an independent computation)."""
    splits = load_splits(cfg, progress=False)
    X = splits.design(splits.X_train[:n], np.float64)
    loss = LOSSES[cfg.model.loss]
    options = {"reg_bias": cfg.model.reg_bias, **loss.options(cfg.model)}
    k = coefficients.shape[1]
    return np.array(
        [
            loss(W + np.tensordot(c, directions[:k], axes=1), X, splits.y_train[:n],
                 cfg.model.reg, **options)[0]
            for c in coefficients
        ]
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("reg", [0.0, 2.5e4])
def test_values_match_a_loop_over_the_grid_for_every_loss(cfg, name, reg):
    cfg.model.loss, cfg.model.reg = name, reg
    result = run_landscape(cfg, num_examples=40, span=2.0, points=9, grid=5, progress=False)
    assert result.settings["examples"] == [1, 40]
    g = result.grid
    plane = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    for n in (1, 40):
        expected_line = _loop(cfg, result.W, result.directions, result.a[:, None], n)
        expected_plane = _loop(cfg, result.W, result.directions, plane, n).reshape(5, 5)
        np.testing.assert_allclose(result.lines[n], expected_line, rtol=1e-10)
        np.testing.assert_allclose(result.planes[n], expected_plane, rtol=1e-10)
        at_w = _loop(cfg, result.W, result.directions, np.zeros((1, 0)), n)[0]
        assert result.at_w[n] == pytest.approx(at_w, rel=1e-10)


def test_the_directions_move_the_scores_by_one_root_mean_square(cfg):
    result = run_landscape(cfg, num_examples=30, points=3, grid=3, progress=False)
    splits = load_splits(cfg, progress=False)
    X = splits.design(splits.X_train[:30], np.float64)
    for d in result.directions:
        assert np.sqrt(np.mean(np.square(X @ d.T))) == pytest.approx(1.0, rel=1e-12)


def test_the_same_seed_gives_the_same_landscape_and_another_another(cfg):
    args = {"num_examples": 20, "points": 11, "grid": 5, "progress": False}
    first, again = run_landscape(cfg, seed=3, **args), run_landscape(cfg, seed=3, **args)
    other = run_landscape(cfg, seed=4, **args)
    assert np.array_equal(first.planes[20], again.planes[20])
    assert not np.array_equal(first.planes[20], other.planes[20])


def test_the_svm_line_of_one_example_is_piecewise_linear(cfg):
    # A sum of C - 1 hinges, each linear in a but for one kink: the second differences on an
    # even grid are zero except around at most C - 1 kinks (two differences each).
    result = run_landscape(cfg, num_examples=1, span=4.0, points=401, progress=False)
    line = result.lines[1]
    second = np.abs(np.diff(line, 2))
    kinked = second > 1e-9 * np.abs(line).max()
    assert 1 <= kinked.sum() <= 2 * (10 - 1)
    assert np.all(np.diff(line, 2) > -1e-9 * np.abs(line).max())  # convex: every kink bends up


def test_the_softmax_line_is_smooth_not_piecewise_linear(cfg):
    cfg.model.loss = "softmax"
    line = run_landscape(cfg, num_examples=1, span=4.0, points=401, progress=False).lines[1]
    second = np.abs(np.diff(line, 2))
    assert (second > 1e-9 * np.abs(line).max()).mean() > 0.9


def _second_differences(Z):
    """Second differences of Z (G, G) along a, along b and along both diagonals."""
    return [
        Z[2:, :] - 2 * Z[1:-1, :] + Z[:-2, :],
        Z[:, 2:] - 2 * Z[:, 1:-1] + Z[:, :-2],
        Z[2:, 2:] - 2 * Z[1:-1, 1:-1] + Z[:-2, :-2],
        Z[2:, :-2] - 2 * Z[1:-1, 1:-1] + Z[:-2, 2:],
    ]


@pytest.mark.parametrize("reg", [0.0, 2.5e4])
def test_the_svm_plane_of_many_examples_is_a_convex_bowl(cfg, reg):
    cfg.model.reg = reg
    result = run_landscape(cfg, num_examples=200, span=3.0, grid=41, progress=False)
    Z = result.planes[200]
    tolerance = 1e-9 * np.abs(Z).max()
    for d2 in _second_differences(Z):
        assert d2.min() > -tolerance
    # A bowl: it rises from its lowest point towards every edge of the picture.
    i, j = np.unravel_index(np.argmin(Z), Z.shape)
    assert 0 < i < 40 and 0 < j < 40
    assert min(Z[0].min(), Z[-1].min(), Z[:, 0].min(), Z[:, -1].min()) > Z[i, j] + 1


def test_the_l2_term_is_the_quadratic_of_the_gram_matrix():
    rng = np.random.default_rng(0)
    S = np.zeros((3, 4, 3))  # no scores: the SVM data loss is (C - 1) * delta everywhere
    W, W1, W2 = rng.standard_normal((3, 3, 5))
    flat = np.stack([W.ravel(), W1.ravel(), W2.ravel()])
    c = rng.standard_normal((7, 2))
    got = slice_losses(LOSSES["svm"], {"delta": 1.0}, S, np.zeros(4, int), flat @ flat.T, 0.5, c)
    expected = [2.0 + 0.5 * np.sum(np.square(W + a * W1 + b * W2)) for a, b in c]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_more_examples_than_the_training_split_is_refused(cfg):
    with pytest.raises(
        ProblemSizeError, match=r"the training split has 250 images \(.*\). Got 251"
    ):
        run_landscape(cfg, num_examples=251, progress=False)


# ---------------------------------------------------------------------------------------------
# The command


def test_landscape_prints_a_table_and_writes_csv_json_and_a_plot(tiny_run_data, tmp_path):
    pytest.importorskip("matplotlib")
    out_csv, out_png = tmp_path / "l.csv", tmp_path / "l.png"
    args = ["landscape", *tiny_run_data.args, "-n", 20, "--points", 7, "--grid", 5, "-q"]
    result = run(*args, "--csv", out_csv, "--plot", out_png)
    assert result.exit_code == 0, result.output
    assert "The svm loss (reg 25000, delta 1) around a random W (seed 0)" in result.output
    assert "wrote " + str(out_png) in result.output
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 2 * (7 + 25)
    assert rows[0].keys() == {"examples", "slice", "a", "b", "loss"}
    assert plots.drawn_by_svmtrain(out_png)
    as_json = json.loads(run(*args, "--json").stdout)
    line = [float(r["loss"]) for r in rows if r["slice"] == "line" and r["examples"] == "20"]
    assert as_json["slices"][1]["line"] == line
    assert as_json["examples"] == [1, 20] and as_json["reg"] == 25000


def test_landscape_around_trained_weights_uses_their_config(tiny_run_data, tmp_path):
    run_dir = tmp_path / "run"
    assert run("fit", "-c", "quick", *tiny_run_data.args, "--out", run_dir, "-q").exit_code == 0
    result = run("landscape", "-w", run_dir, "-n", 10, "--grid", 5, "--points", 5, "-q",
                 "--set", "model.loss=softmax", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["loss"] == "softmax"
    assert document["start"] == f"the weights {run_dir / 'weights.npz'}"
    cfg = landscape_config(None, run_dir / "weights.npz", ["model.loss=softmax"])
    direct = run_landscape(cfg, run_dir / "weights.npz", num_examples=10, grid=5, points=5,
                           progress=False)  # fmt: skip
    assert document["slices"][1]["plane"] == direct.planes[10].tolist()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-n", "0"], ["'--num-examples'", "0 is not in the range x>=1"]),
        (["--span", "0"], ["'--span'", "0.0 is not in the range"]),
        (["--span", "inf"], ["'--span'", "inf is not in the range"]),
        (["--points", "2"], ["'--points'", "2 is not in the range 3<=x<=10001"]),
        (["--grid", "1000"], ["'--grid'", "1000 is not in the range 3<=x<=501"]),
        (["-c", "quick", "-w", "w.npz"], ["--config and --weights both give the config"]),
        (["--plot", "l.pdf"], ["--plot", "does not end in .png"]),
    ],
)
def test_landscape_rejects_bad_options_before_loading_data(args, needles):
    assert_clean_failure(run("landscape", *args), 2, *needles)


def test_rows_of_features_are_sliced_as_they_are(cfg):
    # Splits of a caller's own float features (unscaled: mean 0, scale 1), not pixels.
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((60, 7)).astype(np.float32)
    X = np.hstack([rows, np.ones((60, 1), np.float32)])  # the design matrix, by hand
    y = rng.integers(0, 3, 60)
    ones = np.ones(7, np.float32)
    splits = Splits(rows, y, rows[:5], y[:5], rows[:5], y[:5], 0 * ones, ones, ("a", "b", "c"))
    result = run_landscape(cfg, splits=splits, num_examples=60, points=5, grid=3, progress=False)
    assert result.W.shape == (3, 8)
    loss = LOSSES["svm"]
    for a, value in zip(result.a, result.lines[60], strict=True):
        W = result.W + a * result.directions[0]
        assert value == pytest.approx(loss(W, X.astype(np.float64), y, 0.0)[0], rel=1e-12)
