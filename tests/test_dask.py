"""Scale-out on Dask: `snrbench groundtruth --scheduler tcp://…` on a real scheduler and two real
workers (the `dask` command line, separate processes) writes byte-identical files to a local run,
also when one worker is killed (SIGKILL) mid-run: its cells are rerun elsewhere, none twice.
`snrbench predict --scheduler` stores the predictions of a local run, each cell once, and `submit
--scheduler` keeps an entry's sandbox on the Dask workers (the worker runs the sandboxed process)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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


def test_a_worker_killed_mid_run_loses_no_cell_and_duplicates_none(cluster, local_run, tmp_path):
    """The exact-rbm family on a real scheduler and two workers, one of them killed after 4 cells: the
    run finishes, every cell is in every table once, and the files are byte-identical to the local run."""
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


# -- predict and submit on the cluster ------------------------------------------------------------

SUITE = REPO / "tests" / "data" / "exact-rbm.toml"


def _tasks(folder: Path, seeds: str = "[0]") -> Path:
    """A tasks folder holding the 4-cell fixture suite (``seeds = [0, 1]``: its 8-cell twin)."""
    folder.mkdir(parents=True)
    (folder / "exact-rbm.toml").write_text(SUITE.read_text().replace("seeds = [0]", f"seeds = {seeds}"))
    return folder


def _snrbench(results: Path, *args: str, cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    out = subprocess.run([str(SNRBENCH), "--results", str(results), *args], env=dict(ENV, **env),
                         capture_output=True, text=True, timeout=300, cwd=cwd)
    return out, time.perf_counter() - t0


def test_predict_and_submit_on_a_dask_cluster(cluster, tmp_path, monkeypatch):
    """1. `predict --scheduler` of pilot-q on the 8-cell twin of the fixture suite at the first budget:
    two chunks of 4 cells, each a task whose Dask worker starts the sandboxed worker and the sampler
    process itself; the client stores, each cell once, the columns of a local run (all but the times)
    made with the same sampler key.
    2. `submit --scheduler` of an entry that opens the stored ground truth: refused on the Dask worker
    by the sandbox it starts there (each cell's message names the file); nothing stored or changed.
    (One test, one cluster: the second part runs on workers the first has warmed up.)"""
    from snrbench.families import load_suite

    tasks = _tasks(tmp_path / "tasks", "[0, 1]")
    monkeypatch.setenv("SNRBENCH_TASKS", str(tasks))
    ids = [c.cell_id for c in load_suite(FAMILY)[1]]
    assert len(set(ids)) == 8
    cmd = ("predict", "--family", FAMILY, "--entry", "pilot-q", "--budget", "65536", "--force", "--quiet")
    local, local_s = _snrbench(tmp_path / "local", *cmd, "--workers", "2", cwd=tmp_path, SNRBENCH_TASKS=str(tasks))
    assert local.returncode == 0, local.stderr
    (tmp_path / "dask").mkdir()  # the same sampler key (the seeds' secret), so the same samples
    shutil.copy2(tmp_path / "local" / ".sampler-key", tmp_path / "dask" / ".sampler-key")
    dask, dask_s = _snrbench(tmp_path / "dask", *cmd, "--scheduler", cluster.address, cwd=tmp_path,
                             SNRBENCH_TASKS=str(tasks))
    assert dask.returncode == 0, dask.stderr
    assert "predict: 1 entry run(s), 1 stored" in dask.stdout
    done = cluster.executed()
    assert sum(done.values()) == 2, done  # the two chunks, each run once
    tables = {}
    for name in ("local", "dask"):
        df = pq.read_table(tmp_path / name / "predictions" / "pilot-q.parquet").to_pandas()
        assert set(df.budget) == {65536} and set(df.predictor) == {"pilot-q"}
        blocks = [c for i, c in enumerate(df.cell_id) if i == 0 or df.cell_id[i - 1] != c]
        assert len(blocks) == len(set(blocks)) == 8 and set(blocks) == set(ids), name  # each cell once
        tables[name] = df
    a, b = tables["local"], tables["dask"]
    assert len(a) == len(b) == 8 * a["T"].nunique()
    for col in ("cell_id", "label", "T", "log10_q", "tau", "grad_norm2", "sweeps", "source_sha256"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)  # NaN == NaN
    assert (b.sweeps > 0).all() and (b.seconds > 0).all()

    # 2. the sandbox on the Dask worker, against the fixture's ground truth (its 4-cell suite: one chunk)
    tasks = _tasks(tmp_path / "tasks4")
    results = tmp_path / "results"
    shutil.copytree(REPO / "tests" / "data" / "fixture" / "results", results)
    (tmp_path / "predictors").mkdir()  # no built-in entries to import or clash with
    truth = (results / "ground_truth" / "exact-rbm.parquet").resolve()
    entry = tmp_path / "thief.py"
    entry.write_text("import numpy as np\nfrom snrbench.predict import Prediction\n\n\n"
                     "class Thief:\n    name, access = 'thief', 'sampler-only'\n\n"
                     "    def predict(self, problem):\n"
                     f"        open({str(truth)!r}, 'rb').read()\n"
                     "        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)\n")
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    out, submit_s = _snrbench(results, "submit", str(entry), "--budget", "65536", "--quiet", "--out",
                              str(tmp_path / "lb"), "--scheduler", cluster.address, cwd=tmp_path,
                              SNRBENCH_TASKS=str(tasks), SNRBENCH_PREDICTORS=str(tmp_path / "predictors"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "thief (sampler-only) on exact-rbm at budget 65,536: 4 of 4 cells failed; nothing stored" in out.stderr
    assert "submit: rejected; results/ is unchanged" in out.stderr
    cells = [ln.strip() for ln in out.stderr.splitlines() if ln.strip().startswith("cell ")]
    assert len(cells) == 3, out.stderr  # the 4th is skipped after 3 failures, as locally
    assert all("tried to read stored results" in ln and str(truth) in ln for ln in cells), cells
    assert sum(cluster.executed().values()) == 3  # its one chunk ran on a Dask worker
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "lb").exists()
    print(f"\npredict pilot-q, 8 cells at 65,536: local (2 workers) {local_s:.1f} s, dask {dask_s:.1f} s "
          f"(chunks per worker: {done}); hostile submit refused on the cluster in {submit_s:.1f} s")


def test_chunks_merge_in_suite_order_once_each_and_stop_after_the_failures(tmp_path, monkeypatch):
    """The client's side of `predict --scheduler`, without a cluster: chunks finishing in any order (one
    twice, as a rerun would) give the suite's order, each cell once; after 3 failed cells the chunks not
    yet finished are dropped (their cells skipped), as a local run skips them."""
    from snrbench.families import Cell, load_suite
    from snrbench.jobs import executor
    from snrbench.predict import predictions
    from snrbench.predict.registry import Entry
    from snrbench.predict.runner import CellResult

    monkeypatch.setenv("SNRBENCH_TASKS", str(_tasks(tmp_path / "tasks", "[0, 1, 2]")))
    cells = load_suite(FAMILY)[1]
    assert len(cells) == 12 and len(predictions.chunks_of(cells)) == 3
    entry = Entry("fake", "sampler-only", "/nowhere.py::Fake", "0" * 64)
    seen = {}

    def fake_map(fn, chunks, *, scheduler, key, retries, name, deadline):
        chunks = list(chunks)
        seen.update(retries=retries, keys={key(c) for c in chunks}, name=name, fn=fn, deadline=deadline)
        for i in ((0, 2, 1) if bad else (2, 0, 2, 1)):  # out of order, one twice
            chunk, fail = chunks[i], bad and i == 2
            yield chunk, [CellResult(Cell(s).label, Cell(s).cell_id, not fail, "boom" if fail else "",
                                     log10_q=[0.0]) for s in chunk]

    monkeypatch.setattr(executor, "map_cells", fake_map)
    bad = False
    run = predictions._run_on_cluster(entry, FAMILY, cells, tmp_path / "results", "tcp://x:1", time_limit=5.0,
                                      limits=None, budget=65536)
    assert [r.cell_id for r in run.results] == [c.cell_id for c in cells] and not run.failures
    assert seen["retries"] == 0 and len(seen["keys"]) == 3 and seen["name"] == "predict-fake-exact-rbm-65536"
    assert seen["deadline"] == 12 * 5.0 + predictions.DASK_MARGIN  # cells × time limit + the margin
    assert seen["fn"].keywords["results_root"] == str((tmp_path / "results").resolve())
    bad = True  # chunk 2 fails its 4 cells: the run stops there, chunk 1 is not waited for
    run = predictions._run_on_cluster(entry, FAMILY, cells, tmp_path / "results", "tcp://x:1", time_limit=5.0,
                                      limits=None, budget=65536)
    errors = [r.error for r in run.results]
    assert errors[8:] == ["boom"] * 4 and errors[:4] == [""] * 4
    assert errors[4:8] == ["skipped: the entry already failed 3 cells"] * 4
