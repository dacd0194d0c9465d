"""The search on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
127.0.0.1 (free ports, subprocesses, always stopped), each worker loading the real mirror
itself from a loopback server into its own cache directory.

Same trials, same results.csv rows as the local pool; a worker killed mid-trial; Ctrl-C and
SIGTERM; an unreachable scheduler; workers with another svmtrain or none.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import run
from conftest import Behaviour, LoopbackServer

from svmtrain.config import load_config
from svmtrain.errors import ClusterError
from svmtrain.experiments import search
from svmtrain.experiments.common import load_splits

distributed = pytest.importorskip("distributed")

STARTUP_SECONDS = 90  # bounded waits for processes that start on a shared, loaded machine


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
        scheduler = ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        self._spawn(
            [*scheduler, "--scheduler-file", str(self.scheduler_file)],
            "scheduler.log",
            {**base, **scheduler_env},
        )
        self.address = _wait_for(lambda: _address(self.scheduler_file), "the scheduler file")
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
            self._spawn(worker, f"worker{i}.log", {**base, **extra})
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


def _wait_for(condition, what: str, timeout: float = STARTUP_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {timeout} s for {what}")


@pytest.fixture(scope="module")
def mirror_server(mirror_archive):
    """The real mirror on 127.0.0.1, for the workers to download themselves."""
    with LoopbackServer(mirror_archive.read_bytes(), behaviour=Behaviour(chunk=1 << 20)) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, mirror_server):
    """Two workers, each with its own empty cache directory."""
    directory = tmp_path_factory.mktemp("dask")
    envs = [{"SVMTRAIN_DATA_DIR": str(directory / f"cache{i}")} for i in range(2)]
    started = Cluster(directory, envs)
    yield started
    started.close()


@pytest.fixture
def data_sets(cifar_data_dir, mirror_server):
    """--set options for the client: its own cache (filled already), the server's URL."""
    sets = [
        f"data.dir={cifar_data_dir.data_dir}",
        f"data.url={mirror_server.url}",
        f"data.sha256={cifar_data_dir.sha256}",
    ]
    return [a for s in sets for a in ("--set", s)]


