"""Round 4 of the hostile set (issue 32, the runner review): each route an entry used to hang or
abort the runner, to leak the operator's secrets or to read what a cell's tier hides, as an entry
that tries it, with the message it now gets.

Every entry runs on the 4-cell fixture suite of ``test_submit.py`` (its ``bench``), one budget. A
run that used to hang forever is bounded here by :func:`_bounded`: past its timeout the test kills
the runner's workers (so the runner's thread can end) and fails."""
from __future__ import annotations

import threading

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
        for pid in list(runner._LIVE):
            runner.reap(pid)
        t.join(30)
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
    msg = f"the worker closed its answer channel but did not exit within {runner._EXIT_WAIT:g} s (killed)"
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
    msg = ("the worker did not read its task within the time limit of 20 s per cell (it stopped reading its "
           "input; killed)")
    _bounded(240, _stop_reading, bench, tmp_path, capsys, msg)


def _stop_reading(bench, tmp_path, capsys, msg):
    from snrbench.families import load_suite

    path = tmp_path / "stop_reading.py"
    path.write_text(_broken_entry(STOP_READING, name="stop-reading"))
    entry = runner.discover(str(path), bench.results)[0]
    cells = load_suite("exact-rbm")[1]
    run = runner.run_entry(entry, "exact-rbm", cells, bench.results, time_limit=20, budget=2**16)
    # one worker: cell 1 answers, cell 2 cannot be sent (killed); a new worker answers cell 3, cell 4 blocks
    assert [(r.ok, r.error) for r in run.results] == [(True, ""), (False, msg), (True, ""), (False, msg)]
