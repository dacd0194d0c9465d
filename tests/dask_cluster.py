"""A Dask cluster for tests: a `dask scheduler` and `dask worker` processes on 127.0.0.1,
started as subprocesses and always stopped.

Ports: any free ones, or, where $SVMTRAIN_TEST_PORTS names a range (e.g. 18150-18169, for a
machine whose ports are shared out), only free ports of that range.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP_SECONDS = 90  # bounded waits for processes that start on a shared, loaded machine


def port_range() -> range | None:
    """The ports $SVMTRAIN_TEST_PORTS allows ("LOW-HIGH"), or None for any."""
    low, _, high = os.environ.get("SVMTRAIN_TEST_PORTS", "").partition("-")
    return range(int(low), int(high or low) + 1) if low else None


def free_port(taken: set[int] | None = None) -> int:
    """A port of 127.0.0.1 nothing listens on and not in ``taken`` (which it joins): of
    $SVMTRAIN_TEST_PORTS if set, else any."""
    taken = set() if taken is None else taken
    for port in port_range() or [0]:
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            taken.add(s.getsockname()[1])
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in SVMTRAIN_TEST_PORTS={os.environ['SVMTRAIN_TEST_PORTS']}")


class Cluster:
    """A scheduler and workers started as `dask` subprocesses, each in its own session so that
    stopping it stops its children (a nanny's worker process) too.

    ``worker_envs``: one dict of extra environment variables per worker."""

    def __init__(
        self,
        directory: Path,
        worker_envs: list[dict[str, str]],
        scheduler_env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.scheduler_file = directory / "scheduler.json"
        self.processes: list[subprocess.Popen] = []
        self.client = None
        try:
            self._start(worker_envs, scheduler_env or {})
        except BaseException:
            self.close()
            raise

    def _spawn(self, args: list[str], log: str, env: dict[str, str]) -> None:
        with open(self.directory / log, "wb") as out:
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    cwd=self.directory,
                )
            )

    def _start(self, worker_envs: list[dict[str, str]], scheduler_env: dict[str, str]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SVMTRAIN_")}
        base["NO_PROXY"] = base["no_proxy"] = "127.0.0.1,localhost"
        taken: set[int] = set()
        port = str(free_port(taken)) if port_range() else "0"
        scheduler = ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
        self._spawn(
            [*scheduler, "--scheduler-file", str(self.scheduler_file)],
            "scheduler.log",
            {**base, **scheduler_env},
        )
        self.address = wait_for(lambda: _address(self.scheduler_file), "the scheduler file")
        for i, extra in enumerate(worker_envs):
            worker = [
                "worker",
                self.address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                f"w{i}",
            ]
            worker += ["--host", "127.0.0.1", "--local-directory", str(self.directory)]
            if port_range():
                worker += ["--worker-port", str(free_port(taken))]
                worker += ["--nanny-port", str(free_port(taken))]
            self._spawn(worker, f"worker{i}.log", {**base, **extra})
        import distributed  # the test modules skip when it is missing

        self.client = distributed.Client(self.address, set_as_default=False, timeout=30)
        self.client.wait_for_workers(len(worker_envs), timeout=STARTUP_SECONDS)

    def worker_pid(self, address: str) -> int:
        return self.client.run(os.getpid, workers=[address])[address]

    def task_count(self) -> int:
        """Tasks the scheduler still knows of (none once a search's client has gone)."""
        # A lambda travels by value: the scheduler cannot import this test module.
        return self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=10)
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


def _address(scheduler_file: Path) -> str | None:
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


def wait_for(condition, what: str, timeout: float = STARTUP_SECONDS):
    """``condition()``'s first true value, polled; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout} s for {what}")
