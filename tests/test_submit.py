"""``snrbench submit`` on the 4-cell fixture suite (``submit_kit``): the README example is accepted and
published; broken entries are refused with one message per cell and leave ``results/`` byte-for-byte
unchanged; name clashes, the access tiers, the budget, installed entry points, publishing all or
nothing, and the truth's copies on the page. The hostile set is ``test_submit_hostile.py``."""
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

from submit_kit import *  # noqa: F401,F403 — the shared fixtures and helpers



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


# ---------------------------------------------------------------------------------------------
# Last: after the whole set of this module


def test_after_this_set_the_repository_is_unchanged_and_no_process_is_left(repo_before):
    """SHA-256 of every guarded file is as before the first test of this module, and no worker,
    sampler or child process of it is alive."""
    check_repo_unchanged_and_no_process_left(repo_before, "snrbench-test-child-submit-")
