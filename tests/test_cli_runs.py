"""`svmtrain runs list` and `svmtrain runs compare` over run directories fit wrote."""

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import assert_clean_failure, run

from svmtrain.io import runs

QUICK = Path(__file__).resolve().parent.parent / "configs" / "quick.yaml"


@pytest.fixture
def three_runs(tiny_run_data, tmp_path):
    """runs/a and runs/b finished (learning rates 1e-3 and 1e-4); runs/c as a run stopped
    after its first epoch leaves it: its config, checkpoint and one epoch of metrics (a copy
    of a's files of a one-epoch run), no weights, no summary."""
    root = tmp_path / "runs"
    args = ["fit", "-c", QUICK, *tiny_run_data.args, "-q"]
    assert run(*args, "--set", "optim.learning_rate=1e-3", "--out", root / "a").exit_code == 0
    assert run(*args, "--set", "optim.learning_rate=1e-4", "--out", root / "b").exit_code == 0
    one = tmp_path / "one-epoch"
    assert run(*args, "--set", "train.epochs=1", "--out", one).exit_code == 0
    (root / "c").mkdir()
    shutil.copy(root / "b" / runs.CONFIG, root / "c" / runs.CONFIG)  # planned: 2 epochs
    for name in (runs.CHECKPOINT, runs.METRICS):
        shutil.copy(one / name, root / "c" / name)
    return root


def _summary(path):
    return json.loads((path / runs.SUMMARY).read_text())


def test_list_shows_each_runs_state_and_results(three_runs):
    result = run("runs", "list", three_runs)
    assert result.exit_code == 0, result.output
    header, _, *rows = result.stdout.splitlines()
    assert header.split() == [
        "run", "config", "loss", "features", "lr", "reg", "epochs", "val", "acc", "test", "acc",
        "train", "s", "state",
    ]  # fmt: skip
    cells = {row.split()[0]: row.split() for row in rows}
    assert list(cells) == ["a", "b", "c"]
    for name in ("a", "b"):
        s = _summary(three_runs / name)
        assert cells[name][6:9] == ["2/2", f"{s['val_acc']:.4f}", f"{s['test_acc']:.4f}"]
        assert cells[name][-1] == "finished"
    assert cells["a"][4] == "0.001" and cells["b"][4] == "0.0001"
    assert cells["c"][6:9] == ["1/2", "-", "-"] and cells["c"][-1] == "stopped"

    as_json = json.loads(run("runs", "list", three_runs / "a", "--json").stdout)
    assert as_json == [
        {
            "path": str(three_runs / "a"),
            "state": "finished",
            "name": "quick",
            "loss": "svm",
            "features": "pixels",
            "learning_rate": 1e-3,
            "reg": as_json[0]["reg"],
            "epochs": 2,
            "planned_epochs": 2,
            "val_acc": _summary(three_runs / "a")["val_acc"],
            "test_acc": _summary(three_runs / "a")["test_acc"],
            "train_seconds": _summary(three_runs / "a")["train_seconds"],
        }
    ]


def test_compare_names_the_keys_that_differ_and_what_each_gave(three_runs):
    a, b = three_runs / "a", three_runs / "b"
    result = run("runs", "compare", a, b)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["A", "B"]
    table = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert table["optim.learning_rate"] == ["0.001", "0.0001"]
    assert [k for k in table if "." in k] == ["optim.learning_rate"]  # nothing else differs
    assert lines[-2:] == [f"A: {a}", f"B: {b}"]
    document = json.loads(run("runs", "compare", a, b, "--json").stdout)
    assert document["differences"] == {"optim.learning_rate": [1e-3, 1e-4]}
    assert [r["val_acc"] for r in document["runs"]] == [
        _summary(a)["val_acc"],
        _summary(b)["val_acc"],
    ]


def test_runs_errors_are_one_clear_line(three_runs, tmp_path):
    assert_clean_failure(run("runs", "list", tmp_path / "nowhere"), 1, "does not exist")
    (tmp_path / "empty").mkdir()
    assert_clean_failure(run("runs", "list", tmp_path / "empty"), 1, "holds no runs")
    assert_clean_failure(run("runs", "compare", three_runs / "a"), 2, "Give two runs or more")
