"""Confine an entry's worker process so it cannot read or change stored results.

Two layers, installed before any entry code is imported:

1. Linux Landlock (kernel ≥ 5.13, unprivileged, via ``ctypes``), by allow-list: the worker may
   read (and run programs from) the Python installation and every folder on ``sys.path``, the
   package's own code, the system folders (:data:`SYSTEM_READ`) and the submitted file; it may
   write only its own temporary folder (and ``/dev/null``). Everything else — the repository's
   ``results/``, ``.git``, ``src/``, ``tasks/``, ``predictors/``, ``leaderboard/``, other clones and
   their object stores — is refused by the kernel, so native code (pyarrow, a ``cat`` subprocess)
   is refused as well; children inherit it. A ``sys.path`` folder that holds a blocked folder
   (e.g. the repository root on ``PYTHONPATH``, or site-packages holding an installed package's
   stored results) is granted only in the parts that hold none, plus its listing (:func:`_carve`);
   a write grant that holds a blocked folder is dropped whole.
2. A Python audit hook (always): a Python-level ``open``/``listdir`` under a blocked folder raises
   ``PermissionError`` and is remembered, so the runner can name the violation precisely.

Where Landlock is unavailable only layer 2 applies; :func:`confine` says which.

Resources (:func:`limit_resources`, also before any entry code): address space, file size (the
log included: writes past it fail with EFBIG), processes and CPU seconds are capped with soft =
hard rlimits, and :func:`drop_capabilities` empties the process's capability sets, so even a
worker running as root cannot raise a hard limit again (``CAP_SYS_RESOURCE``) or step around the
process cap. The runner puts each worker in its own session and kills whatever is left of it
(:func:`process_tree`, :func:`orphans_of`) at the end or on timeout.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import struct
import sys
from pathlib import Path

__all__ = ["confine", "violations", "landlock_abi", "limit_resources", "drop_capabilities", "process_tree", "enter_namespaces", "install_seccomp", "probe_layers", "describe_isolation",
           "orphans_of", "become_subreaper", "Limits"]

_violations: list[str] = []
_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # same numbers on x86-64 and arm64
_PR_SET_NO_NEW_PRIVS = 38
_RULE_PATH_BENEATH = 1
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_DIR_ONLY = sum(1 << k for k in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14


def violations() -> list[str]:
    """Blocked paths that Python code tried to open or list (most recent last)."""
    return _violations


_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when unavailable)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return max(0, int(libc.syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))))
    except (OSError, AttributeError):
        return 0


#: System folders a worker may read (and run programs from): shared libraries, their caches and
#: configuration, and the kernel's views of the process and the CPUs that numpy and torch consult.
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev")
#: Files outside its temporary folder a worker may also write (not ``/dev/shm``: nothing it writes
#: may outlive the run).
SYSTEM_WRITE = ("/dev/null",)


def _contains_blocked(path: str, blocked: list[str]) -> bool:
    p = os.path.realpath(path)
    return any(b == p or b.startswith(p.rstrip(os.sep) + os.sep) or p.startswith(b + os.sep) for b in blocked)


def _carve(path: str, blocked: list[str]) -> list[tuple[str, bool]]:
    """Read grants for ``path``: ``[(path, True)]`` when it holds no blocked folder; else ``(path,
    False)`` (its listing only, so imports can search it) and the parts of it that hold none (its
    children, recursively) — so a grant of e.g. site-packages leaves out an installed package's stored
    results. Nothing when ``path`` lies inside a blocked folder."""
    p = os.path.realpath(path)
    if not os.path.exists(p) or any(p == b or p.startswith(b + os.sep) for b in blocked):
        return []
    if not _contains_blocked(p, blocked):
        return [(p, True)]
    if not os.path.isdir(p):
        return []
    try:
        names = sorted(os.listdir(p))
    except OSError:
        return []
    out = [(p, False)]
    for name in names:
        out += _carve(os.path.join(p, name), blocked)
    return out


def python_paths() -> list[str]:
    """What this interpreter needs to import: its prefixes and every folder on ``sys.path``."""
    out = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    out.update(p for p in sys.path if p and os.path.isdir(p))
    out.add(str(Path(__file__).resolve().parents[1]))  # the package's own code (an editable install)
    return sorted(out)


def _landlock(blocked: list[str], read: list[str], write: list[str]) -> bool:
    """Grant reads (and program runs) beneath ``read``, reads and writes beneath ``write``; refuse
    everything else. A granted folder that holds a blocked one is dropped (Landlock cannot carve an
    exception out of a grant)."""
    abi = landlock_abi()
    if abi < 1:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    handled = (_EXECUTE | _READ_FILE | _READ_DIR | _WRITE_FILE | _DIR_ONLY | (_REFER if abi >= 2 else 0)
               | (_TRUNCATE if abi >= 3 else 0))
    reading = _EXECUTE | _READ_FILE | _READ_DIR
    # ABI ≥ 4: every TCP bind and connect refused (no network rule is added); ABI ≥ 6: no signal to,
    # and no abstract unix socket of, any process outside the worker's domain (the runner, the sampler)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    fields = [handled] + ([net] if abi >= 4 else []) + ([scoped] if abi >= 6 else [])
    attr = ctypes.create_string_buffer(struct.pack(f"={len(fields)}Q", *fields))
    fd = libc.syscall(_CREATE, attr, ctypes.c_size_t(8 * len(fields)), ctypes.c_uint32(0))
    if fd < 0:
        return False
    try:
        rules = [(q, reading if whole else _READ_DIR) for p in read for q, whole in _carve(p, blocked)]
        rules += [(p, handled) for p in write if os.path.exists(p) and not _contains_blocked(p, blocked)]
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    rights &= _READ_FILE | _WRITE_FILE | _TRUNCATE | _EXECUTE
                rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, pfd))
                libc.syscall(_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0))
            finally:
                os.close(pfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return libc.syscall(_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0)) == 0
    finally:
        os.close(fd)


def _audit_hook(blocked: list[str]):
    def hook(event, args):
        if event not in ("open", "os.listdir", "os.scandir") or not args:
            return
        target = args[0]
        if target is None or isinstance(target, int):
            return
        try:
            path = os.path.realpath(os.fsdecode(target))
        except (TypeError, ValueError):
            return
        for b in blocked:
            if path == b or path.startswith(b + os.sep):
                _violations.append(path)
                raise PermissionError(f"predictors may not read stored results: {path}")

    return hook


def confine(blocked, read=(), write=()) -> str:
    """Confine this process (see the module docstring): it may read the Python installation
    (:func:`python_paths`), :data:`SYSTEM_READ` and ``read``, and write only ``write`` (and
    :data:`SYSTEM_WRITE`); ``blocked`` paths are refused even by the audit hook. Returns
    "landlock+audit" or "audit"."""
    blocked = sorted({os.path.realpath(str(Path(b))) for b in blocked})
    read = python_paths() + list(SYSTEM_READ) + [os.path.realpath(str(p)) for p in read]
    write = list(SYSTEM_WRITE) + [os.path.realpath(str(p)) for p in write]
    kernel = _landlock(blocked, read, write)
    sys.addaudithook(_audit_hook(blocked))
    return "landlock+audit" if kernel else "audit"


class Limits(dict):
    """Resource caps of one worker: ``memory`` (bytes of address space), ``file_size`` (bytes per
    file written, the log included), ``processes`` (per user; not enforced for root with
    capabilities, hence :func:`drop_capabilities`), ``cpu_seconds`` (the worker and each child)."""


_RLIMITS = {"memory": resource.RLIMIT_AS, "file_size": resource.RLIMIT_FSIZE, "processes": resource.RLIMIT_NPROC,
            "cpu_seconds": resource.RLIMIT_CPU}


def limit_resources(limits: dict) -> None:
    """Set each cap in ``limits`` (see :class:`Limits`) as an rlimit of this process, soft = hard (CPU:
    soft = hard − 1 s, so the kernel sends SIGXCPU before its SIGKILL)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file-size cap fails, it does not kill
    for key, value in limits.items():
        if value is not None:  # CPU: SIGXCPU a second before the hard limit's SIGKILL, for a clear message
            resource.setrlimit(_RLIMITS[key], (int(value) - (key == "cpu_seconds"), int(value)))


