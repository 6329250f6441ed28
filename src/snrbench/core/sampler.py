"""Sampler cores, vectorised over many chains in torch (CPU, or CUDA when asked).

* :class:`BlockGibbs` (RBM families): one sweep draws ``h ~ p(h|v)`` then ``v ~ p(v|h)``.
* :class:`RandomScanGibbs` (Ising family): one sweep is N single-site updates, each chain picking
  its own site uniformly at random and redrawing it from ``p(x_i | x_{−i})``.

Both expose the same interface: ``v`` (the current visible states, ``(n_chains, n)``),
:meth:`sweep`, :meth:`run`, :meth:`observables` (the gradient observables f of the current state),
:meth:`basis_features` (the features whose products span the slow eigenfunctions, for Galerkin
estimates) and :meth:`window_means`. This module imports no file-format or plotting code.

The blocked-Gibbs core (DESIGN §8). A sweep costs two matrix products plus ``C·(n+m)`` uniforms; the
rest is two in-place element-wise passes per layer, with no tensor allocated per sweep:

* States are 0/1 *on*-indicators in preallocated buffers ``[x | 1]``, ``[y | 1]`` whatever the
  units; one ``mm`` with ``[αW; c]`` gives the log-odds with the bias. For ±1 spins ``s = 2x − 1``
  is folded in: the log-odds of ``h_j = +1`` are ``2(sW + b)_j = 4(xW)_j + 2(b − 1ᵀW)_j``.
* A unit is switched on when ``u < σ(log-odds)``, ``u ~ U[0, 1)``: ``sigmoid_`` in place, then
  ``torch.lt(u, p, out=x)`` writes the new 0/1 state directly (no ``torch.bernoulli``).
* Uniforms are drawn in blocks of sweeps (one call per block). torch's CPU generator is serial, so
  on the CPU the chains are split into two groups with their own generators, swept concurrently on
  two threads by :meth:`BlockGibbs.run`; the split depends only on ``n_chains`` and the device, so
  the chains do not depend on the thread count and ``run(n)`` equals ``n`` calls of ``sweep()``.
* ``p(h = on | v)`` of the current state is kept once computed, so recording ``E[h|v]``-based
  observables and then sweeping costs one product for the hidden layer, not two.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .ising import IsingModel
from .model import RBM

__all__ = ["BlockGibbs", "RandomScanGibbs", "make_sampler"]

#: Uniforms drawn per block call are capped at about this many numbers.
_UNIFORM_BLOCK = 1 << 18
#: CPU chain groups (own generator each, swept concurrently by :meth:`BlockGibbs.run`).
_GROUPS = 2


class _ChainSampler:
    """Shared state handling: chains, device, dtype, own ``torch.Generator``, sweep counter."""

    model_type: type = object

    def __init__(self, model, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0):
        if not isinstance(model, self.model_type):
            raise TypeError(f"{type(self).__name__} needs an snrbench.{self.model_type.__name__}, "
                            f"got {type(model).__name__}")
        if int(n_chains) < 1:
            raise ValueError(f"n_chains must be ≥ 1, got {n_chains}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.model = model
        self.n_chains = int(n_chains)
        self.device = torch.device(device)
        self.dtype = dtype
        self.spin = model.units == "spin"
        self.gen = torch.Generator(device=self.device).manual_seed(int(seed))
        self.n_sweeps = 0

    def _tensor(self, x) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.detach().to(device=self.device, dtype=self.dtype)
        return torch.tensor(np.asarray(x), device=self.device, dtype=self.dtype)

    def _check_state(self, v) -> torch.Tensor:
        v = self._tensor(v)
        if v.shape != (self.n_chains, self.model.n_visible):
            raise ValueError(f"state must have shape {(self.n_chains, self.model.n_visible)}, got {tuple(v.shape)}")
        allowed = (-1.0, 1.0) if self.spin else (0.0, 1.0)
        if not bool(((v == allowed[0]) | (v == allowed[1])).all()):
            raise ValueError(f"{self.model.units} states must have entries in {allowed}")
        return v

    def _uniform_state(self) -> torch.Tensor:
        u = torch.rand(self.n_chains, self.model.n_visible, generator=self.gen, device=self.device, dtype=self.dtype)
        on = (u < 0.5).to(self.dtype)
        return 2.0 * on - 1.0 if self.spin else on

    def run(self, n_sweeps: int) -> None:
        """Advance all chains ``n_sweeps`` sweeps in place (returns nothing)."""
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
            acc = f if acc is None else acc.add_(f)
            if t in T_list:
                out[t] = acc / t
        return out


class _ChainGroup:
    """Rows ``[lo, hi)`` of a :class:`BlockGibbs`: their own generator and uniform blocks.

    The state lives in the owner's augmented buffers ``[x | 1]`` and ``[y | 1]``, so one product
    with ``[αW; c]`` gives the log-odds including the bias. A group's sweeps touch only its rows.
    """

    def __init__(self, owner: "BlockGibbs", lo: int, hi: int, seed: int):
        C, n, m = hi - lo, owner.rbm.n_visible, owner.rbm.n_hidden
        self.x, self.y = owner._xa[lo:hi], owner._ya[lo:hi]
        self.xs, self.ys = self.x[:, :n], self.y[:, :m]
        self.ph, self.pv = owner._ph[lo:hi], owner._pv[lo:hi]
        self.gen = torch.Generator(device=owner.device).manual_seed(int(seed))
        self.block = max(1, min(64, _UNIFORM_BLOCK // (C * (n + m))))
        self.u = torch.empty(self.block, C * (n + m), device=owner.device, dtype=owner.dtype)
        self.views = [(row[: C * m].view(C, m), row[C * m:].view(C, n)) for row in self.u]
        self.next = self.block

    def sweeps(self, n_sweeps: int, Wh: torch.Tensor, Wv: torch.Tensor, ph_current: bool) -> None:
        for _ in range(n_sweeps):
            if self.next == self.block:
                self.u.uniform_(generator=self.gen)
                self.next = 0
            uh, uv = self.views[self.next]
            if not ph_current:
                torch.mm(self.x, Wh, out=self.ph).sigmoid_()
            torch.lt(uh, self.ph, out=self.ys)
            torch.mm(self.y, Wv, out=self.pv).sigmoid_()
            torch.lt(uv, self.pv, out=self.xs)
            self.next += 1
            ph_current = False


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_GROUPS, thread_name_prefix="snrbench-gibbs")
    return _POOL


def _forget_pool() -> None:  # a forked child has none of the parent's threads
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


class BlockGibbs(_ChainSampler):
    """Blocked Gibbs sampler for ``n_chains`` independent chains of an :class:`~snrbench.RBM`.

    Parameters: ``rbm``, ``n_chains``, ``device="cpu"``, ``dtype=torch.float32`` (float64 on
    request), ``seed=0`` (seeds the sampler's own generators; the global torch RNG is never touched),
    ``v0`` (initial visible states in the model's units, default uniform random units).
    :meth:`run` advances every chain in place and returns nothing; ``v`` reads the states.

    On the CPU, ``n_chains ≥ 128`` are split into two halves with their own generators, and
    :meth:`run` sweeps the halves concurrently, one thread each (torch's CPU generator is serial,
    so this draws the uniforms on both cores); the intra-op thread count is split between them for
    the duration of the call. The split depends on ``n_chains`` and the device only, so the chains
    are the same whatever the number of threads, and ``run(n)`` equals ``n`` calls of :meth:`sweep`.
    """

    model_type = RBM

    def __init__(self, rbm: RBM, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0, v0=None):
        super().__init__(rbm, n_chains, device, dtype, seed)
        self.rbm = rbm
        self.W = self._tensor(rbm.W)
        self._Wh, self._Wv = self._product_weights(rbm)
        C, n, m = self.n_chains, rbm.n_visible, rbm.n_hidden
        kw = dict(device=self.device, dtype=dtype)
        self._xa = torch.ones(C, n + 1, **kw)  # [visible on-indicators (the state) | 1]
        self._ya = torch.ones(C, m + 1, **kw)  # [hidden on-indicators | 1]
        self._ph = torch.empty(C, m, **kw)  # p(h on | v) of the current state, once computed
        self._pv = torch.empty(C, n, **kw)
        self._ph_current = False
        parts = _GROUPS if (self.device.type == "cpu" and C >= 64 * _GROUPS) else 1
        bounds = np.linspace(0, C, parts + 1).astype(int)
        seeds = np.random.SeedSequence(int(seed)).generate_state(parts + 1)
        self.gen = torch.Generator(device=self.device).manual_seed(int(seeds[-1]))  # the initial state
        self._groups = [_ChainGroup(self, lo, hi, s) for lo, hi, s in zip(bounds[:-1], bounds[1:], seeds)]
        self.set_state(self._uniform_state() if v0 is None else v0)

    def _product_weights(self, rbm: RBM) -> tuple[torch.Tensor, torch.Tensor]:
        """``[αW; c_h]`` and ``[αWᵀ; c_v]``: log-odds of "on" = ``[x | 1] @ that``, x the 0/1 indicators
        of the other layer (spins: α = 4, c_h = 2(b − 1ᵀW), c_v = 2(a − W1); binary: α = 1, c = bias)."""
        W, a, b = (self._tensor(x) for x in (rbm.W, rbm.a, rbm.b))
        if self.spin:
            alpha, c_h, c_v = 4.0, 2.0 * (b - W.sum(0)), 2.0 * (a - W.sum(1))
        else:
            alpha, c_h, c_v = 1.0, b, a
        return torch.cat([alpha * W, c_h[None, :]]).contiguous(), torch.cat([alpha * W.T, c_v[None, :]]).contiguous()

    def set_model(self, rbm: RBM) -> None:
        """Sample ``rbm`` from now on (same shape and units), keeping the chains' states: the product
        weights are rebuilt from ``rbm`` in place (training updates the model every step)."""
        if rbm.units != self.rbm.units or rbm.W.shape != self.rbm.W.shape:
            raise ValueError(f"set_model: expected a {self.rbm.units} RBM of shape {self.rbm.W.shape}, "
                             f"got {rbm.units} {rbm.W.shape}")
        Wh, Wv = self._product_weights(rbm)
        self._Wh.copy_(Wh)
        self._Wv.copy_(Wv)
        self.rbm, self.model, self.W = rbm, rbm, self._tensor(rbm.W)
        self._ph_current = False

    def kernel_mismatch(self, rbm: RBM) -> float:
        """Largest ``|Δ|`` between the product weights this kernel multiplies by and those of ``rbm``.

        0 when the kernel samples ``rbm`` (in the sampler's dtype); the guard against kernels built
        from stale weights compares it with a tolerance. A shape or units mismatch gives ``inf``.
        """
        if rbm.units != self.rbm.units or rbm.W.shape != self.rbm.W.shape:
            return float("inf")
        Wh, Wv = self._product_weights(rbm)
        return float(max((self._Wh - Wh).abs().max(), (self._Wv - Wv).abs().max()))

    @property
    def v(self) -> torch.Tensor:
        """Current visible states in the model's units, ``(n_chains, n)`` (a new tensor)."""
        x = self._xa[:, : self.rbm.n_visible]
        return 2.0 * x - 1.0 if self.spin else x.clone()

    def set_state(self, v) -> None:
        """Set every chain's visible state (entries in the model's units)."""
        v = self._check_state(v)
        self._xa[:, : self.rbm.n_visible] = (v + 1.0) / 2.0 if self.spin else v
        self._ph_current = False

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything :meth:`run` depends on beyond the model, as numpy arrays: the visible states (0/1
        indicators, bit-packed per chain), each chain group's generator state, its block of uniforms
        drawn ahead and how far it has used them, and the sweep count. (The generator that drew the
        initial states is not used again, and ``p(h|v)`` is recomputed from the states.)
        :meth:`load_state_dict` on a sampler built with the same model, chain count, device and dtype
        goes on bit for bit (a tempering run resumed inside a cell)."""
        x = self._xa[:, : self.rbm.n_visible].cpu().numpy()
        out = dict(x=np.packbits(x > 0.5, axis=1), n_sweeps=np.array(self.n_sweeps))
        for i, g in enumerate(self._groups):
            out.update({f"g{i}_gen": g.gen.get_state().numpy().copy(), f"g{i}_u": g.u.cpu().numpy().copy(),
                        f"g{i}_next": np.array(g.next)})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Take back what :meth:`state_dict` gave. ValueError naming the key when one is missing or has
        another shape or dtype, or when a group's position in its uniforms lies outside its block."""
        for k, want in self.state_dict().items():
            got = state.get(k)
            if got is None or np.shape(got) != want.shape or np.asarray(got).dtype != want.dtype:
                raise ValueError(f"BlockGibbs state: key {k!r} expected {want.dtype} of shape {want.shape}, got "
                                 f"{'nothing' if got is None else f'{np.asarray(got).dtype} of shape {np.shape(got)}'}")
        for i, g in enumerate(self._groups):
            if not 0 <= int(state[f"g{i}_next"]) <= g.block:
                raise ValueError(f"BlockGibbs state: key 'g{i}_next' must lie in [0, {g.block}], got {int(state[f'g{i}_next'])}")
        x = np.unpackbits(np.asarray(state["x"]), axis=1)[:, : self.rbm.n_visible]
        self._xa[:, : self.rbm.n_visible] = torch.as_tensor(x, device=self.device, dtype=self.dtype)
        for i, g in enumerate(self._groups):
            g.gen.set_state(torch.as_tensor(np.asarray(state[f"g{i}_gen"])))
            g.u.copy_(torch.as_tensor(np.asarray(state[f"g{i}_u"]), device=self.device))
            g.next = int(state[f"g{i}_next"])
        self.n_sweeps = int(state["n_sweeps"])
        self._ph_current = False

    def exchange(self, other: "BlockGibbs", mask: torch.Tensor) -> None:
        """Swap the visible states of the chains selected by the boolean ``mask`` ``(n_chains,)`` with
        those of the same chains of ``other`` (a sampler of the same shape and units), in place. Both
        states are valid already, so nothing is re-checked: the replica-exchange move of tempering."""
        if other.rbm.units != self.rbm.units or other._xa.shape != self._xa.shape:
            raise ValueError("exchange: the samplers differ in units or shape")
        if mask.dtype != torch.bool or tuple(mask.shape) != (self.n_chains,):
            raise ValueError(f"exchange: mask must be a bool tensor of shape ({self.n_chains},), "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        n = self.rbm.n_visible
        rows = mask.nonzero().squeeze(1)
        mine = self._xa[rows, :n]
        self._xa[rows, :n] = other._xa[rows, :n]
        other._xa[rows, :n] = mine
        self._ph_current = other._ph_current = False

    def _hidden_prob(self) -> torch.Tensor:
        """``p(h_j on | v)`` of the current state, into the preallocated buffer (once per state)."""
        if not self._ph_current:
            torch.mm(self._xa, self._Wh, out=self._ph).sigmoid_()
            self._ph_current = True
        return self._ph

    def run(self, n_sweeps: int) -> None:
        """Advance all chains ``n_sweeps`` sweeps in place (returns nothing)."""
        n = int(n_sweeps)
        if n <= 0:
            return
        args = (n, self._Wh, self._Wv, self._ph_current)
        threads = torch.get_num_threads()
        if len(self._groups) > 1 and n > 1 and threads > 1:
            per = max(1, threads // len(self._groups))

            def work(group):
                torch.set_num_threads(per)
                group.sweeps(*args)

            try:
                torch.set_num_threads(per)
                list(_pool().map(work, self._groups))
            finally:
                torch.set_num_threads(threads)
        else:
            for group in self._groups:
                group.sweeps(*args)
        self._ph_current = False
        self.n_sweeps += n

    def sweep(self) -> None:
        """One blocked-Gibbs sweep of every chain, in place."""
        self.run(1)

    def hidden_field(self) -> torch.Tensor:
        """``vW + b`` of the current state, ``(n_chains, m)``."""
        return self.v @ self.W + self._tensor(self.rbm.b)

    def basis_features(self) -> torch.Tensor:
        """``E[h|v]`` per chain, ``(n_chains, m)``: ``p`` for binary units, ``2p − 1`` for spins."""
        p = self._hidden_prob()
        return 2.0 * p - 1.0 if self.spin else p.clone()

    def observables(self, which: str = "weights") -> torch.Tensor:
        """``f_ij(v) = v_i E[h_j|v]`` (row-major), then ``v`` and ``E[h|v]`` for ``"weights+biases"``."""
        v, mh = self.v, self.basis_features()
        f = (v[:, :, None] * mh[:, None, :]).reshape(self.n_chains, -1)
        return torch.cat([f, v, mh], dim=1) if which == "weights+biases" else f

    def mean_observables(self, which: str = "weights") -> torch.Tensor:
        """Chain average of :meth:`observables` as a product of sums: ``(1/C) vᵀ E[h|v]``, ``(n_obs,)``.

        One ``(n × C)·(C × m)`` product; no per-chain ``n × m`` outer products are formed.
        """
        v, mh = self.v, self.basis_features()
        f = (v.T @ mh).reshape(-1) / self.n_chains
        return torch.cat([f, v.mean(0), mh.mean(0)]) if which == "weights+biases" else f


class RandomScanGibbs(_ChainSampler):
    """Random-scan single-site Gibbs for ``n_chains`` chains of an :class:`~snrbench.core.ising.IsingModel`.

    One sweep = N updates; in each update every chain picks its own site i uniformly and sets
    ``x_i = +1`` with probability ``σ(2F_i)``, ``F_i = Σ_j J_ij x_j + h_i``. Same parameters as
    :class:`BlockGibbs`.
    """

    model_type = IsingModel

    def __init__(self, model: IsingModel, n_chains: int, device="cpu", dtype=torch.float32, seed: int = 0,
                 v0=None):
        super().__init__(model, n_chains, device, dtype, seed)
        self.v = self._uniform_state() if v0 is None else self._check_state(v0).clone()
        self.J, self.h = self._tensor(model.J), self._tensor(model.h)
        self._rows = torch.arange(self.n_chains, device=self.device)
        self._one = torch.ones((), device=self.device, dtype=self.dtype)

    def set_state(self, v) -> None:
        """Set every chain's spins (±1)."""
        self.v = self._check_state(v).clone()

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
