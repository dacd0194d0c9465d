"""The number of threads of numpy's BLAS, limited around a block of code (OpenBLAS only).

OpenBLAS's own functions, found through numpy's extension module with ctypes; for any other
BLAS :func:`limited_threads` changes nothing. docs/benchmarks.md says why and how.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

# (getter, setter) names: scipy-openblas 64- and 32-bit ints, then plain OpenBLAS builds.
_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


@functools.cache
def _openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(get, set) of the number of threads of the OpenBLAS numpy uses; None for another BLAS."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
    try:
        library = ctypes.CDLL(core._multiarray_umath.__file__)
    except (AttributeError, OSError):
        return None
    for get_name, set_name in _SYMBOLS:
        get, set_ = getattr(library, get_name, None), getattr(library, set_name, None)
        if get is not None and set_ is not None:
            get.restype, get.argtypes = ctypes.c_int, []
            set_.restype, set_.argtypes = None, [ctypes.c_int]
            return get, set_
    return None


def blas_threads() -> int | None:
    """How many threads OpenBLAS uses now; None when numpy's BLAS is not OpenBLAS."""
    api = _openblas()
    return None if api is None else api[0]()


@contextmanager
def limited_threads(n: int) -> Iterator[None]:
    """Run the block with OpenBLAS on at most ``n`` threads, then restore the previous number.

    The setting is process-wide: other threads' BLAS calls inside the block are limited too.
    """
    api = _openblas()
    before = None if api is None else api[0]()
    if before is None or before <= n:
        yield
        return
    api[1](n)
    try:
        yield
    finally:
        api[1](before)
