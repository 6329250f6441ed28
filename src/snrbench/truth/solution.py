"""The exact mode decomposition of a reversible chain for a set of gradient observables.

Shared by the blocked-Gibbs RBM solver (:mod:`snrbench.truth.exact`) and the single-site Ising
solver (:mod:`snrbench.truth.exact_ising`): gaps ``1 − λ_k`` (per sweep), mode weights ``S_k``,
``V = Σ_a Var_p f_a`` and ``‖g‖²``, from which ``Tr Cov ĝ(T) = Σ_k S_k v_T(λ_k)`` and
``Q(T) = ‖g‖² / Tr Cov ĝ(T)`` follow (DESIGN §2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import spectral

__all__ = ["ExactSolution", "OBSERVABLE_WEIGHT_THRESHOLD", "LAMBDA_ZERO"]

#: A mode counts as carrying weight on the gradient observables when ``S_k ≥ this · V``.
#: Rounding noise in ``S_k`` is ≤ ~1e-20·V for λ ≥ 1e-12, so 1e-12 separates noise from weight.
OBSERVABLE_WEIGHT_THRESHOLD = 1e-12
#: Eigenvalues λ below this are treated as exactly zero (merged into the residual).
LAMBDA_ZERO = 1e-12


@dataclass(frozen=True)
class ExactSolution:
    """Mode decomposition of one RBM's blocked-Gibbs chain for its gradient observables.

    Attributes
    ----------
    gaps : (K,) float64
        ``1 − λ_k`` of every non-stationary mode (per sweep), ascending within each sector.
    sectors : (K,) str
        "all", or "even"/"odd" under spin-flip symmetry.
    weights : (K,) float64
        ``S_k = Σ_a c_{a,k}²`` of the gradient observables (units of f²).
    total_variance : float
        ``V = Σ_a Var_p f_a``.
    weights_m, variance_m
        The same for the magnetization ``m(v) = mean_i v_i``.
    grad_norm2 : float
        ``‖g‖² = ‖mean_data f − E_p f‖²`` (NaN without data).
    method : str
        How the gaps were computed (e.g. ``arb-qr-256bit``).
    eig_check : float
        Largest |eigenvalue(arbitrary precision) − eigenvalue(float64 eigh)| (~1e-15 when sane).
    """

    gaps: np.ndarray
    sectors: np.ndarray
    weights: np.ndarray
    total_variance: float
    weights_m: np.ndarray
    variance_m: float
    grad_norm2: float
    method: str
    eig_check: float

    @property
    def residual(self) -> float:
        return max(self.total_variance - float(self.weights.sum()), 0.0)

    def trace_cov(self, T=spectral.T_GRID) -> np.ndarray:
        """``Tr Cov[ĝ(T, 1)]`` (units of f²)."""
        return spectral.trace_cov(self.weights, self.gaps, self.residual, T)

    def log10_q(self, T=spectral.T_GRID) -> np.ndarray:
        """``log10 Q(T, 1) = log10(‖g‖² / Tr Cov[ĝ(T, 1)])``."""
        if not np.isfinite(self.grad_norm2):
            raise ValueError("Q(T) needs data: solve(rbm, data) with the data set")
        return np.log10(self.grad_norm2) - np.log10(self.trace_cov(T))

    @property
    def tau_grad(self) -> float:
        """Integrated autocorrelation time of the gradient, ``Σ_k (S_k/V)(1+λ_k)/(1−λ_k)`` (sweeps)."""
        return spectral.integrated_time(self.weights, self.gaps, self.total_variance)

    @property
    def tau_m(self) -> float:
        """Integrated autocorrelation time of the magnetization (sweeps)."""
        return spectral.integrated_time(self.weights_m, self.gaps, self.variance_m)

    @property
    def spectral_gap(self) -> float:
        """Global gap ``1 − λ_1`` (smallest over all sectors)."""
        return float(self.gaps.min())

    @property
    def tau_gap(self) -> float:
        """``(1+λ_1)/(1−λ_1)`` of the slowest mode (sweeps)."""
        return float((2.0 - self.spectral_gap) / self.spectral_gap)

    def observable_gap(self, threshold: float = OBSERVABLE_WEIGHT_THRESHOLD) -> float:
        """``1 − λ`` of the slowest mode with ``S_k ≥ threshold · V``."""
        relevant = self.weights >= threshold * self.total_variance
        return float(self.gaps[relevant].min()) if relevant.any() else 1.0
