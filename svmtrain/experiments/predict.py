"""Class scores of image files and of CIFAR-10 test images under a saved model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from svmtrain.config import config_from_yaml
from svmtrain.errors import SvmtrainError, WeightsError
from svmtrain.experiments.common import load_dataset
from svmtrain.features.prepare import matching_cache
from svmtrain.features.transform import FeatureTransform
from svmtrain.io.images import read_image
from svmtrain.io.records import format_table
from svmtrain.model import LinearModel


def predict(
    weights_path: str | Path,
    image_paths: Sequence[str | Path] = (),
    test_indices: Sequence[int] = (),
    *,
    data_dir: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """One result per image, files first then test images, in the order given:
    ``{"image", "class", "scores": {class name: score}}``, and ``"true_class"`` for a test image.

    Image files of any size are read with Pillow (see :func:`svmtrain.io.images.read_image`);
    test images come from the data source of the config stored in the weights (``data_dir``
    overrides its cache directory). Every file and index is checked before any score is
    computed; a fault is one SvmtrainError naming it.
    """
    model = LinearModel.load(weights_path)
    images = [read_image(p) for p in image_paths]
    names = [str(p) for p in image_paths]
    truths: list[str | None] = [None] * len(images)
    scores = [model.scores(np.stack(images))] if images else [np.empty((0, model.num_classes))]
    if test_indices:
        x_test, y_test, cached = _test_split(model, weights_path, data_dir, progress)
        bad = [i for i in test_indices if not 0 <= i < len(y_test)]
        if bad:
            raise SvmtrainError(
                f"Test index {bad[0]} is out of range: the test split has {len(y_test)} images "
                f"(indices 0 to {len(y_test) - 1})."
            )
        which = list(test_indices)
        if cached is not None:
            scores.append(model.scores_of_features(cached.test[which]))
        else:
            scores.append(model.scores(x_test[which]))
        names += [f"test[{i}]" for i in test_indices]
        truths += [model.class_names[int(y_test[i])] for i in test_indices]
    scores = np.concatenate(scores)
    results = []
    for name, row, truth in zip(names, scores, truths, strict=True):
        result = {
            "image": name,
            "class": model.class_names[int(np.argmax(row))],
            "scores": {c: float(s) for c, s in zip(model.class_names, row, strict=True)},
        }
        if truth is not None:
            result["true_class"] = truth
        results.append(result)
    return results


def _test_split(model: LinearModel, weights_path, data_dir, progress):
    """The CIFAR-10 test images and labels of the model's data source, and its feature cache
    when the model's extractor made it (None otherwise, or for a pixel model)."""
    cfg = config_from_yaml(model.config_yaml, f"the config stored in {weights_path}")
    dataset = load_dataset(cfg.data, data_dir=data_dir, progress=progress)
    if tuple(dataset.class_names) != model.class_names:
        raise WeightsError(
            f"{weights_path} was trained on the classes {', '.join(model.class_names)}, but the "
            f"dataset has {', '.join(dataset.class_names)}."
        )
    cached = None
    if isinstance(model.transform, FeatureTransform):
        cached = matching_cache(dataset, cfg, model.transform, data_dir)
    return dataset.x_test, dataset.y_test, cached


def predictions_text(results: list[dict]) -> str:
    """The table ``svmtrain predict`` prints for :func:`predict`'s results: one row per image,
    its class, its true class when any image has one, and the score of every class."""
    classes = list(results[0]["scores"])
    has_truth = any("true_class" in r for r in results)
    headers = ["image", "class", *(["true"] if has_truth else []), *(c[:8] for c in classes)]
    rows = [
        (
            r["image"],
            r["class"],
            *([r.get("true_class", "")] if has_truth else []),
            *(f"{r['scores'][c]:.3f}" for c in classes),
        )
        for r in results
    ]
    return format_table(headers, rows)
