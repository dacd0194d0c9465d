"""SGD's fast paths over the objective's layouts against the plain loop.

The reference is the textbook loop: a float design matrix (made by preprocess.transform),
fancy-index the batch, call the vectorised loss, then ``sgd_step``. The fast path (the affine
map folded, two lanes on one BLAS thread each), over uint8 pixels, float feature rows, and
float rows in two stacked blocks (as mirrored features are kept), must end with the same
weights, velocity and losses, to the dtype's rounding, and be bit-identical run to run.
"""

import threading
from pathlib import Path

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.core import blas as _blas
from svmtrain.core.losses import LOSSES, reg_loss
from svmtrain.core.objective import StackedRows, _parts
from svmtrain.core.optimizers import Progress
from svmtrain.core.optimizers.sgd import SGD, batch_indices, sgd_step
from svmtrain.data.preprocess import PIXELS, Splits, fit_stats, transform
from svmtrain.errors import DivergenceError
from svmtrain.experiments import train
from svmtrain.experiments.common import load_splits

N, C, B = 600, 10, 64


@pytest.fixture(scope="module")
def pixels():
    """uint8 images with some structure (a class-dependent brightness), and labels."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, C, N).astype(np.intp)
    x = np.clip(rng.normal(100 + 8 * y[:, None], 50, (N, PIXELS)), 0, 255).astype(np.uint8)
    return x, y


@pytest.fixture(scope="module")
def dense():
    """Float32 feature rows of 96 columns, and labels."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((N, 96)).astype(np.float32), rng.integers(0, C, N).astype(np.intp)


