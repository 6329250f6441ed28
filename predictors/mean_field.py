"""mean-field (zero-cost, model tier): Q(T) from the weights and the data alone, 0 chain-sweeps.

The model's law is approximated by a mixture of Gaussian fluctuations around mean-field fixed points,
and the blocked-Gibbs chain by its linearisation at each of them (the mode cascade of W's singular
directions, seen through the fixed point's unit variances).

1. **Fixed points.** From ``n_starts`` training images (evenly spaced) the deterministic blocked update
   ``m_h = φ(b + Wᵀm_v)``, ``m_v = φ(a + W m_h)`` (φ = sigmoid for binary units, tanh for spins) is
   iterated to convergence; each block step minimises the naive mean-field free energy given the other
   block, so it converges. Fixed points within ``merge_tol`` (largest unit difference) are merged.
2. **Fluctuations in a basin.** Unit variances ``D_v = φ'(·)`` (binary ``m(1−m)``), ``D_h`` likewise.
   Eliminating h to second order gives visible couplings ``J = W D_h Wᵀ``; the linear-response covariance
   is ``Σ_v = (D_v⁻¹ − J)⁻¹ = D_v^{1/2}(I − M)⁻¹D_v^{1/2}``, ``M = B Bᵀ``, ``B = D_v^{1/2} W D_h^{1/2}``
   (n × m; its SVD gives M's m non-zero eigenvalues ``μ_k = s_k²``, clipped at ``mu_max``). Basin s
   gets the weight ``w_s ∝ exp(log Z_s)``, the Laplace estimate ``log Z_s = −F_MF(m_s) − ½ Σ_k log(1 − μ_k)``
   (nats; ``basin_weights="data"`` uses the fraction of images that flowed into it instead, which makes
   the model's moments look like the data's and ‖g‖² far too small on trained checkpoints).
3. **Static moments** (f² units). The hidden field ``x_j = b_j + W_jᵀv`` is taken Gaussian with mean
   ``b_j + W_jᵀm_v`` and variance ``W_jᵀΣ_v W_j``; conditioning on ``v_i = s`` shifts its mean by
   ``(Σ_v W)_ij (s − m_i)/D_i``. Then ``E[f_ij] = Σ_s s P(v_i = s) E[φ(x_j) | v_i = s]`` and
   ``E[f_ij²]`` likewise with ``φ²`` (Gauss–Hermite, ``n_nodes`` nodes), over all n·m observables.
   Mixture: ``E f = Σ_s w_s E_s f``, ``V = Σ_s w_s V_s + B`` with the between-basin part
   ``B = Σ_s w_s ‖E_s f − E f‖²``, and ``‖g‖² = ‖mean_data f − E f‖²`` (the data term exact, from
   ``problem.data``).
4. **Dynamics.** Linearised, one sweep maps ``δv → D_v J δv`` + noise: in ``z = D_v^{-1/2} δv`` an AR(1)
   with matrix M, so mode k (``u_k``) has ``λ_k = μ_k`` and the null space of M has ``λ = 0``. The
   linearised observable ``δf_ij = c_ijᵀδv``, ``c_ij = m_hj e_i + m_vi D_hj W_{:j}``, puts the weight
   ``S_k ∝ Σ_ij (c_ijᵀ D_v^{1/2} u_k)² / (1 − μ_k)`` on mode k (closed form, no n·m·n array); the
   weights are rescaled so their share of the basin's linear variance is their share of ``V_s``.
   Hopping between basins is activated, which the linearisation cannot see: ``B`` gets the gap
   ``Σ_s w_s e^{−ΔF_s}`` (1/sweep, Arrhenius with unit prefactor), ``ΔF_s`` the lowest mean-field
   free-energy barrier (nats) from basin s to another heavy basin along the straight path between
   their visible means (``between_gap="barrier"``, floored at 2⁻⁴⁰; a number fixes the gap instead).

``Tr Cov(T) = Σ_s w_s Σ_k S_k^s v_T(μ_k^s) + B v_T(λ_B) + rest/T`` (``λ_B`` = 1 − the hop gap); prediction
``log10 ‖g‖² − log10 Tr Cov(T)``. Exact as W → 0 (independent units; Q(T) = T‖g‖²/V); it must fail
where the law is far from a mixture of Gaussian bumps (strong couplings in few units). Spends no
sweeps: its cost is the worker's CPU seconds only (about n·m·(n_starts·iterations + n_nodes·basins)).
"""
import numpy as np

from snrbench.pilot import log10_q_from_modes
from snrbench.predict import Prediction, Predictor
from snrbench.spectral import integrated_time

_TINY = 1e-300


def _phi(x, units):
    return np.tanh(x) if units == "spin" else 0.5 * (1.0 + np.tanh(0.5 * x))


