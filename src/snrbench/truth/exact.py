"""Exact ground truth: the spectral solution of the blocked-Gibbs chain of a small RBM.

One sweep draws ``h ~ p(h|v)`` then ``v ~ p(v|h)``; the v-chain ``K = A B`` (``(Aψ)(v) = E[ψ(h)|v]``,
``B = A*``) and the chain of the other side ``B A`` share their non-zero spectrum, so all work is
done on the *smaller* side X (2^k states) while the larger side Y is summed over in chunks.

Generator. The weights ``w(x, x') = p(x) K_X(x, x') = Σ_y p(x) p(y|x) p(x'|y)`` are sums of
positive terms, so they carry full relative accuracy; ``L = I − K_X`` is assembled from them with
its diagonal as the sum of the off-diagonal rates (no ``1 − K_ii``), and its eigenpairs are found in
arbitrary precision (``snrbench.core._highprec``). With spin-flip symmetry (spins, a = b = 0) X is split
into even and odd sectors and each is solved alone: even observables then have exactly zero weight
on odd modes.

Mode weights. For observables f of v with ``f̃ = f − E_p f`` and L²(p)-orthonormal eigenfunctions:
  * X = hidden: ``C(t) = ⟨B f̃, K_X^{t−1} B f̃⟩`` for t ≥ 1, so ``S_k = ⟨E[f̃|h], ψ_k⟩² / λ_k``;
  * X = visible: ``S_k = ⟨f̃, φ_k⟩²``.
Modes with ``λ_k < 1e-12`` are merged into the ``λ = 0`` residual ``V − Σ S_k`` (their
contribution to any T-window variance differs from the residual's by < 1e-12 relative).

Public entry points keep these names (later tools call them): :func:`q_curve`,
:func:`spectral_gap`, :func:`observable_gap`, plus :func:`solve` returning :class:`ExactSolution`.
"""
from __future__ import annotations


import numpy as np

from ..core import spectral
from ..core._highprec import sym_generator_eigh
from ..core.ising import IsingModel
from ..core.model import RBM, all_states, flip_index, states_at
from ..core.observables import gradient_observables, magnetization, observable_parity
from . import exact_ising
from .solution import LAMBDA_ZERO, OBSERVABLE_WEIGHT_THRESHOLD, ExactSolution

__all__ = [
    "ExactSolution",
    "solve",
    "q_curve",
    "spectral_gap",
    "observable_gap",
    "OBSERVABLE_WEIGHT_THRESHOLD",
    "LAMBDA_ZERO",
    "MAX_SMALL_SIDE",
]

MAX_SMALL_SIDE = 12


def _check_data(rbm: RBM, data) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != rbm.n_visible or len(data) == 0:
        raise ValueError(f"data must have shape (N, {rbm.n_visible}), got {data.shape}")
    allowed = (-1.0, 1.0) if rbm.units == "spin" else (0.0, 1.0)
    if not np.all(np.isin(data, allowed)):
        raise ValueError(f"data must contain only {allowed} for {rbm.units} units")
    return data


def _sides(rbm: RBM):
    """(X states, field on X from Y, field on Y from X, Y size, X is hidden)."""
    n, m = rbm.W.shape
    if m <= n:
        return m, rbm.hidden_field, rbm.visible_field, n, True
    return n, rbm.visible_field, rbm.hidden_field, m, False


