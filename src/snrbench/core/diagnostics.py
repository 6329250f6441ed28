"""Equilibration diagnostics for Monte Carlo ground truth (pure functions on sampled series).

* :func:`split_rhat`: Gelman–Rubin potential scale reduction with split chains (BDA3, §11.4):
  each of C chains of length L is cut in halves (2C chains of ⌊L/2⌋); with W the mean within-half
  variance and B/n the variance of the half means, ``R̂ = sqrt(((n−1)/n · W + B/n) / W)``.
  Dimensionless; ≈ 1 at equilibrium, > 1.01 flags chains that disagree.
* :func:`top_components`: projections of observable trajectories on their top principal
  components (pooled over chains and time), the series R̂ is applied to.
* :func:`doubling_rule`: τ from the first L and the first 2L steps (Sokal, c = 5); the estimate is
  trusted when ``|τ(2L) − τ(L)| / τ(L) < 0.15`` and ``L ≥ 5 τ``; a τ that keeps growing with L (∝ L)
  means the chains have not equilibrated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .autocorr import integrated_time

__all__ = ["split_rhat", "top_components", "DoublingCheck", "doubling_rule"]


def split_rhat(x) -> float:
    """Split-R̂ of ``x`` with shape (chains, L), L ≥ 4."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 4:
        raise ValueError(f"split_rhat needs shape (chains, L ≥ 4), got {x.shape}")
    n = x.shape[1] // 2
    halves = np.concatenate([x[:, :n], x[:, x.shape[1] - n:]], axis=0)
    W = halves.var(axis=1, ddof=1).mean()
    B_over_n = halves.mean(axis=1).var(ddof=1)
    if W <= 0:
        return float("inf") if B_over_n > 0 else 1.0
    return float(np.sqrt(((n - 1) / n * W + B_over_n) / W))


def top_components(F, k: int = 3) -> np.ndarray:
    """Projections of ``F`` (chains, L, n_obs) on its top-k principal components: (k, chains, L)."""
    F = np.asarray(F, dtype=np.float64)
    flat = F.reshape(-1, F.shape[-1])
    centred = flat - flat.mean(axis=0)
    _, _, Vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ Vt[:k].T  # (chains·L, k)
    return proj.T.reshape(min(k, Vt.shape[0]), F.shape[0], F.shape[1])


@dataclass(frozen=True)
class DoublingCheck:
    """τ at L and 2L (steps), their relative change, and whether the estimate is trusted."""

    L: int
    tau_L: float
    tau_2L: float
    rel_change: float
    long_enough: bool
    ok: bool


def doubling_rule(x, L: int | None = None, tol: float = 0.15) -> DoublingCheck:
    """Apply the doubling rule to ``x`` (chains, n) using its first L and first 2L steps (L = n // 2)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    L = x.shape[1] // 2 if L is None else int(L)
    if 2 * L > x.shape[1]:
        raise ValueError(f"doubling_rule needs 2L = {2 * L} steps, the series has {x.shape[1]}")
    t1 = integrated_time(x[:, :L], quiet=True)
    t2 = integrated_time(x[:, : 2 * L], quiet=True)
    rel = abs(t2 - t1) / t1
    long_enough = L >= 5 * max(t1, t2)
    return DoublingCheck(L, t1, t2, rel, long_enough, bool(rel < tol and long_enough))
