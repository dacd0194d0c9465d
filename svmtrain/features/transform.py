"""A fitted extractor and the scaling of its features: the input transform of a model.

:class:`FeatureTransform` is what :class:`svmtrain.model.LinearModel` needs of a transform
(``kind``, ``num_features``, ``features``, ``arrays``, ``from_arrays``), so ``weights.npz``
carries the extractor's settings and state and the features' mean and scale, and turns raw
images into scores with nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from svmtrain.errors import ConfigError, WeightsError
from svmtrain.features import EXTRACTORS, Extractor
from svmtrain.fileio import loads_json

_STATE = "state."  # prefix of the extractor's state arrays among the transform's arrays


@dataclass(frozen=True, eq=False)
class FeatureTransform:
    """(extractor(images) - mean) / scale: F = extractor.dim features per image.

    mean, scale: (F,) float32 from the training split's features; scale > 0.
    """

    extractor: Extractor
    mean: np.ndarray
    scale: np.ndarray
    kind: ClassVar[str] = "features"

    @property
    def num_features(self) -> int:
        return self.extractor.dim

    def features(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Features of ``rows`` (n, 3072) uint8 into ``out`` (n, F) float; returns ``out``.
        One worker: the model already scores chunks on a thread per core."""
        self.extractor.transform(np.asarray(rows), out=out, workers=1)
        return self._scale(out)

    def scaled(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The extractor's features ``raw`` (n, F), e.g. rows of a feature cache, scaled into
        ``out`` (n, F) float exactly as :meth:`features` scales them; returns ``out``."""
        np.copyto(out, raw, casting="same_kind")
        return self._scale(out)

    def _scale(self, out: np.ndarray) -> np.ndarray:
        out -= self.mean.astype(out.dtype)
        out /= self.scale.astype(out.dtype)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        described = {"name": self.extractor.name, "settings": self.extractor.settings_dict()}
        return {
            "extractor": np.array(json.dumps(described)),
            "mean": self.mean,
            "scale": self.scale,
            **{_STATE + key: value for key, value in self.extractor.state.items()},
        }

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], where: str, hint: str = ""
    ) -> FeatureTransform:
        """The transform saved in ``arrays`` (as :meth:`arrays` gives them); a fault is a
        WeightsError naming ``where`` and ending with ``hint``."""
        try:
            described = loads_json(str(arrays["extractor"]))
            name, settings = described["name"], described["settings"]
            state = {k[len(_STATE) :]: v for k, v in arrays.items() if k.startswith(_STATE)}
            extractor = EXTRACTORS[name].from_state(settings, state)
            mean, scale = arrays["mean"], arrays["scale"]
        except (ValueError, KeyError, TypeError, ConfigError, WeightsError) as err:
            raise WeightsError(
                f"{where}: its feature extractor cannot be read ({err}). {hint}"
            ) from None
        for key, a in (("mean", mean), ("scale", scale)):
            if a.shape != (extractor.dim,) or a.dtype.kind != "f" or not np.all(np.isfinite(a)):
                raise WeightsError(
                    f"{where}: {key} must be {extractor.dim} finite floats; got {a.dtype} of "
                    f"shape {a.shape}. {hint}"
                )
        if not np.all(scale > 0):
            raise WeightsError(f"{where}: scale must be positive. {hint}")
        return cls(extractor, mean.astype(np.float32), scale.astype(np.float32))
