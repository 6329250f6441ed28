"""Start worker and sampler processes by fork from a warm launcher instead of a fresh interpreter.

A fresh ``python -m snrbench.predict._worker`` (or ``._sampler_service``) spends about two CPU
seconds importing torch and numpy before it reads a byte, and a submission starts several of them
(discovery, the run, each fresh draw, a replacement for every killed worker). Inside
:func:`scope` (a command of the CLI, a :func:`~.runner.run_entry`, a :func:`~.runner.discover`)
the runner starts, per kind, one **launcher**: ``python -m snrbench.predict._worker --launcher``
(``._sampler_service --launcher``), started like the process it stands for (same interpreter,
same environment but :data:`PER_PROCESS`, stdin and stdout ``/dev/null``, no other descriptor), which
imports what that kind imports before its ``main()`` and then only forks on request. The forked
process is the worker (sampler) and runs the same ``main()`` a fresh one would, confinement
included: a worker still enters its namespaces, sets its rlimits, drops its capabilities and
installs Landlock and seccomp itself, before any entry code is imported.

What makes a forked process the same as a fresh one (each step checked, else the launch fails and
the runner starts a fresh process, :func:`popen`):

- **one thread**: the launcher refuses to fork unless it has a single thread (``OMP_NUM_THREADS=1``,
  as for the processes it stands for); a fork copies only the calling thread anyway;
- **nothing of another request**: the launcher never reads a request. It receives one end of a new
  socket pair and forks; the child forks again and exits (so the grandchild is re-parented to the
  runner, a child subreaper, which waits for it like any child); the grandchild reads its own
  request (argv, cwd, environment, descriptors) from that socket;
- **descriptors**: the launcher holds none but stdin, stdout, stderr and its control socket (it
  checks ``/proc/self/fd`` before serving); the child puts the received ones at the numbers the
  runner asked for and closes every other;
- **process**: its own session (``setsid``), the runner as parent, the requested cwd (also
  ``sys.path[0]``, as ``-m`` sets it), environment (``os.environ`` replaced; ``tempfile`` forgets
  any folder it computed), ``sys.argv``, dumpable (the launcher is not), freshly seeded random
  generators and a new ``multiprocessing`` authkey;
- **signals**: the dispositions and mask a fresh interpreter started by the runner at that moment
  would have (the runner sends its ignored signals and its thread's mask with each request,
  :func:`_as_fresh`): its ignored signals stay ignored (SIGINT included, as for a background job of
  a script: then no KeyboardInterrupt handler), SIGPIPE and SIGXFSZ ignored, every other at its
  default, SIGINT's Python handler where SIGINT is not ignored;
- **stack**: the launcher's frames are gone when ``main()`` runs: :func:`serve` returns in the
  forked process and ``__main__`` calls ``main()`` as a fresh one does.

A launcher holds no secret: it is started with the environment of the processes it stands for (the
worker launcher with the workers' allow-listed one, the sampler launcher with the runner's whole
environment, as a sampler process always had), and requests never pass through it. It forks only
for a message the kernel says its parent, the runner, sent (``SO_PASSCRED``), and it is not dumpable
(no ``/proc/<pid>/mem`` or ``pidfd_getfd`` for a process of the same user without capabilities).
What a fork cannot draw anew: the workers of one launcher share its str hash secret, address-space
layout, stack canary and pointer guard with one another (a fresh process would draw its own).
Workers and samplers come from different launchers, so a worker shares none of them with the trusted
sampler process, and nothing connects two workers. From inside, a launched worker can tell it was
launched: its ``/proc/self/cmdline`` ends in ``--launcher N`` and its ``/proc/self/environ`` is the
launcher's (no ``TMPDIR``). The launchers end with their scope (their control socket closes; they
exit and are waited for), so nothing is left running after a command. ``SNRBENCH_NO_LAUNCHER=1``
(in the runner's environment) starts every process fresh.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading

__all__ = ["scope", "popen", "prepare", "running", "serve", "LAUNCHED", "LaunchError"]

#: The modules a launcher can stand for (``python -m MODULE [args]``).
LAUNCHED = ("snrbench.predict._worker", "snrbench.predict._sampler_service")
_READY_WAIT = 120.0  # seconds a new launcher has to import and say it is ready
_LAUNCH_WAIT = 10.0  # seconds a launched process has to take its request and set up (healthy: milliseconds)
_REPARENT_WAIT = 5.0  # seconds the launched process waits to become the runner's child
_MAX_REQUEST = 1 << 20
_PR_GET_CHILD_SUBREAPER, _PR_SET_DUMPABLE = 37, 4


#: Variables that differ between processes a launcher stands for, and that nothing reads before
#: ``main()``: each forked process gets its own (its whole environment comes with its request), and a
#: launcher is started without them. ``TMPDIR``: each worker's own folder; ``PYTEST_CURRENT_TEST``:
#: rewritten by pytest at each step of each test (a sampler process gets the runner's whole environment).
PER_PROCESS = ("TMPDIR", "PYTEST_CURRENT_TEST")


def _shared(env: dict) -> dict:
    """What a launcher is started with (and keyed by) of an environment: all but :data:`PER_PROCESS`."""
    return {k: v for k, v in env.items() if k not in PER_PROCESS}


class LaunchError(RuntimeError):
    """A launcher could not start a process (the caller starts a fresh one instead)."""


def _subreaper() -> bool:
    import ctypes

    flag = ctypes.c_int(0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value == 1
    except (OSError, AttributeError):
        return False


def _fds() -> list[int]:
    """This process's open descriptors (not the one the listing itself used)."""
    import fcntl

    out = []
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            continue
        out.append(fd)
    return out


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _status_mask(field: str, path: str = "/proc/self/status") -> set[int]:
    """The signals in the bit mask ``field`` (``SigIgn``, ``SigBlk``, ``SigCgt``) of ``path``."""
    with open(path) as fh:
        bits = next(int(line.split()[1], 16) for line in fh if line.startswith(field + ":"))
    return {n for n in range(1, 65) if bits >> (n - 1) & 1}


