"""Gradient observables (RBM: Rao–Blackwellised weights; Ising: spin pairs) and the magnetization.

Weight observables ``f_ij(v) = v_i · E[h_j | v]`` (n·m of them, row-major in (i, j)); with
``biases=True`` also ``v_i`` (n) and ``E[h_j | v]`` (m). The true gradient is
``g = mean_data f − E_p f``. Under spin-flip symmetry the weight observables are even
(``f(−v) = f(v)``) and the bias observables odd; ``parity`` records that, so the exact solver can
place each observable in its symmetry sector exactly. For an Ising model the observables are
``f_ij = x_i x_j`` (i < j, ``"pairs"``), all even.
"""
from __future__ import annotations

import numpy as np

from .ising import IsingModel, pair_observables
from .model import RBM

__all__ = ["gradient_observables", "mean_gradient_observables", "observable_parity", "magnetization", "OBSERVABLE_SETS"]

OBSERVABLE_SETS = ("weights", "weights+biases", "pairs")


def gradient_observables(rbm: RBM | IsingModel, v: np.ndarray, which: str = "weights") -> np.ndarray:
    """Observables for each row of ``v``: shape ``(len(v), n_obs)``, dimensionless."""
    if isinstance(rbm, IsingModel) or which == "pairs":
        if not (isinstance(rbm, IsingModel) and which == "pairs"):
            raise ValueError(f"observables {which!r} do not apply to {type(rbm).__name__}")
        return pair_observables(v)
    if which not in OBSERVABLE_SETS:
        raise ValueError(f"observables must be one of {OBSERVABLE_SETS}, got {which!r}")
    mh = rbm.mean_from_field(rbm.hidden_field(v))
    f = (v[:, :, None] * mh[:, None, :]).reshape(len(v), -1)
    if which == "weights+biases":
        f = np.concatenate([f, v, mh], axis=1)
    return f


def mean_gradient_observables(rbm: RBM | IsingModel, v: np.ndarray, which: str = "weights",
                              chunk: int = 1024) -> np.ndarray:
    """``mean_rows f(v)`` without forming f row by row: for the RBM weights ``vᵀE[h|v]/N`` (chunks of
    rows), so a data set of 5,000 MNIST images costs ``n·m`` numbers, not ``5000·n·m``."""
    v = np.asarray(v, dtype=np.float64)
    if isinstance(rbm, IsingModel) or which not in ("weights", "weights+biases"):
        return gradient_observables(rbm, v, which).mean(axis=0)
    vh, sv, sh = np.zeros((rbm.n_visible, rbm.n_hidden)), np.zeros(rbm.n_visible), np.zeros(rbm.n_hidden)
    for i in range(0, len(v), chunk):
        x = v[i:i + chunk]
        mh = rbm.mean_from_field(rbm.hidden_field(x))
        vh += x.T @ mh
        sv += x.sum(axis=0)
        sh += mh.sum(axis=0)
    f = vh.reshape(-1) / len(v)
    return np.concatenate([f, sv / len(v), sh / len(v)]) if which == "weights+biases" else f


def observable_parity(rbm: RBM, which: str = "weights") -> np.ndarray:
    """+1 for observables even under ``v → −v`` (with the symmetric model), −1 for odd ones."""
    if isinstance(rbm, IsingModel):
        return np.ones(rbm.n_spins * (rbm.n_spins - 1) // 2)
    n, m = rbm.W.shape
    par = [np.ones(n * m)]
    if which == "weights+biases":
        par += [-np.ones(n), -np.ones(m)]
    return np.concatenate(par)


def magnetization(v: np.ndarray) -> np.ndarray:
    """``m(v) = mean_i v_i`` as a one-column observable, shape ``(len(v), 1)``."""
    return v.mean(axis=1, keepdims=True)
