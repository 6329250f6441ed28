"""Operational Q: the estimator as run, with burn-in from a stated start and its bias included.

A chain starts at ``v_0 ~ π_0`` (uniform, or the data's empirical distribution as in CD), runs B
burn-in sweeps, then records ``f(v_{B+1}), …, f(v_{B+T})``; ``ĝ(T) = mean_data f − (1/T) Σ f(v_t)``.
With ``g = mean_data f − E_p f``:

    Q_op(T; B, π_0) = ‖g‖² / E‖ĝ − g‖²,   E‖ĝ − g‖² = ‖bias‖² + Tr Cov_op   (units of f²).

Exact evaluation (reversible, positive semi-definite sweep). Write one sweep as ``v → z → v'`` with
kernels ``A`` (v → z) and ``B`` (z → v'): blocked Gibbs has z = h; a chain recorded on its own
state has ``A = I``, ``B = K``. The z-chain ``K_z = BA`` is reversible w.r.t. q with L²(q)-orthonormal
eigenfunctions ``ψ_k`` and ``λ_k = 1 − γ_k``. With ``f̃ = f − E_p f`` and

    a_k = Σ_v π_0(v) (Aψ_k)(v),     c_{ak} = ⟨ψ_k, B f̃_a⟩_q,     e_k = ⟨ψ_k, B‖f̃‖²⟩_q,
    X_{kl} = ⟨ψ_k, B(g_l ⊙ Aψ_l)⟩_q,   g_l = Σ_a c_{al} f̃_a,

the recorded state at sweep s has ``E f̃(v_s) = Σ_k a_k λ_k^{s−1} c_k``, ``E‖f̃(v_s)‖² = Σ_k a_k λ_k^{s−1} e_k``
and, for s < t, ``E f̃(v_s)·f̃(v_t) = Σ_{k,l} a_k λ_k^{s−1} λ_l^{t−s−1} X_{kl}``. Summing over the
window (s, t ∈ B+1 … B+T):

    T² E‖ĝ − g‖² = Σ_k a_k λ_k^B [G_k(T) e_k + 2 Σ_l Z_{kl}(T) X_{kl}],
    G_k(T) = Σ_{j<T} λ_k^j,   Z_{kl}(T) = Σ_{1≤s<t≤T} λ_k^{s−1} λ_l^{t−s−1},

evaluated on T = 1, 2, 4, … by doubling, subtraction-free (every term is a sum of non-negative
powers): ``G(2n) = G(n)(1+λ^n)``, ``H(2n) = H(n)(λ_k^n + λ_l^n)`` with ``H_{kl}(n) = Σ_{s≤n} λ_k^{s−1} λ_l^{n−s}``,
``Z(2n) = Z(n)(1 + λ_k^n) + H(n) G_l(n)``. Powers are ``exp(n · log1p(−γ))`` from accurate gaps, so
a burn-in of ``⌈5/γ_obs⌉`` sweeps is exact even when ``γ_obs`` is far below float64's epsilon.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["ChainModes", "window_error", "START_DISTRIBUTIONS"]

START_DISTRIBUTIONS = ("uniform", "data")


@dataclass(frozen=True)
class ChainModes:
    """The z-chain's modes seen from the recorded states (see the module docstring).

    gaps : (K,) per sweep, 0 for the stationary mode; right : (V, K) ``Aψ_k`` on the recorded
    states; left : (K, V) ``ψ_kᵀ diag(q) B``; ft : (V, d) centred observables ``f̃`` on the recorded
    states.
    """

    gaps: np.ndarray
    right: np.ndarray
    left: np.ndarray
    ft: np.ndarray

    @cached_property
    def coefficients(self):
        """``(C (K, d), e (K,), X (K, K))`` (computed once)."""
        C = self.left @ self.ft
        e = self.left @ (self.ft**2).sum(axis=1)
        G = self.ft @ C.T  # (V, K): g_l on the recorded states
        X = self.left @ (G * self.right)
        return C, e, X


def _powers(loglam: np.ndarray, n: float) -> np.ndarray:
    """``λ^n`` with ``λ^0 = 1`` (also for λ = 0)."""
    if n == 0:
        return np.ones_like(loglam)
    with np.errstate(invalid="ignore"):
        return np.exp(n * loglam)


def window_error(modes: ChainModes, start: np.ndarray, T, burn_in: float) -> tuple[np.ndarray, np.ndarray]:
    """``(E‖ĝ − g‖², ‖bias‖²)`` on ``T`` (powers of 2, units of f²) for start distribution ``start`` (V,)
    and ``burn_in`` sweeps."""
    T = np.asarray(T, dtype=np.int64)
    if np.any(T < 1) or np.any(T & (T - 1)):
        raise ValueError("window_error evaluates T on powers of 2 (the suite grid)")
    start = np.asarray(start, dtype=np.float64)
    if start.shape != (modes.right.shape[0],) or np.any(start < 0) or abs(start.sum() - 1) > 1e-9:
        raise ValueError("start must be a probability vector over the recorded states")
    if burn_in < 0:
        raise ValueError(f"burn_in must be ≥ 0 sweeps, got {burn_in}")
    C, e, X = modes.coefficients
    gaps = np.clip(np.asarray(modes.gaps, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        loglam = np.log1p(-gaps)
    w = (start @ modes.right) * _powers(loglam, float(burn_in))
    K = len(gaps)
    geo, pw = np.ones(K), _powers(loglam, 1.0)
    Z, H = np.zeros((K, K)), np.ones((K, K))
    mse, bias2 = np.empty(len(T)), np.empty(len(T))
    n = 1
    while n <= T.max():
        hit = T == n
        if hit.any():
            mse[hit] = (w @ (geo * e) + 2.0 * np.einsum("k,kl,kl->", w, Z, X)) / float(n) ** 2
            b = ((w * geo) @ C) / n
            bias2[hit] = b @ b
        Z = Z * (1.0 + pw[:, None]) + H * geo[None, :]
        H = H * (pw[:, None] + pw[None, :])
        geo = geo * (1.0 + pw)
        pw = pw * pw
        n *= 2
    return mse, bias2
