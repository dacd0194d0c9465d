"""The search library: what to search, trial configs, running trials in workers, ranking,
the results files, and Ctrl-C. On small synthetic data made here (no download)."""

import dataclasses
import json
import multiprocessing
import os
import signal
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from svmtrain.config import load_config
from svmtrain.data.preprocess import PIXELS, prepare
from svmtrain.errors import ArgumentError, ConfigError, Interrupted, SvmtrainError
from svmtrain.experiments import fit, search, train


@pytest.fixture(scope="module")
def splits():
    """Ten classes of noisy uint8 images around nearby grey templates, preprocessed as
    CIFAR-10 is (mean subtracted, pixels unscaled): learnable, with room between learning
    rates that do nothing, learn, and diverge."""
    rng = np.random.default_rng(0)
    templates = 128 + rng.integers(-6, 7, (10, PIXELS))

    def images(n):
        y = rng.integers(0, 10, n)
        x = templates[y] + rng.normal(0, 40, (n, PIXELS))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)

    (x_train, y_train), (x_test, y_test) = images(600), images(50)
    dataset = SimpleNamespace(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple("abcdefghij"),
        sha256="0" * 64,
    )
    return prepare(dataset, load_config(overrides=["data.val_size=200"]))


BASE = [
    "model.reg=1",
    "train.epochs=5",
    "train.batch_size=50",
    "train.train_acc_samples=200",
]


# ---------------------------------------------------------------------------------------------
# What to search


@pytest.mark.parametrize(
    ("key", "spec", "expected"),
    [
        (search.LR, "1e-7,1e-6", search.Axis(search.LR, values=("1e-7", "1e-6"))),
        (search.LR, " 1e-7 , 5e-7 ", search.Axis(search.LR, values=("1e-7", "5e-7"))),
        (search.REG, "1e3:1e5", search.Axis(search.REG, low=1e3, high=1e5)),
        ("train.batch_size", "32:512", search.Axis("train.batch_size", low=32.0, high=512.0)),
        ("optim.nesterov", "true,false", search.Axis("optim.nesterov", values=("true", "false"))),
        ("schedule.name", "constant", search.Axis("schedule.name", values=("constant",))),
    ],
)
def test_parse_axis(key, spec, expected):
    assert search.parse_axis(key, spec, "--grid") == expected


@pytest.mark.parametrize(
    ("key", "spec", "message"),
    [
        ("optim.learning_rat", "1", "not a config key; did you mean 'optim.learning_rate'?"),
        ("optim.lr", "1", "the keys of optim: name, learning_rate, momentum, nesterov."),
        ("optimm.momentum", "1", "not a config key \\(section.key\\); did you mean 'optim'?"),
        ("learning_rate", "1", "the sections: data, preprocess, features, model"),
        (search.LR, "1e-7,,1e-6", "has an empty value"),
        (search.LR, "", "has an empty value"),
        (search.LR, "1e-7,1e-7", "lists 1e-7 twice"),
        (search.LR, "1e-5:1e-7", "finite 0 < LOW < HIGH"),
        (search.LR, "0:1e-7", "finite 0 < LOW < HIGH"),
        (search.LR, "1e-7:inf", "finite 0 < LOW < HIGH"),
        ("schedule.name", "1:2", "schedule.name is not a number, so it cannot be a range"),
        ("optim.nesterov", "0:1", "is not a number, so it cannot be a range"),
    ],
)
def test_parse_axis_rejects(key, spec, message):
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        search.parse_axis(key, spec, "--grid")


def test_parse_grid_option():
    assert search.parse_grid_option("optim.momentum=0,0.9") == search.Axis(
        "optim.momentum", values=("0", "0.9")
    )
    for bad in ("optim.momentum", "=0,0.9"):
        with pytest.raises(ValueError, match="expected KEY=V1,V2"):
            search.parse_grid_option(bad)


