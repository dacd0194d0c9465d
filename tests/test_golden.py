"""Every shipped config trains to the same bits as the code that made tests/data/golden.npz
(tests/golden.py says how): W, every metric but the wall time, and the accuracies."""

from __future__ import annotations

import numpy as np
import pytest
from golden import FIXTURE, all_results


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, np.ndarray]:
    return all_results(tmp_path_factory.mktemp("golden"))


def _by_name(arrays: dict[str, np.ndarray], config: str) -> dict[str, bytes]:
    """Each metric of ``config`` by name (the order of the fields is no result)."""
    names, values = arrays[f"{config}/metric_names"], arrays[f"{config}/metrics"]
    return {str(n): values[:, i].tobytes() for i, n in enumerate(names)}


def test_every_shipped_config_gives_the_fixture_bit_for_bit(fresh):
    with np.load(FIXTURE) as saved:
        expected = dict(saved)
    assert sorted(fresh) == sorted(expected)
    for key, want in expected.items():
        config, _, field = key.partition("/")
        if field.startswith("metric"):
            assert _by_name(fresh, config) == _by_name(expected, config), key
            continue
        got = fresh[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert got.tobytes() == want.tobytes(), f"{key} differs from the fixture"
