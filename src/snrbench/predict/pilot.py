"""Building blocks for sampler-based entries (every tier): pilot runs and curve assembly.

Every function here uses only what :class:`snrbench.predict.Problem` gives a sampler-only entry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ..core.spectral import tau_to_gap, trace_cov

__all__ = ["PilotRun", "pilot_run", "grad_norm2_estimate", "log10_q_from_modes", "log10_q_single_tau"]


@dataclass(frozen=True)
class PilotRun:
    """Recorded series after burn-in: ``f`` (L, C, n_obs) gradient observables, ``m`` (L, C)
    magnetization ``mean_i v_i``; float64 numpy."""

    f: np.ndarray
    m: np.ndarray

    @property
    def chain_means(self) -> np.ndarray:
        return self.f.mean(axis=0)

    @property
    def variance(self) -> float:
        """``V̂ = Σ_a Var f_a`` over all recorded states (units of f²)."""
        return float(self.f.reshape(-1, self.f.shape[-1]).var(axis=0).sum())


def pilot_run(problem, n_chains: int = 64, n_sweeps: int = 2**12, burn_in: int = 2**10) -> PilotRun:
    """Run ``n_chains`` metered chains ``burn_in + n_sweeps`` sweeps; record f and m after burn-in
    (in blocks of about 2^22 values per sampler request)."""
    s = problem.sampler(n_chains)
    s.run(burn_in)
    block = max(1, min(n_sweeps, (1 << 22) // (n_chains * (problem.info.n_observables + 1))))
    F, M = [], []
    n_full, rest = divmod(n_sweeps, block)
    for rec in s.record_blocks(n_full, block, ("observables", "magnetization")) if n_full else ():
        F.append(rec["observables"].numpy().astype(np.float64))
        M.append(rec["magnetization"].numpy())
    if rest:
        rec = s.record(rest, ("observables", "magnetization"))
        F.append(rec["observables"].numpy().astype(np.float64))
        M.append(rec["magnetization"].numpy())
    return PilotRun(f=np.concatenate(F), m=np.concatenate(M))


def grad_norm2_estimate(data_mean, chain_means) -> float:
    """``‖ĝ‖² − Σ_a Var_c(f̄_a^c)/C``: the sampled ``‖g‖²`` with its noise bias removed (units of f²).

    ``ĝ = mean_data f − f̄`` has ``E‖ĝ‖² = ‖g‖² + Tr Cov f̄``; the between-chain variance of the
    C chain means estimates ``C · Tr Cov f̄`` without assuming a mixing time. Clipped below at 1%
    of the raw value (a gradient buried in the noise is reported as small, not negative).
    """
    cm = np.asarray(chain_means, dtype=np.float64)
    g = np.asarray(data_mean, dtype=np.float64) - cm.mean(axis=0)
    raw = float(g @ g)
    bias = float(cm.var(axis=0, ddof=1).sum() / len(cm)) if len(cm) > 1 else 0.0
    return max(raw - bias, 0.01 * raw)


def log10_q_from_modes(grad_norm2: float, weights, gaps, V: float, T) -> np.ndarray:
    """``log10 ‖g‖² − log10[Σ_k S_k v_T(λ_k) + (V − Σ S_k)/T]``."""
    weights = np.asarray(weights, dtype=np.float64)
    return np.log10(grad_norm2) - np.log10(trace_cov(weights, gaps, max(V - weights.sum(), 0.0), T))


def log10_q_single_tau(grad_norm2: float, V: float, tau: float, T) -> np.ndarray:
    """One exponential with integrated time τ for the whole variance: ``λ = (τ−1)/(τ+1)``.

    ``Tr Cov(T) = V v_T(λ)``, which equals V at T = 1 (DESIGN §5: not ``V τ/T``).
    """
    if tau <= 1.0 + 1e-12:
        return np.log10(grad_norm2) - np.log10(V / np.asarray(T, dtype=np.float64))
    return log10_q_from_modes(grad_norm2, [V], tau_to_gap([tau]), V, T)
