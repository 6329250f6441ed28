"""Map a pure cell function over cells, on local processes or on a Dask cluster.

:func:`map_cells` calls ``fn(cell)`` for every cell and yields ``(cell, result)`` as the cells
finish, in completion order, each cell at most once. Where the cells run is the ``scheduler``:

* ``None`` (the default): local processes, ``workers`` of them (a process pool whose workers die
  with this process, :func:`die_with_parent`), or this process alone when ``workers == 1``; Dask
  is not imported.
* ``"local:N"``: a ``dask.distributed.LocalCluster`` of N worker processes, one thread each,
  started here and closed when the map ends.
* ``"tcp://HOST:PORT"`` (any Dask address, ``tls://`` …): a ``dask.distributed.Client`` connected
  to an existing scheduler; its workers must import the same snrbench.

Dask is the optional extra ``snrbench[dask]``, imported only when a scheduler is given. The
results come back to the caller (the client), which does all the writing. A worker lost
mid-cell is the scheduler's to handle: it reruns the cell on another worker (up to its
``distributed.scheduler.allowed-failures``, then the map fails with ``KilledWorker``); the client
still yields each cell once (it dedupes by ``key(cell)``).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import CancelledError, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["map_cells", "parse_scheduler", "is_local", "die_with_parent", "watch_parent", "one_torch_thread",
           "DASK_RETRIES", "EXTRA"]

C = TypeVar("C")

#: Retries of a cell whose function *raised* on a Dask worker (a lost worker is retried by the scheduler
#: regardless). The cells are pure, so a retry only helps against the worker's environment (memory,
#: disk, a broken node); one is enough to get past a transient failure without doubling a real error.
DASK_RETRIES = 1
#: The optional extra that installs Dask.
EXTRA = "pip install 'snrbench[dask]'  (dask[distributed])"

_PR_SET_PDEATHSIG = 1


@contextmanager
def one_torch_thread():
    """torch's intra-op threads set to one inside, the caller's count restored after: a job whose rows
    must be the same bytes however many processes run it (a float32 reduction's order, and so its last
    bits, follows the thread count)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def parse_scheduler(scheduler: str | None) -> tuple[str, Any]:
    """``("processes", None)``, ``("local", N)`` or ``("address", ADDRESS)``; ValueError otherwise."""
    if scheduler is None or scheduler.strip() in ("", "processes"):
        return "processes", None
    s = scheduler.strip()
    if s.startswith("local:"):
        n = s.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--scheduler {scheduler}: local:N needs a whole number N ≥ 1 of worker processes")
        return "local", int(n)
    if "://" in s and s.split("://", 1)[1]:
        return "address", s
    raise ValueError(f"--scheduler {scheduler}: expected tcp://HOST:PORT (an existing Dask scheduler) or "
                     "local:N (a LocalCluster of N processes)")


def is_local(scheduler: str | None) -> bool:
    """True when the cells would run on this machine (no scheduler, or ``local:N``)."""
    return parse_scheduler(scheduler)[0] != "address"


def map_cells(fn: Callable[[C], Any], cells: Iterable[C], *, workers: int | None = None, scheduler: str | None = None,
              key: Callable[[C], Hashable] = lambda c: c, name: str = "cell",
              retries: int = DASK_RETRIES, deadline: float | None = None) -> Iterator[tuple[C, Any]]:
    """Yield ``(cell, fn(cell))`` for every cell as it completes (module docstring).

    ``fn`` must be picklable by reference (a module-level function, or a ``functools.partial`` of
    one) unless it runs in this process (``workers == 1`` and no scheduler). ``key(cell)`` names a
    cell (its ``cell_id``): cells with the same key run and are yielded once. ``name`` prefixes the
    Dask task keys (``{name}-{key}``). ``workers`` is the local process count (None: all cores);
    a scheduler brings its own workers. Closing the generator early (an error in the caller's loop,
    Ctrl-C) cancels the cells not yet finished and shuts the pool or the client down. ``deadline``
    (seconds, Dask only): a map not finished by then raises RuntimeError and cancels what is left,
    so a task whose error never reaches the client cannot hang it.
    """
    kind, arg = parse_scheduler(scheduler)
    unique: dict[Hashable, C] = {}
    for c in cells:
        unique.setdefault(key(c), c)
    if not unique:
        return
    if kind == "processes":
        workers = max(1, min(workers or os.cpu_count() or 1, len(unique)))
        if workers == 1:
            for c in unique.values():
                yield c, fn(c)
        else:
            yield from _pool_map(fn, unique, workers)
        return
    distributed = _import_distributed(scheduler)
    if kind == "local":
        with distributed.LocalCluster(n_workers=arg, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=40) as cluster, distributed.Client(cluster) as client:
            yield from _dask_map(distributed, client, fn, unique, name, retries, deadline)
    else:
        with distributed.Client(arg, timeout="30s") as client:
            yield from _dask_map(distributed, client, fn, unique, name, retries, deadline)


