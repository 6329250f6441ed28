"""Monte Carlo ground truth: Q(T) from R independent replicate chains, with a bootstrap CI.

One pass of ``max(T)`` sweeps of R chains gives, for every T on the grid at once, each replicate's
window mean ``f̄_r(T)`` (running sums read at each T). With ``ĝ_r(T) = mean_data f − f̄_r(T)``:

* ``Tr Ĉ(T) = Σ_a Var_r ĝ_{r,a}(T)`` (ddof = 1): unbiased for ``Tr Cov[ĝ(T, 1)]``;
* ``‖g‖²`` unbiased: ``‖ḡ‖² − Tr Ĉ(T_max)/R`` with ``ḡ = mean_r ĝ_r(T_max)`` (the most precise window);
* ``Q(T) = ‖g‖² / Tr Ĉ(T)``; a 95% CI from a bootstrap over replicates (percentile method).

Chains start from exact samples of p(v) where the model is small enough (``start="exact"``), so no
burn-in is needed; ``start="uniform"`` with ``burn_in`` sweeps otherwise.

Equilibration diagnostics (:mod:`snrbench.core.diagnostics`) on the projections of f onto its top 3
principal components (from the starting states), recorded every ``max(T)/2048`` sweeps: split-R̂
(worst component) and the doubling rule on the recorded series (L = half of it). ``flagged`` when
R̂ > 1.01 or the doubling rule fails. Chains that start in equilibrium give unbiased curves even when
flagged (the replicates are independent exact draws); a flag then says the chains do not mix within
the window, which matters for any start that is not exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.ising import IsingModel
from ..core.model import RBM
from ..core.observables import mean_gradient_observables
from ..core.sampler import make_sampler
from ..core.diagnostics import doubling_rule, split_rhat
from ..core.spectral import T_GRID

#: Split-R̂ above this flags a cell.
RHAT_MAX = 1.01
_N_RECORDED = 2048

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
    rhat: float = float("nan")
    tau_L: float = float("nan")
    tau_2L: float = float("nan")
    doubling_ok: bool = False
    thin: int = 1

    @property
    def flagged(self) -> bool:
        """R̂ above :data:`RHAT_MAX` or the doubling rule failed."""
        return not (self.rhat <= RHAT_MAX and self.doubling_ok)


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
    f = gibbs.observables(observables)
    centre = f.mean(0)
    _, _, Vt = torch.linalg.svd(f - centre, full_matrices=False)
    pcs = Vt[:3].T  # (n_obs, ≤ 3)
    thin = max(1, int(T.max()) // _N_RECORDED)
    acc, win, rec = torch.zeros_like(f), {}, []
    read_at = set(T.tolist())
    for t in range(1, int(T.max()) + 1):
        gibbs.sweep()
        f = gibbs.observables(observables)
        acc += f
        if t in read_at:
            win[t] = (acc / t).cpu().numpy().astype(np.float64)
        if t % thin == 0:
            rec.append(((f - centre) @ pcs).cpu().numpy())
    means = np.stack([win[int(t)] for t in T])  # (n_T, R, n_obs)
    diag = _diagnostics(np.stack(rec, axis=1)) if len(rec) >= 8 else {}
    data_mean = mean_gradient_observables(rbm, data, observables)
    lq, tc, g2 = _q_from_means(means, data_mean)
    boot = np.empty((n_boot, len(T)))
    for b in range(n_boot):
        idx = rng.integers(0, n_replicates, n_replicates)
        boot[b] = _q_from_means(means[:, idx], data_mean)[0]
    lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    return MonteCarloCurve(T=T, log10_q=lq, ci_low=lo, ci_high=hi, trace_cov=tc, trace_cov_se=_trace_cov_se(means), grad_norm2=g2,
                           n_replicates=n_replicates, sweeps=int(n_replicates * (T.max() + burn_in)), thin=thin,
                           **diag)


def _diagnostics(series: np.ndarray) -> dict:
    """Worst split-R̂ and doubling check over the recorded PC series ``(R, L, k)``."""
    rhat = max(split_rhat(series[:, :, k]) for k in range(series.shape[2]))
    worst = None
    for k in range(series.shape[2]):
        x = series[:, :, k]
        try:
            chk = doubling_rule(x)
        except ValueError:  # a component constant within some chain: nothing measurable moves
            return dict(rhat=rhat, tau_L=float("inf"), tau_2L=float("inf"), doubling_ok=False)
        if worst is None or (not chk.ok, chk.rel_change) > (not worst.ok, worst.rel_change):
            worst = chk
    return dict(rhat=rhat, tau_L=worst.tau_L, tau_2L=worst.tau_2L, doubling_ok=worst.ok)


def _trace_cov_se(means: np.ndarray) -> np.ndarray:
    """Standard error of Tr Ĉ(T): that of the mean over replicates of ``Σ_a (x_a − x̄_a)² R/(R−1)`` (f²)."""
    R = means.shape[1]
    dev2 = ((means - means.mean(axis=1, keepdims=True)) ** 2).sum(axis=-1) * R / (R - 1)  # (n_T, R)
    return dev2.std(axis=1, ddof=1) / np.sqrt(R)
