"""Metrics against explicit loops."""

import numpy as np

from svmtrain.core.metrics import accuracy, confusion_matrix, per_class_accuracy


def test_confusion_matrix_matches_a_loop():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    ref = np.zeros((4, 4), dtype=np.int64)
    for t, q in zip(y, p, strict=True):
        ref[t, q] += 1
    np.testing.assert_array_equal(confusion_matrix(y, p, 4), ref)


def test_accuracy_and_per_class_by_hand():
    y = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0, 0])
    assert accuracy(y, p) == 3 / 6
    per_class = per_class_accuracy(confusion_matrix(y, p, 4))
    np.testing.assert_array_equal(per_class[:3], [0.5, 2 / 3, 0.0])
    assert np.isnan(per_class[3])  # class 3 never occurs
