"""`svmtrain fit` and `svmtrain evaluate` through click's CliRunner, on a tiny cached archive."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from svmtrain.cli import main
from svmtrain.errors import SigTerm
from svmtrain.experiments import train
from svmtrain.experiments.common import sigterm_as_interrupt
from svmtrain.io import runs

QUICK = Path(__file__).resolve().parent.parent / "configs" / "quick.yaml"


@pytest.fixture
def archive(tiny_run_data):
    """A tiny archive (300 train, 50 test) and, built independently, the arrays it holds."""
    return tiny_run_data.archive


@pytest.fixture
def data_args(tiny_run_data):
    """--set options pointing at a data cache holding ``archive``."""
    return tiny_run_data.args


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _fit(data_args, out, *extra):
    return _run("fit", "-c", QUICK, *data_args, "--out", out, "-q", *extra)


def test_fit_then_evaluate(archive, data_args, tmp_path):
    out = tmp_path / "run"
    result = _fit(data_args, out)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and str(out) in result.output
    summary = json.loads((out / runs.SUMMARY).read_text())

    result = _run("evaluate", "--weights", out / runs.WEIGHTS, "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["warning"] is None
    assert report["accuracy"] == summary["test_acc"]
    assert report["confusion"] == summary["confusion"]
    # An independent reference: the stored model applied by hand, in float64, to the test
    # images the archive was built from.
    weights = np.load(out / runs.WEIGHTS)
    X = (archive.x_test - weights["mean"].astype(np.float64)) / weights["scale"]
    scores = np.hstack([X, np.ones((len(X), 1))]) @ weights["W"].astype(np.float64).T
    assert report["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == archive.y_test))

    result = _run("evaluate", "--weights", out / runs.WEIGHTS, "--split", "val", "-q")
    assert result.exit_code == 0, result.output
    assert f"val accuracy: {summary['val_acc']:.4f} (50 images)" in result.output
    assert "confusion matrix" in result.output


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("train:\n  batch_size: 0\n", "train.batch_size must be an int >= 1. Got 0 instead."),
        (
            "optim:\n  learning_rat: 1e-3\n",
            "'learning_rat' is not a key of optim; did you mean 'learning_rate'?",
        ),
        ("train: [1, 2\n", "invalid YAML at line 2"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, config_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(config_text)
    result = _run("fit", "-c", path, "--out", tmp_path / "never")
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "never").exists()


def test_resume_refuses_a_new_config(tmp_path):
    result = _run("fit", "--resume", tmp_path, "-c", QUICK)
    assert result.exit_code == 2
    assert "--resume takes the run's own config.yaml" in result.output


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(data_args, tmp_path):
    calls = [0]

    def interrupt_in_epoch_two(state, updates):
        calls[0] += 1
        if calls[0] == 12:
            raise KeyboardInterrupt

    out = tmp_path / "cut"
    with train.step_hook(interrupt_in_epoch_two):
        result = _fit(data_args, out)
    assert result.exit_code == 130
    assert f"continue with: svmtrain fit --resume {out}" in result.output
    assert (out / runs.CHECKPOINT).exists() and not (out / runs.WEIGHTS).exists()

    result = _run("plot", out)  # says how to finish the run, not how to make a new one
    assert result.exit_code == 1
    assert f"`svmtrain fit --resume {out}`" in result.output
    assert "NEW_DIR" not in result.output

    result = _run("fit", "--resume", out, "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((out / runs.SUMMARY).read_text())["epochs"] == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_exits_128_plus_it_saying_what_was_kept(data_args, tmp_path, sig):
    """Issue 14 #11: SIGTERM during fit printed nothing; issue 19 #27: SIGHUP (a closed
    terminal) killed it silently. Both stop as Ctrl-C does, with their own exit code; and a
    resume clears what a fit killed outright left of its atomic writes, nothing else."""
    calls = [0]

    def signal_in_epoch_two(state, updates):
        calls[0] += 1
        if calls[0] == 12:
            os.kill(os.getpid(), sig)

    out = tmp_path / "cut"
    with train.step_hook(signal_in_epoch_two):
        result = _fit(data_args, out)
    assert result.exit_code == 128 + sig
    assert f"{sig.name} after epoch 1" in result.output
    assert f"continue with: svmtrain fit --resume {out}" in result.output
    assert (out / runs.CHECKPOINT).exists() and not (out / runs.WEIGHTS).exists()
    assert not list(out.glob(".*.tmp"))

    killed, mine = out / f".{runs.CHECKPOINT}.4242.tmp", out / ".notes.1.tmp"
    killed.write_bytes(b"half a checkpoint")
    mine.write_text("mine\n")
    result = _run("fit", "--resume", out, "-q")
    assert result.exit_code == 0, result.output
    assert not killed.exists() and mine.read_text() == "mine\n"


def test_fit_into_a_directory_of_the_users_files_touches_nothing(data_args, tmp_path):
    """Issue 14 #4: their config.yaml and metrics.jsonl were replaced."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("# my notes\n")
    (mine / "metrics.jsonl").write_text("my numbers\n")
    result = _fit(data_args, mine)
    assert result.exit_code == 1
    assert "Choose a new or empty directory with --out" in result.output
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "metrics.jsonl"]
    assert (mine / "config.yaml").read_text() == "# my notes\n"


