"""The ``exact-rbm`` family (``tasks/exact-rbm.toml``): small spin RBMs with one Mattis mode plus
Gaussian disorder, ``W = (β/√n)(ξηᵀ + disorder·G)``, ``ξ, η ∈ {±1}``, ``G`` standard normal; biased
cells add ``a, b ~ N(0, bias_std²)``. Data: ``n_samples`` exact samples of a teacher of the same
recipe built with seed ``seed + teacher_seed_offset``. Exact ground truth on ``2^0 … 2^16`` sweeps.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.model import RBM
from ._exact import ExactFamily
from .base import TaskSpecError, need

__all__ = ["ExactRBM", "FAMILIES"]


class ExactRBM(ExactFamily):
    name = "exact-rbm"
    recipes = ("mattis+disorder",)

    def expand(self, doc: dict, where: str) -> list[dict]:
        common, grid, model, data = self.common(doc, where)
        shapes = self.shapes(grid, where)
        betas, seeds = self.betas_seeds(grid, where)
        offset = need(data, "teacher_seed_offset", int, f"{where} [data]")
        syms = need(grid, "symmetries", list, f"{where} [grid]")
        if not syms or any(s not in ("symmetric", "biased") for s in syms):
            raise TaskSpecError(f"{where} [grid]: 'symmetries' entries must be 'symmetric' or 'biased', got {syms!r}")
        disorder = float(need(model, "disorder", (int, float), f"{where} [model]"))
        bias_std = float(need(model, "bias_std", (int, float), f"{where} [model]"))
        return [dict(common, n_visible=n, n_hidden=m, beta=float(beta), symmetric=sym == "symmetric", seed=seed,
                     disorder=disorder, bias_std=bias_std, teacher_seed=seed + offset)
                for (n, m), beta, sym, seed in itertools.product(shapes, betas, syms, seeds)]

    def label(self, s: dict) -> str:
        kind = "sym" if s["symmetric"] else "bias"
        return f"n{s['n_visible']}m{s['n_hidden']}-b{s['beta']:g}-{kind}-s{s['seed']}"

    def recipe(self, spec: dict, seed: int, teacher: bool = False) -> tuple[RBM, np.random.Generator]:
        """``W = (β/√n)(ξηᵀ + disorder·G)``; biased: ``a, b ~ N(0, bias_std²)``; all drawn from ``seed``."""
        n, m, beta = spec["n_visible"], spec["n_hidden"], spec["beta"]
        rng = np.random.default_rng(seed)
        xi = 2.0 * rng.integers(0, 2, n) - 1.0
        eta = 2.0 * rng.integers(0, 2, m) - 1.0
        G = rng.standard_normal((n, m))
        W = (beta / np.sqrt(n)) * (np.outer(xi, eta) + spec["disorder"] * G)
        a = b = None
        if not spec["symmetric"]:
            a = spec["bias_std"] * rng.standard_normal(n)
            b = spec["bias_std"] * rng.standard_normal(m)
        return RBM(W, a, b, spec["units"]), rng


FAMILIES = [ExactRBM()]