@pytest.mark.parametrize(
    ("axes", "random", "epochs", "message"),
    [
        ([], False, None, "Nothing to search: give --lr, --reg or --grid"),
        (
            [search.Axis(search.LR, ("1",)), search.Axis(search.LR, ("2",))],
            False,
            None,
            "optim.learning_rate is searched twice",
        ),
        ([search.Axis(search.LR, low=1e-7, high=1e-5)], False, None, "only --random N samples"),
        ([search.Axis("preprocess.scaling", ("none", "unit"))], False, None, "cannot be searched"),
        (
            [search.Axis("data.num_train", ("100",)), search.Axis(search.LR, low=1e-7, high=1e-5)],
            True,
            None,
            "loaded and preprocessed once",
        ),
        (
            [search.Axis(search.LR, ("1e-7", "1e-6")), search.Axis(search.REG, ("1",))],
            True,
            None,
            "would repeat the same 2 combinations. Drop --random",
        ),
        ([search.Axis("train.epochs", ("1", "2"))], False, 3, "--epochs sets the length"),
        ([search.Axis("train.iterations", ("10",))], False, 3, "stop searching train.iterations"),
    ],
)
def test_check_axes_rejects(axes, random, epochs, message):
    with pytest.raises(ValueError, match=message):
        search.check_axes(axes, random=random, epochs=epochs)


def test_grid_settings_first_axis_slowest():
    axes = [search.Axis(search.LR, ("1", "2")), search.Axis(search.REG, ("a", "b", "c"))]
    assert search.grid_settings(axes) == [
        {search.LR: lr, search.REG: reg} for lr in ("1", "2") for reg in ("a", "b", "c")
    ]


def test_random_settings_are_seeded_log_uniform_and_typed():
    axes = [
        search.Axis(search.LR, low=1e-8, high=1e-4),
        search.Axis("train.batch_size", low=16, high=256),
        search.Axis("optim.momentum", ("0", "0.9")),
    ]
    samples = search.random_settings(axes, 400, seed=3)
    assert samples == search.random_settings(axes, 400, seed=3)
    assert samples != search.random_settings(axes, 400, seed=4)
    lrs = np.array([float(s[search.LR]) for s in samples])
    assert lrs.min() >= 1e-8 and lrs.max() <= 1e-4
    # Log-uniform: each of the four decades gets about a quarter of the samples.
    decades = np.histogram(np.log10(lrs), bins=[-8, -7, -6, -5, -4])[0]
    assert decades.min() > 60, decades
    batches = [s["train.batch_size"] for s in samples]
    assert all(b.isdigit() and 16 <= int(b) <= 256 for b in batches)
    assert {s["optim.momentum"] for s in samples} == {"0", "0.9"}
    assert all(len(s[search.LR].split("e")[0].replace(".", "")) <= 3 for s in samples)


def test_make_trials_applies_epochs_to_trials_only():
    base = [*BASE, "train.epochs=null", "train.iterations=40"]
    settings = [{search.LR: "1e-6"}, {search.LR: "1e-5"}]
    trials = search.make_trials(None, base, settings, epochs=2)
    assert [t.number for t in trials] == [1, 2]
    assert [t.config.optim.learning_rate for t in trials] == [1e-6, 1e-5]
    assert all(t.config.train.epochs == 2 and t.config.train.iterations is None for t in trials)
    full = trials[1].full_config
    assert (full.optim.learning_rate, full.train.epochs, full.train.iterations) == (1e-5, None, 40)


def test_make_trials_names_the_bad_trial():
    settings = [{search.LR: "1e-6"}, {search.LR: "-1"}]
    with pytest.raises(ConfigError, match=r"Trial 2 \(optim.learning_rate=-1\): optim.learning_r"):
        search.make_trials(None, BASE, settings)


def test_check_trials_rejects_a_batch_larger_than_the_training_split():
    settings = [{"train.batch_size": "100"}, {"train.batch_size": "500"}]
    trials = search.make_trials(None, BASE, settings)
    with pytest.raises(ConfigError, match=r"Trial 2: train.batch_size must be at most the 400"):
        search.check_trials(trials, 400)


# ---------------------------------------------------------------------------------------------
# Running, ranking, results

# Known answer: 1e-12 barely moves W (chance accuracy), 1e-5 learns, 1e-2 diverges.
KNOWN = "1e-12,1e-5,1e-2"


