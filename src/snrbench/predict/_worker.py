"""Subprocess that runs entries in a confined process (see :mod:`snrbench.predict.sandbox`).

``python -m snrbench.predict._worker discover SPEC BLOCKED_JSON``: import ``SPEC`` (``PATH.py`` or an
entry-point name) and print its entries as JSON.
``python -m snrbench.predict._worker run ENTRY_JSON BLOCKED_JSON``: instantiate the entry, then read
``{"cell_file", "access", "exact", "seed", "family", "label", "observables"}`` per line on stdin
(``cell_file``: a ``.npz`` with the model's arrays, ``data`` and ``T``, written by the runner) and answer ``{"ok": true, "log10_q",
"tau", "grad_norm2", "sweeps", "seconds"}`` or ``{"ok": false, "error"}`` per line on the original
stdout (the entry's own prints go to stderr). Confinement is installed before any entry code is
imported, so module-level code and ``__init__`` are confined too.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path


def _message(exc: BaseException, blocked: list[str]) -> str:
    from .sandbox import violations

    if violations():
        return f"tried to read stored results ({violations()[-1]}); predictors may only use `problem`"
    if isinstance(exc, OSError) and exc.errno == 13 and any(b in str(exc) for b in blocked):
        return f"tried to read stored results ({exc}); predictors may only use `problem`"
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"raised {type(exc).__name__}: {exc}{where}"


def main() -> int:
    mode, arg, blocked = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    limits = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the entry's prints go to stderr, never into the protocol stream
    import torch

    torch.set_num_threads(1)
    from .sandbox import confine, drop_capabilities, limit_resources

    limit_resources(limits)
    drop_capabilities()
    sys.dont_write_bytecode = True
    source = json.loads(arg)["source"] if mode == "run" else arg
    submitted = [source.rsplit("::", 1)[0]] if source.endswith(".py") or "::" in source else []
    isolation = confine(blocked, read=submitted, write=[os.getcwd()])
    from .registry import Entry, instantiate, resolve

    if mode == "discover":
        try:
            proto.write(json.dumps(dict(ok=True, entries=[asdict(e) for e in resolve(arg)])) + "\n")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            msg = _message(exc, blocked)
            proto.write(json.dumps(dict(ok=False, error=msg.removeprefix("raised RegistryError: "))) + "\n")
        return 0

    from .contract import Problem, check_prediction
    from .sandbox import violations
    import numpy as np

    from ..core.arrays import model_from_arrays

    try:
        predictor = instantiate(Entry(**json.loads(arg)))
    except BaseException as exc:  # noqa: BLE001
        proto.write(json.dumps(dict(ok=False, fatal=True, error=f"could not instantiate the entry: {_message(exc, blocked)}")) + "\n")
        return 1
    for line in sys.stdin:
        task = json.loads(line)
        with np.load(task["cell_file"]) as arrays:
            model, data, grid = model_from_arrays(arrays), arrays["data"], arrays["T"]
        problem = Problem(model, data, T=grid, observables=task["observables"], access=task["access"],
                          family=task["family"], label=task["label"], seed=task["seed"],
                          exact_available=task["exact"])
        violations().clear()
        t0 = time.perf_counter()
        try:
            pred = predictor.predict(problem)
        except BaseException as exc:  # noqa: BLE001
            proto.write(json.dumps(dict(ok=False, error=_message(exc, blocked))) + "\n")
            continue
        seconds = time.perf_counter() - t0
        problem_msg = check_prediction(pred, len(grid))
        if problem_msg:
            proto.write(json.dumps(dict(ok=False, error=problem_msg)) + "\n")
            continue
        proto.write(json.dumps(dict(ok=True, log10_q=[float(x) for x in pred.log10_q],
                                    tau=None if pred.tau is None else float(pred.tau),
                                    grad_norm2=None if pred.grad_norm2 is None else float(pred.grad_norm2),
                                    sweeps=problem.sweeps_used, seconds=seconds, isolation=isolation)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
