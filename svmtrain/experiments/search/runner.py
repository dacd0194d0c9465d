"""Running trials: each trains with :func:`svmtrain.experiments.train.train` in memory (no run
directory) and is judged by the validation accuracy of the weights training keeps.

Parallelism: trials run in worker processes forked after the data are loaded, so every worker
reads the parent's preprocessed arrays copy-on-write (nothing is copied or pickled). Every trial
is seeded from its own config's train.seed, never from the worker that runs it, and every trial
uses the same number of BLAS threads, so the results do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from tqdm.auto import tqdm

from svmtrain.config import Config
from svmtrain.core.blas import limited_threads
from svmtrain.data.preprocess import Splits
from svmtrain.errors import (
    DivergenceError,
    Interrupted,
    SigTerm,
    SvmtrainError,
    Terminated,
    WorkerDied,
)
from svmtrain.experiments.common import sigterm_as_interrupt
from svmtrain.experiments.search.results import CRASHED, DIVERGED, OK, Search, TrialResult, rank
from svmtrain.experiments.search.space import Trial, check_trials, for_rung
from svmtrain.experiments.train import init_state, train
from svmtrain.io.runs import create_run_dir

# BLAS threads of every trial, whatever --jobs is, so that nothing a trial computes depends on
# the thread count, which changes how a BLAS splits its sums and so the rounding. train() runs
# its SGD steps on one thread already (core.blas says why); this covers the accuracy
# predictions too (docs/benchmarks.md, "Search", has the measurements).
BLAS_THREADS = 1


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
        "rung": trial.rung,
    }


def _run_trial(trial: Trial, splits: Splits) -> TrialResult:
    cfg = trial.config
    started = time.perf_counter()
    state = init_state(cfg, len(splits.class_names), splits.num_features)
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


class Executor(Protocol):
    """Where trials run. Entered (``with``) once for a whole search; :meth:`run` may then be
    called several times (successive halving runs one batch of trials per rung)."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, trials: Sequence[Trial], splits: Splits) -> Iterator[TrialResult]:
        """The trials' results as they finish, in any order. ``splits``: the data the search
        loaded (an executor whose workers load their own uses it to check theirs)."""
        ...


class LocalPool:
    """The embedded executor: :func:`effective_jobs` worker processes on this machine.

    The workers are forked on entry, after the data are loaded (so they read the parent's
    arrays copy-on-write) and before the caller starts a thread, such as a progress bar's
    monitor, whose locks a fork would copy held. Workers ignore Ctrl-C and die with this
    process (Linux): the parent gets the KeyboardInterrupt, and leaving the context by any
    exception kills them. A worker's exception other than divergence is re-raised in the
    parent; a worker that dies (the OOM killer, kill -9) makes :meth:`run` raise
    :class:`WorkerDied`. Where fork is unavailable the trials run one by one in this process.

    ``num_trials``: the highest trial number that :meth:`run` will be given.
    """

    def __init__(self, splits: Splits, jobs: int, num_trials: int) -> None:
        self.splits = splits
        self.jobs = effective_jobs(jobs, num_trials)
        self._num_trials = num_trials
        self._executor: ProcessPoolExecutor | None = None
        self._workers: list[multiprocessing.process.BaseProcess] = []

    def __enter__(self) -> LocalPool:
        if not can_fork():
            return self
        global _shared_splits, _running
        _shared_splits = self.splits  # inherited by the forked workers, never pickled
        # _running[n - 1]: pid of the worker running trial n, 0 when none is; shared with workers.
        _running = multiprocessing.RawArray("q", self._num_trials)
        self._executor = ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )
        # With fork, the first submit starts every worker; keep them to kill and to read their
        # exit codes (the executor has no public handle on its processes).
        self._executor.submit(int).result()
        self._workers = list(self._executor._processes.values())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        global _shared_splits, _running
        if self._executor is None:
            return
        if exc_type is not None:
            for worker in self._workers:  # a trial may run for minutes: do not wait for it
                worker.kill()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None
        _shared_splits = _running = None

    def run(self, trials: Sequence[Trial], splits: Splits) -> Iterator[TrialResult]:
        """The trials' results as they finish, in any order, on the splits given on creation
        (the workers hold them already); raises :class:`WorkerDied`."""
        if self._executor is None:
            yield from (run_trial(trial, self.splits) for trial in trials)
            return
        futures = [self._executor.submit(_run_in_worker, trial) for trial in trials]
        done: set[int] = set()
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                self._executor.shutdown(wait=True)  # it has stopped and reaped every worker
                raise _worker_died(self._workers, done) from None
            done.add(result.number)
            yield result