def _search(splits, out_dir, lrs=KNOWN, jobs=2, extra=(), epochs=None):
    axes = [search.parse_axis(search.LR, lrs, "--lr")]
    trials = search.make_trials(None, [*BASE, *extra], search.grid_settings(axes), epochs)
    out_dir = search.new_search_dir(load_config(), out_dir)
    job = search.Search(trials, axes, out_dir, jobs=jobs, epochs=epochs)
    return search.run_search(job, splits, progress=False)


def test_search_picks_the_best_validation_trial_and_records_divergence(splits, tmp_path):
    job = _search(splits, tmp_path, epochs=3)
    by_number = {r.number: r for r in job.results}
    slow, good, huge = by_number[1], by_number[2], by_number[3]
    assert good.status == search.OK and good.val_acc > 0.5
    assert slow.status == search.OK and slow.val_acc < 0.2
    assert huge.status == search.DIVERGED
    assert (huge.val_acc, huge.train_acc, huge.final_loss) == (None, None, None)
    assert "diverged" in huge.message
    assert [r.number for r in search.rank(job.results)] == [2, 1, 3]

    document = json.loads((tmp_path / search.RESULTS_JSON).read_text())
    assert document["best"]["trial"] == 2 and document["best"]["settings"] == {search.LR: 1e-5}
    assert (document["trials"], document["finished"], document["interrupted"]) == (3, 3, False)
    assert document["epochs_per_trial"] == 3
    assert [(r["rank"], r["trial"], r["status"]) for r in document["results"]] == [
        (1, 2, "ok"),
        (2, 1, "ok"),
        (3, 3, "diverged"),
    ]
    # The accuracies are the validation split's, computed here independently from scratch.
    state = train.init_state(job.trials[1].config, 10, PIXELS + 1)
    train.train(job.trials[1].config, splits, state, progress=False)
    X_val = splits.design(splits.X_val, np.float64)
    predicted = np.argmax(X_val @ state.W.astype(np.float64).T, axis=1)
    assert document["best"]["val_acc"] == np.mean(predicted == splits.y_val)

    lines = (tmp_path / search.RESULTS_CSV).read_text().splitlines()
    assert lines[0] == (
        "rank,trial,learning_rate,reg,final_loss,train_acc,val_acc,epochs,seconds,status,message"
    )
    cells = [line.split(",") for line in lines[1:]]
    assert [(c[0], c[1], c[2], c[9]) for c in cells] == [
        ("1", "2", "1e-05", "ok"),
        ("2", "1", "1e-12", "ok"),
        ("3", "3", "0.01", "diverged"),
    ]
    assert float(cells[0][6]) == document["best"]["val_acc"]
    assert cells[2][6] == ""  # no accuracy for the diverged trial


def test_best_yaml_loads_and_trains_in_fit(splits, tmp_path):
    _search(splits, tmp_path / "search", epochs=1)
    cfg = load_config(tmp_path / "search" / search.BEST_YAML)
    assert cfg.optim.learning_rate == 1e-5
    assert cfg.train.epochs == 5  # the base config's length, not the trials' --epochs
    assert cfg == load_config(overrides=[*BASE, "optim.learning_rate=1e-5"])
    result = fit.fit(cfg, out=tmp_path / "run", splits=splits, progress=False)
    assert result.summary["epochs"] == 5 and result.summary["val_acc"] > 0.5


def _comparable(results):
    """Everything but the wall time, in trial order."""
    return sorted((dataclasses.replace(r, seconds=0.0) for r in results), key=lambda r: r.number)


def test_results_do_not_depend_on_jobs(splits, tmp_path):
    lrs = "1e-7,1e-6,1e-5,1e-4,1e-2"
    extra = ["optim.momentum=0.9", "train.sampling=replacement"]
    runs = {
        jobs: _search(splits, tmp_path / str(jobs), lrs, jobs, extra).results for jobs in (1, 2, 3)
    }
    assert _comparable(runs[1]) == _comparable(runs[2]) == _comparable(runs[3])
    assert len({r.val_acc for r in runs[1]}) >= 3  # the trials really differ


def test_rank_orders_by_val_acc_then_trial_number():
    def result(number, val_acc, status=search.OK):
        return search.TrialResult(number, {}, 1e-3, 0.0, status, 1.0, 0.5, val_acc, 1, 0.1)

    results = [
        result(1, 0.3),
        result(2, None, search.DIVERGED),
        result(3, 0.5),
        result(4, 0.3),
        result(5, 0.0),
    ]
    assert [r.number for r in search.rank(results)] == [3, 1, 4, 5, 2]


