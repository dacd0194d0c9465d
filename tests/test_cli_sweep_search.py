"""`svmtrain sweep-step` and `svmtrain search` through Click: output, files, exit codes and
messages. Data come from a tiny archive served on 127.0.0.1, or from the real mirror (slow)."""

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_helpers import assert_clean_failure, run

from svmtrain.config import load_config
from svmtrain.core.losses import svm_loss_naive
from svmtrain.errors import PlotUnavailable
from svmtrain.experiments import search, sweep
from svmtrain.experiments.common import load_splits
from svmtrain.experiments.fit import fit
from svmtrain.experiments.sweep import gradient
from svmtrain.io import plots


@pytest.fixture
def data(http_server, tiny_archive, tmp_path):
    """--set options for 150 training and 50 validation images of a tiny served archive."""
    archive = tiny_archive(train_counts=(40, 40, 40, 40, 40), test_count=20)
    server = http_server(archive.body)
    return [
        *("--set", f"data.dir={tmp_path / 'data'}"),
        *("--set", f"data.url={server.url}"),
        *("--set", f"data.sha256={archive.sha256}"),
        *("--set", "data.val_size=50"),
    ]


def _sets(args):
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


# ---------------------------------------------------------------------------------------------
# sweep-step


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--steps", "1e-6,abc"], ["Invalid value for '--steps'", "'abc' is not a number"]),
        (["--steps", "0,1e-6"], ["'--steps'", "finite number > 0. Got '0'"]),
        (["--steps", "1e-6,1e-6"], ["'--steps'", "1e-06 twice"]),
        (["--steps", ""], ["'--steps'", "has an empty item"]),
        (["--range", "-1:-10"], ["'--range'", "did you mean -10:-1?"]),
        (["--range", "1e-10:1e-1"], ["'--range'", "two integer exponents"]),
        (["--range", "-10"], ["'--range'", "must be LOW:HIGH"]),
        (["--range", "-5:-1", "--steps", "1e-6"], ["--steps and --range both give"]),
        (["--gradient", "exact"], ["'exact' is not one of 'analytic', 'numerical'"]),
        (["--num-examples", "0"], ["'--num-examples'", "0 is not in the range x>=1"]),
    ],
)
def test_sweep_step_rejects_bad_options_before_loading_data(args, needles):
    assert_clean_failure(run("sweep-step", *args), 2, *needles)


def _reference(data, seed, n=None):
    """The sweep computed independently: the loop SVM loss in float64 on the same data."""
    cfg = load_config(overrides=[*_sets(data), "preprocess.dtype=float64"])
    splits = load_splits(cfg, progress=False)
    X, y = splits.design(splits.X_train[:n], np.float64), splits.y_train[:n]
    W = np.random.default_rng(seed).random((10, 3073)) * 0.001
    m = cfg.model
    loss0, dW = svm_loss_naive(W, X, y, m.reg, delta=m.delta, reg_bias=m.reg_bias)

    def loss(step):
        return svm_loss_naive(W - step * dW, X, y, m.reg, delta=m.delta, reg_bias=m.reg_bias)[0]

    return loss0, loss