def test_fit_calls_a_users_weights_npz_a_users_file_not_a_diverged_run(data_args, tmp_path):
    mine = tmp_path / "d"
    mine.mkdir()
    (mine / "weights.npz").write_text("hi\n")
    result = _fit(data_args, mine)
    assert result.exit_code == 1
    assert "diverged" not in result.output
    assert "holds no run" in result.output
    assert [p.name for p in mine.iterdir()] == ["weights.npz"]


def test_divergence_is_one_clear_error(data_args, tmp_path):
    result = _fit(data_args, tmp_path / "div", "--set", "optim.learning_rate=1e9")
    assert result.exit_code == 1
    assert "Training diverged" in result.output
    assert "Try a smaller learning rate" in result.output
    assert (tmp_path / "div" / runs.WEIGHTS).exists()
    # Issue 14 #8: evaluate scores them, but says on stderr that they are untrained.
    result = _run("evaluate", "--weights", tmp_path / "div" / runs.WEIGHTS, "--json", "-q")
    assert result.exit_code == 0, result.output
    assert "diverged in epoch 1" in result.stderr
    assert "untrained initial weights" in result.stderr
    report = json.loads(result.stdout)
    assert "untrained initial weights" in report["warning"]
    # plot does not suggest fit --out into the directory that fit refuses.
    result = _run("plot", tmp_path / "div")
    assert result.exit_code == 1
    assert f"The run in {tmp_path / 'div'} diverged in its first epoch" in result.output
    assert "metrics.jsonl" not in result.output
    assert f"--out {tmp_path / 'div'}" not in result.output
    assert "--out NEW_DIR" in result.output
    assert _fit(data_args, tmp_path / "div").exit_code == 1  # as fit refuses that directory


def _npz(path: Path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


GOOD = {
    "W": np.zeros((10, 3073), np.float32),
    "mean": np.zeros(3072, np.float32),
    "scale": np.ones(3072, np.float32),
    "class_names": np.array(list("abcdefghij")),
    "config": np.array(""),
}


def _npy(path: Path):
    with open(path, "wb") as f:  # np.save to a file object keeps the .npz name
        np.save(f, np.zeros((10, 3073)))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _npz(p, **{**GOOD, "W": np.zeros((10, 3072))}), "W has shape (10, 3072)"),
        (
            lambda p: _npz(p, **{**GOOD, "class_names": np.array(list("abc"))}),
            "W has 10 rows but class_names lists 3 classes",
        ),
        (lambda p: _npz(p, **{k: v for k, v in GOOD.items() if k != "mean"}), "lacks mean"),
        (lambda p: _npz(p, **{**GOOD, "scale": np.ones(5)}), "scale must be 3072 finite floats"),
        (lambda p: _npz(p, **{**GOOD, "scale": np.zeros(3072)}), "scale must be positive"),
        (
            lambda p: _npz(p, **{**GOOD, "mean": np.full(3072, np.nan)}),
            "mean must be 3072 finite floats",
        ),
        (
            lambda p: _npz(p, **{**GOOD, "W": np.zeros((10, 3073), np.float16)}),
            "W must hold finite float32 or float64 numbers",
        ),
        (_npy, "is not a weights file (not an .npz archive)"),
        (lambda p: p.write_text("not a zip") and p, "is not a weights file (not an .npz archive)"),
        (lambda p: p, "No weights file at"),
    ],
)
def test_evaluate_rejects_bad_weights(tmp_path, make, message):
    path = make(tmp_path / "weights.npz")
    result = _run("evaluate", "--weights", path)
    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.slow
def test_quick_config_on_the_real_mirror_beats_chance(cifar_data_dir, tmp_path):
    d = cifar_data_dir
    out = tmp_path / "quick"
    result = _run(
        "fit",
        "-c",
        QUICK,
        "--data-dir",
        d.data_dir,
        "--out",
        out,
        "-q",
        "--set",
        f"data.url={d.url}",
        "--set",
        f"data.sha256={d.sha256}",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / runs.SUMMARY).read_text())
    assert summary["num_test"] == 10000
    assert summary["test_acc"] > 0.25  # chance is 0.10


