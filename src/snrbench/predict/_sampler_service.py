"""The sampler process: a :class:`~snrbench.predict.meter.Meter` served to one worker over a socket.

``python -m snrbench.predict._sampler_service FD SHM_FD``: the runner starts it (its own session, never
confined with the entry, never in the entry's Landlock domain, so the entry cannot read its memory)
and talks to it on stdin/stdout, one JSON line each way:

- ``{"op": "cell", "cell_file", "seed", "observables", "budget", "data_starts"}`` → ``{"ok", "info",
  "data_mean"}``: load the cell (a ``.npz`` the runner wrote: model arrays and ``data``), reset the
  count; ``data_starts`` (the runner's word, never the worker's): chains may begin at the data;
- ``{"op": "used"}`` → ``{"ok", "used"}``: chain-sweeps charged in the current cell.

The worker holds the other end of the socket ``FD`` (:class:`MeterClient`). Each message is a
frame: 8-byte little-endian length, then the bytes. A request is one JSON frame
(``{"op": "new" | "call" | "stream" | "used", ...}``, at most 64 KiB); a reply is one JSON frame,
``{"ok", "arrays": [[name, dtype, shape, offset], ...]}`` or ``{"ok": false, "kind", "error"}``. A
stream's reply ``{"ok", "blocks": K}`` is followed by K block frames, each acknowledged by the
client (``{"ack": k}``) before its half of the memory is written again. The
arrays themselves are written into the shared memory file ``SHM_FD`` (a memfd both processes map,
:data:`SHM_BYTES` long) at those offsets: a copy at memory speed instead of a pass through the
socket. The sampler process never reads that memory, and every request is checked by the meter:
the client may be hostile. ``--launcher N`` instead of ``FD SHM_FD`` makes it the warm launcher the
runner forks sampler processes from (:mod:`.launcher`; a launcher of its own, not the workers').
"""
from __future__ import annotations

import json
import mmap
import os
import selectors
import socket
import struct
import sys

import numpy as np

from .meter import MAX_RECORD_VALUES, BudgetExceeded, CellInfo, Meter

__all__ = ["MeterClient", "serve", "SHM_BYTES", "shared_memory"]

#: Size of the shared memory of one sampler process: two of the largest blocks (float64) plus slack.
SHM_BYTES = 2 * 8 * MAX_RECORD_VALUES + (1 << 20)
#: Seconds the sampler process waits for the rest of a frame, and for a stream's acknowledgement.
FRAME_TIMEOUT, ACK_TIMEOUT = 10.0, 120.0


def shared_memory() -> int:
    """A new anonymous shared memory file of :data:`SHM_BYTES` (its fd; pages are allocated on use),
    sealed against shrinking and growing (a worker that truncates it cannot make the sampler fault)."""
    import fcntl

    fd = os.memfd_create("snrbench-sampler", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, SHM_BYTES)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return fd

_MAX_REQUEST = 1 << 16
_ERRORS = {"BudgetExceeded": BudgetExceeded, "ValueError": ValueError}


def _recv_exact(sock: socket.socket, buf: memoryview) -> None:
    while len(buf):
        k = sock.recv_into(buf)
        if k == 0:
            raise ConnectionError("the sampler process closed the connection")
        buf = buf[k:]


def _send_frame(sock: socket.socket, payload) -> None:
    payload = memoryview(payload).cast("B")
    sock.sendall(struct.pack("<Q", payload.nbytes))
    sock.sendall(payload)


def _recv_len(sock: socket.socket) -> int:
    head = bytearray(8)
    _recv_exact(sock, memoryview(head))
    return struct.unpack("<Q", head)[0]