def _chain_of_small_side(rbm: RBM, observables: str):
    """Weights ``w`` (2^k × 2^k), ``p_X``, and the centred observables mapped onto X.

    Returns ``(w, p, Gt, Gm, V, Vm, Ef, x_is_hidden, k)`` where ``Gt = sqrt(p) · E[f̃|x]``
    (X hidden) or ``sqrt(p) · f̃(x)`` (X visible), likewise ``Gm`` for the magnetization; V, Vm
    are the summed variances, Ef = E_p f, and k the number of units on the small side.
    """
    k, field_x, field_y, l, x_is_hidden = _sides(rbm)
    if k > MAX_SMALL_SIDE:
        raise ValueError(f"exact solver: smaller side has {k} units (> {MAX_SMALL_SIDE}); use Monte Carlo")
    X = all_states(k, rbm.units)
    zY = field_y(X)  # (2^k, l): field on Y given each x
    lpz = rbm.log_partial(zY)  # log Σ_y exp(y·z_x): normaliser of p(y|x), and Y summed out of p(x)
    lx = X @ (rbm.b if x_is_hidden else rbm.a) + lpz
    p = np.exp(lx - lx.max())
    p /= p.sum()
    K = np.zeros((2**k, 2**k))
    rows = max(1, min(2**l, 2**22 // 2**k))

    def y_chunks():
        for start in range(0, 2**l, rows):
            Y = states_at(np.arange(start, min(start + rows, 2**l)), l, rbm.units)
            P = np.exp(Y @ zY.T - lpz[None, :])  # p(y|x), (rows, 2^k)
            yield Y, P

    def obs(v):
        return np.concatenate([gradient_observables(rbm, v, observables), magnetization(v)], axis=1)

    if x_is_hidden:
        n_obs = None
        Ef = PF = None
        for Y, P in y_chunks():
            u = field_x(Y)
            Q = np.exp(u @ X.T - rbm.log_partial(u)[:, None])  # p(x'|y), (rows, 2^k)
            K += P.T @ Q
            py = P @ p
            F = obs(Y)
            if n_obs is None:
                n_obs = F.shape[1]
                Ef, PF = np.zeros(n_obs), np.zeros((2**k, n_obs))
            Ef += py @ F
            PF += P.T @ F
        V = np.zeros(n_obs)
        for Y, P in y_chunks():
            V += (P @ p) @ (obs(Y) - Ef) ** 2
        G = PF - Ef[None, :]  # E[f̃ | x]
    else:
        for Y, P in y_chunks():
            u = field_x(Y)
            Q = np.exp(u @ X.T - rbm.log_partial(u)[:, None])
            K += P.T @ Q
        F = obs(X)
        Ef = p @ F
        G = F - Ef[None, :]
        V = p @ G**2
    if np.abs(K.sum(axis=1) - 1.0).max() > 1e-9:
        raise RuntimeError("exact solver: kernel rows do not sum to 1 (underflow in the conditionals?)")
    w = p[:, None] * K
    w = 0.5 * (w + w.T)
    Gt = np.sqrt(p)[:, None] * G
    return w, p, Gt[:, :-1], Gt[:, -1:], float(V[:-1].sum()), float(V[-1]), Ef[:-1], x_is_hidden, k


def _sector_inputs(w, p, sector, reps, flips):
    """Positive inputs (A, B, D, p) of the generator restricted to a sector (see _highprec)."""
    if sector == "all":
        A = w.copy()
        np.fill_diagonal(A, 0.0)
        return A, np.zeros_like(A), np.zeros(len(p)), p
    wRR = w[np.ix_(reps, reps)].copy()
    wRF = w[np.ix_(reps, flips)].copy()
    self_flip = np.diag(wRF).copy()
    np.fill_diagonal(wRR, 0.0)
    np.fill_diagonal(wRF, 0.0)
    zero = np.zeros(len(reps))
    if sector == "even":  # L_even(r, r') = L(r, r') + L(r, r̄'); diagonal Σ_{x ∉ {r, r̄}} w(r, x)
        return wRR + wRF, np.zeros_like(wRR), zero, p[reps]
    # L_odd(r, r') = L(r, r') − L(r, r̄'); diagonal Σ_{x ∉ {r, r̄}} w(r, x) + 2 w(r, r̄)
    return wRR, wRF, 2.0 * self_flip, p[reps]


def solve(rbm: RBM, data=None, observables: str = "weights") -> ExactSolution:
    """Exact mode decomposition of ``rbm``'s blocked-Gibbs chain; see the module docstring.

    An :class:`~snrbench.core.ising.IsingModel` is handed to :func:`snrbench.truth.exact_ising.solve`
    (random-scan single-site Gibbs, observables ``x_i x_j``).
    """
    if isinstance(rbm, IsingModel):
        return exact_ising.solve(rbm, data)
    if not isinstance(rbm, RBM):
        raise TypeError(f"solve() needs an snrbench.RBM, got {type(rbm).__name__}")
    w, p, Gt, Gm, V, Vm, Ef, x_is_hidden, k = _chain_of_small_side(rbm, observables)
    grad_norm2 = np.nan
    if data is not None:
        data = _check_data(rbm, data)
        g = gradient_observables(rbm, data, observables).mean(axis=0) - Ef
        grad_norm2 = float(g @ g)

    if rbm.spin_flip_symmetric:
        states = np.arange(2**k)
        reps = states[states < 2 ** (k - 1)]
        flips = flip_index(reps, k)
        perm = flip_index(states, k)
        w = 0.5 * (w + w[np.ix_(perm, perm)])
        p = 0.5 * (p + p[perm])
        parity = observable_parity(rbm, observables)
        even_G = (Gt[reps] + Gt[flips]) / np.sqrt(2.0)
        odd_G = (Gt[reps] - Gt[flips]) / np.sqrt(2.0)
        wrong = np.where(parity > 0, np.abs(odd_G).max(axis=0), np.abs(even_G).max(axis=0))
        right = np.where(parity > 0, np.abs(even_G).max(axis=0), np.abs(odd_G).max(axis=0))
        if np.any(wrong > 1e-9 * np.maximum(right, 1e-300) + 1e-14):
            raise RuntimeError("exact solver: an observable does not have its declared spin-flip parity")
        even_G[:, parity < 0] = 0.0
        odd_G[:, parity > 0] = 0.0
        sectors = [
            ("even", even_G, np.zeros((len(reps), 1)), np.sqrt(2.0 * p[reps])),
            ("odd", odd_G, (Gm[reps] - Gm[flips]) / np.sqrt(2.0), None),
        ]
    else:
        reps = flips = None
        sectors = [("all", Gt, Gm, np.sqrt(p))]

    gaps, names, S, Sm, methods, checks = [], [], [], [], [], []
    for name, G, Gmag, stationary in sectors:
        mu, U, method, check = sym_generator_eigh(*_sector_inputs(w, p, name, reps, flips))
        methods.append(method)
        checks.append(check)
        keep = np.ones(len(mu), dtype=bool)
        if stationary is not None:
            s0 = int(np.argmax(np.abs(U.T @ stationary)))
            if abs(mu[s0]) > 1e-12 or abs(U[:, s0] @ stationary) < 1 - 1e-8:
                raise RuntimeError(f"exact solver: stationary mode not found (μ = {mu[s0]:.3g})")
            keep[s0] = False
        mu, U = mu[keep], U[:, keep]
        if np.any(mu <= 0):
            raise RuntimeError(f"exact solver: non-positive gap {mu.min():.3g} in sector {name}")
        lam = 1.0 - mu
        d = ((U.T @ G) ** 2).sum(axis=1)
        dm = ((U.T @ Gmag) ** 2).sum(axis=1)
        if x_is_hidden:
            alive = lam >= LAMBDA_ZERO
            d = np.where(alive, d / np.where(alive, lam, 1.0), 0.0)
            dm = np.where(alive, dm / np.where(alive, lam, 1.0), 0.0)
        gaps.append(np.minimum(mu, 1.0))
        names += [name] * len(mu)
        S.append(d)
        Sm.append(dm)
    S = np.concatenate(S)
    Sm = np.concatenate(Sm)
    for total, tot_var, what in ((S.sum(), V, "gradient"), (Sm.sum(), Vm, "magnetization")):
        if total > tot_var * (1 + 1e-8) + 1e-300:
            raise RuntimeError(f"exact solver: {what} mode weights exceed the variance ({total:.6g} > {tot_var:.6g})")
    return ExactSolution(
        gaps=np.concatenate(gaps),
        sectors=np.array(names),
        weights=S,
        total_variance=V,
        weights_m=Sm,
        variance_m=Vm,
        grad_norm2=grad_norm2,
        method="+".join(sorted(set(methods))),
        eig_check=max(checks),
    )


def q_curve(rbm: RBM, data, T=spectral.T_GRID) -> np.ndarray:
    """``log10 Q(T)`` for one chain (C = 1) on ``T`` (default ``2^0 … 2^16``): numpy array."""
    return solve(rbm, data).log10_q(T)


def spectral_gap(rbm: RBM) -> float:
    """Global gap ``1 − λ_1`` of the blocked-Gibbs chain, to high relative precision."""
    return solve(rbm).spectral_gap


def observable_gap(rbm: RBM, data=None) -> float:
    """``1 − λ`` of the slowest mode with ``S_k ≥ 1e-12 · V`` on the weight observables.

    The mode weights do not depend on the data (only ‖g‖² does); ``data`` is accepted for symmetry
    with :func:`q_curve` and validated when given.
    """
    if data is not None:
        _check_data(rbm, data)
    return solve(rbm).observable_gap()


def chain_modes(rbm: RBM, observables: str = "weights"):
    """:class:`snrbench.truth.operational.ChainModes` of ``rbm``'s blocked-Gibbs chain on all 2^n visible
    states (for :func:`snrbench.truth.operational.window_error`); eigenpairs of the small side as in
    :func:`solve` (high precision, spin-flip sectors), the stationary mode included (gap 0)."""
    from .operational import ChainModes

    w, p, *_ , x_is_hidden, k = _chain_of_small_side(rbm, observables)
    n = rbm.n_visible
    V = all_states(n, rbm.units)
    F = gradient_observables(rbm, V, observables)
    lpv = rbm.log_marginal_visible(V)
    pv = np.exp(lpv - lpv.max())
    pv /= pv.sum()
    ft = F - pv @ F
    states = np.arange(2**k)
    if rbm.spin_flip_symmetric:
        reps = states[states < 2 ** (k - 1)]
        flips = flip_index(reps, k)
        perm = flip_index(states, k)
        w = 0.5 * (w + w[np.ix_(perm, perm)])
        p = 0.5 * (p + p[perm])
        names = ("even", "odd")
    else:
        reps = flips = None
        names = ("all",)
    gaps, cols = [], []
    for name in names:
        mu, U, _, _ = sym_generator_eigh(*_sector_inputs(w, p, name, reps, flips))
        Ut = np.zeros((2**k, len(mu)))
        if name == "all":
            Ut[:] = U
        else:
            Ut[reps] = U / np.sqrt(2.0)
            Ut[flips] = (1.0 if name == "even" else -1.0) * U / np.sqrt(2.0)
        gaps.append(np.clip(mu, 0.0, 1.0))
        cols.append(Ut / np.sqrt(p)[:, None])
    gaps, psi = np.concatenate(gaps), np.concatenate(cols, axis=1)
    X = all_states(k, rbm.units)
    if not x_is_hidden:  # the recorded state is X itself: A = I, B = K_X
        return ChainModes(gaps=gaps, right=psi, left=(1.0 - gaps)[:, None] * (psi * p[:, None]).T, ft=ft)
    zh = rbm.hidden_field(V)  # (2^n, m)
    A = np.exp(zh @ X.T - rbm.log_partial(zh)[:, None])  # p(h|v), (2^n, 2^k)
    zv = rbm.visible_field(X)
    B = np.exp(zv @ V.T - rbm.log_partial(zv)[:, None])  # p(v|h), (2^k, 2^n)
    return ChainModes(gaps=gaps, right=A @ psi, left=(psi * p[:, None]).T @ B, ft=ft)
