"""The ``ising`` family (``tasks/ising.toml``): Curie–Weiss ``J = (β/N)(11ᵀ − I)``,
Sherrington–Kirkpatrick ``J = βG/√N`` and 2-pattern Hopfield ``J = (β/N)Σ_μ ξ^μξ^μᵀ`` models,
h = 0, under random-scan single-site Gibbs (**one sweep = N single-site updates**). Observables
``f_ij = x_i x_j``; data: exact samples of a teacher of the same kind at ``teacher_beta_scale · β``.
Exact ground truth by enumerating the ``2^N`` states (:mod:`snrbench.truth.exact_ising`).
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core.ising import IsingModel
from ..truth import exact_ising
from ._exact import BETAS, N_SAMPLES, SCALE, SEED_OFFSET, SEEDS, SPIN_UNITS, ExactFamily
from .base import Key

__all__ = ["Ising", "FAMILIES", "ISING_MODELS", "ising_limit"]

#: Ising models (grid key ``models``) and their short names in labels.
ISING_MODELS = {"curie-weiss": "cw", "sk": "sk", "hopfield2": "hop2"}


def ising_limit(N: int) -> str | None:
    """Why the exact Ising solver cannot take N spins (it enumerates all 2^N states), or None."""
    if N > exact_ising.MAX_SPINS:
        return (f"N = {N} spins: 2^{N} states, beyond the exact Ising solver's 2^{exact_ising.MAX_SPINS} "
                f"(truth.exact_ising.MAX_SPINS); use a Monte Carlo family")
    return None


class Ising(ExactFamily):
    name = "ising"
    observables = ("pairs",)
    precision = ("float64 flip rates; generator eigenpairs by float64 eigh per spin-flip sector "
                 "(slow eigenvalues checked against their Dirichlet-form Rayleigh quotients, eig_check)")
    keys = dict(
        grid=dict(models=Key(list, item=Key(str, choices=tuple(ISING_MODELS))),
                  sizes=Key(list, item=Key(int, lo=2, rule=ising_limit)), betas=BETAS, seeds=SEEDS),
        model=dict(units=SPIN_UNITS, recipe=Key(str, choices=("ising",))),
        data=dict(n_samples=N_SAMPLES, teacher_seed_offset=SEED_OFFSET, teacher_beta_scale=SCALE),
        estimator=dict(observables=Key(str, choices=observables)),
    )

    def expand(self, doc: dict, where: str) -> list[dict]:
        common, grid, _, data = self.common(doc, where)
        offset, scale = data["teacher_seed_offset"], float(data["teacher_beta_scale"])
        return [dict(common, model=name, n_visible=n, n_hidden=0, beta=float(beta), symmetric=True, seed=seed,
                     teacher_seed=seed + offset, teacher_beta=float(beta) * scale)
                for name, n, beta, seed in itertools.product(grid["models"], grid["sizes"], grid["betas"],
                                                             grid["seeds"])]

    def label(self, s: dict) -> str:
        return f"{ISING_MODELS[s['model']]}-N{s['n_visible']}-b{s['beta']:g}-s{s['seed']}"

    def recipe(self, spec: dict, seed: int, teacher: bool = False) -> tuple[IsingModel, np.random.Generator]:
        """Curie–Weiss ``J = (β/N)(11ᵀ − I)``; SK ``J_ij = β G_ij/√N`` (G symmetric standard normal);
        Hopfield with 2 patterns ``J = (β/N) Σ_μ ξ^μ ξ^μᵀ`` (zero diagonal, ξ ∈ {±1}^N); h = 0. The
        teacher is drawn at ``teacher_beta``."""
        N, beta = spec["n_visible"], spec["teacher_beta" if teacher else "beta"]
        rng = np.random.default_rng(seed)
        if spec["model"] == "curie-weiss":
            J = np.full((N, N), beta / N)
        elif spec["model"] == "sk":
            G = np.triu(rng.standard_normal((N, N)), 1)
            J = beta * (G + G.T) / np.sqrt(N)
        else:
            xi = 2.0 * rng.integers(0, 2, (2, N)) - 1.0
            J = (beta / N) * (xi.T @ xi)
        np.fill_diagonal(J, 0.0)
        return IsingModel(J), rng

    def chain_modes(self, model, observables: str):
        return exact_ising.chain_modes(model)

    def figure_kind(self, label: str) -> str:
        return label.split("-")[0]

    def figure_shape(self, n: int, m: int) -> str:
        return f"N={n}"


FAMILIES = [Ising()]
