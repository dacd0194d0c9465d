"""Every shipped config trains to the same bits as the code that made tests/data/golden.npz
(tests/golden.py says how): W, every metric but the wall time, and the accuracies.

Bits are compared where the fixture was made on the same arithmetic (``golden.arithmetic``:
numpy, its BLAS, the CPU's vector instructions); on other arithmetic the results are compared
to a relative 1e-5 instead, with a warning that says how to compare bits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from golden import FIXTURE, all_results

RTOL = 1e-5  # float32 training over a few epochs on other kernels stays within this


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, np.ndarray]:
    return all_results(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as saved:
        return dict(saved)


def _by_name(arrays: dict[str, np.ndarray], config: str) -> dict[str, np.ndarray]:
    """Each metric of ``config`` by name (the order of the fields is no result)."""
    names, values = arrays[f"{config}/metric_names"], arrays[f"{config}/metrics"]
    return {str(n): values[:, i] for i, n in enumerate(names)}


def _same(got: np.ndarray, want: np.ndarray, bits: bool) -> bool:
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if bits or want.dtype.kind not in "fc":
        return got.tobytes() == want.tobytes()
    return np.allclose(got, want, rtol=RTOL, atol=RTOL * float(np.max(np.abs(want), initial=0)))


def test_every_shipped_config_gives_the_fixture_bit_for_bit(fresh, expected):
    assert sorted(fresh) == sorted(expected)
    bits = str(fresh["arithmetic"]) == str(expected["arithmetic"])
    if not bits:
        warnings.warn(
            f"{FIXTURE.name} was made on {expected['arithmetic']}, this is {fresh['arithmetic']}:"
            f" results compared to rtol {RTOL}, not bit for bit. To compare bits here,"
            " regenerate it from a commit known good: python tests/golden.py",
            stacklevel=1,
        )
    for key, want in expected.items():
        config, _, field = key.partition("/")
        if key == "arithmetic" or field == "metric_names":
            continue
        if field == "metrics":
            got_metrics, want_metrics = _by_name(fresh, config), _by_name(expected, config)
            assert got_metrics.keys() == want_metrics.keys(), key
            for name, values in want_metrics.items():
                assert _same(got_metrics[name], values, bits), f"{config} metric {name} differs"
            continue
        assert _same(fresh[key], want, bits), f"{key} differs from the fixture"


def test_the_fixture_compares_bits_only_on_the_same_arithmetic(fresh, expected):
    W = expected["default/W"]
    nudged = np.nextafter(W, np.inf, dtype=W.dtype)  # one ulp: other kernels, not other code
    assert not _same(nudged, W, bits=True) and _same(nudged, W, bits=False)
    assert not _same(W * (1 + 10 * RTOL), W, bits=False)  # a change of results still fails
