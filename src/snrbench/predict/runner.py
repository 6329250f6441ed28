"""Run entries on every cell of a family, each in its own worker process with a time limit.

Each worker process (:mod:`._worker`) holds one entry and answers cell after cell; the runner builds
each cell's model and data (by the cell's family) and hands them over as a ``.npz`` in the worker's
temporary folder, so the worker needs neither the suite files nor the family's code. A cell
that exceeds ``time_limit`` seconds has its worker killed (and replaced). Every failure is a
specific message per cell: an exception, a malformed prediction (wrong type or length, NaN, inf),
a timeout, an attempt to read stored results, a crashed worker. After ``max_failures`` failed
cells the remaining cells are skipped. Nothing is written here: the caller stores the rows only
when every cell succeeded, so a failing entry changes no stored result.

On a Dask cluster (``snrbench predict --scheduler``) the Dask worker process is this runner:
:func:`run_chunk`, the task the client sends, calls :func:`run_entry` on a chunk of cells there, which
starts the sandboxed worker and its sampler process on that machine exactly as here; the entry's
code never runs in the Dask worker process itself.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from ..core.arrays import model_arrays
from ..families import Cell, get
from ..store.locations import packaged_root, project_root
from . import launcher
from ._sampler_service import shared_memory
from .contract import ACCESS_TIERS, BUDGET
from .registry import ENTRY_POINT_GROUP, NAME_RULE, Entry, RegistryError, builtin_entries, no_duplicates
from .sandbox import become_subreaper, orphans_of, process_tree
from .seeds import cell_seed, folder_key

__all__ = ["CellResult", "EntryRun", "run_entry", "run_chunk", "discover", "all_entries", "blocked_paths",
           "check_answer", "reap", "skipped_cell", "worker_limits", "DEFAULT_LIMITS", "DEFAULT_TIME_LIMIT", "MAX_FAILURES"]

DEFAULT_TIME_LIMIT = 300.0  # seconds per cell
MAX_FAILURES = 3  # failed cells after which an entry's remaining cells are skipped


@dataclass
class CellResult:
    """One cell's outcome for one entry. ``skipped``: the cell was never run because the entry had
    already failed ``max_failures`` cells; set by the runner alone (never from a worker's answer or
    its text), so a failure is counted or skipped by this flag, not by its message."""

    label: str
    cell_id: str
    ok: bool
    error: str = ""
    log10_q: list = field(default_factory=list)
    tau: float | None = None
    grad_norm2: float | None = None
    sweeps: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    skipped: bool = False


def skipped_cell(cell: Cell, max_failures: int) -> CellResult:
    """The result of a cell not run because the entry already failed ``max_failures`` cells."""
    return CellResult(cell.label, cell.cell_id, False, f"skipped: the entry already failed {max_failures} cells",
                      skipped=True)


@dataclass
class EntryRun:
    """One entry's run on a family's cells at one budget: a result per cell, in the cells' order."""

    entry: Entry
    family: str
    results: list[CellResult]
    budget: int = BUDGET
    #: What could not be cleaned up after the run's workers (:meth:`_Worker.close`), one line each.
    cleanup: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CellResult]:
        return [r for r in self.results if not r.ok]


def blocked_paths(results_root: Path, extra=()) -> list[str]:
    """What an entry's process may not touch: the results folder, every other copy of the stored
    results snrbench knows (the project root's, the repository's, the installed package's), .git,
    the installed package's suite and leaderboard (in a checkout those lie outside every grant), and
    the folders ``extra`` (a fresh draw's whole staging folder, the run's sampler folders)."""
    repo = Path(__file__).resolve().parents[3]
    shipped = packaged_root()  # inside site-packages, which the worker may otherwise read: carved out
    paths = [Path(results_root), repo / "results", repo / ".git", repo / "tasks", project_root() / "results",
             project_root() / "tasks", shipped / "results", shipped / "tasks", shipped / "leaderboard"]
    paths += [Path(p) for p in extra]
    return sorted({str(p.resolve()) for p in paths})


#: Resource caps of a worker (:class:`snrbench.predict.sandbox.Limits`): 10 GiB of address space
#: (two workers and the parent fit a 24 GB machine), 16 MiB per written file (the log included).
#: The process cap and the CPU seconds are set per run (:func:`worker_limits`).
DEFAULT_LIMITS = dict(memory=10 * 2**30, file_size=16 * 2**20)
#: Processes (tasks, threads included) an entry may add beyond those its user already runs
#: (``RLIMIT_NPROC``, which the kernel does not apply to root), and processes a worker's tree may
#: hold at once: the runner counts them twice a second and kills the tree above it (any user).
EXTRA_PROCESSES = 256
_POLL = 0.2  # seconds between the runner's looks at a worker's processes
_SAMPLER_WAIT = 30.0  # seconds the runner waits for the sampler process's count after a cell
_SAMPLER_LOAD = 300.0  # ... and for it to load a cell
_EXIT_WAIT = 5.0  # seconds a worker that closed its answer channel (or its input) has to exit before it is killed
_CONFIG_WAIT = 60.0  # seconds a new worker has to take its configuration line
_MAX_LINE = 1 << 20  # characters of one answer line; a longer one kills the worker
_LOG_TAIL = 4096  # bytes of a worker's log read back for an error message