def _signals() -> dict:
    """What a process this thread starts by fork and exec begins with, of signals: those this process
    ignores (as the kernel has them: ignored dispositions survive exec, every other is reset) and
    those this thread blocks (the mask survives both)."""
    return dict(ignored=sorted(_status_mask("SigIgn")),
                blocked=sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))


def _as_fresh(signals: dict) -> None:
    """Give this (forked) process the signal dispositions and mask of an interpreter that the runner
    started fresh (``subprocess.Popen``, ``restore_signals`` on) from the thread that sent ``signals``
    (:func:`_signals`): the runner's ignored signals stay ignored through exec, except SIGPIPE and
    SIGXFSZ, which Popen resets; every other is at its default; the new interpreter then ignores
    SIGPIPE and SIGXFSZ itself and installs ``default_int_handler`` for SIGINT unless SIGINT is
    ignored. (The launcher's own dispositions are those of the runner when the launcher started,
    plus its ignored SIGINT; the runner's may have changed since.) A handler that native code of the
    interpreter installed (``faulthandler``) is kept where the fresh one has its handler too."""
    ignored = set(signals["ignored"]) | {signal.SIGPIPE, signal.SIGXFSZ}
    now = _status_mask("SigIgn")
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        want = signal.SIG_IGN if sig in ignored else \
            signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        if (sig in now) != (want == signal.SIG_IGN) or (sig == signal.SIGINT and signal.getsignal(sig) != want):
            signal.signal(sig, want)
    signal.pthread_sigmask(signal.SIG_SETMASK, [int(s) for s in signals["blocked"]])


# -- the runner's side ----------------------------------------------------------------------------

