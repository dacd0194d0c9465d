"""Trials on an existing Dask distributed cluster (the optional ``svmtrain[dask]`` extra).

Only configs and results travel: every worker process loads CIFAR-10 itself through
:func:`svmtrain.experiments.train.load_splits`, from the URL the client resolved and checked
against the digest of the archive the client loaded, into the worker's own cache directory
($SVMTRAIN_DATA_DIR in the worker's environment, else ~/.cache/svmtrain). It prepares the data
once per process and keeps them for its later trials. A worker process trains one trial at a
time, with the same BLAS threads as a local trial, so results do not depend on the executor.

Dask is imported when a :class:`DaskExecutor` is entered, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.metadata
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from svmtrain import __version__
from svmtrain.config import Config, config_to_dict
from svmtrain.data.cifar10 import resolve_source
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ClusterError
from svmtrain.experiments.common import load_splits
from svmtrain.experiments.search.results import CRASHED, TrialResult
from svmtrain.experiments.search.runner import (
    crashed_result,
    run_trial,
    shielded_from_interrupts,
)
from svmtrain.experiments.search.space import Trial
from svmtrain.fileio import read_json

ENV_SCHEDULER = "SVMTRAIN_SCHEDULER"
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
WORKERS_TIMEOUT = 30.0  # seconds to wait for the scheduler to have a worker
POLL_SECONDS = 1.0  # how often a search waiting for trials checks that workers are left
CLOSE_TIMEOUT = 5.0  # seconds to cancel the trials left and disconnect
STARTED = "svmtrain-trial-started"  # the event a worker logs as it starts a trial
INSTALL_HINT = "pip install 'svmtrain[dask]'"


class DaskExecutor:
    """Runs trials on the workers of the Dask scheduler at ``address`` (e.g.
    tcp://10.0.0.5:8786) or named in ``scheduler_file``; give exactly one.

    Entering reads the scheduler file (bounded JSON), exchanges Dask's handshake with the
    scheduler within ``connect_timeout`` seconds, waits up to ``workers_timeout`` seconds for
    a worker, and checks that the scheduler and every worker run this svmtrain version; each
    failure raises :class:`ClusterError`, as does a missing Dask. While trials run, a
    scheduler that goes away, or one left without a worker for ``workers_timeout`` seconds,
    raises ClusterError too. Leaving cancels the trials not yet finished (after Ctrl-C, say)
    and disconnects, within CLOSE_TIMEOUT seconds. Dask's own log lines are silenced inside.

    A trial whose worker dies while running it is run again on another worker (Dask retries it
    up to its ``distributed.scheduler.allowed-failures`` times) and its result says so
    (``retries``: the runs started beyond the first); one that kills every worker it runs on
    is recorded as CRASHED and the search goes on.
    """

    def __init__(
        self,
        address: str | None = None,
        scheduler_file: str | os.PathLike | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        workers_timeout: float = WORKERS_TIMEOUT,
    ) -> None:
        if (address is None) == (scheduler_file is None):
            raise ValueError("give exactly one of address and scheduler_file")
        self.address = address
        self.scheduler_file = scheduler_file
        self.connect_timeout = connect_timeout
        self.workers_timeout = workers_timeout
        self.client: Any = None
        self._outstanding: list[Any] = []
        self._log_levels: dict[str, int] = {}

    @property
    def where(self) -> str:
        """The scheduler, as the user named it."""
        if self.address is not None:
            return f"the Dask scheduler at {self.address}"
        return f"the Dask scheduler of {self.scheduler_file}"

    @property
    def jobs(self) -> int:
        """Worker threads the scheduler has now."""
        return sum(self.client.nthreads().values())

    def __enter__(self) -> DaskExecutor:
        try:
            from distributed import Client
        except ImportError:
            raise ClusterError(
                f"--scheduler needs Dask, which is not installed: {INSTALL_HINT}"
            ) from None
        # The search reports what goes wrong with the cluster itself, as one line; Dask's own
        # log lines (tracebacks of each failed reconnection) are for its developers.
        self._log_levels = _quiet_dask_logs()
        try:
            return self._connect(Client)
        except BaseException:
            _restore_levels(self._log_levels)
            raise

    def _connect(self, Client: Any) -> DaskExecutor:
        address = self.address if self.address is not None else self._address_in_file()
        self._reach(address)
        try:
            self.client = Client(address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise self._unreachable(err) from None
        try:
            self._check_cluster()
        except BaseException:
            self._close()
            raise
        return self

    def _address_in_file(self) -> str:
        """The address in the scheduler file, read as any JSON svmtrain reads back."""
        start = f"start the scheduler with: dask scheduler --scheduler-file {self.scheduler_file}"
        if not Path(self.scheduler_file).exists():
            raise ClusterError(f"The scheduler file {self.scheduler_file} does not exist; {start}")
        hint = f"Give the file `dask scheduler --scheduler-file` writes, or {start}."
        info = read_json(self.scheduler_file, "scheduler file", ClusterError, hint)
        address = info.get("address") if isinstance(info, dict) else None
        if not isinstance(address, str) or not address:
            raise ClusterError(
                f"The scheduler file {self.scheduler_file} names no scheduler address (its "
                f'"address" must be a string such as "tcp://10.0.0.5:8786"). {hint}'
            )
        return address

    def _reach(self, address: str) -> None:
        """Open a connection to ``address`` and exchange Dask's handshake, all within
        connect_timeout (Client alone waits for ever on a port that accepts TCP but never
        answers); ClusterError if that fails, before any Client exists."""
        from distributed.comm import connect

        async def handshake() -> None:
            comm = await connect(address, timeout=self.connect_timeout)
            await comm.close()

        try:
            asyncio.run(asyncio.wait_for(handshake(), self.connect_timeout))
        except (ValueError, TypeError) as err:
            raise ClusterError(
                f"{address!r} is not the address of a Dask scheduler ({err}); give "
                "tcp://HOST:PORT, as `dask scheduler` prints it."
            ) from None
        except (OSError, TimeoutError, asyncio.TimeoutError) as err:
            raise self._unreachable(err) from None

    def _unreachable(self, err: BaseException) -> ClusterError:
        why = str(err) or f"no answer: {type(err).__name__}"
        return ClusterError(
            f"Cannot reach {self.where} within {self.connect_timeout:g} s ({why}). Is "
            "`dask scheduler` running there, and is the address right (tcp://HOST:PORT)?"
        )

    def _check_cluster(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=self.workers_timeout)
        except TimeoutError:
            raise ClusterError(
                f"{self.where} has no workers after {self.workers_timeout:g} s; start some "
                f"with: dask worker {self.client.scheduler.address} --nthreads 1"
            ) from None
        problems = []
        version = __version__
        scheduler = self.client.run_on_scheduler(_svmtrain_version)
        if scheduler != version:
            problems.append(f"the scheduler {_has(scheduler)}")
        workers = self.client.run(_svmtrain_version, on_error="return")
        problems += [
            f"worker {w} {_has(v)}" for w, v in sorted(workers.items()) if v != __version__
        ]
        if problems:
            raise ClusterError(
                f"This client runs svmtrain {version}, but {'; '.join(problems)}. Install "
                f"the same svmtrain everywhere ({INSTALL_HINT}, or the same checkout)."
            )

    def __exit__(self, *exc: object) -> None:
        try:
            with shielded_from_interrupts():  # a second Ctrl-C must not cut the cleanup short
                self._close()
        finally:
            _restore_levels(self._log_levels)

    def _close(self) -> None:
        """Cancel the trials not yet finished and disconnect, within CLOSE_TIMEOUT seconds
        (a scheduler that has gone does not answer)."""
        if self.client is None:
            return
        try:
            if self._outstanding and self.client.status == "running":
                self.client.cancel(self._outstanding)
        except (OSError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(OSError, TimeoutError):
                self.client.close(timeout=CLOSE_TIMEOUT)
            self.client = None
            self._outstanding = []

    def run(self, trials: Sequence[Trial], splits: Splits) -> Iterator[TrialResult]:
        """The trials' results as they finish, in any order. ``splits``: the data the client
        loaded; workers load the same archive (its sha256) themselves.

        Raises ClusterError when the scheduler goes away, or when it has had no worker for
        workers_timeout seconds while trials wait (every worker died)."""
        batch = uuid.uuid4().hex[:8]
        finished: queue.Queue = queue.Queue()
        futures = {}
        for trial in trials:
            future = self.client.submit(
                run_remote_trial,
                for_workers(trial, splits),
                key=f"svmtrain-{batch}-trial-{trial.number}-rung-{trial.rung}",
                pure=False,
            )
            futures[future] = trial
            future.add_done_callback(finished.put)  # also once cancelled (the scheduler gone)
        self._outstanding = list(futures)
        alone_since: float | None = None
        for _ in range(len(futures)):
            while True:
                try:
                    future = finished.get(timeout=POLL_SECONDS)
                    break
                except queue.Empty:
                    alone_since = self._check_workers(alone_since)
            alone_since = None
            yield self._result(future, futures[future])
            self._outstanding.remove(future)

    def _check_workers(self, alone_since: float | None) -> float | None:
        """While trials wait: when the scheduler first had no worker (None if it has one).
        Raises ClusterError once it has had none for workers_timeout seconds, or is gone."""
        try:
            workers = len(self.client.nthreads())
        except (OSError, TimeoutError, CancelledError) as err:
            raise self._lost(err) from None
        if workers:
            return None
        now = time.monotonic()
        if alone_since is None:
            return now
        if now - alone_since >= self.workers_timeout:
            raise ClusterError(
                f"Every worker of {self.where} has gone (none for {self.workers_timeout:g} s) "
                "and trials are waiting; start workers with: dask worker "
                f"{self.client.scheduler.address} --nthreads 1, then search again."
            )
        return alone_since

    def _lost(self, err: BaseException) -> ClusterError:
        return ClusterError(
            f"Lost the connection to {self.where} ({type(err).__name__}: {err}); the scheduler "
            "stopped or the network failed."
        )

    def _result(self, future: Any, trial: Trial) -> TrialResult:
        """The finished ``future``'s result: CRASHED if every worker that ran it died, with
        the runs it had to make again noted."""
        from distributed import KilledWorker

        try:
            result = future.result()
        except KilledWorker as err:
            return crashed_result(trial, f"every worker that ran it died ({err})")
        except CancelledError as err:
            raise self._lost(err) from None
        except ImportError as err:
            raise ClusterError(
                f"A worker of {self.where} cannot run svmtrain ({err}); install svmtrain "
                f"on every worker ({INSTALL_HINT})."
            ) from None
        again = self._runs_of(future.key) - 1
        if again > 0 and result.status != CRASHED:
            note = f"ran again after its worker died ({again}x)"
            message = f"{result.message}; {note}" if result.message else note
            result = dataclasses.replace(result, retries=again, message=message)
        return result

    def _runs_of(self, key: str) -> int:
        """How many times a worker started the task ``key`` (each start logs an event; a task
        only queued on a worker that died was never started there)."""
        try:
            events = self.client.get_events(STARTED)
        except (OSError, TimeoutError):
            return 1
        return sum(1 for _, event in events if event == key)


def _quiet_dask_logs() -> dict[str, int]:
    """Set Dask's loggers (each of "distributed" and below has its own level) to CRITICAL;
    returns their levels before, for :func:`_restore_levels`."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]
    levels = {name: logging.getLogger(name).level for name in ["distributed", *names]}
    for name in levels:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return levels


def _restore_levels(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def for_workers(trial: Trial, splits: Splits) -> Trial:
    """``trial`` as it travels: its data section names the URL the client resolved and the
    sha256 of the archive the client loaded, and no cache directory (workers use their own)."""
    data = trial.config.data
    source = resolve_source(data.url, data.sha256, data.md5)
    pinned = dataclasses.replace(
        data, dir=None, url=source.url, sha256=splits.data_sha256 or source.sha256, md5=source.md5
    )
    config = dataclasses.replace(trial.config, data=pinned)
    return dataclasses.replace(trial, config=config, full_config=config)


# --- On the workers -----------------------------------------------------------------------

_one_trial_at_a_time = threading.Lock()  # BLAS threads are per process, and so is the cache
_prepared: dict[str, Splits] = {}  # the data this process prepared, by data/preprocess config


def run_remote_trial(trial: Trial) -> TrialResult:
    """On a worker: :func:`run_trial` on this process's prepared data (loaded on first use),
    once it has logged that it started (see :meth:`DaskExecutor._runs_of`)."""
    from distributed import get_worker

    with _one_trial_at_a_time:
        worker = get_worker()
        worker.log_event(STARTED, worker.get_current_task())
        return run_trial(trial, prepared_splits(trial.config))


def prepared_splits(cfg: Config) -> Splits:
    """The splits ``cfg``'s data and preprocess sections make, loaded once per process; a
    different data/preprocess config replaces them (one dataset is kept in memory)."""
    sections = config_to_dict(cfg)
    key = json.dumps({k: sections[k] for k in ("data", "preprocess")}, sort_keys=True)
    if key not in _prepared:
        _prepared.clear()
        _prepared[key] = load_splits(cfg, progress=False)
    return _prepared[key]


def _svmtrain_version() -> str | None:
    """The svmtrain version installed where this runs; None if there is none."""
    try:
        return importlib.metadata.version("svmtrain")
    except importlib.metadata.PackageNotFoundError:
        return None


def _has(version: Any) -> str:
    if isinstance(version, BaseException):
        return f"cannot run svmtrain ({type(version).__name__}: {version})"
    return "has no svmtrain installed" if version is None else f"runs svmtrain {version}"
