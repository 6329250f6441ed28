"""Exact model moments of an RBM with few hidden units (m ≤ 20) by enumerating the hidden side.

For the MNIST family's m = 16 anchor (2^16 hidden states, 784 visible units), in chunks of hidden
states so memory stays at ``chunk × n`` floats:

* ``log Z = logsumexp_h [bᵀh + Σ_i log Σ_{v_i} exp(v_i (Wh + a)_i)]`` (nats);
* ``E_p f`` for the gradient observables ``f_ij(v) = v_i E[h_j|v]``: by the tower property
  ``E_p[v_i E[h_j|v]] = E_p[v_i h_j] = Σ_h p(h) h_j E[v_i|h]``, and for ``"weights+biases"`` also
  ``E_p v = Σ_h p(h) E[v|h]`` and ``E_p h``;
* ``‖g‖² = ‖mean_data f − E_p f‖²`` (units of f²);
* ``log p(h)`` of every hidden state (normalised), from which :func:`sample_visible` draws exact
  samples of ``p(v)``: ``h ~ p(h)``, then ``v ~ p(v|h)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..core.model import RBM, states_at
from ..core.observables import mean_gradient_observables

__all__ = ["MAX_HIDDEN", "log_prob_hidden", "log_partition", "model_mean_observables", "grad_norm2", "sample_visible"]

#: Largest hidden layer enumerated (2^20 states).
MAX_HIDDEN = 20


def _chunks(rbm: RBM, chunk: int):
    """Per chunk of hidden states: H, ``log p̃(h) = bᵀh + log_partial(Wh + a)`` and ``E[v|h]``."""
    m = rbm.n_hidden
    if m > MAX_HIDDEN:
        raise ValueError(f"hidden enumeration: m = {m} > {MAX_HIDDEN}; use Monte Carlo")
    for start in range(0, 2**m, chunk):
        H = states_at(np.arange(start, min(start + chunk, 2**m)), m, rbm.units)
        x = rbm.visible_field(H)
        yield H, H @ rbm.b + rbm.log_partial(x), x


def log_prob_hidden(rbm: RBM, chunk: int = 4096) -> np.ndarray:
    """Normalised ``log p(h)`` of all ``2^m`` hidden states (state k has unit i = bit i of k)."""
    lp = np.concatenate([lq for _, lq, _ in _chunks(rbm, chunk)])
    return lp - logsumexp(lp)


def log_partition(rbm: RBM, chunk: int = 4096) -> float:
    """``log Z`` (nats), summed over the hidden states."""
    return float(logsumexp([logsumexp(lq) for _, lq, _ in _chunks(rbm, chunk)]))


def model_mean_observables(rbm: RBM, observables: str = "weights", chunk: int = 4096) -> np.ndarray:
    """``E_p f`` (row-major ``n × m`` for the weights, then ``E v`` and ``E h`` for ``"weights+biases"``).

    One pass over the hidden states; sums are kept relative to the running maximum of ``log p̃``.
    """
    if observables not in ("weights", "weights+biases"):
        raise ValueError(f"observables must be 'weights' or 'weights+biases', got {observables!r}")
    Evh = np.zeros((rbm.n_visible, rbm.n_hidden))
    Ev, Eh = np.zeros(rbm.n_visible), np.zeros(rbm.n_hidden)
    shift, total = -np.inf, 0.0
    for H, lq, x in _chunks(rbm, chunk):
        new = max(shift, float(lq.max()))
        scale = np.exp(shift - new)
        Evh *= scale
        Ev *= scale
        Eh *= scale
        total *= scale
        shift = new
        w = np.exp(lq - shift)
        mv = rbm.mean_from_field(x)  # E[v | h], (chunk, n)
        Evh += (mv * w[:, None]).T @ H
        Ev += w @ mv
        Eh += w @ H
        total += w.sum()
    f = Evh.reshape(-1) / total
    return f if observables == "weights" else np.concatenate([f, Ev / total, Eh / total])


def grad_norm2(rbm: RBM, data: np.ndarray, observables: str = "weights", chunk: int = 4096) -> float:
    """``‖mean_data f − E_p f‖²`` (units of f²)."""
    g = mean_gradient_observables(rbm, data, observables)
    g -= model_mean_observables(rbm, observables, chunk)
    return float(g @ g)


def sample_visible(rbm: RBM, n_samples: int, rng: np.random.Generator, chunk: int = 4096) -> np.ndarray:
    """Exact samples of ``p(v)``: ``h ~ p(h)`` over the enumerated hidden states, then ``v ~ p(v|h)``."""
    p = np.exp(log_prob_hidden(rbm, chunk))
    k = rng.choice(len(p), size=int(n_samples), p=p / p.sum())
    return rbm._draw(rbm.visible_field(states_at(k, rbm.n_hidden, rbm.units)), rng)
