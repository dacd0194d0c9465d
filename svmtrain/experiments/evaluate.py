"""Score saved weights on a split of CIFAR-10, preprocessed exactly as in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from svmtrain.config import config_from_yaml
from svmtrain.core.losses import predict
from svmtrain.core.metrics import accuracy, confusion_matrix, per_class_report
from svmtrain.data import load_cifar10
from svmtrain.data.preprocess import split_indices, transform
from svmtrain.errors import WeightsError
from svmtrain.io import runs

SPLITS = ("test", "val")


def evaluate(
    weights_path: str | Path,
    split: str = "test",
    *,
    data_dir: str | None = None,
    progress: bool = True,
) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of a weights.npz on ``split``.

    The data source, the splits (validation images, ``data.num_test`` test images) and the
    dtype come from the config stored in the weights; the mean image and scale are the stored
    ones, never recomputed.
    """
    weights = runs.load_weights(weights_path)
    cfg = config_from_yaml(weights.config_yaml, f"the config stored in {weights_path}")
    d = cfg.data
    dataset = load_cifar10(
        data_dir or d.dir, url=d.url, sha256=d.sha256, md5=d.md5, progress=progress
    )
    if len(weights.class_names) != len(dataset.class_names):
        raise WeightsError(
            f"{weights_path} has {len(weights.class_names)} classes but the dataset has "
            f"{len(dataset.class_names)}."
        )
    if split == "val":
        _, rows = split_indices(len(dataset.y_train), d.val_size, d.num_train)
        x, y = dataset.x_train[rows], dataset.y_train[rows]
    else:  # the test images the run itself was scored on
        x, y = dataset.x_test[: d.num_test], dataset.y_test[: d.num_test]
    X = transform(x, weights.mean, weights.scale, weights.W.dtype)
    pred = predict(weights.W, X)
    y = np.asarray(y, dtype=np.intp)
    confusion = confusion_matrix(y, pred, len(weights.class_names))
    return {
        "weights": str(weights_path),
        "split": split,
        "num_examples": len(y),
        "accuracy": accuracy(y, pred),
        "per_class_acc": per_class_report(confusion, weights.class_names),
        "confusion": confusion.tolist(),
        "class_names": list(weights.class_names),
    }
