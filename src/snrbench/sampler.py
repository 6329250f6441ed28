"""Sampler cores, vectorised over many chains in torch (CPU, or CUDA when asked).

* :class:`BlockGibbs` (RBM families): one sweep draws ``h ~ p(h|v)`` then ``v ~ p(v|h)``.
* :class:`RandomScanGibbs` (Ising family): one sweep is N single-site updates, each chain picking
  its own site uniformly at random and redrawing it from ``p(x_i | x_{−i})``.

Units are drawn by comparing a uniform with the conditional probability (``σ(2x)`` for spins,
``σ(x)`` for binary). Both expose the same interface: ``v`` (the recorded state, ``(n_chains, n)``),
:meth:`sweep`, :meth:`run`, :meth:`observables` (the gradient observables f of the current state),
:meth:`basis_features` (the features whose products span the slow eigenfunctions, for Galerkin
estimates) and :meth:`window_means`. This module imports no file-format or plotting code.
"""
from __future__ import annotations

import numpy as np
import torch

from .ising import IsingModel
from .model import RBM

__all__ = ["BlockGibbs", "RandomScanGibbs", "make_sampler"]


class _ChainSampler:
    """Shared state handling: chains, device, dtype, own ``torch.Generator``, sweep counter."""

    model_type: type = object

    def __init__(self, model, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0, v0=None):
        if not isinstance(model, self.model_type):
            raise TypeError(f"{type(self).__name__} needs an snrbench.{self.model_type.__name__}, "
                            f"got {type(model).__name__}")
        if int(n_chains) < 1:
            raise ValueError(f"n_chains must be ≥ 1, got {n_chains}")
        self.model = model
        self.n_chains = int(n_chains)
        self.device = torch.device(device)
        self.dtype = dtype
        self.spin = model.units == "spin"
        self.gen = torch.Generator(device=self.device).manual_seed(int(seed))
        self.n_sweeps = 0
        if v0 is None:
            u = torch.rand(self.n_chains, model.n_visible, generator=self.gen, device=self.device, dtype=dtype)
            self.v = self._units(u < 0.5)
        else:
            self.set_state(v0)

    def _tensor(self, x) -> torch.Tensor:
        return torch.tensor(np.array(x), device=self.device, dtype=self.dtype)

    def _units(self, on: torch.Tensor) -> torch.Tensor:
        x = on.to(self.dtype)
        return 2.0 * x - 1.0 if self.spin else x

    def set_state(self, v) -> None:
        v = self._tensor(v)
        if v.shape != (self.n_chains, self.model.n_visible):
            raise ValueError(f"state must have shape {(self.n_chains, self.model.n_visible)}, got {tuple(v.shape)}")
        self.v = v.clone()

    def run(self, n_sweeps: int) -> None:
        """Advance all chains ``n_sweeps`` sweeps in place."""
        for _ in range(int(n_sweeps)):
            self.sweep()

    def window_means(self, T_list, which: str | None = None) -> dict[int, torch.Tensor]:
        """Per-chain means of the gradient observables over the next ``T`` states, for each T.

        Records ``f(v_1), …, f(v_T)`` after each sweep (running sums read at each T in one pass),
        returning ``{T: (n_chains, n_obs) tensor}``; the chains advance ``max(T_list)`` sweeps.
        """
        T_list = sorted({int(T) for T in T_list})
        if T_list[0] < 1:
            raise ValueError("window lengths must be ≥ 1")
        acc, out = None, {}
        for t in range(1, T_list[-1] + 1):
            self.sweep()
            f = self.observables() if which is None else self.observables(which)
            acc = f.clone() if acc is None else acc.add_(f)
            if t in T_list:
                out[t] = acc / t
        return out


