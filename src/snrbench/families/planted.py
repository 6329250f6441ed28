"""The ``planted`` family (``tasks/planted.toml``): spin RBMs with M planted patterns,
``W = (β/√n)(Σ_{μ≤M} ξ^μ η^μᵀ + noise·G)``, ``a = b = 0``, plus a ferromagnetic control
(``ξ = η = all +1``) per shape and β. A second pattern makes slow *even* modes (switching between
patterns) that the gradient observables see. Exact ground truth on ``2^0 … 2^16`` sweeps.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.model import RBM
from ._exact import BETAS, N_SAMPLES, OBSERVABLES, SCALE, SEED_OFFSET, SEEDS, SHAPES, SPIN_UNITS, ExactFamily
from .base import Key

__all__ = ["Planted", "FAMILIES"]


class Planted(ExactFamily):
    name = "planted"
    keys = dict(
        grid=dict(shapes=SHAPES, betas=BETAS, patterns=Key(list, item=Key(int, lo=1)),
                  ferromagnetic_control=Key(bool), seeds=SEEDS),
        model=dict(units=SPIN_UNITS, recipe=Key(str, choices=("planted",)), noise=SCALE),
        data=dict(n_samples=N_SAMPLES, teacher_seed_offset=SEED_OFFSET),
        estimator=dict(observables=OBSERVABLES),
    )

    def expand(self, doc: dict, where: str) -> list[dict]:
        common, grid, model, data = self.common(doc, where)
        noise, offset = float(model["noise"]), data["teacher_seed_offset"]
        kinds = [(M, False) for M in grid["patterns"]] + ([(1, True)] if grid["ferromagnetic_control"] else [])
        return [dict(common, n_visible=n, n_hidden=m, beta=float(beta), symmetric=True, seed=seed, patterns=M,
                     control=ctrl, noise=noise, teacher_seed=seed + offset)
                for (n, m), beta, (M, ctrl), seed in itertools.product(grid["shapes"], grid["betas"], kinds,
                                                                       grid["seeds"])]

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
