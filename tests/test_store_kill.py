"""Kill -9 harness for the transactional store (:mod:`snrbench.store.transaction`).

``snrbench --results R groundtruth --family exact-rbm --force`` replaces an old generation of the
family (a 1-cell suite) by a new one (2 cells) and is SIGKILLed (1) just before each file operation
of its commit in turn (``$SNRBENCH_KILL_AT=k``, the store's crash hook, for every k = 1 … K, and
k = K + 1 completes: the loop covers every point), (2) at a few instants of the cell solving, and
(3) again during the recovery of a killed commit. After each kill the next command (``verify``,
which recovers) must pass, the family's three tables must be one generation, old or new, whole
(the same cells in all three and byte for byte the old or the new files), no temporary file or
journal may be left, and a rerun must equal an uninterrupted run byte for byte (SHA-256).

Commands run in processes forked from one warm server process (importing snrbench takes seconds;
a fork runs ``snrbench.cli.main`` at once), so the whole harness takes about 25 s of CPU; one kill
point also runs through a fresh ``python -m snrbench.cli`` process. POSIX only (fork, SIGKILL).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from snrbench import store
from snrbench.families import get

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks and SIGKILLs (POSIX)")

FAMILY = "exact-rbm"
PATHS = get(FAMILY).truth_paths()  # the family's three tables
N = len(PATHS)
#: File operations of the commit: each table's temporary file and rename (2N), the manifest's (2),
#: the journal's temporary file, rename and deletion (3), the partial folder's removal and that of
#: the emptied results/.partial (2).
K = 2 * N + 7
#: The journal is renamed into place by operation N + 3 (after N tables and the manifest, its temporary
#: file): a kill before it leaves the old generation, any later one the new.
COMMIT_POINT = N + 3

SUITE = """family = "exact-rbm"
suite = "v1"
description = "kill harness"

[grid]
shapes = [[4, 2]]
betas = {betas}
symmetries = ["symmetric"]
seeds = [0]

[model]
units = "spin"
recipe = "mattis+disorder"
disorder = 0.3
bias_std = 0.3

[data]
n_samples = 50
teacher_seed_offset = 1000

[estimator]
observables = "weights"
"""

SERVER = r"""
import json, os, signal, sys, traceback
from snrbench import cli
import tempfile
import pyarrow as pa, pyarrow.parquet as pq, tqdm.auto
import snrbench.jobs.groundtruth
from snrbench.families import get, load_suite, names
names()  # every family imported, a cell solved and a Parquet file written once, here (no store
get("exact-rbm").solve_cell(load_suite(sys.argv[1])[1][0])  # operation): each forked command starts warm
with tempfile.TemporaryDirectory() as tmp:
    pq.write_table(pa.table({"x": [1]}), tmp + "/x.parquet", compression="zstd")
    pq.read_table(tmp + "/x.parquet")
proto = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        for k, v in req["env"].items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if req.get("kill_cell"):  # SIGKILL before / after solving the n-th cell
            n, when = req["kill_cell"]
            fam, calls = get("exact-rbm"), [0]
            real = fam.solve_cell
            def solve_cell(cell):
                calls[0] += 1
                if calls[0] == n and when == "before":
                    os.kill(os.getpid(), signal.SIGKILL)
                out = real(cell)
                if calls[0] == n and when == "after":
                    os.kill(os.getpid(), signal.SIGKILL)
                return out
            fam.solve_cell = solve_cell
        try:
            rc = cli.main(req["argv"])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc or 0)
    _, status = os.waitpid(pid, 0)  # reaped: its pid is free, its temporary files are strays
    proto.write(json.dumps(dict(rc=os.waitstatus_to_exitcode(status))) + "\n")
    proto.flush()
