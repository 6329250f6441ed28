"""Monte Carlo ground truth: Q(T) from R independent replicate chains, with a bootstrap CI.

One pass of ``max(T)`` sweeps of R chains gives, for every T on the grid at once, each replicate's
window mean ``f̄_r(T)`` (running sums read at each T). With ``ĝ_r(T) = mean_data f − f̄_r(T)``:

* ``Tr Ĉ(T) = Σ_a Var_r ĝ_{r,a}(T)`` (ddof = 1): unbiased for ``Tr Cov[ĝ(T, 1)]``;
* ``‖g‖²`` unbiased: ``‖ḡ‖² − Tr Ĉ(T_max)/R`` with ``ḡ = mean_r ĝ_r(T_max)`` (the most precise window);
* ``Q(T) = ‖g‖² / Tr Ĉ(T)``; a 95% CI from a bootstrap over replicates (percentile method).

Chains start from exact samples of p(v) where the model is small enough (``start="exact"``), so no
burn-in is needed; ``start="uniform"`` with ``burn_in`` sweeps otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .ising import IsingModel
from .model import RBM
from .observables import gradient_observables
from .sampler import make_sampler
from .spectral import T_GRID

__all__ = ["MonteCarloCurve", "mc_q_curve"]


@dataclass(frozen=True)
class MonteCarloCurve:
    """``log10_q`` (point estimate), ``ci_low``/``ci_high`` (95% bootstrap), ``trace_cov`` (f²) and
    ``grad_norm2`` (f²) on ``T``; ``n_replicates`` R; ``sweeps`` = R · max(T) chain-sweeps."""

    T: np.ndarray
    log10_q: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    trace_cov: np.ndarray
    trace_cov_se: np.ndarray
    grad_norm2: float
    n_replicates: int
    sweeps: int


def _q_from_means(means: np.ndarray, data_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """means: (n_T, R, n_obs) window means → (log10 Q (n_T,), Tr Ĉ (n_T,), ‖g‖²)."""
    R = means.shape[1]
    tc = means.var(axis=1, ddof=1).sum(axis=-1)
    gbar = data_mean - means[-1].mean(axis=0)
    g2 = float(gbar @ gbar - tc[-1] / R)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(g2) - np.log10(tc), tc, g2


def mc_q_curve(rbm: RBM | IsingModel, data, observables: str = "weights", T=T_GRID, n_replicates: int = 1024,
               start: str = "exact", burn_in: int = 0, seed: int = 0, n_boot: int = 400,
               device: str = "cpu", dtype=torch.float64) -> MonteCarloCurve:
    """Monte Carlo ``log10 Q(T, C=1)`` with a 95% bootstrap CI; see the module docstring."""
    T = np.asarray(T, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if start == "exact":
        v0 = rbm.sample_exact(n_replicates, rng)
    elif start == "uniform":
        v0 = None
    else:
        raise ValueError(f"start must be 'exact' or 'uniform', got {start!r}")
    gibbs = make_sampler(rbm, n_replicates, device=device, dtype=dtype, seed=seed, v0=v0)
    gibbs.run(burn_in)
    win = gibbs.window_means(T.tolist(), observables)
    means = np.stack([win[int(t)].cpu().numpy().astype(np.float64) for t in T])  # (n_T, R, n_obs)
    data_mean = gradient_observables(rbm, np.asarray(data, dtype=np.float64), observables).mean(axis=0)
    lq, tc, g2 = _q_from_means(means, data_mean)
    boot = np.empty((n_boot, len(T)))
    for b in range(n_boot):
        idx = rng.integers(0, n_replicates, n_replicates)
        boot[b] = _q_from_means(means[:, idx], data_mean)[0]
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return MonteCarloCurve(T=T, log10_q=lq, ci_low=lo, ci_high=hi, trace_cov=tc, trace_cov_se=_trace_cov_se(means), grad_norm2=g2,
                           n_replicates=n_replicates, sweeps=int(n_replicates * (T.max() + burn_in)))


def _trace_cov_se(means: np.ndarray) -> np.ndarray:
    """Standard error of Tr Ĉ(T): that of the mean over replicates of ``Σ_a (x_a − x̄_a)² R/(R−1)`` (f²)."""
    R = means.shape[1]
    dev2 = ((means - means.mean(axis=1, keepdims=True)) ** 2).sum(axis=-1) * R / (R - 1)  # (n_T, R)
    return dev2.std(axis=1, ddof=1) / np.sqrt(R)
