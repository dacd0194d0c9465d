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


def _public_callables():
    for name in sorted(API):
        yield name, API[name]
    for name, member in vars(LinearModel).items():
        if not name.startswith("_") and callable(getattr(member, "__func__", member)):
            yield f"LinearModel.{name}", getattr(member, "__func__", member)
    yield "LinearModel.num_classes", LinearModel.num_classes


NOTHING_TO_RAISE = {"LinearModel.divergence_note", "LinearModel.num_classes"}


@pytest.mark.parametrize(
    ("name", "function"), list(_public_callables()), ids=[n for n, _ in _public_callables()]
)
def test_every_public_function_says_what_it_does(name, function):
    """A docstring of more than a line (what, shapes, returns), and what it raises unless
    nothing a caller passes can be wrong."""
    doc = function.__doc__ or ""
    assert len(doc.split()) >= 8, name
    if name not in NOTHING_TO_RAISE:
        assert "Raises" in doc, name


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


# ---------------------------------------------------------------------------------------------
# In a notebook


@pytest.fixture
def a_run(tiny_run_data, tmp_path):
    """A finished run on the tiny archive, through the API."""
    cfg = load_config("quick", tiny_run_data.args[1::2])
    return fit(cfg, out=tmp_path / "run", progress=False)


def test_evaluate_returns_a_result_that_prints_as_the_command_does(a_run, tmp_path):
    from click.testing import CliRunner

    from svmtrain.cli import main

    weights = a_run.run_dir / "weights.npz"
    result = svmtrain.evaluate(weights, "val", progress=False)
    cli = CliRunner().invoke(main, ["evaluate", "-w", str(weights), "--split", "val", "-q"])
    as_json = CliRunner().invoke(main, ["evaluate", "-w", str(weights), "--json", "-q"])
    assert result.text() + "\n" == cli.stdout
    assert result.accuracy == a_run.summary["val_acc"]
    test = svmtrain.evaluate(weights, progress=False)
    assert json.loads(as_json.stdout) == test.to_dict()
    assert test["accuracy"] == test.accuracy == a_run.summary["test_acc"]  # dict-like still
    assert test["confusion"] == a_run.summary["confusion"]


def test_ctrl_c_in_fit_is_not_swallowed_by_except_exception(tiny_run_data, tmp_path, monkeypatch):
    """A notebook's interrupt button must stop a cell whose code catches Exception; the message
    says how to resume in Python."""
    from svmtrain.errors import Interrupted
    from svmtrain.experiments import fit as fit_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C as training starts

    monkeypatch.setattr(fit_module, "train", interrupt)
    cfg = load_config("quick", tiny_run_data.args[1::2])
    out = tmp_path / "cut"
    with pytest.raises(Interrupted) as stopped:
        try:
            fit(cfg, out=out, progress=False)
        except Exception:  # what a notebook's retry loop does
            pytest.fail("an Interrupted was caught by 'except Exception'")
    assert not isinstance(stopped.value, Exception)
    assert f"continue with: svmtrain.fit(resume={str(out)!r})" in str(stopped.value)
    assert f"continue with: svmtrain fit --resume {out}" in stopped.value.text(command_line=True)
    assert stopped.value.exit_code == 130