"""


class Server:
    """Runs ``snrbench`` commands in processes forked from one warm interpreter."""

    def __init__(self, folder: Path, suite: Path):
        self.folder, self.n = folder, 0
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(suite)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def run(self, argv: list[str], tasks: Path | None = None, kill_at: int | None = None,
            kill_cell: tuple[int, str] | None = None) -> tuple[int, str]:
        """(exit code, -9 when killed; the command's output)."""
        self.n += 1
        log = self.folder / f"cmd{self.n}.log"
        env = {"SNRBENCH_TASKS": str(tasks) if tasks else None,
               "SNRBENCH_KILL_AT": None if kill_at is None else str(kill_at)}
        req = dict(argv=[str(a) for a in argv], env=env, log=str(log), kill_cell=kill_cell)
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the command server died ({self.proc.poll()})"
        return json.loads(line)["rc"], log.read_text()

    def close(self):
        self.proc.stdin.close()  # end of input: the server's loop ends
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


def _cmd(root: Path, *args: str) -> list[str]:
    return ["--results", str(root), *args]


def _gt(root: Path, force: bool = True) -> list[str]:
    return _cmd(root, "groundtruth", "--family", FAMILY, "--workers", "1", "--quiet", *(["--force"] if force else []))


def _shas(root: Path) -> dict[str, str]:
    return {rel: store.sha256_file(root / rel) for rel in PATHS}


def _cells(root: Path) -> dict[str, frozenset]:
    return {rel: frozenset(pq.read_table(root / rel, columns=["cell_id"]).column("cell_id").to_pylist())
            for rel in PATHS}


def _leftovers(root: Path) -> list[str]:
    """Temporary files and journals anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and (p.name.endswith(".tmp") or p.name == store.JOURNAL))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The server, the two suites, the old generation and an uninterrupted run of the new one."""
    base = tmp_path_factory.mktemp("kill")
    tasks = {}
    for name, betas in (("old", "[1.0]"), ("new", "[1.0, 2.0]")):
        tasks[name] = base / f"tasks-{name}"
        tasks[name].mkdir()
        (tasks[name] / f"{FAMILY}.toml").write_text(SUITE.format(betas=betas))
    server = Server(base, tasks["old"] / f"{FAMILY}.toml")
    try:
        gens = {}
        for name in ("old", "new"):
            root = base / f"gen-{name}"
            rc, log = server.run(_gt(root), tasks[name])
            assert rc == 0, log
            manifest = json.loads((root / store.MANIFEST).read_text())["files"]
            gens[name] = dict(root=root, shas=_shas(root), cells=_cells(root)[PATHS[0]],
                              entries={rel: manifest[rel] for rel in PATHS})
        assert len(gens["old"]["cells"]) == 1 and len(gens["new"]["cells"]) == 2
        assert all(e["group"] == FAMILY for e in gens["new"]["entries"].values())
        yield dict(base=base, server=server, tasks=tasks, **gens)
    finally:
        server.close()


def _fresh_copy(bench, gen: str) -> Path:
    """A new results folder holding generation ``gen``."""
    bench["copies"] = n = bench.get("copies", 0) + 1
    root = bench["base"] / f"store{n}"
    shutil.copytree(bench[gen]["root"], root)
    return root


def _check_after_kill(bench, root: Path) -> str:
    """The next command (verify) passes; the tables are one whole generation; nothing is left over.
    Returns "old" or "new"."""
    rc, log = bench["server"].run(_cmd(root, "verify"))
    assert rc == 0, log
    assert store.verify(root, recover=False) == []  # the files as they now lie
    assert _leftovers(root) == []
    cells = _cells(root)
    assert len(set(cells.values())) == 1, cells  # the three tables hold the same cells
    shas = _shas(root)
    gen = next((g for g in ("old", "new") if shas == bench[g]["shas"]), None)
    assert gen is not None, f"a mixture of generations: {shas}"
    assert cells[PATHS[0]] == bench[gen]["cells"]
    entries = json.loads((root / store.MANIFEST).read_text())["files"]
    assert {rel: entries[rel] for rel in PATHS} == bench[gen]["entries"]
    return gen


def _check_rerun(bench, root: Path) -> None:
    """A rerun (no --force) ends with the files of an uninterrupted run, byte for byte."""
    rc, log = bench["server"].run(_gt(root, force=False), bench["tasks"]["new"])
    assert rc == 0, log
    assert _shas(root) == bench["new"]["shas"]
    entries = json.loads((root / store.MANIFEST).read_text())["files"]
    assert {rel: entries[rel] for rel in PATHS} == bench["new"]["entries"]
    assert not (root / ".partial").exists() and _leftovers(root) == []
    assert store.verify(root) == []


def test_a_kill_before_any_file_operation_of_the_commit_recovers_whole(bench):
    server, new = bench["server"], bench["tasks"]["new"]
    seen = {}
    for k in range(1, K + 2):
        root = _fresh_copy(bench, "old")
        rc, log = server.run(_gt(root), new, kill_at=k)
        if k == K + 1:
            assert rc == 0, log  # past the last file operation: nothing left to kill
            assert _check_after_kill(bench, root) == "new"
            break
        assert rc == -9, f"k={k}: not killed (rc {rc}): {log}"
        journal = (root / store.JOURNAL).exists()
        assert journal == (k > COMMIT_POINT), k  # the journal's rename is the commit point
        seen[k] = _check_after_kill(bench, root)
        _check_rerun(bench, root)
    assert sorted(seen) == list(range(1, K + 1))  # every file operation of the commit was a kill point
    assert seen == {k: "old" if k <= COMMIT_POINT else "new" for k in seen}


def test_a_kill_during_recovery_is_recovered_by_the_next_command(bench):
    """Killed after the commit point (the journal written, no file renamed yet); then each next command
    is killed too, just before the next file operation of its recovery: first before the first one
    (``$SNRBENCH_KILL_AT=1``), then after one more each time (``=2``), until one finishes."""
    server = bench["server"]
    root = _fresh_copy(bench, "old")
    rc, _ = server.run(_gt(root), bench["tasks"]["new"], kill_at=COMMIT_POINT + 1)
    assert rc == -9 and (root / store.JOURNAL).exists()
    recovery_ops = (N + 1) + 2 + 1  # the renames (tables, manifest), the partials' removals, the journal's
    killed = 0
    for j in [1] + [2] * recovery_ops:
        rc, log = server.run(_cmd(root, "verify"), kill_at=j)
        if rc == 0:
            break
        assert rc == -9, log
        killed += 1
    assert rc == 0 and killed == recovery_ops  # a kill before each operation of the recovery, then done
    assert f"finished an interrupted commit (0 of {N + 1} file(s)" in log  # only the journal was left to delete
    assert _check_after_kill(bench, root) == "new"
    _check_rerun(bench, root)


@pytest.mark.parametrize("cell, when", [(1, "before"), (2, "before"), (2, "after")])
def test_a_kill_while_solving_keeps_the_old_generation_and_resumes(bench, cell, when):
    root = _fresh_copy(bench, "old")
    rc, log = bench["server"].run(_gt(root), bench["tasks"]["new"], kill_cell=(cell, when))
    assert rc == -9, log
    partial = root / ".partial" / FAMILY  # the cells before the n-th are stored; its result died with the process
    assert len(list(partial.glob("*.ground_truth.parquet"))) == cell - 1
    assert _check_after_kill(bench, root) == "old"
    _check_rerun(bench, root)


def test_a_real_process_killed_mid_commit_recovers(bench):
    """One kill point through a fresh interpreter running the command line (no fork server)."""
    root = _fresh_copy(bench, "old")
    env = dict(os.environ, SNRBENCH_TASKS=str(bench["tasks"]["new"]), SNRBENCH_KILL_AT=str(COMMIT_POINT + 2))
    out = subprocess.run([sys.executable, "-m", "snrbench.cli", *_gt(root)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == -9, out.stderr
    assert _check_after_kill(bench, root) == "new"
    _check_rerun(bench, root)


def test_partials_left_beside_current_tables_are_removed_and_reported(bench):
    """A --force run killed while solving, over tables already current: the next run has nothing to
    do, removes the partial folder and says so."""
    root = bench["base"] / "current"
    shutil.copytree(bench["new"]["root"], root)
    server, new = bench["server"], bench["tasks"]["new"]
    rc, _ = server.run(_gt(root), new, kill_cell=(2, "before"))
    assert rc == -9 and len(list((root / ".partial" / FAMILY).iterdir())) == N
    rc, log = server.run(_gt(root, force=False), new)
    assert rc == 0 and "nothing to do" in log, log
    assert f"removed {N} stale partial file(s)" in log, log
    assert not (root / ".partial").exists() and _shas(root) == bench["new"]["shas"]
