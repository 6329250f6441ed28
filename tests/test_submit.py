"""``snrbench submit`` on the 4-cell fixture suite: the README example is accepted and published;
broken entries are refused with one message per cell and leave ``results/`` byte-for-byte
unchanged; name clashes, the access tiers, the budget and installed entry points.

Every submission runs with cwd = the test's tmp folder and explicit ``--results``/``--out``, and
``SNRBENCH_PREDICTORS`` points at an empty folder so the (slow) built-in entries are neither run
nor registered.
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


# ---------------------------------------------------------------------------------------------
# 1. The README example


def test_readme_example_is_accepted_and_published(bench, tmp_path, capsys, readme_example):
    code = readme_example
    assert "class TraceIat" in code
    assert len(code.splitlines()) <= 25
    path = tmp_path / "my_predictor.py"
    path.write_text(code)
    out = tmp_path / "lb"
    capsys.readouterr()
    rc = main(["--results", str(bench.results), "submit", str(path), "--quiet", "--workers", "2", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "submit: trace-iat (sampler-only) stored" in cap.out
    stored = bench.results / "predictions" / "trace-iat.parquet"
    assert stored.is_file()
    df = pd.read_parquet(stored)
    from snrbench.predict import BUDGETS

    assert len(df) == 4 * 17 * len(BUDGETS) and set(df.label) == set(bench.labels) and set(df.budget) == set(BUDGETS)
    assert np.isfinite(df.log10_q).all() and (df.tau > 0).all() and (df.grad_norm2 > 0).all()
    assert ((df.sweeps > 0) & (df.sweeps <= df.budget)).all()
    assert (bench.results / "scores.parquet").is_file()
    capsys.readouterr()
    assert main(["--results", str(bench.results), "verify"]) == 0
    assert "snrbench verify: all files" in capsys.readouterr().out
    assert "trace-iat" in (out / "README.md").read_text()
    assert not (tmp_path / "leaderboard").exists()


# ---------------------------------------------------------------------------------------------
# 2. Broken entries: refused per cell, nothing stored


def test_entry_that_raises_is_rejected(bench, tmp_path, capsys):
    src = _broken_entry('raise RuntimeError("boom")\n')
    line = src.splitlines().index('        raise RuntimeError("boom")') + 1
    msg = f"raised RuntimeError: boom (at entry.py:{line})"
    _reject(bench, tmp_path, capsys, src, [msg] * 3)


def test_entry_returning_nan_is_rejected(bench, tmp_path, capsys):
    src = _broken_entry("""\
        q = np.zeros(len(problem.T))
        q[5] = np.nan
        return Prediction(q, tau=1.0, grad_norm2=1.0)
        """)
    _reject(bench, tmp_path, capsys, src, ["log10_q contains NaN at T index [5]"] * 3)


def test_entry_returning_wrong_length_is_rejected(bench, tmp_path, capsys):
    src = _broken_entry("return Prediction(np.zeros(5), tau=1.0, grad_norm2=1.0)\n")
    _reject(bench, tmp_path, capsys, src, ["log10_q has shape (5,); expected (17,)"] * 3)


def test_entry_exceeding_the_time_limit_is_killed(bench, tmp_path, capsys):
    src = _broken_entry("time.sleep(60)\n")
    _reject(bench, tmp_path, capsys, src, ["exceeded the time limit of 3 s per cell (killed)"] * 3, time_limit=3)


def test_entry_reading_stored_results_is_rejected(bench, tmp_path, capsys):
    # One variant per cell: open() by absolute path, os.listdir() of the results folder, and
    # open() by a path relative to the worker's cwd (through "..").
    a, b, c = bench.labels[:3]
    src = _broken_entry(f"""\
        root = os.environ[{RESULTS_ENV!r}]
        if problem.label == {a!r}:
            with open(root + "/ground_truth/exact-rbm.parquet", "rb") as fh:
                fh.read()
        elif problem.label == {b!r}:
            os.listdir(root)
        elif problem.label == {c!r}:
            with open(os.path.relpath(root + "/manifest.json", os.getcwd())) as fh:
                fh.read()
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """, access="white-box")  # the white-box tier is told the cell's label
    assert os.path.relpath(bench.results, tmp_path).startswith("..")
    root = str(bench.results.resolve())
    msgs = _reject(bench, tmp_path, capsys, src, ["tried to read stored results"] * 3)
    assert f"({root}/ground_truth/exact-rbm.parquet)" in msgs[a]
    assert f"({root})" in msgs[b]
    assert f"({root}/manifest.json)" in msgs[c]


# ---------------------------------------------------------------------------------------------
# 3. Registry clashes, access tiers, budget


def test_two_classes_with_the_same_name_and_access_are_refused(bench, tmp_path, capsys):
    path = tmp_path / "twice.py"
    path.write_text(_fast_entry("twice", cls="First") + "\n\n" + _fast_entry("twice", cls="Second").split("\n\n\n", 1)[1])
    with pytest.raises(registry.RegistryError) as info:
        registry.load_file(path)
    msg = str(info.value)
    assert "duplicate entry twice (sampler-only)" in msg
    assert f"{path.resolve()}::First" in msg and f"{path.resolve()}::Second" in msg
    cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, path), 2)
    assert "duplicate entry twice (sampler-only)" in cap.err


def test_name_already_on_the_leaderboard_is_refused(bench, tmp_path, monkeypatch, capsys):
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    (builtin / "taken.py").write_text(_fast_entry("taken-name", cls="Taken"))
    monkeypatch.setenv("SNRBENCH_PREDICTORS", str(builtin))
    assert ("taken-name", "sampler-only") in [e.key for e in runner.all_entries()]
    mine = tmp_path / "mine.py"
    mine.write_text(_fast_entry("taken-name", cls="Mine"))
    cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, mine), 2)
    assert "entry name 'taken-name' is taken by" in cap.err and "taken.py" in cap.err


def test_black_box_entry_reading_the_exact_operator_is_rejected(bench, tmp_path, capsys):
    src = _broken_entry("problem.exact.solution\n")
    _reject(bench, tmp_path, capsys, src, ["raised AccessError: problem.exact is for white-box entries only"] * 3)


def test_entry_over_the_budget_is_rejected(bench, tmp_path, capsys):
    src = _broken_entry("problem.sampler(64).run(problem.budget // 64 + 1)\n")  # the ladder's first rung, 2^10·64
    _reject(bench, tmp_path, capsys, src, ["raised BudgetExceeded: 1025 sweeps × 64 chains would use 65,600 "
                                           "chain-sweeps; the cell's budget is 65,536"] * 3)


# ---------------------------------------------------------------------------------------------
# 4. An installed entry point


def test_installed_entry_point_is_registered_and_submitted(bench, tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "fake_entry.py").write_text(_fast_entry("fake-entry", cls="FakeEntry"))
    dist = pkg / "fake_entry-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-entry\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[snrbench.predictors]\nfake = fake_entry:FakeEntry\n")
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pkg)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    monkeypatch.delitem(sys.modules, "fake_entry", raising=False)
    try:
        entries = {e.key: e for e in runner.all_entries()}
        assert entries[("fake-entry", "sampler-only")].source == "entrypoint:fake:FakeEntry"
        out = tmp_path / "lb"
        capsys.readouterr()
        rc = main(["--results", str(bench.results), "submit", "fake", "--quiet", "--workers", "2", "--out", str(out),
                   "--budget", "65536"])  # the ladder's first rung: the README test runs all
        cap = capsys.readouterr()
        assert rc == 0, cap.err
        assert "submit: fake-entry (sampler-only) stored" in cap.out
        df = pd.read_parquet(bench.results / "predictions" / "fake-entry.parquet")
        assert set(df.label) == set(bench.labels) and set(df.source) == {"entrypoint:fake:FakeEntry"}
        assert main(["--results", str(bench.results), "verify"]) == 0
        assert "fake-entry" in (out / "README.md").read_text()
    finally:
        sys.modules.pop("fake_entry", None)


# ---------------------------------------------------------------------------------------------
# Regressions: optional Prediction fields, reads at import/__init__ time, reads by native code


def test_entry_reporting_neither_tau_nor_grad_norm2_is_stored(bench, tmp_path, capsys):
    path = tmp_path / "bare.py"
    path.write_text(_fast_entry("bare", cls="Bare").replace(", tau=1.0, grad_norm2=g2)", ")"))
    assert "Prediction(np.log10(g2) - np.log10(problem.T * 1.0))" in path.read_text()
    capsys.readouterr()
    rc = _submit(bench, tmp_path, path, workers=1)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    df = pd.read_parquet(bench.results / "predictions" / "bare.parquet")
    assert df.tau.isna().all() and df.grad_norm2.isna().all()


@pytest.mark.parametrize("slow_runner", [False, True])
def test_entry_reading_stored_results_in_init_is_rejected(bench, tmp_path, capsys, monkeypatch, slow_runner):
    """``slow_runner``: the worker's ``__init__`` fails before the runner sends the first cell (the
    order a fast machine gives); its answer must still come in turn, naming the read."""
    if slow_runner:
        put_cell = runner._Worker.put_cell

        def late_put_cell(self, *args, **kwargs):
            time.sleep(3.0)
            return put_cell(self, *args, **kwargs)

        monkeypatch.setattr(runner._Worker, "put_cell", late_put_cell)
    path = tmp_path / "init_read.py"
    path.write_text(textwrap.dedent(f"""\
        import os
        import numpy as np
        from snrbench.predict import Prediction


        class InitRead:
            name, access = "init-read", "sampler-only"

            def __init__(self):
                with open(os.environ[{RESULTS_ENV!r}] + "/ground_truth/exact-rbm.parquet", "rb") as fh:
                    self.raw = fh.read()

            def predict(self, problem):
                return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """))
    capsys.readouterr()
    rc = _submit(bench, tmp_path, path, workers=1)
    cap = capsys.readouterr()
    assert rc == 1 and "could not instantiate the entry: tried to read stored results" in cap.err, cap.err
    assert "outside its turn" not in cap.err


@pytest.mark.parametrize("where", ["__init__", "predict"])
def test_an_exception_whose_message_raises_is_reported_by_its_type(bench, tmp_path, capsys, where):
    """The worker formats the entry's exception, an object the entry wrote: one whose ``__str__``
    raises (and whose metaclass lies about its name) must not take the worker down or hide the
    failure. The runner names the real type; nothing is stored."""
    path = tmp_path / "evil_str.py"
    raise_it = "raise Evil()"
    path.write_text(textwrap.dedent(f"""\
        import numpy as np
        from snrbench.predict import Prediction


        class Liar(type):
            @property
            def __name__(cls):
                raise RuntimeError("no name either")


        class Evil(Exception, metaclass=Liar):
            def __str__(self):
                raise RecursionError("no message")

            __repr__ = __str__


        class EvilStr:
            name, access = "evil-str", "sampler-only"

            def __init__(self):
                {raise_it if where == "__init__" else "pass"}

            def predict(self, problem):
                {raise_it}
        """))
    before = _tree(bench.results)
    capsys.readouterr()
    rc = _submit(bench, tmp_path, path, workers=1)
    cap = capsys.readouterr()
    assert rc == 1 and "raised Evil whose message could not be read (RuntimeError while formatting it)" in cap.err, cap.err
    assert "exited with code" not in cap.err and _tree(bench.results) == before


@pytest.mark.skipif(landlock_abi() < 1, reason="needs Linux Landlock to confine native-code reads")
def test_entry_reading_stored_results_with_pyarrow_is_rejected(bench, tmp_path, capsys):
    src = _broken_entry(f"""\
        import pyarrow.parquet as pq
        t = pq.read_table(os.environ[{RESULTS_ENV!r}] + "/ground_truth/exact-rbm.parquet").to_pandas()
        q = t[t.label == problem.label].sort_values("T").log10_q.to_numpy()
        return Prediction(q, tau=1.0, grad_norm2=1.0)
        """, name="pyarrow-read", access="white-box")
    path = tmp_path / "pa_read.py"
    path.write_text(src)
    capsys.readouterr()
    rc = _submit(bench, tmp_path, path, workers=1)
    cap = capsys.readouterr()
    assert rc == 1 and "tried to read stored results" in cap.err, cap.out


# ---------------------------------------------------------------------------------------------
# 5. Hostile entries: processes, memory, logs, the answer channel, names


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


@pytest.mark.parametrize("kind", ["fork", "setsid"])
def test_children_of_an_entry_do_not_outlive_its_run(bench, tmp_path, capsys, kind):
    """A child that keeps the worker's pipes open (fork), or leaves its session (setsid), is killed
    with the worker: the run ends at the time limit and no process of it is left."""
    token = f"{os.getpid()}.{kind}"
    setsid = "os.setsid()" if kind == "setsid" else "pass"
    src = _broken_entry(f"""\
        if os.fork() == 0:
            {setsid}
            os.execvp("sleep", ["snrbench-test-child-{token}", "613"])
        time.sleep(60)
        """)
    _reject(bench, tmp_path, capsys, src, ["exceeded the time limit of 3 s per cell (killed)"] * 3, time_limit=3)
    assert _alive_with(token) == []


def test_memory_is_capped(bench, tmp_path, capsys):
    src = _broken_entry("np.empty(12 * 2**30 // 8)\n")
    _reject(bench, tmp_path, capsys, src, ["raised MemoryError"] * 3)


def test_the_log_is_capped(bench, tmp_path, capsys):
    src = _broken_entry("""\
        for n in range(64):
            try:
                os.write(2, b"x" * 2**20)
            except OSError:
                raise RuntimeError(f"log capped after {n} MiB")
        raise RuntimeError("log not capped")
        """)
    msgs = list(_reject(bench, tmp_path, capsys, src, ["raised RuntimeError: log capped after "] * 3).values())
    # one worker answers the cells in turn: its log is full after the first
    assert re.search(r"log capped after 1[56] MiB", msgs[0]) and all("after 0 MiB" in m for m in msgs[1:]), msgs


def test_a_forged_answer_line_is_refused_by_the_parent(bench, tmp_path, capsys):
    """The entry writes a forged answer (NaN curve, negative tau and sweeps), with the task's nonce
    found in the worker's frames, into every pipe it can find; the runner re-checks every answer
    itself and stores nothing."""
    src = _broken_entry("""\
        import json, stat, sys
        f, nonce = sys._getframe(), None
        while f is not None:
            nonce = nonce or (f.f_locals.get("task") or {}).get("nonce")
            f = f.f_back
        line = json.dumps(dict(ok=True, log10_q=[float("nan")] * len(problem.T), tau=-1.0, grad_norm2=1.0,
                               sweeps=-5, seconds=0.0, nonce=nonce)) + "\\n"
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, line.encode())
            except OSError:
                pass
        time.sleep(0.5)
        raise RuntimeError("forged")
        """)
    _reject(bench, tmp_path, capsys, src, ["answer refused by the runner: log10_q must be 17 finite numbers"] * 3)


def test_a_name_with_a_trailing_newline_is_refused(bench, tmp_path, capsys):
    path = tmp_path / "nl.py"
    path.write_text(_fast_entry("evil\n"))
    cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, path), 2)
    assert "name 'evil\\n' must match" in cap.err and "in full" in cap.err


def test_a_stored_name_is_kept_by_its_file(bench, tmp_path, capsys):
    """Another file may not take a stored name, in either tier; the same file replaces its own
    predictions only with --replace."""
    first = tmp_path / "first.py"
    first.write_text(_fast_entry("owned-name"))
    capsys.readouterr()
    assert _submit(bench, tmp_path, first) == 0, capsys.readouterr().err
    shutil.rmtree(tmp_path / "lb")
    for tier in ("sampler-only", "white-box"):
        thief = tmp_path / f"thief_{tier[0]}.py"
        thief.write_text(_fast_entry("owned-name", access=tier))
        cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, thief), 2)
        assert f"entry name 'owned-name' is already stored by {first.resolve()}" in cap.err
    cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, first), 2)
    assert "resubmit with --replace" in cap.err
    argv = ["--results", str(bench.results), "submit", str(first), "--replace", "--quiet", "--workers", "1",
            "--out", str(tmp_path / "lb"), "--budget", "65536"]
    assert main(argv) == 0


def test_a_builtin_name_is_refused_in_the_other_tier(bench, tmp_path, monkeypatch, capsys):
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    (builtin / "taken.py").write_text(_fast_entry("taken-name", cls="Taken"))
    monkeypatch.setenv("SNRBENCH_PREDICTORS", str(builtin))
    other = tmp_path / "other.py"
    other.write_text(_fast_entry("taken-name", access="white-box"))
    cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, other), 2)
    assert "entry name 'taken-name' is taken by" in cap.err


def test_an_entry_cannot_write_the_code_that_scores_it(bench, tmp_path, capsys):
    """The package source, the venv, predictors/, leaderboard/ and README.md are not writable from
    the worker (opening for append is enough to show it; nothing is written). tasks/ is not even
    readable: it is a blocked folder, like results/ (the [spec] case of the weights test)."""
    import snrbench

    repo = Path(__file__).resolve().parents[1]
    targets = [Path(snrbench.__file__), Path(sys.prefix) / "pyvenv.cfg",
               repo / "predictors" / "pilot_q.py", repo / "leaderboard" / "README.md", repo / "README.md"]
    targets = [str(t) for t in targets if t.exists()]
    src = _broken_entry(f"""\
        wrote = []
        for path in {targets!r}:
            try:
                with open(path, "ab"):
                    wrote.append(path)
            except PermissionError:
                pass
        raise RuntimeError(f"writable: {{wrote}}" if wrote else "none writable")
        """)
    before = {t: hashlib.sha256(Path(t).read_bytes()).hexdigest() for t in targets}
    _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: none writable"] * 3)
    assert {t: hashlib.sha256(Path(t).read_bytes()).hexdigest() for t in targets} == before


def test_an_entry_cannot_read_a_copy_of_the_truth_elsewhere(bench, tmp_path, capsys):
    """A copy of the ground truth outside results/ (another clone, say) is out of reach too."""
    copy = tmp_path / "other-clone" / "results"
    shutil.copytree(bench.results / "ground_truth", copy / "ground_truth")
    target = str(copy / "ground_truth" / "exact-rbm.parquet")
    src = _broken_entry(f"open({target!r}, 'rb').read()\n")
    msgs = _reject(bench, tmp_path, capsys, src, ["PermissionError"] * 3)
    assert all("Permission denied" in m for m in msgs.values()), msgs


def test_native_code_cannot_step_around_the_confinement(bench, tmp_path, capsys):
    """Through a shell (no audit hook): /proc/self/root to the truth, the runner's memory and
    environment, links planted in the worker's folder, and files in /dev/shm
    that would outlive the run are all refused by the kernel."""
    truth = str(bench.results / "ground_truth" / "exact-rbm.parquet")
    cmds = [f"head -c1 /proc/self/root{truth}", "head -c1 /proc/PARENT/mem", "head -c1 /proc/PARENT/environ",
            f"ln -s {bench.results} lnk && head -c1 lnk/manifest.json", f"ln {bench.results}/manifest.json m.json",
            "echo x > /dev/shm/snrbench-probe-$$"]
    src = _broken_entry(f"""\
        import subprocess
        parent = str(os.getppid())  # the runner
        rc = [subprocess.run(["sh", "-c", c.replace("PARENT", parent)], capture_output=True).returncode
              for c in {cmds!r}]
        raise RuntimeError(f"exit codes {{rc}}")
        """)
    msgs = _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: exit codes ["] * 3)
    codes = [list(map(int, re.search(r"exit codes \[([^]]*)\]", m).group(1).split(","))) for m in msgs.values()]
    assert all(all(c != 0 for c in cell) for cell in codes), codes
    assert not list(Path("/dev/shm").glob("snrbench-probe-*"))


# ---------------------------------------------------------------------------------------------
# 6. Tiers that hold: the meter lives in the sampler process; sampler-only entries never hold W

_HUNT = """\
    import gc, sys
    from snrbench.core.model import RBM
    n, m = problem.info.n_visible, problem.info.n_hidden

    def is_weights(x):
        try:
            return isinstance(x, RBM) or tuple(x.shape) in ((n, m), (m, n))
        except Exception:
            return False

    def search(x, depth=0, seen=set()):
        if id(x) in seen or depth > 4:
            return []
        seen.add(id(x))
        if is_weights(x):
            return [x]
        if isinstance(x, dict):
            kids = list(x.values())
        elif isinstance(x, (list, tuple, set)):
            kids = list(x)
        else:
            kids = list(getattr(x, "__dict__", {}).values())
        return [w for k in kids for w in search(k, depth + 1)]
    """

#: route → code that leaves what it found (weights, a model) in ``found`` and why not in ``why``.
_WEIGHT_ROUTES = {
    "problem": """\
        found, why = search(problem), ""
        try:
            found.append(problem.model)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
        """,
    "gc": """\
        found = [o for o in gc.get_objects() if is_weights(o)]
        found += [r for o in gc.get_objects() for r in gc.get_referents(o) if is_weights(r)]
        why = f"{len(gc.get_objects())} objects searched"
        """,
    "frames": """\
        found, f = [], sys._getframe()
        while f is not None:
            found += search(f.f_locals) + search(f.f_globals)
            f = f.f_back
        why = "every frame's locals and globals searched"
        """,
    "spec": """\
        found, why = [], []
        from snrbench.families import get, load_suite
        for suite in (os.environ.get("SNRBENCH_TASKS", "") + "/exact-rbm.toml", "exact-rbm"):
            try:
                found += [get("exact-rbm").build_model(c.spec) for c in load_suite(suite)[1]]
            except Exception as exc:
                why.append(f"{type(exc).__name__}: {exc}")
        """,
    "exact-solver": """\
        found, why = [], []
        from snrbench.truth.exact import solve
        s = problem.sampler(8)
        for args in [(problem,), (problem.info,), (s,), (problem.data_mean,), (s.v.numpy(),)]:
            try:
                solve(*args)
                found.append(args)
            except Exception as exc:
                why.append(type(exc).__name__)
        try:
            found.append(solve(problem.model, problem.data))
        except Exception as exc:
            why.append(f"{type(exc).__name__}: {exc}")
        """,
    "sampler-process": """\
        found, why = [], []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"_sampler_service" in cmd:
                fds = [f"fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]  # numbers only: no access
                for what in ["mem", "environ", "maps", "root/tmp", "cwd/cell.npz"] + fds:
                    try:
                        with open(f"/proc/{pid}/{what}", "rb") as fh:
                            found.append(fh.read(1))
                    except OSError as exc:
                        why.append(f"{what}: {exc.strerror}")
        import glob
        found += glob.glob("/tmp/*/cell.npz")
        """,
}


@pytest.mark.parametrize("route", list(_WEIGHT_ROUTES))
def test_a_sampler_only_entry_cannot_reach_the_weights(bench, tmp_path, capsys, route):
    """Through the problem, the garbage collector, the stack frames, the suite spec, the exact
    solver on what it can see, or the sampler process: nothing in the entry's process holds W.
    Had it found them, the entry would have answered (and been stored)."""
    src = _broken_entry("".join(textwrap.dedent(part) for part in (_HUNT, _WEIGHT_ROUTES[route], f"""\
        if found:
            return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        raise LookupError(f"no weights via {route} ({{why}})")
        """)), access="sampler-only")
    msgs = _reject(bench, tmp_path, capsys, src, [f"raised LookupError: no weights via {route}"] * 3)
    if route == "problem":
        assert all("problem.model is for model and white-box entries only" in m for m in msgs.values())
    if route == "spec":
        assert all("PermissionError" in m and "exact-rbm.toml" in m for m in msgs.values()), msgs


def test_the_meter_cannot_be_reset_or_raised_from_the_entry(bench, tmp_path, capsys):
    """The entry samples 1024 sweeps × 64 chains, then zeroes every counter it can reach, raises
    its budget and sends the sampler process a request to load another cell: the stored cost is
    still 65,536 chain-sweeps per cell."""
    path = tmp_path / "reset.py"
    path.write_text(_broken_entry("""\
        s = problem.sampler(64)
        s.run(1024)
        client = problem._meter
        for obj in [problem, client, s]:
            for key in list(vars(obj)):
                if "used" in key or "budget" in key or key == "_meter":
                    try:
                        setattr(obj, key, 0 if "used" in key else 10**15)
                    except Exception:
                        pass
        try:
            client._ask(dict(op="cell", cell_file="/dev/null", seed=0, observables="weights", budget=0))
        except Exception as exc:
            assert "unknown request 'cell'" in str(exc), exc
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """, name="meter-reset"))
    capsys.readouterr()
    assert _submit(bench, tmp_path, path, workers=2) == 0, capsys.readouterr().err
    stored = pd.read_parquet(bench.results / "predictions" / "meter-reset.parquet")
    assert set(stored.sweeps) == {1024 * 64}
    assert (stored.cpu_seconds >= 0).all() and (stored.seconds > 0).all()


def test_raising_the_budget_in_the_entry_does_not_lift_it(bench, tmp_path, capsys):
    src = _broken_entry("""\
        problem.budget = 2**40
        problem.sampler(64).run(2**10 + 1)
        """)
    _reject(bench, tmp_path, capsys, src, ["the cell's budget is 65,536"] * 3)


def test_hostile_requests_to_the_sampler_process_get_errors(bench, tmp_path, capsys):
    """Malformed requests (bad ids, sizes, types, a reply too large, garbage bytes) are refused by
    the sampler process with a message, and it goes on serving (an extra key is ignored)."""
    src = _broken_entry("""\
        m = problem._meter
        errors = []
        for req in [dict(op="new", n_chains=2**17), dict(op="new", n_chains=-1), dict(op="new", n_chains=True),
                    dict(op="new", n_chains=4, dtype="int8"), dict(op="call", id=99, call="run", n=1),
                    dict(op="new", n_chains=4), dict(op="call", id=0, call="run", n=2**40),
                    dict(op="call", id=0, call="exec", n=1), dict(op="stream", id=0, blocks=2**12, n=2**10),
                    [1, 2], dict(op="used", extra="x" * 10)]:
            try:
                m._ask(req)
                errors.append("accepted")
            except Exception as exc:
                errors.append(type(exc).__name__)
        s = problem.sampler(2**15)
        try:
            s.record(2**12, ("v", "observables"))
        except ValueError as exc:
            errors.append("record too large" if "per block" in str(exc) else str(exc))
        from snrbench.predict._sampler_service import _send_frame
        _send_frame(m._sock, b"not json")
        try:
            m._frame()
        except Exception as exc:
            errors.append(type(exc).__name__)
        raise RuntimeError(f"answers {errors}")
        """)
    msgs = _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: answers ["] * 3)
    expected = ("['ValueError', 'ValueError', 'ValueError', 'ValueError', 'ValueError', 'accepted', 'ValueError', "
                "'ValueError', 'BudgetExceeded', 'ValueError', 'accepted', 'record too large', 'ValueError']")
    assert all(expected in m for m in msgs.values()), msgs


def test_a_forged_discovery_line_cannot_name_a_path_or_another_file(bench, tmp_path, capsys):
    """The submission's import-time code writes its own discovery answer (a name that is a path
    into results/, a source that is not this file) and exits: the parent re-checks and refuses."""
    for forged, expected in ((dict(name="../../../results/ground_truth/exact-rbm"), "must match"),
                             (dict(source="/etc/passwd::X"), "not a class of this file"),
                             (dict(source_sha256="0" * 64), "not a class of this file")):
        path = tmp_path / "forger.py"
        entry = dict(name="forger", access="sampler-only", source=f"{path}::Forger", source_sha256="0" * 64)
        entry.update(forged)
        path.write_text(textwrap.dedent(f"""\
            import json, os
            os.write(3, (json.dumps(dict(ok=True, entries=[{entry!r}])) + "\\n").encode())  # at import: discovery
            os._exit(0)
            """) + _fast_entry("forger", cls="Forger"))
        cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, path), 2)
        assert expected in cap.err, (forged, cap.err)


def test_reading_the_states_is_charged(bench, tmp_path, capsys):
    """E[h|v] of n + 1 states gives W by regression: reading states is metered like one sweep."""
    path = tmp_path / "peek.py"
    path.write_text(_broken_entry("""\
        s = problem.sampler(problem.info.n_visible + 1)
        s.v, s.basis_features()
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """, name="peek"))
    capsys.readouterr()
    assert _submit(bench, tmp_path, path) == 0, capsys.readouterr().err
    stored = pd.read_parquet(bench.results / "predictions" / "peek.parquet")
    assert set(stored.sweeps) == {2 * 7}  # the fixture's cells have n = 6 visible units


def test_an_endless_answer_line_kills_the_worker(bench, tmp_path, capsys):
    src = _broken_entry("""\
        for fd in range(3, 16):
            try:
                os.write(fd, b"x" * 2**21)
            except OSError:
                pass
        time.sleep(30)
        """)
    _reject(bench, tmp_path, capsys, src, ["the worker sent an answer line over 1,048,576 characters"] * 3)


@pytest.mark.skipif(landlock_abi() < 6, reason="needs Landlock ABI 6 (signal scoping)")
def test_an_entry_cannot_signal_the_runner_or_open_a_tcp_connection(bench, tmp_path, capsys):
    src = _broken_entry("""\
        import signal, socket
        out = []
        for what in ("stop the runner", "connect"):
            try:
                if what == "connect":
                    socket.create_connection(("127.0.0.1", 9), timeout=2)
                else:  # the runner: the parent of the worker's parent, by /proc (the worker may sit in a PID namespace)
                    ppid = lambda pid: int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
                    os.kill(ppid(ppid("self")), signal.SIGSTOP)
                out.append(f"{what}: done")
            except OSError as exc:
                out.append(f"{what}: {exc.strerror}")
        raise RuntimeError(str(out))
        """)
    msgs = _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: ['stop the runner: "] * 3)
    # own /proc: the runner is not there to find; seccomp: no socket; else Landlock refuses both
    assert all(re.search(r"stop the runner: (Operation not permitted|No such process|No such file or directory)', "
                         r"'connect: (Permission denied|Operation not permitted)'", m)
               for m in msgs.values()), msgs


def test_a_stalled_frame_or_acknowledgement_does_not_hang_the_sampler(monkeypatch):
    """Half a frame, or a stream never acknowledged: the sampler process drops that worker after
    its timeout and goes on answering the runner."""
    import io
    import socket
    import threading

    from snrbench.families import get
    from snrbench.predict import _sampler_service as ss

    monkeypatch.setattr(ss, "FRAME_TIMEOUT", 0.5)
    monkeypatch.setattr(ss, "ACK_TIMEOUT", 0.5)
    fam, cell = get("exact-rbm"), load_suite("exact-rbm")[1][0]
    for stall in ("half a frame", "no acknowledgement"):
        ours, theirs = socket.socketpair()
        r_ctl, w_ctl = os.pipe()
        r_out, w_out = os.pipe()
        ctl_in, ctl_out = os.fdopen(r_ctl), os.fdopen(w_out, "w")
        shm = ss.shared_memory()
        server = threading.Thread(target=ss.serve, args=(ours, shm, ctl_in, ctl_out), daemon=True)
        server.start()
        runner_in, runner_out = os.fdopen(w_ctl, "w"), os.fdopen(r_out)
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"stall-{os.getpid()}.npz"
        from snrbench.core.arrays import model_arrays
        np.savez(path, data=fam.build_data(cell.spec), **model_arrays(fam.build_model(cell.spec)))
        runner_in.write(json.dumps(dict(op="cell", cell_file=str(path), seed=1, observables="weights",
                                        budget=2**22)) + "\n")
        runner_in.flush()
        assert json.loads(runner_out.readline())["ok"]
        client = ss.MeterClient(theirs, shm)
        if stall == "half a frame":
            theirs.send(b"\x01")
        else:
            sid, _ = client.new(4)
            ss._send_frame(theirs, json.dumps(dict(op="stream", id=sid, blocks=8, n=2, what=["v"])).encode())
        time.sleep(1.5)
        runner_in.write(json.dumps(dict(op="used")) + "\n")
        runner_in.flush()
        import select
        assert select.select([runner_out], [], [], 5)[0], f"{stall}: the sampler no longer answers the runner"
        assert json.loads(runner_out.readline())["ok"], stall
        runner_in.close()
        server.join(timeout=5)
        assert not server.is_alive()
        for f in (runner_out, ctl_in, ctl_out, theirs, ours, client._shm):
            f.close()
        path.unlink()
        os.close(shm)


def _pid_namespaces() -> bool:
    """Whether this kernel and user may make PID namespaces (as the worker does)."""
    pid = os.fork()
    if pid == 0:
        import ctypes
        os._exit(0 if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) == 0 else 1)
    return os.waitpid(pid, 0)[1] == 0


@pytest.mark.skipif(not _pid_namespaces(), reason="needs PID namespaces (CAP_SYS_ADMIN)")
def test_a_comet_of_forks_that_leave_their_session_dies_with_the_worker(bench, tmp_path, capsys):
    """A child that forks and exits without end, each generation in a new session (no process
    lives long enough to be killed by pid): the worker's PID namespace ends them all."""
    path = tmp_path / "comet.py"
    path.write_text(_broken_entry("""\
        if os.fork() == 0:
            while True:
                if os.fork():
                    os._exit(0)
                os.setsid()
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """, name="comet"))
    capsys.readouterr()
    assert _submit(bench, tmp_path, path, workers=2) == 0, capsys.readouterr().err
    time.sleep(1)
    assert _alive_with(str(path)) == []