def test_fit_and_evaluate_plot(data_args, tmp_path):
    out = tmp_path / "run"
    result = _fit(data_args, out, "--plot")
    assert result.exit_code == 0, result.output
    for name in ("weights.png", "curves.png", "confusion.png"):
        assert f"wrote {out / name}" in result.output
        assert (out / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    png = tmp_path / "val-confusion.png"
    result = _run("evaluate", "-w", out / runs.WEIGHTS, "--split", "val", "--plot", png, "-q")
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"wrote {png}" in result.output


def test_evaluate_refuses_to_overwrite_a_plot_unless_forced(data_args, tmp_path):
    out, mine = tmp_path / "run", tmp_path / "p.png"
    assert _fit(data_args, out).exit_code == 0
    mine.write_bytes(b"my picture")
    result = _run("evaluate", "-w", out / runs.WEIGHTS, "--plot", mine, "-q")
    assert result.exit_code == 1
    assert f"{mine} already exists; choose a new file name or pass --force" in result.stderr
    assert result.stdout == ""
    assert mine.read_bytes() == b"my picture"
    result = _run("evaluate", "-w", out / runs.WEIGHTS, "--plot", mine, "--force", "-q")
    assert result.exit_code == 0, result.output
    assert mine.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_fit_plot_without_matplotlib_fails_before_training(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = _run("fit", "-c", QUICK, "--out", tmp_path / "never", "--plot")
    assert result.exit_code == 1
    assert "pip install 'svmtrain[plot]'" in result.output
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("name", ["null", "123", "a #b", "1e5"])
def test_data_dir_is_taken_as_a_path_whatever_its_name(name):
    from svmtrain.cli.options import data_dir_override
    from svmtrain.config import load_config

    assert load_config(overrides=data_dir_override(name)).data.dir == name


def test_out_of_memory_is_one_line(monkeypatch):
    cli_fit = sys.modules["svmtrain.cli.fit"]  # the package's `fit` attribute is the command

    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cli_fit, "fit_run", too_big)
    result = _run("fit", "-c", QUICK)
    assert result.exit_code == 1
    assert "Out of memory" in result.output


def test_a_wrong_data_sha256_names_the_config_key_not_an_option_fit_lacks(
    archive, http_server, tmp_path
):
    with http_server(archive.body) as server:
        result = _run(
            "fit", "-c", QUICK, "--set", f"data.dir={tmp_path / 'data'}",
            "--set", f"data.url={server.url}", "--set", f"data.sha256={'a' * 64}",
            "--out", tmp_path / "run", "-q",
        )  # fmt: skip
    assert result.exit_code == 1
    assert f"--set data.sha256={archive.sha256}" in result.output
    assert "--sha256" not in result.output
    assert not (tmp_path / "run").exists()


def test_ctrl_c_before_training_started_names_the_run_and_resume_starts_it(
    data_args, tmp_path, monkeypatch
):
    from svmtrain.experiments import fit as fitting

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    real_init = fitting.init_state
    monkeypatch.setattr(fitting, "init_state", interrupted)
    out = tmp_path / "cut"
    result = _fit(data_args, out)
    assert result.exit_code == 130
    assert f"{out} holds the run's config" in result.output
    assert f"svmtrain fit --resume {out}" in result.output
    assert sorted(p.name for p in out.iterdir()) == [runs.LOCK, runs.CONFIG]

    monkeypatch.setattr(fitting, "init_state", real_init)
    result = _run("fit", "--resume", out, "-q")
    assert result.exit_code == 0, result.output
    assert _fit(data_args, tmp_path / "whole").exit_code == 0
    for name in (runs.WEIGHTS, runs.LOSS_HISTORY):  # as if it had never been interrupted
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_resume_of_a_finished_run_says_so_and_changes_nothing(data_args, tmp_path):
    out = tmp_path / "run"
    first = _fit(data_args, out)
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != runs.LOCK}
    result = _run("fit", "--resume", out, "-q")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"The run in {out} had already finished; nothing to resume")
    assert first.output in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != runs.LOCK} == before


def test_resume_with_another_runs_checkpoint_says_so(data_args, tmp_path):
    calls = [0]

    def interrupt_in_epoch_two(state, updates):
        calls[0] += 1
        if calls[0] in (12, 24):
            raise KeyboardInterrupt

    mine, other = tmp_path / "mine", tmp_path / "other"
    with train.step_hook(interrupt_in_epoch_two):
        assert _fit(data_args, mine).exit_code == 130
        assert _fit(data_args, other, "--set", "model.reg=0.5").exit_code == 130
    (mine / runs.CHECKPOINT).write_bytes((other / runs.CHECKPOINT).read_bytes())
    result = _run("fit", "--resume", mine, "-q")
    assert result.exit_code == 1
    assert f"{mine / runs.CHECKPOINT} belongs to another run" in result.output
    assert "was changed" not in result.output


def test_one_epoch_is_one_epoch(data_args, tmp_path):
    result = _fit(data_args, tmp_path / "run", "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    assert "(1 epoch, 7 steps, " in result.output  # 250 images in batches of 32


def test_a_signal_during_the_clean_up_after_a_stop_is_ignored():
    """SIGTERM stops the work; a SIGHUP right after (the terminal closing too) must not cut
    the clean-up short, in nested blocks (the CLI's edge around fit's); after the outermost
    block the handlers are what they were."""
    original = signal.getsignal(signal.SIGHUP)
    with sigterm_as_interrupt():
        try:
            with sigterm_as_interrupt():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here
            raise AssertionError("SIGTERM did not stop the block")
        except SigTerm as stop:
            assert stop.signum == signal.SIGTERM
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)  # time for a handler to run: there is none to
    assert signal.getsignal(signal.SIGHUP) is original
