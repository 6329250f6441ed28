"""Confirmation of a plateau onset by intervention: do more chains restore progress after it, and not before?

A plateau is *sampler-limited* when the training gradient is drowned by the noise of its own
chains (``Q_train = C·Q(k) < 1``). Slower gains per doubling of updates do not show that: any run
has diminishing returns. The intervention does. From the checkpoint before the onset (update
``u_b``, ``Q_train ≥ 1``) and the one at it (``u_a``, the first with ``Q_train < 1``), training
goes on for the same ``N = u_a − u_b`` updates (:func:`snrbench.truth.train.resume_pcd`: the same
k, batch and rate schedule), once with the recipe's ``C`` chains and once with ``factor·C``, each
with ``seeds`` independent seeds. The log-likelihood gain ``ΔLL = LL(end) − LL(checkpoint)``
(nats per image) of each run is measured, and per side the *benefit of chains*

    B = mean ΔLL(factor·C) − mean ΔLL(C)          (nats per image; SE from the seeds, Welch)

**Verdict** (:func:`verdict`): *confirmed* when ``B_after > 0`` (one-sided Welch t-test at
``alpha``) and ``B_after − B_before > 0`` (one-sided z on the two SEs at ``alpha``): more chains
help after the onset and help more than before it, which is what a sampler-limited plateau means.
Otherwise *not confirmed*, with the failed test named.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["benefit", "verdict", "ALPHA"]

#: One-sided level of both tests of :func:`verdict`.
ALPHA = 0.05


def benefit(gain_more: np.ndarray, gain_recipe: np.ndarray) -> tuple[float, float, float]:
    """``(B, se, p)``: the mean gain with more chains minus with the recipe's (nats per image), its
    Welch standard error, and the one-sided Welch p-value of ``B > 0``."""
    x, y = np.asarray(gain_more, dtype=np.float64), np.asarray(gain_recipe, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"benefit: need at least 2 seeds per arm, got {len(x)} and {len(y)}")
    se = float(np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y)))
    p = float(stats.ttest_ind(x, y, equal_var=False, alternative="greater").pvalue)
    return float(x.mean() - y.mean()), se, p


def verdict(before: tuple[float, float, float], after: tuple[float, float, float], alpha: float = ALPHA) -> tuple[bool, str]:
    """``(confirmed, why)`` from the :func:`benefit` of each side (module docstring)."""
    (b0, se0, _), (b1, se1, p1) = before, after
    se = float(np.hypot(se0, se1))
    p_diff = float(stats.norm.sf((b1 - b0) / se)) if se > 0 else (0.0 if b1 > b0 else 1.0)
    numbers = (f"benefit of more chains {b1:+.3f} ± {se1:.3f} nats/image after the onset (p = {p1:.2g}), "
               f"{b0:+.3f} ± {se0:.3f} before (difference p = {p_diff:.2g})")
    if p1 < alpha and p_diff < alpha:
        return True, "confirmed: " + numbers
    failed = ([] if p1 < alpha else ["more chains do not help after the onset"]) + \
             ([] if p_diff < alpha else ["they do not help more after the onset than before"])
    return False, "not confirmed (" + "; ".join(failed) + "): " + numbers