def test_the_cpu_time_of_a_worker_is_capped(bench, tmp_path):
    """RLIMIT_CPU: a worker that spins past its CPU seconds is killed by the kernel (SIGXCPU)."""
    path = tmp_path / "spin.py"
    path.write_text(_broken_entry("while True:\n    pass\n", name="spin"))
    entries = runner.discover(str(path), bench.results)
    cells = load_suite("exact-rbm")[1][:1]
    run = runner.run_entry(entries[0], "exact-rbm", cells, bench.results, time_limit=120, limits=dict(cpu_seconds=3))
    assert run.results[0].error == "worker exceeded its CPU-time limit of 3 s (killed by SIGXCPU)", run.results[0]


def test_cpu_burnt_outside_the_metered_sampler_shows_in_the_cost(bench, tmp_path):
    """Cost is honest: an entry that spins 1.5 CPU-seconds itself and 1.5 in a child it waits for,
    never touching the sampler, is charged 0 chain-sweeps and ≥ 2.5 CPU seconds (its whole tree,
    also where the worker runs as a PID namespace's init under a wrapper)."""
    path = tmp_path / "burner.py"
    path.write_text(_broken_entry("""\
        def spin(s):
            t = time.process_time()
            while time.process_time() - t < s:
                pass
        pid = os.fork()
        if pid == 0:
            spin(1.5)
            os._exit(0)
        spin(1.5)
        os.waitpid(pid, 0)
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """, name="burner"))
    entries = runner.discover(str(path), bench.results)
    cells = load_suite("exact-rbm")[1][:1]
    res = runner.run_entry(entries[0], "exact-rbm", cells, bench.results, time_limit=120).results[0]
    assert res.ok, res.error
    assert res.sweeps == 0 and res.cpu_seconds >= 2.5, res


