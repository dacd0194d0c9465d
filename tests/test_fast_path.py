"""The training loop's fast path (train.Stepper, _blas) against the plain one.

The reference here is the textbook loop: fancy-index the batch, call the vectorised loss, then
``sgd_step``. The stepper gathers on a worker thread into reused buffers with one BLAS thread;
it must end with the same weights, velocity and losses, to float32 rounding.
"""

import dataclasses
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.core import blas as _blas
from svmtrain.core.losses import LOSSES, reg_loss
from svmtrain.core.optim import sgd_step
from svmtrain.experiments import train

N, D, C, B = 600, 97, 10, 64
# The functions as imported, before any test swaps a record in the registry.
REFERENCE_LOSSES = {name: loss.vectorised for name, loss in LOSSES.items()}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N, D)).astype(np.float32)
    X[:, -1] = 1.0  # the bias column
    return X, rng.integers(0, C, N).astype(np.intp)


def _cfg(loss, *extra):
    return load_config(
        overrides=[
            f"model.loss={loss}",
            "model.reg=0.05",
            "model.reg_bias=false",
            "optim.learning_rate=0.01",
            f"train.batch_size={B}",
            *extra,
        ]
    )


def _reference(cfg, X, y, W, velocity, batches, lr):
    """The plain loop: X[idx] (a fresh array), the loss, sgd_step. Updates W, velocity."""
    m, o = cfg.model, cfg.optim
    losses, regs = [], []
    for idx in batches:
        options = LOSSES[m.loss].options(m)  # the loss's own hyperparameters, e.g. delta
        loss, dW = REFERENCE_LOSSES[m.loss](
            W, X[idx], y[idx], m.reg, reg_bias=m.reg_bias, **options
        )
        losses.append(loss)
        regs.append(reg_loss(W, m.reg, m.reg_bias))
        sgd_step(W, dW, velocity, lr, o.momentum, o.nesterov)
    return np.array(losses), np.array(regs)


def _close(fast, reference):
    """Equal to float32 rounding: a few ulps of the largest entry."""
    scale = np.abs(reference).max()
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("optim.momentum=0.9",),
        ("optim.momentum=0.9", "optim.nesterov=true", "train.sampling=replacement"),
    ],
)
def test_stepper_matches_the_plain_loop(data, loss, extra):
    X, y = data
    cfg = _cfg(loss, *extra)
    state = train.init_state(cfg, C, D)
    W, velocity = state.W.copy(), state.velocity.copy()
    rng = np.random.default_rng(2)
    steps = N // B
    stepper = train.Stepper(cfg, X, y, on_step=lambda: None)
    for epoch, lr in enumerate([0.01, 0.005]):  # two epochs: the buffers are reused
        batches = train.batch_indices(rng, N, B, steps, cfg.train.sampling)
        losses, regs, initial = stepper.run(state, batches, lr)
        ref_losses, ref_regs = _reference(cfg, X, y, W, velocity, batches, lr)
        if epoch == 0:
            assert initial == losses[0]
        _close(losses, ref_losses)
        _close(regs, ref_regs)
        _close(state.W, W)
        _close(state.velocity, velocity)
        assert state.W.dtype == np.float32
    assert not np.allclose(state.W, train.init_state(cfg, C, D).W)  # it did train


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_each_step_sees_exactly_its_batch(data, monkeypatch, steps):
    """Double buffering hands every step its own rows, also for 1 and 2 steps."""
    X, y = data
    seen = []

    def recording_loss(W, Xb, yb, reg, **kw):
        seen.append((Xb.copy(), yb.copy()))
        return 1.0, np.zeros_like(W)

    monkeypatch.setitem(
        train.LOSSES, "svm", dataclasses.replace(train.LOSSES["svm"], vectorised=recording_loss)
    )
    cfg = _cfg("svm")
    batches = train.batch_indices(np.random.default_rng(3), N, B, steps, "shuffle")
    train.Stepper(cfg, X, y, on_step=lambda: None).run(train.init_state(cfg, C, D), batches, 0.1)
    assert len(seen) == steps
    for (Xb, yb), idx in zip(seen, batches, strict=True):
        np.testing.assert_array_equal(Xb, X[idx])
        np.testing.assert_array_equal(yb, y[idx])


def _gather_threads():
    return [t for t in threading.enumerate() if t.name.startswith("svmtrain-gather")]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_error_mid_epoch_leaves_no_worker_and_restores_blas(data, monkeypatch, error):
    X, y = data
    calls = [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise error
        sgd_step(*args, **kwargs)

    monkeypatch.setattr(train, "sgd_step", failing_step)
    before = _blas.blas_threads()
    cfg = _cfg("svm")
    batches = train.batch_indices(np.random.default_rng(4), N, B, N // B, "shuffle")
    with pytest.raises(error):
        train.Stepper(cfg, X, y, on_step=lambda: None).run(
            train.init_state(cfg, C, D), batches, 0.1
        )
    assert _gather_threads() == []
    assert _blas.blas_threads() == before


_PROBE = """
from svmtrain.core import blas as _blas
outside = _blas.blas_threads()
with _blas.limited_threads(1):
    inside = _blas.blas_threads()
try:
    with _blas.limited_threads(2):
        raise ValueError
except ValueError:
    pass
print(outside, inside, _blas.blas_threads())
"""


@pytest.mark.parametrize(("env", "expected"), [("1", ["1", "1", "1"]), ("2", ["2", "1", "2"])])
def test_limited_threads_sets_and_restores_what_openblas_was_told(env, expected):
    """OPENBLAS_NUM_THREADS is OpenBLAS's documented setting: the independent reference.
    (OpenBLAS caps it at the number of cores, hence no larger value.)"""
    if _blas.blas_threads() is None:
        pytest.skip("numpy's BLAS here is not OpenBLAS; limited_threads changes nothing")
    if (os.cpu_count() or 1) < int(env):
        pytest.skip(f"OpenBLAS caps its threads at the {os.cpu_count()} cores here")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, "OPENBLAS_NUM_THREADS": env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == expected


def test_limited_threads_without_openblas_changes_nothing(monkeypatch):
    monkeypatch.setattr(_blas, "_openblas", lambda: None)
    assert _blas.blas_threads() is None
    with _blas.limited_threads(1):
        assert _blas.blas_threads() is None