class MeterClient:
    """The worker's end: the same ``new``/``call``/``stream``/``used`` as a local Meter, over the socket."""

    def __init__(self, sock: socket.socket, shm_fd: int):
        self._sock = sock
        self._shm = mmap.mmap(shm_fd, SHM_BYTES, prot=mmap.PROT_READ)
        self._open = None  # the stream being read, drained before any other request

    def _frame(self) -> dict:
        n = _recv_len(self._sock)
        if n > _MAX_REQUEST:
            raise ConnectionError("malformed reply from the sampler process")
        head = bytearray(n)
        _recv_exact(self._sock, memoryview(head))
        head = json.loads(head)
        if not head["ok"]:
            raise _ERRORS.get(head["kind"], RuntimeError)(head["error"])
        return head

    def _arrays(self, layout) -> dict[str, np.ndarray]:
        out = {}
        for name, dtype, shape, offset in layout:
            count = int(np.prod(shape, dtype=np.int64))
            out[name] = np.frombuffer(self._shm, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        return out

    def _ask(self, request: dict) -> dict:
        if self._open is not None:
            for _ in self._open:
                pass
        _send_frame(self._sock, json.dumps(request).encode())
        return self._frame()

    def new(self, n_chains, seed=None, dtype="float32", start="uniform") -> tuple[int, int]:
        head = self._ask(dict(op="new", n_chains=n_chains, seed=seed, dtype=dtype, start=start))
        return head["id"], head["n_chains"]

    def call(self, sid, op, n=0, what=()) -> dict[str, np.ndarray]:
        return self._arrays(self._ask(dict(op="call", id=sid, call=op, n=n, what=list(what)))["arrays"])

    def stream(self, sid, n_blocks, block, what=()):
        head = self._ask(dict(op="stream", id=sid, blocks=n_blocks, n=block, what=list(what)))
        self._open = self._blocks(head["blocks"])
        return self._open

    def _blocks(self, n_blocks: int):
        try:
            for k in range(n_blocks):
                arrays = self._arrays(self._frame()["arrays"])
                _send_frame(self._sock, json.dumps(dict(ack=k)).encode())
                yield arrays
        finally:
            self._open = None

    @property
    def used(self) -> int:
        return self._ask(dict(op="used"))["used"]


def _write(shm: mmap.mmap, arrays: dict, base: int, limit: int) -> list:
    """Copy ``arrays`` into the shared memory from ``base``; their layout for the reply."""
    layout, offset = [], base
    for k, v in arrays.items():
        if offset + v.nbytes > limit:
            raise ValueError("the reply does not fit the shared memory (record fewer sweeps at once)")
        np.frombuffer(shm, dtype=v.dtype, count=v.size, offset=offset)[:] = v.reshape(-1)
        layout.append([k, v.dtype.str, list(v.shape), offset])
        offset += -(-v.nbytes // 64) * 64
    return layout


def _ack(sock: socket.socket, k: int, control=None) -> None:
    """Wait for the client's acknowledgement of block ``k`` (at most :data:`ACK_TIMEOUT`). A line
    from the runner on ``control`` first ends the stream: its cell's turn is over (ConnectionError)."""
    import select

    ready = select.select([sock] + ([control] if control is not None else []), [], [], ACK_TIMEOUT)[0]
    if control is not None and control in ready and sock not in ready:
        raise ConnectionError("a stream was still open when the runner wrote (abandoned)")
    if not ready:
        raise ConnectionError(f"a stream's block was not acknowledged within {ACK_TIMEOUT:g} s")
    n = _recv_len(sock)
    raw = bytearray(min(n, _MAX_REQUEST))
    if n > _MAX_REQUEST:
        raise ConnectionError("a stream is open: expected an acknowledgement")
    _recv_exact(sock, memoryview(raw))
    try:
        ok = json.loads(raw) == {"ack": k}
    except (ValueError, RecursionError):
        ok = False
    if not ok:
        raise ConnectionError("a stream is open: expected an acknowledgement")


def _stream(sock: socket.socket, shm: mmap.mmap, blocks, control=None) -> None:
    """Send a stream's blocks through two halves of the shared memory: block k goes to half k % 2
    once block k − 2 is acknowledged, so the next block is computed while the entry reads this one."""
    half = SHM_BYTES // 2
    n = 0
    for k, arrays in enumerate(blocks):
        if k >= 2:
            _ack(sock, k - 2, control)
        layout = _write(shm, arrays, (k % 2) * half, (k % 2 + 1) * half)
        _send_frame(sock, json.dumps(dict(ok=True, arrays=layout)).encode())
        n = k + 1
    for k in range(max(0, n - 2), n):
        _ack(sock, k, control)


def _reply(sock: socket.socket, shm: mmap.mmap, meter: Meter | None, raw: bytes, control=None) -> None:
    blocks = None
    try:
        req = json.loads(raw)
        if not isinstance(req, dict):
            raise ValueError("a request must be a JSON object")
        if meter is None:
            raise ValueError("no cell is loaded")
        op = req.get("op")
        if op == "new":
            sid, n_chains = meter.new(req.get("n_chains"), req.get("seed"), req.get("dtype", "float32"),
                                      req.get("start", "uniform"))
            head = dict(ok=True, id=sid, n_chains=n_chains)
        elif op == "call":
            arrays = meter.call(req.get("id"), req.get("call"), req.get("n", 0), req.get("what", []))
            head = dict(ok=True, arrays=_write(shm, arrays, 0, SHM_BYTES))
        elif op == "stream":
            blocks = meter.stream(req.get("id"), req.get("blocks"), req.get("n"), req.get("what", []))
            head = dict(ok=True, blocks=req["blocks"])  # a block is ≤ MAX_RECORD_VALUES: it fits half the memory
        elif op == "used":
            head = dict(ok=True, used=meter.used)
        else:
            raise ValueError(f"unknown request {op!r} (expected new, call, stream or used)")
    except BudgetExceeded as exc:
        head, blocks = dict(ok=False, kind="BudgetExceeded", error=str(exc)), None
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
        head, blocks = dict(ok=False, kind="ValueError", error=str(exc)[:2000]), None
    _send_frame(sock, json.dumps(head).encode())
    if blocks is not None:
        _stream(sock, shm, blocks, control)


def _load_cell(task: dict) -> tuple[Meter, dict]:
    from ..core.arrays import model_from_arrays

    with np.load(task["cell_file"]) as arrays:
        model, data = model_from_arrays(arrays), arrays["data"]
    meter = Meter(model, task["observables"], task["seed"], task["budget"],
                  data_starts=data if task.get("data_starts") is True else None)
    mean = meter.data_mean(data)
    return meter, dict(ok=True, info=meter.info().to_json(), data_mean=[float(x) for x in mean])


def serve(sock: socket.socket, shm_fd: int, control_in, control_out) -> None:
    """Answer the runner (``control_in``/``control_out``, text lines) and the worker (``sock``,
    replies' arrays in the shared memory ``shm_fd``) until the runner closes ``control_in``."""
    meter = None
    shm = mmap.mmap(shm_fd, SHM_BYTES)
    sel = selectors.DefaultSelector()
    sel.register(control_in, selectors.EVENT_READ, "control")
    sel.register(sock, selectors.EVENT_READ, "worker")
    while True:
        for key, _ in sel.select():
            if key.data == "control":
                line = control_in.readline()
                if not line:
                    return
                task = json.loads(line)
                if task["op"] == "cell":
                    meter, reply = _load_cell(task)
                else:
                    reply = dict(ok=True, used=0 if meter is None else meter.used)
                control_out.write(json.dumps(reply) + "\n")
                control_out.flush()
                continue
            try:  # select said readable: the rest of the frame must follow within FRAME_TIMEOUT
                sock.settimeout(FRAME_TIMEOUT)
                n = _recv_len(sock)
                if n > _MAX_REQUEST:
                    raise ConnectionError(f"request of {n} bytes")
                raw = bytearray(n)
                _recv_exact(sock, memoryview(raw))
                _reply(sock, shm, meter, bytes(raw), control_in)  # a runner's line ends an open stream
            except (ConnectionError, OSError, ValueError):  # hung up, stalled or sent garbage: serve no more
                sel.unregister(sock)
                sock.close()


def main() -> int:
    import torch

    torch.set_num_threads(1)
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(sock, int(sys.argv[2]), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launcher"]:  # the warm launcher that forks sampler processes (:mod:`.launcher`)
        from .launcher import serve as _serve_forks

        _serve_forks(int(sys.argv[2]), preload=("torch", "snrbench.core.arrays", "snrbench.core.sampler"))
        del _serve_forks  # returned in a forked process, set up as a fresh one: it goes on as one
    sys.exit(main())