def _import_distributed(scheduler: str | None):
    try:
        import distributed
    except ImportError as exc:
        raise RuntimeError(f"--scheduler {scheduler} needs Dask, the optional extra: {EXTRA} ({exc})") from None
    return distributed


def _pool_map(fn, unique: dict, workers: int) -> Iterator[tuple[Any, Any]]:
    pool = ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),))
    futures = {}
    try:
        futures = {pool.submit(fn, c): c for c in unique.values()}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        for fut in futures:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _completed(distributed, futures: list, deadline: float | None):
    """``futures`` as they finish; RuntimeError once ``deadline`` seconds have passed with any left."""
    try:
        yield from distributed.as_completed(futures, timeout=deadline)
    except distributed.TimeoutError:
        left = sum(not f.done() for f in futures)
        raise RuntimeError(f"the Dask map did not finish within its deadline of {deadline:g} s ({left} of "
                           f"{len(futures)} tasks left; cancelled)") from None


def _dask_map(distributed, client, fn, unique: dict, name: str, retries: int,
              deadline: float | None = None) -> Iterator[tuple[Any, Any]]:
    futures = {client.submit(fn, c, key=f"{name}-{k}", retries=retries): k for k, c in unique.items()}
    done: set[Hashable] = set()
    try:
        for fut in _completed(distributed, list(futures), deadline):
            k = futures[fut]
            try:
                result = fut.result()  # the cell's own error is raised here, in the client, as it is locally
            except distributed.KilledWorker as exc:
                raise RuntimeError(f"cell {k}: given up after the Dask workers running it died repeatedly ({exc}); "
                                   "the cells finished so far are kept") from None
            except CancelledError as exc:
                raise RuntimeError(f"cell {k}: cancelled by the Dask scheduler (connection lost? {exc}); the cells "
                                   "finished so far are kept") from None
            fut.release()
            if k in done:  # a recomputed cell already yielded: never twice
                continue
            done.add(k)
            yield unique[k], result
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)


# -- pool workers die with their parent ---------------------------------------------------------

def die_with_parent(parent: int) -> None:
    """Process-pool initializer: end this worker when its parent ``parent`` dies, even by SIGKILL.

    On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, a worker whose parent is
    already gone exits at once); elsewhere :func:`watch_parent`.
    """
    if sys.platform.startswith("linux") and _pdeathsig(signal.SIGKILL):
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)
        return
    watch_parent(parent)


def watch_parent(parent: int) -> None:
    """Start a daemon thread that ends this process when ``parent`` dies (the portable fallback): it
    waits on the parent's multiprocessing sentinel, or polls ``os.getppid()`` once a second."""
    threading.Thread(target=_watch_parent, args=(parent,), name="snrbench-watch-parent", daemon=True).start()


def _pdeathsig(sig: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, interval: float = 1.0) -> None:
    """Exit when the parent dies: its multiprocessing sentinel where there is one, else ``getppid``."""
    import multiprocessing
    import time

    proc = multiprocessing.parent_process()
    if proc is not None and proc.pid == parent:
        proc.join()  # returns when the parent's end of the sentinel pipe closes: the parent is gone
        os._exit(1)
    while os.getppid() == parent:  # a POSIX orphan is re-parented (to init or a subreaper)
        time.sleep(interval)
    os._exit(1)
