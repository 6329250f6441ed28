"""asv benchmarks of the built-in predictors (DESIGN §5) on one exact cell: time per cell beside the
quality figure the leaderboard ranks on (largest |log10 Q_pred − log10 Q| over the T grid, dex), and
the cost of the sampler-only tier: the entry's wall time with its sampler in another process
(:mod:`snrbench.predict._sampler_service`, as the runner serves it) over the same entry with the
sampler in its own process, measured side by side in one run."""
import time

import numpy as np

from snrbench.truth import exact
from snrbench.predict import Problem
from snrbench.predict.contract import BUDGET, CellInfo
from snrbench.predict.registry import builtin_entries, instantiate
from snrbench.core.spectral import T_GRID
from snrbench.families import get, load_suite

CELL = "n10m4-b2-bias-s0"  # exact-rbm: a slow mode with weight, where the entries disagree
_ENTRIES = {f"{e.name}:{e.access}": e for e in builtin_entries()}
KEYS = sorted(_ENTRIES)
SAMPLER_KEYS = sorted(k for k, e in _ENTRIES.items() if e.access == "sampler-only")


def _cell():
    return next(c for c in load_suite("exact-rbm")[1] if c.label == CELL)


#: The budget :class:`PredictorCell` gives each entry (the full rung, as the leaderboard's headline).
RUN_BUDGET = BUDGET


def _problem(access, cell=None):
    cell, fam = cell or _cell(), get("exact-rbm")
    return Problem(fam.build_model(cell.spec), fam.build_data(cell.spec), T=T_GRID,
                   observables=cell.spec["observables"], access=access, family="exact-rbm", label=cell.label,
                   seed=0, exact_available=True, budget=RUN_BUDGET)


class PredictorCell:
    params = KEYS
    param_names = ["entry"]
    timeout = 600

    def setup(self, key):
        self.entry = _ENTRIES[key]

    def time_predict(self, key):
        instantiate(self.entry).predict(_problem(self.entry.access))

    def track_max_error_dex(self, key):
        truth = exact.solve(_problem("white-box").model, _problem("white-box").data).log10_q(T_GRID)
        pred = instantiate(self.entry).predict(_problem(self.entry.access))
        return float(np.max(np.abs(pred.log10_q - truth)))

    track_max_error_dex.unit = "dex"


#: The cells of the sampler-only cost benchmark: one of each size × β × symmetry of exact-rbm.
COST_CELLS = tuple(f"n{nm}-b{b}-{kind}-s0" for nm in ("10m4", "12m6") for b in ("0.5", "1", "2", "3")
                   for kind in ("sym", "bias"))


def served_vs_in_process(key: str, labels=COST_CELLS) -> tuple[float, float]:
    """Wall seconds of ``key`` on the cells ``labels`` with the sampler served by one sampler
    process, as a runner worker goes through a family's cells, and with the sampler in process (same
    cells, same seed; the answers must agree exactly). Per cell, the served side is timed from loading
    the cell into the sampler process to the answer, the in-process side from building the problem to
    the answer. Starting the sampler process happens once per worker, so it is not timed."""
    from snrbench.predict._sampler_service import MeterClient
    from snrbench.predict.runner import _Sampler

    import torch

    torch.set_num_threads(1)  # as in the runner's workers and sampler processes
    entry, fam = _ENTRIES[key], get("exact-rbm")
    cells = {c.label: c for c in load_suite("exact-rbm")[1]}
    t_served = t_local = 0.0
    sampler = _Sampler()
    try:
        client = MeterClient(sampler.sock, sampler.shm)
        sampler.ask(dict(op="used"))  # returns once the process has started (imported torch): not timed
        for label in labels:
            cell = cells[label]
            t0 = time.perf_counter()
            served = sampler.put_cell(fam, cell, 0, RUN_BUDGET, "sampler-only")
            problem = Problem.served(client, CellInfo.from_json(served["info"]), served["data_mean"], T_GRID,
                                     cell.spec["observables"], "sampler-only", "exact-rbm", RUN_BUDGET)
            remote = instantiate(entry).predict(problem)
            t1 = time.perf_counter()
            local = instantiate(entry).predict(_problem("sampler-only", cell))
            t2 = time.perf_counter()
            if not np.array_equal(remote.log10_q, local.log10_q):
                raise AssertionError(f"{key} on {label}: the served and in-process samplers disagree")
            t_served, t_local = t_served + t1 - t0, t_local + t2 - t1
    finally:
        sampler.close()
    return t_served, t_local


class SamplerOnlyCost:
    """``track_served_over_in_process``: wall time on :data:`COST_CELLS` with the sampler in another
    process ÷ wall time in process (target ≤ 1.3 on exact-rbm)."""

    params = SAMPLER_KEYS
    param_names = ["entry"]
    timeout = 600

    def track_served_over_in_process(self, key):
        t_served, t_local = served_vs_in_process(key)
        return t_served / t_local

    track_served_over_in_process.unit = "ratio"