def _values(units):
    """The two values of a unit (low, high)."""
    return (-1.0, 1.0) if units == "spin" else (0.0, 1.0)


def fixed_points(W, a, b, starts, units, tol=1e-7, max_iter=2000):
    """Converged ``(m_v, m_h)`` of the blocked mean-field update from each start row (visible means)."""
    mv = np.asarray(starts, dtype=np.float64).copy()
    for _ in range(max_iter):
        mh = _phi(mv @ W + b, units)
        new = _phi(mh @ W.T + a, units)
        done = np.abs(new - mv).max() < tol
        mv = new
        if done:
            break
    return mv, _phi(mv @ W + b, units)


def merge(mv, tol):
    """Group rows closer than ``tol`` in every unit: (representatives, weights), largest basin first."""
    reps, counts = [], []
    for row in mv:
        for k, r in enumerate(reps):
            if np.abs(r - row).max() < tol:
                counts[k] += 1
                break
        else:
            reps.append(row)
            counts.append(1)
    order = np.argsort(counts)[::-1]
    w = np.asarray(counts, dtype=np.float64)[order]
    return np.asarray(reps)[order], w / w.sum()


def basin(W, a, b, mv, units, mu_max=0.999, n_nodes=24):
    """One basin's moments: ``E f`` (n, m), ``V_s`` (f²) and its linear modes ``(μ_k, S_k)``."""
    lo, hi = _values(units)
    mh = _phi(mv @ W + b, units)
    Dv = np.maximum((hi - mv) * (mv - lo), 1e-12)  # Var of a two-valued unit with mean m
    deriv = (hi - mh) * (mh - lo)  # φ'(x), which is also the hidden unit's variance: σ(1−σ), 1 − tanh²
    # linear response: Σ_v = Dv^½ (I − M)⁻¹ Dv^½, M = B Bᵀ
    Bm = np.sqrt(Dv)[:, None] * W * np.sqrt(deriv)[None, :]
    U, s, _ = np.linalg.svd(Bm, full_matrices=False)  # U (n, r)
    mu = np.minimum(s**2, mu_max)
    amp = mu / (1.0 - mu)
    sq = np.sqrt(Dv)

    def sigma_times(X):  # Σ_v X for X (n, k)
        Y = sq[:, None] * X
        return sq[:, None] * (Y + U @ (amp[:, None] * (U.T @ Y)))

    SW = sigma_times(W)  # Cov(v, x) = Σ_v W, (n, m)
    var_x = np.maximum((W * SW).sum(axis=0), 0.0)  # (m,)
    mean_x = mv @ W + b
    nodes, wts = np.polynomial.hermite_e.hermegauss(n_nodes)
    wts = wts / wts.sum()
    cond_var = np.maximum(var_x[None, :] - SW**2 / Dv[:, None], 0.0)  # (n, m)
    cond_sd = np.sqrt(cond_var)
    Ef = np.zeros_like(W)
    Ef2 = np.zeros_like(W)
    p_hi = (mv - lo) / (hi - lo)
    for val, prob in ((hi, p_hi), (lo, 1.0 - p_hi)):
        if val == 0.0:
            continue
        shift = SW * ((val - mv) / Dv)[:, None]
        e1 = np.zeros_like(W)
        e2 = np.zeros_like(W)
        for z, wz in zip(nodes, wts):
            y = _phi(mean_x[None, :] + shift + z * cond_sd, units)
            e1 += wz * y
            e2 += wz * y * y
        Ef += (val * prob)[:, None] * e1
        Ef2 += (val * val * prob)[:, None] * e2
    Vs = float(np.maximum(Ef2 - Ef**2, 0.0).sum())
    # linearised observables: c_ij = mh_j e_i + mv_i Dh_j W_{:j}; projection on y = Dv^½ u_k
    Y = sq[:, None] * U  # (n, r)
    WY = deriv[:, None] * (W.T @ Y)  # (m, r): Dh ⊙ Wᵀy
    proj2 = ((Y**2).sum(0) * (mh @ mh) + (mv @ mv) * (WY**2).sum(0) + 2.0 * (mv @ Y) * (mh @ WY))
    S = proj2 / (1.0 - mu)
    # Σ_ij c_ijᵀ D_v c_ij: the linear variance with every direction at λ = 0 (variance 1 in z)
    base = (Dv.sum() * (mh @ mh) + 2.0 * ((mv * Dv) @ W @ (mh * deriv))
            + (mv @ mv) * float((deriv**2 * ((W**2 * Dv[:, None]).sum(0))).sum()))
    V_lin = base + float((proj2 * amp).sum())
    scale = Vs / V_lin if V_lin > 0 else 0.0
    return Ef, Vs, mu, S * scale


