"""The optimisers, one module each; :data:`OPTIMIZERS` (``optim.name`` -> class) is built from
the modules in this package, so a new optimiser is one more module (and its tests)."""

from __future__ import annotations

import importlib
import pkgutil

from svmtrain.core.optimizers.base import Optimizer, Progress

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in sorted(Optimizer.__subclasses__(), key=lambda c: c.order)
}
# Every optimiser's own config keys, "section.key" (a section alone: all its keys).
OWN_KEYS: dict[str, tuple[str, ...]] = {name: cls.keys for name, cls in OPTIMIZERS.items()}

__all__ = ["OPTIMIZERS", "OWN_KEYS", "Optimizer", "Progress"]