class _Launcher:
    """One launcher process for ``module`` with environment ``env``, and the runner's end of its
    control socket."""

    def __init__(self, module: str, env: dict):
        import tempfile

        self.module = module
        self.home = tempfile.mkdtemp(prefix="snrbench-launcher-")  # its cwd while it imports: empty
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", module, "--launcher", str(theirs.fileno())],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=[theirs.fileno()],
                                         cwd=self.home, env=_shared(env))
        except BaseException:
            ours.close()
            os.rmdir(self.home)
            raise
        finally:
            theirs.close()
        self.ctl = ours
        self.ctl.settimeout(_READY_WAIT)
        try:
            ready = self.ctl.recv(16)
        except OSError:
            ready = b""
        with contextlib.suppress(OSError):  # its imports are done: nothing of it is left on disk
            os.rmdir(self.home)
        if ready != b"ready":
            self.kill()
            raise LaunchError(f"the {module} launcher did not start")

    def launch(self, argv: list[str], cwd: str, env: dict, fds: dict[int, int], new_session: bool,
               live: set, lock) -> int:
        """Fork a process that runs ``module``'s main with ``argv``, ``cwd``, ``env`` and the
        descriptors ``fds`` ({number in the child: descriptor here}); its pid, once it is this
        process's child and set up. Its pid is put in ``live`` (under ``lock``) before the process
        can leave this process's session (it waits for its request, sent only then), and taken out
        again if the launch fails; ``lock`` is never held while this waits for the launcher."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = None
        try:
            try:
                socket.send_fds(self.ctl, [b"fork"], [theirs.fileno()])
            finally:
                theirs.close()
            ours.settimeout(_LAUNCH_WAIT)
            first = ours.recv(256)  # the child's pid; it has set SO_PASSCRED and waits for its request
            if not first:
                raise LaunchError(f"the {self.module} launcher forked nothing (it exited?)")
            pid = int(json.loads(first)["pid"])
            with lock:  # before the request, so before it can setsid (no reap takes it for an orphan)
                live.add(pid)
            request = dict(argv=list(argv), cwd=str(cwd), env=dict(env), targets=list(fds),
                           session=bool(new_session), signals=_signals())
            socket.send_fds(ours, [json.dumps(request).encode()], list(fds.values()))
            reply = ours.recv(4096)
            if reply != b"ok":
                raise LaunchError(f"the {self.module} launcher's child did not set up: "
                                  f"{reply.decode(errors='replace') or 'it exited'}")
            return pid
        except BaseException as exc:
            if pid:  # half started: killed, and waited for once it is this process's child
                _kill_and_wait(pid)
                with lock:
                    live.discard(pid)
            if isinstance(exc, (OSError, ValueError, KeyError, TypeError)):
                raise LaunchError(f"the {self.module} launcher failed: {type(exc).__name__}: {exc}") from None
            raise
        finally:
            ours.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self):
        """End the launcher (its control socket closes: it exits) and wait for it; never raises."""
        with contextlib.suppress(OSError):
            self.ctl.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """End a launcher that failed (it may be stopped or hung: no wait for it to leave by itself)."""
        with contextlib.suppress(OSError):
            self.ctl.close()
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()


def _kill_and_wait(pid: int) -> None:
    """SIGKILL ``pid`` and wait for it once it is this process's child (the launcher's intermediate
    child exits at once; a launched process is re-parented here within milliseconds)."""
    import time

    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + _REPARENT_WAIT
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


class _Launched(subprocess.Popen):
    """A :class:`subprocess.Popen` whose child is forked by a launcher: everything but the start
    (pipes, ``wait``, ``poll``, ``kill``) is Popen's own."""

    def __init__(self, launcher: _Launcher, live: set, lock, args, **kwargs):
        self._launcher, self._live, self._lock = launcher, live, lock
        super().__init__(args, **kwargs)

    def _execute_child(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo,
                       creationflags, shell, p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite,
                       restore_signals, gid, gids, uid, umask, start_new_session, *rest):
        try:
            fds = {0: p2cread if p2cread != -1 else 0, 1: c2pwrite if c2pwrite != -1 else 1,
                   2: errwrite if errwrite != -1 else 2}
            fds.update({fd: fd for fd in pass_fds})
            self.pid = self._launcher.launch(list(args)[3:], cwd or os.getcwd(), os.environ if env is None else env,
                                             fds, start_new_session, self._live, self._lock)
            self._child_created = True
        finally:
            self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)