def rows_without_seconds(out_dir: Path) -> list[dict]:
    with open(out_dir / search.RESULTS_CSV, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_dask_search_gives_the_local_results(cluster, data_sets, mirror_server, tmp_path):
    """Through SVMTRAIN_SCHEDULER; the workers fetched the data themselves."""
    args = ["search", *data_sets, "--lr", "1e-7,1e-6,1e-4", "--reg", "1e4,2.5e4", "--epochs", 2]
    local = run(*args, "--jobs", 2, "--out", tmp_path / "local", "-q")
    assert local.exit_code == 0, local.output
    gets = len(mirror_server.gets)
    remote = run(
        *args, "--out", tmp_path / "dask", "-q", env={"SVMTRAIN_SCHEDULER": cluster.address}
    )
    assert remote.exit_code == 0, remote.output
    expected = rows_without_seconds(tmp_path / "local")
    assert rows_without_seconds(tmp_path / "dask") == expected
    assert len(expected) == 6 and len({r["val_acc"] for r in expected}) >= 4
    document = json.loads((tmp_path / "dask" / search.RESULTS_JSON).read_text())
    assert document["jobs"] == 2  # the workers' threads
    # The client's cache was full; every download came from a worker, into its own cache.
    caches = [cluster.directory / f"cache{i}" for i in range(2)]
    filled = [c for c in caches if (c / "cifar-10-binary.tar.gz").is_file()]
    assert filled and len(mirror_server.gets) >= gets + len(filled)


@pytest.mark.slow
def test_successive_halving_on_dask_gives_the_local_results(cluster, data_sets, tmp_path):
    """Through --scheduler-file: 10 trials, rungs of 1 and 3 epochs, 4 continue."""
    args = ["search", *data_sets, "--lr", "1e-8,3e-8,1e-7,3e-7,1e-6", "--reg", "1e4,2.5e4"]
    args += ["--epochs", 3, "--halving", "--set", "data.num_train=5000", "-q"]
    local = run(*args, "--jobs", 2, "--out", tmp_path / "local")
    assert local.exit_code == 0, local.output
    remote = run(*args, "--scheduler-file", cluster.scheduler_file, "--out", tmp_path / "dask")
    assert remote.exit_code == 0, remote.output
    rows = rows_without_seconds(tmp_path / "local")
    assert rows_without_seconds(tmp_path / "dask") == rows
    assert [r["rung"] for r in rows] == ["1"] * 4 + ["0"] * 6
    assert [r["epochs"] for r in rows] == ["3"] * 4 + ["1"] * 6
    document = json.loads((tmp_path / "dask" / search.RESULTS_JSON).read_text())
    assert (document["runs"], document["epochs_trained"]) == (14, 10 * 1 + 4 * 3)
    assert "rung" in remote.output.splitlines()[0]


@pytest.mark.slow
def _kill_mid_search(cluster, data, mirror_server, out_dir):
    """A search of two 12-epoch trials on ``cluster``; the worker running the first trial to
    start is killed with SIGKILL. Returns (the search, the killed trial, the splits)."""
    overrides = [
        f"data.dir={data.data_dir}",
        f"data.url={mirror_server.url}",
        f"data.sha256={data.sha256}",
        "train.epochs=12",
    ]
    axes = [search.parse_axis(search.LR, "1e-7,1e-6", "--lr")]
    trials = search.make_trials(None, overrides, search.grid_settings(axes))
    splits = load_splits(trials[0].config, progress=False)
    job = search.Search(trials, axes, search.new_search_dir(load_config(), out_dir), 2, None)
    failures = []

    def searching():
        try:
            with search.DaskExecutor(cluster.address) as executor:
                search.run_search(job, splits, executor=executor, progress=False)
        except BaseException as err:  # reported by the main thread
            failures.append(err)

    thread = threading.Thread(target=searching, daemon=True)
    thread.start()
    processing = _wait_for(
        lambda: [(w, k) for w, keys in cluster.client.processing().items() for k in keys],
        "a trial to start",
    )
    worker, key = processing[0]
    killed = int(key.split("-trial-")[1].split("-")[0])
    os.kill(cluster.worker_pid(worker), signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and failures == []
    return job, killed, splits


@pytest.mark.slow
def test_a_worker_killed_mid_trial_runs_it_again_elsewhere(
    cluster, cifar_data_dir, mirror_server, tmp_path
):
    """Dask runs the killed worker's trial again; its result, recorded as retried, is the one
    the trial gives in this process."""
    job, killed, splits = _kill_mid_search(cluster, cifar_data_dir, mirror_server, tmp_path)
    by_number = {r.number: r for r in job.results}
    assert {r.status for r in job.results} == {search.OK}
    assert by_number[killed].retries >= 1
    assert "ran again after its worker died" in by_number[killed].message
    here = search.run_trial(job.trials[killed - 1], splits)
    assert dataclasses.replace(by_number[killed], seconds=0, message="", retries=0) == (
        dataclasses.replace(here, seconds=0)
    )
    cluster.client.wait_for_workers(2, timeout=STARTUP_SECONDS)  # the nanny restarted it


@pytest.mark.slow
def test_a_trial_that_kills_its_workers_is_crashed_and_the_search_goes_on(
    cifar_data_dir, mirror_server, tmp_path
):
    """With Dask allowing no failure, the killed worker's trial is recorded as CRASHED and
    the other trial still finishes."""
    envs = [{"SVMTRAIN_DATA_DIR": str(tmp_path / f"cache{i}")} for i in range(2)]
    strict = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    started = Cluster(tmp_path, envs, scheduler_env=strict)
    try:
        job, killed, _ = _kill_mid_search(started, cifar_data_dir, mirror_server, tmp_path / "s")
    finally:
        started.close()
    statuses = {r.number: r.status for r in job.results}
    assert statuses == {killed: search.CRASHED, 3 - killed: search.OK}
    crashed = next(r for r in job.results if r.number == killed)
    assert "every worker that ran it died" in crashed.message
    document = json.loads((tmp_path / "s" / search.RESULTS_JSON).read_text())
    assert (document["finished"], document["best"]["trial"]) == (1, 3 - killed)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_dask_search_cancels_its_trials_and_keeps_the_finished(
    cluster, data_sets, tmp_path, sig
):
    out = tmp_path / "search"
    args = ["search", *data_sets, "--lr", "1e-8,2e-8,5e-8,1e-7,2e-7,5e-7,1e-6,2e-6"]
    args += ["--epochs", 8, "--scheduler", cluster.address, "--out", str(out), "-q"]
    process = subprocess.Popen(
        [sys.executable, "-c", "from svmtrain.cli import main; main()", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _finished(out) >= 1, "a finished trial", timeout=300)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # SIGTERM and SIGHUP end a search as they end fit: 128 + the signal, "Stopped by SIGTERM"
    stopped = {signal.SIGTERM: "Stopped by SIGTERM", signal.SIGHUP: "Stopped by SIGHUP"}
    code, what = (128 + sig, stopped[sig]) if sig in stopped else (130, "Interrupted")
    assert process.returncode == code, stderr
    assert f"{what} after" in stderr and "Traceback" not in stderr
    document = json.loads((out / search.RESULTS_JSON).read_text())
    assert document["interrupted"] and 1 <= document["finished"] < 8
    assert len(document["results"]) == document["finished"]
    _wait_for(lambda: cluster.task_count() == 0, "the scheduler to forget the trials", 60)


def _finished(out: Path) -> int:
    try:
        return json.loads((out / search.RESULTS_JSON).read_text())["finished"]
    except (OSError, ValueError, KeyError):
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_one_clear_error():
    address = f"tcp://127.0.0.1:{_free_port()}"
    with (
        pytest.raises(
            ClusterError, match=f"Cannot reach the Dask scheduler at {address} within 1 s"
        ),
        search.DaskExecutor(address, connect_timeout=1),
    ):
        pass


@pytest.mark.slow
def test_the_cli_gives_up_on_an_unreachable_scheduler(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    result = run("search", "--lr", "1e-7", "--scheduler", address, "--out", tmp_path / "s")
    assert result.exit_code == 1
    assert f"Cannot reach the Dask scheduler at {address}" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "s").exists()


def test_a_missing_scheduler_file_is_one_clear_error(tmp_path):
    """The file given on the command line beats SVMTRAIN_SCHEDULER."""
    missing = tmp_path / "scheduler.json"
    args = ["search", "--lr", "1e-7", "--scheduler-file", missing, "--out", tmp_path / "s"]
    result = run(*args, env={"SVMTRAIN_SCHEDULER": "tcp://127.0.0.1:1"})
    assert result.exit_code == 1
    assert f"The scheduler file {missing} does not exist" in result.output
    assert "dask scheduler --scheduler-file" in result.output


@pytest.mark.slow
def test_workers_with_another_svmtrain_or_none_are_named(tmp_path):
    """One worker finds svmtrain 9.9.9's metadata first, the other a package that cannot be
    imported: the search refuses both before sending a trial, and names them."""
    other = tmp_path / "other"
    (other / "svmtrain-9.9.9.dist-info").mkdir(parents=True)
    (other / "svmtrain-9.9.9.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: svmtrain\nVersion: 9.9.9\n"
    )
    broken = tmp_path / "broken"
    (broken / "svmtrain").mkdir(parents=True)
    (broken / "svmtrain" / "__init__.py").write_text("raise ImportError('no svmtrain here')\n")
    started = Cluster(tmp_path, [{"PYTHONPATH": str(other)}, {"PYTHONPATH": str(broken)}])
    try:
        workers = sorted(started.client.nthreads())
        result = run("search", "--lr", "1e-7", "--scheduler", started.address, "-q")
    finally:
        started.close()
    assert result.exit_code == 1, result.output
    message = result.output
    assert "runs svmtrain 9.9.9" in message and "cannot run svmtrain" in message
    assert all(w in message for w in workers) and "Traceback" not in message
