"""Monte Carlo ``Q(T)`` at MNIST scale: R replicate chains, window means through Gram matrices.

With ``n·m`` ≈ 5·10⁴ … 2·10⁵ weight observables and R = 1024 replicates, ``f`` is never formed per
chain and sweep. Per replicate r the running sum ``S_r = Σ_t v_tᵀ E[h|v_t]`` is accumulated with one
batched product per block of sweeps (``(R, n, B)·(R, B, m)``) and read at each T of the grid
(``2^0 … t_max``; blocks end at every grid point). At each T, with ``X_r = S_r/T`` (flattened) and
``X̃ = X − X̄`` (``X̄`` the mean over replicates), only the R × R Gram matrix ``G = X̃X̃ᵀ`` is kept:

* ``Tr Ĉ(T) = tr G/(R − 1)`` — unbiased for ``Tr Cov[ĝ(T, 1)]`` (f²);
* ``‖ĝ‖² = ‖d‖² − Tr Ĉ(T_max)/R`` with ``d = mean_data f − X̄(T_max)`` — unbiased for ``‖g‖²``;
* a bootstrap over replicates needs nothing else: with multinomial counts ``c`` (Σc = R) the
  resampled ``Σ_a Var*`` is ``(c·diag G − cᵀGc/R)/(R − 1)`` and the resampled mean moves by
  ``δ = c X̃/R``, so ``‖d − δ‖² = ‖d‖² − 2 c·(X̃d)/R + cᵀGc/R²``. 95% percentile intervals; the
  resampled ``‖ĝ‖²`` is bias-corrected twice (its bootstrap mean is ``‖d‖²``, so ``Tr Ĉ(T_max)/R`` is
  subtracted once more), so the interval is centred on the estimate.

``Q(T) = ‖g‖²/Tr Ĉ(T)`` uses the exact ``‖g‖²`` when the caller has it (m ≤ 20, hidden-side
enumeration), else the Monte Carlo one; the bootstrap then resamples numerator and denominator
together. Diagnostics as in :mod:`snrbench.truth.montecarlo`: split-R̂ and the doubling rule on the
projections of f on its top-3 principal components (from the starting states), recorded every
``thin = max(1, t_max/256)`` sweeps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import RBM
from .montecarlo import RHAT_MAX, _diagnostics
from ..core.sampler import BlockGibbs

__all__ = ["ScaleCurve", "scale_q_curve", "independent_total_variance", "StateComparison", "compare_states",
           "Z_MAX"]

#: Largest |z| of :func:`compare_states` at which two sets of states count as one law: two-sided
#: p ≈ 0.001 per z, so over the default mnist suite (12 tempered cells × 4 z-scores) an equilibrated
#: cell is flagged by chance with probability about 5% (Bonferroni). At 3.0 that was 12%, and the
#: stored m64-u0 cell (157,456 round trips, a near-independent model) came out at z = −3.08.
Z_MAX = 3.3

_BLOCK = 32
_N_RECORDED = 256


@dataclass(frozen=True)
class ScaleCurve:
    """Per T: ``log10_q`` with 95% CI, ``trace_cov`` ± ``trace_cov_se`` (f²); ``grad_norm2_mc`` with its
    95% CI (f²); ``grad_norm2_used`` (exact when given); diagnostics as in MonteCarloCurve."""

    T: np.ndarray
    log10_q: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    trace_cov: np.ndarray
    trace_cov_se: np.ndarray
    grad_norm2_mc: float
    grad_norm2_low: float
    grad_norm2_high: float
    grad_norm2_used: float
    n_replicates: int
    rhat: float
    tau_L: float
    tau_2L: float
    doubling_ok: bool
    thin: int

    @property
    def flagged(self) -> bool:
        return not (self.rhat <= RHAT_MAX and self.doubling_ok)


def _features(gibbs: BlockGibbs) -> tuple[torch.Tensor, torch.Tensor]:
    """Current ``v`` (R, n) and ``E[h|v]`` (R, m) (``2p − 1`` for spins)."""
    return gibbs.v, gibbs.basis_features()


def _flatten(Svh: torch.Tensor, Sv: torch.Tensor, Sh: torch.Tensor, which: str) -> torch.Tensor:
    X = Svh.reshape(Svh.shape[0], -1)
    return torch.cat([X, Sv, Sh], dim=1) if which == "weights+biases" else X


def _top_components(v: torch.Tensor, h: torch.Tensor, which: str, seed: int, k: int = 3) -> torch.Tensor:
    """Top-k principal directions of f over the starting states, ``(k, n_obs)``. The randomized SVD
    draws from torch's global generator; it is seeded here from ``seed`` inside a forked state, so the
    directions (and the R̂ and τ read along them) do not depend on what the process drew before."""
    f = _flatten(v[:, :, None] * h[:, None, :], v, h, which)
    f = f - f.mean(0)
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if f.device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        _, _, V = torch.svd_lowrank(f, q=k + 5, niter=3)
    return V[:, :k].T.contiguous()


def _project(pcs: torch.Tensor, v: torch.Tensor, h: torch.Tensor, which: str) -> torch.Tensor:
    """``f(v)·pc_k`` for each chain without forming f: ``Σ_ij v_i P_ij h_j (+ bias parts)``, (R, k)."""
    n, m = v.shape[1], h.shape[1]
    P = pcs[:, : n * m].reshape(-1, n, m)
    out = torch.einsum("rn,knm,rm->rk", v, P, h)
    if which == "weights+biases":
        out = out + v @ pcs[:, n * m: n * m + n].T + h @ pcs[:, n * m + n:].T
    return out


def scale_q_curve(rbm: RBM, data_mean: np.ndarray, v0, T, observables: str = "weights", seed: int = 0,
                  grad_norm2_exact: float | None = None, n_boot: int = 400, device: str = "cpu",
                  dtype=torch.float32, progress: bool = False) -> ScaleCurve:
    """Monte Carlo ``log10 Q(T, C=1)`` of blocked Gibbs from the R states ``v0`` (see the module docstring)."""
    from tqdm.auto import tqdm

    T = np.asarray(T, dtype=np.int64)
    t_max = int(T.max())
    gibbs = BlockGibbs(rbm, len(v0), device=device, dtype=dtype, seed=seed, v0=v0)
    R, n, m = gibbs.n_chains, rbm.n_visible, rbm.n_hidden
    pcs = _top_components(*_features(gibbs), observables, seed)
    thin = max(1, t_max // _N_RECORDED)
    kw = dict(device=gibbs.device, dtype=dtype)
    Svh, Sv, Sh = torch.zeros(R, n, m, **kw), torch.zeros(R, n, **kw), torch.zeros(R, m, **kw)
    Vb, Hb = torch.empty(R, _BLOCK, n, **kw), torch.empty(R, _BLOCK, m, **kw)
    d_full = torch.as_tensor(np.asarray(data_mean, dtype=np.float64), device=gibbs.device)
    grams, z, d2, rec = {}, None, None, []
    grid, filled = set(T.tolist()), 0
    for t in tqdm(range(1, t_max + 1), desc="Monte Carlo sweeps", disable=not progress, unit="sweep", leave=False):
        gibbs.sweep()
        v, h = _features(gibbs)
        Vb[:, filled], Hb[:, filled] = v, h
        filled += 1
        if t % thin == 0:
            rec.append(_project(pcs, v, h, observables).double().cpu().numpy())
        if filled == _BLOCK or t in grid:
            Svh.baddbmm_(Vb[:, :filled].transpose(1, 2), Hb[:, :filled])
            Sv += Vb[:, :filled].sum(1)
            Sh += Hb[:, :filled].sum(1)
            filled = 0
        if t in grid:
            X = _flatten(Svh, Sv, Sh, observables) / t
            mean = X.double().mean(0)
            X -= mean.to(dtype)
            grams[t] = (X @ X.T).double()
            if t == t_max:
                d = d_full - mean
                z, d2 = (X.double() @ d).cpu().numpy(), float(d @ d)
            del X
    G = np.stack([grams[int(t)].cpu().numpy() for t in T])  # (n_T, R, R)
    diagG = np.diagonal(G, axis1=1, axis2=2)  # (n_T, R)
    tc = diagG.sum(1) / (R - 1)
    dev2 = diagG * R / (R - 1)
    tc_se = dev2.std(axis=1, ddof=1) / np.sqrt(R)
    g2_mc = d2 - tc[-1] / R
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(R, np.full(R, 1.0 / R), size=n_boot).astype(np.float64)  # (B, R)
    cGc = np.einsum("br,trs,bs->tb", counts, G, counts, optimize=True)  # (n_T, B)
    tc_b = (counts @ diagG.T - cGc.T / R).T / (R - 1)  # (n_T, B)
    # The resampled ‖ĝ‖² has mean ‖d‖² (the bootstrap world's plug-in truth), not the unbiased ‖ĝ‖² = ‖d‖² − Tr Ĉ/R:
    # shifted by −Tr Ĉ(T_max)/R the replicates centre on the estimate (else, when ‖g‖² is near the noise floor
    # Tr Ĉ/R, the whole interval sat above the estimate it belongs to).
    g2_b = d2 - 2.0 * counts @ z / R + cGc[-1] / R**2 - tc_b[-1] / R - tc[-1] / R
    g2 = g2_mc if grad_norm2_exact is None else float(grad_norm2_exact)
    num_b = g2_b if grad_norm2_exact is None else np.full(n_boot, g2)
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = np.log10(g2) - np.log10(tc)
        lq_b = np.log10(num_b)[None, :] - np.log10(tc_b)
    lo, hi = np.nanpercentile(lq_b, [2.5, 97.5], axis=1)
    # a replicate with ‖ĝ‖² ≤ 0 has Q = 0 (log −∞), not "no value": when 2.5% or more are, the lower end is −∞
    lo = np.where(np.mean(num_b <= 0) >= 0.025, -np.inf, lo)
    g_lo, g_hi = np.percentile(g2_b, [2.5, 97.5])
    diag = _diagnostics(np.stack(rec, axis=1)) if len(rec) >= 8 else dict(rhat=float("nan"), tau_L=float("nan"),
                                                                         tau_2L=float("nan"), doubling_ok=False)
    return ScaleCurve(T=T, log10_q=lq, ci_low=lo, ci_high=hi, trace_cov=tc, trace_cov_se=tc_se, grad_norm2_mc=g2_mc,
                      grad_norm2_low=float(g_lo), grad_norm2_high=float(g_hi), grad_norm2_used=g2, n_replicates=R,
                      thin=thin, **diag)


def _row_deviations(rbm: RBM, v: np.ndarray, observables: str) -> np.ndarray:
    """``N/(N−1)·‖f(v_r) − f̄‖²`` per row r (f²), whose mean is the unbiased ``Σ_a Var f_a``, without
    forming f: for ``f_r = v_r ⊗ h_r`` (``h_r = E[h|v_r]``) and the mean ``F̄ = Σ_r v_r ⊗ h_r/N``,
    ``‖f_r − F̄‖² = ‖v_r‖²‖h_r‖² − 2 v_r F̄ h_rᵀ + ‖F̄‖²`` (plus ``‖v_r − v̄‖² + ‖h_r − h̄‖²`` for the biases)."""
    v = np.asarray(v, dtype=np.float64)
    h = rbm.mean_from_field(rbm.hidden_field(v))
    F = v.T @ h / len(v)
    dev2 = (v ** 2).sum(1) * (h ** 2).sum(1) - 2.0 * ((v @ F) * h).sum(1) + (F ** 2).sum()
    if observables == "weights+biases":
        dev2 = dev2 + ((v - v.mean(0)) ** 2).sum(1) + ((h - h.mean(0)) ** 2).sum(1)
    return dev2 * len(v) / (len(v) - 1)


def independent_total_variance(rbm: RBM, v: np.ndarray, observables: str = "weights") -> tuple[float, float]:
    """``V = Σ_a Var f_a`` (f²) and its standard error from independent samples ``v`` (rows)."""
    dev2 = _row_deviations(rbm, v, observables)
    return float(dev2.mean()), float(dev2.std(ddof=1) / np.sqrt(len(dev2)))


@dataclass(frozen=True)
class StateComparison:
    """Two sets of states compared (:func:`compare_states`): ``z_variance``, ``z_gradient`` and ``agree``
    (both |z| ≤ :data:`Z_MAX`)."""

    z_variance: float
    z_gradient: float
    agree: bool


def compare_states(rbm: RBM, data_mean: np.ndarray, v_a: np.ndarray, v_b: np.ndarray, observables: str = "weights",
                   paired: bool = False) -> StateComparison:
    """Do two sets of states (rows of ``v_a``, ``v_b``) follow one law, as equilibrium starts must?

    Equilibrium starts are what makes ``Tr Ĉ(T)`` and ``‖ĝ‖²`` unbiased. An unconverged equilibration
    remembers where it began (two groups begun far apart differ) and still drifts (a group differs from
    itself earlier on). Two z-scores on what Q is made of, ``(b − a)/SE``:

    * of ``V = Σ_a Var f_a`` (= Tr Ĉ(T = 1) of chains started there), from the per-row terms
      ``d_r = N/(N−1)·‖f(v_r) − f̄‖²`` (f̄ the set's own mean);
    * of the mean of ``s_r = f(v_r)·u``, ``u`` the unit vector along ``mean_data f − mean f`` over both
      sets (the direction of the gradient, whose length ``‖g‖²`` measures).

    Independent sets: Welch's two-sample SE. ``paired=True`` (the same chains at two times, rows
    matched): the SE of the per-row differences, which allows for the chains' correlation in time.
    ``agree`` when both ``|z| ≤ Z_MAX`` (a NaN z, e.g. paired sets that never moved, does not agree). Agreement does not prove equilibrium (both sets may share a
    bias); disagreement proves its absence.
    """
    from ..core.observables import mean_gradient_observables

    v_a, v_b = (np.asarray(v, dtype=np.float64) for v in (v_a, v_b))
    if paired and v_a.shape != v_b.shape:
        raise ValueError(f"paired comparison needs matched rows, got shapes {v_a.shape} and {v_b.shape}")
    u = np.asarray(data_mean, dtype=np.float64) - mean_gradient_observables(rbm, np.vstack([v_a, v_b]), observables)
    u /= np.linalg.norm(u)
    n, m = rbm.n_visible, rbm.n_hidden
    U = u[: n * m].reshape(n, m)

    def along(v):  # f(v)·u per row, without forming f: v U E[h|v]ᵀ (+ the bias parts)
        h = rbm.mean_from_field(rbm.hidden_field(v))
        s = ((v @ U) * h).sum(1)
        return s + v @ u[n * m: n * m + n] + h @ u[n * m + n:] if observables == "weights+biases" else s

    def z(x_a, x_b):
        if paired:
            d = x_b - x_a
            if not d.any():  # the same states twice: nothing moved, nothing tested (NaN never agrees)
                return float("nan")
            return float(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))
        return float((x_b.mean() - x_a.mean()) / np.sqrt(x_a.var(ddof=1) / len(x_a) + x_b.var(ddof=1) / len(x_b)))

    z_v = z(_row_deviations(rbm, v_a, observables), _row_deviations(rbm, v_b, observables))
    z_g = z(along(v_a), along(v_b))
    return StateComparison(z_v, z_g, bool(abs(z_v) <= Z_MAX and abs(z_g) <= Z_MAX))
