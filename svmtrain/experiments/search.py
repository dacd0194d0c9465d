"""Hyperparameter search: short training runs over a grid or random samples, ranked by
validation accuracy (never test).

A trial is the base config with some keys set, e.g. optim.learning_rate=1e-6 and
model.reg=2.5e4. It trains with :func:`svmtrain.experiments.train.train` in memory (no run
directory) and is judged by the validation accuracy of the weights training keeps.

Parallelism: trials run in worker processes forked after the data are loaded, so every worker
reads the parent's preprocessed arrays copy-on-write (nothing is copied or pickled). Every trial
is seeded from its own config's train.seed, never from the worker that runs it, and every trial
uses the same number of BLAS threads, so the results do not depend on the number of workers.

Results are rewritten after every finished trial (results.csv, results.json, best.yaml), so an
interrupted search keeps what it finished.
"""

from __future__ import annotations

import ctypes
import difflib
import itertools
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_type_hints

import numpy as np
from tqdm.auto import tqdm

from svmtrain.config import Config, config_to_dict, load_config, save_config
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ConfigError, DivergenceError, Interrupted, SvmtrainError
from svmtrain.experiments._blas import limited_threads
from svmtrain.experiments.train import init_state, plan, train
from svmtrain.io import runs
from svmtrain.io.records import write_csv, write_json

LR, REG = "optim.learning_rate", "model.reg"
RESULTS_CSV, RESULTS_JSON, BEST_YAML = "results.csv", "results.json", "best.yaml"
OK, DIVERGED, CRASHED = "ok", "diverged", "crashed"

# Keys a --epochs override would fight with.
_LENGTH_KEYS = ("train.epochs", "train.iterations")
# Sections a trial cannot change: the data are prepared once, and trials write no run directory.
_DATA_SECTIONS = ("data", "preprocess", "output")
_DEFAULTS = config_to_dict(Config())
_SIGNIFICANT = 3  # digits kept of a randomly sampled value: enough to tell trials apart
# BLAS threads of every trial, whatever --jobs is, so that nothing a trial computes depends on
# the thread count, which changes how a BLAS splits its sums and so the rounding. train() runs
# its SGD steps on one thread already (experiments._blas says why); this covers the accuracy
# predictions too. Measured before train() did so: 2 threads per worker gave other val
# accuracies than 1, and two such workers on two busy cores took 4-7x longer.
BLAS_THREADS = 1


# ---------------------------------------------------------------------------------------------
# What to search


@dataclass(frozen=True)
class Axis:
    """One searched config key: listed values, or a log-uniform range (random samples only).

    ``values`` are kept as written and read like ``--set`` values (YAML), so "1e-6" is a float
    and "null" is None; the config's own rules check them.
    """

    key: str  # "section.key"
    values: tuple[str, ...] = ()
    low: float | None = None  # a range: LOW:HIGH, 0 < LOW < HIGH
    high: float | None = None

    @property
    def is_range(self) -> bool:
        return self.low is not None


def parse_axis(key: str, spec: str, option: str, given: str | None = None) -> Axis:
    """The axis ``option`` describes for config ``key``: "V1,V2,..." or "LOW:HIGH".

    ``option`` (e.g. "--lr" or "--grid") and ``given``, the option's value as written
    [default: spec], name the source in messages. A range is two numbers separated by ':',
    both > 0, for an int or float key. Raises ValueError on anything else.
    """
    kind = _key_type(key, option)
    where = f"{option} {spec if given is None else given!r}"
    bounds = _as_range(spec)
    if bounds is not None:
        low, high = bounds
        if kind not in (int, float):
            raise ValueError(
                f"{where}: {key} is not a number, so it cannot be a range; list values."
            )
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
            raise ValueError(
                f"{where}: a range LOW:HIGH needs finite 0 < LOW < HIGH (it is sampled "
                "log-uniformly), e.g. 1e-7:1e-5."
            )
        return Axis(key, low=low, high=high)
    values = tuple(v.strip() for v in spec.split(","))
    if any(v == "" for v in values):
        raise ValueError(
            f"{where} has an empty value; separate values with commas, e.g. 1e-7,1e-6."
        )
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{where} lists {repeated[0]} twice; list each value once.")
    return Axis(key, values=values)


def parse_grid_option(text: str) -> Axis:
    """``--grid KEY=V1,V2,...`` (or KEY=LOW:HIGH with --random) as an :class:`Axis`."""
    key, sep, spec = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(
            f"--grid {text!r}: expected KEY=V1,V2,..., e.g. --grid train.batch_size=128,256."
        )
    return parse_axis(key.strip(), spec, "--grid", given=text)


