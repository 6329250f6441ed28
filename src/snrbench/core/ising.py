"""The Ising family's model: ``p(x) ∝ exp(½ xᵀJx + hᵀx)`` on spins ``x ∈ {−1, +1}^N``.

``J`` is symmetric with a zero diagonal (inverse temperature absorbed, dimensionless). The sampler
is random-scan single-site Gibbs: one *update* picks a site i uniformly and redraws
``x_i ~ p(x_i | x_{−i})``, i.e. ``x_i = +1`` with probability ``σ(2F_i)``, ``F_i = Σ_j J_ij x_j + h_i``;
one *sweep* is N updates (reversible, positive semi-definite kernel). Gradient observables are
``f_ij = x_i x_j`` (i < j), even under ``x → −x``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .model import all_states

__all__ = ["IsingModel", "pair_observables"]


def pair_observables(x: np.ndarray) -> np.ndarray:
    """``f_ij = x_i x_j`` for i < j (row-major pairs), shape ``(len(x), N(N−1)/2)``."""
    i, j = np.triu_indices(x.shape[1], k=1)
    return x[:, i] * x[:, j]


@dataclass(frozen=True, eq=False)
class IsingModel:
    """Immutable Ising model with couplings ``J`` (N × N, symmetric, zero diagonal), field ``h``."""

    J: np.ndarray
    h: np.ndarray | None = None
    units: str = field(default="spin", init=False)
    _sha: str = field(init=False, repr=False, default="")

    def __post_init__(self):
        J = np.array(self.J, dtype=np.float64, copy=True)
        if J.ndim != 2 or J.shape[0] != J.shape[1] or J.shape[0] < 2:
            raise ValueError(f"IsingModel: J must be a square N × N array with N ≥ 2, got shape {J.shape}")
        if not np.all(np.isfinite(J)):
            raise ValueError("IsingModel: J contains non-finite values (NaN or inf)")
        if np.any(np.diag(J) != 0) or not np.array_equal(J, J.T):
            raise ValueError("IsingModel: J must be symmetric with a zero diagonal")
        h = np.zeros(len(J)) if self.h is None else np.array(self.h, dtype=np.float64, copy=True)
        if h.shape != (len(J),) or not np.all(np.isfinite(h)):
            raise ValueError(f"IsingModel: h must be a finite vector of length {len(J)}")
        for arr in (J, h):
            arr.setflags(write=False)
        object.__setattr__(self, "J", J)
        object.__setattr__(self, "h", h)
        digest = hashlib.sha256(b"ising")
        for arr in (J, h):
            digest.update(np.ascontiguousarray(arr).tobytes())
        object.__setattr__(self, "_sha", digest.hexdigest())

    @property
    def n_spins(self) -> int:
        return self.J.shape[0]

    n_visible = n_spins  # the recorded state is the whole configuration

    @property
    def sha256(self) -> str:
        """Content hash of (J, h)."""
        return self._sha

    @property
    def spin_flip_symmetric(self) -> bool:
        return not self.h.any()

    def local_field(self, x: np.ndarray) -> np.ndarray:
        """``F_i(x) = Σ_j J_ij x_j + h_i`` for rows of x."""
        return x @ self.J + self.h

    def log_weight(self, x: np.ndarray) -> np.ndarray:
        """Unnormalised ``log p(x) = ½ xᵀJx + hᵀx``."""
        return 0.5 * np.einsum("si,ij,sj->s", x, self.J, x) + x @ self.h

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """``(states (2^N, N), p (2^N,))`` by enumeration (row s has spin i up when bit i is set)."""
        X = all_states(self.n_spins, "spin")
        lw = self.log_weight(X)
        p = np.exp(lw - lw.max())
        return X, p / p.sum()

    def sample_exact(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Exact samples of p by enumeration."""
        X, p = self.probabilities()
        return X[rng.choice(len(X), size=n_samples, p=p)]
