"""Score saved weights on a split of CIFAR-10, preprocessed exactly as in training."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from svmtrain.io.plots import GALLERY, plot_evaluation, require_matplotlib
from svmtrain.io.records import format_table
from svmtrain.model import LinearModel

SPLITS = ("test", "val")


@dataclass(frozen=True)
class Evaluation:
    """How well a weights file does on one split, as :func:`evaluate` returns it.

    accuracy: float; per_class_acc: {class name: accuracy, or None for a class with no image};
    confusion: C x C counts (rows: true class, columns: predicted); class_names: the C names;
    warning: what the weights are when their run diverged, else None. ``result["accuracy"]``
    reads a key of :meth:`to_dict`, as the dict evaluate used to return did.
    """

    weights: str
    split: str
    num_examples: int
    warning: str | None
    accuracy: float
    per_class_acc: dict
    confusion: list
    class_names: list

    def to_dict(self) -> dict:
        """The JSON document of ``svmtrain evaluate --json``."""
        return dataclasses.asdict(self)

    def __getitem__(self, key: str):
        return self.to_dict()[key]

    def text(self) -> str:
        """The report ``svmtrain evaluate`` prints: the accuracy, a table of per-class accuracy,
        and the confusion matrix (class names cut to 5 letters)."""
        per_class = format_table(
            ["class", "accuracy"], [(n, f"{a:.4f}") for n, a in self.per_class_acc.items()]
        )
        short = [n[:5] for n in self.class_names]
        confusion = format_table(
            ["", *short], [(s, *row) for s, row in zip(short, self.confusion, strict=True)]
        )
        return "\n".join(
            [
                f"{self.split} accuracy: {self.accuracy:.4f} ({self.num_examples} images)",
                "",
                per_class,
                "",
                "confusion matrix (rows: true class, columns: predicted)",
                "",
                confusion,
            ]
        )


def evaluate(
    weights_path: str | Path,
    split: str = "test",
    *,
    data_dir: str | None = None,
    progress: bool = True,
    plot_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Evaluation:
    """Accuracy, per-class accuracy and confusion matrix of a weights.npz on ``split``
    ("test" or "val"), as an :class:`Evaluation` (``.text()`` is what ``svmtrain evaluate``
    prints, ``.to_dict()`` its --json).

    The data source, the splits (validation images, ``data.num_test`` test images) and the
    dtype come from the config stored in the weights; the mean image and scale are the stored
    ones, never recomputed. ``data_dir`` overrides where the cache is. ``plot_path``: also draw
    the confusion matrix and the most confident mistakes (:func:`confident_mistakes`) there as
    a PNG (without matplotlib that fails first, before any work,
    with :class:`~svmtrain.errors.PlotUnavailable`). A model of features reads them from the
    feature cache when the cache's extractor state is the model's (same digest), else
    computes them (a bar when ``progress``, a line to ``log`` when done).
    Its warning says what the weights are when their run diverged (see
    :meth:`~svmtrain.model.LinearModel.divergence_note`), else None.
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
    predicted = np.argmax(scores, axis=1)
    metrics = classification_metrics(y, predicted, weights.class_names)
    if plot_path is not None:
        wrong = confident_mistakes(scores, y, GALLERY)
        images = np.asarray(x[wrong]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        confusion = np.array(metrics["confusion"])
        names = weights.class_names
        plot_evaluation(confusion, names, images, y[wrong], predicted[wrong], plot_path, split)
    return Evaluation(
        weights=str(weights_path),
        split=split,
        num_examples=len(y),
        warning=weights.divergence_note(),
        **metrics,
    )


def confident_mistakes(scores: np.ndarray, y: np.ndarray, count: int) -> np.ndarray:
    """Indices of the misclassified rows of ``scores`` (N, C) (labels ``y`` (N,)), at most
    ``count``, the most confident first: by how far the predicted class's score is above the
    true class's (ties: the lower index)."""
    predicted = np.argmax(scores, axis=1)
    rows = np.arange(len(y))
    wrong = np.flatnonzero(predicted != y)
    margin = scores[wrong, predicted[wrong]] - scores[rows[wrong], y[wrong]]
    return wrong[np.argsort(-margin, kind="stable")[:count]]


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