_LOCK = threading.Lock()
_depth = 0  # open scopes in this process
_owner = None  # the pid whose launchers these are (a forked runner starts its own)
_launchers: dict[tuple, _Launcher | None] = {}  # None: this kind failed in this scope (fresh processes)


@contextlib.contextmanager
def scope():
    """Within it (nested scopes share), :func:`popen` forks workers and samplers from launchers;
    the outermost scope's end ends the launchers it started."""
    global _depth
    with _LOCK:
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            done = list(_launchers.values()) if _depth == 0 and _owner == os.getpid() else []
            if _depth == 0:
                _launchers.clear()
        for launcher in done:
            if launcher is not None:
                launcher.close()


def _key(module: str, env: dict) -> tuple:
    return module, tuple(sorted(_shared(env).items()))


def prepare(cmd, env: dict | None) -> None:
    """Start the launcher that :func:`popen` would use for ``cmd`` (when in a scope), outside any lock
    the caller holds while it spawns (a launcher takes seconds to import)."""
    if _popen_known():
        _launcher_for(cmd, os.environ if env is None else env)


def _launcher_for(cmd, env) -> _Launcher | None:
    global _owner
    cmd = [str(c) for c in cmd]
    if os.environ.get("SNRBENCH_NO_LAUNCHER", "") not in ("", "0"):  # the operator's (or a test's) opt-out
        return None
    if len(cmd) < 3 or cmd[0] != sys.executable or cmd[1] != "-m" or cmd[2] not in LAUNCHED \
            or not sys.platform.startswith("linux") or not _subreaper():
        return None
    with _LOCK:
        if _depth == 0:
            return None
        if _owner != os.getpid():  # launchers of a parent this process was forked from are not its own
            _launchers.clear()
            _owner = os.getpid()
        key = _key(cmd[2], env)
        if key in _launchers and (_launchers[key] is None or _launchers[key].alive()):
            return _launchers[key]
        for other in [k for k in _launchers if k[0] == cmd[2]]:  # one per kind: another environment's ends
            old = _launchers.pop(other)
            if old is not None:
                old.close()
        try:
            _launchers[key] = _Launcher(cmd[2], dict(env))
        except (OSError, LaunchError):
            _launchers[key] = None
        return _launchers[key]


def running() -> list[int]:
    """The pids of this process's live launchers."""
    with _LOCK:
        return sorted(lc.proc.pid for lc in _launchers.values() if _owner == os.getpid() and lc is not None
                      and lc.alive())


#: What a launched process honours of Popen's arguments (any other: it starts fresh).
_HONOURED = {"stdin", "stdout", "stderr", "cwd", "env", "pass_fds", "start_new_session", "bufsize", "text"}
#: Popen's own start, which :class:`_Launched` replaces, as this module knows it (another: fresh starts).
_EXECUTE_CHILD = ("self", "args", "executable", "preexec_fn", "close_fds", "pass_fds", "cwd", "env", "startupinfo",
                  "creationflags", "shell", "p2cread", "p2cwrite", "c2pread", "c2pwrite", "errread", "errwrite",
                  "restore_signals", "gid", "gids", "uid", "umask", "start_new_session")


def _popen_known() -> bool:
    code = getattr(subprocess.Popen, "_execute_child").__code__
    return code.co_varnames[:len(_EXECUTE_CHILD)] == _EXECUTE_CHILD and hasattr(subprocess.Popen, "_close_pipe_fds")


