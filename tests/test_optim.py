"""Schedules by hand, and SGD updates against the notes' formulas written out."""

import math

import numpy as np
import pytest

from svmtrain.config import ScheduleConfig
from svmtrain.core.optimizers.sgd import SCHEDULES, sgd_step

PARAMS = ScheduleConfig(step_epochs=2, gamma=0.5, min_lr=0.1)


@pytest.mark.parametrize(
    ("name", "epoch", "total", "expected"),
    [
        ("constant", 0, 10, 1.0),
        ("constant", 9, 10, 1.0),
        ("step", 0, 10, 1.0),
        ("step", 1, 10, 1.0),
        ("step", 2, 10, 0.5),
        ("step", 5, 10, 0.25),
        ("exponential", 0, 10, 1.0),
        ("exponential", 3, 10, 0.125),
        ("cosine", 0, 4, 1.0),
        ("cosine", 1, 4, 0.1 + 0.45 * (1 + math.sqrt(0.5))),
        ("cosine", 2, 4, 0.55),
        ("cosine", 3, 4, 0.1 + 0.45 * (1 - math.sqrt(0.5))),  # the last epoch still learns
        ("cosine", 0, 1, 1.0),
    ],
)
def test_schedules(name, epoch, total, expected):
    assert math.isclose(SCHEDULES[name](1.0, epoch, total, PARAMS), expected, rel_tol=1e-12)


def _reference(W, dW_seq, lr, mu, nesterov):
    """The CS231n notes' update rules, literally (with v_prev for Nesterov)."""
    W, v = W.copy(), np.zeros_like(W)
    for dW in dW_seq:
        if mu == 0.0:
            W = W - lr * dW
        elif nesterov:
            v_prev = v
            v = mu * v - lr * dW
            W = W - mu * v_prev + (1 + mu) * v
        else:
            v = mu * v - lr * dW
            W = W + v
    return W


@pytest.mark.parametrize(("mu", "nesterov"), [(0.0, False), (0.9, False), (0.5, True), (0.9, True)])
def test_sgd_step_matches_the_notes(mu, nesterov):
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((10, 7))
    grads = [rng.standard_normal((10, 7)) for _ in range(5)]
    W, v = W0.copy(), np.zeros_like(W0)
    for dW in grads:
        sgd_step(W, dW, v, 0.1, mu, nesterov)
    np.testing.assert_allclose(W, _reference(W0, grads, 0.1, mu, nesterov), rtol=1e-12)


def test_sgd_step_keeps_float32():
    W = np.ones((2, 3), dtype=np.float32)
    sgd_step(W, np.ones_like(W), np.zeros_like(W), 0.5, 0.9)
    assert W.dtype == np.float32
    np.testing.assert_array_equal(W, np.full((2, 3), 0.5, dtype=np.float32))