def test_sweep_step_prints_the_notes_lines_a_marked_table_and_writes_csv(data, tmp_path):
    out = tmp_path / "sweep.csv"
    result = run(
        "sweep-step", *data, "--set", "preprocess.dtype=float64",
        "--range", "-9:-1", "--seed", 3, "--csv", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    loss0, loss = _reference(data, seed=3)
    steps = [10.0**k for k in range(-9, 0)]
    losses = np.array([loss(s) for s in steps])
    best = int(np.argmin(losses))
    lines = result.stdout.splitlines()
    # The notes' lines, '%f' losses (the vectorised and loop sums may differ in the last bit).
    printed = [re.fullmatch(r"original loss: (\d+\.\d{6})", lines[0])]
    printed += [re.fullmatch(r"for step size (\S+) new loss: (\d+\.\d{6})", x) for x in lines[1:10]]
    assert all(printed), lines[:10]
    assert float(printed[0][1]) == pytest.approx(loss0, rel=1e-12, abs=1e-6)
    assert [m[1] for m in printed[1:]] == [f"{s:.1e}" for s in steps]
    assert [float(m[2]) for m in printed[1:]] == pytest.approx(losses, rel=1e-12, abs=1e-6)

    (header,) = [line for line in lines if line.startswith("step size")]
    assert header.split() == ["step", "size", "new", "loss", "change", "mark"]  # every column
    table = {line.split()[0]: line.split()[1:] for line in lines[11:] if line[:1].isdigit()}
    assert list(table) == [f"{s:.1e}" for s in steps]
    for k, (step, cells) in enumerate(table.items()):
        marks = cells[2:]
        assert ("best" in " ".join(marks)) == (k == best), (step, cells)
        assert ("worse" in marks) == (losses[k] > loss0), (step, cells)
    assert lines[-1].startswith(f"Best step {steps[best]:.1e}: loss {losses[best]:.6g} (")
    assert f"{int((losses > loss0).sum())} of 9 steps made the loss worse." in lines[-1]

    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["step"]) for r in rows] == steps
    np.testing.assert_allclose([float(r["loss"]) for r in rows], losses, rtol=1e-10)
    np.testing.assert_allclose([float(r["change"]) for r in rows], losses - loss0, rtol=1e-8)
    assert [r["best"] for r in rows] == ["true" if k == best else "false" for k in range(9)]
    assert [r["worse"] for r in rows] == ["true" if v > loss0 else "false" for v in losses]


def test_sweep_step_json_on_the_first_examples(data):
    result = run("sweep-step", *data, "--steps", "1e-7,1e-5", "--num-examples", 20, "--json", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    loss0, loss = _reference(data, seed=0, n=20)  # float32 in the command, float64 here
    assert document["num_examples"] == 20 and document["gradient"] == "analytic"
    assert (document["loss"], document["reg"], document["seed"]) == ("svm", 25000.0, 0)
    assert document["original_loss"] == pytest.approx(loss0, rel=1e-5)
    assert [s["step"] for s in document["steps"]] == [1e-7, 1e-5]
    assert [s["loss"] for s in document["steps"]] == pytest.approx(
        [loss(1e-7), loss(1e-5)], rel=1e-4
    )
    best = [s["step"] for s in document["steps"] if s["best"]]
    assert best == [document["best_step"]]


def test_sweep_step_prints_what_the_library_gives_a_python_caller(data):
    args = ["--steps", "1e-7,1e-5", "--num-examples", 20, "-q"]
    text, as_json = run("sweep-step", *data, *args), run("sweep-step", *data, *args, "--json")
    assert text.exit_code == 0 and as_json.exit_code == 0, text.output
    result = sweep.run_sweep(
        load_config(overrides=_sets(data)), None, (1e-7, 1e-5), num_examples=20, progress=False
    )
    assert text.stdout == result.text() + "\n"
    assert json.loads(as_json.stdout) == result.to_dict()


@pytest.mark.parametrize(
    ("steps", "verdict", "marks"),
    [
        ("1e2,1e3", "No step lowered the loss: 2 made it worse (too large", ["worse", "worse"]),
        (
            "1e-310,1e3",
            "No step lowered the loss: 1 left it unchanged (too small: try larger steps, e.g. "
            "--range -10:-1); 1 made it worse",
            ["+0", "worse"],  # unchanged: no mark, the row ends with its change
        ),
    ],
)
def test_sweep_step_verdict_when_no_step_helps(data, steps, verdict, marks):
    result = run("sweep-step", *data, "--steps", steps, "-q")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1].startswith(verdict)
    assert "best" not in result.stdout
    assert [line.split()[-1] for line in lines[6:8]] == marks


def test_sweep_step_fails_when_every_loss_overflows(data, tmp_path):
    out = tmp_path / "sweep.csv"
    result = run("sweep-step", *data, "--steps", "1e300,1e308", "--csv", out, "-q")
    assert_clean_failure(result, 1)
    assert result.stderr == (
        "Error: Every step made the loss overflow; try smaller steps, e.g. --range -14:-8.\n"
    )
    assert [line.split()[-1] for line in result.stdout.splitlines()[-2:]] == ["worse", "worse"]
    assert len(out.read_text().splitlines()) == 3  # the table is still written


