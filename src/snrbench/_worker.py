"""Subprocess that runs one entry on cells sent by :mod:`snrbench.runner` (JSON lines).

``python -m snrbench._worker ENTRY_JSON BLOCKED_DIR``. Reads ``{"spec_json", "access", "exact", "seed"}``
per line on stdin, answers ``{"ok": true, "log10_q", "tau", "grad_norm2", "sweeps", "seconds"}`` or
``{"ok": false, "error"}`` on the original stdout (the entry's own prints go to stderr). An audit
hook refuses any attempt to open or list files under ``BLOCKED_DIR`` (the results folder):
predictors never see stored ground truth.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

_violation: list[str] = []


def _install_guard(blocked: Path) -> None:
    blocked = str(blocked.resolve())

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir", "os.stat", "shutil.copyfile", "os.rename") and args:
            target = args[0]
            if isinstance(target, int) or target is None:
                return
            try:
                path = os.path.realpath(os.fsdecode(target))
            except (TypeError, ValueError):
                return
            if path == blocked or path.startswith(blocked + os.sep):
                _violation.append(path)
                raise PermissionError(f"predictors may not read stored results: {path}")

    sys.addaudithook(hook)


def _finite_or_none(x):
    return None if x is None else float(x)


def main() -> int:
    entry = json.loads(sys.argv[1])
    blocked = Path(sys.argv[2])
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the entry's prints go to stderr, never into the protocol stream
    import torch

    torch.set_num_threads(1)
    from .predict import Problem, check_prediction
    from .registry import Entry, instantiate
    from .spectral import T_GRID
    from .tasks import Cell, build_data, build_model

    try:
        predictor = instantiate(Entry(**entry))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the entry's failure
        proto.write(json.dumps(dict(ok=False, fatal=True, error=f"could not instantiate: {type(exc).__name__}: {exc}")) + "\n")
        return 1
    _install_guard(blocked)
    for line in sys.stdin:
        task = json.loads(line)
        cell = Cell(task["spec_json"])
        problem = Problem(build_model(cell), build_data(cell), T=T_GRID, observables=cell.spec["observables"],
                          access=task["access"], family=cell.spec["family"], label=cell.label, seed=task["seed"],
                          exact_available=task["exact"])
        _violation.clear()
        t0 = time.perf_counter()
        try:
            pred = predictor.predict(problem)
        except BaseException as exc:  # noqa: BLE001
            if _violation:
                msg = f"tried to read stored results ({_violation[0]}); predictors may only use `problem`"
            else:
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                msg = f"raised {type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"
            proto.write(json.dumps(dict(ok=False, error=msg)) + "\n")
            continue
        seconds = time.perf_counter() - t0
        problem_msg = check_prediction(pred, len(T_GRID))
        if problem_msg:
            proto.write(json.dumps(dict(ok=False, error=problem_msg)) + "\n")
            continue
        out = dict(ok=True, log10_q=[float(x) for x in pred.log10_q], tau=_finite_or_none(pred.tau),
                   grad_norm2=_finite_or_none(pred.grad_norm2), sweeps=problem.sweeps_used, seconds=seconds)
        assert all(math.isfinite(x) for x in out["log10_q"])
        proto.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
