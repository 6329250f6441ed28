"""Round 3 of the hostile set (issue 32): each route a stranger used to break or weaken the
leaderboard, as an entry that tries it, with the message it now gets. The fresh-draw routes (answers
for the public cells, dodging the draws, skipping the lower budgets) are in ``test_fresh.py``.

Every entry runs on the 4-cell fixture suite of ``test_submit.py`` (its ``bench``), one budget."""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import textwrap
import time

import pytest

from snrbench.cli import main
from snrbench.families import load_suite
from snrbench.predict import runner
from test_submit import RESULTS_ENV, _broken_entry, _reject, _submit, bench  # noqa: F401 - bench is a fixture


def _ipcs() -> str:
    return subprocess.run(["ipcs", "-m", "-q", "-s"], capture_output=True, text=True).stdout


def test_the_worker_sees_no_other_process_and_no_configuration_in_argv(bench, tmp_path, capsys):
    """The blocked paths (which named a fresh draw's seed) were the worker's argv, and /proc showed
    every process of the machine with its command line."""
    src = _broken_entry("""\
        import sys
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        lines = []
        for p in pids:
            try:
                lines.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
            except OSError:
                pass
        text = " ".join(lines + sys.argv)
        raise RuntimeError(f"sees {len(pids)} process(es); config in argv: {[w for w in ('[', 'results', 'cpu_seconds') if w in text]}")
        """)
    _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: sees 1 process(es); config in argv: []"] * 3)