def test_no_best_yaml_when_every_trial_diverged(splits, tmp_path):
    job = _search(splits, tmp_path, lrs="1e-2,1")
    assert {r.status for r in job.results} == {search.DIVERGED}
    assert json.loads((tmp_path / search.RESULTS_JSON).read_text())["best"] is None
    assert not (tmp_path / search.BEST_YAML).exists()


def test_a_finished_search_directory_is_not_reused(splits, tmp_path):
    _search(splits, tmp_path, lrs="1e-5")
    with pytest.raises(Exception, match="already holds a search's results; choose another --out"):
        search.new_search_dir(load_config(), tmp_path)


def test_a_search_interrupted_before_any_trial_finished_can_be_rerun(splits, tmp_path):
    (tmp_path / search.RESULTS_JSON).write_text('{"finished": 0, "interrupted": true}')
    assert search.new_search_dir(load_config(), tmp_path) == tmp_path
    (tmp_path / search.RESULTS_JSON).write_text("not json")
    with pytest.raises(SvmtrainError, match="already holds a search's results"):
        search.new_search_dir(load_config(), tmp_path)


def test_default_search_directory(tmp_path):
    cfg = load_config(overrides=[f"output.dir={tmp_path / 'runs'}"])
    path = search.new_search_dir(cfg, None)
    assert path.is_dir() and path.parent == tmp_path / "runs" and path.name.endswith("-search")


def test_without_fork_the_trials_run_in_this_process(splits, tmp_path, monkeypatch):
    forked = _search(splits, tmp_path / "forked", KNOWN, jobs=2).results
    monkeypatch.setattr(search.runner, "can_fork", lambda: False)
    assert search.effective_jobs(4, 3) == 1
    inline = _search(splits, tmp_path / "inline", KNOWN, jobs=2)
    assert inline.jobs == 2 and [r.number for r in inline.results] == [1, 2, 3]
    assert multiprocessing.active_children() == []
    assert _comparable(inline.results) == _comparable(forked)  # the same BLAS threads


@pytest.mark.parametrize("where", ["1 worker", "2 workers", "in process"])
def test_ctrl_c_stops_the_workers_and_keeps_the_finished_trials(
    splits, tmp_path, monkeypatch, where
):
    """Trials 1 and 2 finish; the others hang until the workers are stopped."""
    jobs = 2 if where == "2 workers" else 1
    if where == "in process":
        monkeypatch.setattr(search.runner, "can_fork", lambda: False)
    real = search.run_trial

    def hang_after_two(trial, data):
        if trial.number > 2:
            time.sleep(120)
        return real(trial, data)

    monkeypatch.setattr(search.runner, "run_trial", hang_after_two)
    axes = [search.parse_axis(search.LR, "1e-6,1e-5,1e-4,1e-3,1e-2", "--lr")]
    trials = search.make_trials(None, BASE, search.grid_settings(axes), epochs=1)
    job = search.Search(trials, axes, tmp_path, jobs=jobs, epochs=1)
    main = threading.main_thread().ident

    def interrupt_after_two():
        deadline = time.monotonic() + 60
        while len(job.results) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the parent is waiting for trial 3 by now
        signal.pthread_kill(main, signal.SIGINT)

    started = time.monotonic()
    threading.Thread(target=interrupt_after_two, daemon=True).start()
    with pytest.raises(Interrupted, match=r"Interrupted after 2 of 5 trials; their results are"):
        search.run_search(job, splits, progress=False)
    assert time.monotonic() - started < 60  # the hanging workers were stopped, not waited for
    assert multiprocessing.active_children() == []
    document = json.loads((tmp_path / search.RESULTS_JSON).read_text())
    assert (document["finished"], document["trials"], document["interrupted"]) == (2, 5, True)
    assert sorted(r["trial"] for r in document["results"]) == [1, 2]
    assert load_config(tmp_path / search.BEST_YAML).optim.learning_rate in (1e-6, 1e-5)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_killed_worker_stops_the_search_and_names_its_trial(splits, tmp_path, monkeypatch, jobs):
    """The worker running trial 3 is really killed with SIGKILL (as the OOM killer does): the
    search stops instead of waiting for it, records trial 3 as crashed and keeps the rest."""
    real = search.run_trial

    def killed_at_three(trial, data):
        if trial.number == 3:
            _wait_for_finished(tmp_path, 2)  # or the other worker may be stopped in trial 2
            os.kill(os.getpid(), signal.SIGKILL)
        return real(trial, data)

    monkeypatch.setattr(search.runner, "run_trial", killed_at_three)
    axes = [search.parse_axis(search.LR, "1e-6,1e-5,1e-4", "--lr")]
    trials = search.make_trials(None, BASE, search.grid_settings(axes), epochs=1)
    job = search.Search(trials, axes, tmp_path, jobs=jobs, epochs=1)
    started = time.monotonic()
    with pytest.raises(SvmtrainError) as caught:
        search.run_search(job, splits, progress=False)
    assert time.monotonic() - started < 60
    assert str(caught.value).startswith(
        "The search stopped: the worker for trial 3 died (killed by signal 9, SIGKILL; out of "
        "memory?). 2 of 3 trials finished; their results are in"
    )
    assert multiprocessing.active_children() == []
    document = json.loads((tmp_path / search.RESULTS_JSON).read_text())
    assert (document["finished"], document["interrupted"]) == (2, False)
    statuses = {r["trial"]: r["status"] for r in document["results"]}
    assert statuses == {1: search.OK, 2: search.OK, 3: search.CRASHED}
    assert (tmp_path / search.RESULTS_CSV).read_text().count(search.CRASHED) == 1


