"""Independent reference routes for the exact solver (tests only).

* ``dense_reference``: the v-chain kernel ``K(v, v') = Σ_h p(h|v) p(v'|h)`` as an explicit dense
  matrix by enumeration of both sides, autocovariances by repeated matrix–vector products and τ
  by the linear-solve identity ``Σ_a ⟨f̃_a, (I+K)(I−K)⁻¹ f̃_a⟩_p`` (no eigenvectors). float64.
* ``mp_reference``: the smaller-side kernel, its eigenpairs, gaps and τ's in mpmath at 100 digits,
  computing ``1 − λ`` by plain subtraction (harmless at 100 digits), so it shares no numerics
  with the solver (float64 weights + FLINT/Arb generator).
"""
from __future__ import annotations

import mpmath as mp
import numpy as np

from snrbench.core.model import all_states
from snrbench.core.observables import gradient_observables, magnetization


def _cond(rbm, field, s):
    z = 2.0 * s * field if rbm.units == "spin" else (2.0 * s - 1.0) * field
    return 1.0 / (1.0 + np.exp(-z))


def dense_v_chain(rbm):
    """All visible states V, p(v) and the dense kernel ``K[v, v'] = Σ_h p(h|v) p(v'|h)`` by enumeration."""
    n, m = rbm.W.shape
    V = all_states(n, rbm.units)
    H = all_states(m, rbm.units)
    logp = V @ rbm.W @ H.T + (V @ rbm.a)[:, None] + (H @ rbm.b)[None, :]
    pj = np.exp(logp - logp.max())
    pj /= pj.sum()
    pv = pj.sum(axis=1)
    K = (pj / pv[:, None]) @ (pj / pj.sum(axis=0)[None, :]).T
    return V, pv, K


def dense_reference(rbm, observables="weights"):
    V, pv, K = dense_v_chain(rbm)
    F = gradient_observables(rbm, V, observables)
    Fm = magnetization(V)

    def centred(F):
        return F - pv @ F

    Ft, Fmt = centred(F), centred(Fm)
    s = np.sqrt(pv)
    Ks = s[:, None] * K / s[None, :]
    Ks = 0.5 * (Ks + Ks.T)
    lam = np.linalg.eigvalsh(Ks)

    def acov(Ft, tmax):
        out = [float(pv @ (Ft**2).sum(axis=1))]
        X = Ft.copy()
        for _ in range(tmax):
            X = K @ X
            out.append(float(pv @ (Ft * X).sum(axis=1)))
        return np.array(out)

    def tau(Ft):
        # (I − K) is singular on constants; f̃ is centred, so solve on the complement with the
        # rank-one fix (I − K + 1 pᵀ), whose inverse agrees with the pseudo-inverse there.
        M = np.eye(len(pv)) - K + np.outer(np.ones(len(pv)), pv)
        X = np.linalg.solve(M, Ft)
        num = pv @ (Ft * (Ft + 2.0 * (K @ X))).sum(axis=1)
        return float(num / (pv @ (Ft**2).sum(axis=1)))

    def trace_cov(Ft, T_list):
        C = acov(Ft, max(T_list))
        return np.array([(T * C[0] + 2 * sum((T - t) * C[t] for t in range(1, T))) / T**2 for T in T_list])

    return dict(lam=np.sort(lam)[::-1], tau_grad=tau(Ft), tau_m=tau(Fmt), V=float(pv @ (Ft**2).sum(axis=1)),
                Ef=pv @ F, trace_cov=lambda T_list: trace_cov(Ft, T_list))