_CAP_VERSION_3, _PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 0x20080522, 24, 47, 4


def drop_capabilities() -> bool:
    """Empty this process's effective, permitted and inheritable capabilities (and the bounding and
    ambient sets), so that it cannot raise a hard rlimit or bypass the process cap. True on success."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails harmlessly past the last capability
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("=Ii", _CAP_VERSION_3, 0))
    data = ctypes.create_string_buffer(bytes(24))  # two {effective, permitted, inheritable} u32 triples
    return libc.capset(header, data) == 0


def _stat(pid: int, zombies: bool = False) -> tuple[int, int] | None:
    """(ppid, session id) of a live process (or, with ``zombies``, of one that exited and was not
    yet waited for), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == b"Z" and not zombies:
        return None
    return int(fields[1]), int(fields[3])


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def process_tree(pid: int, zombies: bool = False) -> list[int]:
    """Live processes of a worker ``pid`` started in its own session: the session's members and
    every descendant of ``pid``, also those that left the session (``setsid``); with ``zombies``
    also those that exited and were not waited for (their CPU time is theirs until then)."""
    stats = {p: st for p in _pids() if (st := _stat(p, zombies)) is not None}
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(p)
    out, todo = {p for p, (_, sid) in stats.items() if sid == pid}, [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return sorted(out | ({pid} if pid in stats else set()))


def orphans_of(parent: int, keep=()) -> list[int]:
    """Live children of ``parent`` not in ``keep`` and outside ``parent``'s own session: with ``parent``
    a child subreaper, the processes that left a worker's session (``setsid``) and lost their own
    parent end up here. A worker runs in a session of its own, and no process can join an existing
    session, so nothing of an entry's shares ``parent``'s session; the children ``parent``'s own
    libraries started in it (multiprocessing's resource tracker, pool and Dask worker processes) are
    never taken for orphans."""
    own = os.getsid(parent)
    return [pid for pid in _pids() if pid not in keep and (st := _stat(pid)) is not None and st[0] == parent
            and st[1] != own]


_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
#: The worker's temporary folder: a tmpfs of this many bytes and files (inodes), in its own mount
#: namespace, so nothing it writes there outlives it or fills the disk.
TEMP_BYTES, TEMP_FILES = 64 * 2**20, 4096


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _refused(what: str) -> str:
    return f"refused by the kernel ({what}: {os.strerror(ctypes.get_errno())})"


def _mount(libc, src: str, target: str, fstype: str | None, flags: int, data: str | None) -> str:
    ok = libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    data.encode() if data else None) == 0
    return "on" if ok else _refused(f"mount {fstype or src} on {target}")


