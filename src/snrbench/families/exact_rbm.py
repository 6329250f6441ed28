"""The ``exact-rbm`` family (``tasks/exact-rbm.toml``): small spin RBMs with one Mattis mode plus
Gaussian disorder, ``W = (β/√n)(ξηᵀ + disorder·G)``, ``ξ, η ∈ {±1}``, ``G`` standard normal; biased
cells add ``a, b ~ N(0, bias_std²)``. Data: ``n_samples`` exact samples of a teacher of the same
recipe built with seed ``seed + teacher_seed_offset``. Exact ground truth on ``2^0 … 2^16`` sweeps.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.model import RBM
from ._exact import BETAS, N_SAMPLES, OBSERVABLES, SCALE, SEED_OFFSET, SEEDS, SHAPES, SPIN_UNITS, ExactFamily
from .base import Key

__all__ = ["ExactRBM", "FAMILIES"]


class ExactRBM(ExactFamily):
    name = "exact-rbm"
    keys = dict(
        grid=dict(shapes=SHAPES, betas=BETAS, symmetries=Key(list, item=Key(str, choices=("symmetric", "biased"))),
                  seeds=SEEDS),
        model=dict(units=SPIN_UNITS, recipe=Key(str, choices=("mattis+disorder",)), disorder=SCALE, bias_std=SCALE),
        data=dict(n_samples=N_SAMPLES, teacher_seed_offset=SEED_OFFSET),
        estimator=dict(observables=OBSERVABLES),
    )

    def expand(self, doc: dict, where: str) -> list[dict]:
        common, grid, model, data = self.common(doc, where)
        disorder, bias_std, offset = float(model["disorder"]), float(model["bias_std"]), data["teacher_seed_offset"]
        return [dict(common, n_visible=n, n_hidden=m, beta=float(beta), symmetric=sym == "symmetric", seed=seed,
                     disorder=disorder, bias_std=bias_std, teacher_seed=seed + offset)
                for (n, m), beta, sym, seed in itertools.product(grid["shapes"], grid["betas"], grid["symmetries"],
                                                                 grid["seeds"])]

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
