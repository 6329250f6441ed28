"""Round 4 of the hostile set (issue 32, the runner review): each route an entry used to hang or
abort the runner, to leak the operator's secrets or to read what a cell's tier hides, as an entry
that tries it, with the message it now gets.

Every entry runs on the 4-cell fixture suite of ``test_submit.py`` (its ``bench``), one budget. A
run that used to hang forever is bounded here by :func:`_bounded`: past its timeout the test kills
the runner's workers (so the runner's thread can end) and fails."""
from __future__ import annotations

import os
import re
import threading
import time

import pytest

from snrbench.predict import runner
from test_submit import _broken_entry, _reject, bench  # noqa: F401 - bench is a fixture


def _bounded(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing the test if it has not returned after ``seconds`` (a hang of
    the runner): its workers and samplers are then killed so that the stuck thread ends too."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        for _ in range(120):  # each worker it starts next is killed too, until the run ends
            for pid in list(runner._LIVE):
                runner.reap(pid)
            t.join(1)
            if not t.is_alive():
                break
        pytest.fail(f"the runner hung: no return after {seconds:g} s (its workers were killed)")
    if "error" in out:
        raise out["error"]
    return out["value"]


CLOSE_ANSWER_PIPE = """\
    import fcntl
    for fd in range(3, 256):  # every pipe this process may write: the answer channel among them
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and \\
                    fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                os.close(fd)
        except OSError:
            pass
    time.sleep(3600)  # asleep: its CPU-time cap never fires
    """


def test_an_entry_that_closes_its_answer_channel_and_sleeps_is_killed(bench, tmp_path, capsys):
    """The runner saw the end of the answer pipe and waited for the worker's exit without a bound:
    ``submit`` hung for ever (its CPU cap never fires for a sleeping process)."""
    msg = "the worker closed its answer channel but did not exit within 5 s (killed)"
    _bounded(240, _reject, bench, tmp_path, capsys, _broken_entry(CLOSE_ANSWER_PIPE), [msg] * 3, time_limit=60)


STOP_READING = """\
    import fcntl
    F_SETPIPE_SZ = 1031
    task_pipe = os.dup(0)
    fcntl.fcntl(task_pipe, F_SETPIPE_SZ, 4096)  # the smallest pipe
    filler = os.open(f"/proc/self/fd/{task_pipe}", os.O_WRONLY | os.O_NONBLOCK)  # its write end, reopened
    try:
        while True:
            os.write(filler, b" " * 512)
    except BlockingIOError:  # full: the runner's next write blocks
        pass
    r, w = os.pipe()
    os.dup2(r, 0)  # the worker's loop now reads a pipe nothing writes to
    return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
    """


def test_an_entry_that_stops_reading_its_tasks_is_killed_at_the_time_limit(bench, tmp_path, capsys):
    """The runner wrote each task with a blocking write: an entry that filled its (shrunk) input pipe
    and stopped reading it hung ``submit`` for ever at the next cell."""
    msg = ("the worker did not read its task within the time limit of 10 s per cell (it stopped reading its "
           "input; killed)")
    _bounded(240, _stop_reading, bench, tmp_path, capsys, msg)


def _stop_reading(bench, tmp_path, capsys, msg):
    from snrbench.families import load_suite

    path = tmp_path / "stop_reading.py"
    path.write_text(_broken_entry(STOP_READING, name="stop-reading"))
    entry = runner.discover(str(path), bench.results)[0]
    cells = load_suite("exact-rbm")[1]
    run = runner.run_entry(entry, "exact-rbm", cells, bench.results, time_limit=10, budget=2**16)
    # one worker: cell 1 answers, cell 2 cannot be sent (killed); a new worker answers cell 3, cell 4 blocks
    assert [(r.ok, r.error) for r in run.results] == [(True, ""), (False, msg), (True, ""), (False, msg)]


def test_the_discovery_process_gets_no_secret_from_the_operators_environment(bench, tmp_path, monkeypatch):
    """The discovery process inherited the operator's whole environment: import-time code put a
    credential into the entry's public name."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    path = tmp_path / "leak.py"
    path.write_text(_broken_entry("return None\n").replace(
        "class Broken:\n    name, access = 'broken', 'sampler-only'",
        "class Broken:\n    name = 'leak-' + os.environ.get('AWS_SECRET_ACCESS_KEY', 'none').encode().hex()\n"
        "    access = 'sampler-only'"))
    assert [e.name for e in runner.discover(str(path), bench.results)] == ["leak-" + b"none".hex()]


STALL_SAMPLER = """\
    import threading
    sid = problem._meter.new(1)[0]
    cell_file = os.path.join(os.getcwd(), "..", "in", "cell.npz")

    def stall():  # once the runner removed this cell's file (it then loads the next cell): a long request
        while os.path.exists(cell_file):
            time.sleep(0.001)
        problem._meter.call(sid, "run", n=problem.budget)  # tens of seconds, far past the load timeout

    threading.Thread(target=stall, daemon=True).start()
    return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
    """


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return sum(int(x) for x in fh.read().rsplit(")", 1)[1].split()[11:13])


def test_a_sampler_kept_busy_past_the_load_timeout_fails_the_cell_not_the_run(bench, tmp_path, monkeypatch):
    """After its answer an entry's thread sent the sampler a long request: the runner's next
    ``put_cell`` timed out and its TimeoutError ended the whole run (every entry's, in ``predict``).
    The test orders the race: the next cell is loaded only once the sampler is busy with it."""
    from snrbench.families import load_suite

    put_cell = runner._Sampler.put_cell

    def once_busy(self, *args, **kwargs):
        if getattr(self, "loaded", False):  # not the first cell: wait until the entry's request runs
            for _ in range(100):
                t0 = _cpu_ticks(self.proc.pid)
                time.sleep(0.3)
                if _cpu_ticks(self.proc.pid) - t0 >= 0.15 * os.sysconf("SC_CLK_TCK"):
                    break
        self.loaded = True
        return put_cell(self, *args, **kwargs)

    monkeypatch.setattr(runner._Sampler, "put_cell", once_busy)
    monkeypatch.setattr(runner, "_SAMPLER_LOAD", 8.0)  # stands for 300 s; the request takes ~30–80 s here
    path = tmp_path / "stall.py"
    path.write_text(_broken_entry(STALL_SAMPLER, name="stall", access="white-box"))
    entry = runner.discover(str(path), bench.results)[0]
    cells = load_suite("exact-rbm")[1][:2]
    run = _bounded(240, runner.run_entry, entry, "exact-rbm", cells, bench.results, time_limit=60, budget=2**21)
    assert [(r.ok, r.error) for r in run.results] == [
        (True, ""), (False, "the exchange with the worker or its sampler process failed (TimeoutError: the sampler "
                            "process did not answer within 8 s); both killed")]


OPEN_STREAM = """\
    import json
    from snrbench.predict._sampler_service import _send_frame
    if not getattr(Broken, "done", False):  # the first cell: a stream it never reads nor acknowledges
        Broken.done = True
        sock = problem._meter._sock
        _send_frame(sock, json.dumps(dict(op="new", n_chains=1)).encode())
        _send_frame(sock, json.dumps(dict(op="stream", id=0, blocks=3, n=1, what=["v"])).encode())
    return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
    """


def test_a_stream_left_open_is_abandoned_when_the_runner_writes(bench, tmp_path, monkeypatch):
    """A stream the entry never acknowledged kept the sampler in its 120 s wait: the runner's count
    after the answer (or its next ``put_cell``) timed out, and the cell (or the run) was lost. The
    sampler now drops the stream (and that worker's connection) as soon as the runner writes."""
    from snrbench.families import load_suite

    monkeypatch.setattr(runner, "_SAMPLER_WAIT", 10.0)  # stands for 30 s (the sampler's own wait is 120 s)
    path = tmp_path / "open_stream.py"
    path.write_text(_broken_entry(OPEN_STREAM, name="open-stream"))
    entry = runner.discover(str(path), bench.results)[0]
    cells = load_suite("exact-rbm")[1][:2]
    run = _bounded(240, runner.run_entry, entry, "exact-rbm", cells, bench.results, time_limit=60, budget=2**16)
    assert [(r.ok, r.error) for r in run.results] == [(True, "")] * 2


HUGE_INTEGERS = """\
    import json
    n = getattr(Broken, "n", 0)
    Broken.n = n + 1
    dumps = getattr(Broken, "dumps", None) or json.dumps
    Broken.dumps = dumps

    def forged(d, *a, **k):  # the worker's own answer line, with integers where it writes floats
        if isinstance(d, dict) and d.get("ok") is True and "log10_q" in d:
            d = dict(d, tau=10**30) if n == 0 else dict(d, grad_norm2=10**400)
        return dumps(d, *a, **k)

    json.dumps = forged
    return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
    """


def test_huge_integer_answers_are_stored_as_floats_or_refused(bench, tmp_path):
    """``tau = 10**30`` (a JSON integer) passed the runner's check and crashed the store
    (``ArrowInvalid``): it is now converted to a float, and one no float holds is refused."""
    from snrbench.families import load_suite
    from snrbench.predict import predictions

    path = tmp_path / "huge.py"
    path.write_text(_broken_entry(HUGE_INTEGERS, name="huge"))
    entry = runner.discover(str(path), bench.results)[0]
    header, cells = load_suite("exact-rbm")
    run = runner.run_entry(entry, "exact-rbm", cells[:2], bench.results, time_limit=60, budget=2**16)
    first, second = run.results
    assert first.ok and type(first.tau) is float and first.tau == 1e30, first
    assert second.error == ("answer refused by the runner: grad_norm2 = an integer of 401 digits: must be finite "
                            "and positive as a float (or None)"), second
    run.results = [first]  # the accepted cell alone stores
    predictions.store_runs(tmp_path / "results", [run], header["suite"])
    assert set(predictions._stored(tmp_path / "results", "huge").tau) == {1e30}


@pytest.fixture()
def shm(monkeypatch):
    """A folder in /dev/shm, which a worker may read (Landlock grants it ``/dev``): where an operator's
    ``TMPDIR`` or results folder may lie. Removed afterwards."""
    import shutil
    import tempfile
    from pathlib import Path

    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("needs a writable /dev/shm")
    base = Path(tempfile.mkdtemp(prefix="snrbench-test-", dir="/dev/shm"))
    monkeypatch.setenv("SNRBENCH_TEST_BASE", str(base))  # SNRBENCH_* reaches the worker
    yield base
    shutil.rmtree(base, ignore_errors=True)


FIND_CELL_FILES = """\
    base, read = os.environ["SNRBENCH_TEST_BASE"], []
    for dirpath, _, files in os.walk(base):  # every folder of the run the entry can list
        for f in files:
            try:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    fh.read(1)
                read.append(f)
            except OSError:
                pass
    raise RuntimeError(f"files read: {sorted(read)}")
    """


def test_a_sampler_only_entry_cannot_read_the_samplers_copy_of_its_cell(bench, tmp_path, shm, monkeypatch):
    """The sampler's ``cell.npz`` (weights and data, which the sampler-only tier may not see) stayed
    on disk for the whole cell: with ``TMPDIR`` where a worker may read (here /dev/shm), the entry read
    it. It is now removed once loaded, and the run's sampler folders are blocked."""
    from snrbench.families import load_suite

    monkeypatch.setattr("tempfile.tempdir", str(shm))  # the runner's folders go there
    path = tmp_path / "find.py"
    path.write_text(_broken_entry(FIND_CELL_FILES, name="find"))
    entry = runner.discover(str(path), bench.results)[0]
    run = runner.run_entry(entry, "exact-rbm", load_suite("exact-rbm")[1][:1], bench.results, time_limit=60,
                           budget=2**16)
    err = run.results[0].error
    assert err.startswith(f"tried to read stored results or the suite ({shm}/snrbench-samplers-"), err
    assert sorted(p.name for p in shm.iterdir()) == []  # and nothing of the run is left


READ_THE_DRAWS = """\
    from snrbench.predict.sandbox import violations
    base = os.environ["SNRBENCH_TEST_BASE"]
    stages = [os.path.join(base, d) for d in os.listdir(base) if d.startswith(".fresh-")]
    if not stages:  # the public cells
        return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
    read = []
    for stage in stages:
        for dirpath, _, files in os.walk(stage):  # the sibling draw's suite names its seed
            for f in files:
                try:
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        fh.read(1)
                    read.append(os.path.relpath(os.path.join(dirpath, f), stage))
                except OSError:
                    pass
    if read:
        violations().clear()  # its own draw's folder was refused: hide that
        raise RuntimeError(f"read from the draws: {sorted(read)[:3]}")
    raise RuntimeError("nothing readable")
    """


def test_a_fresh_draw_cannot_read_its_sibling_draw(shm, monkeypatch, capsys):
    """While draw 2 ran, draw 1's folder (its suite names the seed S; draw 2 uses S + 1) was not
    blocked: with the results where a worker may read (here /dev/shm), the entry read it. Every draw
    now blocks the whole staging folder and the public results."""
    from pathlib import Path

    from snrbench import cli

    tasks = shm / "tasks"
    tasks.mkdir()
    (tasks / "exact-rbm.toml").write_text((Path(__file__).parent / "data" / "exact-rbm.toml").read_text())
    monkeypatch.setenv("SNRBENCH_TASKS", str(tasks))
    monkeypatch.chdir(shm)
    results = shm / "results"
    assert cli.main(["--results", str(results), "groundtruth", "--family", "exact-rbm", "--quiet", "--workers", "1"]) == 0
    entry = shm / "draws.py"
    entry.write_text(_broken_entry(READ_THE_DRAWS, name="draws"))
    capsys.readouterr()
    assert cli.main(["--results", str(results), "submit", str(entry), "--family", "exact-rbm", "--quiet",
                     "--out", str(shm / "leaderboard"), "--workers", "1", "--budget", "65536"]) == 1
    err = capsys.readouterr().err
    assert "submit: rejected, not published; results/ is unchanged" in err, err
    assert "read from the draws" not in err, err
    refused = re.findall(r"draws \(sampler-only\) on a fresh draw of exact-rbm at budget 65,536: 3 of 4 cells failed "
                         r"\(n6m3-b1-sym-s[0-9]+: tried to read stored results or the suite \((.*?)\)", err)
    assert len(refused) == 2 and all(Path(p).name.startswith(".fresh-") for p in refused), err


UNWAITED_CHILD = """\
    pid = os.fork()
    if pid == 0:  # a second of CPU, then exit: never waited for, a zombie
        t = time.process_time()
        while time.process_time() - t < 1.0:
            pass
        os._exit(0)
    while True:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    return Prediction(np.zeros(len(problem.T)), tau=1.0, grad_norm2=1.0)
    """


def test_the_cpu_of_a_child_never_waited_for_is_charged(bench, tmp_path):
    """The runner summed the CPU of the worker's live processes: a child that burnt a second and
    exited without being waited for (a zombie) was charged nothing."""
    from snrbench.families import load_suite

    path = tmp_path / "zombie.py"
    path.write_text(_broken_entry(UNWAITED_CHILD, name="zombie"))
    entry = runner.discover(str(path), bench.results)[0]
    run = runner.run_entry(entry, "exact-rbm", load_suite("exact-rbm")[1][:1], bench.results, time_limit=60,
                           budget=2**16)
    assert run.results[0].ok, run.results[0]
    assert run.results[0].cpu_seconds >= 0.8, run.results[0]


def test_a_reap_in_another_thread_spares_a_worker_being_started(monkeypatch):
    """A worker (or sampler) entered the list of live workers only after ``Popen`` returned: another
    thread's ``reap`` in between took it for an orphan (its own session, a child of the runner) and
    killed it. Here that reap runs exactly in between."""
    killed: list = []

    class Racy(set):
        raced = False

        def add(self, pid):  # what another worker's thread does in between: reap a finished worker
            if not self.raced:
                self.raced = True
                t = threading.Thread(target=lambda: killed.extend(runner.reap(2**30)), daemon=True)
                t.start()
                t.join(2)  # it finishes here unless a lock makes it wait for this start to complete
                self.reaper = t
            super().add(pid)

    live = Racy()
    monkeypatch.setattr(runner, "_LIVE", live)
    sampler = runner._Sampler()
    try:
        live.reaper.join(30)
        assert sampler.proc.pid not in killed and sampler.proc.poll() is None, killed
    finally:
        sampler.close()
