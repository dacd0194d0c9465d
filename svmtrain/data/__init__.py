"""CIFAR-10 on disk and in memory: download, verify, cache, and the preprocessing of pixels.

Modules, each importing only those before it: format, source, fetch, archive, cache, cifar10,
preprocess. The entry points are imported on first use, so importing ``svmtrain.data.format``
does not load the network code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from svmtrain.data.cache import CIFAR10
    from svmtrain.data.cifar10 import UnverifiedArchiveWarning, dataset_info, download, load_cifar10
    from svmtrain.data.source import Source, resolve_data_dir, resolve_source

_HOME = {
    "CIFAR10": "cache",
    "UnverifiedArchiveWarning": "cifar10",
    "dataset_info": "cifar10",
    "download": "cifar10",
    "load_cifar10": "cifar10",
    "Source": "source",
    "resolve_data_dir": "source",
    "resolve_source": "source",
}
__all__ = [
    "CIFAR10",
    "Source",
    "UnverifiedArchiveWarning",
    "dataset_info",
    "download",
    "load_cifar10",
    "resolve_data_dir",
    "resolve_source",
]


def __getattr__(name: str) -> Any:
    """Import an entry point's module on first use (PEP 562)."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