def test_a_worker_running_too_many_processes_is_killed(bench, tmp_path, capsys):
    """More than 256 processes at once in a worker's tree: the kernel refuses the fork
    (RLIMIT_NPROC, non-root users) or the runner kills the tree (any user, root included)."""
    token = f"{os.getpid()}.nproc"
    src = _broken_entry(f"""\
        for k in range(400):
            try:
                if os.fork() == 0:
                    os.execvp("sleep", ["snrbench-test-child-{token}", "613"])
            except OSError:
                raise RuntimeError(f"fork refused after {{k}}")
            time.sleep(0.005)
        time.sleep(30)
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """)
    msgs = _reject(bench, tmp_path, capsys, src, [""] * 3, time_limit=50)
    assert all(re.search(r"more than the cap of 256 \(killed\)|fork refused after 2[0-9][0-9]", m) for m in msgs.values()), msgs
    assert _alive_with(token) == []


# ---------------------------------------------------------------------------------------------
# 7. Publishing: all or nothing, and never over damaged results


def test_a_failure_while_publishing_leaves_everything_as_it_was(bench, tmp_path, monkeypatch, capsys):
    """The leaderboard build fails after the entry ran on every cell: no predictions, no scores,
    no leaderboard and no README table are published (the staging folders are gone too)."""
    from snrbench.report import leaderboard

    def broken_build(root, out, **kw):
        Path(out, "README.md").write_text("half a leaderboard")
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr(leaderboard, "build", broken_build)
    path = tmp_path / "ok.py"
    path.write_text(_fast_entry("publish-fails"))
    cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, path), 2)
    assert "disk full while drawing" in cap.err
    assert not list(bench.results.parent.glob(".publish-*")) and not list(tmp_path.glob(".publish-*"))


