"""Run entries on every cell of a family, each in its own worker process with a time limit.

Each worker process (:mod:`._worker`) holds one entry and answers cell after cell; the runner builds
each cell's model and data (by the cell's family) and hands them over as a ``.npz`` in the worker's
temporary folder, so the worker needs neither the suite files nor the family's code. A cell
that exceeds ``time_limit`` seconds has its worker killed (and replaced). Every failure is a
specific message per cell: an exception, a malformed prediction (wrong type or length, NaN, inf),
a timeout, an attempt to read stored results, a crashed worker. After ``max_failures`` failed
cells the remaining cells are skipped. Nothing is written here: the caller stores the rows only
when every cell succeeded, so a failing entry changes no stored result.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from ..core.arrays import model_arrays
from ..families import Cell, get
from .registry import ENTRY_POINT_GROUP, Entry, RegistryError, builtin_entries, no_duplicates

__all__ = ["CellResult", "EntryRun", "run_entry", "discover", "all_entries", "blocked_paths", "cell_seed", "DEFAULT_TIME_LIMIT"]

DEFAULT_TIME_LIMIT = 300.0  # seconds per cell


def cell_seed(cell: Cell) -> int:
    """The sampler seed of a cell (same for every entry: common random numbers)."""
    return int(cell.cell_id[:8], 16)


@dataclass
class CellResult:
    label: str
    cell_id: str
    ok: bool
    error: str = ""
    log10_q: list = field(default_factory=list)
    tau: float | None = None
    grad_norm2: float | None = None
    sweeps: int = 0
    seconds: float = 0.0


@dataclass
class EntryRun:
    entry: Entry
    family: str
    results: list[CellResult]

    @property
    def failures(self) -> list[CellResult]:
        return [r for r in self.results if not r.ok]


def blocked_paths(results_root: Path) -> list[str]:
    """What an entry's process may not touch: the results folder, the repository's results and .git."""
    repo = Path(__file__).resolve().parents[3]
    paths = [Path(results_root), repo / "results", repo / ".git"]
    return sorted({str(p.resolve()) for p in paths})


def _worker_cmd(mode: str, arg: str, results_root: Path) -> list[str]:
    return [sys.executable, "-m", "snrbench.predict._worker", mode, arg, json.dumps(blocked_paths(results_root))]


def discover(spec: str, results_root: Path) -> list[Entry]:
    """The entries of ``PATH.py`` or an entry-point name, imported in a confined process."""
    with tempfile.TemporaryDirectory() as tmp:
        arg = str(Path(spec).resolve()) if spec.endswith(".py") else spec
        proc = subprocess.run(_worker_cmd("discover", arg, results_root), capture_output=True, text=True, cwd=tmp,
                              env=dict(os.environ, TMPDIR=tmp), timeout=300)
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RegistryError(f"{spec}: discovery process failed: {proc.stderr.strip()[-500:]}")
    ans = json.loads(lines[-1])
    if not ans["ok"]:
        raise RegistryError(ans["error"])
    return [Entry(**e) for e in ans["entries"]]  # the parent never executes a submission's code


def all_entries(results_root: Path | str = "results") -> list[Entry]:
    """Built-in entries plus those of every installed ``snrbench.predictors`` entry point.

    Built-ins are imported here; third-party entry points only in a confined process
    (:func:`discover`), so their import-time code never runs unconfined.
    """
    entries = builtin_entries()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        entries += discover(ep.name, Path(results_root))
    return sorted(no_duplicates(entries), key=lambda e: e.key)


class _Worker:
    def __init__(self, entry: Entry, results_root: Path):
        self.tmp = tempfile.TemporaryDirectory()
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TMPDIR=self.tmp.name)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(_worker_cmd("run", json.dumps(asdict(entry)), results_root),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=env, bufsize=1, cwd=self.tmp.name)
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def put_cell(self, family, cell: Cell) -> str:
        """Write the cell's model, data and T grid, built here by its family, where the worker reads them."""
        spec = cell.spec
        path = Path(self.tmp.name) / "cell.npz"
        np.savez(path, data=family.build_data(spec), T=family.t_grid(spec), **model_arrays(family.build_model(spec)))
        return str(path)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, task: dict, timeout: float) -> dict:
        try:
            self.proc.stdin.write(json.dumps(task) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return dict(ok=False, error=self._died())
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return dict(ok=False, error=f"exceeded the time limit of {timeout:g} s per cell (killed)")
        if line is None:
            return dict(ok=False, error=self._died())
        return json.loads(line)

    def _died(self) -> str:
        rc = self.proc.wait()
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-3:]
        return f"worker process exited with code {rc}" + (f": {' | '.join(tail)}" if tail else "")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.reader.join(timeout=10)
        self.proc.stdout.close()
        self.log.close()
        self.tmp.cleanup()


def run_entry(entry: Entry, family: str, cells: list[Cell], results_root: Path, time_limit: float = DEFAULT_TIME_LIMIT,
              workers: int = 1, max_failures: int = 3, progress=None) -> EntryRun:
    """Run ``entry`` on ``cells`` (``progress``: callable invoked once per finished cell)."""
    todo: queue.Queue = queue.Queue()
    for i, c in enumerate(cells):
        todo.put((i, c))
    out: list[CellResult | None] = [None] * len(cells)
    failed = [0]
    lock = threading.Lock()
    fam = get(family)
    exact = "white-box" in fam.tiers

    def serve():
        w = None
        try:
            while True:
                try:
                    i, c = todo.get_nowait()
                except queue.Empty:
                    return
                with lock:
                    skip = failed[0] >= max_failures
                if skip:
                    out[i] = CellResult(c.label, c.cell_id, False, f"not run: the entry already failed {max_failures} cells")
                else:
                    if w is not None and w.proc.poll() is not None:
                        w.close()
                        w = None
                    if w is None:
                        w = _Worker(entry, results_root)
                    task = dict(cell_file=w.put_cell(fam, c), access=entry.access, exact=exact, seed=cell_seed(c),
                                family=family, label=c.label, observables=c.spec["observables"])
                    ans = w.ask(task, time_limit)
                    if ans.get("fatal"):
                        w.kill()
                    if ans["ok"]:
                        out[i] = CellResult(c.label, c.cell_id, True, log10_q=ans["log10_q"], tau=ans["tau"],
                                            grad_norm2=ans["grad_norm2"], sweeps=ans["sweeps"], seconds=ans["seconds"])
                    else:
                        out[i] = CellResult(c.label, c.cell_id, False, ans["error"])
                        with lock:
                            failed[0] += 1
                if progress:
                    progress()
        finally:
            if w is not None:
                w.close()

    n = max(1, min(workers, len(cells)))
    with ThreadPoolExecutor(n) as pool:
        for fut in [pool.submit(serve) for _ in range(n)]:
            fut.result()
    return EntryRun(entry, family, out)