def _wait_for_finished(out_dir, count, timeout=30):
    """Until results.json in out_dir says ``count`` trials finished (or ``timeout`` s pass)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out_dir / search.RESULTS_JSON
        if path.exists() and json.loads(path.read_text())["finished"] >= count:
            return
        time.sleep(0.01)


def test_worker_died_is_a_user_facing_error_naming_trial_and_signal():
    died = search.WorkerDied(4, -signal.SIGKILL)
    assert isinstance(died, SvmtrainError)
    assert str(died) == "the worker for trial 4 died (killed by signal 9, SIGKILL; out of memory?)"
    assert str(search.WorkerDied(None, 3)) == "a worker died (exit code 3)"


# ---------------------------------------------------------------------------------------------
# Successive halving


@pytest.mark.parametrize(
    ("factor", "low", "trials", "max_epochs", "rungs"),
    [
        (3, 1, 27, 9, [1, 3, 9]),  # the epochs bound it
        (3, 1, 27, 27, [1, 3, 9, 27]),
        (3, 1, 27, 100, [1, 3, 9, 27]),  # the trials bound it: one left in the last rung
        (3, 1, 8, 9, [1, 3]),  # 9 > 8 trials: no third rung
        (3, 1, 10, 8, [1, 3]),
        (2, 2, 8, 16, [2, 4, 8, 16]),
        (4, 3, 16, 48, [3, 12, 48]),
    ],
)
def test_halving_rungs(factor, low, trials, max_epochs, rungs):
    assert search.Halving(factor, low).rung_epochs(trials, max_epochs) == rungs


@pytest.mark.parametrize(
    ("trials", "max_epochs", "message"),
    [
        (2, 9, r"needs at least 3 trials \(got 2\)"),
        (27, 2, r"trials of at least 3 epochs \(got 2; set --epochs\)"),
        (27, None, "the config sets train.iterations; give --epochs N"),
    ],
)
def test_halving_needs_room_for_two_rungs(trials, max_epochs, message):
    with pytest.raises(ValueError, match=message):
        search.Halving(3, 1).rung_epochs(trials, max_epochs)


def test_halving_survivors_round_up():
    halving = search.Halving(3, 1)
    assert [halving.survivors(n) for n in (1, 2, 3, 4, 9, 10, 27)] == [1, 1, 1, 2, 3, 4, 9]


def test_rank_puts_the_highest_rung_first():
    def result(number, val_acc, rung, status=search.OK):
        return search.TrialResult(
            number, {}, 1e-3, 0.0, status, 1.0, 0.5, val_acc, 1, 0.1, rung=rung
        )

    results = [result(1, 0.9, 0), result(2, 0.4, 1), result(3, 0.5, 1), result(4, None, 1, "x")]
    assert [r.number for r in search.rank(results)] == [3, 2, 1, 4]


HALVING_LRS = "1e-12,1e-7,1e-6,3e-6,1e-5,3e-5,1e-2"


def _halving_search(splits, out_dir, jobs):
    axes = [search.parse_axis(search.LR, HALVING_LRS, "--lr")]
    trials = search.make_trials(None, BASE, search.grid_settings(axes), epochs=3)
    out_dir = search.new_search_dir(load_config(), out_dir)
    job = search.Search(trials, axes, out_dir, jobs=jobs, epochs=3, halving=search.Halving(3, 1))
    return search.run_search(job, splits, progress=False)


def test_successive_halving_continues_the_best_third_from_scratch(splits, tmp_path):
    """7 trials for 1 epoch; the best ceil(7/3) = 3 by validation accuracy train again for 3
    epochs from their seed; the diverged one never continues. Checked against each trial run
    on its own for 1 and for 3 epochs."""
    job = _halving_search(splits, tmp_path / "halving", jobs=2)
    first = {t.number: search.run_trial(search.for_rung(t, 0, 1), splits) for t in job.trials}
    assert {r.status for r in first.values()} == {search.OK, search.DIVERGED}
    ok = [r for r in first.values() if r.status == search.OK]
    best = sorted(ok, key=lambda r: (-r.val_acc, r.number))[:3]
    chosen = {r.number for r in best}
    by_number = {r.number: r for r in job.results}
    assert sorted(by_number) == list(range(1, 8))
    for number, result in by_number.items():
        if number in chosen:
            trial = search.for_rung(job.trials[number - 1], 1, 3)
            expected = search.run_trial(trial, splits)
            assert (result.rung, result.epochs) == (1, 3)
        else:
            expected = first[number]
            assert result.rung == 0 and result.epochs <= 1
        assert dataclasses.replace(result, seconds=0.0) == dataclasses.replace(
            expected, seconds=0.0
        )
    assert job.runs == 10
    assert job.epochs_trained == sum(r.epochs for r in first.values()) + 3 * 3
    ranked = search.rank(job.results)
    assert {r.number for r in ranked[:3]} == chosen and ranked[-1].status == search.DIVERGED

    document = json.loads((tmp_path / "halving" / search.RESULTS_JSON).read_text())
    assert document["halving"] == {"reduction_factor": 3, "min_epochs": 1, "rung_epochs": [1, 3]}
    assert (document["runs"], document["epochs_trained"]) == (10, job.epochs_trained)
    assert [r["rung"] for r in document["results"]] == [1, 1, 1, 0, 0, 0, 0]
    header = (tmp_path / "halving" / search.RESULTS_CSV).read_text().splitlines()[0]
    assert header.startswith("rank,trial,learning_rate,reg,rung,final_loss,")
    best_yaml = load_config(tmp_path / "halving" / search.BEST_YAML)
    assert best_yaml.train.epochs == 5  # the base config's length, as without halving


def test_successive_halving_does_not_depend_on_jobs(splits, tmp_path):
    one = _halving_search(splits, tmp_path / "1", jobs=1).results
    two = _halving_search(splits, tmp_path / "2", jobs=2).results
    assert _comparable(one) == _comparable(two)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "Nothing to search"),
        ({"lr": "1e-7,1e-6", "min_epochs": 2}, "need --halving"),
        ({"lr": "1e-7", "scheduler": "tcp://127.0.0.1:1", "scheduler_file": "f"}, "not both"),
    ],
)
def test_search_hyperparameters_refuses_a_search_that_cannot_run(options, message, tmp_path):
    """Before any data are loaded or any directory made: an ArgumentError naming no argument,
    as the message names the options (a usage error of the whole command in the CLI)."""
    with pytest.raises(ArgumentError, match=message) as caught:
        search.search_hyperparameters(out=tmp_path / "out", progress=False, **options)
    assert caught.value.arguments == ()
    assert not (tmp_path / "out").exists()
