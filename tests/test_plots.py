"""Pictures: template pixels from a known W, valid PNGs of the documented sizes, run-dir errors,
and the missing-matplotlib path (library and CLI)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.errors import PlotUnavailable, SvmtrainError, WeightsError
from svmtrain.io import plots

CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INSTALL_HINT = "pip install 'svmtrain[plot]'"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixel_column(plane: int, row: int, col: int) -> int:
    """Column of W for a pixel in CIFAR binary order: planes R, G, B, each 32x32 row-major."""
    return plane * 1024 + row * 32 + col


def metric_lines(epochs: int, steps_per_epoch: int) -> list[dict]:
    return [
        {
            "epoch": e,
            "step": e * steps_per_epoch,
            "loss": 9.0 / e,
            "data_loss": 8.0 / e,
            "reg_loss": 1.0 / e,
            "train_acc": 0.2 + 0.05 * e,
            "val_acc": 0.18 + 0.05 * e,
            "lr": 1e-3 * 0.5**e,
            "seconds": 0.1 * e,
        }
        for e in range(1, epochs + 1)
    ]


def make_run(run_dir: Path, *, history: bool = True, confusion: bool = True) -> Path:
    """A tiny run directory in the documented format (10 classes, 3 epochs of 4 steps)."""
    rng = np.random.default_rng(0)
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        run_dir / "weights.npz",
        W=rng.normal(size=(10, 3073)).astype(np.float32),
        mean=np.zeros(3072, np.float32),
        scale=np.ones(3072, np.float32),
        class_names=np.array(CLASSES),
        config=np.array("model:\n  loss: svm\n"),
    )
    lines = metric_lines(epochs=3, steps_per_epoch=4)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    if history:
        np.save(run_dir / "loss_history.npy", 9.0 / np.arange(1, 13, dtype=np.float64))
    summary = {"val_acc": 0.3, "test_acc": 0.31, "wall_seconds": 1.0}
    if confusion:
        summary["confusion"] = (np.eye(10, dtype=int) * 50 + 5).tolist()
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Make every matplotlib import fail, as if the plot extra were not installed."""
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)


# --- template_images: pure numpy, hand-computed pixels ------------------------------------------


@pytest.mark.parametrize(
    "plane, row, col",
    [(0, 0, 0), (0, 3, 17), (1, 31, 0), (2, 5, 31), (2, 31, 31)],
)
def test_template_hot_pixel_lands_at_row_col_channel(plane, row, col):
    W = np.zeros((10, 3073))
    W[4, pixel_column(plane, row, col)] = 5.0
    W[:, -1] = 1e6  # the bias must not take part in the rescaling
    images = plots.template_images(W)

    expected = np.zeros((10, 32, 32, 3), dtype=np.uint8)
    expected[4, row, col, plane] = 255  # max -> 255, every other pixel is the min -> 0
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected)


def test_template_planes_become_channels():
    # R plane 1, G plane 2, B plane 3: min 1 -> 0, max 3 -> 255, 2 -> rint(127.5) = 128.
    W = np.zeros((2, 3073))
    W[:, :1024], W[:, 1024:2048], W[:, 2048:3072] = 1.0, 2.0, 3.0
    images = plots.template_images(W)
    assert images.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(images, np.broadcast_to([0, 128, 255], (2, 32, 32, 3)))


def test_template_rescales_all_classes_with_one_min_and_max():
    # As the notes: w_min and w_max over every class's pixels (the bias left out).
    W = np.zeros((2, 3073))
    W[0, [0, 1, 2]] = [-1.0, 1.0, 0.5]
    W[1, [0, 1]] = [3.0, -0.5]  # the global range is [-1, 3]
    W[:, -1] = -100.0
    images = plots.template_images(W).reshape(2, -1)  # HWC flattening: pixel (0, 0) R, G, B...
    hwc = lambda plane_col: (plane_col % 1024) * 3 + plane_col // 1024  # noqa: E731
    # 255 * (w + 1) / 4: -1 -> 0, 1 -> 127.5 -> 128, 0.5 -> 95.6 -> 96, 0 -> 63.75 -> 64
    assert [images[0, hwc(c)] for c in (0, 1, 2, 3)] == [0, 128, 96, 64]
    # 3 -> 255, -0.5 -> 31.9 -> 32
    assert [images[1, hwc(c)] for c in (0, 1, 2)] == [255, 32, 64]


