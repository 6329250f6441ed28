"""Scale-out on Dask: `snrbench groundtruth --scheduler tcp://…` on a real scheduler and two real
workers (the `dask` command line, separate processes) writes byte-identical files to a local run,
also when one worker is killed (SIGKILL) mid-run: its cells are rerun elsewhere, none twice."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("distributed", reason="needs Dask, the optional extra: pip install -e '.[dask]'")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DASK = BIN / "dask"
SNRBENCH = BIN / "snrbench"
FAMILY = "exact-rbm"
TABLES = ("exact-rbm.parquet", "exact-rbm.spectrum.parquet", "exact-rbm.operational.parquet")
#: One thread per process everywhere (the Dask nanny sets this in its workers anyway; on the local
#: pool it only avoids oversubscribing 2 cores). Workers import snrbench from this venv's checkout.
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
           SNRBENCH_ROOT=str(REPO), PYTHONUNBUFFERED="1")

pytestmark = pytest.mark.skipif(not DASK.exists(), reason=f"no `dask` command beside {sys.executable}")


def _sha256(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / "ground_truth" / name).read_bytes()).hexdigest() for name in TABLES}


def _groundtruth(results: Path, *extra: str) -> list[str]:
    return [str(SNRBENCH), "--results", str(results), "groundtruth", "--family", FAMILY, "--force", "--quiet",
            *extra]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same command on local processes; (results folder, SHA-256 per table, seconds)."""
    results = tmp_path_factory.mktemp("local") / "results"
    t0 = time.perf_counter()
    out = subprocess.run(_groundtruth(results, "--workers", "2"), env=ENV, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return results, _sha256(results), time.perf_counter() - t0


class Cluster:
    """A `dask scheduler` and two `dask worker` processes, each in its own process group."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.logs, self.address = folder, {}, {}, None

    def start(self) -> None:
        folder = self.folder
        scheduler_file = folder / "scheduler.json"
        self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(scheduler_file)])
        deadline = time.monotonic() + 60  # --port 0: the system picks a free port; the file names it
        while self.address is None and time.monotonic() < deadline:
            self._alive("scheduler")
            try:
                self.address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert self.address and self.address.startswith("tcp://127.0.0.1:"), self.address
        for i in range(2):
            self._start(f"worker{i}", [str(DASK), "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                                       "--no-dashboard", "--name", f"w{i}", "--death-timeout", "60",
                                       "--local-directory", str(folder / f"scratch{i}")])
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)

    def _start(self, name: str, cmd: list[str]) -> None:
        self.logs[name] = open(self.folder / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(cmd, cwd=self.folder, env=ENV, stdout=self.logs[name],
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def _alive(self, name: str) -> None:
        if self.procs[name].poll() is not None:
            raise AssertionError(f"{name} exited: {(self.folder / f'{name}.log').read_text()[-3000:]}")

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group (the nanny and its worker): a lost machine."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def processing(self, name: str) -> list[str]:
        """Keys of the tasks the scheduler has assigned to the worker called ``name`` (running or next)."""
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            address = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == name)
            return [str(k) for k in client.processing(workers=[address])[address]]

    def executed(self) -> dict[str, int]:
        """Tasks run per worker still connected."""
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            return client.run(lambda dask_worker: dask_worker.state.executed_count)

    def close(self) -> None:
        for name, proc in reversed(list(self.procs.items())):  # workers first, the scheduler last
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                except ProcessLookupError:
                    pass
            try:  # anything the group left behind
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for log in self.logs.values():
            log.close()


@pytest.fixture
def cluster(tmp_path):
    folder = tmp_path / "cluster"
    folder.mkdir()
    c = Cluster(folder)
    try:
        c.start()
        yield c
    finally:
        c.close()


def _cells_once(results: Path, expected: set[str]) -> None:
    """Every table holds each cell exactly once: one contiguous block of rows per cell_id."""
    for name in TABLES:
        ids = pq.read_table(results / "ground_truth" / name, columns=["cell_id"]).column("cell_id").to_pylist()
        blocks = [c for i, c in enumerate(ids) if i == 0 or ids[i - 1] != c]
        assert len(blocks) == len(set(blocks)) == len(expected), name
        assert set(blocks) == expected, name


def test_groundtruth_on_a_dask_cluster_matches_the_local_run(cluster, local_run, tmp_path):
    local, digests, local_s = local_run
    results = tmp_path / "results"
    t0 = time.perf_counter()
    out = subprocess.run(_groundtruth(results, "--scheduler", cluster.address), env=ENV, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    seconds = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    assert f"48 of 48 cells computed on {cluster.address}" in out.stdout
    assert _sha256(results) == digests
    done = cluster.executed()
    assert sum(done.values()) == 48 and all(n > 0 for n in done.values()), done  # both workers, each cell once
    ids = set(pq.read_table(local / "ground_truth" / TABLES[0], columns=["cell_id"]).column("cell_id").to_pylist())
    _cells_once(results, ids)
    assert not (results / ".partial").exists()
    print(f"\nlocal processes: {local_s:.1f} s; dask, 2 workers: {seconds:.1f} s; tasks per worker: {done}")


def test_a_worker_killed_mid_run_loses_no_cell_and_duplicates_none(cluster, local_run, tmp_path):
    local, digests, _ = local_run
    results = tmp_path / "results"
    partial = results / ".partial" / FAMILY
    t0 = time.perf_counter()
    client = subprocess.Popen(_groundtruth(results, "--scheduler", cluster.address), env=ENV, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        done = 0
        while done < 4 and client.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            done = len(list(partial.glob("*.ground_truth.parquet"))) if partial.exists() else 0
        assert client.poll() is None and 4 <= done < 48, f"kill point missed ({done} cells done)"
        lost = cluster.processing("w0")
        cluster.kill("worker0")  # a lost machine: the nanny and its worker, with the cells assigned to it
        killed_at = done
        stdout, stderr = client.communicate(timeout=300)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    seconds = time.perf_counter() - t0
    assert client.returncode == 0, stderr
    assert "48 of 48 cells computed" in stdout
    assert lost and all(k.startswith(f"truth-{FAMILY}-") for k in lost), lost  # cells w0 held when killed
    survivor = cluster.executed()
    assert list(survivor) and sum(survivor.values()) >= 48 - killed_at, survivor
    ids = set(pq.read_table(local / "ground_truth" / TABLES[0], columns=["cell_id"]).column("cell_id").to_pylist())
    _cells_once(results, ids)
    assert _sha256(results) == digests
    log = (cluster.folder / "scheduler.log").read_text()
    assert "Remove worker" in log or "removing worker" in log.lower(), log[-2000:]
    print(f"\nworker w0 killed after {killed_at} cells, holding {len(lost)} ({', '.join(lost)}); run finished in "
          f"{seconds:.1f} s; the survivor ran {sum(survivor.values())} tasks")


def test_local_cluster_resumes_an_interrupted_run(tmp_path, monkeypatch):
    """``--scheduler local:2`` (a LocalCluster started and closed by the run) on the 4-cell fixture suite
    resumes a serial run interrupted after 2 cells: it computes only the other 2, and the files match."""
    from snrbench.jobs import groundtruth

    suite = REPO / "tests" / "data" / "exact-rbm.toml"
    serial = groundtruth.generate(FAMILY, tmp_path / "serial", workers=1, progress=False, suite_file=suite)
    real, calls = groundtruth.solve_cell, []

    def interrupted(family, spec_json):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(spec_json)
        return real(family, spec_json)

    monkeypatch.setattr(groundtruth, "solve_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        groundtruth.generate(FAMILY, tmp_path / "dask", workers=1, progress=False, suite_file=suite)
    monkeypatch.setattr(groundtruth, "solve_cell", real)
    assert len(list((tmp_path / "dask" / ".partial" / FAMILY).glob("*.ground_truth.parquet"))) == 2
    dask = groundtruth.generate(FAMILY, tmp_path / "dask", progress=False, suite_file=suite, scheduler="local:2")
    assert (serial["computed"], dask["computed"]) == (4, 2)
    assert _sha256(tmp_path / "serial") == _sha256(tmp_path / "dask")
