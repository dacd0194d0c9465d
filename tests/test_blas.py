"""The BLAS thread limit the training fast paths run under (core.blas)."""

import os
import subprocess
import sys

import pytest

from svmtrain.core import blas as _blas

_PROBE = """
from svmtrain.core import blas as _blas
outside = _blas.blas_threads()
with _blas.limited_threads(1):
    inside = _blas.blas_threads()
try:
    with _blas.limited_threads(2):
        raise ValueError
except ValueError:
    pass
print(outside, inside, _blas.blas_threads())
"""


@pytest.mark.parametrize(("env", "expected"), [("1", ["1", "1", "1"]), ("2", ["2", "1", "2"])])
def test_limited_threads_sets_and_restores_what_openblas_was_told(env, expected):
    """OPENBLAS_NUM_THREADS is OpenBLAS's documented setting: the independent reference.
    (OpenBLAS caps it at the number of cores, hence no larger value.)"""
    if _blas.blas_threads() is None:
        pytest.skip("numpy's BLAS here is not OpenBLAS; limited_threads changes nothing")
    if (os.cpu_count() or 1) < int(env):
        pytest.skip(f"OpenBLAS caps its threads at the {os.cpu_count()} cores here")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, "OPENBLAS_NUM_THREADS": env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == expected


def test_limited_threads_without_openblas_changes_nothing(monkeypatch):
    monkeypatch.setattr(_blas, "_openblas", lambda: None)
    assert _blas.blas_threads() is None
    with _blas.limited_threads(1):
        assert _blas.blas_threads() is None
