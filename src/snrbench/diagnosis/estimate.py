"""How long a diagnosis will take, from a short timing probe on this machine, before it starts.

The probe (a few seconds) measures on the user's model and device:

* ``s(R)``, seconds per blocked-Gibbs sweep of R chains (the median of 3 runs of 2 sweeps);
* ``g``, seconds of one R × R Gram product over the ``n·m`` weight observables (timed once on at
  most 2^15 columns and scaled linearly in the columns; not for a forecast);
* ``p``, seconds per parallel-tempering round of R/2 chains over the rungs (3 rounds, construction
  included, so it errs long).

The cost model, in seconds (each stage of :func:`stages`):

* tempering starts: ``2 groups × (adaptation + production rounds) × p`` (trajectory tempering: the
  same, plus its rung placement, 4 passes of 40 rounds);
* Monte Carlo sweeps: ``1.5 · t_max · s(R) + n_T · g`` (the accumulation of ``Σ v hᵀ`` costs about
  half a sweep) plus 2 s of fixed work;
* sweep timing for the plans: ``16 sweeps × Σ s(C)`` over the timed powers of 2 (≤ 2^12 chains);
* an entry's forecast: ``budget/R · s(R) · 2`` (its own statistics about double the sampler's work).

Estimates are rounded up and printed before the long stages; ``--max-minutes`` refuses up front
when the total is over it, naming the cheaper speed and its estimate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import RBM
from ..core.sampler import BlockGibbs

__all__ = ["Probe", "probe", "stages", "fmt_seconds"]

_GRAM_COLS = 2**15


@dataclass(frozen=True)
class Probe:
    """What the timing probe measured (seconds): ``sweep`` of ``chains`` chains, one ``gram``, one
    tempering ``pt_round`` of ``chains/2`` chains over ``rungs`` rungs; ``seconds`` the probe took."""

    chains: int
    sweep: float
    gram: float
    pt_round: float
    rungs: int
    seconds: float

    def sweep_of(self, C: int) -> float:
        """Seconds per sweep of C chains, linear in C above a floor of a tenth of the probe's."""
        return max(self.sweep * C / self.chains, 0.1 * self.sweep)


def _median_time(fn, repeats: int = 3) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def probe(rbm: RBM, data, chains: int = 512, rungs: int = 16, device: str = "cpu", tempering: bool = True,
          monte_carlo: bool = True) -> Probe:
    """Time the three kernels of a diagnosis on ``rbm`` (see the module docstring); the Gram product
    only with ``monte_carlo``, the tempering round only with ``tempering`` (else 0)."""
    from ..core.tempered import base_rate_bias
    from ..truth.tempering import ParallelTempering

    t0 = time.perf_counter()
    gibbs = BlockGibbs(rbm, chains, device=device, seed=0)
    gibbs.sweep()
    sweep = _median_time(lambda: gibbs.run(2)) / 2
    gram = 0.0
    if monte_carlo:
        cols = min(rbm.n_visible * rbm.n_hidden, _GRAM_COLS)
        X = torch.rand(chains, cols, device=gibbs.device)
        gram = _median_time(lambda: (X @ X.T).double().sum().item(), 1) * rbm.n_visible * rbm.n_hidden / cols
        del X
    pt_round = 0.0
    if tempering:
        a0 = base_rate_bias(np.asarray(data, dtype=np.float64), rbm.units)
        betas = np.linspace(1.0, 0.0, rungs)
        t1 = time.perf_counter()
        pt = ParallelTempering(rbm, a0, betas, max(chains // 2, 1), device, torch.float32, 0)
        for _ in range(3):
            pt.step(1)
        pt_round = (time.perf_counter() - t1) / 3
    return Probe(chains, sweep, gram, pt_round, rungs, time.perf_counter() - t0)


def stages(p: Probe, generators, t_max: int, pt_rounds: int, timing: bool = True, entry_budget: int | None = None,
           max_timed: int = 2**12) -> list[tuple[str, float]]:
    """``[(stage name, estimated seconds)]`` of one model's diagnosis from its probe ``p``: the start
    generators' stages, then Monte Carlo per generator; or the entry's forecast; then sweep timing."""
    out = []
    n_T = int(np.log2(t_max)) + 1
    if entry_budget is not None:
        out.append(("forecast by the entry", 2.0 * entry_budget / p.chains * p.sweep + 2.0))
    else:
        for g in generators:
            if g in ("tempering", "trajectory", "annealing"):
                extra = 4 * 40 if g == "trajectory" else 0
                out.append((f"starts: {g}", 2 * (pt_rounds + extra) * p.pt_round))
            elif g == "exact":
                out.append(("starts: exact", 0.5))
            out.append((f"Monte Carlo sweeps ({g} starts)", 1.5 * t_max * p.sweep + n_T * p.gram + 2.0))
    if timing:
        sizes = [2**i for i in range(int(np.log2(max_timed)) + 1)]
        out.append(("timing sweeps for the plans", 16 * sum(p.sweep_of(C) for C in sizes)))
    return out


def fmt_seconds(s: float) -> str:
    """``"40 s"``, ``"3.5 min"``, ``"1.2 h"`` (rounded up a little: an estimate should not promise)."""
    s = float(s)
    if s < 90:
        return f"{max(1, int(np.ceil(s)))} s"
    if s < 5400:
        return f"{np.ceil(s / 6) / 10:.1f} min"
    return f"{np.ceil(s / 360) / 10:.1f} h"
