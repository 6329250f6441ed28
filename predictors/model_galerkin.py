"""model-galerkin (model tier): the sampler-only Galerkin spectrum, with ‖g‖² and V taken from the model.

``Tr Cov(T) = Σ_k S_k v_T(λ_k) + (V − Σ_k S_k)/T`` and ``log10 Q = log10 ‖g‖² − log10 Tr Cov``, as the
sampler-only ``multimode`` (every significant mode kept), but three of its inputs use the weights and the
data, so the same chain-sweeps buy a better estimate:

- **All n·m observables.** A sampler-only entry sees a random subset of 512 weight observables, scaled
  (DESIGN §4); the subset's ‖g‖² and V are unbiased but carry a sampling error of their own that no
  budget removes (about 0.085 dex in ‖g‖² on every mnist-large cell at every budget). Here the chains
  also return their states v, and ``f(v) = v ⊗ E[h|v]`` is summed over all n·m observables on up to
  ``max_frames`` evenly spaced recorded sweeps per chain (CPU: ``frames · chains · n · m`` flops, one
  matrix product per group of chains), with ``‖f(v)‖² = ‖v‖² ‖E[h|v]‖²`` for the pooled ``V``. ``‖g‖²``
  is the noise-corrected ``‖d − f̄‖² − Σ Var_g(f̄_g)/G`` on the means of ``G = groups`` disjoint groups
  of chains (independent, so their spread measures the noise of f̄ without assuming a mixing time),
  ``d = mean_data f`` exact from ``problem.data``.
- **Exact ‖g‖² where the hidden side is small** (m ≤ 20): ``E_p[v_i E[h_j|v]] = Σ_h p(h) h_j E[v_i|h]``
  by enumerating the 2^m hidden states (``snrbench.truth.hidden_enum``), and ``V`` from ``n_exact``
  independent exact samples of p(v) (h ~ p(h), then v | h), so neither depends on whether the chains
  have mixed.
- **The dynamics** from the chains: the lagged Galerkin problem on products of ``E[h_j|v]`` (as
  ``multimode``, ``snrbench.galerkin``; ``n_chains`` chains of ``B/n_chains`` sweeps, an eighth burn-in),
  each mode's share ``S_k/V`` measured on the visible subset and applied to the model's V.

Units: ‖g‖², V and S_k in f²; gaps per sweep. Spends the cell's budget; CPU on top of the Galerkin
work is the full-observable sums (a few seconds at m = 256) and, for m ≤ 20, the enumeration.
"""
import numpy as np
import torch

from snrbench.galerkin import LaggedCovariances, basis_degree, basis_degree_count, galerkin_spectrum, product_basis
from snrbench.pilot import grad_norm2_estimate, log10_q_from_modes
from snrbench.predict import Prediction, Predictor
from snrbench.spectral import integrated_time


def full_moments(v, h, groups: int):
    """Per-group sums of ``f = v ⊗ h`` (G, n, m) and ``Σ ‖f‖²`` over some frames.

    ``v`` (t, C, n), ``h`` (t, C, m) float64 tensors; chains ``[gC/G, (g+1)C/G)`` form group g."""
    t, C, n = v.shape
    vg = v.reshape(t, groups, C // groups, n).transpose(0, 1).reshape(groups, -1, n)
    hg = h.reshape(t, groups, C // groups, -1).transpose(0, 1).reshape(groups, vg.shape[1], -1)
    return torch.bmm(vg.transpose(1, 2), hg), float(((v * v).sum(-1) * (h * h).sum(-1)).sum())


class ModelGalerkin(Predictor):
    name = "model-galerkin"
    access = "model"

    def __init__(self, n_chains=128, burn_in_fraction=0.125, block=64, max_features=128, max_frames=512,
                 n_exact=4096, max_hidden_exact=20, groups=16):
        if n_chains % groups:
            raise ValueError(f"model-galerkin: n_chains = {n_chains} is not a multiple of groups = {groups}")
        self.n_chains, self.burn_in_fraction, self.block, self.groups = n_chains, burn_in_fraction, block, groups
        self.max_features, self.max_frames = max_features, max_frames
        self.n_exact, self.max_hidden_exact = n_exact, max_hidden_exact

    def predict(self, problem):
        model, info = problem.model, problem.info
        data = np.asarray(problem.data, dtype=np.float64)
        C, block = self.n_chains, self.block
        n_sweeps = int(problem.budget) // C
        burn_in = int(self.burn_in_fraction * n_sweeps)
        L = ((n_sweeps - burn_in) // block) * block
        if L < 2 * block:
            raise ValueError(f"model-galerkin: {n_sweeps - burn_in} recorded sweeps; need at least {2 * block}")
        n, m = info.n_visible, info.n_hidden
        full = problem.observables == "weights"  # f = v ⊗ E[h|v]; otherwise the visible subset only
        degree = basis_degree(m, self.max_features)
        acc = LaggedCovariances(basis_degree_count(m, degree), info.n_observables, max(1, L // 16))
        thin = max(1, L // self.max_frames)
        sums = torch.zeros(self.groups, n, m, dtype=torch.float64) if full else None
        sq, n_frames = 0.0, 0
        sub_sum = torch.zeros(C, info.n_observables, dtype=torch.float64)
        sampler = problem.sampler(C)
        sampler.run(burn_in)
        what = ("observables", "basis_features") + (("v",) if full else ())
        for i, rec in enumerate(sampler.record_blocks(L // block, block, what)):
            F, X = rec["observables"].to(torch.float64), rec["basis_features"].to(torch.float64)
            acc.add_block(product_basis(X.reshape(-1, m), degree)[0].reshape(block, C, -1), F)
            sub_sum += F.sum(0)
            if full:
                t0 = i * block
                frames = np.arange((-t0) % thin, block, thin)
                s, q = full_moments(rec["v"][frames].to(torch.float64), X[frames], self.groups)
                sums += s
                sq += q
                n_frames += frames.size
        mo = acc.moments()
        spec = galerkin_spectrum(mo["C0"], mo["lagged"], mo["cross"], mo["V"], gap_floor=1.0 / (C * L))
        if full:
            d = data.T @ model.mean_from_field(model.hidden_field(data)) / len(data)
            per_group = (sums / (n_frames * C // self.groups)).reshape(self.groups, -1).numpy()
            g2 = grad_norm2_estimate(d.ravel(), per_group)
            V = sq / (n_frames * C) - float((per_group.mean(0) ** 2).sum())
            if m <= self.max_hidden_exact:
                g2, V = self._exact(model, data)
        else:
            g2 = grad_norm2_estimate(problem.data_mean, (sub_sum / L).numpy())
            V = spec.V
        k = np.flatnonzero(spec.significant)
        S = spec.weights[k] * (V / spec.V) if spec.V > 0 else spec.weights[k]
        curve = log10_q_from_modes(g2, S, spec.gaps[k], V, problem.T)
        return Prediction(curve, tau=integrated_time(S, spec.gaps[k], V), grad_norm2=g2)

    def _exact(self, model, data):
        """Exact ‖g‖² (hidden-side enumeration) and V from independent exact samples of p(v) (f², f²)."""
        from snrbench.truth.hidden_enum import grad_norm2, sample_visible

        g2 = grad_norm2(model, data, "weights")
        v = sample_visible(model, self.n_exact, np.random.default_rng(0))
        h = model.mean_from_field(model.hidden_field(v))
        mean_f = v.T @ h / len(v)
        N = len(v)
        V = ((v * v).sum(1) * (h * h).sum(1)).mean() - float((mean_f**2).sum())
        return g2, V * N / (N - 1)