def test_constant_template_is_black():
    images = plots.template_images(np.full((3, 3073), 0.25))
    np.testing.assert_array_equal(images, np.zeros((3, 32, 32, 3), np.uint8))


@pytest.mark.parametrize(
    "W, message",
    [
        (np.zeros((10, 3072)), "W must have shape (classes, 3073)"),
        (np.zeros(3073), "W must have shape (classes, 3073)"),
        (np.full((10, 3073), np.nan), "NaN or inf"),
    ],
)
def test_template_rejects_bad_W(W, message):
    with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plots.template_images(W)


# --- each picture is a PNG of the documented size ----------------------------------------------

_STEPS = [10.0**k for k in range(-10, 0)]
_LOSSES = [9.0, 8.9, 8.5, 7.0, 5.0, 6.0, 40.0, 4e3, 4e5, 4e7]
_GRID = [
    {"learning_rate": lr, "reg": reg, "val_acc": acc}
    for (lr, reg), acc in zip(
        [(1e-7, 1e3), (1e-7, 1e4), (1e-6, 1e3), (1e-6, 1e4)], [0.30, 0.33, 0.38, None], strict=True
    )
]


@pytest.mark.parametrize(
    "draw, size",
    [
        (lambda p: plots.plot_weights(np.ones((10, 3073)), CLASSES, p), (1000, 470)),
        (lambda p: plots.plot_weights(np.eye(3, 3073), CLASSES[:3], p), (600, 265)),
        (lambda p: plots.plot_curves(metric_lines(3, 4), np.linspace(9, 3, 12), p), (1200, 820)),
        (lambda p: plots.plot_curves(metric_lines(1, 4), None, p), (1200, 820)),
        (lambda p: plots.plot_confusion(np.eye(10, dtype=int) * 7, CLASSES, p), (760, 680)),
        (lambda p: plots.plot_sweep(_STEPS, _LOSSES, 9.0, p), (900, 610)),
        # A loss that is 0 (symlog y axis) and one that overflowed.
        (lambda p: plots.plot_sweep([1e-3, 1e-2, 1e-1], [0.0, 1.0, np.inf], 2.0, p), (900, 610)),
        (lambda p: plots.plot_search(_GRID, p), (900, 650)),
        # Two trials per cell (another --grid key): the best one per cell.
        (lambda p: plots.plot_search(_GRID + _GRID, p), (900, 650)),
        (lambda p: plots.plot_search([{**r, "val_acc": None} for r in _GRID], p), (900, 650)),
        # Random samples (no grid), reg 0 included (symlog y), one diverged.
        (
            lambda p: plots.plot_search(
                [
                    {"learning_rate": 3e-7, "reg": 0.0, "val_acc": 0.31},
                    {"learning_rate": 2e-6, "reg": 4e3, "val_acc": 0.36},
                    {"learning_rate": 8e-5, "reg": 2e4, "val_acc": float("nan")},
                ],
                p,
            ),
            (900, 650),
        ),
    ],
    ids=[
        "weights",
        "weights-3-classes",
        "curves",
        "curves-no-history",
        "confusion",
        "sweep",
        "sweep-zero-and-inf",
        "search-grid",
        "search-grid-repeats",
        "search-all-diverged",
        "search-random",
    ],
)
def test_picture_is_png_of_expected_size(tmp_path, draw, size):
    path = tmp_path / "picture.png"
    assert draw(path) == path
    assert png_size(path) == size
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]  # no temporary file left


def test_plot_search_without_trials_is_an_error(tmp_path):
    with pytest.raises(SvmtrainError, match="no search trials"):
        plots.plot_search([], tmp_path / "search.png")


# --- plot_run and `svmtrain plot` ---------------------------------------------------------------


@pytest.mark.parametrize(
    "history, confusion, expected",
    [
        (True, True, ["weights.png", "curves.png", "confusion.png"]),
        (False, False, ["weights.png", "curves.png"]),
    ],
)
def test_plot_run_writes_pictures_beside_the_run(tmp_path, history, confusion, expected):
    run = make_run(tmp_path / "run", history=history, confusion=confusion)
    written = plots.plot_run(run)
    assert written == [run / name for name in expected]
    sizes = {"weights.png": (1000, 470), "curves.png": (1200, 820), "confusion.png": (760, 680)}
    assert [png_size(p) for p in written] == [sizes[name] for name in expected]


