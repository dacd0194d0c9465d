"""The training loop and run directory, on small synthetic data made here."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.data.preprocess import PIXELS, Splits, fit_stats
from svmtrain.errors import (
    ConfigError,
    DivergenceError,
    Interrupted,
    SvmtrainError,
    Terminated,
)
from svmtrain.experiments import checkpoints, fit, train
from svmtrain.io import runs
from svmtrain.model import LinearModel


def _design(rng, templates, n):
    y = rng.integers(0, len(templates), n)
    return (templates[y] + rng.standard_normal((n, PIXELS))).astype(np.float32), y.astype(np.intp)


@pytest.fixture(scope="module")
def splits():
    """Ten noisy class templates: learnable, so accuracy has somewhere to go."""
    rng = np.random.default_rng(0)
    templates = 0.1 * rng.standard_normal((10, PIXELS))
    (Xtr, ytr), (Xv, yv), (Xt, yt) = (_design(rng, templates, n) for n in (1200, 200, 300))
    zeros, ones = np.zeros(PIXELS, np.float32), np.ones(PIXELS, np.float32)
    return Splits(Xtr, ytr, Xv, yv, Xt, yt, zeros, ones, tuple("abcdefghij"))


BASE = [
    "optim.learning_rate=1e-3",
    "model.reg=0.01",
    "train.epochs=4",
    "train.batch_size=100",
    "train.train_acc_samples=300",
]


def _cfg(*extra):
    return load_config(overrides=[*BASE, *extra])


def _fit(splits, tmp_path, name="run", *extra, on_step=None, **kw):
    """fit on ``splits`` into tmp_path/name; ``on_step``: a hook of every update."""
    with train.step_hook(on_step or (lambda state, updates: None)):
        return fit.fit(_cfg(*extra), out=tmp_path / name, splits=splits, progress=False, **kw)


def _stop_at(call, action=None):
    """A step hook that, at its ``call``-th call, does ``action`` (default: Ctrl-C)."""
    calls = [0]

    def hook(state, updates):
        calls[0] += 1
        if calls[0] == call:
            if action is None:
                raise KeyboardInterrupt
            action()

    return hook


def _weights(run_dir):
    return LinearModel.load(run_dir / runs.WEIGHTS).W


def _metrics(run_dir):
    lines = (run_dir / runs.METRICS).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


@pytest.mark.parametrize(
    ("overrides", "n", "expected"),
    [
        (["train.epochs=3", "train.batch_size=100"], 1050, (3, 30)),
        (["train.epochs=null", "train.iterations=25", "train.batch_size=100"], 1000, (3, 25)),
        (["train.epochs=1", "train.batch_size=7"], 7, (1, 1)),
    ],
)
def test_plan(overrides, n, expected):
    assert train.optimizer(load_config(overrides=overrides)).plan(n) == expected


def test_plan_rejects_batch_larger_than_training_set():
    with pytest.raises(
        ConfigError, match=r"train.batch_size must be at most the 50 training images"
    ):
        train.optimizer(load_config(overrides=["train.batch_size=51"])).plan(50)


def test_fit_learns_and_writes_a_complete_run(splits, tmp_path):
    result = _fit(splits, tmp_path)
    run = result.run_dir
    for name in (runs.CONFIG, runs.METRICS, runs.LOSS_HISTORY, runs.WEIGHTS, runs.SUMMARY):
        assert (run / name).is_file(), name
    metrics = _metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert [m["step"] for m in metrics] == [12, 24, 36, 48]
    assert len(np.load(run / runs.LOSS_HISTORY)) == 48
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    for m in metrics:
        assert m["loss"] == pytest.approx(m["data_loss"] + m["reg_loss"])
    summary = json.loads((run / runs.SUMMARY).read_text())
    assert summary["test_acc"] > 0.5  # chance is 0.1
    assert sum(map(sum, summary["confusion"])) == 300
    assert set(summary["per_class_acc"]) == set("abcdefghij")
    # The saved config replays: loading it gives the same config.
    assert load_config(run / runs.CONFIG) == _cfg()


def test_same_seed_is_bit_identical_and_another_seed_differs(splits, tmp_path):
    a, b = _fit(splits, tmp_path, "a"), _fit(splits, tmp_path, "b")
    c = _fit(splits, tmp_path, "c", "train.seed=1")
    assert _weights(a.run_dir).tobytes() == _weights(b.run_dir).tobytes()
    assert _metrics(a.run_dir) == _metrics(b.run_dir)
    assert not np.array_equal(_weights(a.run_dir), _weights(c.run_dir))


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("optim.momentum=0.9", "optim.nesterov=true", "schedule.name=cosine"),
        ("train.sampling=replacement", "schedule.name=step", "schedule.step_epochs=1"),
    ],
)
def test_resume_after_ctrl_c_equals_an_uninterrupted_run(splits, tmp_path, extra):
    whole = _fit(splits, tmp_path, "whole", *extra)
    with pytest.raises(Interrupted, match=r"after epoch 2.*svmtrain\.fit\(resume='.*cut'\)"):
        _fit(splits, tmp_path, "cut", *extra, on_step=_stop_at(30))  # step 30 of 48: epoch 3
    assert not (tmp_path / "cut" / runs.WEIGHTS).exists()
    assert len(_metrics(tmp_path / "cut")) == 2
    resumed = fit.fit(resume=tmp_path / "cut", splits=splits, progress=False)
    assert _weights(resumed.run_dir).tobytes() == _weights(whole.run_dir).tobytes()
    assert _metrics(resumed.run_dir) == _metrics(whole.run_dir)
    assert np.array_equal(
        np.load(resumed.run_dir / runs.LOSS_HISTORY), np.load(whole.run_dir / runs.LOSS_HISTORY)
    )


def test_divergence_stops_and_keeps_the_last_good_weights(splits, tmp_path):
    with pytest.raises(DivergenceError, match=r"learning_rate=1e\+06.*learning_rate=100000"):
        _fit(splits, tmp_path, "div", "optim.learning_rate=1e6")
    W = _weights(tmp_path / "div")
    assert np.all(np.isfinite(W))
    assert np.abs(W).max() < 0.01  # the initial weights: no epoch finished


def test_diverged_weights_say_so_and_which_weights_they_are(splits, tmp_path):
    """Issue 14 #8: the weights of a diverged run record it, so evaluate can say so."""
    with pytest.raises(DivergenceError, match="keeps the untrained initial weights"):
        _fit(splits, tmp_path, "div", "optim.learning_rate=1e6")
    weights = LinearModel.load(tmp_path / "div" / runs.WEIGHTS)
    assert weights.diverged_in_epoch == 1
    np.testing.assert_array_equal(weights.W, train.init_state(_cfg(), 10, PIXELS + 1).W)
    assert "diverged in epoch 1" in weights.divergence_note()
    assert "untrained initial weights" in weights.divergence_note()
    finished = _fit(splits, tmp_path, "fine").run_dir
    assert LinearModel.load(finished / runs.WEIGHTS).divergence_note() is None


