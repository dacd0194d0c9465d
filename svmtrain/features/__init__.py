"""Feature extractors: fixed maps from raw CIFAR-10 images to the inputs of the linear model.

Each extractor is one module with its tests; this registry names them. ``pixels`` (the raw
preprocessed pixels, W of 10 x 3073) is not an extractor: it is the absence of one.
"""

from __future__ import annotations

import difflib
from typing import Any

from svmtrain.errors import ConfigError
from svmtrain.features.base import Extractor
from svmtrain.features.hog_color import HogColorFeatures
from svmtrain.features.kmeans import KMeansFeatures

PIXELS = "pixels"
EXTRACTORS: dict[str, type[Extractor]] = {
    cls.name: cls for cls in (KMeansFeatures, HogColorFeatures)
}
NAMES = (PIXELS, *EXTRACTORS)


def make_extractor(name: str, settings: Any = None) -> Extractor:
    """A new, unfitted extractor with ``settings`` (a mapping or its settings dataclass; keys
    left out take their defaults); ConfigError for an unknown name or a bad setting."""
    if name not in EXTRACTORS:
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ConfigError(
            f"features.name must be one of {', '.join(NAMES)}. Got {name!r} instead{hint}"
        )
    return EXTRACTORS[name](settings)


def check_feature_name(features) -> None:
    """Check the name in a config's ``features`` section (a FeaturesConfig; the config checked
    the extractors' settings). Raises ConfigError for a name no extractor has."""
    if features.name != PIXELS:
        make_extractor(features.name)
    elif features.flip:
        raise ConfigError(
            "features.flip adds the features of the mirrored training images, and pixels have "
            "no extractor: set features.name (e.g. --set features.name=kmeans) or drop "
            "features.flip."
        )


__all__ = [
    "EXTRACTORS",
    "NAMES",
    "PIXELS",
    "Extractor",
    "check_feature_name",
    "make_extractor",
]
