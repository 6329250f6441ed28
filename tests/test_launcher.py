"""Workers and sampler processes forked from a warm launcher (:mod:`snrbench.predict.launcher`) are
set up and confined as freshly started ones: what the entry sees from inside is the same, the
launchers hold nothing the entry could reach, and they end with their scope."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from snrbench.families import load_suite
from snrbench.predict import launcher, runner
from snrbench.predict.sandbox import become_subreaper, process_tree
from submit_kit import _alive_with

#: An entry that reports, from inside its confined process, what a launch could get wrong.
REPORT = """\
import ctypes
import json
import os
import resource
import signal
import sys
import tempfile

import numpy as np
from snrbench.predict import Prediction


def _fds():
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own descriptor, closed again
        out[name] = "file" if target.startswith("/") else target.split(":")[0]
    return out


def _signals():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    handlers = {}
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            h = signal.getsignal(sig)
            handlers[getattr(sig, "name", str(int(sig)))] = getattr(h, "name", None) or getattr(h, "__name__", repr(h))
    return dict(status={k: status[k].strip() for k in ("SigIgn", "SigBlk", "SigCgt")}, handlers=handlers)


def _frames():
    out, frame = [], sys._getframe(1)
    while frame is not None:
        out.append(frame.f_code.co_name)
        frame = frame.f_back
    return out


class Report:
    name, access = "report", "sampler-only"

    def predict(self, problem):
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        env = dict(os.environ)
        try:
            open(os.environ["SNRBENCH_REPORT_BLOCKED"], "rb").read()
            blocked = "read"
        except OSError as exc:
            blocked = type(exc).__name__
        from snrbench.predict.sandbox import violations

        violations().clear()
        if os.fork() == 0:  # a child left behind, in a session of its own: it must die with the worker
            os.setsid()
            os.execvp("sleep", ["snrbench-launcher-test-" + os.environ["SNRBENCH_REPORT_TOKEN"], "613"])
        facts = dict(
            fds=_fds(), threads=len(os.listdir("/proc/self/task")),
            tmp=[env.pop("TMPDIR") == os.getcwd(), tempfile.gettempdir() == os.getcwd(), sys.path[0] == os.getcwd()],
            env=sorted(env), pid=[os.getpid(), os.getppid()],
            limits=[resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_FSIZE, resource.RLIMIT_CPU)],
            status=[status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp")],
            sigint=signal.getsignal(signal.SIGINT) is signal.default_int_handler, blocked=blocked,
            argv=os.path.basename(sys.argv[0]), signals=_signals(), dumpable=ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
            frames=_frames())
        raise RuntimeError("FACTS" + json.dumps(facts, sort_keys=True) + "FACTS")