def _worker_died(
    workers: Sequence[multiprocessing.process.BaseProcess], done: set[int]
) -> WorkerDied:
    """Which worker died first, and the trial it was running. The executor stops the others
    with SIGTERM once one dies, so the one that died of something else is the culprit."""
    codes = {w.pid: w.exitcode for w in workers}
    culprits = [pid for pid, code in codes.items() if code != -signal.SIGTERM] or list(codes)
    running = {pid: n for n, pid in enumerate(_running, 1) if pid and n not in done}
    pid = next((p for p in culprits if p in running), culprits[0])
    return WorkerDied(running.get(pid), codes[pid])


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


def _run_in_worker(trial: Trial) -> TrialResult:
    assert _shared_splits is not None, "LocalPool sets the shared splits before forking"
    _running[trial.number - 1] = os.getpid()
    result = run_trial(trial, _shared_splits)
    _running[trial.number - 1] = 0
    return result


def run_search(
    search: Search,
    splits: Splits,
    *,
    executor: Executor | None = None,
    progress: bool = True,
) -> Search:
    """Run every trial of ``search`` (rung by rung with successive halving), writing the
    results after each into ``search.out_dir``; returns ``search``.

    First checks that every trial's batch fits the training split (ConfigError naming the
    trial), and only then creates ``search.out_dir``.

    ``executor``: where the trials run, already entered [default: a :class:`LocalPool` of
    ``search.jobs`` workers, entered and left here]. With ``search.halving``, each rung's best
    1/reduction_factor by validation accuracy (ties: the lower trial number; diverged trials
    never) run in the next rung. Ctrl-C, SIGTERM and SIGHUP stop the trials, keep the
    finished trials' results on disk and raise :class:`Interrupted`. A local worker that dies
    (the OOM killer, kill -9) stops the search: its trial is recorded as CRASHED, the results
    are written, and SvmtrainError says which trial and why.
    """
    check_trials(search.trials, len(splits.y_train))
    create_run_dir(search.out_dir)
    rungs = search.rung_epochs()
    planned = search.planned_runs()
    own = executor is None
    if executor is None:
        executor = LocalPool(splits, search.jobs, len(search.trials))
    batch = search.trials
    try:
        with (
            sigterm_as_interrupt(),
            executor if own else contextlib.nullcontext(),
            tqdm(total=planned, unit="trial", disable=not progress, dynamic_ncols=True) as bar,
        ):
            for rung, epochs in enumerate(rungs):
                if epochs is not None:
                    batch = [for_rung(trial, rung, epochs) for trial in batch]
                finished = []
                for result in executor.run(batch, splits):
                    finished.append(result)
                    search.record(result)
                    search.write()
                    bar.update(1)
                    top = rank(search.results)[0]
                    if top.val_acc is not None:
                        bar.set_postfix(best_val_acc=f"{top.val_acc:.3f}")
                if search.halving is not None:
                    keep = search.halving.survivors(len(batch))
                    best = [r.number for r in rank(finished) if r.status == OK][:keep]
                    batch = [trial for trial in search.trials if trial.number in best]
    except KeyboardInterrupt as stop:
        search.interrupted = True
        search.write()
        runs = "trials" if search.halving is None else "trial runs"
        kept = f"after {search.runs} of {planned} {runs}; their results are in {search.out_dir}."
        # SIGTERM and SIGHUP end as they end fit: their own word and exit code (143, 129)
        if isinstance(stop, SigTerm):
            raise Terminated(f"Stopped by {stop.name} {kept}", stop.signum) from None
        raise Interrupted(f"Interrupted {kept}") from None
    except WorkerDied as died:
        if died.trial is not None:
            trial = next(t for t in batch if t.number == died.trial)
            search.record(crashed_result(trial, str(died)))
        search.write()
        finished = search.document()["finished"]
        raise SvmtrainError(
            f"The search stopped: {died}. {finished} of {len(search.trials)} trials finished; "
            f"their results are in {search.out_dir}."
        ) from None
    return search


def crashed_result(trial: Trial, message: str) -> TrialResult:
    """The result of a trial whose worker died: status CRASHED, ``message`` saying how."""
    return TrialResult(
        **_identity(trial),
        status=CRASHED,
        final_loss=None,
        train_acc=None,
        val_acc=None,
        epochs=0,
        seconds=0.0,
        message=message,
    )
