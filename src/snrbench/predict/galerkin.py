"""Time-lagged (Galerkin / VAMP-style) estimate of the slow spectrum from sampler trajectories.

Basis. For the v-chain ``K = A B`` every eigenfunction with ``λ ≠ 0`` lies in range(A), spanned by
the products ``φ_S(v) = Π_{j∈S} E[h_j|v]`` over non-empty hidden subsets S (DESIGN §5). That span
is invariant, so the Galerkin eigenpairs of the lagged problem ``C_ℓ u = ρ C_0 u`` carry no lag
bias: ``ρ_k(ℓ) = λ_k^ℓ`` exactly, up to sampling noise. For large m, products up to the degree
that keeps at most ``max_features`` functions are used (then the span is only approximately
invariant). Under spin-flip symmetry a product of odd degree is odd. The features come from the
sampler's ``basis_features()``: ``E[h|v]`` for an RBM; for the Ising family the spins themselves,
whose products of degree ≤ D span only approximately invariant subspaces (all 2^N would be exact).

Mode weights. With ``u_k`` normalised so ``u_kᵀ C_0 u_k = 1`` (an L²(p)-orthonormal
eigenfunction ``ψ_k = u_kᵀ(φ − Eφ)``), ``S_k = Σ_a Cov(f_a, ψ_k)²`` (units of f²). The part of f
outside the span is in the null space of K (λ = 0).

Noise. K is positive semi-definite, so every true ``ρ_k(ℓ) ≥ 0``; the most negative Galerkin
eigenvalue at lag ℓ measures the noise floor ``ν(ℓ)``. A mode is significant when
``ρ_k(1) > 2ν(1)``. Its gap is read at the largest lag where ``ρ_k(ℓ) ≥ max(e^{-1}, 2ν(ℓ))``:
``λ_k = ρ_k(ℓ)^{1/ℓ}``, ``γ_k = 1 − λ_k = −expm1(ln ρ_k(ℓ) / ℓ)`` (accurate for tiny gaps).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
import torch


__all__ = ["product_basis", "basis_degree", "LaggedCovariances", "GalerkinSpectrum", "galerkin_spectrum",
           "sample_galerkin"]


def basis_degree(m: int, max_features: int) -> int:
    """The largest degree D with ``Σ_{k=1..D} C(m, k) ≤ max_features`` (at least 1)."""
    total, D = 0, 0
    for k in range(1, m + 1):
        total += comb(m, k)
        if total > max_features:
            break
        D = k
    return max(D, 1)


def product_basis(mean_h: torch.Tensor, degree: int) -> tuple[torch.Tensor, np.ndarray]:
    """Products ``Π_{j∈S} mean_h[:, j]`` over subsets ``1 ≤ |S| ≤ degree``.

    Returns ``(features (C, d), degrees (d,))``; ``mean_h`` is ``E[h|v]`` per chain, shape (C, m).
    """
    C, m = mean_h.shape
    F = torch.ones(C, 1, dtype=mean_h.dtype, device=mean_h.device)
    deg = np.zeros(1, dtype=np.int64)
    for j in range(m):
        sel = np.flatnonzero(deg < degree)
        F = torch.cat([F, F[:, sel] * mean_h[:, j : j + 1]], dim=1)
        deg = np.concatenate([deg, deg[sel] + 1])
    return F[:, 1:], deg[1:]


class LaggedCovariances:
    """Streaming sums for ``C_0``, ``C_ℓ`` (lags ``ℓ = 2^j``), ``Cov(f, φ)`` and ``Var f``.

    Frames arrive in blocks (:meth:`add_block`). Lag ℓ pairs frames ``(t − ℓ, t)`` at times
    ``t ≡ 0 (mod max(1, ℓ/2))``: lags up to the block length are paired inside the current and
    previous block by one matrix product each; longer lags keep 2 snapshots. Pass float64 frames:
    float32 rounding in ``C_0`` shows up as spurious negative Galerkin eigenvalues and raises the
    noise floor.

    ``parity`` (d,) and ``obs_parity`` (n_obs,), ±1, declare the spin-flip parity of the basis and
    observables of a symmetric model: the moments are then those of the chain augmented by its
    mirror image ``v → −v`` (entries pairing opposite parities vanish, the others are unchanged).
    """

    def __init__(self, d: int, n_obs: int, max_lag: int, parity=None, obs_parity=None):
        t = dict(dtype=torch.float64)
        self.lags = [2**j for j in range(int(np.log2(max(1, max_lag))) + 1)]
        self.stride = {lag: max(1, lag // 2) for lag in self.lags}
        self.parity = None if parity is None else np.asarray(parity, dtype=np.float64)
        self.obs_parity = None if obs_parity is None else np.asarray(obs_parity, dtype=np.float64)
        self.n = 0
        self.t = 0
        self.sum_phi = torch.zeros(d, **t)
        self.sum_pp = torch.zeros(d, d, **t)
        self.sum_f = torch.zeros(n_obs, **t)
        self.sum_ff = torch.zeros(n_obs, **t)
        self.sum_fp = torch.zeros(n_obs, d, **t)
        self.lagged = {lag: torch.zeros(d, d, **t) for lag in self.lags}
        self.n_lagged = dict.fromkeys(self.lags, 0)
        self._prev: torch.Tensor | None = None
        self._snap: dict[int, torch.Tensor] = {}

    def add_block(self, phi: torch.Tensor, f: torch.Tensor) -> None:
        """``phi`` (B, C, d) basis values and ``f`` (B, C, n_obs) observables at B consecutive times."""
        B, C, d = phi.shape
        t0 = self.t
        X, F = phi.reshape(B * C, d), f.reshape(B * C, -1)
        self.n += B * C
        self.sum_phi += X.sum(0, dtype=torch.float64)
        self.sum_pp += X.T @ X
        self.sum_f += F.sum(0, dtype=torch.float64)
        self.sum_ff += (F * F).sum(0, dtype=torch.float64)
        self.sum_fp += F.T @ X
        prev = self._prev if self._prev is not None and self._prev.shape[0] == B else None
        Y = phi if prev is None else torch.cat([prev, phi])
        off = 0 if prev is None else B  # index in Y of time t0
        for lag in self.lags:
            s = self.stride[lag]
            times = np.arange(t0 + (-t0) % s, t0 + B, s)
            if lag <= B:
                idx = times - t0 + off
                idx = idx[idx - lag >= 0]
                if idx.size:
                    a = Y[idx - lag].reshape(-1, d)
                    b = Y[idx].reshape(-1, d)
                    self.lagged[lag] += a.T @ b
                    self.n_lagged[lag] += a.shape[0]
                continue
            for t in times:
                cur = phi[t - t0]
                old = self._snap.pop((lag, t - lag), None)
                if old is not None:
                    self.lagged[lag] += old.T @ cur
                    self.n_lagged[lag] += C
                self._snap[(lag, int(t))] = cur
        self._prev = phi
        self.t += B

    def moments(self) -> dict:
        """Centred moments (numpy float64): C0, {lag: C_lag (symmetrised)}, cross = Cov(f, φ), V, f_mean."""
        n = self.n
        pp = np.ones(self.sum_phi.shape[0]) if self.parity is None else self.parity
        po = np.ones(self.sum_f.shape[0]) if self.obs_parity is None else self.obs_parity
        even, even_o = (pp > 0).astype(float), (po > 0).astype(float)
        same = (np.outer(pp, pp) > 0).astype(float)
        mu = (self.sum_phi / n).numpy() * even
        C0 = self.sum_pp.numpy() * same / n - np.outer(mu, mu)
        lagged = {}
        for lag in self.lags:
            if self.n_lagged[lag]:
                Cl = self.lagged[lag].numpy() * same / self.n_lagged[lag] - np.outer(mu, mu)
                lagged[lag] = 0.5 * (Cl + Cl.T)
        f_mean = (self.sum_f / n).numpy() * even_o
        cross = self.sum_fp.numpy() * (np.outer(po, pp) > 0) / n - np.outer(f_mean, mu)
        V = float((self.sum_ff.numpy() / n - f_mean**2).sum())
        return dict(C0=0.5 * (C0 + C0.T), lagged=lagged, cross=cross, V=V, f_mean=f_mean)


@dataclass(frozen=True)
class GalerkinSpectrum:
    """Estimated modes, slowest first: gaps ``γ_k`` (1/sweep), weights ``S_k`` (f²), significance.

    ``rho1`` are the lag-1 eigenvalues; ``noise`` the noise floor ν(ℓ) per lag; ``lag_used`` the
    lag each gap was read at; ``V`` the total variance of f.
    """

    gaps: np.ndarray
    weights: np.ndarray
    significant: np.ndarray
    rho1: np.ndarray
    lag_used: np.ndarray
    noise: dict
    V: float

    def trace_cov(self, T, keep=None) -> np.ndarray:
        """``Σ_{k kept} S_k v_T(λ_k) + (V − Σ_{k kept} S_k)/T`` (units of f²)."""
        from ..core.spectral import trace_cov

        keep = self.significant if keep is None else keep
        S = self.weights[keep]
        return trace_cov(S, self.gaps[keep], max(self.V - S.sum(), 0.0), T)


def galerkin_spectrum(C0, lagged: dict, cross, V: float, gap_floor: float = 1e-300,
                      rel_cutoff: float = 1e-10) -> GalerkinSpectrum:
    """Solve ``C_ℓ u = ρ C_0 u`` at every lag; gaps and weights as in the module docstring.

    ``C0`` (d, d); ``lagged`` {ℓ: C_ℓ}, must contain lag 1; ``cross`` = Cov(f, φ), (n_obs, d).
    Directions of ``C0`` with eigenvalue below ``rel_cutoff·max`` are dropped (collinear basis).
    ``gap_floor``: the gap given to a mode with no measurable decay (ρ ≥ 1 at the largest lag).
    """
    if 1 not in lagged:
        raise ValueError("galerkin_spectrum needs the lag-1 covariance")
    e, Q = np.linalg.eigh(C0)
    keep = e > rel_cutoff * e.max()
    Wh = Q[:, keep] / np.sqrt(e[keep])  # Whᵀ C0 Wh = I
    lags = sorted(lagged)
    rho, U1 = {}, None
    for lag in lags:
        r, Y = np.linalg.eigh(Wh.T @ lagged[lag] @ Wh)
        order = np.argsort(r)[::-1]
        rho[lag] = r[order]
        if lag == 1:
            U1 = Wh @ Y[:, order]
    noise = {lag: float(max(0.0, -rho[lag].min())) for lag in lags}
    r1 = rho[1]
    significant = r1 > 2.0 * noise[1]
    gaps = np.empty(r1.size)
    lag_used = np.ones(r1.size, dtype=np.int64)
    for k in range(r1.size):
        gaps[k] = min(1.0, max(1.0 - r1[k], gap_floor)) if r1[k] < 1 else gap_floor
        for lag in lags[1:]:
            rk = rho[lag][k]
            if rk >= max(np.exp(-1.0), 2.0 * noise[lag]):
                lag_used[k] = lag
                gaps[k] = max(-np.expm1(np.log(rk) / lag), gap_floor) if rk < 1 else gap_floor
            else:
                break
    weights = ((np.asarray(cross) @ U1) ** 2).sum(axis=0)
    return GalerkinSpectrum(gaps=gaps, weights=weights, significant=significant & (r1 > 0), rho1=r1,
                            lag_used=lag_used, noise=noise, V=float(V))


def sample_galerkin(problem, n_chains: int = 128, n_sweeps: int | None = None, burn_in: int | None = None,
                    max_lag: int | None = None, max_features: int = 128, symmetrize: bool = True,
                    block: int = 64, burn_in_fraction: float = 0.125, start: str = "uniform"):
    """Run the metered sampler and estimate the spectrum of the gradient observables.

    ``n_sweeps`` per chain in all, default the cell's budget ``problem.budget // n_chains``
    (2^15 at the full budget and 128 chains); ``burn_in`` of them are discarded (default
    ``⌊burn_in_fraction · n_sweeps⌋``), the rest recorded (in blocks of ``block`` sweeps). With ``symmetrize`` and a spin-flip symmetric model the moments are those of
    the chains augmented by their mirror images ``−v`` (the model's exact symmetry), so even
    observables get exactly zero weight on odd modes. ``start``: where the chains begin
    (:meth:`~snrbench.predict.contract.Problem.sampler`; ``"data"`` for model and white-box entries).
    Returns ``(GalerkinSpectrum, f_mean (n_obs,), chain_means (C, n_obs))``; ``f_mean`` and the
    chain means are of the recorded chains themselves (not mirrored).
    """
    if n_sweeps is None:
        n_sweeps = int(problem.budget) // int(n_chains)
    if burn_in is None:
        burn_in = int(burn_in_fraction * n_sweeps)
    L = ((n_sweeps - burn_in) // block) * block
    if L < 2 * block:
        raise ValueError(f"sample_galerkin: {n_sweeps - burn_in} recorded sweeps; need at least {2 * block}")
    sampler = problem.sampler(n_chains, start=start)
    sampler.run(burn_in)
    info = problem.info
    m = info.n_visible if info.kind == "ising-model" else info.n_hidden  # basis features: E[h|v], or the spins
    degree = basis_degree(m, max_features)
    n_obs = info.n_observables
    parity = obs_parity = None
    if symmetrize and problem.info.spin_flip_symmetric:
        _, deg = product_basis(torch.zeros(1, m), degree)
        parity = (-1.0) ** deg
        obs_parity = np.asarray(problem.info.observable_parity)
    acc = LaggedCovariances(basis_degree_count(m, degree), n_obs, max_lag or max(1, L // 16), parity, obs_parity)
    chain_sum = torch.zeros(n_chains, n_obs, dtype=torch.float64)
    for rec in sampler.record_blocks(L // block, block, ("observables", "basis_features")):
        Fb, Xb = rec["observables"].to(torch.float64), rec["basis_features"].to(torch.float64)
        phi = product_basis(Xb.reshape(-1, m), degree)[0].reshape(block, n_chains, -1)
        acc.add_block(phi, Fb)
        chain_sum += Fb.sum(0)
    mo = acc.moments()
    spec = galerkin_spectrum(mo["C0"], mo["lagged"], mo["cross"], mo["V"], gap_floor=1.0 / (n_chains * L))
    return spec, (chain_sum.sum(0) / (n_chains * L)).numpy(), (chain_sum / L).numpy()


def basis_degree_count(m: int, degree: int) -> int:
    """Number of products of degree 1 … ``degree`` of m hidden units."""
    return sum(comb(m, k) for k in range(1, degree + 1))
