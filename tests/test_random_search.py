"""The notes' Strategies 1 and 2 (random_search, random_local_search) through the training core:
the W a plain loop of the notes' code keeps with the same draws, a loss that never rises, and
the run directory, metrics, checkpoint and resume of every run."""

import json

import numpy as np
import pytest
from cli_helpers import run

from svmtrain.config import load_config
from svmtrain.core.losses import LOSSES
from svmtrain.core.optimizers import OPTIMIZERS, random_search
from svmtrain.data.preprocess import PIXELS, Splits
from svmtrain.errors import ConfigError, Interrupted
from svmtrain.experiments import fit, train
from svmtrain.experiments.common import random_streams
from svmtrain.io import runs
from svmtrain.model import LinearModel

SEARCHES = ("random_search", "random_local_search")


@pytest.fixture(autouse=True)
def _ten_tries_a_round(monkeypatch):
    """Rounds of 10 tries instead of 100, so that a few dozen tries make several rounds."""
    monkeypatch.setattr(random_search, "TRIES_PER_ROUND", 10)


@pytest.fixture(scope="module")
def splits():
    """Ten noisy class templates as float rows: 200 training images, 100 + 100 more."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    noisy = 0.5 * rng.standard_normal((10, PIXELS))[y] + rng.standard_normal((400, PIXELS))
    X = noisy.astype(np.float32)
    zeros, ones = np.zeros(PIXELS, np.float32), np.ones(PIXELS, np.float32)
    parts = [(X[a:b], y[a:b]) for a, b in ((0, 200), (200, 300), (300, 400))]
    return Splits(*[v for part in parts for v in part], zeros, ones, tuple("abcdefghij"))


def _cfg(name, *extra):
    return load_config(
        overrides=[f"optim.name={name}", "model.reg=0", "train.train_acc_samples=100", *extra]
    )


def _fit(splits, tmp_path, name, *extra, out="run", on_step=None):
    with train.step_hook(on_step or (lambda state, updates: None)):
        return fit.fit(_cfg(name, *extra), out=tmp_path / out, splits=splits, progress=False)


def _metrics(run_dir):
    lines = (run_dir / runs.METRICS).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def _weights(run_dir):
    return LinearModel.load(run_dir / runs.WEIGHTS).W


def _notes_loop(splits, name, tries, scale=1e-4, step=1e-4, init_scale=1e-4):
    """The notes' code: one vectorised SVM loss on the design matrix per try, the draws from
    the generators a run of seed 0 uses (the initial W's, then the rounds'). Returns (the W
    kept, its loss, every try's loss)."""
    init_rng, rng, _ = random_streams(0, 3)
    X, y = splits.design(splits.X_train, np.float32), splits.y_train
    W = (init_scale * init_rng.standard_normal((10, PIXELS + 1))).astype(np.float32)
    best, losses = np.inf, []
    for _ in range(tries):
        if name == "random_search":
            candidate = (scale * rng.standard_normal(W.shape)).astype(np.float32)
        else:
            candidate = W + (step * rng.standard_normal(W.shape)).astype(np.float32)
        losses.append(LOSSES["svm"](candidate, X, y, 0.0)[0])
        if losses[-1] < best:
            W, best = candidate, losses[-1]
    return W, best, np.array(losses)


def test_both_are_in_the_registry():
    assert set(SEARCHES) <= set(OPTIMIZERS)


@pytest.mark.parametrize("name", SEARCHES)
def test_the_run_keeps_what_the_notes_loop_keeps(splits, tmp_path, name):
    result = _fit(splits, tmp_path, name, f"{name}.tries=25")  # rounds of 10, 10 and 5
    W, best, losses = _notes_loop(splits, name, 25)
    assert _weights(result.run_dir).tobytes() == W.tobytes()
    metrics = _metrics(result.run_dir)
    assert [(m["epoch"], m["step"]) for m in metrics] == [(1, 10), (2, 20), (3, 25)]
    assert metrics[-1]["loss"] == pytest.approx(best, rel=1e-5)
    assert sum(m["accepted"] for m in metrics) == np.sum(losses < np.minimum.accumulate(
        np.concatenate([[np.inf], losses[:-1]])))  # fmt: skip
    history = np.load(result.run_dir / runs.LOSS_HISTORY)
    np.testing.assert_allclose(history, losses, rtol=1e-5)
    assert result.summary["test_acc"] is not None


@pytest.mark.parametrize("name", SEARCHES)
def test_the_loss_never_rises_and_is_that_of_the_weights(splits, tmp_path, name):
    result = _fit(splits, tmp_path, name, f"{name}.tries=40")
    metrics = _metrics(result.run_dir)
    loss = [m["loss"] for m in metrics]
    assert loss == sorted(loss, reverse=True)
    W = _weights(result.run_dir)
    assert loss[-1] == pytest.approx(
        LOSSES["svm"](W, splits.design(splits.X_train, np.float32), splits.y_train)[0], 1e-5
    )
    assert metrics[0]["accepted"] >= 1


def test_local_search_lowers_the_loss_more_than_random_search(splits, tmp_path):
    best = {
        name: _metrics(_fit(splits, tmp_path, name, f"{name}.tries=30", out=name).run_dir)[-1]
        for name in SEARCHES
    }
    assert best["random_local_search"]["loss"] < best["random_search"]["loss"]


@pytest.mark.parametrize("name", SEARCHES)
def test_resume_after_ctrl_c_equals_an_uninterrupted_run(splits, tmp_path, name):
    tries = f"{name}.tries=30"
    whole = _fit(splits, tmp_path, name, tries, out="whole")
    calls = [0]

    def ctrl_c_in_round_two(state, updates):
        calls[0] += 1
        if calls[0] == 15:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match=r"svmtrain\.fit\(resume=.*cut.\)"):
        _fit(splits, tmp_path, name, tries, out="cut", on_step=ctrl_c_in_round_two)
    assert len(_metrics(tmp_path / "cut")) == 1
    assert (tmp_path / "cut" / runs.CHECKPOINT).is_file()
    resumed = fit.fit(resume=tmp_path / "cut", splits=splits, progress=False)
    assert _weights(resumed.run_dir).tobytes() == _weights(whole.run_dir).tobytes()
    assert _metrics(resumed.run_dir) == _metrics(whole.run_dir)
    assert np.array_equal(
        np.load(resumed.run_dir / runs.LOSS_HISTORY), np.load(whole.run_dir / runs.LOSS_HISTORY)
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("random_search.tries=0", "random_search.tries must be an int >= 1. Got 0"),
        ("random_search.scale=0", "random_search.scale must be a float > 0. Got 0.0"),
        ("random_local_search.tries=1.5", "random_local_search.tries"),
        ("random_local_search.step=-1", "random_local_search.step must be a float > 0. Got -1"),
    ],
)
def test_bad_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(override.split(".")[0], override)


def test_a_search_setting_without_its_optimiser_is_refused():
    with pytest.raises(ConfigError, match=r"random_search\.tries is 5, but it means nothing"):
        load_config(overrides=["random_search.tries=5"])


def test_fit_on_pixels_through_the_command_line(tiny_run_data, tmp_path):
    # Raw uint8 pixels (the affine rows of the objective), as a user runs it.
    out = tmp_path / "run"
    sets = tiny_run_data.args[1::2]
    data = [a for s in sets if s.startswith("data.") for a in ("--set", s)]  # no SGD keys
    result = run("fit", *data, "--set", "optim.name=random_local_search",
                 "--set", "random_local_search.tries=12", "--out", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [m["step"] for m in _metrics(out)] == [10, 12]
    assert json.loads((out / runs.SUMMARY).read_text())["test_acc"] is not None
