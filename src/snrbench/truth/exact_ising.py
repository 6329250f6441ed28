"""Exact ground truth for the Ising family: random-scan single-site Gibbs, by enumeration.

One update picks site i with probability 1/N and redraws it, so the kernel is
``P = (1/N) Σ_i K_i`` (each ``K_i`` an L²(p) projection: P is reversible with spectrum in [0, 1]).
The symmetrised generator ``L = D^{1/2}(I − P)D^{-1/2}`` has off-diagonal entries
``−1/(N · 2cosh(x_i F_i(x)))`` between x and its flip at i, and diagonal ``(1/N) Σ_i σ(−2 x_i F_i(x))``
(both computed directly, never as ``1 − P_ii``). With h = 0 the 2^N states split into even and
odd sectors under ``x → −x``; each is diagonalised alone in float64 (``numpy.linalg.eigh``), so the
even observables ``x_i x_j`` have exactly zero weight on odd modes.

A sweep is N updates: ``λ_sweep = (1 − μ)^N`` for a generator eigenvalue μ, and the sweep gap is
``−expm1(N log1p(−μ))``. Mode weights ``S_k = ⟨f̃, φ_k⟩²`` (the recorded state is the chain's
state, so ``C(t) = Σ_k S_k λ_k^t``). ``eig_check`` is the largest relative difference between an
eigenvalue and the Dirichlet-form Rayleigh quotient of its eigenvector (positive terms only) over
the 8 slowest modes of each sector: small when float64 resolves the small gaps.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .solution import ExactSolution
from ..core.ising import IsingModel, pair_observables
from ..core.model import flip_index

__all__ = ["solve", "eigensystem", "MAX_SPINS"]

MAX_SPINS = 14


def _flip_rates(model: IsingModel, X: np.ndarray) -> np.ndarray:
    """``z[s, i] = x_i F_i(x)`` for every state s and site i."""
    return X * model.local_field(X)


def _generator(model: IsingModel, X: np.ndarray) -> np.ndarray:
    N = model.n_spins
    S = len(X)
    z = _flip_rates(model, X)
    L = np.zeros((S, S))
    s = np.arange(S)
    for i in range(N):
        L[s, s ^ (1 << i)] = -1.0 / (N * 2.0 * np.cosh(z[:, i]))
    L[s, s] = (0.5 * (1.0 - np.tanh(z))).sum(axis=1) / N  # (1/N) Σ_i σ(−2z_i)
    return L


def _dirichlet_quotient(model: IsingModel, X, p, phi) -> np.ndarray:
    """``E(φ, φ) / Var_p φ`` per column, E from the positive flip rates ``p(x) P(x, x^i)``."""
    N = model.n_spins
    z = _flip_rates(model, X)
    s = np.arange(len(X))
    E = np.zeros(phi.shape[1])
    for i in range(N):
        rate = p * 0.5 * (1.0 - np.tanh(z[:, i])) / N
        E += 0.5 * rate @ (phi - phi[s ^ (1 << i)]) ** 2
    mean = p @ phi
    var = p @ (phi - mean) ** 2
    return E / var


@lru_cache(maxsize=2)  # solve() and chain_modes() of the same model share one diagonalisation
def eigensystem(model: IsingModel):
    """``(X, p, [(sector, mu, Ut)])``: generator eigenvalues μ (ascending) and eigenvectors of the
    symmetrised generator expanded to all 2^N states (columns of Ut, orthonormal; eigenfunctions
    ``φ = Ut / √p``). The stationary mode (μ = 0) is included in its sector."""
    if not isinstance(model, IsingModel):
        raise TypeError(f"exact_ising needs an snrbench.core.ising.IsingModel, got {type(model).__name__}")
    N = model.n_spins
    if N > MAX_SPINS:
        raise ValueError(f"exact solver: {N} spins (> {MAX_SPINS}); use Monte Carlo")
    X, p = model.probabilities()
    L = _generator(model, X)
    S = len(X)
    if not model.spin_flip_symmetric:
        mu, U = np.linalg.eigh(L)
        return X, p, [("all", mu, U)]
    states = np.arange(S)
    reps = states[states < S // 2]
    flips = flip_index(reps, N)
    out = []
    for name, sign in (("even", 1.0), ("odd", -1.0)):
        Ls = L[np.ix_(reps, reps)] + sign * L[np.ix_(reps, flips)]
        mu, u = np.linalg.eigh(0.5 * (Ls + Ls.T))
        Ut = np.zeros((S, len(mu)))
        Ut[reps] = u / np.sqrt(2.0)
        Ut[flips] = sign * u / np.sqrt(2.0)
        out.append((name, mu, Ut))
    return X, p, out


def sweep_gap(mu, N: int) -> np.ndarray:
    """``1 − (1 − μ)^N`` without cancellation."""
    mu = np.clip(np.asarray(mu, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return -np.expm1(N * np.log1p(-mu))


def solve(model: IsingModel, data=None) -> ExactSolution:
    """Exact mode decomposition of ``model``'s random-scan Gibbs chain (per sweep of N updates)."""
    X, p, sectors = eigensystem(model)
    N = model.n_spins
    F = pair_observables(X)
    Ef = p @ F
    Ft = F - Ef
    mag = X.mean(axis=1)
    mag_t = mag - p @ mag
    V, Vm = float(p @ (Ft**2).sum(axis=1)), float(p @ mag_t**2)
    sq = np.sqrt(p)
    grad_norm2 = np.nan
    if data is not None:
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != N or not np.all(np.isin(data, (-1.0, 1.0))):
            raise ValueError(f"data must be ±1 spins of shape (n, {N}), got {data.shape}")
        g = pair_observables(data).mean(axis=0) - Ef
        grad_norm2 = float(g @ g)
    gaps, names, S, Sm, checks = [], [], [], [], [0.0]
    for name, mu, Ut in sectors:
        stat = np.abs(Ut.T @ sq)
        keep = stat < 1 - 1e-8
        if name != "odd" and keep.all():
            raise RuntimeError(f"exact solver: stationary mode not found in sector {name}")
        mu, Ut = mu[keep], Ut[:, keep]
        if np.any(mu <= 0):
            raise RuntimeError(f"exact solver: non-positive generator eigenvalue {mu.min():.3g} in sector {name}")
        slow = np.argsort(mu)[:8]
        rq = _dirichlet_quotient(model, X, p, Ut[:, slow] / sq[:, None])
        checks.append(float(np.max(np.abs(rq - mu[slow]) / mu[slow])))
        gaps.append(sweep_gap(mu, N))
        names += [name] * len(mu)
        # parity: the pairs are even, m is odd; the other sector's overlap is zero exactly
        S.append(np.zeros(len(mu)) if name == "odd" else ((Ut.T @ (sq[:, None] * Ft)) ** 2).sum(axis=1))
        Sm.append(np.zeros(len(mu)) if name == "even" else (Ut.T @ (sq * mag_t)) ** 2)
    S, Sm = np.concatenate(S), np.concatenate(Sm)
    if S.sum() > V * (1 + 1e-8):
        raise RuntimeError(f"exact solver: mode weights exceed the variance ({S.sum():.6g} > {V:.6g})")
    return ExactSolution(gaps=np.concatenate(gaps), sectors=np.array(names), weights=S, total_variance=V,
                         weights_m=Sm, variance_m=Vm, grad_norm2=grad_norm2,
                         method="float64-eigh-sectors" if model.spin_flip_symmetric else "float64-eigh",
                         eig_check=max(checks))


def chain_modes(model: IsingModel):
    """:class:`snrbench.truth.operational.ChainModes` of the sweep chain (``A = I``, ``B = P^N``); with
    h = 0 only the even sector (the pair observables and every quantity built on them are even)."""
    from .operational import ChainModes

    X, p, sectors = eigensystem(model)
    N = model.n_spins
    F = pair_observables(X)
    ft = F - p @ F
    gaps, cols = [], []
    for name, mu, Ut in sectors:
        if name != "odd":
            gaps.append(sweep_gap(mu, N))
            cols.append(Ut / np.sqrt(p)[:, None])
    gaps, psi = np.concatenate(gaps), np.concatenate(cols, axis=1)
    gaps[np.abs(psi.T @ p - 1.0) < 1e-8] = 0.0  # the stationary mode exactly
    return ChainModes(gaps=gaps, right=psi, left=(1.0 - gaps)[:, None] * (psi * p[:, None]).T, ft=ft)
