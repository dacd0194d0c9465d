"""Per-pixel scalings: the divisor of every centred pixel, by name.

:data:`SCALINGS` maps a name (the config's ``preprocess.scaling``) to a function of the
training split's per-pixel standard deviation, (3072,), returning the (3072,) divisor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _no_scale(std: np.ndarray) -> np.ndarray:
    return np.ones_like(std)


def _unit_scale(std: np.ndarray) -> np.ndarray:
    return np.full_like(std, 255.0)


def _standardize_scale(std: np.ndarray) -> np.ndarray:
    # A constant pixel has std 0; dividing by 1 leaves it at 0 after centring instead of NaN.
    return np.where(std > 1e-8, std, 1.0)


SCALINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": _no_scale,
    "unit": _unit_scale,
    "standardize": _standardize_scale,
}
