"""Sampler core: vectorised blocked Gibbs over many chains in torch (CPU, or CUDA when asked).

One sweep draws ``h ~ p(h|v)`` then ``v ~ p(v|h)`` for every chain at once. Units are drawn by
comparing a uniform with the conditional probability (``σ(2x)`` for spins, ``σ(x)`` for binary).
This module imports no file-format or plotting code.
"""
from __future__ import annotations

import numpy as np
import torch

from .model import RBM

__all__ = ["BlockGibbs"]


class BlockGibbs:
    """Blocked Gibbs sampler for ``n_chains`` independent chains of ``rbm``.

    Parameters
    ----------
    rbm : RBM
    n_chains : int
    device : str, default "cpu"
    dtype : torch.dtype, default torch.float32 (float64 on request)
    seed : int, default 0
        Seeds the sampler's own ``torch.Generator`` (the global torch RNG is never touched).
    v0 : array (n_chains, n), optional
        Initial visible states; default uniform random units.
    """

    def __init__(self, rbm: RBM, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0, v0=None):
        if not isinstance(rbm, RBM):
            raise TypeError(f"BlockGibbs needs an snrbench.RBM, got {type(rbm).__name__}")
        if int(n_chains) < 1:
            raise ValueError(f"n_chains must be ≥ 1, got {n_chains}")
        self.rbm = rbm
        self.n_chains = int(n_chains)
        self.device = torch.device(device)
        self.dtype = dtype
        self.spin = rbm.units == "spin"
        self.gen = torch.Generator(device=self.device).manual_seed(int(seed))
        t = dict(device=self.device, dtype=dtype)
        self.W = torch.tensor(np.array(rbm.W), **t)
        self.a = torch.tensor(np.array(rbm.a), **t)
        self.b = torch.tensor(np.array(rbm.b), **t)
        self.n_sweeps = 0
        if v0 is None:
            u = torch.rand(self.n_chains, rbm.n_visible, generator=self.gen, **t)
            self.v = self._units(u < 0.5)
        else:
            self.set_state(v0)

    def _units(self, on: torch.Tensor) -> torch.Tensor:
        x = on.to(self.dtype)
        return 2.0 * x - 1.0 if self.spin else x

    def _draw(self, field: torch.Tensor) -> torch.Tensor:
        u = torch.rand(field.shape, generator=self.gen, device=self.device, dtype=self.dtype)
        prob = torch.sigmoid(2.0 * field if self.spin else field)
        return self._units(u < prob)

    def set_state(self, v) -> None:
        v = torch.tensor(np.array(v), device=self.device, dtype=self.dtype)
        if v.shape != (self.n_chains, self.rbm.n_visible):
            raise ValueError(f"state must have shape {(self.n_chains, self.rbm.n_visible)}, got {tuple(v.shape)}")
        self.v = v.clone()

    def hidden_field(self) -> torch.Tensor:
        return self.v @ self.W + self.b

    def sweep(self, hidden_field: torch.Tensor | None = None) -> None:
        """One blocked-Gibbs sweep of every chain (``hidden_field``: ``vW + b`` if already computed)."""
        h = self._draw(self.hidden_field() if hidden_field is None else hidden_field)
        self.v = self._draw(h @ self.W.T + self.a)
        self.n_sweeps += 1

    def run(self, n_sweeps: int) -> None:
        """Advance all chains ``n_sweeps`` sweeps in place."""
        for _ in range(int(n_sweeps)):
            self.sweep()

    def weight_observables(self, hidden_field: torch.Tensor | None = None) -> torch.Tensor:
        """``f_ij(v) = v_i E[h_j|v]`` for every chain, shape ``(n_chains, n·m)``."""
        x = self.hidden_field() if hidden_field is None else hidden_field
        mh = torch.tanh(x) if self.spin else torch.sigmoid(x)
        return (self.v[:, :, None] * mh[:, None, :]).reshape(self.n_chains, -1)

    def window_means(self, T_list) -> dict[int, torch.Tensor]:
        """Per-chain means of the weight observables over the next ``T`` states, for each T.

        Records ``f(v_1), …, f(v_T)`` after each sweep (running sums read at each T in one pass),
        returning ``{T: (n_chains, n·m) tensor}``; the chains advance ``max(T_list)`` sweeps.
        """
        T_list = sorted({int(T) for T in T_list})
        if T_list[0] < 1:
            raise ValueError("window lengths must be ≥ 1")
        acc = torch.zeros(self.n_chains, self.rbm.n_visible * self.rbm.n_hidden, device=self.device, dtype=self.dtype)
        out = {}
        x = self.hidden_field()
        for t in range(1, T_list[-1] + 1):
            self.sweep(x)
            x = self.hidden_field()  # used by the observables now and by the next sweep's h-draw
            acc += self.weight_observables(x)
            if t in T_list:
                out[t] = acc / t
        return out
