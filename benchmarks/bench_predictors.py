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


def _problem(access):
    cell, fam = _cell(), get("exact-rbm")
    return Problem(fam.build_model(cell.spec), fam.build_data(cell.spec), T=T_GRID,
                   observables=cell.spec["observables"], access=access, family="exact-rbm", label=cell.label,
                   seed=0, exact_available=True)


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


def served_vs_in_process(key: str) -> tuple[float, float]:
    """Wall seconds of one predict() with the sampler served by a sampler process, and in process
    (same cell, same seed; the answers must agree exactly). Starting the sampler process and loading
    the cell happen once per worker in the runner, so neither is timed (nor is building the problem)."""
    from snrbench.predict._sampler_service import MeterClient
    from snrbench.predict.runner import _Sampler

    import torch

    torch.set_num_threads(1)  # as in the runner's workers and sampler processes
    entry, cell, fam = _ENTRIES[key], _cell(), get("exact-rbm")
    spec = cell.spec
    sampler = _Sampler()
    try:
        client = MeterClient(sampler.sock, sampler.shm)
        served = sampler.put_cell(fam, cell, 0, BUDGET)  # process start and cell load: once per worker, not timed
        problem = Problem.served(client, CellInfo.from_json(served["info"]), served["data_mean"], T_GRID,
                                 spec["observables"], "sampler-only", "exact-rbm", BUDGET)
        t0 = time.perf_counter()
        remote = instantiate(entry).predict(problem)
        t_served = time.perf_counter() - t0
    finally:
        sampler.close()
    problem = _problem("sampler-only")
    t0 = time.perf_counter()
    local = instantiate(entry).predict(problem)
    t_local = time.perf_counter() - t0
    if not np.array_equal(remote.log10_q, local.log10_q):
        raise AssertionError(f"{key}: the served and in-process samplers disagree")
    return t_served, t_local


class SamplerOnlyCost:
    """``track_served_over_in_process``: wall time with the sampler in another process ÷ wall time
    in process (target ≤ 1.3 on exact-rbm)."""

    params = SAMPLER_KEYS
    param_names = ["entry"]
    timeout = 600

    def track_served_over_in_process(self, key):
        t_served, t_local = served_vs_in_process(key)
        return t_served / t_local

    track_served_over_in_process.unit = "ratio"