def _as_range(spec: str) -> tuple[float, float] | None:
    """(low, high) if spec is "LOW:HIGH" with two numbers; None for a list of values."""
    parts = spec.split(":")
    if len(parts) != 2 or "," in spec:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def _key_type(key: str, option: str) -> type:
    """The type (int, float, bool, str) of config key "section.key"; ValueError if no such key."""
    section, _, name = key.partition(".")
    if section not in _DEFAULTS:
        close = difflib.get_close_matches(section, list(_DEFAULTS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the sections: {', '.join(_DEFAULTS)}."
        raise ValueError(f"{option}: {key!r} is not a config key (section.key); {hint}")
    if name not in _DEFAULTS[section]:
        close = difflib.get_close_matches(name, list(_DEFAULTS[section]), n=1)
        hint = (
            f"did you mean '{section}.{close[0]}'?"
            if close
            else f"the keys of {section}: {', '.join(_DEFAULTS[section])}."
        )
        raise ValueError(f"{option}: {key!r} is not a config key; {hint}")
    hint = get_type_hints(type(getattr(Config(), section)))[name]
    return next(t for t in (get_args(hint) or (hint,)) if t is not type(None))


def check_axes(axes: Sequence[Axis], *, random: bool, epochs: int | None) -> None:
    """Reject a search that cannot run: no axes, a key twice, a range in a grid, random
    samples without a range (they would repeat grid points), --epochs together with a
    searched train.epochs or train.iterations. Raises ValueError."""
    if not axes:
        raise ValueError(
            "Nothing to search: give --lr, --reg or --grid KEY=V1,V2,..., "
            "e.g. --lr 1e-7,1e-6 --reg 2.5e4,5e4."
        )
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"{key} is searched twice (--lr/--reg/--grid); give it once.")
    ranges = [a.key for a in axes if a.is_range]
    if ranges and not random:
        raise ValueError(
            f"{ranges[0]} is given a range LOW:HIGH, which only --random N samples; "
            "for a grid, list values, e.g. --lr 1e-7,1e-6."
        )
    if random and not ranges:
        combos = math.prod(len(a.values) for a in axes)
        raise ValueError(
            f"--random samples ranges LOW:HIGH, but every searched key lists its values, so "
            f"samples would repeat the same {combos} combinations. Drop --random to try each "
            "once, or give a range, e.g. --lr 1e-7:1e-5."
        )
    fixed = [k for k in keys if k.partition(".")[0] in _DATA_SECTIONS]
    if fixed:
        raise ValueError(
            f"{fixed[0]} cannot be searched: the data are loaded and preprocessed once for all "
            f"trials. Run one search per value instead, e.g. --set {fixed[0]}=..."
        )
    clash = [k for k in keys if k in _LENGTH_KEYS]
    if clash and epochs is not None:
        raise ValueError(
            f"--epochs sets the length of every trial; drop it or stop searching {clash[0]}."
        )


def grid_settings(axes: Sequence[Axis]) -> list[dict[str, str]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    combos = itertools.product(*(a.values for a in axes))
    return [dict(zip((a.key for a in axes), combo, strict=True)) for combo in combos]


def random_settings(axes: Sequence[Axis], count: int, seed: int) -> list[dict[str, str]]:
    """``count`` samples: ranges log-uniform (rounded to 3 significant digits, ints to ints),
    listed values uniformly. The same seed gives the same samples."""
    rng = np.random.default_rng(seed)
    integral = {a.key: _key_type(a.key, "--random") is int for a in axes}
    samples = []
    for _ in range(count):
        sample = {}
        for a in axes:
            if a.is_range:
                value = 10.0 ** rng.uniform(math.log10(a.low), math.log10(a.high))
                sample[a.key] = (
                    str(round(value)) if integral[a.key] else f"{value:.{_SIGNIFICANT}g}"
                )
            else:
                sample[a.key] = a.values[int(rng.integers(len(a.values)))]
        samples.append(sample)
    return samples


@dataclass(frozen=True)
class Trial:
    """One short run: the searched keys' values, and the configs they make."""

    number: int  # 1-based, in the order the trials were generated
    settings: dict[str, str]  # searched key -> value as written
    config: Config  # what the trial trains: base config + settings (+ the --epochs override)
    full_config: Config  # base config + settings: best.yaml, should this trial win


def make_trials(
    config_path: str | os.PathLike | None,
    overrides: Sequence[str],
    settings: Sequence[dict[str, str]],
    epochs: int | None = None,
) -> list[Trial]:
    """Each trial's configs, every one loaded and validated as ``fit --config --set`` would.

    ``epochs``: train every trial for this many epochs (train.iterations cleared); the full
    config keeps the base config's length. Raises ConfigError naming the trial at fault.
    """
    length = [] if epochs is None else [f"train.epochs={epochs}", "train.iterations=null"]
    trials = []
    for number, setting in enumerate(settings, 1):
        items = [f"{key}={value}" for key, value in setting.items()]
        try:
            config = load_config(config_path, [*overrides, *length, *items])
            full = load_config(config_path, [*overrides, *items])
        except ConfigError as err:
            raise ConfigError(f"Trial {number} ({', '.join(items)}): {err}") from None
        trials.append(Trial(number, dict(setting), config, full))
    return trials


# ---------------------------------------------------------------------------------------------
# Running trials


@dataclass(frozen=True)
class TrialResult:
    """What one trial gave. Accuracies are on the train sample and the validation split."""

    number: int
    settings: dict[str, Any]  # searched key -> its value as the config holds it
    learning_rate: float
    reg: float
    status: str  # OK, DIVERGED, or CRASHED (its worker died)
    final_loss: float | None  # mean minibatch loss of the last epoch; None unless OK
    train_acc: float | None  # of the kept weights (the best epoch's with early stopping)
    val_acc: float | None
    epochs: int  # epochs finished
    seconds: float  # wall time, the only field that depends on the machine and --jobs
    message: str = ""  # why it diverged or crashed


def config_value(cfg: Config, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(cfg, section), name)


def run_trial(trial: Trial, splits: Splits) -> TrialResult:
    """Train ``trial.config`` from its seed on ``splits`` (in memory) and measure it, with
    BLAS_THREADS BLAS threads. A trial that diverges is a result with status DIVERGED."""
    with limited_threads(BLAS_THREADS):
        return _run_trial(trial, splits)


def _identity(trial: Trial) -> dict[str, Any]:
    """The fields of a trial's result that say which trial it is."""
    cfg = trial.config
    return {
        "number": trial.number,
        "settings": {key: config_value(cfg, key) for key in trial.settings},
        "learning_rate": cfg.optim.learning_rate,
        "reg": cfg.model.reg,
    }


def _run_trial(trial: Trial, splits: Splits) -> TrialResult:
    cfg = trial.config
    started = time.perf_counter()
    state = init_state(cfg, len(splits.class_names), splits.X_train.shape[1])
    record = _identity(trial)
    try:
        train(cfg, splits, state, progress=False)
    except DivergenceError as err:
        return TrialResult(
            **record,
            status=DIVERGED,
            final_loss=None,
            train_acc=None,
            val_acc=None,
            epochs=state.epoch,
            seconds=time.perf_counter() - started,
            message=str(err),
        )
    # The weights training keeps (see train.final_weights) are those of this epoch.
    kept = state.metrics[state.best_epoch - 1 if cfg.train.early_stopping else -1]
    return TrialResult(
        **record,
        status=OK,
        final_loss=state.metrics[-1]["loss"],
        train_acc=kept["train_acc"],
        val_acc=kept["val_acc"],
        epochs=state.epoch,
        seconds=time.perf_counter() - started,
    )


def can_fork() -> bool:
    """Whether workers can share the parent's arrays copy-on-write (fork on Linux)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def effective_jobs(jobs: int, num_trials: int) -> int:
    """Workers actually used: no more than trials, and 1 where fork is unavailable."""
    return max(1, min(jobs, num_trials)) if can_fork() else 1


@contextmanager
def trial_runner(
    trials: Sequence[Trial], splits: Splits, jobs: int
) -> Iterator[Iterator[TrialResult]]:
    """Context giving an iterator over the trials' results as they finish (in any order).

    The trials run in :func:`effective_jobs` worker processes, forked on entry (before the
    caller starts a thread, such as a progress bar's monitor, whose locks a fork would copy
    held). Workers ignore Ctrl-C and die with this process (Linux): the parent gets the
    KeyboardInterrupt, and leaving the context by any exception kills them. A worker's
    exception other than divergence is re-raised in the parent; a worker that dies (the OOM
    killer, kill -9) makes the iterator raise :class:`WorkerDied`. Where fork is unavailable
    the trials run one by one in this process.
    """
    if not can_fork():
        yield (run_trial(trial, splits) for trial in trials)
        return
    global _shared_splits, _running
    _shared_splits = splits  # inherited by the forked workers, never pickled
    # _running[i]: pid of the worker running trials[i], 0 when none is; shared with workers.
    _running = multiprocessing.RawArray("q", len(trials))
    executor = ProcessPoolExecutor(
        effective_jobs(jobs, len(trials)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    workers: list[multiprocessing.process.BaseProcess] = []
    try:
        futures = {executor.submit(_run_in_worker, i, t): t for i, t in enumerate(trials)}
        # With fork, every worker is started by the first submit; keep them to kill and to
        # read their exit codes (the executor has no public handle on its processes).
        workers = list(executor._processes.values())
        yield _results(executor, futures, workers, trials)
    except BaseException:
        for worker in workers:  # a trial may run for minutes: do not wait for it
            worker.kill()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        _shared_splits = _running = None


def _results(
    executor: ProcessPoolExecutor,
    futures: dict[Future, Trial],
    workers: list[multiprocessing.process.BaseProcess],
    trials: Sequence[Trial],
) -> Iterator[TrialResult]:
    done: set[int] = set()
    for future in as_completed(futures):
        try:
            result = future.result()
        except BrokenProcessPool:
            executor.shutdown(wait=True)  # the executor has stopped and reaped every worker
            raise _worker_died(workers, trials, done) from None
        done.add(result.number)
        yield result


def _worker_died(
    workers: Sequence[multiprocessing.process.BaseProcess],
    trials: Sequence[Trial],
    done: set[int],
) -> WorkerDied:
    """Which worker died first, and the trial it was running. The executor stops the others
    with SIGTERM once one dies, so the one that died of something else is the culprit."""
    codes = {w.pid: w.exitcode for w in workers}
    culprits = [pid for pid, code in codes.items() if code != -signal.SIGTERM] or list(codes)
    slots = zip(_running, trials, strict=True)
    running = {pid: t.number for pid, t in slots if pid and t.number not in done}
    pid = next((p for p in culprits if p in running), culprits[0])
    return WorkerDied(running.get(pid), codes[pid])


class WorkerDied(Exception):
    """A worker process died while trials ran: killed by a signal or exited by itself."""

    def __init__(self, trial: int | None, exitcode: int | None) -> None:
        self.trial = trial  # the trial it was running, None if it was between trials
        self.exitcode = exitcode  # negative: the signal that killed it
        if exitcode is not None and exitcode < 0:
            name = _signal_name(-exitcode)
            how = f"killed by signal {-exitcode}" + (f", {name}" if name else "")
            if exitcode == -signal.SIGKILL:
                how += "; out of memory?"
        else:
            how = f"exit code {exitcode}"
        whose = f"the worker for trial {trial}" if trial is not None else "a worker"
        super().__init__(f"{whose} died ({how})")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return ""


_shared_splits: Splits | None = None
_running: Any = None


def _init_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group; only the parent handles it, and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent turns these into Ctrl-C while it searches; a worker just dies of them, quietly.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    _die_with(parent)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (Linux), so that no worker
    trains on, orphaned, after its parent was killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux's libc: the parent's cleanup has to do
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _run_in_worker(slot: int, trial: Trial) -> TrialResult:
    assert _shared_splits is not None, "trial_runner sets the shared splits before forking"
    _running[slot] = os.getpid()
    result = run_trial(trial, _shared_splits)
    _running[slot] = 0
    return result


# ---------------------------------------------------------------------------------------------
# Ranking and results


def rank(results: Sequence[TrialResult]) -> list[TrialResult]:
    """Highest validation accuracy first; diverged and crashed trials last; ties by trial
    number."""
    return sorted(
        results,
        key=lambda r: (r.status != OK, -(r.val_acc if r.val_acc is not None else 0.0), r.number),
    )


def result_records(ranked: Sequence[TrialResult]) -> list[dict]:
    """One flat dict per trial, in rank order, with its rank (1 = best)."""
    return [
        {
            "rank": position,
            "trial": r.number,
            "settings": r.settings,
            "learning_rate": r.learning_rate,
            "reg": r.reg,
            "status": r.status,
            "final_loss": r.final_loss,
            "train_acc": r.train_acc,
            "val_acc": r.val_acc,
            "epochs": r.epochs,
            "seconds": round(r.seconds, 3),
            "message": r.message,
        }
        for position, r in enumerate(ranked, 1)
    ]


def best_trial(ranked: Sequence[TrialResult], trials: Sequence[Trial]) -> Trial | None:
    """The trial ranked first, if it did not diverge."""
    if not ranked or ranked[0].status != OK:
        return None
    return next(t for t in trials if t.number == ranked[0].number)


@dataclass
class Search:
    """A search in progress or done: its trials, what finished, where the results go."""

    trials: list[Trial]
    axes: list[Axis]
    out_dir: Path
    jobs: int
    epochs: int | None  # the --epochs override, if any
    results: list[TrialResult] = field(default_factory=list)
    interrupted: bool = False

    def document(self) -> dict:
        """results.json: the search, the best trial and every result, ranked."""
        records = result_records(rank(self.results))
        best = records[0] if records and records[0]["status"] == OK else None
        return {
            "selected_by": "val_acc",
            "searched": [a.key for a in self.axes],
            "epochs_per_trial": self.epochs,
            "trials": len(self.trials),
            "finished": sum(r.status != CRASHED for r in self.results),
            "interrupted": self.interrupted,
            "jobs": self.jobs,
            "best": best,
            "best_config": str(self.out_dir / BEST_YAML) if best else None,
            "results": records,
        }

    def write(self) -> None:
        """Rewrite results.csv, results.json and best.yaml (once a trial succeeded), atomically."""
        ranked = rank(self.results)
        records = result_records(ranked)
        keys = [a.key for a in self.axes if a.key not in (LR, REG)]
        columns = ["rank", "trial", "learning_rate", "reg", *keys]
        columns += ["final_loss", "train_acc", "val_acc", "epochs", "seconds", "status", "message"]
        rows = [{**r, **{k: r["settings"][k] for k in keys}} for r in records]
        write_csv(self.out_dir / RESULTS_CSV, columns, rows)
        write_json(self.out_dir / RESULTS_JSON, self.document())
        best = best_trial(ranked, self.trials)
        if best is not None:
            save_config(best.full_config, self.out_dir / BEST_YAML)


def new_search_dir(cfg: Config, out: str | os.PathLike | None) -> Path:
    """``out``, or ``<output.dir>/<timestamp>-search``, created. Refuses a directory with a
    search's results, unless that search finished no trial (interrupted at once): it is
    overwritten."""
    path = Path(out) if out is not None else runs.default_dir(cfg, "search")
    if (path / RESULTS_JSON).exists() and _finished_trials(path / RESULTS_JSON) != 0:
        raise SvmtrainError(f"{path} already holds a search's results; choose another --out.")
    runs.create_run_dir(path)
    return path


def _finished_trials(results_json: Path) -> int | None:
    """How many trials results.json says finished; None if it cannot be read as ours."""
    try:
        finished = json.loads(results_json.read_text())["finished"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return finished if isinstance(finished, int) else None


def run_search(search: Search, splits: Splits, *, progress: bool = True) -> Search:
    """Run every trial of ``search``, writing the results after each; returns ``search``.

    Ctrl-C, SIGTERM and SIGHUP stop the workers, keep the finished trials' results on disk
    and raise :class:`Interrupted`. A worker that dies (the OOM killer, kill -9) stops the
    search: its trial is recorded as CRASHED, the results are written, and SvmtrainError says
    which trial and why.
    """
    check_trials(search.trials, len(splits.y_train))
    try:
        with (
            _termination_as_interrupt(),
            trial_runner(search.trials, splits, search.jobs) as finished,
            tqdm(
                total=len(search.trials), unit="trial", disable=not progress, dynamic_ncols=True
            ) as bar,
        ):
            for result in finished:
                search.results.append(result)
                search.write()
                bar.update(1)
                top = rank(search.results)[0]
                if top.val_acc is not None:
                    bar.set_postfix(best_val_acc=f"{top.val_acc:.3f}")
    except KeyboardInterrupt:
        search.interrupted = True
        search.write()
        raise Interrupted(
            f"Interrupted after {len(search.results)} of {len(search.trials)} trials; their "
            f"results are in {search.out_dir}."
        ) from None
    except WorkerDied as died:
        if died.trial is not None:
            search.results.append(_crashed(search.trials, died))
        search.write()
        finished = search.document()["finished"]
        raise SvmtrainError(
            f"The search stopped: {died}. {finished} of {len(search.trials)} trials finished; "
            f"their results are in {search.out_dir}."
        ) from None
    return search


def _crashed(trials: Sequence[Trial], died: WorkerDied) -> TrialResult:
    trial = next(t for t in trials if t.number == died.trial)
    return TrialResult(
        **_identity(trial),
        status=CRASHED,
        final_loss=None,
        train_acc=None,
        val_acc=None,
        epochs=0,
        seconds=0.0,
        message=str(died),
    )


@contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise KeyboardInterrupt as Ctrl-C does, so that a search
    stopped by them also stops its workers and records that it was interrupted. Only the
    main thread can set signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def check_trials(trials: Sequence[Trial], num_train: int) -> None:
    """Reject, before any training, a trial whose batch does not fit the training split."""
    for trial in trials:
        try:
            plan(trial.config, num_train)
        except ConfigError as err:
            raise ConfigError(f"Trial {trial.number}: {err}") from None