"""


def _facts(tmp_path, monkeypatch, fresh: bool, ignored=(), blocked=()) -> dict:
    """What the REPORT entry finds in a fresh or a launched worker that the runner starts with the
    signals ``ignored`` and ``blocked`` (:func:`_runner_signals`); a launched one from a worker launcher
    started before, with the default dispositions (the test's own scope: a new launcher)."""
    results = tmp_path / ("fresh" if fresh else "launched") / "results"
    results.mkdir(parents=True)
    (results / "secret.txt").write_text("the truth")
    monkeypatch.setenv("SNRBENCH_REPORT_BLOCKED", str(results / "secret.txt"))
    token = f"{os.getpid()}-{'fresh' if fresh else 'launched'}"
    monkeypatch.setenv("SNRBENCH_REPORT_TOKEN", token)
    path = tmp_path / "report.py"
    path.write_text(textwrap.dedent(REPORT))
    started = []
    popen = launcher.popen

    def recording(cmd, **kwargs):
        proc = popen(cmd, **kwargs)
        started.append((cmd[2], type(proc).__name__))
        return proc

    with monkeypatch.context() as mp:
        mp.setattr(launcher, "popen", recording)
        if fresh:
            mp.setattr(launcher, "_launcher_for", lambda cmd, env: None)
        else:
            with _runner_signals():  # the worker launcher for this environment starts now
                runner.discover(str(path), results)
            (first,) = [lc for lc in launcher._launchers.values() if lc is not None]
            ign = launcher._status_mask("SigIgn", f"/proc/{first.proc.pid}/status")
            assert not {signal.SIGQUIT, signal.SIGTERM} & ign
            started.clear()
        with _runner_signals(ignored, blocked):
            entry = runner.discover(str(path), results)[0]
            cell = load_suite("exact-rbm")[1][0]
            (result,) = runner.run_entry(entry, "exact-rbm", [cell], results, time_limit=60, budget=2**16).results
    if not fresh:
        assert first.alive() and first in launcher._launchers.values()  # the launcher that forked both workers
    kinds = {kind for _, kind in started}
    assert kinds == ({"Popen"} if fresh else {"_Launched"}), started
    assert len(started) == 3  # discovery, the sampler process, the worker
    assert "FACTS" in result.error, result.error
    assert _alive_with(f"snrbench-launcher-test-{token}") == []
    return json.loads(result.error.split("FACTS")[1])


@contextlib.contextmanager
def _runner_signals(ignored=(), blocked=()):
    """This (runner) process with ``ignored`` signals ignored and ``blocked`` ones blocked in this
    thread, and else its own handlers (SIGINT: Python's default one); restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set in the main thread")
    touched = {signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
    before = {sig: signal.getsignal(sig) for sig in touched}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        for sig in touched:
            signal.signal(sig, signal.SIG_IGN if sig in ignored else
                          signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in before.items():
            if handler is not None:
                signal.signal(sig, handler)


def test_a_launched_worker_sees_what_a_fresh_one_sees(tmp_path, monkeypatch):
    """From inside its confinement an entry finds the same descriptors (stdin, stdout, stderr, the
    sampler's socket and memory: none of the launcher's), as many threads, the same environment, temporary
    folder and ``sys.path[0]``, rlimits, capabilities, no_new_privs and seccomp, the same PID namespace
    view, the same signal dispositions, mask and handlers, the same stack of frames below it (nothing of
    the launcher's), a dumpable process, and the results folder refused, whether it was forked from a
    launcher or started fresh; a child it leaves in a session of its own dies with it.

    The runner runs here as a background job of a script does (SIGINT and SIGQUIT ignored, which a fresh
    interpreter keeps: no KeyboardInterrupt handler), with SIGTERM ignored and SIGUSR2 blocked besides,
    and its worker launcher was started before, with the default dispositions: a launched worker gets
    the runner's only if it takes them at its start, as a fresh one does. (The session's launchers,
    conftest.py, are set aside here.)"""
    monkeypatch.setattr(launcher, "_depth", 0)
    monkeypatch.setattr(launcher, "_launchers", {})
    background = dict(ignored=(signal.SIGINT, signal.SIGQUIT, signal.SIGTERM), blocked=(signal.SIGUSR2,))
    with launcher.scope():
        launched = _facts(tmp_path, monkeypatch, fresh=False, **background)
        fresh = _facts(tmp_path, monkeypatch, fresh=True, **background)
    assert launched == fresh
    # stdin, the answer pipe, the log (as stdout and stderr), the sampler's socket and its memory (a memfd,
    # and mmap's own copy of it)
    assert sorted(launched["fds"].values()) == ["file"] * 4 + ["pipe", "pipe", "socket"], launched["fds"]
    assert launched["tmp"] == [True, True, True] and not launched["sigint"]
    handlers = launched["signals"]["handlers"]
    assert [handlers[k] for k in ("SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGPIPE")] == \
        ["SIG_IGN", "SIG_IGN", "SIG_IGN", "SIG_DFL", "SIG_IGN"], handlers
    assert int(launched["signals"]["status"]["SigBlk"], 16) == 1 << (signal.SIGUSR2 - 1)
    assert launched["status"][0] == "0000000000000000" and launched["status"][3:] == ["1", "2"]
    assert launched["pid"] == [1, 0] and launched["blocked"] == "PermissionError"
    assert launched["argv"] == "_worker.py" and launched["dumpable"] == 1
    assert launched["frames"][-3:] == ["<module>", "_run_code", "_run_module_as_main"], launched["frames"]


def test_the_launchers_end_with_their_scope(tmp_path, monkeypatch):
    """Inside a scope the launchers are this process's children (in its session, so never taken for an
    entry's orphans); when the outermost scope ends they exit and are waited for: nothing is left
    running. (The session's own scope, conftest.py, is set aside here.)"""
    monkeypatch.setattr(launcher, "_depth", 0)
    monkeypatch.setattr(launcher, "_launchers", {})
    path = tmp_path / "entry.py"
    path.write_text(textwrap.dedent(REPORT))
    before = set(process_tree(os.getpid()))
    with launcher.scope():
        runner.discover(str(path), tmp_path / "results")
        started = [lc.proc for lc in launcher._launchers.values() if lc is not None and lc.alive()]
        assert len(started) == 1 and launcher.running() == [started[0].pid]
        assert os.getsid(started[0].pid) == os.getsid(0)
        assert set(process_tree(os.getpid())) - before == {started[0].pid}
    assert started[0].poll() is not None and set(process_tree(os.getpid())) == before


SERVE = """\
import os, socket, sys, threading, time
from snrbench.predict._worker import main
from snrbench.predict.launcher import serve
if sys.argv[2] == "thread":
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
else:
    extra = os.open("/dev/null", os.O_RDONLY)
serve(int(sys.argv[1]))
sys.exit(main())
"""


@pytest.mark.parametrize("dirt", ["thread", "descriptor"])
def test_a_launcher_that_is_not_a_clean_single_threaded_process_forks_nothing(dirt):
    """A launcher with a second thread (whose locks a fork could copy held) or a descriptor besides its
    standard ones and its control socket (which every forked worker would inherit) refuses to serve."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", SERVE, str(theirs.fileno()), dirt], pass_fds=[theirs.fileno()],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    theirs.close()
    ours.settimeout(1)
    with ours:
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert ours.recv(16) == b""  # never said "ready"


def test_a_failed_launch_starts_the_process_fresh(tmp_path, monkeypatch):
    """When a launcher cannot fork (here: its child refuses its request), the runner starts the process
    the ordinary way and the run goes on."""
    path = tmp_path / "entry.py"
    path.write_text(textwrap.dedent(REPORT))

    def refuse(self, *args, **kwargs):
        raise launcher.LaunchError("the test's refusal")

    monkeypatch.setattr(launcher._Launcher, "launch", refuse)
    monkeypatch.setattr(launcher, "_launchers", {})  # the session's launchers are left as they are
    before = set(process_tree(os.getpid()))
    started = []
    popen = launcher.popen
    monkeypatch.setattr(launcher, "popen", lambda cmd, **kw: started.append(popen(cmd, **kw)) or started[-1])
    assert [e.name for e in runner.discover(str(path), tmp_path / "results")] == ["report"]
    assert [type(p).__name__ for p in started] == ["Popen"]
    assert set(process_tree(os.getpid())) == before  # the launcher that failed is gone too


#: A module a launcher can stand for in these tests (``python -m launcher_probe``): its ``main()`` prints,
#: as JSON, what a process forked from a launcher could get wrong of a fresh one's start.
PROBE = """\
import ctypes
import json
import multiprocessing  # its authkey is drawn at import: in the launcher, for a launched process
import os
import signal
import sys

import snrbench.predict.launcher  # what the launcher imports before it forks, imported the same in both


def main():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    handlers = {}
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            h = signal.getsignal(sig)
            handlers[getattr(sig, "name", str(int(sig)))] = getattr(h, "name", None) or getattr(h, "__name__", repr(h))
    frames, frame = [], sys._getframe()
    while frame is not None:
        frames.append([frame.f_code.co_name, sorted(frame.f_locals) if frame.f_code.co_name != "<module>" else []])
        frame = frame.f_back
    print(json.dumps(dict(
        status={k: status[k].strip() for k in ("SigIgn", "SigBlk", "SigCgt")}, handlers=handlers, frames=frames,
        globals=sorted(vars(sys.modules["__main__"])), path=sys.path, cwd=os.getcwd(), argv=sys.argv,
        dumpable=ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), authkey=multiprocessing.current_process().authkey.hex())))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launcher"]:
        from snrbench.predict.launcher import serve as _serve_forks

        _serve_forks(int(sys.argv[2]))
        del _serve_forks
    sys.exit(main())
"""

#: The runner's signal states the launcher is started in, and then launches in: (ignored, blocked) each.
_STATES = {
    "an interactive shell's, after a launcher started by a script": (
        ((signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1), (signal.SIGUSR1,)), ((), ())),
    "a script's background job, after a launcher started from a terminal": (
        ((), ()), ((signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP), (signal.SIGUSR2, signal.SIGTERM))),
}


def _probe_env(tmp_path) -> dict:
    (tmp_path / "launcher_probe.py").write_text(PROBE)
    return dict(os.environ, PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _probe(lc, env: dict, cwd) -> dict:
    cmd = [sys.executable, "-m", "launcher_probe"]
    kwargs = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    live, lock = set(), threading.Lock()
    proc = launcher._Launched(lc, live, lock, cmd, **kwargs) if lc is not None else subprocess.Popen(cmd, **kwargs)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and live == ({proc.pid} if lc is not None else set())
    return json.loads(out)


@pytest.mark.parametrize("state", list(_STATES))
def test_a_launched_process_starts_with_the_signals_and_secrets_of_a_fresh_one(tmp_path, state):
    """Whatever the runner's signal dispositions and mask were when its launcher started, a launched
    process gets those a fresh interpreter started now from the runner gets (ignored ones kept,
    SIGINT's KeyboardInterrupt handler only where SIGINT is not ignored, SIGPIPE and SIGXFSZ ignored,
    the thread's mask), the same ``sys.path``, argv and globals, a stack with no frame of the launcher
    (nothing of its request in reach), is dumpable, and draws its own multiprocessing authkey."""
    become_subreaper()
    env = _probe_env(tmp_path)
    (ign_a, blk_a), (ign_b, blk_b) = _STATES[state]
    with _runner_signals(ign_a, blk_a):
        lc = launcher._Launcher("launcher_probe", env)
    try:
        with _runner_signals(ign_b, blk_b):
            launched, again, fresh = _probe(lc, env, tmp_path), _probe(lc, env, tmp_path), _probe(None, env, tmp_path)
    finally:
        lc.close()
    keys = {launched.pop("authkey"), again.pop("authkey"), fresh.pop("authkey")}
    assert len(keys) == 3  # none shared with the launcher's other children
    assert launched == fresh == again
    assert launched["handlers"]["SIGINT"] == ("SIG_IGN" if signal.SIGINT in ign_b else "default_int_handler")
    assert int(launched["status"]["SigBlk"], 16) == sum(1 << (s - 1) for s in set(blk_b))
    assert launched["dumpable"] == 1 and launched["path"][0] == str(tmp_path)
    assert [name for name, _ in launched["frames"]] == ["main", "<module>", "_run_code", "_run_module_as_main"]


NOT_DUMPABLE = """\
import ctypes, os, struct, subprocess, sys
libc = ctypes.CDLL(None)
for cap in range(64):  # no capability, here and in what this starts (an empty bounding set: none after exec)
    libc.prctl(24, cap, 0, 0, 0)
assert libc.capset(ctypes.create_string_buffer(struct.pack("=Ii", 0x20080522, 0)),
                   ctypes.create_string_buffer(bytes(24))) == 0
from snrbench.predict import launcher
lc = launcher._Launcher("launcher_probe", dict(os.environ))
other = subprocess.Popen(["sleep", "60"])
out = []
for pid in (other.pid, lc.proc.pid):
    try:
        open(f"/proc/{pid}/environ", "rb").read(1)
        out.append("read")
    except OSError as exc:
        out.append(type(exc).__name__)
other.kill()
lc.close()
print(out)
"""


def test_the_launcher_is_not_dumpable(tmp_path):
    """A process of the same user without capabilities (what an entry is, where no PID namespace or
    Landlock scoping stops it) cannot read the launcher's ``/proc/<pid>/environ`` (nor its memory, nor
    take a descriptor of it), while it can read those of an ordinary process of the user. Here the
    test's runner drops every capability first, so that neither the launcher nor the other process has
    one (a root launcher's capabilities alone would refuse a capless reader)."""
    got = subprocess.run([sys.executable, "-c", NOT_DUMPABLE], env=_probe_env(tmp_path), capture_output=True,
                         text=True, timeout=120)
    assert got.returncode == 0, got.stderr[-2000:]
    if not got.stdout.startswith("['read'"):
        pytest.skip(f"a process of the same user cannot be read here either: {got.stdout}")
    assert got.stdout.strip() == "['read', 'PermissionError']"


THIEF = """\
import socket, sys
ctl = socket.socket(fileno=int(sys.argv[1]))
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
socket.send_fds(ctl, [b"fork"], [theirs.fileno()])
theirs.close()
ours.settimeout(30)
print(repr(ours.recv(256)))
"""


def test_a_stolen_control_socket_forks_nothing(tmp_path):
    """A process that is not the runner and holds a copy of a launcher's control socket (as an entry
    could take one with ``pidfd_getfd`` where nothing else stops it) asks it to fork: the kernel names
    the sender, the launcher forks nothing and exits (the runner then starts its processes fresh)."""
    become_subreaper()
    lc = launcher._Launcher("launcher_probe", _probe_env(tmp_path))
    copy = os.dup(lc.ctl.fileno())
    try:
        got = subprocess.run([sys.executable, "-c", THIEF, str(copy)], pass_fds=[copy], capture_output=True,
                             text=True, timeout=60)
        assert got.returncode == 0, got.stderr[-2000:]
        assert got.stdout.strip() == "b''"  # no child took the request: the launcher closed the socket it got
        assert lc.proc.wait(timeout=30) == 1
    finally:
        os.close(copy)
        lc.close()


def test_a_stopped_launcher_holds_up_no_reap_and_is_killed(tmp_path, monkeypatch):
    """A launcher that does not answer (here: stopped) delays only the start waiting on it: the lock
    that every reap takes is free meanwhile; after the launch's wait it is killed at once (no wait for
    it to leave by itself) and the process starts fresh."""
    become_subreaper()
    env = _probe_env(tmp_path)
    lc = launcher._Launcher("launcher_probe", env)
    monkeypatch.setattr(launcher, "_LAUNCH_WAIT", 2.0)
    monkeypatch.setattr(launcher, "_launchers", {})
    monkeypatch.setattr(launcher, "_launcher_for", lambda cmd, env: lc)
    waiting = threading.Event()
    launch = lc.launch
    lc.launch = lambda *a, **kw: waiting.set() or launch(*a, **kw)
    os.kill(lc.proc.pid, signal.SIGSTOP)
    live, lock, started = set(), threading.Lock(), []
    cmd = [sys.executable, "-m", "launcher_probe"]
    t0 = time.monotonic()
    thread = threading.Thread(target=lambda: started.append(launcher.popen(
        cmd, live=live, lock=lock, stdout=subprocess.PIPE, env=env, cwd=tmp_path, start_new_session=True)))
    thread.start()
    try:
        assert waiting.wait(60)
        time.sleep(0.3)
        t1 = time.monotonic()
        with lock:
            held = time.monotonic() - t1
        thread.join(120)
    finally:
        with contextlib.suppress(OSError):
            os.kill(lc.proc.pid, signal.SIGCONT)
        lc.kill()
    assert held < 0.5 and time.monotonic() - t0 < 2.0 + 8.0  # not 10 s more waiting for it to leave
    (proc,) = started
    assert type(proc) is subprocess.Popen and live == {proc.pid} and lc.proc.returncode == -signal.SIGKILL
    assert json.loads(proc.communicate(timeout=120)[0])["frames"][0][0] == "main"


def test_a_worker_cannot_reach_into_another_process_by_pidfd_or_kcmp():
    """The worker's seccomp filter refuses the pidfd calls (open, take a descriptor of, signal), kcmp
    and process_madvise: where a worker sees other processes of its user (no PID namespace, no Landlock
    scoping), it could otherwise take the runner's or a launcher's control socket."""
    import ctypes
    import platform

    from snrbench.predict.sandbox import SECCOMP_DENIED, install_seccomp

    assert {"pidfd_open", "pidfd_getfd", "pidfd_send_signal", "kcmp", "process_madvise"} <= set(SECCOMP_DENIED)
    numbers = dict(pidfd_send_signal=424, pidfd_getfd=438, process_madvise=440,
                   kcmp={"x86_64": 312, "aarch64": 272}.get(platform.machine()))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            out = {"seccomp": install_seccomp()}
            try:
                os.close(os.pidfd_open(os.getpid()))
                out["pidfd_open"] = 0
            except OSError as exc:
                out["pidfd_open"] = exc.errno
            libc = ctypes.CDLL(None, use_errno=True)
            for name, nr in numbers.items():
                if nr is not None:  # let through: EBADF (no such pidfd) or 0 (kcmp: the same memory)
                    args = (os.getpid(), os.getpid(), 1, 0, 0) if name == "kcmp" else (-1, 0, 0, 0, 0)  # KCMP_VM
                    rc = libc.syscall(nr, *args)
                    out[name] = ctypes.get_errno() if rc != 0 else 0
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        got = json.loads(fh.read())
    os.waitpid(pid, 0)
    if got.pop("seccomp") != "on":
        pytest.skip("no seccomp here")
    assert set(got.values()) == {1}, got  # EPERM, the filter's answer, for each


def test_snrbench_no_launcher_starts_every_process_fresh(monkeypatch):
    """``SNRBENCH_NO_LAUNCHER=1`` in the runner's environment: no launcher, every process fresh (how the
    hostile set is run against fresh workers)."""
    monkeypatch.setattr(launcher, "_launchers", {})
    monkeypatch.setenv("SNRBENCH_NO_LAUNCHER", "1")
    assert launcher._launcher_for(runner.WORKER_CMD, dict(os.environ)) is None and launcher._launchers == {}