def test_sweep_step_rejects_more_examples_than_the_training_split(data):
    result = run("sweep-step", *data, "--num-examples", 151, "-q")
    assert_clean_failure(
        result, 2, "Invalid value for '--num-examples'", "the training split has 150 images"
    )


def test_sweep_step_numerical_warns_with_an_estimate(data, monkeypatch):
    """The real finite differences take seconds (61,460 loss evaluations); see the slow test."""

    def analytic_with_progress(model, X, y, W, method, progress):
        assert method == "numerical"
        for _ in range(W.size):
            progress(1)
        return gradient(model, X, y, W, "analytic")

    monkeypatch.setattr(sweep, "seconds_per_evaluation", lambda *args: 0.05)
    monkeypatch.setattr(sweep, "gradient", analytic_with_progress)
    result = run("sweep-step", *data, "--gradient", "numerical", "--num-examples", 30, "-q")
    assert result.exit_code == 0, result.output
    assert (
        "Warning: the numerical gradient takes 61,460 loss evaluations (2 per weight) on 30 "
        "images: about 51 min at 50 ms each. The time is proportional to the images (-n): "
        "--gradient analytic" in result.stderr
    )
    assert result.stdout.startswith("original loss: ")
    monkeypatch.setattr(sweep, "FEASIBLE_EXAMPLES", 10)
    result = run("sweep-step", *data, "--gradient", "numerical", "--num-examples", 30, "-q")
    assert "(-n): -n 10 would take about 17 min; --gradient analytic" in result.stderr


@pytest.mark.slow
def test_sweep_step_numerical_agrees_with_analytic(data):
    args = ["sweep-step", *data, "--num-examples", 5, "--range", "-8:-4", "--json", "-q"]
    numerical = run(*args, "--gradient", "numerical")
    analytic = run(*args)
    assert numerical.exit_code == 0 and analytic.exit_code == 0, numerical.output
    assert "Warning: the numerical gradient takes 61,460 loss evaluations" in numerical.stderr
    n, a = json.loads(numerical.stdout), json.loads(analytic.stdout)
    assert n["original_loss"] == a["original_loss"]
    assert [s["loss"] for s in n["steps"]] == pytest.approx([s["loss"] for s in a["steps"]], 1e-3)


def test_sweep_step_plot(data, tmp_path):
    png = tmp_path / "sweep.png"
    result = run("sweep-step", *data, "--range", "-8:-4", "--plot", png, "-q")
    assert result.exit_code == 0, result.output
    assert f"wrote {png}" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _missing():
    raise PlotUnavailable("Plotting needs matplotlib. Install the plot extra: pip install x")


@pytest.mark.parametrize("command", ["sweep-step", "search"])
def test_plot_is_checked_before_any_work(data, tmp_path, monkeypatch, command):
    """No matplotlib, or no directory for the picture: said before the data are loaded."""
    from svmtrain.cli import options as cli_sweep

    args = ["--range", "-8:-4"] if command == "sweep-step" else ["--lr", "1e-9,1e-8"]
    args += ["--csv" if command == "sweep-step" else "--out", tmp_path / "out"]
    result = run(command, *data, *args, "--plot", tmp_path / "no" / "dir.png", "-q")
    assert_clean_failure(result, 2, "--plot", f"{str(tmp_path / 'no')!r} does not exist")
    monkeypatch.setattr(cli_sweep, "require_matplotlib", _missing)
    result = run(command, *data, *args, "--plot", tmp_path / "sweep.png", "-q")
    assert_clean_failure(result, 1, "Plotting needs matplotlib", "pip install")
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_sweep_step_keeps_the_csv_when_the_plot_fails_at_the_end(data, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "plot_sweep", lambda *args: _missing())
    out, png = tmp_path / "sweep.csv", tmp_path / "sweep.png"
    result = run("sweep-step", *data, "--range", "-8:-4", "--csv", out, "--plot", png, "-q")
    assert_clean_failure(result, 1, "Plotting needs matplotlib", "pip install")
    assert len(out.read_text().splitlines()) == 6
    assert result.stdout.startswith("original loss: ")
    assert not png.exists()


