"""The tempered family between a base-rate model and an RBM (shared by AIS and parallel tempering).

Base model (β = 0): independent visible units with bias ``a₀`` (the data's pixel log-odds,
:func:`base_rate_bias`) and free hidden units. For ``β ∈ [0, 1]`` the intermediate model is again an
RBM::

    p_β(v, h) ∝ exp(β (vᵀW h + bᵀh) + ((1 − β) a₀ + β a)ᵀ v)  =  RBM(βW, (1−β)a₀ + βa, βb)

so any RBM sampler runs on it, and its unnormalised visible marginal (nats) is
``log p̃_β(v) = ((1−β)a₀ + βa)ᵀv + Σ_j log Σ_{h_j} exp(h_j β(Wᵀv + b)_j)``. At β = 1 it is the
RBM itself, at β = 0 the base model with ``log Z₀ = Σ_i log Σ_{v_i} e^{a₀ᵢ v_i} + m log 2``.
"""
from __future__ import annotations

import numpy as np

from .model import RBM

__all__ = ["base_rate_bias", "tempered", "log_partition_base", "log_unnormalised_visible"]


def base_rate_bias(data: np.ndarray, units: str = "binary", eps: float = 1e-3) -> np.ndarray:
    """Visible bias of independent units matching the data's means (clipped to [eps, 1 − eps]).

    Binary: ``logit(p_i)``; spin: ``artanh(mean v_i)`` (= ½ logit of p(v_i = +1)).
    """
    mean = np.asarray(data, dtype=np.float64).mean(axis=0)
    p = np.clip(mean if units == "binary" else (mean + 1.0) / 2.0, eps, 1.0 - eps)
    logit = np.log(p) - np.log1p(-p)
    return logit if units == "binary" else 0.5 * logit


def tempered(rbm: RBM, beta: float, a0: np.ndarray) -> RBM:
    """``RBM(βW, (1 − β)a₀ + βa, βb)``: the model at inverse temperature β of the tempered family."""
    beta = float(beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"tempered: beta must lie in [0, 1], got {beta}")
    if beta == 1.0:
        return rbm
    return RBM(beta * rbm.W, (1.0 - beta) * np.asarray(a0, dtype=np.float64) + beta * rbm.a, beta * rbm.b, rbm.units)


def log_partition_base(a0: np.ndarray, n_hidden: int, units: str = "binary") -> float:
    """``log Z₀`` of the β = 0 model (nats): ``Σ_i log Σ_{v_i} exp(a₀ᵢ v_i) + m log 2``."""
    a0 = np.asarray(a0, dtype=np.float64)
    vis = np.logaddexp(a0, -a0).sum() if units == "spin" else np.logaddexp(0.0, a0).sum()
    return float(vis + n_hidden * np.log(2.0))


def log_unnormalised_visible(rbm: RBM, beta: float, a0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``log p̃_β(v)`` (nats) for a batch of visible rows (see the module docstring)."""
    return tempered(rbm, beta, a0).log_marginal_visible(np.asarray(v, dtype=np.float64))