def _user_tasks() -> int:
    """Tasks (processes and threads) of this user now, what RLIMIT_NPROC counts."""
    uid, n = os.getuid(), 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == uid:
                n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n


def worker_limits(time_limit: float, n_cells: int, limits: dict | None = None) -> dict:
    """The caps of one worker: :data:`DEFAULT_LIMITS` updated by ``limits``, a process cap of the
    user's tasks now plus :data:`EXTRA_PROCESSES`, and CPU seconds for every cell at the time limit."""
    out = dict(DEFAULT_LIMITS, processes=_user_tasks() + EXTRA_PROCESSES,
               cpu_seconds=int(time_limit * max(n_cells, 1)) + 120)
    out.update(limits or {})
    return out


#: How a worker is started: nothing on its command line or in its environment but the interpreter,
#: so no process can read its configuration from ``/proc/*/cmdline`` (it comes on stdin, :func:`_config`).
#: Within a :func:`.launcher.scope` it is forked from a warm launcher of this command instead (:func:`_spawn`).
WORKER_CMD = [sys.executable, "-m", "snrbench.predict._worker"]


def _config(mode: str, arg: str, results_root: Path, limits: dict, fds=(), inputs=(), blocked=()) -> str:
    """The worker's first stdin line (:mod:`._worker`): what it runs, what it may not touch (besides
    :func:`blocked_paths`: ``blocked``), its caps."""
    return json.dumps(dict(mode=mode, arg=arg, blocked=blocked_paths(results_root, blocked), limits=limits, fds=list(fds),
                           inputs=[str(p) for p in inputs])) + "\n"