@pytest.mark.slow
def test_sweep_step_on_real_data_has_the_notes_shape(cifar_data_dir):
    """Default config and range: the loss falls for small steps, reaches a minimum, explodes."""
    d = cifar_data_dir
    result = run(
        "sweep-step", "--set", f"data.dir={d.data_dir}", "--set", f"data.url={d.url}",
        "--set", f"data.sha256={d.sha256}", "--json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    losses = np.array([s["loss"] for s in document["steps"]])
    start = document["original_loss"]
    best = int(np.argmin(losses))
    assert 0 < best < len(losses) - 1, losses
    assert np.all(np.diff(losses[: best + 1]) < 0), losses  # falls ...
    assert np.all(np.diff(losses[best:]) > 0), losses  # ... then rises
    assert losses[0] < start and losses[best] < 0.75 * start  # a real improvement
    assert losses[-1] > 1000 * start  # and explodes


# ---------------------------------------------------------------------------------------------
# search


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([], ["Nothing to search: give --lr, --reg or --grid"]),
        (["--lr", "1e-7:1e-5"], ["only --random N samples", "--lr 1e-7,1e-6"]),
        (["--lr", "1e-7,1e-7"], ["--lr '1e-7,1e-7' lists 1e-7 twice"]),
        (["--reg", "abc:1"], []),  # not a range: a value, rejected by the config below
        (["--grid", "optim.momentum"], ["expected KEY=V1,V2,..."]),
        (["--grid", "optim.momentum="], ["--grid 'optim.momentum=' has an empty value"]),
        (["--random", "3", "--lr", "1e-7,1e-6"], ["would repeat the same 2 combinations"]),
        (["--grid", "optim.lr=1"], ["'optim.lr' is not a config key; the keys of optim"]),
        (["--grid", "preprocess.scaling=none,unit"], ["cannot be searched"]),
        (["--lr", "1e-6", "--grid", "optim.learning_rate=1e-5"], ["searched twice"]),
        (["--grid", "train.epochs=1,2", "--epochs", "3"], ["--epochs sets the length"]),
        (["--lr", "1e-6", "--random", "0"], ["0 is not in the range x>=1"]),
        (["--lr", "1e-6", "--jobs", "0"], ["0 is not in the range x>=1"]),
        (["--lr", "1e-7,1e-6", "--reduction-factor", "2"], ["need --halving"]),
        (["--lr", "1e-7,1e-6", "--min-epochs", "2"], ["need --halving"]),
        (["--lr", "1e-7,1e-6,1e-5", "--halving", "--reduction-factor", "1"], ["x>=2"]),
        (["--lr", "1e-7,1e-6", "--halving", "--epochs", "3"], ["at least 3 trials (got 2)"]),
        (["--lr", "1e-7,1e-6,1e-5", "--halving", "--epochs", "2"], ["at least 3 epochs"]),
        (["--grid", "train.epochs=1,2,3", "--halving"], ["--halving sets the length"]),
        (
            ["--lr", "1e-7", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-file", "f"],
            ["not both"],
        ),
    ],
)
def test_search_rejects_bad_options_before_loading_data(args, needles, tmp_path):
    result = run("search", *args, "--out", tmp_path / "out")
    if not needles:
        assert_clean_failure(result, 1, "Trial 1 (model.reg=abc:1): model.reg must be a float")
    else:
        assert_clean_failure(result, 2, *needles)
    assert not (tmp_path / "out").exists()


def test_search_names_a_trial_with_a_bad_value(data, tmp_path):
    result = run("search", *data, "--grid", "optim.momentum=0,2", "--out", tmp_path / "out")
    assert_clean_failure(
        result, 1, "Trial 2 (optim.momentum=2): optim.momentum must be a float in [0, 1)."
    )
    assert not (tmp_path / "out").exists()


def test_search_rejects_a_batch_larger_than_the_training_split(data, tmp_path):
    result = run("search", *data, "--lr", "1e-6", "--out", tmp_path / "out", "-q")
    assert_clean_failure(result, 1, "Trial 1: train.batch_size must be at most the 150")
    assert not (tmp_path / "out").exists()


SMALL = ["--set", "train.batch_size=25", "--set", "train.train_acc_samples=50"]


