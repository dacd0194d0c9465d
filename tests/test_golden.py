"""Every shipped config trains to the same bits as the code that made tests/data/golden.npz
(tests/golden.py says how): W, every metric but the wall time, and the accuracies."""

from __future__ import annotations

import numpy as np
import pytest
from golden import FIXTURE, all_results


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, np.ndarray]:
    return all_results(tmp_path_factory.mktemp("golden"))


def test_every_shipped_config_gives_the_fixture_bit_for_bit(fresh):
    with np.load(FIXTURE) as saved:
        expected = dict(saved)
    assert sorted(fresh) == sorted(expected)
    for key, want in expected.items():
        got = fresh[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert got.tobytes() == want.tobytes(), f"{key} differs from the fixture"