def enter_namespaces(work: str) -> dict[str, str]:
    """Continue this process as PID 1 of new PID, IPC, network and mount namespaces (Linux, needs
    CAP_SYS_ADMIN), with its own ``/proc`` (``hidepid=2``: it lists only the namespace's processes)
    and a tmpfs of :data:`TEMP_BYTES` bytes and :data:`TEMP_FILES` files on ``work``, its cwd.

    Each layer is tried on its own; the result names each one, ``"on"`` or why the kernel refused
    it, so the runner can report what the worker got. IPC namespace: no SysV shared memory,
    semaphore or message queue of the machine is visible, and those it makes die with it. Network
    namespace: no interface but a loopback that is down (no UDP, TCP or abstract unix socket reaches
    another process). ``unshare(CLONE_NEWPID)`` puts only the *next* child in the namespace, so this
    forks: the child returns and goes on as the namespace's init; the parent closes every
    descriptor, waits and leaves with the child's status (the same signal, if it was killed). When
    the init exits the kernel kills every process left in the namespace, however it forked or left
    its session, and the tmpfs goes with the mount namespace."""
    layers = dict.fromkeys(("pid", "ipc", "net", "mount", "proc", "tmpfs"), "not Linux")
    if not sys.platform.startswith("linux"):
        return layers
    libc = _libc()
    for name, flag in (("ipc", _CLONE_NEWIPC), ("net", _CLONE_NEWNET), ("mount", _CLONE_NEWNS), ("pid", _CLONE_NEWPID)):
        layers[name] = "on" if libc.unshare(flag) == 0 else _refused(f"unshare {name}")
    if layers["pid"] == "on":
        pid = os.fork()
        if pid != 0:
            _wait_as_parent(pid)
        signal.signal(signal.SIGXCPU, lambda *_: os._exit(128 + signal.SIGXCPU))  # an init ignores unhandled ones
    if layers["mount"] != "on":
        layers["proc"] = layers["tmpfs"] = "no mount namespace"
        return layers
    private = _mount(libc, "none", "/", None, _MS_REC | _MS_PRIVATE, None)  # nothing mounted here leaks out
    if private != "on":
        layers["proc"] = layers["tmpfs"] = private
        return layers
    layers["proc"] = _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "hidepid=2") \
        if layers["pid"] == "on" else "no PID namespace"
    layers["tmpfs"] = _mount(libc, "tmpfs", work, "tmpfs", _MS_NOSUID | _MS_NODEV,
                             f"size={TEMP_BYTES},nr_inodes={TEMP_FILES},mode=0700")
    os.chdir(work)  # the cwd now lies on the tmpfs
    return layers