@pytest.fixture(scope="module")
def stacked(dense):
    """The same rows as two blocks of a StackedRows."""
    X, y = dense
    return StackedRows(X[: N // 3], X[N // 3 :]), y


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


def _splits(cfg, x, y):
    """Training splits of x (uint8 pixels with the config's statistics, or float rows as
    they are)."""
    if x.dtype != np.uint8:
        zeros = np.zeros(x.shape[1], np.float32)
        return Splits(x, y, x, y, x, y, zeros, zeros + 1, tuple("abcdefghij"))
    p = cfg.preprocess
    mean, scale = fit_stats(x, subtract_mean=p.subtract_mean, scaling=p.scaling)
    return Splits(x, y, x[:1], y[:1], x[:1], y[:1], mean, scale, tuple("abcdefghij"))


def _epochs(cfg, splits, epochs=2, seed=2, hook=lambda: None):
    """SGD over ``epochs`` epochs of the objective; returns (state, [(batches, lr, fields,
    losses)] per epoch): the batches drawn again from a twin of the generator."""
    objective = train.objective(cfg, splits)
    state = train.init_state(cfg, C, splits.num_features)
    opt, rng, twin = SGD(cfg), np.random.default_rng(seed), np.random.default_rng(seed)
    done = []
    for epoch in range(epochs):  # the buffers are made again every epoch
        fields, losses = opt.run_round(
            objective, state.W, state.optimizer, Progress(epoch, epoch * (N // B)), rng, hook
        )
        batches = batch_indices(twin, N, B, len(losses), cfg.train.sampling)
        done.append((batches, fields["lr"], fields, losses))
    return state, done


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
    """Equal to the rounding of ``dtype`` as training compounds it: a few hundred float32 ulps
    of the largest entry (the squared hinge with momentum grows the fold's rounding to 4e-5 in
    two epochs on an AVX2 machine), float64's to 1e-12; a wrong path differs by O(1)."""
    tol = 1e-4 if dtype == "float32" else 1e-12
    scale = np.abs(reference).max()
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("layout", ["pixels", "dense", "stacked"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("optim.momentum=0.9", "model.reg_bias=false", "schedule.name=exponential"),
        ("optim.momentum=0.9", "optim.nesterov=true", "train.sampling=replacement"),
        ("preprocess.dtype=float64", "optim.momentum=0.9"),
        ("preprocess.scaling=none", "optim.learning_rate=1e-6"),
    ],
)
def test_the_fast_paths_match_the_plain_loop(request, layout, loss, extra):
    x, y = request.getfixturevalue(layout)
    cfg = _cfg(loss, *extra)
    dtype = cfg.preprocess.dtype
    splits = _splits(cfg, x.astype(dtype) if layout == "dense" else x, y)
    state, done = _epochs(cfg, splits)
    X = transform(splits.X_train, splits.mean, splits.scale, dtype)
    ref = train.init_state(cfg, C, splits.num_features)
    for epoch, (batches, lr, fields, losses) in enumerate(done):
        ref_losses, ref_regs = _reference(cfg, X, y, ref.W, ref.optimizer["velocity"], batches, lr)
        if epoch == 0:
            assert state.optimizer["initial_loss"] == losses[0]
        _close(losses, ref_losses, dtype)
        _close(fields["reg_loss"], ref_regs.mean(), dtype)
    _close(state.W, ref.W, dtype)
    _close(state.optimizer["velocity"], ref.optimizer["velocity"], dtype)
    assert state.W.dtype == np.dtype(dtype)
    assert not np.allclose(state.W, train.init_state(cfg, C, splits.num_features).W)  # it trained


@pytest.mark.parametrize("layout", ["pixels", "dense"])
def test_the_fast_paths_are_bit_identical_run_to_run(request, layout):
    x, y = request.getfixturevalue(layout)
    cfg = _cfg("softmax", "optim.momentum=0.9")
    first, again = (_epochs(cfg, _splits(cfg, x, y))[0] for _ in "ab")
    assert first.W.tobytes() == again.W.tobytes()
    assert first.optimizer["velocity"].tobytes() == again.optimizer["velocity"].tobytes()


def test_a_memory_mapped_split_trains_the_same(pixels, tmp_path):
    x, y = pixels
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    cfg = _cfg("svm", "optim.momentum=0.9")
    assert np.array_equal(
        _epochs(cfg, _splits(cfg, mapped, y))[0].W, _epochs(cfg, _splits(cfg, x, y))[0].W
    )


def test_parts_cover_every_index_once():
    for n in (1, 2, 7, 256, 3072):
        parts = _parts(n, 2)
        assert np.array_equal(np.concatenate([np.arange(n)[s] for s in parts]), np.arange(n))


@pytest.mark.parametrize(
    ("layout", "thread"), [("pixels", "svmtrain-lane"), ("stacked", "svmtrain-lane")]
)
@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_error_mid_epoch_leaves_no_worker_and_restores_blas(request, layout, thread, error):
    x, y = request.getfixturevalue(layout)
    calls = [0]

    def failing_hook():
        calls[0] += 1
        if calls[0] == 3:
            raise error

    before = _blas.blas_threads()
    cfg = _cfg("svm")
    with pytest.raises(error):
        _epochs(cfg, _splits(cfg, x, y), hook=failing_hook)
    assert [t for t in threading.enumerate() if t.name.startswith(thread)] == []
    assert _blas.blas_threads() == before


def test_divergence_is_reported(pixels):
    x, y = pixels
    cfg = _cfg("svm", "optim.learning_rate=1e6", "optim.momentum=0.9")
    with pytest.raises(DivergenceError, match="Training diverged at epoch 1"):
        _epochs(cfg, _splits(cfg, x, y), epochs=1)


@pytest.mark.slow
@pytest.mark.parametrize(("config", "steps"), [("softmax", 112), ("default", 40)])
def test_a_real_epoch_matches_the_plain_loop(cifar_data_dir, config, steps):
    """On the mirror's real images, with the shipped config: the uint8 path and the float path
    agree to float32 rounding (softmax over a whole epoch; the SVM over its first steps, before
    a margin within rounding of its kink can take the other subgradient)."""
    d = cifar_data_dir
    cfg = load_config(
        Path(__file__).resolve().parent.parent / "configs" / f"{config}.yaml",
        overrides=[
            f"data.dir={d.data_dir}",
            f"data.url={d.url}",
            f"data.sha256={d.sha256}",
            f"train.batch_size={B * 4}",
            "train.epochs=null",
            f"train.iterations={steps}",
        ],
    )
    splits = load_splits(cfg, progress=False)
    objective = train.objective(cfg, splits)
    state = train.init_state(cfg, C, PIXELS + 1)
    rng, twin = np.random.default_rng(0), np.random.default_rng(0)
    _, losses = SGD(cfg).run_round(
        objective, state.W, state.optimizer, Progress(0, 0), rng, lambda: None
    )
    batches = batch_indices(twin, len(splits.y_train), B * 4, steps, "shuffle")
    X = splits.design(splits.X_train, np.float32)
    ref = train.init_state(cfg, C, PIXELS + 1)
    ref_losses, _ = _reference(
        cfg, X, splits.y_train, ref.W, ref.optimizer["velocity"], batches, cfg.optim.learning_rate
    )
    _close(losses, ref_losses, "float32")
    _close(state.W, ref.W, "float32")