def test_divergence_in_a_later_epoch_keeps_that_epochs_weights(splits, tmp_path, monkeypatch):
    real_loss = train.LOSSES["svm"]
    calls = [0]

    def explodes_in_epoch_two(scores, y, **kw):
        calls[0] += 1
        loss, coef = real_loss.score_gradient(scores, y, **kw)
        return (float("nan") if calls[0] == 15 else loss), coef

    monkeypatch.setitem(
        train.LOSSES, "svm", dataclasses.replace(real_loss, score_gradient=explodes_in_epoch_two)
    )
    with pytest.raises(DivergenceError, match=r"epoch 2, step 15"):
        _fit(splits, tmp_path, "late")
    checkpoint = checkpoints.load_checkpoint(tmp_path / "late", _cfg(), splits)
    assert checkpoint.epoch == 1
    np.testing.assert_array_equal(_weights(tmp_path / "late"), checkpoint.W)
    weights = LinearModel.load(tmp_path / "late" / runs.WEIGHTS)
    assert weights.diverged_in_epoch == 2
    assert "the weights after epoch 1, the last good one" in weights.divergence_note()


def test_early_stopping_keeps_the_best_weights(splits, tmp_path):
    result = _fit(
        splits,
        tmp_path,
        "es",
        "train.epochs=30",
        "train.early_stopping=true",
        "train.patience=2",
        "optim.learning_rate=5e-2",
    )
    s = result.summary
    metrics = _metrics(result.run_dir)
    assert s["stopped_early"] and s["epochs"] < 30
    best = max(m["val_acc"] for m in metrics)
    assert s["best_epoch"] == 1 + [m["val_acc"] for m in metrics].index(best)
    assert s["epochs"] == s["best_epoch"] + 2  # exactly `patience` epochs without improvement
    assert s["val_acc"] == best