def test_cli_plot_prints_the_paths(tmp_path):
    run = make_run(tmp_path / "run")
    result = CliRunner().invoke(main, ["plot", str(run)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        str(run / name) for name in ("weights.png", "curves.png", "confusion.png")
    ]


def test_cli_plot_replaces_its_own_pictures_and_refuses_the_users(tmp_path):
    run = make_run(tmp_path / "run")
    assert CliRunner().invoke(main, ["plot", str(run)]).exit_code == 0
    again = CliRunner().invoke(main, ["plot", str(run)])
    assert again.exit_code == 0, again.output  # its own pictures are redrawn
    (run / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\nthe user's own")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = CliRunner().invoke(main, ["plot", str(run)])
    assert result.exit_code == 1
    assert f"{run / 'curves.png'} is not a picture svmtrain drew" in result.output
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def _corrupt(run: Path, name: str, content: str | None) -> None:
    path = run / name
    if content is None:
        path.unlink()
    else:
        path.write_text(content)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("weights.npz", None, "weights.npz not found"),
        ("metrics.jsonl", None, "metrics.jsonl not found"),
        ("weights.npz", "not a zip", "weights.npz is not a weights file (not an .npz archive)"),
        ("metrics.jsonl", '{"epoch": 1}\n{oops\n', "metrics.jsonl line 1 lacks numbers for step"),
        ("metrics.jsonl", "{oops\n", "metrics.jsonl line 1 is not JSON"),
        ("metrics.jsonl", "\n", "metrics.jsonl has no epochs"),
        ("loss_history.npy", "junk", "loss_history.npy is not a readable .npy"),
        ("summary.json", "{", "summary.json is not JSON"),
        ("summary.json", '{"confusion": [[1, 2], [3, 4]]}', "not 10 x 10 counts"),
    ],
)
def test_cli_plot_names_the_bad_file_and_the_fix(tmp_path, name, content, message):
    run = make_run(tmp_path / "run")
    _corrupt(run, name, content)
    result = CliRunner().invoke(main, ["plot", str(run)])
    assert result.exit_code == 1
    assert message in result.output
    assert "svmtrain fit" in result.output
    assert "Traceback" not in result.output
    assert not list(run.glob("*.png"))  # every file is checked before anything is drawn


def test_cli_plot_hint_names_a_directory_fit_accepts(tmp_path):
    """Issue 14 #8: a broken run directory is not one fit would write into again."""
    run = make_run(tmp_path / "run")
    _corrupt(run, "metrics.jsonl", None)
    result = CliRunner().invoke(main, ["plot", str(run)])
    assert result.exit_code == 1
    assert "svmtrain fit -c default --out NEW_DIR" in result.output
    assert f"--out {run}" not in result.output


def test_cli_plot_missing_run_dir(tmp_path):
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert f"svmtrain fit -c default --out {tmp_path / 'nope'}" in result.output


# --- without matplotlib -------------------------------------------------------------------------


def test_missing_matplotlib_raises_install_hint(tmp_path, no_matplotlib):
    with pytest.raises(PlotUnavailable, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        plots.plot_weights(np.ones((10, 3073)), CLASSES, tmp_path / "weights.png")
    assert not (tmp_path / "weights.png").exists()
    # The pure part needs no matplotlib.
    assert plots.template_images(np.ones((10, 3073))).shape == (10, 32, 32, 3)


def test_cli_plot_without_matplotlib_exits_with_install_hint(tmp_path, no_matplotlib):
    run = make_run(tmp_path / "run")
    result = CliRunner().invoke(main, ["plot", str(run)])
    assert result.exit_code == 1
    assert INSTALL_HINT in result.output
    assert "Traceback" not in result.output
    assert not list(run.glob("*.png"))


def test_importing_svmtrain_does_not_import_matplotlib():
    code = "import sys, svmtrain.cli, svmtrain.io.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_centroids_learned_in_a_singular_whitening_are_one_clear_error(tmp_path):
    """A run whose whitening is all zeros (whitening_epsilon=1e300 rounds it to 0 in float32)
    cannot have its centroids drawn: one SvmtrainError naming the setting, not LinAlgError."""
    from svmtrain.features.kmeans import KMeansFeatures

    settings = {"num_centroids": 2, "whitening_epsilon": 1e300}
    shapes = KMeansFeatures(settings).state_shapes()
    state = {key: np.zeros(shape) for key, shape in shapes.items()}
    extractor = KMeansFeatures.from_state(settings, state)
    with pytest.raises(SvmtrainError, match=r"whitening_epsilon=1e\+300 is too large"):
        plots.kmeans_pictures(extractor, tmp_path / "weights.npz")
