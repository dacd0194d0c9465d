"""Every registered loss through every command that takes one, on a tiny cached archive.

Built from the registry: a new loss record is trained, saved, loaded, evaluated, predicted
with, resumed, gradient-checked, swept and searched with by these tests, with no other edit.
"""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.core.losses import LOSSES
from svmtrain.core.optimizers import OPTIMIZERS
from svmtrain.experiments import train
from svmtrain.io import runs
from svmtrain.model import LinearModel


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _loss_args(name):
    # A small learning rate: every loss trains 2 epochs of tiny batches without diverging.
    settings = [f"model.loss={name}", "model.reg=1e-3", "optim.learning_rate=1e-8"]
    return [a for s in settings for a in ("--set", s)]


@pytest.mark.parametrize("name", list(LOSSES))
def test_fit_save_load_evaluate_predict(name, tiny_run_data, tmp_path):
    out = tmp_path / "run"
    args = [*tiny_run_data.args, *_loss_args(name)]
    result = _run("fit", *args, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    model = LinearModel.load(out / runs.WEIGHTS)
    assert model.loss == name
    summary = json.loads((out / runs.SUMMARY).read_text())

    result = _run("evaluate", "--weights", out / runs.WEIGHTS, "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] == summary["test_acc"]

    result = _run(
        "predict", "-w", out, "-i", "0", "--json", "-q", "--data-dir", tiny_run_data.data_dir
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert set(row["scores"]) == set(model.class_names)


# Each optimiser's settings for the tiny data, and the update in its second round to stop at.
OPTIMIZER_ARGS = {
    "sgd": ([], 10),
    "lbfgs": (["--set", "optim.name=lbfgs", "--set", "lbfgs.iterations=4"], 3),
    "random_search": (
        ["--set", "optim.name=random_search", "--set", "random_search.tries=150"],
        120,
    ),
    "random_local_search": (
        ["--set", "optim.name=random_local_search", "--set", "random_local_search.tries=150"],
        120,
    ),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(LOSSES))
def test_an_interrupted_fit_resumes_to_the_same_weights(name, optimizer, tiny_run_data, tmp_path):
    extra, stop_at = OPTIMIZER_ARGS[optimizer]
    args = [*tiny_run_data.args, *_loss_args(name), *extra]
    whole = tmp_path / "whole"
    assert _run("fit", *args, "--out", whole, "-q").exit_code == 0
    calls = [0]

    def interrupt_in_round_two(state, updates):
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with train.step_hook(interrupt_in_round_two):
        assert _run("fit", *args, "--out", cut, "-q").exit_code == 130
    result = _run("fit", "--resume", cut, "-q")
    assert result.exit_code == 0, result.output
    resumed, fresh = LinearModel.load(cut / runs.WEIGHTS), LinearModel.load(whole / runs.WEIGHTS)
    assert resumed.loss == name
    np.testing.assert_array_equal(resumed.W, fresh.W)


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_sweep_step_and_search(name, tiny_run_data, tmp_path):
    result = _run("gradcheck", "--loss", name, "--synthetic", "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["loss"] == name

    args = [*tiny_run_data.args, *_loss_args(name)]
    result = _run("sweep-step", *args, "--json", "-q")
    assert result.exit_code == 0, result.output

    result = _run(
        "search", *args, "--lr", "1e-8,2e-8", "--epochs", "1", "--out", tmp_path / "s", "-q"
    )
    assert result.exit_code == 0, result.output
    best = yaml.safe_load((tmp_path / "s" / "best.yaml").read_text())
    assert best["model"]["loss"] == name
