"""What the ``snrbench submit`` tests share (``test_submit.py``, ``test_submit_hostile.py``): the
4-cell fixture suite with its ground truth (``bench``), the guarded repository's hashes, valid and
broken entries, and the check that a rejected submission leaves everything as it was.

Every submission runs with cwd = the test's tmp folder and explicit ``--results``/``--out``, and
``SNRBENCH_PREDICTORS`` points at an empty folder so the (slow) built-in entries are neither run
nor registered. Two modules, so that ``pytest -n 2 --dist loadfile`` can run them side by side.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from snrbench.predict.sandbox import landlock_abi

from snrbench.predict import registry, runner
from snrbench.cli import main
from snrbench.families import load_suite

__all__ = ['DATA', 'RESULTS_ENV', 'SKIPPED', 'Bench', 'bench', 'REPO', 'GUARDED', '_repo_hashes', 'repo_before', '_cwd', '_fast_entry', '_broken_entry', '_tree', '_submit', '_assert_unchanged_after', '_reject', '_alive_with', 'check_repo_unchanged_and_no_process_left']

DATA = Path(__file__).parent / "data"
RESULTS_ENV = "SNRBENCH_TEST_RESULTS"  # absolute results path, visible to the entries' workers
SKIPPED = "skipped: the entry already failed 3 cells (never run)"


@dataclass(frozen=True)
class Bench:
    results: Path
    labels: list  # cell labels in suite order (the order a single worker runs them)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    base = tmp_path_factory.mktemp("submit")
    (base / "tasks").mkdir()
    shutil.copy(DATA / "exact-rbm.toml", base / "tasks" / "exact-rbm.toml")
    (base / "predictors").mkdir()  # empty: no built-in entries
    results = base / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SNRBENCH_TASKS", str(base / "tasks"))
        mp.setenv("SNRBENCH_PREDICTORS", str(base / "predictors"))
        mp.setenv(RESULTS_ENV, str(results))
        mp.chdir(base)
        assert main(["--results", str(results), "groundtruth", "--quiet", "--workers", "1"]) == 0
        assert (results / "ground_truth" / "exact-rbm.parquet").is_file()
        labels = [c.label for c in load_suite("exact-rbm")[1]]
        assert len(labels) == 4
        yield Bench(results, labels)


REPO = Path(__file__).resolve().parents[1]
#: What no submission may change (must-show 2 of the submissions issue); bytecode caches excluded.
GUARDED = ["results", "leaderboard", "src", "tasks", "predictors", "README.md"]


def _repo_hashes() -> dict:
    out = {}
    for top in GUARDED:
        paths = [REPO / top] if (REPO / top).is_file() else sorted((REPO / top).rglob("*"))
        for p in paths:
            if p.is_file() and "__pycache__" not in p.parts:
                out[str(p.relative_to(REPO))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module", autouse=True)
def repo_before():
    """The repository's guarded files before this module's hostile set runs."""
    return _repo_hashes()


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _fast_entry(name: str, access: str = "sampler-only", cls: str = "Fast") -> str:
    """A valid entry that answers instantly (no sampling)."""
    return textwrap.dedent(f"""\
        import numpy as np
        from snrbench.predict import Prediction


        class {cls}:
            name, access = {name!r}, {access!r}

            def predict(self, problem):
                g2 = float(problem.data_mean @ problem.data_mean)
                return Prediction(np.log10(g2) - np.log10(problem.T * 1.0), tau=1.0, grad_norm2=g2)
        """)


def _broken_entry(body: str, name: str = "broken", access: str = "sampler-only") -> str:
    """An entry whose predict() runs ``body`` (indented 8 spaces by this function)."""
    return textwrap.dedent(f"""\
        import os
        import time

        import numpy as np
        from snrbench.predict import Prediction


        class Broken:
            name, access = {name!r}, {access!r}

            def predict(self, problem):
        """) + textwrap.indent(textwrap.dedent(body), " " * 8)


def _tree(root: Path) -> dict:
    """SHA-256 of every file under ``root`` (and every folder, as a marker), nothing excluded."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def _submit(bench: Bench, tmp_path: Path, entry, *, workers=1, time_limit=None) -> int:
    argv = ["--results", str(bench.results), "submit", str(entry), "--quiet", "--workers", str(workers),
            "--out", str(tmp_path / "lb"), "--budget", "65536"]  # the ladder's first rung: the README test runs all
    if time_limit is not None:
        argv += ["--time-limit", str(time_limit)]
    return main(argv)


