"""The restricted Boltzmann machine: parameters, validation and conditionals.

Energy ``E(v, h) = -(vᵀ W h + aᵀ v + bᵀ h)`` and ``p(v, h) ∝ exp(-E)`` (dimensionless, inverse
temperature absorbed in W, a, b). Units are spins {-1, +1} or binary {0, 1}.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RBM", "UNITS", "all_states", "flip_index"]

UNITS = ("spin", "binary")


def all_states(k: int, units: str) -> np.ndarray:
    """All ``2**k`` configurations of ``k`` units, shape ``(2**k, k)``, float64.

    Row ``s`` has unit ``i`` on when bit ``i`` of ``s`` is set; under spin units the spin flip
    of row ``s`` is row ``flip_index(s, k)``.
    """
    if k > 26:
        raise ValueError(f"refusing to enumerate 2**{k} states")
    return states_at(np.arange(2**k), k, units)


def states_at(index: np.ndarray, k: int, units: str) -> np.ndarray:
    """Rows ``index`` of :func:`all_states` (unit ``i`` on when bit ``i`` is set), ``(len(index), k)``."""
    bits = (np.asarray(index)[:, None] >> np.arange(k)[None, :]) & 1
    return (2.0 * bits - 1.0) if units == "spin" else bits.astype(np.float64)


def flip_index(s: np.ndarray | int, k: int):
    """Index of the spin-flipped configuration (all bits complemented)."""
    return np.bitwise_xor(s, (1 << k) - 1)


def _as_array(x, shape, name) -> np.ndarray:
    arr = np.array(x, dtype=np.float64, copy=True)
    if arr.shape != shape:
        raise ValueError(f"RBM: {name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"RBM: {name} contains non-finite values (NaN or inf)")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class RBM:
    """Immutable RBM with ``W`` (n × m), visible bias ``a`` (n), hidden bias ``b`` (m).

    Parameters are validated (shapes, finiteness, units) and stored read-only in float64.
    ``a`` and ``b`` default to zero.
    """

    W: np.ndarray
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    units: str = "spin"
    _sha: str = field(init=False, repr=False, default="")

    def __post_init__(self):
        W = np.asarray(self.W, dtype=np.float64) if self.W is not None else None
        if W is None or W.ndim != 2 or 0 in W.shape:
            raise ValueError(f"RBM: W must be a non-empty 2-D array, got shape {getattr(W, 'shape', None)}")
        n, m = W.shape
        if self.units not in UNITS:
            raise ValueError(f"RBM: units must be one of {UNITS}, got {self.units!r}")
        object.__setattr__(self, "W", _as_array(W, (n, m), "W"))
        object.__setattr__(self, "a", _as_array(np.zeros(n) if self.a is None else self.a, (n,), "a"))
        object.__setattr__(self, "b", _as_array(np.zeros(m) if self.b is None else self.b, (m,), "b"))
        h = hashlib.sha256(self.units.encode())
        for arr in (self.W, self.a, self.b):
            h.update(np.ascontiguousarray(arr).tobytes())
        object.__setattr__(self, "_sha", h.hexdigest())

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    @property
    def sha256(self) -> str:
        """Content hash of (units, W, a, b): identifies the exact parameters."""
        return self._sha

    @property
    def spin_flip_symmetric(self) -> bool:
        """True for spin units with ``a = b = 0``, where ``E(v, h) = E(-v, -h)``."""
        return self.units == "spin" and not self.a.any() and not self.b.any()

    def transpose(self) -> "RBM":
        """The same joint law with the roles of visible and hidden swapped."""
        return RBM(self.W.T, self.b, self.a, self.units)

    # conditionals -----------------------------------------------------------------------------
    def hidden_field(self, v: np.ndarray) -> np.ndarray:
        """``Wᵀv + b`` for a batch of visible rows."""
        return v @ self.W + self.b

    def visible_field(self, h: np.ndarray) -> np.ndarray:
        return h @ self.W.T + self.a

    def mean_from_field(self, x: np.ndarray) -> np.ndarray:
        """``E[unit | field]``: tanh(x) for spins, sigmoid(x) for binary units."""
        return np.tanh(x) if self.units == "spin" else 0.5 * (1.0 + np.tanh(0.5 * x))

    def log_cond(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``log p(s | field x)`` summed over units (last axis), computed without overflow.

        Spins: ``p(s_i|x_i) = σ(2 s_i x_i)``; binary: ``σ((2 s_i − 1) x_i)``.
        """
        z = 2.0 * s * x if self.units == "spin" else (2.0 * s - 1.0) * x
        return -np.logaddexp(0.0, -z).sum(axis=-1)

    def log_partial(self, x: np.ndarray) -> np.ndarray:
        """``log Σ_s exp(s·x)`` summed over units: the log of the summed-out side's partition."""
        if self.units == "spin":
            return np.logaddexp(x, -x).sum(axis=-1)
        return np.logaddexp(0.0, x).sum(axis=-1)

    def log_marginal_visible(self, v: np.ndarray) -> np.ndarray:
        """Unnormalised ``log p(v) = aᵀv + Σ_j log Σ_{h_j} exp(h_j (Wᵀv+b)_j)``."""
        return v @ self.a + self.log_partial(self.hidden_field(v))

    def log_marginal_hidden(self, h: np.ndarray) -> np.ndarray:
        return h @ self.b + self.log_partial(self.visible_field(h))

    def sample_exact(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Exact samples of ``p(v)``: enumerate the smaller side, draw it, then the other given it."""
        if self.n_hidden <= self.n_visible:
            hs = all_states(self.n_hidden, self.units)
            lp = self.log_marginal_hidden(hs)
            p = np.exp(lp - lp.max()); p /= p.sum()
            h = hs[rng.choice(len(hs), size=n_samples, p=p)]
            return self._draw(self.visible_field(h), rng)
        vs = all_states(self.n_visible, self.units)
        lp = self.log_marginal_visible(vs)
        p = np.exp(lp - lp.max()); p /= p.sum()
        return vs[rng.choice(len(vs), size=n_samples, p=p)]

    def _draw(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        on = rng.random(x.shape) < 0.5 * (1.0 + np.tanh(x if self.units == "spin" else 0.5 * x))
        return np.where(on, 1.0, -1.0 if self.units == "spin" else 0.0)
