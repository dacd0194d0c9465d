"""Splits of features: the cached features of every image, memory-mapped, and their scaling."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svmtrain.config import Config
from svmtrain.core.objective import StackedRows, release_pages
from svmtrain.data.preprocess import Splits, split_rows, stats_from_moments
from svmtrain.data.source import resolve_data_dir
from svmtrain.errors import DataError
from svmtrain.features.cache import (
    CacheDamaged,
    FeatureCache,
    all_finite,
    cache_key,
    features_root,
    load_or_build,
    open_cache,
)
from svmtrain.features.flips import mirrors
from svmtrain.features.progress import Phases
from svmtrain.features.transform import FeatureTransform


def cached_features(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> FeatureCache:
    """The feature cache ``cfg.features`` names for ``dataset``, built first if need be, its
    state learned from the config's training split only; with ``features.flip``, the mirrored
    training images' features too (:func:`flipped_of`)."""
    cached = _built(dataset, cfg, progress=progress, log=log)
    if cfg.features.flip:
        flipped_of(cached, dataset, progress=progress, log=log)
    return cached


def _built(
    dataset, cfg: Config, *, progress: bool, log: Callable[[str], None] | None
) -> FeatureCache:
    """The feature cache of :func:`cached_features`, without its mirrored images."""
    train, _, _ = split_rows(dataset, cfg)
    name = cfg.features.name
    return load_or_build(
        dataset,
        name,
        getattr(cfg.features, name),
        train,
        resolve_data_dir(cfg.data.dir),
        progress=progress,
        log=log,
    )


def flipped_of(
    cached: FeatureCache,
    dataset,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The features of ``dataset``'s training images mirrored (N, dim), kept in ``cached``, and
    (mean, std) (dim,) of the training split with its mirrors (:func:`flips.mirrors`)."""
    phases = Phases(f"features {cached.extractor.name}", bar=progress, log=log)
    return mirrors(cached, dataset, phases)


def matching_cache(
    dataset, cfg: Config, transform: FeatureTransform, data_dir: str | None = None
) -> FeatureCache | None:
    """The finished feature cache of ``dataset`` that the config ``cfg`` (a model's own)
    names, when its extractor's state is the one of ``transform`` (equal digests of name,
    settings and state arrays); else None. Nothing is built. ``data_dir`` overrides
    ``cfg.data.dir``."""
    extractor = transform.extractor
    train, _, _ = split_rows(dataset, cfg)
    dirname, _ = cache_key(dataset.sha256, extractor.name, extractor.settings_dict(), train)
    path = features_root(resolve_data_dir(data_dir or cfg.data.dir)) / dirname
    if not path.is_dir():
        return None
    try:
        cached = open_cache(path)
    except DataError:
        return None
    return cached if cached.extractor.state_digest() == extractor.state_digest() else None


def feature_splits(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> Splits:
    """Splits whose X are rows (N, dim) of the feature cache ``cfg.features`` names, memory-
    mapped, with the training split's mean and scale as ``cfg.preprocess`` says and the
    :class:`FeatureTransform` a model of them keeps. With ``features.flip`` the training rows
    are followed by their mirror images' (:mod:`svmtrain.features.flips`; one
    :class:`StackedRows`), labels alike, and the mean and scale are of both. Nothing is copied:
    training folds the scaling into W. Raises CacheDamaged for a cache whose rows are not all
    finite."""
    cached = _built(dataset, cfg, progress=progress, log=log)  # its mirrors once, below
    train, val, test = split_rows(dataset, cfg)

    def checked(x: np.ndarray) -> np.ndarray:
        if not all_finite(x):  # a build never keeps such rows: the files were changed since
            raise CacheDamaged(cached.path, "it holds features that are not finite numbers")
        release_pages(x)
        return x

    def labels(y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.intp)

    X_train, y_train = checked(cached.train[train]), labels(dataset.y_train[train])
    moments = cached.mean, cached.std
    if cfg.features.flip:
        flipped, *moments = flipped_of(cached, dataset, progress=progress, log=log)
        X_train = StackedRows(X_train, checked(flipped[train]))
        y_train = np.concatenate([y_train, y_train])
    mean, scale = stats_from_moments(
        *moments, subtract_mean=cfg.preprocess.subtract_mean, scaling=cfg.preprocess.scaling
    )
    return Splits(
        X_train=X_train,
        y_train=y_train,
        X_val=checked(cached.train[val]),
        y_val=labels(dataset.y_train[val]),
        X_test=checked(cached.test[test]),
        y_test=labels(dataset.y_test[test]),
        mean=mean,
        scale=scale,
        class_names=tuple(dataset.class_names),
        data_sha256=dataset.sha256,
        feature_transform=FeatureTransform(cached.extractor, mean, scale),
    )
