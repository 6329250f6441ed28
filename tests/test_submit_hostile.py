"""Hostile entries against ``snrbench submit`` (``submit_kit``): processes, memory, logs, the answer
channel and names; tiers that hold (the meter lives in the sampler process, sampler-only entries
never hold W). Each is refused per cell and leaves the repository unchanged."""
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
# 5. Hostile entries: processes, memory, logs, the answer channel, names


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


def test_a_sampler_only_entry_cannot_begin_its_chains_at_the_data(bench, tmp_path, capsys):
    """Attack: chains begun at the data would show a sampler-only entry the data set. Asked through the
    contract, through its client's ``new`` and as a raw request, the sampler process refuses: the
    runner, not the worker, told it which tier it serves."""
    src = _broken_entry("""\
        answers = []
        for ask in (lambda: problem.sampler(4, start="data"),
                    lambda: problem._meter.new(4, None, "float32", "data"),
                    lambda: problem._meter._ask(dict(op="new", n_chains=4, start="data", data_starts=True))):
            try:
                ask()
                answers.append("accepted")
            except Exception as exc:
                answers.append(str(exc)[:40])
        raise RuntimeError(f"answers {answers}")
        """)
    msgs = _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: answers ["] * 3)
    for m in msgs.values():
        assert 'problem.sampler(start="data") is for' in m and m.count("start='data' is for model and white-box") == 2, m
        assert "accepted" not in m, m


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
# Last: after the whole set of this module


def test_after_this_set_the_repository_is_unchanged_and_no_process_is_left(repo_before):
    """SHA-256 of every guarded file is as before the first test of this module, and no worker,
    sampler or child process of it is alive."""
    check_repo_unchanged_and_no_process_left(repo_before, "snrbench-test-child-")