def test_search_ranks_writes_files_and_a_best_yaml_that_fit_runs(data, tmp_path):
    out = tmp_path / "search"
    result = run(
        "search", *data, *SMALL, "--lr", "1e-9,1e-7", "--reg", "0,1e3",
        "--grid", "optim.momentum=0,0.5", "--epochs", 2, "--jobs", 2, "--out", out, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "rank", "trial", "lr", "reg", "optim.momentum", "final", "loss", "train", "acc", "val",
        "acc", "seconds", "status",
    ]  # fmt: skip
    rows = [line.split() for line in lines[2:10]]
    assert [r[0] for r in rows] == [str(k) for k in range(1, 9)]
    assert sorted(int(r[1]) for r in rows) == list(range(1, 9))  # the numbers "best:" names
    best_trial = next(line for line in lines if line.startswith("best: trial "))
    assert best_trial.startswith(f"best: trial {rows[0][1]} (")
    val = [float(r[7]) for r in rows]
    assert val == sorted(val, reverse=True)
    assert {(r[2], r[3], r[4]) for r in rows} == {
        (lr, reg, m) for lr in ("1e-09", "1e-07") for reg in ("0", "1000") for m in ("0.0", "0.5")
    }
    document = json.loads((out / "results.json").read_text())
    best = document["best"]
    assert best["rank"] == 1 and best["val_acc"] == val[0]
    assert document["searched"] == ["optim.learning_rate", "model.reg", "optim.momentum"]
    chosen = ", ".join(f"{k}={v}" for k, v in best["settings"].items())
    assert f"best: trial {best['trial']} ({chosen}), val accuracy {val[0]:.4f}" in result.stdout
    assert f"train it fully: svmtrain fit --config {out / 'best.yaml'}" in result.stdout
    with (out / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [int(r["rank"]) for r in table] == list(range(1, 9))
    assert [float(r["val_acc"]) for r in table] == val

    cfg = load_config(out / "best.yaml")
    assert cfg.optim.learning_rate == best["settings"]["optim.learning_rate"]
    assert cfg.model.reg == best["settings"]["model.reg"]
    assert cfg.optim.momentum == best["settings"]["optim.momentum"]
    assert cfg.train.epochs == 10  # the config's own length, for the full run
    assert fit(cfg, out=tmp_path / "run", progress=False).summary["epochs"] == 10


def test_search_json_and_plot(data, tmp_path):
    out, png = tmp_path / "search", tmp_path / "grid.png"
    result = run(
        "search", *data, *SMALL, "--lr", "1e-9,1e-7", "--reg", "0,1e3", "--epochs", 1,
        "--out", out, "--json", "--plot", png, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text, _, wrote = result.stdout.rpartition("}\n")
    assert json.loads(text + "}") == json.loads((out / "results.json").read_text())
    assert wrote == f"wrote {png}\n"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_without_fork_says_it_runs_the_trials_one_at_a_time(data, tmp_path, monkeypatch):
    monkeypatch.setattr(search.runner, "can_fork", lambda: False)
    args = ["search", *data, *SMALL, "--lr", "1e-9,1e-8", "--epochs", 1, "--jobs", 2, "-q"]
    result = run(*args, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    note = "Note: worker processes need fork (Linux); running the trials one at a time.\n"
    assert result.stderr == note
    assert json.loads((tmp_path / "out" / "results.json").read_text())["jobs"] == 1


def test_search_random_samples_are_reproducible(data, tmp_path):
    def sampled(name):
        result = run(
            "search", *data, *SMALL, "--random", 3, "--lr", "1e-9:1e-6", "--reg", "1:1e4",
            "--epochs", 1, "--out", tmp_path / name, "--json", "-q",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return [
            (r["trial"], r["learning_rate"], r["reg"], r["val_acc"])
            for r in json.loads(result.stdout)["results"]
        ]

    first = sampled("a")
    assert first == sampled("b")
    assert all(1e-9 <= lr <= 1e-6 and 1 <= reg <= 1e4 for _, lr, reg, _ in first)


def test_search_where_every_trial_diverges(data, tmp_path):
    out = tmp_path / "search"
    result = run("search", *data, *SMALL, "--lr", "1e3,1e4", "--epochs", 2, "--out", out, "-q")
    assert_clean_failure(result, 1, "Every trial diverged, so there is no best.yaml")
    assert result.stdout.count("diverged") == 2
    assert json.loads((out / "results.json").read_text())["finished"] == 2
    assert not (out / "best.yaml").exists()


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, False)],
    ids=["ctrl-c to the group", "SIGTERM to the parent", "SIGHUP to the parent"],
)
def test_search_stopped_by_a_signal(data, tmp_path, sig, group):
    """SIGINT to the whole process group, as a terminal sends it, or SIGTERM/SIGHUP to the
    parent alone, as kill or a closed terminal does: the parent stops the workers (none is
    left running), keeps the two finished trials and exits with one message: 130, or 143
    "Stopped by SIGTERM" for SIGTERM and 129 "Stopped by SIGHUP" for SIGHUP, as fit does."""
    pids = tmp_path / "worker-pids"
    driver = (
        "import os, sys, time\n"
        "from svmtrain.experiments import search\n"
        "real = search.runner.run_trial\n"
        "def hang_after_two(trial, splits):\n"
        "    if trial.number > 2:\n"
        f"        with open({str(pids)!r}, 'a') as f:\n"
        "            f.write(f'{os.getpid()}\\n')\n"
        "        time.sleep(120)\n"
        "    return real(trial, splits)\n"
        "search.runner.run_trial = hang_after_two\n"
        "from svmtrain.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    out = tmp_path / "search"
    args = ["search", *data, *SMALL, "--lr", "1e-9,1e-8,1e-7,1e-6", "--epochs", "1", "--jobs", "2"]
    process = subprocess.Popen(
        [sys.executable, "-c", driver, *args, "--out", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            results = out / "results.json"
            if results.exists() and json.loads(results.read_text())["finished"] == 2:
                break
            time.sleep(0.02)
        time.sleep(0.2)  # both workers are in trials 3 and 4 by now
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # SIGTERM and SIGHUP end a search as they end fit: 128 + the signal, "Stopped by SIGTERM"
    stopped = {signal.SIGTERM: "Stopped by SIGTERM", signal.SIGHUP: "Stopped by SIGHUP"}
    code, what = (128 + sig, stopped[sig]) if sig in stopped else (130, "Interrupted")
    assert process.returncode == code, stderr
    assert stderr.strip() == (f"Error: {what} after 2 of 4 trials; their results are in {out}.")
    assert stdout == ""
    document = json.loads((out / "results.json").read_text())
    assert (document["finished"], document["interrupted"]) == (2, True)
    assert (out / "best.yaml").exists()
    workers = [int(pid) for pid in pids.read_text().split()]
    assert len(workers) == 2
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped and reaped, not training on orphaned


def test_search_workers_die_with_a_killed_parent(data, tmp_path):
    """kill -9 of the parent leaves no worker training on (Linux: PR_SET_PDEATHSIG)."""
    pids = tmp_path / "worker-pids"
    driver = (
        "import os, sys, time\n"
        "from svmtrain.experiments import search\n"
        "def hang(trial, splits):\n"
        f"    with open({str(pids)!r}, 'a') as f:\n"
        "        f.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(120)\n"
        "search.runner.run_trial = hang\n"
        "from svmtrain.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["search", *data, *SMALL, "--lr", "1e-9,1e-8", "--epochs", "1", "--jobs", "2"]
    process = subprocess.Popen(
        [sys.executable, "-c", driver, *args, "--out", str(tmp_path / "search"), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            pids.exists() and len(pids.read_text().split()) == 2
        ):
            time.sleep(0.02)
        process.kill()
        process.wait(timeout=10)
        workers = [int(pid) for pid in pids.read_text().split()]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.02)
        assert not any(_alive(pid) for pid in workers)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_search_on_real_data_is_the_same_with_one_or_two_jobs(cifar_data_dir, tmp_path):
    d = cifar_data_dir
    sets = [f"data.dir={d.data_dir}", f"data.url={d.url}", f"data.sha256={d.sha256}"]

    def results(jobs):
        result = run(
            "search", *(a for s in sets for a in ("--set", s)), "--lr", "1e-7,1e-6,1e-4",
            "--epochs", 1, "--jobs", jobs, "--out", tmp_path / str(jobs), "--json", "-q",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return [{**r, "seconds": None} for r in json.loads(result.stdout)["results"]]

    one, two = results(1), results(2)
    assert one == two
    assert one[0]["learning_rate"] == 1e-7 and one[0]["val_acc"] > 0.25
    assert one[-1]["learning_rate"] == 1e-4  # far too large: last (diverged or near chance)


def test_search_with_successive_halving_shows_the_rungs(data, tmp_path):
    out = tmp_path / "search"
    result = run(
        "search", *data, *SMALL, "--lr", "1e-9,1e-8,1e-7,1e-6", "--epochs", 4, "--halving",
        "--reduction-factor", 2, "--min-epochs", 2, "--out", out, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "rank", "trial", "lr", "reg", "rung", "final", "loss", "train", "acc", "val", "acc",
        "seconds", "status",
    ]  # fmt: skip
    assert [line.split()[4] for line in lines[2:6]] == ["1", "1", "0", "0"]
    assert "successive halving: rungs of 2, 4 epochs; 6 trial runs, 16 epochs in all" in (
        result.stdout
    )
    document = json.loads((out / "results.json").read_text())
    assert [(r["rung"], r["epochs"]) for r in document["results"]] == [(1, 4)] * 2 + [(0, 2)] * 2
    assert (out / "results.csv").read_text().startswith("rank,trial,learning_rate,reg,rung,")


def test_a_local_search_imports_no_dask(data, tmp_path):
    """Without --scheduler nothing of Dask is imported (checked as the process exits)."""
    driver = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('imported:', sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('dask', 'distributed')), file=sys.stderr))\n"
        "from svmtrain.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["search", *data, *SMALL, "--lr", "1e-9,1e-8", "--epochs", "1", "--jobs", "2", "-q"]
    process = subprocess.run(
        [sys.executable, "-c", driver, *map(str, args), "--out", str(tmp_path / "search")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    assert "imported: []" in process.stderr
    assert (tmp_path / "search" / "results.csv").exists()


# ---------------------------------------------------------------------------------------------
# A user's files are never overwritten without --force


@pytest.mark.parametrize(
    "command, option, name",
    [
        ("sweep-step", "--csv", "mine.csv"),
        ("sweep-step", "--plot", "mine.png"),
        ("search", "--plot", "mine.png"),
    ],
)
def test_an_existing_output_file_is_refused_before_any_work(data, tmp_path, command, option, name):
    mine = tmp_path / name
    mine.write_bytes(b"the user's own file\n")
    args = ["--range", "-8:-4"] if command == "sweep-step" else [*SMALL, "--lr", "1e-9"]
    args += [] if command == "sweep-step" else ["--epochs", 1, "--out", tmp_path / "out"]
    result = run(command, *data, *args, option, mine, "-q")
    assert_clean_failure(result, 1, f"{mine} already exists", "--force")
    assert mine.read_bytes() == b"the user's own file\n"
    assert not (tmp_path / "data").exists()  # refused before the data were loaded
    assert not (tmp_path / "out").exists()

    result = run(command, *data, *args, option, mine, "-q", "--force")
    assert result.exit_code == 0, result.output
    assert mine.read_bytes() != b"the user's own file\n"


def test_search_refuses_a_huge_grid_unless_told(data, tmp_path):
    values = ",".join(f"{k}e-9" for k in range(1, 301))  # 300 x 300 = 90,000 trials
    result = run("search", *data, "--lr", values, "--reg", values, "--out", tmp_path / "out")
    assert_clean_failure(result, 2, "90,000 trials, more than 1,000", "--yes")
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()


def test_search_says_how_many_trials_to_a_person_watching(data, tmp_path):
    from svmtrain.errors import Notice
    from svmtrain.experiments.search import search_hyperparameters

    overrides = [s for i, s in enumerate([*data, *SMALL]) if i % 2]  # the --set values
    with pytest.warns(Notice, match="^search: 2 trials$"):
        search_hyperparameters(
            None, overrides, lr="1e-9,1e-8", epochs=1, jobs=1, out=tmp_path / "s", progress=True
        )
