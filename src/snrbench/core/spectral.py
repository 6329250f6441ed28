"""Pure functions from a mode decomposition to Q(T), τ and friends.

A reversible chain's stationary autocovariance of a (sum of) observable(s) is
``C(t) = Σ_k S_k λ_k^t`` (``t ≥ 1``) plus the weight at ``λ = 0``. Every function here takes the
*gaps* ``γ_k = 1 − λ_k`` (accurate to high relative precision, never recomputed as ``1 − λ``) and
the mode weights ``S_k`` (units of the observables squared), and the left-over weight
``residual = V − Σ_k S_k`` that sits at ``λ = 0``.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "T_GRID",
    "variance_factor",
    "trace_cov",
    "integrated_time",
    "tau_to_gap",
    "t_star",
]

#: The suite's grid of window lengths, in sweeps: ``T = 2^0 … 2^16``.
T_GRID = 2 ** np.arange(17, dtype=np.int64)


def _as_T(T) -> np.ndarray:
    T = np.atleast_1d(np.asarray(T))
    if T.size == 0 or np.any(T < 1) or np.any(T != np.round(T)):
        raise ValueError(f"T must be positive integers (sweeps), got {T}")
    return T.astype(np.int64)


def variance_factor(gaps, T, chunk: int = 32) -> np.ndarray:
    """``v_T(λ) = [T + 2 Σ_{t=1}^{T−1} (T−t) λ^t] / T²`` for ``λ = 1 − gap``.

    Shape ``(len(gaps), len(T))``; dimensionless (the variance of a T-window mean of a unit-variance
    single-exponential mode). Evaluated by direct, subtraction-free summation with
    ``λ^t = exp(t · log1p(−gap))``, so it stays exact to rounding for gaps down to 1e-300 (where
    ``v_T → 1``) and at ``gap = 1`` (``λ = 0``, ``v_T = 1/T``). The closed form
    ``[(1+λ)/(1−λ) − 2λ(1−λ^T)/(T(1−λ)²)]/T`` cancels catastrophically when ``T·gap ≪ 1``.
    """
    gaps = np.atleast_1d(np.asarray(gaps, dtype=np.float64))
    T = _as_T(T)
    if np.any(~np.isfinite(gaps)) or np.any(gaps <= 0) or np.any(gaps > 1 + 1e-12):
        raise ValueError("gaps must lie in (0, 1] (a positive semi-definite kernel has λ ∈ [0, 1))")
    gaps = np.minimum(gaps, 1.0)
    out = np.empty((gaps.size, T.size))
    tmax = int(T.max())
    t = np.arange(1, max(tmax, 2), dtype=np.float64)
    for s in range(0, gaps.size, chunk):
        g = gaps[s : s + chunk, None]
        with np.errstate(divide="ignore"):
            lam_t = np.exp(t[None, :] * np.log1p(-g))  # λ^t, t = 1 … tmax−1
        A = np.cumsum(np.cumsum(lam_t, axis=1), axis=1)  # A[T−2] = Σ_{t<T} (T−t) λ^t
        acc = np.where(T >= 2, A[:, np.maximum(T - 2, 0)], 0.0)
        out[s : s + chunk] = (T + 2.0 * acc) / T.astype(np.float64) ** 2
    return out


def trace_cov(weights, gaps, residual: float, T) -> np.ndarray:
    """``Tr Cov[ĝ(T, 1)] = Σ_k S_k v_T(λ_k) + residual / T`` on ``T`` (units of f²)."""
    weights = np.asarray(weights, dtype=np.float64)
    T = _as_T(T)
    total = residual / T.astype(np.float64)
    if weights.size:
        total = total + weights @ variance_factor(gaps, T)
    return total


def integrated_time(weights, gaps, total_variance: float) -> float:
    """``τ = Σ_k (S_k/V)(1+λ_k)/(1−λ_k) + residual/V``, in sweeps (convention ``τ = 1 + 2Σρ_t``).

    ``(1+λ)/(1−λ)`` is evaluated as ``(2 − γ)/γ`` from the accurate gap γ.
    """
    weights = np.asarray(weights, dtype=np.float64)
    gaps = np.asarray(gaps, dtype=np.float64)
    if total_variance <= 0:
        raise ValueError("integrated time undefined for an observable with zero variance")
    residual = max(total_variance - weights.sum(), 0.0)
    return float((weights @ ((2.0 - gaps) / gaps) + residual) / total_variance)


def tau_to_gap(tau) -> np.ndarray:
    """Gap of the single exponential with integrated time τ: ``γ = 2/(τ+1)`` (``λ = (τ−1)/(τ+1)``)."""
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(tau < 1):
        raise ValueError("τ < 1 is not reachable by a positive semi-definite kernel")
    return 2.0 / (tau + 1.0)


def t_star(log10_q, T=T_GRID, q: float = 1.0) -> float:
    """``T*(q)``: the smallest T with ``Q(T) ≥ q``, interpolated linearly in log–log.

    Returns ``T[0]`` when the curve starts above q and ``inf`` when it never reaches q.
    """
    lq = np.asarray(log10_q, dtype=np.float64)
    lT = np.log10(_as_T(T).astype(np.float64))
    target = np.log10(q)
    above = np.nonzero(lq >= target)[0]
    if above.size == 0:
        return float("inf")
    i = above[0]
    if i == 0:
        return float(10 ** lT[0])
    frac = (target - lq[i - 1]) / (lq[i] - lq[i - 1])
    return float(10 ** (lT[i - 1] + frac * (lT[i] - lT[i - 1])))
