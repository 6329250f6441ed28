"""asv benchmarks of the blocked-Gibbs core (DESIGN §8): sweep time, fraction of the floor, correctness."""
import numpy as np
import torch

from snrbench.core.sampler import BlockGibbs

from .common import SHAPES, Floor, limit_rate, mnist_like_rbm, sweep_rate

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_SHAPE_NAMES = [f"{C}x{n}x{m}" for C, n, m in SHAPES]


def _shape(name):
    return tuple(int(x) for x in name.split("x"))


class BlockGibbsSweep:
    """C chains, float32 and float64: one ``sweep()`` (the two chain groups one after the other, as
    a recording loop calls it) and ``run(16)`` (the groups on two threads; time per call of 16 sweeps)."""

    params = (_SHAPE_NAMES, list(_DTYPES))
    param_names = ["C x n x m", "dtype"]

    def setup(self, shape, dtype):
        C, n, m = _shape(shape)
        torch.manual_seed(0)
        self.sampler = BlockGibbs(mnist_like_rbm(n, m), C, dtype=_DTYPES[dtype], seed=0)
        self.sampler.run(2)

    def time_sweep(self, shape, dtype):
        self.sampler.sweep()

    def time_run_16(self, shape, dtype):
        self.sampler.run(16)

    def peakmem_run_16(self, shape, dtype):
        self.sampler.run(16)


class FractionOfFloor:
    """``track_``: snrbench's sweeps/s over the floor ``1/(1/a + 1/b)`` measured beside it (a: the two
    matrix products, b: the C·(n+m) uniforms), float32. A drop flags overhead added to the core."""

    params = _SHAPE_NAMES
    param_names = ["C x n x m"]
    unit = "fraction of the limit"
    timeout = 240

    def track_fraction_of_limit(self, shape):
        C, n, m = _shape(shape)
        floor = Floor(C, n, m)
        limit = limit_rate(sweep_rate(floor.matmuls, 1), sweep_rate(floor.uniforms, 1))
        s = BlockGibbs(mnist_like_rbm(n, m), C, seed=0)
        return sweep_rate(lambda: s.run(8), 8) / limit


class SamplerCorrectness:
    """``track_``: float32 chains started from exact samples of an exact-rbm cell against the exact
    solver: the largest |Tr Ĉ(T) − Tr Cov(T)| over T ∈ {1, 4, 16}, in standard errors of Tr Ĉ (≈ 1–3
    when right; a broken draw gives tens)."""

    unit = "standard errors"
    timeout = 240

    def setup(self):
        from snrbench.truth import exact
        from snrbench.families import build_model, load_suite

        cell = next(c for c in load_suite("exact-rbm")[1] if c.label == "n10m4-b1-bias-s0")
        self.rbm = build_model(cell)
        self.exact = exact.solve(self.rbm).trace_cov(np.array([1, 4, 16]))

    def track_max_trace_cov_error_se(self):
        R = 4096
        v0 = self.rbm.sample_exact(R, np.random.default_rng(0))
        means = BlockGibbs(self.rbm, R, seed=1, v0=v0).window_means([1, 4, 16])
        worst = 0.0
        for t, ex in zip((1, 4, 16), self.exact):
            x = means[t].double().numpy()
            dev2 = ((x - x.mean(0)) ** 2).sum(1) * R / (R - 1)
            worst = max(worst, abs(dev2.mean() - ex) / (dev2.std(ddof=1) / np.sqrt(R)))
        return float(worst)
