"""The objective (core.objective) against a plain float64 reference: the design matrix made
explicitly, then the loss record's vectorised function; for every loss, on one array of rows
and on the same rows as two stacked blocks (StackedRows, as mirrored features are kept)."""

import numpy as np
import pytest

from svmtrain.core.losses import LOSSES
from svmtrain.core.objective import AffineRows, Objective, StackedRows

N, F, C = 300, 40, 10


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    y = rng.integers(0, C, N).astype(np.intp)
    x = np.clip(rng.normal(100 + 8 * y[:, None], 50, (N, F)), 0, 255).astype(np.uint8)
    mean = x.mean(axis=0).astype(np.float32)
    scale = (x.std(axis=0) + 1).astype(np.float32)
    W = rng.standard_normal((C, F + 1)) * 0.01
    return x, y, mean, scale, W


def _design(x, mean, scale):
    """The explicit float64 design matrix: (x - mean) / scale, then a bias column of ones."""
    X = (x.astype(np.float64) - mean.astype(np.float64)) / scale.astype(np.float64)
    return np.hstack([X, np.ones((len(x), 1))])


def _objectives(problem, loss, raw_dtype, reg_bias):
    x, y, mean, scale, _ = problem
    record = LOSSES[loss]
    options = record.options(type("M", (), {"delta": 1.5})())
    kwargs = {"reg": 0.01, "reg_bias": reg_bias, "options": options, "num_classes": C}
    X = _design(x, mean, scale)
    raw = x.astype(raw_dtype)
    affine = Objective(record, AffineRows(raw, mean, scale), y, **kwargs)
    stacked = Objective(
        record, AffineRows(StackedRows(raw[:113], raw[113:]), mean, scale), y, **kwargs
    )
    return record, options, X, (affine, stacked)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("raw_dtype", [np.uint8, np.float16, np.float32])
@pytest.mark.parametrize("reg_bias", [True, False])
def test_full_batch_and_value_equal_the_reference_in_float64(problem, loss, raw_dtype, reg_bias):
    x, y, mean, scale, W = problem
    record, options, X, objectives = _objectives(problem, loss, raw_dtype, reg_bias)
    if raw_dtype is not np.uint8:  # the reference sees the same rounded features
        X = _design(x.astype(raw_dtype), mean, scale)
    want, want_dW = record.vectorised(W, X, y, 0.01, reg_bias=reg_bias, **options)
    idx = np.random.default_rng(0).permutation(N)[:64]
    want_b, want_bdW = record.vectorised(W, X[idx], y[idx], 0.01, reg_bias=reg_bias, **options)
    for objective in objectives:
        loss_value, dW = objective.full(W)
        assert dW.dtype == np.float64 and dW.shape == W.shape
        np.testing.assert_allclose(loss_value, want, rtol=1e-12)
        np.testing.assert_allclose(dW, want_dW, rtol=1e-9, atol=1e-12)
        assert objective.value(W) == pytest.approx(want, rel=1e-12)
        b, bdW = objective.batch(W, idx)
        np.testing.assert_allclose(b, want_b, rtol=1e-12)
        np.testing.assert_allclose(bdW, want_bdW, rtol=1e-9, atol=1e-12)
        assert objective.value(W, idx) == b


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_full_in_float32_is_the_reference_to_float32_rounding(problem, loss, monkeypatch):
    _, y, _, _, W = problem
    record, options, X, (affine, _) = _objectives(problem, loss, np.uint8, True)
    monkeypatch.setattr("svmtrain.core.objective.CHUNK_BYTES", 7 * (F + 1) * 4)  # 43 chunks
    want, want_dW = record.vectorised(W, X, y, 0.01, **options)
    loss_value, dW = affine.full(W.astype(np.float32))
    assert dW.dtype == np.float32
    np.testing.assert_allclose(loss_value, want, rtol=1e-5)
    np.testing.assert_allclose(dW, want_dW, rtol=1e-3, atol=1e-5 * np.abs(want_dW).max())


def test_batches_give_each_batch_at_the_weights_of_that_moment(problem):
    """The run of batches SGD uses sees W updated in place between steps, as one batch would."""
    W0 = problem[-1]
    for objective in _objectives(problem, "softmax", np.uint8, True)[3]:
        W = W0.astype(np.float32)
        batches = np.random.default_rng(1).permutation(N)[:256].reshape(4, 64)
        expected, V = [], W.copy()
        for idx in batches:
            loss, dW = objective.batch(V, idx)
            expected.append((loss, dW.copy()))
            V -= np.float32(0.1) * dW
        for (loss, dW), (want, want_dW) in zip(
            objective.batches(W, batches), expected, strict=True
        ):
            assert loss == want and np.array_equal(dW, want_dW)
            W -= np.float32(0.1) * dW
        assert np.array_equal(W, V)


def test_sizes():
    x = np.zeros((5, 3), np.uint8)
    objective = Objective(LOSSES["svm"], AffineRows(x, np.zeros(3), np.ones(3)), np.arange(5))
    assert (objective.n, objective.num_features, objective.num_classes) == (5, 4, 5)


def test_folded_weights_give_the_same_scores_and_gradient():
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 256, (64, 3072), dtype=np.uint8)
    mean, scale = rng.uniform(60, 190, 3072), rng.uniform(20, 80, 3072)
    affine, W = AffineRows(rows, mean, scale), rng.standard_normal((C, 3073))
    X = _design(rows, mean, scale)
    V, offset = affine.fold(W)
    np.testing.assert_allclose(rows @ V.T + offset, X @ W.T, rtol=1e-12, atol=1e-9)
    coef = rng.standard_normal((64, C))
    dW = affine.unfold(coef.T @ rows.astype(np.float64), coef.sum(axis=0), np.empty_like(W))
    np.testing.assert_allclose(dW, coef.T @ X, rtol=1e-12, atol=1e-9)


def test_stacked_rows_read_as_the_stacked_matrix():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal((5, 3))
    stacked, whole = StackedRows(a, b), np.vstack([a, b])
    assert stacked.shape == whole.shape and len(stacked) == 12 and stacked.dtype == a.dtype
    idx = np.array([11, 0, 6, 7, 7, 3])
    assert np.array_equal(stacked[idx], whole[idx])
    assert np.array_equal(stacked[5:9], whole[5:9])
    out = np.empty((6, 3))
    np.take(stacked, idx, axis=0, out=out, mode="clip")
    assert np.array_equal(out, whole[idx])
