"""Classification metrics: pure functions of labels and predictions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of y_pred (N,) equal to y_true (N,); NaN for N = 0 (no split to score)."""
    return float(np.mean(y_true == y_pred)) if len(y_true) else math.nan


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    flat = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """(C,) recall of each class from a (C, C) confusion matrix; NaN for a class never seen."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(confusion) / totals


def per_class_report(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, float | None]:
    """{class name: accuracy} from a (C, C) confusion matrix; None for a class never seen
    (JSON has no NaN)."""
    per_class = per_class_accuracy(confusion).tolist()
    return {n: None if math.isnan(a) else a for n, a in zip(class_names, per_class, strict=True)}