def test_the_operators_environment_does_not_reach_the_entry(bench, tmp_path, capsys, monkeypatch):
    """The worker inherited the operator's whole environment: a credential in the shell that runs
    ``submit`` was one ``os.environ`` away from the entry."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-operator-token")
    src = _broken_entry("""\
        raise RuntimeError("env: " + repr(os.environ.get("AWS_SECRET_ACCESS_KEY")))
        """)
    _reject(bench, tmp_path, capsys, src, ["raised RuntimeError: env: None"] * 3)


def test_no_sysv_ipc_no_keyring_no_socket(bench, tmp_path, capsys, monkeypatch):
    """SysV shared memory outlived the run (answers travelled to a later, cheaper run); UDP and
    unix sockets reached a helper outside; the keyring is another store shared across runs."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.5)
    path = str(tmp_path / "helper.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind(path)
    unix.settimeout(0.5)
    monkeypatch.setenv("SNRBENCH_TEST_UDP_PORT", str(udp.getsockname()[1]))
    monkeypatch.setenv("SNRBENCH_TEST_UNIX", path)
    before = _ipcs()
    src = _broken_entry("""\
        import ctypes, platform, socket
        libc = ctypes.CDLL(None, use_errno=True)
        out = []

        def call(name, f):
            try:
                r = f()
                out.append(f"{name}: " + ("made" if r is None or r >= 0 else os.strerror(ctypes.get_errno())))
            except OSError as exc:
                out.append(f"{name}: {exc.strerror}")

        call("shmget", lambda: libc.shmget(0, 1 << 20, 0o1600))
        call("msgget", lambda: libc.msgget(0, 0o1600))
        call("semget", lambda: libc.semget(0, 1, 0o1600))
        if platform.machine() == "x86_64":  # add_key(2): a key in this process's keyring
            call("add_key", lambda: libc.syscall(248, b"user", b"snrbench", b"x", 1, -2))
        port, path = int(os.environ["SNRBENCH_TEST_UDP_PORT"]), os.environ["SNRBENCH_TEST_UNIX"]
        call("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hi", ("127.0.0.1", port)))
        call("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"hi", path))
        call("socketpair", lambda: socket.socketpair() and None)
        raise RuntimeError("; ".join(out))
        """)
    denied = "Operation not permitted"
    expected = f"shmget: {denied}; msgget: {denied}; semget: {denied}; "
    expected += f"add_key: {denied}; " if os.uname().machine == "x86_64" else ""
    expected += f"udp: {denied}; unix: {denied}; socketpair: {denied}"
    _reject(bench, tmp_path, capsys, src, [f"raised RuntimeError: {expected}"] * 3)
    for s in (udp, unix):
        with pytest.raises(socket.timeout):
            s.recv(16)  # nothing arrived
        s.close()
    assert _ipcs() == before


def _entry_file(tmp_path, body: str, name: str = "attack"):
    path = tmp_path / f"{name}.py"
    path.write_text(_broken_entry(body, name=name))
    return path


def test_a_deep_folder_in_the_worker_is_removed_without_recursion(bench, tmp_path, monkeypatch):
    """3,000 nested folders crashed submit (``shutil.rmtree`` recursed) and left them on disk."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the runner's folders go here, to be counted
    entry = runner.discover(str(_entry_file(tmp_path, """\
        for _ in range(3000):
            os.mkdir("d")
            os.chdir("d")
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """)), bench.results)[0]
    cells = load_suite("exact-rbm")[1][:1]
    run = runner.run_entry(entry, "exact-rbm", cells, bench.results, time_limit=60, budget=2**16)
    assert [r.ok for r in run.results] == [True], run.results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attack.py"]  # no folder of the run is left
    here, deep = os.getcwd(), tmp_path / "deep"  # and the removal itself, on a tree deeper than PATH_MAX allows
    try:
        os.chdir(tmp_path)
        for _ in range(3000):
            os.mkdir("deep")
            os.chdir("deep")
        os.chdir(here)
        assert runner.remove_tree(deep) is None and not deep.exists()
    finally:
        os.chdir(here)
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(deep)])  # never left for pytest's rmtree


def test_a_flood_after_the_last_answer_kills_the_worker_and_fails_the_cell(bench, tmp_path):
    """An entry that kept writing to the answer pipe after its last answer grew the parent by 1.8 GB
    and was still stored: it is now killed at the first byte, and loses that cell."""
    entry = runner.discover(str(_entry_file(tmp_path, """\
        import threading

        fds = []
        for fd in range(3, 16):  # copies of every descriptor, the answer pipe's among them
            try:
                fds.append(os.dup(fd))
            except OSError:
                pass

        def flood():
            time.sleep(0.3)
            while True:
                for fd in fds:
                    try:
                        os.write(fd, b"x" * 1000 + b"\\n")
                    except OSError:
                        pass

        threading.Thread(target=flood).start()  # not a daemon: the worker stays to run it
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
        """)), bench.results)[0]
    run = runner.run_entry(entry, "exact-rbm", load_suite("exact-rbm")[1][:1], bench.results, time_limit=60,
                           budget=2**16)
    assert [r.error for r in run.results] == ["the worker wrote to its answer channel outside its turn, after this "
                                              "cell's answer (killed)"]


def test_control_characters_from_an_entry_are_escaped(bench, tmp_path, capsys):
    """An exception text set the terminal's title, wrote the clipboard and printed a fake line."""
    src = _broken_entry(r'''raise RuntimeError("\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\r\x1b[2K\nsubmit: evil stored\u202e")''')
    msgs = _reject(bench, tmp_path, capsys, src, [r"raised RuntimeError: \x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x0d"
                                                  r"\x1b[2K\x0asubmit: evil stored\u202e"] * 3)
    err = capsys.readouterr().err  # (already checked by _reject; the raw bytes must not be anywhere)
    assert not any(c in "".join(msgs.values()) + err for c in "\x1b\x07\r\u202e")


def test_an_overlong_docstring_is_refused(bench, tmp_path, capsys):
    """A 120 KB docstring was copied three times into the page."""
    path = tmp_path / "long_doc.py"
    path.write_text('"""' + "x" * 120_000 + '"""\n' + _broken_entry(  # a valid entry otherwise
        "return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)\n", name="long-doc"))
    capsys.readouterr()
    assert _submit(bench, tmp_path, path) == 2
    err = capsys.readouterr().err
    assert "its module docstring has 120,000 characters; at most 4,000" in err
    assert not (bench.results / "predictions" / "long-doc.parquet").exists()


def test_a_chunk_error_reaches_the_dask_client_as_one_plain_message(monkeypatch):
    """An unpicklable error (a deep traceback, an attribute that cannot pickle) hung the client."""
    class Nasty(Exception):
        def __init__(self):
            super().__init__("cleanup failed")
            self.hook = lambda: None  # a lambda does not pickle

    def deep(n):
        if n == 0:
            raise Nasty()
        deep(n - 1)

    tblib = pytest.importorskip("tblib.pickling_support")
    tblib.install()  # as Dask's workers do: an exception then pickles with its __context__ and traceback
    monkeypatch.setattr(runner, "_check_source_here", lambda *a: None)
    monkeypatch.setattr(runner, "run_entry", lambda *a, **k: deep(500))
    with pytest.raises(runner.ChunkError) as info:
        runner.run_chunk(None, "exact-rbm", [], "/nonexistent-results")
    exc = pickle.loads(pickle.dumps(info.value))
    assert "Nasty: cleanup failed" in str(exc) and exc.__cause__ is None and exc.__context__ is None


def test_a_dask_map_past_its_deadline_is_cancelled():
    pytest.importorskip("distributed")
    from snrbench.jobs.executor import map_cells

    with pytest.raises(RuntimeError, match=r"did not finish within its deadline of 2 s \(1 of 1 tasks left"):
        list(map_cells(time.sleep, [60], scheduler="local:1", deadline=2))


def test_each_layer_the_kernel_refuses_is_reported_by_name(tmp_path):
    """Where the kernel refuses namespaces (here: a child whose seccomp filter refuses ``unshare``,
    as an unprivileged container would), each layer says so and the operator's line names it."""
    import json

    from snrbench.predict.sandbox import describe_isolation, enter_namespaces, install_seccomp

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            ok = install_seccomp()
            os.write(w, json.dumps(dict(enter_namespaces(str(tmp_path)), seccomp=ok)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        layers = json.loads(fh.read())
    os.waitpid(pid, 0)
    assert layers["seccomp"] == "on"
    for name in ("ipc", "net", "mount", "pid"):
        assert layers[name] == f"refused by the kernel (unshare {name}: Operation not permitted)", layers
    assert layers["proc"] == layers["tmpfs"] == "no mount namespace"
    line = describe_isolation(dict(layers, landlock="refused by the kernel (no Landlock: only the audit hook guards reads)"))
    assert line.startswith("seccomp, NOT PID namespace (refused by the kernel (unshare pid: Operation not permitted))")
    assert "NOT tmpfs temp folder (no mount namespace)" in line and "NOT Landlock (refused by the kernel" in line


def test_reaping_spares_the_runners_own_children():
    """reap() killed every child of the runner not in _LIVE, among them multiprocessing's resource
    tracker: the next Dask LocalCluster then failed to start ("resource_tracker: process died
    unexpectedly"). A child in the runner's own session is the runner's; one that left a worker's
    session (setsid) is still reaped."""
    from snrbench.predict.sandbox import become_subreaper

    become_subreaper()
    own = subprocess.Popen(["sleep", "60"])
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        killed = runner.reap(other.pid)
        assert other.pid in killed and own.pid not in killed
        assert own.poll() is None
    finally:
        for p in (own, other):
            p.kill()
            p.wait()