def test_a_finished_run_directory_is_not_overwritten(splits, tmp_path):
    _fit(splits, tmp_path, "once", "train.epochs=1")
    with pytest.raises(SvmtrainError, match=r"already holds a finished run; choose another --out"):
        _fit(splits, tmp_path, "once", "train.epochs=1")


def test_float64_training(splits, tmp_path):
    as64 = dataclasses.replace(
        splits,
        **{
            name: getattr(splits, name).astype(np.float64)
            for name in ("X_train", "X_val", "X_test")
        },
    )
    result = fit.fit(
        _cfg("preprocess.dtype=float64"), out=tmp_path / "f64", splits=as64, progress=False
    )
    assert _weights(result.run_dir).dtype == np.float64
    assert result.summary["test_acc"] > 0.5


def test_a_diverged_run_directory_says_to_choose_another(splits, tmp_path):
    with pytest.raises(DivergenceError):
        _fit(splits, tmp_path, "div", "optim.learning_rate=1e6")
    with pytest.raises(SvmtrainError, match=r"weights of a run that diverged; choose another"):
        _fit(splits, tmp_path, "div")


def _interrupted(splits, tmp_path, name="cut", *extra):
    with pytest.raises(Interrupted):
        _fit(splits, tmp_path, name, *extra, on_step=_stop_at(15))  # in epoch 2
    return tmp_path / name


def test_resume_refuses_an_edited_config(splits, tmp_path, monkeypatch):
    run = _interrupted(splits, tmp_path)
    text = (run / runs.CONFIG).read_text()
    (run / runs.CONFIG).write_text(text.replace("batch_size: 100", "batch_size: 50"))
    with pytest.raises(SvmtrainError, match=r"config.yaml was changed after the run started"):
        fit.fit(resume=run, splits=splits, progress=False)


def test_resume_refuses_other_data(splits, tmp_path, monkeypatch):
    run = _interrupted(splits, tmp_path)
    other = dataclasses.replace(splits, data_sha256="f" * 64)
    with pytest.raises(SvmtrainError, match=r"now come from f{64}"):
        fit.fit(resume=run, splits=other, progress=False)


def test_resume_may_move_the_data_cache(splits, tmp_path, monkeypatch):
    run = _interrupted(splits, tmp_path)
    result = fit.fit(resume=run, data_dir=tmp_path / "moved", splits=splits, progress=False)
    assert result.summary["epochs"] == 4


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda a: a.pop("optimizer.velocity"), "lacks optimizer.velocity"),
        (lambda a: a.update(W=a["W"][:, :-1]), r"W is not \(10, 3073\) float32"),
        (lambda a: a.update(W=a["W"].astype(np.float64)), r"W is not \(10, 3073\) float32"),
    ],
)
def test_resume_refuses_a_damaged_checkpoint(splits, tmp_path, monkeypatch, damage, message):
    run = _interrupted(splits, tmp_path)
    arrays, meta = runs.load_checkpoint(run / runs.CHECKPOINT)
    damage(arrays)
    runs.save_checkpoint(run / runs.CHECKPOINT, arrays, meta)
    with pytest.raises(SvmtrainError, match=r"checkpoint.npz is damaged: it " + message):
        fit.fit(resume=run, splits=splits, progress=False)


