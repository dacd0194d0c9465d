"""Design matrices of features: the cached features of every image, scaled as the config says."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svmtrain.config import Config
from svmtrain.data.preprocess import Splits, design_splits, split_rows, stats_from_moments
from svmtrain.data.source import resolve_data_dir
from svmtrain.errors import DataError
from svmtrain.features.base import Extractor
from svmtrain.features.cache import (
    FeatureCache,
    cache_key,
    features_root,
    load_or_build,
    open_cache,
)


def cached_features(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> FeatureCache:
    """The feature cache ``cfg.features`` names for ``dataset``, built first if need be, its
    state learned from the config's training split only."""
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


def matching_cache(
    dataset, cfg: Config, extractor: Extractor, data_dir: str | None = None
) -> FeatureCache | None:
    """The finished feature cache of ``dataset`` in ``data_dir`` (None: ``cfg.data.dir``)
    whose state is exactly ``extractor``'s (as a weights file carries it), under ``cfg``'s
    training split; None when there is none. Never builds anything."""
    train, _, _ = split_rows(dataset, cfg)
    dirname, _ = cache_key(dataset.sha256, extractor.name, extractor.settings_dict(), train)
    path = features_root(resolve_data_dir(data_dir or cfg.data.dir)) / dirname
    try:
        cached = open_cache(path)
    except DataError:
        return None
    same = all(
        np.array_equal(cached.extractor.state[key], value) for key, value in extractor.state.items()
    )
    return cached if same else None


def feature_splits(
    dataset, cfg: Config, *, progress: bool = True, log: Callable[[str], None] | None = None
) -> Splits:
    """Splits whose X are the features ``cfg.features`` names (N, dim + 1), centred and scaled
    by the training split's moments as ``cfg.preprocess`` says, with their extractor."""
    cached = cached_features(dataset, cfg, progress=progress, log=log)
    mean, scale = stats_from_moments(
        cached.mean,
        cached.std,
        subtract_mean=cfg.preprocess.subtract_mean,
        scaling=cfg.preprocess.scaling,
    )
    rows = split_rows(dataset, cfg)
    inputs = (cached.train, cached.test)
    return design_splits(dataset, inputs, rows, mean, scale, cfg, extractor=cached.extractor)
