"""Annealed importance sampling (AIS) of an RBM's log partition function, and the log-likelihood.

For MNIST-sized RBMs (n = 784 visible units, m > 20 hidden units, where
:func:`snrbench.truth.hidden_enum.log_partition` cannot enumerate), following Salakhutdinov & Murray
(2008), "On the quantitative analysis of deep belief networks", ICML. All logs are natural (nats).

Path: the tempered family of :mod:`snrbench.core.tempered`,
``p_β = RBM(βW, (1 − β)a₀ + βa, βb)``, from the base-rate model (β = 0, independent visible units
with bias ``a₀``, ``log Z₀`` exact) to the RBM (β = 1). Its unnormalised visible marginal is
``log p̃_β(v) = ((1 − β)a₀ + βa)ᵀv + Σ_j log Σ_{h_j} exp(h_j β(Wᵀv + b)_j)``.

Each of ``R`` independent runs starts from an exact sample ``v ~ p₀`` and, for ``k = 1 … K``
(``β₀ = 0 < β₁ < … < β_K = 1``), adds ``log p̃_{β_k}(v) − log p̃_{β_{k−1}}(v)`` to its log-weight
``w``, then moves ``v`` by one blocked-Gibbs sweep that leaves ``p_{β_k}`` invariant
(``h ~ p_{β_k}(h|v)``, ``v ~ p_{β_k}(v|h)``; the sweep after the last weight update is skipped).
``E[e^w] = Z / Z₀``, so::

    log Ẑ = log Z₀ + log mean_r e^{w_r}

is an unbiased estimate of Z on the linear scale, and ``E[log Ẑ] ≤ log Z`` (Jensen): a too-short
schedule underestimates log Z. With ``r = e^{w − max w}``, ``r̄`` its mean and ``s = sd(r)/√R`` the
standard error of that mean, the reported interval is ``log Z₀ + max w + log(r̄ ± 3s)`` (the
convention of Salakhutdinov's ``RBM_AIS.m``). Its lower end is clipped at ``max_r log p̃₁(v_r)`` over the final
states, a certain lower bound (Z is a sum of positive terms ``p̃₁(v)``), which also stands in when
``r̄ ≤ 3s``. The effective sample size is ``ESS = (Σ e^w)² / Σ e^{2w}`` (between 1 and R).

Each increment's hidden part ``Σ_j [L(β_k x_j) − L(β_{k−1} x_j)]`` (``x = Wᵀv + b``, ``L`` the log
partial of one unit) is formed without subtraction (``log1p``/``expm1``, see :func:`_increment`) and
the log-weights are summed in float64, so a float32 run loses no accuracy to cancellation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.model import RBM
from ..core.tempered import log_partition_base

__all__ = ["AISResult", "default_schedule", "ais_log_partition", "log_likelihood"]

#: Salakhutdinov & Murray's schedule: β steps of 1e-3 on [0, 0.5], 1e-4 on [0.5, 0.9], 1e-5 on [0.9, 1].
_KNOT_STEPS = np.array([0.0, 500.0, 4500.0, 14500.0])
_KNOT_BETAS = np.array([0.0, 0.5, 0.9, 1.0])


@dataclass(frozen=True)
class AISResult:
    """``log Ẑ`` (nats) with its ±3-standard-error interval, the run count, the schedule length
    (number of βs, both ends included) and the effective sample size of the importance weights."""

    log_z: float
    log_z_low: float
    log_z_high: float
    n_runs: int
    n_betas: int
    ess: float


def default_schedule(n_betas: int = 14_501) -> np.ndarray:
    """The β schedule of Salakhutdinov & Murray (2008), optionally resampled to ``n_betas`` values.

    The default (14,501 βs, exactly 0 first and 1.0 last) steps by 1e-3 on [0, 0.5], 1e-4 on
    [0.5, 0.9] and 1e-5 on [0.9, 1]. Other ``n_betas`` keep that shape: β is interpolated linearly
    between the knots (0, 0.5, 0.9, 1) placed at steps (0, 500, 4500, 14500) of 14,500.
    """
    n_betas = int(n_betas)
    if n_betas < 2:
        raise ValueError(f"default_schedule: n_betas must be ≥ 2, got {n_betas}")
    return np.interp(np.linspace(0.0, _KNOT_STEPS[-1], n_betas), _KNOT_STEPS, _KNOT_BETAS)


def _check_betas(betas) -> np.ndarray:
    betas = np.asarray(default_schedule() if betas is None else betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size < 2 or not np.all(np.isfinite(betas)):
        raise ValueError(f"betas must be a 1-D array of at least 2 finite values, got shape {betas.shape}")
    if betas[0] != 0.0 or betas[-1] != 1.0 or not np.all(np.diff(betas) > 0):
        raise ValueError("betas must increase strictly from exactly 0 to exactly 1")
    return betas


def _increment(x: torch.Tensor, beta: float, dbeta: float, spin: bool) -> torch.Tensor:
    """``Σ_j [L((β + Δβ)x_j) − L(βx_j)]``, the hidden side of a log-weight increment, summed in float64.

    ``L`` is the log-partial of one hidden unit; the difference is formed without subtracting two
    large numbers. Binary units, ``L(y) = log(1 + e^y)``:
    ``Δβ·max(x, 0) + log1p(σ(−β|x|)·expm1(−Δβ|x|))``; spins, ``L(y) = log(e^y + e^{−y})``:
    ``Δβ|x| + log1p(σ(−2β|x|)·expm1(−2Δβ|x|))``. Every argument stays bounded (no overflow).
    """
    z = x.abs()
    linear = z if spin else x.clamp(min=0.0)
    if spin:
        z = 2.0 * z
    inc = torch.log1p(torch.sigmoid(-beta * z) * torch.expm1(-dbeta * z)) + dbeta * linear
    return inc.sum(dim=-1, dtype=torch.float64)


def _draw_(field: torch.Tensor, u: torch.Tensor, out: torch.Tensor, spin: bool, gen: torch.Generator) -> None:
    """Overwrite ``out`` with units drawn independently given their fields (``field`` is consumed):
    ``p(on) = σ(field)`` (binary, 0/1) or ``p(+1) = σ(2·field)`` (spins, ±1)."""
    (field.mul_(2.0) if spin else field).sigmoid_()
    torch.lt(u.uniform_(generator=gen), field, out=out)
    if spin:
        out.mul_(2.0).sub_(1.0)


def ais_log_partition(rbm: RBM, a0, n_runs: int = 256, betas=None, seed: int = 0, device="cpu",
                      dtype=torch.float64) -> AISResult:
    """Estimate ``log Z`` (nats) of ``rbm`` by AIS from the base-rate model with visible bias ``a0``.

    Parameters
    ----------
    rbm : RBM
        Binary or spin units.
    a0 : array, shape (n,)
        Visible bias of the β = 0 model (e.g. :func:`snrbench.core.tempered.base_rate_bias` of the data).
    n_runs : int
        Independent AIS runs R (≥ 2), vectorised.
    betas : array, optional
        Strictly increasing from exactly 0 to exactly 1; default :func:`default_schedule`.
    seed : int
        Seeds the run's own ``torch.Generator`` (the global RNG is never touched).
    device, dtype
        Where and in which precision (float32 or float64) the chains run; the log-weights are
        accumulated in float64.
    """
    if not isinstance(rbm, RBM):
        raise TypeError(f"ais_log_partition needs an snrbench.RBM, got {type(rbm).__name__}")
    n, m = rbm.n_visible, rbm.n_hidden
    a0 = np.asarray(a0, dtype=np.float64)
    if a0.shape != (n,) or not np.all(np.isfinite(a0)):
        raise ValueError(f"a0 must be a finite array of shape ({n},), got shape {a0.shape}")
    if int(n_runs) != n_runs or n_runs < 2:
        raise ValueError(f"n_runs must be an integer ≥ 2, got {n_runs}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    betas = _check_betas(betas)
    R, spin = int(n_runs), rbm.units == "spin"
    kw = dict(device=torch.device(device), dtype=dtype)
    gen = torch.Generator(device=kw["device"]).manual_seed(int(seed))
    # [W | a − a₀] and [b | 0]: one product gives the hidden field Wᵀv + b and the visible term (a − a₀)ᵀv
    W_ext = torch.tensor(np.column_stack([rbm.W, rbm.a - a0]), **kw)
    b_ext = torch.tensor(np.append(rbm.b, 0.0), **kw)
    Wt, a0_t, d = torch.tensor(rbm.W.T, **kw), torch.tensor(a0, **kw), torch.tensor(rbm.a - a0, **kw)
    v, h, pv = (torch.empty(R, k, **kw) for k in (n, m, n))
    u_v, u_h = torch.empty(R, n, **kw), torch.empty(R, m, **kw)
    _draw_(pv.copy_(a0_t.expand(R, n)), u_v, v, spin, gen)  # exact samples of p₀
    logw = torch.zeros(R, device=kw["device"], dtype=torch.float64)
    K = len(betas) - 1
    for k in range(1, K + 1):
        bk, bp = float(betas[k]), float(betas[k - 1])
        xd = torch.addmm(b_ext, v, W_ext)
        x = xd[:, :m]  # Wᵀv + b, the hidden field at β = 1
        logw += (bk - bp) * xd[:, m].to(torch.float64) + _increment(x, bp, bk - bp, spin)
        if k < K:  # one sweep leaving p_{β_k} invariant; the visible field is β(Wh + a) + (1 − β)a₀
            _draw_(bk * x, u_h, h, spin, gen)
            _draw_(torch.addmm(a0_t + bk * d, h, Wt, alpha=bk, out=pv), u_v, v, spin, gen)
    # Z ≥ p̃₁(v) for every v: the largest over the final states is a certain lower bound on log Z
    floor = float(rbm.log_marginal_visible(v.cpu().to(torch.float64).numpy()).max())

    logw = logw.cpu().numpy()
    shift = log_partition_base(a0, m, rbm.units) + logw.max()
    r = np.exp(logw - logw.max())
    mean, se = r.mean(), r.std(ddof=1) / np.sqrt(R)
    low = shift + np.log(mean - 3.0 * se) if mean > 3.0 * se else -np.inf
    return AISResult(log_z=float(shift + np.log(mean)), log_z_low=float(max(low, floor)),
                     log_z_high=float(shift + np.log(mean + 3.0 * se)), n_runs=R, n_betas=len(betas),
                     ess=float(r.sum() ** 2 / (r @ r)))


def log_likelihood(rbm: RBM, data, log_z: float) -> float:
    """Mean log-likelihood of the data rows (nats per row): ``mean_v log p̃(v) − log Z``."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != rbm.n_visible:
        raise ValueError(f"data must have shape (N ≥ 1, {rbm.n_visible}), got {data.shape}")
    allowed = (-1.0, 1.0) if rbm.units == "spin" else (0.0, 1.0)
    if not np.all((data == allowed[0]) | (data == allowed[1])):
        raise ValueError(f"data must contain only {allowed} for {rbm.units} units")
    if not np.isfinite(log_z):
        raise ValueError(f"log_z must be finite, got {log_z}")
    return float(rbm.log_marginal_visible(data).mean() - log_z)
