"""The data package's shape: light modules stay light, the entry points resolve lazily."""

import importlib
import subprocess
import sys

import pytest

import svmtrain.data

NETWORK_MODULES = ("requests", "urllib3", "tqdm")


@pytest.mark.parametrize(
    "module",
    ["svmtrain.data", "svmtrain.data.format", "svmtrain.data.source", "svmtrain.data.preprocess"],
)
def test_importing_leaves_the_network_code_unloaded(module):
    code = (
        f"import sys, {module}; "
        f"print(' '.join(sorted(set({NETWORK_MODULES!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


@pytest.mark.parametrize("name", svmtrain.data.__all__)
def test_every_entry_point_is_its_home_modules_object(name):
    obj = getattr(svmtrain.data, name)
    assert getattr(importlib.import_module(obj.__module__), name) is obj
    assert obj.__module__.startswith("svmtrain.data.")


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        svmtrain.data.no_such_thing  # noqa: B018
