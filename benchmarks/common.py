"""Shared pieces of the benchmark suite: fixed-seed models, the sweep-rate timer, the per-sweep floor.

The floor of a blocked-Gibbs sweep on ``C`` chains of an ``n × m`` RBM is its two matrix products
plus ``C·(n + m)`` uniforms. Rates are sweeps per second; the limit combines the two measured rates
as ``1 / (1/a + 1/b)`` (the time of both, done one after the other).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from snrbench.core.model import RBM

#: (C, n, m): two MNIST shapes and a tiny one (DESIGN §8).
SHAPES = [(1024, 784, 256), (256, 784, 64), (4096, 12, 6)]


def mnist_like_rbm(n: int, m: int, seed: int = 0, units: str = "binary") -> RBM:
    """A fixed-seed binary RBM: ``W ~ N(0, 0.1²)``, biases ``N(0, 0.5²)`` (speed does not depend on them)."""
    rng = np.random.default_rng(seed)
    return RBM(0.1 * rng.standard_normal((n, m)), 0.5 * rng.standard_normal(n), 0.5 * rng.standard_normal(m), units)


def sweep_rate(step, sweeps_per_call: int, min_time: float = 0.3, repeat: int = 5) -> float:
    """Sweeps per second of ``step()`` (which advances ``sweeps_per_call`` sweeps): best of ``repeat``
    timings, each of enough calls to last ``min_time`` seconds (after one warm-up call)."""
    step()
    t0 = time.perf_counter()
    step()
    once = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, int(np.ceil(min_time / once)))
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return calls * sweeps_per_call / best


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Floor:
    """The two parts of the per-sweep floor at one shape, as steps for :func:`sweep_rate`.

    ``matmuls``: ``x W`` then ``y Wᵀ`` into preallocated outputs (``(C, n)·(n, m)`` and
    ``(C, m)·(m, n)``). ``uniforms``: ``C·(n + m)`` uniforms into a preallocated buffer (one
    generator, as the floor is defined); ``uniforms_two_threads``: the same split over two generators
    and two threads, which is how :class:`~snrbench.core.sampler.BlockGibbs` draws them on the CPU.
    """

    def __init__(self, C: int, n: int, m: int, device="cpu", dtype=torch.float32, seed: int = 0):
        kw = dict(device=device, dtype=dtype)
        g = torch.Generator(device=device).manual_seed(seed)
        self.gen = g
        self.W = torch.randn(n, m, generator=g, **kw)
        self.x = (torch.rand(C, n, generator=g, **kw) < 0.5).to(dtype)
        self.y = (torch.rand(C, m, generator=g, **kw) < 0.5).to(dtype)
        self.out_h, self.out_v = torch.empty(C, m, **kw), torch.empty(C, n, **kw)
        self.u = torch.empty(C, n + m, **kw)
        self._halves = self.u.view(-1).chunk(2)
        self._gens = [torch.Generator(device=device).manual_seed(seed + 1 + k) for k in range(2)]
        self._pool = ThreadPoolExecutor(2)

    def matmuls(self) -> None:
        torch.mm(self.x, self.W, out=self.out_h)
        torch.mm(self.y, self.W.T, out=self.out_v)

    def uniforms(self) -> None:
        self.u.uniform_(generator=self.gen)

    def uniforms_two_threads(self) -> None:
        """The same uniforms from two generators on two threads (torch's CPU generator is serial)."""
        list(self._pool.map(lambda k: self._halves[k].uniform_(generator=self._gens[k]), range(2)))


def limit_rate(a: float, b: float) -> float:
    """``1 / (1/a + 1/b)``: sweeps/s if a sweep cost exactly the products (rate a) plus the uniforms (rate b)."""
    return 1.0 / (1.0 / a + 1.0 / b)