class BlockGibbs(_ChainSampler):
    """Blocked Gibbs sampler for ``n_chains`` independent chains of an :class:`~snrbench.RBM`.

    Parameters: ``rbm``, ``n_chains``, ``device="cpu"``, ``dtype=torch.float32`` (float64 on
    request), ``seed=0`` (seeds the sampler's own generator; the global torch RNG is never touched),
    ``v0`` (initial visible states, default uniform random units).
    """

    model_type = RBM

    def __init__(self, rbm: RBM, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0, v0=None):
        self._field = None
        super().__init__(rbm, n_chains, device, dtype, seed, v0)
        self.rbm = rbm
        self.W, self.a, self.b = (self._tensor(x) for x in (rbm.W, rbm.a, rbm.b))

    def set_state(self, v) -> None:
        super().set_state(v)
        self._field = None

    def _draw(self, field: torch.Tensor) -> torch.Tensor:
        u = torch.rand(field.shape, generator=self.gen, device=self.device, dtype=self.dtype)
        prob = torch.sigmoid(2.0 * field if self.spin else field)
        return self._units(u < prob)

    def hidden_field(self) -> torch.Tensor:
        """``vW + b`` of the current state (computed once per state)."""
        if self._field is None:
            self._field = self.v @ self.W + self.b
        return self._field

    def sweep(self) -> None:
        """One blocked-Gibbs sweep of every chain."""
        h = self._draw(self.hidden_field())
        self.v = self._draw(h @ self.W.T + self.a)
        self._field = None
        self.n_sweeps += 1

    def basis_features(self) -> torch.Tensor:
        """``E[h|v]`` per chain, ``(n_chains, m)``."""
        x = self.hidden_field()
        return torch.tanh(x) if self.spin else torch.sigmoid(x)

    def observables(self, which: str = "weights") -> torch.Tensor:
        """``f_ij(v) = v_i E[h_j|v]`` (row-major), then ``v`` and ``E[h|v]`` for ``"weights+biases"``."""
        mh = self.basis_features()
        f = (self.v[:, :, None] * mh[:, None, :]).reshape(self.n_chains, -1)
        return torch.cat([f, self.v, mh], dim=1) if which == "weights+biases" else f


class RandomScanGibbs(_ChainSampler):
    """Random-scan single-site Gibbs for ``n_chains`` chains of an :class:`~snrbench.ising.IsingModel`.

    One sweep = N updates; in each update every chain picks its own site i uniformly and sets
    ``x_i = +1`` with probability ``σ(2F_i)``, ``F_i = Σ_j J_ij x_j + h_i``. Same parameters as
    :class:`BlockGibbs`.
    """

    model_type = IsingModel

    def __init__(self, model: IsingModel, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0,
                 v0=None):
        super().__init__(model, n_chains, device, dtype, seed, v0)
        self.J, self.h = self._tensor(model.J), self._tensor(model.h)
        self._rows = torch.arange(self.n_chains, device=self.device)
        self._one = torch.ones((), device=self.device, dtype=self.dtype)

    def sweep(self) -> None:
        N = self.model.n_spins
        sites = torch.randint(0, N, (N, self.n_chains), generator=self.gen, device=self.device)
        u = torch.rand(N, self.n_chains, generator=self.gen, device=self.device, dtype=self.dtype)
        # u < σ(2F) ⟺ F > ½ logit(u): one transform per sweep instead of a sigmoid per update
        thresh = 0.5 * torch.logit(u) - self.h[sites]
        v = self.v
        for k in range(N):
            i = sites[k]
            up = (self.J[i] * v).sum(dim=1) > thresh[k]
            v[self._rows, i] = torch.where(up, self._one, -self._one)
        self.n_sweeps += 1

    def basis_features(self) -> torch.Tensor:
        """The spins themselves, ``(n_chains, N)``."""
        return self.v

    def observables(self, which: str = "pairs") -> torch.Tensor:
        """``f_ij = x_i x_j`` for i < j, ``(n_chains, N(N−1)/2)``."""
        i, j = torch.triu_indices(self.model.n_spins, self.model.n_spins, offset=1, device=self.device)
        return self.v[:, i] * self.v[:, j]


def make_sampler(model, n_chains: int, **kw) -> _ChainSampler:
    """The family's sampler for ``model``: :class:`BlockGibbs` or :class:`RandomScanGibbs`."""
    return (RandomScanGibbs if isinstance(model, IsingModel) else BlockGibbs)(model, n_chains, **kw)