def _assert_unchanged_after(bench, tmp_path, capsys, run, rc_expected):
    """Run ``run()``; check its return code and that results/, the cwd and --out are untouched."""
    results_before, cwd_before = _tree(bench.results), sorted(os.listdir(tmp_path))
    assert results_before  # the ground truth is there to be protected
    capsys.readouterr()
    rc = run()
    cap = capsys.readouterr()
    assert rc == rc_expected, cap.err
    assert _tree(bench.results) == results_before
    assert not (tmp_path / "lb").exists()
    assert sorted(os.listdir(tmp_path)) == cwd_before  # no default leaderboard/ or results/ in the cwd
    assert " stored" not in cap.out and "wrote" not in cap.out
    return cap


def _reject(bench, tmp_path, capsys, source: str, per_cell: list, *, time_limit=60) -> dict:
    """Submit ``source``: rejected, one line per cell, ``per_cell[i]`` in the message of cell i
    (cells run in suite order on one worker; the 4th is skipped after 3 failures)."""
    path = tmp_path / "entry.py"
    path.write_text(source)
    cap = _assert_unchanged_after(bench, tmp_path, capsys,
                                  lambda: _submit(bench, tmp_path, path, workers=1, time_limit=time_limit), 1)
    err = cap.err
    assert re.search(r"broken \((sampler-only|white-box)\) on exact-rbm at budget [0-9,]+: 4 of 4 cells failed; "
                     r"nothing stored for it", err)
    assert len(re.findall("cells failed; nothing stored", err)) == 1  # the lower budgets are not tried after
    assert "submit: rejected; results/ is unchanged" in err
    cell_lines = [ln.strip() for ln in err.splitlines() if ln.strip().startswith("cell ")]
    assert len(cell_lines) == len(per_cell) == len(bench.labels) - 1
    msgs = {}
    for label in bench.labels[:-1]:
        mine = [ln for ln in cell_lines if ln.startswith(f"cell {label}: ")]
        assert len(mine) == 1, (label, err)
        msgs[label] = mine[0][len(f"cell {label}: "):]
    for label, expected in zip(bench.labels, per_cell):
        assert expected in msgs[label], (label, msgs[label])
    assert f"1 more cell(s) {SKIPPED}" in err  # the 4th, summarised
    return msgs


def _alive_with(token: str) -> list[int]:
    """Live processes whose command line contains ``token``."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in cmd and state != "Z":
            out.append(int(pid))
    return out


def check_repo_unchanged_and_no_process_left(repo_before: dict, token: str) -> None:
    """SHA-256 of every file under results/ leaderboard/ src/ tasks/ predictors/ and README.md is as
    in ``repo_before``; no process of this pytest worker is left, nor any child named ``token``."""
    from snrbench.predict.launcher import running
    from snrbench.predict.sandbox import process_tree

    assert _repo_hashes() == repo_before
    # pytest is the runners' subreaper (orphans land here); its only children left are the session's warm
    # launchers (conftest.py) and the helpers of its own libraries, and none of them has a child
    left = sorted(set(process_tree(os.getpid())) - {os.getpid(), *running(), *_library_helpers(os.getpid())})
    assert left == [], [(pid, _describe(pid)) for pid in left]
    assert _alive_with(token) == []


#: Command lines of the helpers multiprocessing starts once and keeps for the life of its process
#: (a Dask LocalCluster, test_attack_round3 and test_dask, starts the resource tracker).
_HELPERS = (b"from multiprocessing.resource_tracker import main", b"from multiprocessing.forkserver import main")


def _library_helpers(parent: int) -> list[int]:
    """The children of ``parent`` in its own session (where no process of an entry can be: a worker
    starts a session of its own, and none can join another) that run a multiprocessing helper."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(stat[1]) == parent and int(stat[3]) == os.getsid(parent) and any(h in cmd for h in _HELPERS):
            out.append(int(pid))
    return out


def _describe(pid: int) -> str:
    """``pid``'s state, parent, session and command line, for a failure message."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError as exc:
        return f"gone ({exc.strerror})"
    return f"state {stat[0]}, ppid {stat[1]}, sid {stat[3]}: {cmd[:200]}"
