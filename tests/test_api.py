"""The Python API importable from ``svmtrain`` itself, and that importing it stays light."""

import json
import subprocess
import sys

import pytest

import svmtrain
from svmtrain.config import load_config
from svmtrain.core.gradcheck import check_gradient
from svmtrain.data import load_cifar10
from svmtrain.experiments.common import load_splits
from svmtrain.experiments.evaluate import evaluate
from svmtrain.experiments.fit import fit
from svmtrain.experiments.gradcheck import make_problem, run_gradcheck
from svmtrain.experiments.landscape import run_landscape
from svmtrain.experiments.search import search_hyperparameters
from svmtrain.experiments.sweep import run_sweep
from svmtrain.model import LinearModel

API = {
    "load_config": load_config,
    "load_cifar10": load_cifar10,
    "load_splits": load_splits,
    "fit": fit,
    "evaluate": evaluate,
    "check_gradient": check_gradient,
    "make_problem": make_problem,
    "run_gradcheck": run_gradcheck,
    "run_sweep": run_sweep,
    "run_landscape": run_landscape,
    "LinearModel": LinearModel,
    "search_hyperparameters": search_hyperparameters,
}


@pytest.mark.parametrize("name", sorted(API))
def test_each_name_is_the_library_function(name):
    assert getattr(svmtrain, name) is API[name]
    assert name in svmtrain.__all__ and name in dir(svmtrain)


def test_every_exported_name_is_checked_here():
    assert set(svmtrain.__all__) == {"__version__", *API}


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'fitt'"):
        svmtrain.fitt  # noqa: B018


def test_importing_svmtrain_imports_no_library_code():
    code = (
        "import json, sys, svmtrain\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('svmtrain', 'numpy', 'tqdm', 'requests', 'yaml'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["svmtrain"]
