"""The cell executor (:mod:`snrbench.jobs.executor`): local backends, scheduler parsing, and pool
workers that die with their parent (kill -9 of a running generate leaves no process behind)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import pytest

from snrbench.jobs import executor

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def _square(offset: int, x: int) -> int:
    return x * x + offset


def test_parse_scheduler():
    assert executor.parse_scheduler(None) == ("processes", None)
    assert executor.parse_scheduler("local:3") == ("local", 3)
    assert executor.parse_scheduler("tcp://127.0.0.1:8786") == ("address", "tcp://127.0.0.1:8786")
    assert executor.is_local("local:2") and executor.is_local(None) and not executor.is_local("tcp://h:1")
    for bad in ("local:0", "local:x", "127.0.0.1:8786", "tcp://"):
        with pytest.raises(ValueError, match="--scheduler"):
            executor.parse_scheduler(bad)


@pytest.mark.parametrize("workers", [1, 2])
def test_local_backends_yield_every_cell_once(workers):
    cells = [3, 1, 4, 1, 5, 9, 2, 6]  # 1 twice: one key, run and yielded once
    out = list(executor.map_cells(partial(_square, 10), cells, workers=workers))
    assert sorted(c for c, _ in out) == sorted(set(cells))
    assert all(r == c * c + 10 for c, r in out)


def test_a_scheduler_without_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed → ImportError
    with pytest.raises(RuntimeError, match=r"snrbench\[dask\]"):
        list(executor.map_cells(partial(_square, 0), [1], scheduler="local:1"))


def _state(pid: int) -> str | None:
    """The process's state letter from /proc, or None when it is gone (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in "ZXx" else state


def _children(pid: int) -> set[int]:
    """Live child pids of ``pid`` (a scan of /proc/*/stat: the parent pid is field 4)."""
    out = set()
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:  # a process may exit between the listing and the read (Path.glob's own stat raised there)
            fields = Path("/proc", name, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in "ZXx":
            out.add(int(name))
    return out


#: A parent that runs the full exact-rbm generation on two pool workers (``kernel``: the real
#: initializer, PR_SET_PDEATHSIG; else only the portable watch thread, to test the fallback too).
PARENT = textwrap.dedent("""
    import os, sys
    from concurrent.futures import ProcessPoolExecutor
    from snrbench.jobs import executor, groundtruth
    if sys.argv[2] == "watch":  # the fallback, on Linux too: the same pool, the watch thread only
        class Pool(ProcessPoolExecutor):
            def __init__(self, n, initializer=None, initargs=()):
                super().__init__(n, initializer=executor.watch_parent, initargs=initargs)
        executor.ProcessPoolExecutor = Pool
    groundtruth.generate("exact-rbm", sys.argv[1], force=True, workers=2, progress=False)
""")


@linux_only
@pytest.mark.parametrize("how", ["kernel", "watch"])
def test_pool_workers_die_with_a_killed_parent(tmp_path, how):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "results"), how], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(kids) < 2 and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            kids = _children(parent.pid)
        assert len(kids) >= 2, f"no pool workers seen: {parent.stderr.read().decode() if parent.poll() else ''}"
        time.sleep(1.0)  # the workers are past their initializer and computing cells
        assert all(_state(k) for k in kids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while any(_state(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {k: _state(k) for k in kids if _state(k)}
        assert not left, f"pool workers outlived their killed parent: {left}"
    finally:
        for k in kids:
            if _state(k):
                os.kill(k, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stderr.close()
