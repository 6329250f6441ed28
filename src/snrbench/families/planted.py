"""The ``planted`` family (``tasks/planted.toml``): spin RBMs with M planted patterns,
``W = (β/√n)(Σ_{μ≤M} ξ^μ η^μᵀ + noise·G)``, ``a = b = 0``, plus a ferromagnetic control
(``ξ = η = all +1``) per shape and β. A second pattern makes slow *even* modes (switching between
patterns) that the gradient observables see. Exact ground truth on ``2^0 … 2^16`` sweeps.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.model import RBM
from ._exact import ExactFamily
from .base import TaskSpecError, need

__all__ = ["Planted", "FAMILIES"]


class Planted(ExactFamily):
    name = "planted"
    recipes = ("planted",)

    def expand(self, doc: dict, where: str) -> list[dict]:
        common, grid, model, data = self.common(doc, where)
        shapes = self.shapes(grid, where)
        betas, seeds = self.betas_seeds(grid, where)
        offset = need(data, "teacher_seed_offset", int, f"{where} [data]")
        patterns = need(grid, "patterns", list, f"{where} [grid]")
        if not patterns or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in patterns):
            raise TaskSpecError(f"{where} [grid]: 'patterns' must be positive ints, got {patterns!r}")
        control = need(grid, "ferromagnetic_control", bool, f"{where} [grid]")
        noise = float(need(model, "noise", (int, float), f"{where} [model]"))
        kinds = [(M, False) for M in patterns] + ([(1, True)] if control else [])
        return [dict(common, n_visible=n, n_hidden=m, beta=float(beta), symmetric=True, seed=seed, patterns=M,
                     control=ctrl, noise=noise, teacher_seed=seed + offset)
                for (n, m), beta, (M, ctrl), seed in itertools.product(shapes, betas, kinds, seeds)]

    def label(self, s: dict) -> str:
        kind = "ferro" if s["control"] else f"M{s['patterns']}"
        return f"n{s['n_visible']}m{s['n_hidden']}-b{s['beta']:g}-{kind}-s{s['seed']}"

    def recipe(self, spec: dict, seed: int, teacher: bool = False) -> tuple[RBM, np.random.Generator]:
        """``W = (β/√n)(Σ_{μ≤M} ξ^μ η^μᵀ + noise·G)``, ``ξ^μ, η^μ ∈ {±1}`` (all +1 for the control), a = b = 0."""
        n, m, beta, M = spec["n_visible"], spec["n_hidden"], spec["beta"], spec["patterns"]
        rng = np.random.default_rng(seed)
        if spec["control"]:
            xi, eta = np.ones((1, n)), np.ones((1, m))
        else:
            xi = 2.0 * rng.integers(0, 2, (M, n)) - 1.0
            eta = 2.0 * rng.integers(0, 2, (M, m)) - 1.0
        G = rng.standard_normal((n, m))
        W = (beta / np.sqrt(n)) * (xi.T @ eta + spec["noise"] * G)
        return RBM(W, None, None, spec["units"]), rng


FAMILIES = [Planted()]
