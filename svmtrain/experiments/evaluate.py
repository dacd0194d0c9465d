"""Score saved weights on a split of CIFAR-10, preprocessed exactly as in training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from svmtrain.config import config_from_yaml
from svmtrain.core.metrics import accuracy, confusion_matrix, per_class_report
from svmtrain.data.preprocess import split_indices
from svmtrain.errors import WeightsError
from svmtrain.experiments.common import load_dataset
from svmtrain.features.prepare import matching_cache
from svmtrain.features.progress import Phases
from svmtrain.features.transform import FeatureTransform
from svmtrain.io.plots import plot_confusion, require_matplotlib
from svmtrain.io.records import format_table
from svmtrain.model import LinearModel

SPLITS = ("test", "val")


def evaluate(
    weights_path: str | Path,
    split: str = "test",
    *,
    data_dir: str | None = None,
    progress: bool = True,
    plot_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Accuracy, per-class accuracy and confusion matrix of a weights.npz on ``split``
    ("test" or "val").

    The data source, the splits (validation images, ``data.num_test`` test images) and the
    dtype come from the config stored in the weights; the mean image and scale are the stored
    ones, never recomputed. ``data_dir`` overrides where the cache is. ``plot_path``: also draw
    the confusion matrix there as a PNG (without matplotlib that fails first, before any work,
    with :class:`~svmtrain.errors.PlotUnavailable`). A model of features reads them from the
    feature cache when the cache's extractor state is the model's (same digest), else
    computes them (a bar when ``progress``, a line to ``log`` when done).
    Returns {"weights", "split", "num_examples", "warning"} and the keys of
    :func:`classification_metrics`; "warning" says what the weights are when their run diverged
    (see :meth:`~svmtrain.model.LinearModel.divergence_note`), else None.
    Raises :class:`WeightsError` for a weights file that is missing, damaged or does not fit
    the data, :class:`~svmtrain.errors.DataError` when the data cannot be loaded.
    """
    if plot_path is not None:
        require_matplotlib()
    weights = LinearModel.load(weights_path)
    cfg = config_from_yaml(weights.config_yaml, f"the config stored in {weights_path}")
    d = cfg.data
    dataset = load_dataset(d, data_dir=data_dir, progress=progress)
    if len(weights.class_names) != len(dataset.class_names):
        raise WeightsError(
            f"{weights_path} has {len(weights.class_names)} classes but the dataset has "
            f"{len(dataset.class_names)}."
        )
    if split == "val":
        _, rows = split_indices(len(dataset.y_train), d.val_size, d.num_train)
        x, y = dataset.x_train[rows], dataset.y_train[rows]
    else:  # the test images the run itself was scored on
        rows = slice(0, d.num_test)
        x, y = dataset.x_test[rows], dataset.y_test[rows]
    y = np.asarray(y, dtype=np.intp)
    cached = None
    if isinstance(weights.transform, FeatureTransform):
        cached = matching_cache(dataset, cfg, weights.transform, data_dir)
    if cached is not None:
        scores = weights.scores_of_features((cached.train if split == "val" else cached.test)[rows])
    else:
        phases = Phases("evaluate", bar=progress, log=log)
        with phases.phase(f"scoring {split}", len(y), "images") as bar:
            scores = weights.scores(x, on_chunk=bar.update)
    metrics = classification_metrics(y, np.argmax(scores, axis=1), weights.class_names)
    if plot_path is not None:
        plot_confusion(np.array(metrics["confusion"]), weights.class_names, plot_path)
    return {
        "weights": str(weights_path),
        "split": split,
        "num_examples": len(y),
        "warning": weights.divergence_note(),
        **metrics,
    }


def classification_metrics(y: np.ndarray, pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """How well ``pred`` (N,) matches the labels ``y`` (N,), both ints in [0, C):

    {"accuracy": float, "per_class_acc": {name: float or None}, "confusion": C x C list of
    counts (rows: true class, columns: predicted), "class_names": the C names}, all JSON-able.
    """
    confusion = confusion_matrix(y, pred, len(class_names))
    return {
        "accuracy": accuracy(y, pred),
        "per_class_acc": per_class_report(confusion, class_names),
        "confusion": confusion.tolist(),
        "class_names": list(class_names),
    }


def evaluation_text(result: dict) -> str:
    """The report ``svmtrain evaluate`` prints for a result of :func:`evaluate`: the accuracy,
    a table of per-class accuracy, and the confusion matrix (class names cut to 5 letters)."""
    names = result["class_names"]
    per_class = format_table(
        ["class", "accuracy"], [(n, f"{a:.4f}") for n, a in result["per_class_acc"].items()]
    )
    short = [n[:5] for n in names]
    confusion = format_table(
        ["", *short], [(s, *row) for s, row in zip(short, result["confusion"], strict=True)]
    )
    return "\n".join(
        [
            f"{result['split']} accuracy: {result['accuracy']:.4f} "
            f"({result['num_examples']} images)",
            "",
            per_class,
            "",
            "confusion matrix (rows: true class, columns: predicted)",
            "",
            confusion,
        ]
    )
