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

import dataclasses
import importlib.metadata
import json
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from svmtrain import __version__
from svmtrain.config import Config, config_to_dict
from svmtrain.data.cifar10 import resolve_source
from svmtrain.data.preprocess import Splits
from svmtrain.errors import ClusterError
from svmtrain.experiments.common import load_splits
from svmtrain.experiments.search.results import CRASHED, TrialResult
from svmtrain.experiments.search.runner import crashed_result, run_trial
from svmtrain.experiments.search.space import Trial

ENV_SCHEDULER = "SVMTRAIN_SCHEDULER"
CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
WORKERS_TIMEOUT = 30.0  # seconds to wait for the scheduler to have a worker
INSTALL_HINT = "pip install 'svmtrain[dask]'"


class DaskExecutor:
    """Runs trials on the workers of the Dask scheduler at ``address`` (e.g.
    tcp://10.0.0.5:8786) or named in ``scheduler_file``; give exactly one.

    Entering connects (within ``connect_timeout`` seconds), waits up to ``workers_timeout``
    seconds for a worker, and checks that the scheduler and every worker run this svmtrain
    version; each failure raises :class:`ClusterError`, as does a missing Dask. Leaving
    cancels the trials not yet finished (after Ctrl-C, say) and disconnects.

    A trial whose worker dies is run again on another worker (Dask retries it up to its
    ``distributed.scheduler.allowed-failures`` times) and its result says so (``retries``);
    one that kills every worker it runs on is recorded as CRASHED and the search goes on.
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
        if self.scheduler_file is not None and not Path(self.scheduler_file).is_file():
            raise ClusterError(
                f"The scheduler file {self.scheduler_file} does not exist; start the scheduler "
                f"with: dask scheduler --scheduler-file {self.scheduler_file}"
            )
        try:
            self.client = Client(
                self.address,
                scheduler_file=self.scheduler_file,
                timeout=self.connect_timeout,
                set_as_default=False,
            )
        except (OSError, TimeoutError, ValueError) as err:
            raise ClusterError(
                f"Cannot reach {self.where} within {self.connect_timeout:g} s ({err}). Is "
                "`dask scheduler` running there, and is the address right (tcp://HOST:PORT)?"
            ) from None
        try:
            self._check_cluster()
        except BaseException:
            self.client.close()
            raise
        return self

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
        if self.client is None:
            return
        try:
            if self._outstanding:
                self.client.cancel(self._outstanding)
        finally:
            self.client.close()
            self.client = None
            self._outstanding = []

    def run(self, trials: Sequence[Trial], splits: Splits) -> Iterator[TrialResult]:
        """The trials' results as they finish, in any order. ``splits``: the data the client
        loaded; workers load the same archive (its sha256) themselves."""
        from distributed import KilledWorker, as_completed

        batch = uuid.uuid4().hex[:8]
        futures = {
            self.client.submit(
                run_remote_trial,
                for_workers(trial, splits),
                key=f"svmtrain-{batch}-trial-{trial.number}-rung-{trial.rung}",
                pure=False,
            ): trial
            for trial in trials
        }
        self._outstanding = list(futures)
        for future in as_completed(futures, loop=self.client.loop):
            trial = futures[future]
            try:
                result = future.result()
            except KilledWorker as err:
                result = crashed_result(trial, f"every worker that ran it died ({err})")
            except ImportError as err:
                raise ClusterError(
                    f"A worker of {self.where} cannot run svmtrain ({err}); install svmtrain "
                    f"on every worker ({INSTALL_HINT})."
                ) from None
            retries = self.client.run_on_scheduler(_times_restarted, key=future.key)
            if retries and result.status != CRASHED:
                note = f"ran again after its worker died ({retries}x)"
                message = f"{result.message}; {note}" if result.message else note
                result = dataclasses.replace(result, retries=retries, message=message)
            self._outstanding.remove(future)
            yield result


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
    """On a worker: :func:`run_trial` on this process's prepared data (loaded on first use)."""
    with _one_trial_at_a_time:
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


def _times_restarted(key: str, dask_scheduler: Any = None) -> int:
    """On the scheduler: how many workers died while running task ``key``."""
    task = dask_scheduler.tasks.get(key)
    return task.suspicious if task is not None else 0
