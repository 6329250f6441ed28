"""Differentiable exact Q(T) of a small RBM: torch, float64, no eigenvectors.

``log10_q(W, a, b, data, T, units)`` is the quantity of :mod:`snrbench.truth.exact` (DESIGN §1),
``log10 Q(T) = log10 ‖g‖² − log10 Tr Cov[ĝ(T, 1)]`` (dex), as a torch tensor whose gradient with
respect to W, a and b comes from autograd. Nothing on the path diagonalises a matrix, so an exactly
degenerate spectrum (spin-flip symmetry, two identical hidden units) gives finite, correct gradients.

Chain. As in :mod:`~snrbench.truth.exact`, all work is on the smaller side X (2^k states, k ≤ 12);
the larger side Y is enumerated (≤ 2^:data:`MAX_LARGE_SIDE` states). With ``s = √p_X`` and the
symmetric flux ``w(x, x') = Σ_y p(x) p(y|x) p(x'|y)``, the symmetrised kernel is
``K = w / (s sᵀ)`` (PSD) and the generator ``L = I − K`` is assembled from the off-diagonal rates
(diagonal ``Σ_{x'≠x} w(x, x')/p(x)``, never ``1 − K_xx``). ``M = K − s sᵀ`` removes the stationary
mode.

Autocovariance. For observables f of v with ``f̃ = f − E_p f`` (f²):
``C(t) = G₁ᵀ M^{t−1} G₂`` for t ≥ 1, summed over observables, with ``G₁ = G₂ = s·E[f̃|x]`` when X is
the hidden side and ``G₁ = s·f̃``, ``G₂ = K G₁`` when X is the visible side.

Window sums. ``Tr Cov[ĝ(T, 1)] = [T·V + 2 Σ_{t=1}^{T−1} (T − t) C(t)] / T²`` (f²), and
``Σ_{t=1}^{T−1} (T−t) M^{t−1} = B_T − P_T`` with ``P_T = Σ_{u<T} M^u`` and
``B_T = Σ_{u<T} (T − u) M^u``. Both follow by repeated squaring: for consecutive blocks of lengths
``T₂`` then ``T₁``, ``P_{T₂+T₁} = P_{T₂} + M^{T₂} P_{T₁}`` and
``B_{T₂+T₁} = T₁ P_{T₂} + B_{T₂} + M^{T₂} B_{T₁}`` (all coefficients positive), so any T costs
``⌊log₂ T⌋`` squarings of M plus products with the ``n_obs`` columns of G₂.

Integrated times come from one linear solve with the fundamental matrix:
``Σ_{t≥1} C(t) = G₁ᵀ (L + s sᵀ)⁻¹ G₂`` and ``τ = 1 + 2 Σ_{t≥1} C(t) / V`` (sweeps).

Accuracy. Rates carry full relative accuracy, but the float64 generator resolves a gap only to
~1e-16 absolute, against the exact solver's arbitrary precision. Q(T) on ``T ≤ 2^16`` does not
notice (``v_T(λ)`` moves by ~T·1e-16 when T·gap ≪ 1); measured agreement with
:func:`snrbench.truth.exact.q_curve` is ≤ 4e-13 dex on random cells (``tests/test_differentiable.py``)
and ≤ 1.1e-11 dex at T = 64 on the 51 goodhart students, whose gaps go down to 2.5e-12. A gap itself
(:func:`spectral_gap`) is accurate to ~1e-16/gap relative.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import all_states

__all__ = ["Chain", "chain", "log10_q", "grad_norm2", "trace_cov", "integrated_time", "spectral_gap",
           "variance_factor", "log_likelihood", "MAX_SMALL_SIDE", "MAX_LARGE_SIDE", "GAP_SQUARINGS"]

#: The smaller side is enumerated as a dense 2^k × 2^k kernel (as in :mod:`snrbench.truth.exact`).
MAX_SMALL_SIDE = 12
#: The larger side is enumerated whole (2^l rows held for autograd).
MAX_LARGE_SIDE = 16
#: Squarings of the fundamental matrix in :func:`spectral_gap`, ``N = 2^24``: slow modes closer than
#: ~1/N relative are treated as one cluster (value within ``1/(eN)`` ≈ 2e-8 relative per mode of it);
#: an exactly degenerate cluster is not split by rounding (the power method would amplify a rounding
#: split ε to ``εN``, ~1e-9 here, but ~1e-4 at ``N = 2^40``).
GAP_SQUARINGS = 24

_F = torch.float64


def _t(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x, dtype=np.float64))


def _mean(x: torch.Tensor, units: str) -> torch.Tensor:
    """``E[unit | field x]``: tanh for spins, sigmoid for binary units."""
    return torch.tanh(x) if units == "spin" else torch.sigmoid(x)


def _log_partial(x: torch.Tensor, units: str) -> torch.Tensor:
    """``log Σ_s exp(s·x)`` summed over the last axis (nats)."""
    return torch.logaddexp(x, -x).sum(-1) if units == "spin" else torch.nn.functional.softplus(x).sum(-1)


def _observables(v: torch.Tensor, mh: torch.Tensor, which: str) -> torch.Tensor:
    """``f_ij = v_i E[h_j|v]`` (row-major), plus ``v_i`` and ``E[h_j|v]`` for ``weights+biases``."""
    f = (v[:, :, None] * mh[:, None, :]).reshape(len(v), -1)
    if which == "weights+biases":
        f = torch.cat([f, v, mh], dim=1)
    elif which != "weights":
        raise ValueError(f"observables must be 'weights' or 'weights+biases', got {which!r}")
    return f


@dataclass(frozen=True)
class Chain:
    """The blocked-Gibbs chain of one RBM on its smaller side, in symmetric coordinates (see the module
    docstring). Tensors keep their autograd history back to W, a, b.

    Attributes
    ----------
    s : (2^k,) ``√p_X``.
    K, L : (2^k, 2^k) symmetrised kernel and generator ``I − K`` (from off-diagonal rates).
    G1, G2 : (2^k, n_obs) such that ``C(t) = Σ_a (G1ᵀ M^{t−1} G2)_aa`` (f²).
    V : ``Σ_a Var_p f_a`` (f²). ``Ef`` : (n_obs,) ``E_p f``.
    Gm1, Gm2, Vm : the same for the magnetization ``m(v) = mean_i v_i``.
    units, observables : as given.
    """

    s: torch.Tensor
    K: torch.Tensor
    L: torch.Tensor
    G1: torch.Tensor
    G2: torch.Tensor
    V: torch.Tensor
    Ef: torch.Tensor
    Gm1: torch.Tensor
    Gm2: torch.Tensor
    Vm: torch.Tensor
    units: str
    observables: str

    @property
    def M(self) -> torch.Tensor:
        """``K − s sᵀ``: the kernel without its stationary mode."""
        return self.K - torch.outer(self.s, self.s)

    @property
    def fundamental(self) -> torch.Tensor:
        """``L + s sᵀ`` (its inverse is the fundamental matrix ``Σ_{t≥0} M^t``)."""
        return self.L + torch.outer(self.s, self.s)


def chain(W, a=None, b=None, units: str = "spin", observables: str = "weights") -> Chain:
    """The :class:`Chain` of the RBM ``(W, a, b)`` (tensors or arrays; a, b default to zero)."""
    W = _t(W)
    n, m = W.shape
    a = torch.zeros(n, dtype=_F) if a is None else _t(a)
    b = torch.zeros(m, dtype=_F) if b is None else _t(b)
    if units not in ("spin", "binary"):
        raise ValueError(f"units must be 'spin' or 'binary', got {units!r}")
    k, l = min(n, m), max(n, m)
    if k > MAX_SMALL_SIDE or l > MAX_LARGE_SIDE:
        raise ValueError(f"differentiable Q: shape ({n}, {m}) beyond 2^{MAX_SMALL_SIDE} × 2^{MAX_LARGE_SIDE} states")
    x_is_hidden = m <= n
    X = torch.as_tensor(all_states(k, units), dtype=_F)
    Y = torch.as_tensor(all_states(l, units), dtype=_F)
    if x_is_hidden:
        zY, bx, uY, by = X @ W.T + a, b, Y @ W + b, a  # fields on Y from x; on X from y
    else:
        zY, bx, uY, by = X @ W + b, a, Y @ W.T + a, b
    lpz = _log_partial(zY, units)
    p = torch.softmax(X @ bx + lpz, dim=0)
    s = torch.sqrt(p)
    P = torch.exp(Y @ zY.T - lpz[None, :])  # p(y|x), (2^l, 2^k)
    Qc = torch.exp(uY @ X.T - _log_partial(uY, units)[:, None])  # p(x'|y), (2^l, 2^k)
    w = p[:, None] * (P.T @ Qc)
    w = 0.5 * (w + w.T)
    ss = torch.outer(s, s)
    K = w / ss
    off = w - torch.diag(torch.diagonal(w))
    L = torch.diag(off.sum(1) / p) - off / ss
    if x_is_hidden:
        F = _observables(Y, _mean(uY, units), observables)
        mag = Y.mean(1, keepdim=True)
        py = P @ p
        Ef, Em = py @ F, py @ mag
        V, Vm = py @ ((F - Ef) ** 2).sum(1), py @ ((mag - Em) ** 2).sum(1)
        G1, Gm1 = s[:, None] * (P.T @ (F - Ef)), s[:, None] * (P.T @ (mag - Em))
        G2, Gm2 = G1, Gm1
    else:
        F = _observables(X, _mean(zY, units), observables)
        mag = X.mean(1, keepdim=True)
        Ef, Em = p @ F, p @ mag
        G1, Gm1 = s[:, None] * (F - Ef), s[:, None] * (mag - Em)
        V, Vm = (G1**2).sum(), (Gm1**2).sum()
        G2, Gm2 = K @ G1, K @ Gm1
    return Chain(s=s, K=K, L=L, G1=G1, G2=G2, V=V, Ef=Ef, Gm1=Gm1, Gm2=Gm2, Vm=Vm, units=units,
                 observables=observables)


def _as_T(T) -> list[int]:
    T = np.atleast_1d(np.asarray(T))
    if T.size == 0 or np.any(T < 1) or np.any(T != np.round(T)):
        raise ValueError(f"T must be positive integers (sweeps), got {T}")
    return [int(t) for t in T]


def _window_sums(M: torch.Tensor, G1: torch.Tensor, G2: torch.Tensor, T: list[int]) -> torch.Tensor:
    """``Σ_{t=1}^{T−1} (T − t) C(t) = Tr G1ᵀ (B_T − P_T) G2`` for every T (f²), by repeated squaring."""
    top = max(T).bit_length()
    power, PG, BG = M, G2, G2  # M^{2^j}, P_{2^j} G2, B_{2^j} G2 at j = 0
    blocks = []
    for j in range(top):
        blocks.append((power, PG, BG))
        if j + 1 < top:
            MP, MB = power @ PG, power @ BG
            PG, BG = PG + MP, (2**j) * PG + BG + MB
            power = power @ power
    out = []
    for t in T:
        PT = BT = None
        length = 0
        for j in range(top):  # append the blocks of t's bits as prefixes, lowest first
            if not (t >> j) & 1:
                continue
            pw, pg, bg = blocks[j]
            if PT is None:
                PT, BT = pg, bg
            else:
                PT, BT = pg + pw @ PT, length * pg + bg + pw @ BT
            length += 2**j
        out.append((G1 * (BT - PT)).sum())
    return torch.stack(out)


def trace_cov(ch: Chain, T) -> torch.Tensor:
    """``Tr Cov[ĝ(T, 1)] = [T·V + 2 Σ_{t<T} (T − t) C(t)] / T²`` on ``T`` (f²), shape ``(len(T),)``."""
    T = _as_T(T)
    Tt = torch.tensor(T, dtype=_F)
    return (Tt * ch.V + 2.0 * _window_sums(ch.M, ch.G1, ch.G2, T)) / Tt**2


def grad_norm2(W, a, b, data, units: str = "spin", observables: str = "weights", ch: Chain | None = None):
    """``‖g‖² = ‖mean_data f − E_p f‖²`` (f²), a 0-d tensor."""
    W = _t(W)
    n, m = W.shape
    b = torch.zeros(m, dtype=_F) if b is None else _t(b)
    ch = ch if ch is not None else chain(W, a, b, units, observables)
    v = _t(data)
    if v.ndim != 2 or v.shape[1] != n or len(v) == 0:
        raise ValueError(f"data must have shape (N, {n}), got {tuple(v.shape)}")
    g = _observables(v, _mean(v @ W + b, units), observables).mean(0) - ch.Ef
    return (g**2).sum()


def log10_q(W, a, b, data, T, units: str = "spin", observables: str = "weights", ch: Chain | None = None) -> torch.Tensor:
    """``log10 Q(T, 1) = log10 ‖g‖² − log10 Tr Cov[ĝ(T, 1)]`` (dex), shape ``(len(T),)``,
    differentiable with respect to W, a and b (tensors with ``requires_grad``; arrays are constants);
    ``ch``: their :class:`Chain`, when the caller has built it already."""
    ch = ch if ch is not None else chain(W, a, b, units, observables)
    return torch.log10(grad_norm2(W, a, b, data, units, observables, ch)) - torch.log10(trace_cov(ch, T))


def integrated_time(ch: Chain, magnetization: bool = False) -> torch.Tensor:
    """``τ = 1 + 2 Σ_{t≥1} C(t) / V`` (sweeps) of the gradient observables (or of m(v)), from one
    linear solve with ``L + s sᵀ`` (no subtraction near λ = 1)."""
    G1, G2, V = (ch.Gm1, ch.Gm2, ch.Vm) if magnetization else (ch.G1, ch.G2, ch.V)
    return 1.0 + 2.0 * (G1 * torch.linalg.solve(ch.fundamental, G2)).sum() / V


def spectral_gap(ch: Chain, squarings: int = GAP_SQUARINGS) -> torch.Tensor:
    """Global gap ``1 − λ₁`` (per sweep) without an eigensolver, as ``1/z₁`` with ``z₁`` the largest
    eigenvalue of the fundamental matrix ``Z = (L + s sᵀ)⁻¹ − s sᵀ`` (PSD, eigenvalues ``1/γ_k`` and 0).

    ``A = Z^N / Tr Z^N`` (``N = 2^squarings``, normalised squaring, no autograd history) converges to
    the spectral projector of ``z₁`` over its multiplicity, and ``z₁ = Tr(A Z)`` (a Rayleigh quotient,
    low by at most ~``2^k/(eN)`` relative, only when other modes lie within ~1/N of it; exact under
    exact degeneracy). Its gradient with ``A`` held fixed is ``Tr(A dZ)`` (Hellmann–Feynman): the eigenvalue's
    derivative when it is simple, and the mean of the cluster's one-sided derivatives (the limit of
    central differences) when it is degenerate. Autograd through the squarings themselves would
    double rounding noise inside a degenerate cluster at every squaring.
    """
    Z = torch.linalg.solve(ch.fundamental, torch.eye(len(ch.s), dtype=_F)) - torch.outer(ch.s, ch.s)
    Z = 0.5 * (Z + Z.T)
    with torch.no_grad():
        A = Z / torch.trace(Z)
        for _ in range(squarings):
            A = A @ A
            A = A / torch.trace(A)
    return 1.0 / (A * Z).sum()


def variance_factor(gap: torch.Tensor, T) -> torch.Tensor:
    """``v_T(λ) = [T + 2 Σ_{t=1}^{T−1} (T − t) λ^t] / T²`` for ``λ = 1 − gap`` (0-d tensor gap), shape
    ``(len(T),)``, dimensionless; the subtraction-free sum of :func:`snrbench.core.spectral.variance_factor`
    with ``λ^t = exp(t·log1p(−gap))`` (gap clipped below 1 so the derivative stays finite at λ = 0)."""
    T = _as_T(T)
    tmax = max(max(T), 2)
    t = torch.arange(1, tmax, dtype=_F)
    lam_t = torch.exp(t * torch.log1p(-torch.clamp(gap, max=1.0 - 1e-15)))
    A = torch.cumsum(torch.cumsum(lam_t, 0), 0)
    Tt = torch.tensor(T, dtype=_F)
    acc = torch.stack([A[x - 2] if x >= 2 else torch.zeros((), dtype=_F) for x in T])
    return (Tt + 2.0 * acc) / Tt**2


def log_likelihood(W, a, b, data, units: str = "spin") -> torch.Tensor:
    """Mean exact log-likelihood ``mean_data log p(v)`` (nats per sample), the smaller side enumerated
    for ``log Z``."""
    W = _t(W)
    n, m = W.shape
    a = torch.zeros(n, dtype=_F) if a is None else _t(a)
    b = torch.zeros(m, dtype=_F) if b is None else _t(b)
    v = _t(data)
    free = v @ a + _log_partial(v @ W + b, units)
    if m <= n:
        H = torch.as_tensor(all_states(m, units), dtype=_F)
        logz = torch.logsumexp(H @ b + _log_partial(H @ W.T + a, units), 0)
    else:
        Vs = torch.as_tensor(all_states(n, units), dtype=_F)
        logz = torch.logsumexp(Vs @ a + _log_partial(Vs @ W + b, units), 0)
    return free.mean() - logz
