"""Differentiable versions of the built-in entries' white-box forecasts of ``log10 Q(T)``, as loss terms.

Each is ``log10 ‖g‖² − log10[V · v_T(λ)]`` (dex) with exact ``‖g‖²`` and ``V`` and one timescale λ
taken from the chain of :mod:`snrbench.truth.differentiable` (torch, float64, no eigenvectors):

* ``single-gap``: ``λ = λ₁``, the global slowest mode (``predictors/single_gap.py``, white-box).
  The gap is intrinsically an eigenvalue; it comes from normalised powers of the fundamental matrix
  (:func:`~snrbench.truth.differentiable.spectral_gap`), with no eigensolver.
* ``magnetization``: ``λ = (τ_m − 1)/(τ_m + 1)`` with the exact integrated time of ``m(v) = mean_i v_i``
  (one linear solve): the ``magnetization`` entry (sampler-only) with its estimates replaced by
  exact values.
* ``multimode``: the observable-projected time ``τ_grad = Σ_k (S_k/V)(1+λ_k)/(1−λ_k)`` over every
  mode, from one linear solve, in one exponential ``λ = (τ_grad − 1)/(τ_grad + 1)``: the
  linear-solve form of the multimode predictor. The white-box entry keeps 3 modes, each at its own
  λ; picking modes is picking eigenvectors, which is what this module avoids (keeping every mode at
  its own λ is the true Q, :func:`~snrbench.truth.differentiable.log10_q`).
* ``true``: the exact ``log10 Q(T)`` itself.

:data:`FORECASTS` maps each name to ``f(W, a, b, data, T, units, observables, ch=None) -> tensor (len(T),)``;
``ch``, the :class:`~snrbench.truth.differentiable.Chain` of ``(W, a, b)`` with these units and observables
when the caller has it already, saves building it again (several forecasts of one model share it).
"""
from __future__ import annotations

import torch

from . import differentiable as dq

__all__ = ["single_gap_log10_q", "magnetization_log10_q", "multimode_log10_q", "single_tau_log10_q", "FORECASTS"]


def single_tau_log10_q(g2: torch.Tensor, V: torch.Tensor, tau: torch.Tensor, T) -> torch.Tensor:
    """``log10 ‖g‖² − log10[V · v_T(λ)]``, ``λ = (τ − 1)/(τ + 1)`` (gap ``2/(τ + 1)``), dex."""
    return torch.log10(g2) - torch.log10(V * dq.variance_factor(2.0 / (tau + 1.0), T))


def single_gap_log10_q(W, a, b, data, T, units: str = "spin", observables: str = "weights",
                       ch: dq.Chain | None = None) -> torch.Tensor:
    """single-gap's forecast: ``Tr Cov = V · v_T(λ₁)`` (dex)."""
    ch = ch if ch is not None else dq.chain(W, a, b, units, observables)
    g2 = dq.grad_norm2(W, a, b, data, units, observables, ch)
    return torch.log10(g2) - torch.log10(ch.V * dq.variance_factor(dq.spectral_gap(ch), T))


def magnetization_log10_q(W, a, b, data, T, units: str = "spin", observables: str = "weights",
                          ch: dq.Chain | None = None) -> torch.Tensor:
    """magnetization's forecast with exact inputs: ``Tr Cov = V · v_T(λ_m)`` from ``τ_m`` (dex)."""
    ch = ch if ch is not None else dq.chain(W, a, b, units, observables)
    g2 = dq.grad_norm2(W, a, b, data, units, observables, ch)
    return single_tau_log10_q(g2, ch.V, dq.integrated_time(ch, magnetization=True), T)


def multimode_log10_q(W, a, b, data, T, units: str = "spin", observables: str = "weights",
                      ch: dq.Chain | None = None) -> torch.Tensor:
    """multimode's linear-solve form: ``Tr Cov = V · v_T(λ_grad)`` from ``τ_grad`` (dex)."""
    ch = ch if ch is not None else dq.chain(W, a, b, units, observables)
    g2 = dq.grad_norm2(W, a, b, data, units, observables, ch)
    return single_tau_log10_q(g2, ch.V, dq.integrated_time(ch), T)


#: Rewardable quantities: name → differentiable ``log10 Q`` forecast.
FORECASTS = {
    "single-gap": single_gap_log10_q,
    "magnetization": magnetization_log10_q,
    "multimode": multimode_log10_q,
    "true": dq.log10_q,
}