def _entropy(m, units):
    lo, hi = _values(units)
    p = np.clip((m - lo) / (hi - lo), 1e-300, 1.0)
    q = np.clip(1.0 - (m - lo) / (hi - lo), 1e-300, 1.0)
    return float(-(p * np.log(p) + q * np.log(q)).sum())


def log_z(W, a, b, mv, units, mu):
    """Laplace estimate of a basin's ``log Z_s`` (nats): ``−F_MF − ½ Σ_k log(1 − μ_k)``."""
    mh = _phi(mv @ W + b, units)
    energy = a @ mv + b @ mh + mv @ W @ mh
    return energy + _entropy(mv, units) + _entropy(mh, units) - 0.5 * float(np.log1p(-mu).sum())


def free_energy(W, a, b, mv, units):
    """Naive mean-field free energy (nats) of visible means ``mv`` (rows), hidden means relaxed."""
    mv = np.atleast_2d(mv)
    mh = _phi(mv @ W + b, units)
    energy = mv @ a + mh @ b + ((mv @ W) * mh).sum(1)
    return -(energy + np.array([_entropy(r, units) + _entropy(h, units) for r, h in zip(mv, mh)]))


def hop_gap(W, a, b, reps, w, units, n_path=33, min_weight=1e-3):
    """Between-basin gap (1/sweep): ``Σ_s w_s exp(−ΔF_s)``, ``ΔF_s`` the lowest free-energy barrier
    from basin s to another along straight paths in the visible means (an upper bound on the saddle)."""
    heavy = np.flatnonzero(w >= min_weight)
    if heavy.size < 2:
        return 1.0
    t = np.linspace(0.0, 1.0, n_path)[:, None]
    F0 = free_energy(W, a, b, reps[heavy], units)
    barrier = np.full(heavy.size, np.inf)
    for x in range(heavy.size):
        for y in range(x + 1, heavy.size):
            path = (1.0 - t) * reps[heavy[x]] + t * reps[heavy[y]]
            top = free_energy(W, a, b, path, units).max()
            barrier[x] = min(barrier[x], top - F0[x])
            barrier[y] = min(barrier[y], top - F0[y])
    rate = np.exp(-np.maximum(barrier, 0.0))
    return float(min(1.0, (w[heavy] * rate).sum() / w[heavy].sum()))


class MeanFieldModel(Predictor):
    name = "mean-field"
    access = "model"

    def __init__(self, n_starts=64, merge_tol=0.05, mu_max=0.999, n_nodes=24, between_gap="barrier",
                 basin_weights="free-energy"):
        self.n_starts, self.merge_tol, self.mu_max = n_starts, merge_tol, mu_max
        self.n_nodes, self.between_gap, self.basin_weights = n_nodes, between_gap, basin_weights

    def estimate(self, model, data):
        """``(‖g‖², V, mode weights, mode gaps)`` over all n·m weight observables (f², f², f², 1/sweep)."""
        W, a, b, units = model.W, model.a, model.b, model.units
        data = np.asarray(data, dtype=np.float64)
        d_mean = data.T @ _phi(data @ W + b, units) / len(data)  # mean_data f, exact (n, m)
        idx = np.linspace(0, len(data) - 1, min(self.n_starts, len(data))).round().astype(int)
        mv, _ = fixed_points(W, a, b, data[idx], units)
        reps, w = merge(mv, self.merge_tol)
        parts = [basin(W, a, b, r, units, self.mu_max, self.n_nodes) for r in reps]
        if self.basin_weights == "free-energy":
            lz = np.array([log_z(W, a, b, r, units, p[2]) for r, p in zip(reps, parts)])
            w = np.exp(lz - lz.max())
            w /= w.sum()
        Ef = sum(ws * p[0] for ws, p in zip(w, parts))
        between = float(sum(ws * ((p[0] - Ef) ** 2).sum() for ws, p in zip(w, parts)))
        V = float(sum(ws * p[1] for ws, p in zip(w, parts))) + between
        weights = np.concatenate([ws * p[3] for ws, p in zip(w, parts)] + [[between]])
        if self.between_gap == "barrier":
            bg = max(hop_gap(W, a, b, reps, w, units), 2.0**-40)
        else:
            bg = self.between_gap
        gaps = np.concatenate([1.0 - p[2] for p in parts] + [[bg]])
        g2 = float(((d_mean - Ef) ** 2).sum())
        return max(g2, _TINY), max(V, _TINY), weights, np.maximum(gaps, _TINY)

    def predict(self, problem):
        if problem.observables != "weights":
            raise ValueError(f"mean-field models f_ij = v_i E[h_j|v] only, not {problem.observables!r}")
        g2, V, S, gaps = self.estimate(problem.model, problem.data)
        keep = S > 1e-12 * V
        curve = log10_q_from_modes(g2, S[keep], gaps[keep], V, problem.T)
        return Prediction(curve, tau=integrated_time(S[keep], gaps[keep], V), grad_norm2=g2)