def test_a_submission_over_damaged_ground_truth_is_refused_before_running(bench, tmp_path, monkeypatch, capsys):
    """A hand-edited ground-truth file: submit refuses before the entry is even imported (in its
    confined process) or anything is stored, and names the file."""
    imported = []
    monkeypatch.setattr(runner, "discover", lambda *a, **k: imported.append(a) or [])
    truth = bench.results / "ground_truth" / "exact-rbm.parquet"
    original = truth.read_bytes()
    path = tmp_path / "ok.py"
    path.write_text(_fast_entry("over-damaged"))
    try:
        truth.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        cap = _assert_unchanged_after(bench, tmp_path, capsys, lambda: _submit(bench, tmp_path, path), 2)
    finally:
        truth.write_bytes(original)
    assert "fail verification" in cap.err and "ground_truth/exact-rbm.parquet" in cap.err, cap.err
    assert "nothing was run or stored" in cap.err and imported == []


# ---------------------------------------------------------------------------------------------
# Last: after the whole hostile set


def test_after_the_hostile_set_the_repository_is_unchanged_and_no_process_is_left(repo_before):
    """SHA-256 of every file under results/ leaderboard/ src/ tasks/ predictors/ and README.md is
    as before the first test of this module, and no worker, sampler or child process is alive."""
    from snrbench.predict.sandbox import process_tree

    assert _repo_hashes() == repo_before
    assert process_tree(os.getpid()) == [os.getpid()]  # pytest is the runners' subreaper: orphans land here
    assert _alive_with("snrbench-test-child-") == []