def mp_reference(rbm, dps=100, observables="weights"):
    """Gaps (ascending), τ_grad and τ_m at ``dps`` digits via the smaller (hidden) side."""
    n, m = rbm.W.shape
    assert m <= n
    with mp.workdps(dps):
        W = [[mp.mpf(float(x)) for x in row] for row in rbm.W]
        a = [mp.mpf(float(x)) for x in rbm.a]
        b = [mp.mpf(float(x)) for x in rbm.b]
        V = all_states(n, rbm.units).astype(int).tolist()
        H = all_states(m, rbm.units).astype(int).tolist()
        joint = [[mp.exp(sum(V[i][r] * W[r][c] * H[j][c] for r in range(n) for c in range(m))
                         + sum(a[r] * V[i][r] for r in range(n)) + sum(b[c] * H[j][c] for c in range(m)))
                  for j in range(len(H))] for i in range(len(V))]
        Z = mp.fsum(mp.fsum(row) for row in joint)
        joint = [[x / Z for x in row] for row in joint]
        pv = [mp.fsum(row) for row in joint]
        ph = [mp.fsum(joint[i][j] for i in range(len(V))) for j in range(len(H))]
        nh = len(H)
        Ks = mp.matrix(nh, nh)
        for j in range(nh):
            for k in range(nh):
                Ks[j, k] = mp.fsum(joint[i][j] * joint[i][k] / pv[i] for i in range(len(V))) / mp.sqrt(ph[j] * ph[k])
        E, Q = mp.eigsy(Ks)
        order = sorted(range(nh), key=lambda k: -E[k])
        lam = [E[k] for k in order]

        def field_mean(x):
            return mp.tanh(x) if rbm.units == "spin" else 1 / (1 + mp.exp(-x))

        def obs(v):
            mh = [field_mean(mp.fsum(v[r] * W[r][c] for r in range(n)) + b[c]) for c in range(m)]
            f = [v[r] * mh[c] for r in range(n) for c in range(m)]
            return f, [mp.fsum(v) / n]

        fvals = [obs(v) for v in V]

        def tau(which):
            nf = len(fvals[0][which])
            Ef = [mp.fsum(pv[i] * fvals[i][which][a] for i in range(len(V))) for a in range(nf)]
            var = mp.fsum(pv[i] * (fvals[i][which][a] - Ef[a]) ** 2 for i in range(len(V)) for a in range(nf))
            # g_a(h) = E[f̃_a | h]
            g = [[mp.fsum(joint[i][j] * (fvals[i][which][a] - Ef[a]) for i in range(len(V))) / ph[j]
                  for a in range(nf)] for j in range(nh)]
            total, wsum = mp.mpf(0), mp.mpf(0)
            for kk in order[1:]:
                lam_k = E[kk]
                if lam_k <= mp.mpf(10) ** (-40):
                    continue
                d = mp.fsum(mp.fsum(mp.sqrt(ph[j]) * g[j][a] * Q[j, kk] for j in range(nh)) ** 2 for a in range(nf))
                S = d / lam_k
                wsum += S
                total += S * (1 + lam_k) / (1 - lam_k)
            return (total + (var - wsum)) / var

        return dict(gaps=[1 - x for x in lam[1:]], tau_grad=tau(0), tau_m=tau(1))


def dense_ising_sweep(model):
    """All states X, p(x) and the dense sweep kernel ``P^N`` of random-scan Gibbs, built from the
    log-weights of each state and its single-site flips (no use of the solver's rate formula)."""
    N = model.n_spins
    X = all_states(N, "spin")
    lw = np.array([0.5 * x @ model.J @ x + model.h @ x for x in X])
    p = np.exp(lw - lw.max())
    p /= p.sum()
    P = np.zeros((len(X), len(X)))
    for s in range(len(X)):
        for i in range(N):
            t = s ^ (1 << i)
            flip = 1.0 / (1.0 + np.exp(lw[s] - lw[t]))  # p(x_i = flipped value | rest)
            P[s, t] += flip / N
            P[s, s] += (1.0 - flip) / N
    return X, p, np.linalg.matrix_power(P, N)


def brute_window_error(K, ft, start, T, burn_in):
    """``E‖(1/T) Σ_{t=B+1}^{B+T} f̃(v_t)‖²`` by explicit propagation of the start distribution."""
    pis = [start @ np.linalg.matrix_power(K, s) for s in range(burn_in + 1, burn_in + T + 1)]
    total = 0.0
    for a in range(T):
        total += pis[a] @ (ft**2).sum(axis=1)
        for b in range(a + 1, T):
            total += 2.0 * pis[a] @ (ft * (np.linalg.matrix_power(K, b - a) @ ft)).sum(axis=1)
    return total / T**2


def assert_window_trace_cov(means, sol, rel_se=0.03):
    """Replicate window means ``{T: (R, n_obs)}`` from equilibrium starts: Tr Ĉ(T) within 3 standard
    errors of the exact ``sol.trace_cov(T)``, and the check resolves a ``rel_se``·3 error."""
    for T, x in means.items():
        x = x.numpy()
        R = len(x)
        z = ((x - x.mean(axis=0)) ** 2).sum(axis=1)
        est, se = z.sum() / (R - 1), z.std(ddof=1) / np.sqrt(R)
        want = float(sol.trace_cov([T])[0])
        assert abs(est - want) < 3 * se, (T, est, want, se)
        assert se < rel_se * want