#: Characters kept of a text that came from an entry (an error message, its log's tail).
MAX_TEXT = 2000


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` (written by an entry) safe for a terminal and a page: at most ``limit`` characters,
    and every character that is not printable (control characters, escape sequences' ESC, bidi
    overrides, line and paragraph separators, newlines) written as its ``\\xNN``/``\\uNNNN`` escape."""
    text = str(text)[:limit]
    return "".join(c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
                   for c in text)


def remove_tree(path: Path | str) -> str | None:
    """Remove the folder ``path`` and everything in it, however deep, without recursion and without
    path names (each step is relative to an open folder: no ``PATH_MAX``, no link followed) and
    without a child process (a concurrent :func:`reap` would kill it). Never raises; returns why it
    failed, or None."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"could not remove {path}: {exc}"
    names: list[str] = []  # the folders entered below ``path``
    try:
        while True:
            sub = None
            with os.scandir(fd) as entries:
                for e in entries:
                    if e.is_dir(follow_symlinks=False):
                        sub = e.name
                        break
                    os.unlink(e.name, dir_fd=fd)
            if sub is not None:
                child = os.open(sub, flags, dir_fd=fd)
                os.close(fd)
                fd = child
                names.append(sub)
            elif names:
                parent = os.open("..", flags, dir_fd=fd)
                os.close(fd)
                fd = parent
                os.rmdir(names.pop(), dir_fd=fd)
            else:
                break
        os.close(fd)
        os.rmdir(path)
        return None
    except OSError as exc:
        try:
            os.close(fd)
        except OSError:
            pass
        return f"could not remove {path}: {exc}"


_LIVE: set[int] = set()  # pids of the workers running now (never reaped as orphans)
#: Held across a fresh worker's (or sampler's) start and its entry in :data:`_LIVE` (for a launched one,
#: only while its pid goes in, before it can leave this process's session), and by :func:`reap` while it
#: lists and kills: another thread's reap never sees a child just started as an orphan.
_SPAWN = threading.Lock()


def _spawn(cmd, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(cmd, **kwargs)``, its pid in :data:`_LIVE` before any :func:`reap` can take it
    for an orphan; within a :func:`.launcher.scope`, a worker or sampler process is forked from its
    kind's launcher (started here first), and :data:`_SPAWN` is not held while the launcher is waited
    for (a stopped launcher would hold up every reap)."""
    launcher.prepare(cmd, kwargs.get("env"))
    return launcher.popen(cmd, live=_LIVE, lock=_SPAWN, **kwargs)


def reap(sid: int) -> list[int]:
    """Kill every process of the worker ``sid`` (its session and its descendants) and every orphan handed to
    this (subreaper) process;
    returns the pids killed. Repeats until none is left (a child may fork while it is being killed)."""
    killed = []
    for _ in range(200):
        with _SPAWN:
            left = [p for p in set(process_tree(sid) + orphans_of(os.getpid(), keep=_LIVE)) if p != os.getpid()]
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(pid, os.WNOHANG)  # our own (reparented) children: no zombies left
                except ChildProcessError:
                    pass
        if not left:
            break
        time.sleep(0.01)
    return sorted(set(killed))


def _as_float(x) -> float | None:
    """``x`` as a float when it is a real number (not a bool) a float holds finitely, else None: a huge
    JSON integer (``10**30`` is exact as an int but stored as a double) is converted here, once."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _shown(x) -> str:
    """``x`` for an error message: a huge integer by its digit count, not its digits."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**20:
        try:
            return f"an integer of {len(str(abs(x)))} digits"
        except ValueError:  # past the interpreter's limit on int-to-str conversion
            return "an integer of thousands of digits"
    return repr(x)[:80]


def _finite(x) -> bool:
    try:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return False


def check_answer(ans, n_T: int, budget: int) -> str | None:
    """Why a worker's answer may not be stored (the parent's own check; the worker is not trusted),
    or None: ``log10_q`` n_T finite numbers, ``tau`` and ``grad_norm2`` None or finite > 0 as
    floats (an accepted answer's are replaced by their float values: what is stored is a double),
    ``sweeps`` an int in [0, budget], ``seconds`` finite ≥ 0."""
    if not isinstance(ans, dict) or not isinstance(ans.get("ok"), bool):
        return "the worker's answer is not an object with a boolean 'ok'"
    if not ans["ok"]:
        return None if isinstance(ans.get("error"), str) else "the worker's failure carries no error message"
    q = ans.get("log10_q")
    if not isinstance(q, list) or len(q) != n_T or not all(_finite(x) for x in q):
        return f"log10_q must be {n_T} finite numbers, got {str(q)[:80]}"
    floats = {}
    for key in ("tau", "grad_norm2"):
        x = ans.get(key)
        if x is None:
            continue
        floats[key] = _as_float(x)
        if floats[key] is None or not floats[key] > 0:
            return f"{key} = {_shown(x)}: must be finite and positive as a float (or None)"
    sweeps = ans.get("sweeps")
    if not (isinstance(sweeps, int) and not isinstance(sweeps, bool) and 0 <= sweeps <= budget):
        return f"sweeps = {sweeps!r}: must be an int in [0, {budget}]"
    if not (_finite(ans.get("seconds")) and ans["seconds"] >= 0):
        return f"seconds = {ans.get('seconds')!r}: must be finite and ≥ 0"
    ans.update(floats)
    return None


def discover(spec: str, results_root: Path) -> list[Entry]:
    """The entries of ``PATH.py`` or an entry-point name, imported in a confined process (its own
    session, the worker's caps; whatever it leaves running is killed)."""
    become_subreaper()
    with launcher.scope():
        return _discover(spec, results_root)


def _discover(spec: str, results_root: Path) -> list[Entry]:
    tmp = tempfile.mkdtemp(prefix="snrbench-")
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            arg = str(Path(spec).resolve()) if spec.endswith(".py") else spec
            proc = _spawn(WORKER_CMD, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=tmp,
                          env=worker_env(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TMPDIR=tmp),
                          start_new_session=True)  # files, capped
            try:
                try:
                    proc.stdin.write(_config("discover", arg, results_root, worker_limits(300, 1)).encode())
                    proc.stdin.close()
                except OSError:
                    pass
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                err.write(b"\ndiscovery exceeded 300 s (killed)")
            finally:
                _LIVE.discard(proc.pid)
                reap(proc.pid)
                proc.wait()
            stdout, stderr = (_tail(f, n) for f, n in ((out, 1_000_000), (err, _LOG_TAIL)))
    finally:
        remove_tree(tmp)
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RegistryError(f"{spec}: discovery process failed: {printable(proc.stderr.strip()[-500:])}")
    try:
        ans = json.loads(lines[-1])
    except (ValueError, RecursionError):
        raise RegistryError(f"{spec}: the discovery process sent a malformed line") from None
    if not isinstance(ans, dict) or not ans.get("ok"):
        raise RegistryError(printable(ans.get("error") if isinstance(ans, dict) else ans))
    entries = ans.get("entries")
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{spec}: the discovery process listed no entries")
    return [checked_entry(e, arg) for e in entries]  # the parent never executes a submission's code


_QUALNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def checked_entry(e, spec: str) -> Entry:
    """An entry as the confined discovery process reported it, re-checked here (that process ran the
    submission's code and may lie): the name rule, the tier, the source (the submitted file or entry
    point, then a class name) and, for a file, the SHA-256 recomputed from its bytes."""
    if not isinstance(e, dict) or set(e) != {"name", "access", "source", "source_sha256"} \
            or not all(isinstance(v, str) for v in e.values()):
        raise RegistryError(f"{spec}: the discovery process sent a malformed entry {str(e)[:200]!r}")
    if not NAME_RULE.fullmatch(e["name"]):
        raise RegistryError(f"{spec}: name {e['name']!r} must match {NAME_RULE.pattern} in full")
    if e["access"] not in ACCESS_TIERS:
        raise RegistryError(f"{spec}: access {e['access']!r} must be one of {ACCESS_TIERS}")
    if spec.endswith(".py"):
        path, _, qual = e["source"].rpartition("::")
        raw = Path(spec).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        doc = _docstring(raw)
        if doc is None or len(doc) > MAX_DOCSTRING:
            raise RegistryError(f"{spec}: its module docstring " + ("could not be read" if doc is None else
                                f"has {len(doc):,} characters; at most {MAX_DOCSTRING:,} (the page shows it)"))
        if path != spec or not _QUALNAME.fullmatch(qual) or e["source_sha256"] != digest:
            raise RegistryError(f"{spec}: the discovery process reported source {e['source'][:200]!r} "
                                f"(sha256 {e['source_sha256'][:16]}…), not a class of this file")
    elif not (e["source"].startswith(f"entrypoint:{spec}:") and _QUALNAME.fullmatch(e["source"].split(":", 2)[2])
              and re.fullmatch(r"[0-9a-f]{64}", e["source_sha256"])):
        raise RegistryError(f"{spec}: the discovery process reported source {e['source'][:200]!r}, "
                            "not a class of this entry point")
    return Entry(**e)


#: Characters of an entry file's module docstring (the leaderboard page shows its first paragraph).
MAX_DOCSTRING = 4000


def _docstring(raw: bytes) -> str | None:
    """The module docstring of a submitted file's bytes ("" when none), read by parsing alone (never
    run); None when it cannot be parsed."""
    import ast

    try:
        return ast.get_docstring(ast.parse(raw)) or ""
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _tail(f, n: int) -> str:
    """The last ``n`` bytes of an open file, decoded."""
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - n))
    return f.read().decode(errors="replace")


def all_entries(results_root: Path | str = "results") -> list[Entry]:
    """Built-in entries plus those of every installed ``snrbench.predictors`` entry point.

    Built-ins are imported here; third-party entry points only in a confined process
    (:func:`discover`), so their import-time code never runs unconfined.
    """
    entries = builtin_entries()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        entries += discover(ep.name, Path(results_root))
    return sorted(no_duplicates(entries), key=lambda e: e.key)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid``'s tree: every live process of it, each with its waited-for
    children (user + system: ``utime + stime + cutime + cstime`` from ``/proc/<pid>/stat``, what
    ``getrusage`` counts for self and children). The worker is the PID-namespace init's parent, so
    its own count alone would miss the entry; a process that left the tree counts until it dies.
    Zombies count too: a child that exited unwaited keeps its time in its own ``stat`` (not yet
    in any parent's ``cutime``), so an entry cannot hide CPU by never waiting for its children."""
    total = 0.0
    for p in set(process_tree(pid, zombies=True)) | {pid}:
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


class _Sampler:
    """The sampler process of one worker (:mod:`._sampler_service`): its own session, unconfined,
    holding the cell and counting sweeps; ``sock`` is the end handed to the worker. Its folder lies in
    ``root`` (the run's sampler folder, blocked for every worker of the run)."""

    def __init__(self, root: str | None = None):
        self.tmp = tempfile.mkdtemp(prefix="snrbench-sampler-", dir=root)
        ours, self.sock = socket.socketpair()
        self.shm = shared_memory()
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = _spawn([sys.executable, "-m", "snrbench.predict._sampler_service", str(ours.fileno()),
                            str(self.shm)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           bufsize=1, pass_fds=[ours.fileno(), self.shm], cwd=self.tmp, env=env,
                           start_new_session=True)
        ours.close()

    def ask(self, request: dict, timeout: float | None = None) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        if timeout is not None and not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"the sampler process did not answer within {timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sampler process exited with code {self.proc.wait()}")
        return json.loads(line)

    def put_cell(self, family, cell: Cell, seed: int, budget: int, access: str) -> dict:
        path = Path(self.tmp) / "cell.npz"
        spec = cell.spec
        np.savez(path, data=family.build_data(spec), **model_arrays(family.build_model(spec)))
        try:  # chains may begin at the data only for the tiers that see it
            return self.ask(dict(op="cell", cell_file=str(path), seed=seed, observables=spec["observables"],
                                 budget=budget, data_starts=access != "sampler-only"), timeout=_SAMPLER_LOAD)
        finally:  # loaded (or failed): the cell's weights and data leave the disk at once
            path.unlink(missing_ok=True)

    def close(self):
        """Kill the process and remove its folder; never raises."""
        _LIVE.discard(self.proc.pid)
        for step in (self.sock.close, lambda: os.close(self.shm), self.proc.kill, self.proc.wait,
                     self.proc.stdin.close, self.proc.stdout.close):
            try:
                step()
            except (OSError, ValueError):  # a broken pipe to a sampler that died
                pass
        remove_tree(self.tmp)


#: What a worker keeps of the operator's environment: the interpreter's, the linker's and the
#: locale's settings, and snrbench's own (``SNRBENCH_*``). Tokens, credentials and everything else
#: the operator's shell holds stay out of the entry's reach.
WORKER_ENV_KEEP = ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "HOME", "LANG", "LANGUAGE", "TZ")
WORKER_ENV_PREFIXES = ("LC_", "SNRBENCH_", "OPENBLAS_", "NPY_")


def worker_env(environ, **settings) -> dict:
    """The environment of a worker: the allowed part of ``environ`` plus ``settings``."""
    env = {k: v for k, v in environ.items() if k in WORKER_ENV_KEEP or k.startswith(WORKER_ENV_PREFIXES)}
    env.update(settings)
    return env


_OUTSIDE = "\0outside"  # what the reader reports for a byte written outside the worker's turn
_TOO_LONG = "\0too long"


class _Worker:
    """One worker process in its own session (``start_new_session``), with the caps of ``limits``,
    and its sampler process. Its folder holds ``in/`` (the cell files the runner writes; the worker
    may only read them) and ``work/``, its cwd and ``TMPDIR`` (a size-limited tmpfs inside its own
    mount namespace where the kernel allows: :func:`snrbench.predict.sandbox.enter_namespaces`)."""

    def __init__(self, entry: Entry, results_root: Path, limits: dict, blocked=(), sampler_root: str | None = None):
        self.sampler = _Sampler(sampler_root)
        self.tmp = self.log = None
        try:
            self._start(entry, results_root, limits, blocked, sampler_root)
        except BaseException:  # the worker did not start: its sampler process, log and folder go too
            self.sampler.close()
            if self.log is not None:
                self.log.close()
            if self.tmp is not None:
                remove_tree(self.tmp)
            raise

    def _start(self, entry: Entry, results_root: Path, limits: dict, blocked, sampler_root: str | None):
        """Start the worker process (its sampler process is running) and send its configuration."""
        self.cpu_seconds = limits.get("cpu_seconds")
        self.tmp = Path(tempfile.mkdtemp(prefix="snrbench-"))
        self.inputs, self.work = self.tmp / "in", self.tmp / "work"
        self.inputs.mkdir()
        self.work.mkdir()
        env = worker_env(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TMPDIR=str(self.work))
        self.log = tempfile.TemporaryFile()
        fds = [self.sampler.sock.fileno(), self.sampler.shm]
        self.proc = _spawn(WORKER_CMD, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                           env=env, bufsize=0, cwd=self.work, start_new_session=True, pass_fds=fds)
        self.pending = threading.Event()  # a task was sent and its answer line has not come yet
        self.outside = False  # it wrote outside its turn (and was killed)
        self.closing = threading.Event()
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        os.set_blocking(self.proc.stdin.fileno(), False)  # every send is bounded (:meth:`_send`)
        blocked = list(blocked) + [sampler_root or self.sampler.tmp]
        self._send(_config("run", json.dumps(asdict(entry)), results_root, limits, fds, [self.inputs], blocked),
                   time.monotonic() + _CONFIG_WAIT)

    def _send(self, text: str, deadline: float) -> str | None:
        """Write ``text`` to the worker's stdin by ``deadline`` (``time.monotonic()``): None once it is
        written, "timeout" when the worker did not take it in time (it may not read its stdin and
        shrink the pipe), "closed" when its end is closed. Never blocks past ``deadline``."""
        data = memoryview(text.encode())
        try:
            fd = self.proc.stdin.fileno()
            while len(data):
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                if not select.select([], [fd], [], min(left, _POLL))[1]:
                    continue
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    continue
            return None
        except (OSError, ValueError):  # BrokenPipeError: the worker closed its stdin (or exited)
            return "closed"

    def put_cell(self, family, cell: Cell, access: str, budget: int, seed: int) -> dict:
        """Load the cell into the sampler process with its sampler ``seed`` (:mod:`.seeds`; the task
        never carries it); the task for the worker. Model and white-box tiers also get the model's
        arrays and the data, in a ``.npz`` in the worker's ``in/`` folder."""
        spec = cell.spec
        served = self.sampler.put_cell(family, cell, seed, budget, access)
        task = dict(access=access, exact="white-box" in family.tiers, family=family.name, observables=spec["observables"],
                    T=[int(t) for t in family.t_grid(spec)], budget=budget, info=served["info"],
                    data_mean=served["data_mean"], label="", cell_file=None)
        if access != "sampler-only":
            path = self.inputs / "cell.npz"
            np.savez(path, data=family.build_data(spec), **model_arrays(family.build_model(spec)))
            task.update(label=cell.label, cell_file=str(path))
        return task

    def _read(self):
        """Read the answer pipe only while a task is pending, one line per task. Outside a turn it
        only watches: the first byte that comes then is refused and the worker killed at once, so a
        flood never reaches this process's memory; a line over :data:`_MAX_LINE` likewise."""
        fd, buf = self.proc.stdout.fileno(), b""
        while not self.closing.is_set():
            try:
                ready = select.select([fd], [], [], _POLL)[0]
                data = os.read(fd, 1 if not self.pending.is_set() else 1 << 16) if ready else None
            except (OSError, ValueError):  # closed by close()
                break
            if data is None:
                continue
            if not data:  # the worker's end is closed: it exited
                break
            if not self.pending.is_set():
                self._refuse(_OUTSIDE)
                return
            buf += data
            if b"\n" in buf:
                line, rest = buf.split(b"\n", 1)
                if rest:  # more after its one answer line: outside its turn
                    self._refuse(_OUTSIDE)
                    return
                buf = b""
                self.pending.clear()
                self.lines.put(line.decode(errors="replace"))
            elif len(buf) > _MAX_LINE:
                self._refuse(_TOO_LONG)
                return
        self.lines.put(None)

    def _refuse(self, why: str):
        self.outside = why == _OUTSIDE
        reap(self.proc.pid)  # at once, from this thread: nothing more is read
        self.lines.put(why)

    def ask(self, task: dict, timeout: float) -> dict:
        """Send one cell; the answer, with the meter's count and the worker's wall and CPU seconds.
        A line without this task's nonce is refused."""
        if not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                return dict(ok=False, fatal=True, error="the worker wrote to its answer channel outside its turn (killed)")
            self.lines.put(None)
        task = dict(task, nonce=secrets.token_hex(8))
        t0, c0 = time.perf_counter(), _cpu_seconds(self.proc.pid)
        ans = self._ask(task, timeout)
        if ans.get("ok") and ans.get("nonce") != task["nonce"]:
            ans = dict(ok=False, fatal=True, error="the answer does not carry its task's nonce")
        ans.update(seconds=time.perf_counter() - t0, cpu_seconds=max(0.0, _cpu_seconds(self.proc.pid) - c0))
        try:  # the sampler may still be busy with a request of a killed worker: bounded wait
            ans["sweeps"] = self.sampler.ask(dict(op="used"), timeout=_SAMPLER_WAIT)["used"]
        except (RuntimeError, OSError, ValueError) as exc:
            self.sampler.proc.kill()
            if ans.get("ok"):
                ans = dict(ok=False, fatal=True, error=f"the sampler process failed: {exc}")
        for f in self.inputs.iterdir():  # the cell's file: the worker has read it (it may not remove it)
            f.unlink()
        return ans

    def _ask(self, task: dict, timeout: float) -> dict:
        self.pending.set()
        deadline = time.monotonic() + timeout
        sent = self._send(json.dumps(task) + "\n", deadline)
        if sent == "timeout":
            self.kill()
            return dict(ok=False, error=f"the worker did not read its task within the time limit of {timeout:g} s per cell "
                                        "(it stopped reading its input; killed)")
        if sent == "closed":
            return dict(ok=False, error=self._died("closed its input"))
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, min(_POLL, deadline - time.monotonic())))
                break
            except queue.Empty:
                if time.monotonic() >= deadline:
                    self.kill()
                    return dict(ok=False, error=f"exceeded the time limit of {timeout:g} s per cell (killed)")
                n = len(set(process_tree(self.proc.pid)) | set(orphans_of(os.getpid(), keep=_LIVE)))
                if n > EXTRA_PROCESSES:
                    self.kill()
                    return dict(ok=False, error=f"ran {n} processes at once, more than the cap of "
                                                f"{EXTRA_PROCESSES} (killed)")
        self.pending.clear()
        if line is None:
            return dict(ok=False, error=self._died("closed its answer channel"))
        if line == _TOO_LONG:
            self.kill()
            return dict(ok=False, fatal=True, error=f"the worker sent an answer line over {_MAX_LINE:,} characters")
        if line == _OUTSIDE:
            self.kill()
            return dict(ok=False, fatal=True, error="the worker wrote to its answer channel outside its turn (killed)")
        try:
            ans = json.loads(line)
        except (ValueError, RecursionError):
            ans = None
        if not isinstance(ans, dict):
            return dict(ok=False, fatal=True, error=f"the worker sent a malformed answer line ({line[:80]!r})")
        return ans

    def _died(self, what: str) -> str:
        """Why the worker stopped answering: it ``what`` (closed a pipe). A worker that is still alive
        :data:`_EXIT_WAIT` seconds later is killed (a sleeping process never meets its CPU cap)."""
        try:
            rc = self.proc.wait(timeout=_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"the worker {what} but did not exit within {_EXIT_WAIT:g} s (killed)"
        if rc == -signal.SIGXCPU:
            return f"worker exceeded its CPU-time limit of {self.cpu_seconds} s (killed by SIGXCPU)"
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(0, self.log.tell() - _LOG_TAIL))
        tail = self.log.read().decode(errors="replace").strip().splitlines()[-3:]
        return f"worker process exited with code {rc}" + (f": {' | '.join(tail)}" if tail else "")

    def kill(self):
        """Kill the worker's whole session and any process that left it."""
        _LIVE.discard(self.proc.pid)
        reap(self.proc.pid)
        try:
            self.proc.wait(timeout=_EXIT_WAIT)  # killed: only a process stuck in the kernel outlasts this
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> str | None:
        """Stop the worker and its sampler, remove its folder (without recursion: an entry may leave a
        folder thousands deep); never raises. Returns what could not be cleaned up, or None."""
        problems = []
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        for step in (self.kill, self.sampler.close, self.closing.set, lambda: self.reader.join(timeout=10),
                     self.proc.stdout.close, self.log.close):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - cleanup goes on, and says what failed
                problems.append(f"{type(exc).__name__}: {exc}")
        left = remove_tree(self.tmp)
        return "; ".join(problems + ([left] if left else [])) or None


def run_entry(entry: Entry, family: str, cells: list[Cell], results_root: Path, time_limit: float = DEFAULT_TIME_LIMIT,
              workers: int = 1, max_failures: int = MAX_FAILURES, progress=None, limits: dict | None = None,
              budget: int = BUDGET, blocked=(), key: bytes | None = None) -> EntryRun:
    """Run ``entry`` on ``cells`` with ``budget`` chain-sweeps per cell (``progress``: callable invoked
    once per finished cell; ``limits``: overrides of :data:`DEFAULT_LIMITS`; ``blocked``: folders the
    workers may not touch besides :func:`blocked_paths`; ``key``: the sampler key the cells' seeds
    are derived from, :mod:`.seeds`, by default the one of ``results_root``, made there on first
    use). The run's sampler processes keep their folders in one folder of its own, blocked for all
    its workers."""
    become_subreaper()
    key = folder_key(results_root) if key is None else key
    samplers = tempfile.mkdtemp(prefix="snrbench-samplers-")
    try:
        with launcher.scope():
            return _run_entry(entry, family, cells, results_root, time_limit, workers, max_failures, progress,
                              limits, budget, list(blocked), samplers, key)
    finally:
        remove_tree(samplers)


def _run_entry(entry, family, cells, results_root, time_limit, workers, max_failures, progress, limits, budget,
               blocked, samplers, key) -> EntryRun:
    caps = worker_limits(time_limit, len(cells), limits)
    todo: queue.Queue = queue.Queue()
    for i, c in enumerate(cells):
        todo.put((i, c))
    out: list[CellResult | None] = [None] * len(cells)
    failed = [0]
    lock = threading.Lock()
    fam = get(family)
    cleanup: list[str] = []

    def retire(w, last):
        """Close worker ``w`` (what could not be cleaned up goes to the run's ``cleanup``); a worker
        that wrote outside its turn after its last answer (``last``) loses that cell."""
        left = w.close()
        if left:
            with lock:
                cleanup.append(left)
        if w.outside and last is not None and out[last] is not None and out[last].ok:
            c = cells[last]
            out[last] = CellResult(c.label, c.cell_id, False, "the worker wrote to its answer channel outside its "
                                   "turn, after this cell's answer (killed)")
            with lock:
                failed[0] += 1

    def serve():
        w, last = None, None
        try:
            while True:
                try:
                    i, c = todo.get_nowait()
                except queue.Empty:
                    return
                with lock:
                    skip = failed[0] >= max_failures
                if skip:
                    out[i] = skipped_cell(c, max_failures)
                else:
                    if w is not None and (w.proc.poll() is not None or w.sampler.proc.poll() is not None):
                        retire(w, last)
                        w = None
                    if w is None:
                        w, last = _Worker(entry, results_root, caps, blocked, samplers), None
                    try:
                        ans = w.ask(w.put_cell(fam, c, entry.access, budget, cell_seed(c.cell_id, key)), time_limit)
                    except Exception as exc:  # noqa: BLE001 - the cell's failure; the worker and its sampler go
                        ans = dict(ok=False, fatal=True, error=f"the exchange with the worker or its sampler process "
                                                               f"failed ({type(exc).__name__}: {exc}); both killed")
                        w.sampler.proc.kill()
                    bad = check_answer(ans, len(fam.t_grid(c.spec)), budget)
                    if bad:
                        ans = dict(ok=False, fatal=True, error=f"answer refused by the runner: {bad}")
                    if ans.get("fatal"):
                        w.kill()
                    last = i
                    if ans["ok"]:
                        out[i] = CellResult(c.label, c.cell_id, True, log10_q=[float(x) for x in ans["log10_q"]],
                                            tau=ans.get("tau"), grad_norm2=ans.get("grad_norm2"),  # floats
                                            sweeps=ans["sweeps"], seconds=ans["seconds"],
                                            cpu_seconds=ans["cpu_seconds"])
                    else:
                        out[i] = CellResult(c.label, c.cell_id, False, printable(ans["error"]))
                        with lock:
                            failed[0] += 1
                if progress:
                    progress()
        finally:
            if w is not None:
                retire(w, last)

    n = max(1, min(workers, len(cells)))
    with ThreadPoolExecutor(n) as pool:
        for fut in [pool.submit(serve) for _ in range(n)]:
            fut.result()
    return EntryRun(entry, family, out, budget, cleanup)


def run_chunk(entry: Entry, family: str, spec_jsons, results_root: str, time_limit: float = DEFAULT_TIME_LIMIT,
              limits: dict | None = None, budget: int = BUDGET, max_failures: int = MAX_FAILURES,
              blocked=(), key: bytes | None = None) -> list[CellResult]:
    """The results of ``entry`` on the cells ``spec_jsons`` (in that order): the pure task a Dask
    worker runs for ``snrbench predict --scheduler`` (:func:`snrbench.predict.predictions.predict_entries`).

    The calling process (the Dask worker) is the trusted runner: :func:`run_entry` with one
    sandboxed worker for the whole chunk, its limits and ``results_root`` (absolute, the client's
    path; a fresh one may not exist yet) blocked as locally. A failed cell is a result
    (``ok=False``), never an exception. What is raised is this machine's own problem, reported
    before any entry code runs: the entry's source is not here with the client's bytes (SHA-256),
    so the workers do not share the client's filesystem at the same paths. Anything raised here is
    re-raised as a :class:`ChunkError`, a plain message that pickles (a 3,000-frame ``RecursionError``
    and its traceback could hang the client). ``key``: the client's sampler key (:mod:`.seeds`), so
    that every Dask worker seeds a cell as the client's folder does; it goes to the sampler
    processes only, never to the sandboxed worker.
    """
    where = f"Dask worker {socket.gethostname()} (pid {os.getpid()})"
    try:
        root = Path(results_root)
        if not root.is_absolute():
            raise ValueError(f"run_chunk: results_root {results_root!r} must be an absolute path")
        _check_source_here(entry, where)
        cells = [Cell(s) for s in spec_jsons]
        run = run_entry(entry, family, cells, root, time_limit=time_limit, workers=1, max_failures=max_failures,
                        limits=limits, budget=budget, blocked=blocked, key=key)
        return run.results
    except BaseException as exc:  # noqa: BLE001 - whatever it is (and its traceback) may not pickle
        message = f"{where}: {type(exc).__name__}: {printable(str(exc) if _safe_str(exc) else '?')}"
    # raised outside the handler, so it has no __context__ either: Dask installs tblib's exception pickling,
    # which pickles the context and its traceback too
    raise ChunkError(message)


class ChunkError(RuntimeError):
    """What :func:`run_chunk` raises: one plain message, picklable, with no traceback or cause."""


def _safe_str(exc: BaseException) -> bool:
    try:
        str(exc)
        return True
    except BaseException:  # noqa: BLE001
        return False


def _check_source_here(entry: Entry, where: str) -> None:
    """RuntimeError unless this machine has the entry's source as the client saw it: the file with
    the same SHA-256, or the installed entry point (read, never imported: no entry code runs here)."""
    if entry.source.startswith("entrypoint:"):
        ep = entry.source.split(":", 2)[1]
        if ep not in {e.name for e in entry_points(group=ENTRY_POINT_GROUP)}:
            raise RuntimeError(f"{entry}: entry point {ep!r} is not installed on {where}; install the same "
                               "package on every Dask worker")
        return
    path = Path(entry.source.rsplit("::", 1)[0])
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise RuntimeError(f"{entry}: its source {path} is not readable on {where} ({exc.strerror or exc}): "
                           "--scheduler needs workers that see the client's filesystem at the same paths") from None
    if digest != entry.source_sha256:
        raise RuntimeError(f"{entry}: its source {path} on {where} differs from the client's (SHA-256 "
                           f"{digest[:12]}… ≠ {entry.source_sha256[:12]}…): the workers must see the same file")