@pytest.mark.skipif(landlock_abi() < 1, reason="needs Linux Landlock to confine native-code reads")
def test_entry_reading_the_leaderboards_csv_copy_of_the_truth_is_rejected(bench, tmp_path, capsys):
    """The page ships the ground truth as CSV (leaderboard/data/<family>.truth.csv) and inside
    index.html: a copy of the truth an entry must not read, natively (pyarrow) or in Python."""
    repo = Path(__file__).resolve().parents[1]
    csv = repo / "leaderboard" / "data" / "exact-rbm.truth.csv"
    assert csv.is_file()
    src = _broken_entry(f"""\
        import pyarrow.csv
        t = pyarrow.csv.read_csv({str(csv)!r}).to_pandas()
        page = open({str(repo / "leaderboard" / "index.html")!r}).read()
        q = t[t.label == problem.label].sort_values("T").log10_q.to_numpy()
        return Prediction(q, tau=1.0, grad_norm2=1.0)
        """, name="csv-read", access="white-box")
    path = tmp_path / "csv_read.py"
    path.write_text(src)
    capsys.readouterr()
    rc = _submit(bench, tmp_path, path, workers=1)
    cap = capsys.readouterr()
    assert rc == 1 and f"'{csv}'. Detail: [errno 13] Permission denied" in cap.err, cap.err[-3000:]