def popen(cmd, *, live: set, lock, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(cmd, **kwargs)``, its pid in ``live`` (a set ``lock`` guards) before it can
    leave this process's session; for ``python -m`` one of :data:`LAUNCHED` inside a :func:`scope`,
    forked from that module's launcher (see the module doc), and started fresh whenever that is not
    possible. A fresh start holds ``lock`` across ``Popen`` (milliseconds); a launch holds it only
    while it adds the pid, so a stopped or hung launcher holds up nothing but this start (it is
    killed after :data:`_LAUNCH_WAIT` and the process started fresh)."""
    launcher = None
    if set(kwargs) <= _HONOURED and _popen_known():
        launcher = _launcher_for(cmd, os.environ if kwargs.get("env") is None else kwargs["env"])
    if launcher is not None:
        try:
            return _Launched(launcher, live, lock, cmd, **kwargs)
        except LaunchError:
            with _LOCK:
                _launchers[_key(launcher.module, os.environ if kwargs.get("env") is None else kwargs["env"])] = None
            launcher.kill()
    with lock:
        proc = subprocess.Popen(cmd, **kwargs)
        live.add(proc.pid)
    return proc


# -- the launcher's side --------------------------------------------------------------------------

def _prctl(option: int, arg: int = 0) -> int:
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)


def _recv(sock: socket.socket, size: int, maxfds: int) -> tuple[bytes, list[int], tuple | None]:
    """One message on ``sock`` (``SO_PASSCRED`` set): its bytes, the descriptors it carried and the
    sender's (pid, uid, gid) as the kernel vouches for them (None if none came). A message that
    carried more descriptors than ``maxfds`` is refused (the kernel closed the rest)."""
    import array
    import struct

    ucred = struct.calcsize("3i")
    msg, anc, flags, _ = sock.recvmsg(size, socket.CMSG_SPACE(maxfds * 4) + socket.CMSG_SPACE(ucred))
    fds, creds = [], None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += array.array("i", data[:len(data) - len(data) % 4])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            creds = struct.unpack("3i", data[:ucred])
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise ValueError("a message longer, or with more descriptors, than allowed")
    return msg, fds, creds


def serve(ctl_fd: int, preload=()) -> None:
    """Run as a launcher: import ``preload``, say "ready" on the control socket ``ctl_fd``, then fork a
    process per request of the runner (its parent) until the socket closes. The launcher itself
    leaves with ``os._exit``; this returns only in a forked process once it is set up as a fresh one
    (:func:`_become`), and its caller, the ``__main__`` of :data:`LAUNCHED`, then runs ``main()``
    exactly as a fresh process does, with no frame of the launcher below it.

    Hardening: once it has imported, the launcher removes its deleted home from ``sys.path`` (any
    user could create that path again in the shared TMPDIR) and makes itself non-dumpable (no
    ``/proc/<pid>/mem``, ``environ``, ptrace or ``pidfd_getfd`` for a process of the same uid without
    capabilities, whatever Yama or Landlock allow); it forks only for a message the kernel says the
    runner sent (``SO_PASSCRED``: pid and uid), so whoever got hold of a copy of its control socket
    cannot start a process with a request of its own: the launcher exits instead."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the runner's to handle
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # it waits for each intermediate child
    runner = os.getppid()
    ctl = socket.socket(fileno=ctl_fd)
    home = os.getcwd()
    cwd_first = bool(sys.path) and sys.path[0] == home  # -m put the cwd first (not with -P)
    for name in preload:
        importlib.import_module(name)
    if cwd_first:  # removed from disk once this has imported (_Launcher): nothing may import from there
        del sys.path[0]
        sys.path_importer_cache.pop(home, None)
    if _prctl(_PR_SET_DUMPABLE, 0) != 0 or _fds() != sorted({0, 1, 2, ctl_fd}) or _threads() != 1:
        os._exit(1)  # not the clean single-threaded process the forks must copy: the runner starts fresh ones
    ctl.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    ctl.sendall(b"ready")
    while True:
        try:
            msg, fds, creds = _recv(ctl, 16, 1)
        except OSError:
            msg, fds, creds = b"", [], None
        except ValueError:
            os._exit(1)
        if not msg or msg != b"fork" or len(fds) != 1 or creds is None or creds[:2] != (runner, os.getuid()) \
                or os.getppid() != runner or _threads() != 1:
            os._exit(0 if not msg else 1)  # the runner closed its end, or this is not the runner: no fork
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            if os.fork() == 0:
                _become(ctl, fds[0], runner, cwd_first)
                return
            os._exit(0)  # the grandchild is re-parented to the runner, the nearest subreaper
        os.close(fds[0])
        os.waitpid(child, 0)


def _become(ctl: socket.socket, fd: int, runner: int, cwd_first: bool) -> None:
    """In the forked process: take the request from ``fd`` (sent by ``runner``, as the kernel says),
    set up as the fresh process would be. Whatever fails is reported to the runner and ends the
    process; nothing of the request is left in a frame or a global once this returns."""
    os.close(ctl.detach())
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # before the runner can send its request
        sock.sendall(json.dumps(dict(pid=os.getpid())).encode())
        raw, fds, creds = _recv(sock, _MAX_REQUEST, 64)
        if creds is None or creds[:2] != (runner, os.getuid()):
            raise PermissionError("the request did not come from the runner")
        req = json.loads(raw)
        targets = [int(t) for t in req["targets"]]
        if len(fds) != len(targets):
            raise ValueError(f"{len(fds)} descriptors for {len(targets)} targets")
        for _ in range(int(_REPARENT_WAIT * 1000)):  # the intermediate child exits at once
            if os.getppid() == runner:
                break
            import time

            time.sleep(0.001)
        else:
            raise RuntimeError("did not become the runner's child (is the runner a child subreaper?)")
        if req["session"]:
            os.setsid()
        # every received descriptor (and this socket) above every target, then each onto its target;
        # every other descriptor closed
        import fcntl

        low = max(targets + fds + [sock.fileno()]) + 1
        high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, low) for f in fds]
        moved = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, low)
        os.close(sock.detach())
        sock = socket.socket(fileno=moved)
        for f in fds:
            os.close(f)
        for target, f in zip(targets, high):
            os.dup2(f, target, inheritable=True)
        keep = set(targets) | {sock.fileno()}
        for f in _fds():
            if f not in keep:
                with contextlib.suppress(OSError):
                    os.close(f)
        os.chdir(req["cwd"])
        if cwd_first:
            sys.path.insert(0, os.getcwd())  # as `python -m` sets it (the launcher took its own folder out)
        os.environ.clear()
        os.environ.update(req["env"])
        import tempfile

        tempfile.tempdir = None  # computed again from this environment's TMPDIR
        if "numpy.random" in sys.modules:  # its global generator seeded afresh, as in a new process
            sys.modules["numpy.random"].seed()  # (Python's own `random` reseeds itself after a fork)
        if "multiprocessing.process" in sys.modules:  # drawn at import, in the launcher: drawn again
            sys.modules["multiprocessing.process"].current_process().authkey = os.urandom(32)
        module = sys.modules["__main__"].__file__
        sys.argv = [module] + [str(a) for a in req["argv"]]
        _as_fresh(req["signals"])
        left = sorted(set(_fds()) - set(targets) - {sock.fileno()})
        if left:
            raise RuntimeError(f"descriptors left open: {left}")
        if _prctl(_PR_SET_DUMPABLE, 1) != 0:  # as a fresh process is
            raise OSError("prctl(PR_SET_DUMPABLE, 1) failed")
        sock.sendall(b"ok")
    except BaseException as exc:  # noqa: BLE001 - told to the runner; nothing of the entry has run
        with contextlib.suppress(OSError):
            sock.sendall(f"{type(exc).__name__}: {exc}"[:4000].encode() or b"failed")
        os._exit(1)
    os.close(sock.detach())