def test_resume_refuses_a_file_that_is_no_checkpoint(splits, tmp_path, monkeypatch):
    run = _interrupted(splits, tmp_path)
    (run / runs.CHECKPOINT).write_text("garbage")
    with pytest.raises(SvmtrainError, match=r"is not a checkpoint \(not an .npz archive\)"):
        fit.fit(resume=run, splits=splits, progress=False)


def test_nothing_is_written_when_the_config_does_not_fit_the_data(splits, tmp_path):
    with pytest.raises(ConfigError, match=r"batch_size must be at most the 1200"):
        _fit(splits, tmp_path, "never", "train.batch_size=5000")
    assert not (tmp_path / "never").exists()


def test_summary_is_strict_json_when_a_class_is_missing(splits, tmp_path):
    few = dataclasses.replace(splits, X_test=splits.X_test[:3], y_test=np.array([0, 1, 2]))
    result = fit.fit(_cfg(), out=tmp_path / "few", splits=few, progress=False)
    text = (result.run_dir / runs.SUMMARY).read_text()
    assert "NaN" not in text
    assert json.loads(text)["per_class_acc"]["j"] is None


# --- the run directory is one run's (issue 14 #3, #4) and SIGTERM (#11) -----------------------

_HOLD_LOCK = """
import sys
from pathlib import Path
from svmtrain.io import runs
from svmtrain.model import LinearModel
with runs.locked(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _listing(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_run_directory_in_use_is_refused_naming_the_other_pid(splits, tmp_path):
    run = tmp_path / "busy"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(run)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        before = _listing(run)
        with pytest.raises(
            SvmtrainError, match=rf"in use by another 'svmtrain fit' \(PID {holder.pid}\)"
        ):
            _fit(splits, tmp_path, "busy")
        assert _listing(run) == before  # nothing written
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    result = _fit(splits, tmp_path, "busy")  # the lock dies with its holder
    assert result.summary["epochs"] == 4
    assert (run / runs.LOCK).read_text() == f"{os.getpid()}\n"


def test_a_second_fit_into_a_run_being_written_is_refused(splits, tmp_path, monkeypatch):
    """The check is repeated under the lock: the second fit got past the first check while the
    first was loading its data, and must not write into the run the first then started."""
    real_train, messages = fit.train, []

    def train_while_another_fit_starts(cfg, *args, **kwargs):
        with pytest.raises(SvmtrainError) as err:
            fit.fit(_cfg(), out=tmp_path / "twice", splits=splits, progress=False)
        messages.append(str(err.value))
        return real_train(cfg, *args, **kwargs)

    monkeypatch.setattr(fit, "train", train_while_another_fit_starts)
    result = _fit(splits, tmp_path, "twice")
    assert "in use by another 'svmtrain fit'" in messages[0]
    assert str(os.getpid()) in messages[0]
    assert result.summary["epochs"] == 4


@pytest.mark.parametrize(
    "files",
    [
        {"notes.txt": "mine"},
        {"config.yaml": "my: own\n", "metrics.jsonl": "{}\n"},
        {"config.yaml": "train:\n  epochs: 7\n"},  # a valid config, but not this run's
        {"config.yaml": "{not yaml"},
    ],
)
def test_a_non_empty_directory_that_is_no_run_of_this_config_is_refused(splits, tmp_path, files):
    run = tmp_path / "mine"
    run.mkdir()
    for name, text in files.items():
        (run / name).write_text(text)
    with pytest.raises(SvmtrainError, match="Choose a new or empty directory with --out"):
        _fit(splits, tmp_path, "mine")
    assert _listing(run) == {name: text.encode() for name, text in sorted(files.items())}


def test_an_empty_directory_or_the_start_of_the_same_run_is_taken(splits, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _fit(splits, tmp_path, "empty").summary["epochs"] == 4
    started = tmp_path / "started"  # a run killed before its first epoch ended
    started.mkdir()
    runs.write_config(started, _cfg())
    whole = _fit(splits, tmp_path, "started")
    np.testing.assert_array_equal(_weights(whole.run_dir), _weights(tmp_path / "empty"))


def test_sigterm_saves_a_checkpoint_like_ctrl_c_and_resume_finishes(splits, tmp_path):
    whole = _fit(splits, tmp_path, "whole")
    sigterm = _stop_at(30, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(Terminated, match=r"SIGTERM after epoch 2.*svmtrain\.fit\(resume=") as err:
        _fit(splits, tmp_path, "cut", on_step=sigterm)
    assert err.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is restored
    resumed = fit.fit(resume=tmp_path / "cut", splits=splits, progress=False)
    np.testing.assert_array_equal(_weights(resumed.run_dir), _weights(whole.run_dir))


# --- the same on raw uint8 pixels, as prepare() gives them (PixelStepper) -------------------


@pytest.fixture(scope="module")
def pixel_splits():
    """Images made of ten noisy class templates as uint8 pixels, with standardizing stats."""
    rng = np.random.default_rng(7)
    templates = rng.uniform(60, 190, (10, PIXELS))

    def images(n):
        y = rng.integers(0, 10, n)
        x = np.clip(templates[y] + rng.normal(0, 40, (n, PIXELS)), 0, 255).astype(np.uint8)
        return x, y.astype(np.intp)

    (xtr, ytr), (xv, yv), (xt, yt) = (images(n) for n in (1200, 200, 300))
    mean, scale = fit_stats(xtr, subtract_mean=True, scaling="standardize")
    return Splits(xtr, ytr, xv, yv, xt, yt, mean, scale, tuple("abcdefghij"))


def test_pixels_train_bit_identically_and_learn(pixel_splits, tmp_path):
    a = _fit(pixel_splits, tmp_path, "a", "optim.momentum=0.9")
    b = _fit(pixel_splits, tmp_path, "b", "optim.momentum=0.9")
    assert _weights(a.run_dir).tobytes() == _weights(b.run_dir).tobytes()
    assert _metrics(a.run_dir) == _metrics(b.run_dir)
    seconds = {k: a.summary[k] for k in ("train_seconds", "wall_seconds")}
    assert a.summary == {**b.summary, **seconds}
    assert a.summary["test_acc"] > 0.5  # chance is 0.1
    # The saved model scores the raw test images as the run did.
    model = LinearModel.load(a.run_dir / runs.WEIGHTS)
    assert model.loss == "svm" and model.class_names == tuple("abcdefghij")
    predicted = model.predict(pixel_splits.X_test)
    assert np.mean(predicted == pixel_splits.y_test) == a.summary["test_acc"]


def test_pixels_and_their_design_matrices_train_alike(pixel_splits, tmp_path):
    """The uint8 path and the float path (rows preprocessed by preprocess.transform, mean 0
    and scale 1 after) are the same model: weights equal to float32 rounding after a run."""
    s = pixel_splits
    floats = {
        name: s.design(getattr(s, name), np.float32)[:, :-1]
        for name in ("X_train", "X_val", "X_test")
    }
    design = dataclasses.replace(s, **floats, mean=0 * s.mean, scale=0 * s.scale + 1)
    pixels = _weights(_fit(s, tmp_path, "pixels", "optim.momentum=0.9").run_dir)
    floats = _weights(_fit(design, tmp_path, "floats", "optim.momentum=0.9").run_dir)
    scale = np.abs(floats).max()
    np.testing.assert_allclose(pixels, floats, rtol=1e-4, atol=1e-5 * scale)


def test_training_on_pixels_makes_no_float_copy_of_a_split(pixel_splits):
    """The peak of numpy's allocations while training and evaluating stays below half of one
    float32 copy of the training split (1,200 x 3,073 x 4 bytes = 14.8 MB): batch buffers and
    evaluation chunks only."""
    cfg = _cfg("train.epochs=2")
    state = train.init_state(cfg, 10, pixel_splits.num_features)
    tracemalloc.start()
    try:
        train.train(cfg, pixel_splits, state, progress=False)
        fit.run_summary(pixel_splits, state, state.W)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < pixel_splits.num_features * len(pixel_splits.y_train) * 4 / 2