def _wait_as_parent(pid: int):
    """The namespace's outer process: wait for the init ``pid`` and leave as it did."""
    os.closerange(0, 65536)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else signal.SIGXCPU if code == 128 + signal.SIGXCPU else None
    if sig is not None:  # leave the way the child did, so the runner reads the same signal
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(code)


#: What the seccomp filter refuses with EPERM (names resolved by libseccomp for this machine's
#: architecture): any new socket (the sampler's channel is inherited, already open), the SysV IPC
#: and kernel-keyring calls, io_uring (whose requests bypass seccomp), and reaching into other
#: processes or namespaces (ptrace, their memory, a pidfd: no descriptor of the runner or a launcher
#: taken with ``pidfd_getfd``, where no PID namespace or Landlock scoping hides them; ``kcmp``).
SECCOMP_DENIED = ("socket", "socketpair", "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv",
                  "msgctl", "semget", "semop", "semtimedop", "semctl", "add_key", "request_key", "keyctl",
                  "io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
                  "process_vm_writev", "process_madvise", "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "kcmp",
                  "setns", "unshare", "mount", "bpf", "perf_event_open", "userfaultfd")
_SCMP_ACT_ALLOW, _SCMP_ACT_ERRNO = 0x7FFF0000, 0x00050000


def install_seccomp(denied=SECCOMP_DENIED) -> str:
    """Refuse the system calls ``denied`` with EPERM for this process and every child it makes,
    through libseccomp (the system's ``libseccomp.so.2``, the library Docker, systemd and flatpak
    use: it writes the BPF program, checks the architecture and refuses the x32 numbers). Returns
    "on", or why not (no libseccomp, or the kernel refused); sets no_new_privs first."""
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return "not Linux"
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    except OSError as exc:
        return f"not installed (libseccomp.so.2: {exc}; Debian package libseccomp2)"
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = lib.seccomp_release.argtypes = [ctypes.c_void_p]
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return _refused("no_new_privs")
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return "refused (seccomp_init failed)"
    try:
        for name in denied:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr >= 0 and lib.seccomp_rule_add(ctx, _SCMP_ACT_ERRNO | 1, nr, 0) != 0:  # errno 1: EPERM
                return f"refused (seccomp_rule_add {name})"
        rc = lib.seccomp_load(ctx)
        return "on" if rc == 0 else f"refused by the kernel (seccomp_load: {os.strerror(-rc)})"
    finally:
        lib.seccomp_release(ctx)


def probe_layers() -> dict[str, str]:
    """What a worker started now would get: each layer of :func:`enter_namespaces` and
    :func:`install_seccomp` tried in a forked child (this process is unchanged), and Landlock's ABI."""
    import json
    import tempfile

    r, w = os.pipe()
    work = tempfile.mkdtemp(prefix="snrbench-probe-")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's own report is what the parent reads
        try:
            os.close(r)
            layers = enter_namespaces(work)
            layers["seccomp"] = install_seccomp()
            os.write(w, json.dumps(layers).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        raw = fh.read()
    os.waitpid(pid, 0)
    os.rmdir(work)
    layers = json.loads(raw) if raw else dict.fromkeys(("pid", "ipc", "net", "mount", "proc", "tmpfs", "seccomp"),
                                                       "probe failed")
    abi = landlock_abi()
    layers["landlock"] = f"ABI {abi}" if abi else "refused by the kernel (no Landlock: only the audit hook guards reads)"
    return layers


def describe_isolation(layers: dict[str, str] | None = None) -> str:
    """One line for the operator: each layer and whether the kernel gave it (:func:`probe_layers`)."""
    layers = layers if layers is not None else probe_layers()
    names = dict(landlock="Landlock", seccomp="seccomp", pid="PID namespace", ipc="IPC namespace",
                 net="network namespace", mount="mount namespace", proc="own /proc", tmpfs="tmpfs temp folder")
    on = [f"{names[k]}" + (f" {v}" if k == "landlock" and v.startswith("ABI") else "")
          for k, v in layers.items() if v == "on" or (k == "landlock" and v.startswith("ABI"))]
    off = [f"NOT {names[k]} ({v})" for k, v in layers.items() if not (v == "on" or (k == "landlock" and v.startswith("ABI")))]
    return ", ".join(on + off + ["the audit hook", "rlimits"])


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``)."""
    if not sys.platform.startswith("linux"):
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
