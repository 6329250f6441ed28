"""Subprocess that runs entries in a confined process (see :mod:`snrbench.predict.sandbox`).

``python -m snrbench.predict._worker`` takes nothing on its command line: its first line on stdin is
its configuration, ``{"mode", "arg", "blocked", "limits", "fds", "inputs"}``, read before any entry
code runs (so no other process can read it from ``/proc/*/cmdline`` or the environment).
Mode ``discover`` (``arg``: ``PATH.py`` or an entry-point name): import it and print its entries as
JSON. Mode ``run`` (``arg``: the entry as JSON; ``fds``: the sampler's socket and shared memory;
``inputs``: the folder the runner puts cell files in, read-only here): instantiate the entry, then
read ``{"access", "exact", "family", "label", "observables", "T", "budget", "info", "data_mean",
"cell_file"}`` per line on stdin and answer ``{"ok": true, "log10_q", "tau",
"grad_norm2"}`` or ``{"ok": false, "error"}`` per line on the original stdout (the entry's own
prints go to stderr). ``fds[0]`` is the worker's end of the socket to the sampler process
(:mod:`._sampler_service`), which runs and counts every sweep (``fds[1]``: the memory its replies'
arrays come in); ``cell_file`` (model and white-box
tiers only) is a ``.npz`` of the model's arrays and ``data``. The sampler-only tier gets no file:
its process never holds the weights, the data, the seeds or the cell's name. Confinement is installed before any entry code is
imported, so module-level code and ``__init__`` are confined too.

``python -m snrbench.predict._worker --launcher N`` is the warm launcher the runner forks workers from
(:mod:`.launcher`, control socket ``N``): each forked worker runs :func:`main` as above.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path


#: Characters of an entry's message the worker sends (the runner caps and escapes it again).
MAX_MESSAGE = 2000


def _message(exc: BaseException, blocked: list[str]) -> str:
    """What the runner is told of an entry's exception, at most :data:`MAX_MESSAGE` characters. The
    exception is the entry's own object, so its ``__str__`` (or ``errno``, or traceback) may raise,
    loop or lie: whatever it raises here is caught, and the message then names only the type, read
    from the class itself."""
    try:
        return _describe(exc, blocked)[:MAX_MESSAGE]
    except BaseException as inner:  # noqa: BLE001 - a hostile exception must not take the worker down
        return f"raised {_type_name(exc)} whose message could not be read ({_type_name(inner)} while formatting it)"


def _type_name(obj) -> str:
    """The name of ``type(obj)`` from ``type``'s own descriptor (a metaclass cannot override it)."""
    try:
        return str(type.__dict__["__name__"].__get__(type(obj)))
    except BaseException:  # noqa: BLE001
        return "an exception"


def _describe(exc: BaseException, blocked: list[str]) -> str:
    from .sandbox import violations

    if violations():
        return f"tried to read stored results or the suite ({violations()[-1]}); predictors may only use `problem`"
    if isinstance(exc, OSError) and exc.errno == 13 and any(b in str(exc) for b in blocked):
        return f"tried to read stored results or the suite ({exc}); predictors may only use `problem`"
    import sysconfig

    # the deepest line of the author's own files: not snrbench's, not the standard library's or a package's
    skip = {Path(__file__).resolve().parents[1]} | {Path(sysconfig.get_path(k)).resolve()
                                                   for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    tb = [f for f in traceback.extract_tb(exc.__traceback__)
          if not skip & set(Path(f.filename).resolve().parents)]
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"raised {type(exc).__name__}: {exc}{where}"


def main() -> int:
    from .sandbox import enter_namespaces

    layers = enter_namespaces(os.getcwd())  # first, before any thread exists: whatever the entry forks dies with it
    config = json.loads(sys.stdin.readline())  # nothing secret in argv or the environment (/proc/*/cmdline)
    mode, arg, blocked, limits = config["mode"], config["arg"], config["blocked"], config.get("limits", {})
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the entry's prints go to stderr, never into the protocol stream
    import torch

    torch.set_num_threads(1)
    from .sandbox import confine, drop_capabilities, install_seccomp, limit_resources

    limit_resources(limits)
    drop_capabilities()
    sys.dont_write_bytecode = True
    source = json.loads(arg)["source"] if mode == "run" else arg
    submitted = [source.rsplit("::", 1)[0]] if source.endswith(".py") or "::" in source else []
    isolation = confine(blocked, read=submitted + config.get("inputs", []), write=[os.getcwd()])
    layers.update(landlock=isolation, seccomp=install_seccomp())
    fds = config.get("fds", [])
    del config
    from .registry import Entry, instantiate, resolve

    if mode == "discover":
        try:
            proto.write(json.dumps(dict(ok=True, entries=[asdict(e) for e in resolve(arg)], layers=layers)) + "\n")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            msg = _message(exc, blocked)
            proto.write(json.dumps(dict(ok=False, error=msg.removeprefix("raised RegistryError: "))) + "\n")
        return 0

    import socket

    import numpy as np

    from ..core.arrays import model_from_arrays
    from ._sampler_service import MeterClient
    from .contract import CellInfo, Problem, check_prediction
    from .sandbox import violations

    meter = MeterClient(socket.socket(fileno=fds[0]), fds[1])

    try:
        predictor = instantiate(Entry(**json.loads(arg)))
    except BaseException as exc:  # noqa: BLE001
        error = f"could not instantiate the entry: {_message(exc, blocked)}"
        sys.stdin.readline()  # answer in turn: the runner refuses a line written before it sends a cell
        proto.write(json.dumps(dict(ok=False, fatal=True, error=error)) + "\n")
        return 1
    for line in sys.stdin:
        task = json.loads(line)
        model = data = None
        if task.get("cell_file"):
            with np.load(task["cell_file"]) as arrays:  # the runner removes it after the answer
                model, data = model_from_arrays(arrays), arrays["data"]
        problem = Problem.served(meter, CellInfo.from_json(task["info"]), task["data_mean"], task["T"],
                                 task["observables"], task["access"], task["family"], task["budget"],
                                 label=task["label"], model=model, data=data, exact_available=task["exact"])
        del model, data
        violations().clear()
        try:
            pred = predictor.predict(problem)
        except BaseException as exc:  # noqa: BLE001
            proto.write(json.dumps(dict(ok=False, error=_message(exc, blocked))) + "\n")
            continue
        problem_msg = check_prediction(pred, len(task["T"]))
        if problem_msg:
            proto.write(json.dumps(dict(ok=False, error=problem_msg)) + "\n")
            continue
        proto.write(json.dumps(dict(ok=True, log10_q=[float(x) for x in pred.log10_q],
                                    tau=None if pred.tau is None else float(pred.tau),
                                    grad_norm2=None if pred.grad_norm2 is None else float(pred.grad_norm2),
                                    isolation=layers, nonce=task.get("nonce"))) + "\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--launcher"]:  # the warm launcher that forks workers (:mod:`.launcher`)
        from .launcher import serve as _serve_forks

        _serve_forks(int(sys.argv[2]), preload=("torch", "snrbench.predict.sandbox"))
        del _serve_forks  # returned in a forked process, set up as a fresh one: it goes on as one
    sys.exit(main())
