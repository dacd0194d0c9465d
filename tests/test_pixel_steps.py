"""The uint8 training steps (experiments.pixel_steps) against the plain path: float design
matrices made by preprocess.transform, the vectorised loss on X[idx], sgd_step."""

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.core import blas as _blas
from svmtrain.core.losses import LOSSES, reg_loss
from svmtrain.core.optim import sgd_step
from svmtrain.data.preprocess import PixelTransform, fit_stats, transform
from svmtrain.errors import DivergenceError
from svmtrain.experiments import pixel_steps, train
from svmtrain.experiments.common import load_splits

N, P, C, B = 600, 3072, 10, 64


@pytest.fixture(scope="module")
def data():
    """uint8 images with some structure (a class-dependent brightness), and labels."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, C, N).astype(np.intp)
    x = np.clip(rng.normal(100 + 8 * y[:, None], 50, (N, P)), 0, 255).astype(np.uint8)
    return x, y


def _cfg(loss, *extra):
    return load_config(
        overrides=[
            f"model.loss={loss}",
            "model.reg=0.05",
            "optim.learning_rate=1e-3",
            f"train.batch_size={B}",
            "preprocess.scaling=standardize",
            *extra,
        ]
    )


def _reference(cfg, X, y, W, velocity, batches, lr):
    """The plain loop on the float design matrix X. Updates W and velocity in place."""
    m, o = cfg.model, cfg.optim
    losses, regs = [], []
    for idx in batches:
        record = LOSSES[m.loss]
        loss, dW = record.vectorised(
            W, X[idx], y[idx], m.reg, reg_bias=m.reg_bias, **record.options(m)
        )
        losses.append(loss)
        regs.append(reg_loss(W, m.reg, m.reg_bias))
        sgd_step(W, dW, velocity, lr, o.momentum, o.nesterov)
    return np.array(losses), np.array(regs)


def _close(fast, reference, dtype):
    """Equal to the rounding of ``dtype``: a few ulps of the largest entry."""
    tol = 1e-5 if dtype == "float32" else 1e-12
    scale = np.abs(reference).max()
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol * scale)


def _epochs(cfg, x, y, lrs=(1e-3, 5e-4), seed=2):
    """PixelStepper over two epochs; returns (state, per-epoch results, batches, transform)."""
    mean, scale = fit_stats(
        x, subtract_mean=cfg.preprocess.subtract_mean, scaling=cfg.preprocess.scaling
    )
    t = PixelTransform(mean, scale)
    state = train.init_state(cfg, C, P + 1)
    rng = np.random.default_rng(seed)
    stepper = pixel_steps.PixelStepper(cfg, x, y, t, C, on_step=lambda: None)
    runs = []
    for lr in lrs:  # two epochs: the buffers are reused
        batches = train.batch_indices(rng, N, B, N // B, cfg.train.sampling)
        runs.append((batches, lr, stepper.run(state, batches, lr)))
    return state, runs, t


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("optim.momentum=0.9", "model.reg_bias=false"),
        ("optim.momentum=0.9", "optim.nesterov=true", "train.sampling=replacement"),
        ("preprocess.dtype=float64", "optim.momentum=0.9"),
        ("preprocess.scaling=none", "optim.learning_rate=1e-6"),
    ],
)
def test_pixel_steps_match_the_plain_loop_on_float_matrices(data, loss, extra):
    x, y = data
    cfg = _cfg(loss, *extra)
    dtype = cfg.preprocess.dtype
    state, runs, t = _epochs(cfg, x, y, lrs=(cfg.optim.learning_rate, cfg.optim.learning_rate / 2))
    X = transform(x, t.mean, t.scale, dtype)
    ref = train.init_state(cfg, C, P + 1)
    for epoch, (batches, lr, (losses, regs, initial)) in enumerate(runs):
        ref_losses, ref_regs = _reference(cfg, X, y, ref.W, ref.velocity, batches, lr)
        if epoch == 0:
            assert initial == losses[0]
        _close(losses, ref_losses, dtype)
        _close(regs, ref_regs, dtype)
    _close(state.W, ref.W, dtype)
    _close(state.velocity, ref.velocity, dtype)
    assert state.W.dtype == np.dtype(dtype)
    assert not np.allclose(state.W, train.init_state(cfg, C, P + 1).W)  # it did train


@pytest.mark.parametrize("loss", list(LOSSES))
def test_pixel_steps_are_bit_identical_run_to_run(data, loss):
    x, y = data
    cfg = _cfg(loss, "optim.momentum=0.9")
    first, _, _ = _epochs(cfg, x, y)
    again, _, _ = _epochs(cfg, x, y)
    assert np.array_equal(first.W, again.W) and np.array_equal(first.velocity, again.velocity)


def test_a_memory_mapped_split_trains_the_same(data, tmp_path):
    x, y = data
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.uint8, x.shape)
    mapped[:] = x
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    cfg = _cfg("svm", "optim.momentum=0.9")
    assert np.array_equal(_epochs(cfg, mapped, y)[0].W, _epochs(cfg, x, y)[0].W)


def test_parts_cover_every_index_once():
    for n in (1, 2, 7, 256, 3072):
        parts = pixel_steps._parts(n, 2)
        assert np.array_equal(np.concatenate([np.arange(n)[s] for s in parts]), np.arange(n))


def _lane_threads():
    return [t for t in threading.enumerate() if t.name.startswith("svmtrain-lane")]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_error_mid_epoch_leaves_no_worker_and_restores_blas(data, monkeypatch, error):
    x, y = data
    calls = [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise error
        sgd_step(*args, **kwargs)

    monkeypatch.setattr(pixel_steps, "sgd_step", failing_step)
    before = _blas.blas_threads()
    with pytest.raises(error):
        _epochs(_cfg("svm"), x, y)
    assert _lane_threads() == []
    assert _blas.blas_threads() == before


def test_divergence_is_reported(data):
    x, y = data
    cfg = _cfg("svm", "optim.learning_rate=1e6", "optim.momentum=0.9")
    with pytest.raises(DivergenceError, match="Training diverged at epoch 1"):
        _epochs(cfg, x, y, lrs=(1e6,))


@pytest.mark.slow
@pytest.mark.parametrize(("config", "steps"), [("softmax", 112), ("default", 40)])
def test_a_real_epoch_matches_the_plain_loop(cifar_data_dir, config, steps):
    """On the mirror's real images, with the shipped config: the uint8 path and the float path
    agree to float32 rounding (softmax over a whole epoch; the SVM over its first steps, before
    a margin within rounding of its kink can take the other subgradient)."""
    d = cifar_data_dir
    cfg = load_config(
        Path(__file__).resolve().parent.parent / "configs" / f"{config}.yaml",
        overrides=[f"data.dir={d.data_dir}", f"data.url={d.url}", f"data.sha256={d.sha256}"],
    )
    splits = load_splits(cfg, progress=False)
    state = train.init_state(cfg, C, P + 1)
    batches = train.batch_indices(
        np.random.default_rng(0), len(splits.y_train), B * 4, steps, "shuffle"
    )
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=B * 4))
    stepper = pixel_steps.PixelStepper(
        cfg, splits.X_train, splits.y_train, splits.transform, C, on_step=lambda: None
    )
    losses, _, _ = stepper.run(state, batches, cfg.optim.learning_rate)
    X = splits.design(splits.X_train, np.float32)
    ref = train.init_state(cfg, C, P + 1)
    ref_losses, _ = _reference(
        cfg, X, splits.y_train, ref.W, ref.velocity, batches, cfg.optim.learning_rate
    )
    _close(losses, ref_losses, "float32")
    _close(state.W, ref.W, "float32")
