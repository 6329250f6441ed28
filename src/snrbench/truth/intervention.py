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
``alpha``) and ``B_after − B_before > 0`` (one-sided t on the two SEs with the Welch–Satterthwaite
degrees of freedom of the four arms, at ``alpha``): more chains help after the onset and help more
than before it, which is what a sampler-limited plateau means. Otherwise *not confirmed*, with the
failed test named. The two sides draw distinct seeds, so their benefits are independent.
:func:`summary` gives one verdict per onset from the stored runs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["benefit", "verdict", "summary", "ALPHA"]

#: One-sided level of both tests of :func:`verdict`.
ALPHA = 0.05


def benefit(gain_more: np.ndarray, gain_recipe: np.ndarray) -> tuple[float, float, float, float]:
    """``(B, se, p, df)``: the mean gain with more chains minus with the recipe's (nats per image), its
    Welch standard error, the one-sided Welch p-value of ``B > 0`` and the Welch–Satterthwaite degrees
    of freedom ``se⁴ / Σ (s_i²/n_i)² / (n_i − 1)``."""
    x, y = np.asarray(gain_more, dtype=np.float64), np.asarray(gain_recipe, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"benefit: need at least 2 seeds per arm, got {len(x)} and {len(y)}")
    parts = np.array([x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)])
    se = float(np.sqrt(parts.sum()))
    df = float(parts.sum() ** 2 / (parts[0] ** 2 / (len(x) - 1) + parts[1] ** 2 / (len(y) - 1))) if se > 0 else np.inf
    p = float(stats.ttest_ind(x, y, equal_var=False, alternative="greater").pvalue)
    return float(x.mean() - y.mean()), se, p, df


def verdict(before: tuple, after: tuple, alpha: float = ALPHA) -> tuple[bool, str]:
    """``(confirmed, why)`` from the :func:`benefit` of each side (module docstring)."""
    (b0, se0, _, df0), (b1, se1, p1, df1) = before, after
    se = float(np.hypot(se0, se1))
    df = se**4 / (se0**4 / df0 + se1**4 / df1) if se > 0 else np.inf  # Welch–Satterthwaite over the two sides
    p_diff = float(stats.t.sf((b1 - b0) / se, df)) if se > 0 else (0.0 if b1 > b0 else 1.0)
    numbers = (f"benefit of more chains {b1:+.3f} ± {se1:.3f} nats/image after the onset (p = {p1:.2g}), "
               f"{b0:+.3f} ± {se0:.3f} before (difference p = {p_diff:.2g})")
    if p1 < alpha and p_diff < alpha:
        return True, "confirmed: " + numbers
    failed = ([] if p1 < alpha else ["more chains do not help after the onset"]) + \
             ([] if p_diff < alpha else ["they do not help more after the onset than before"])
    return False, "not confirmed (" + "; ".join(failed) + "): " + numbers


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per onset of the stored runs (table ``intervention``): the mean gains per side and arm,
    the benefit of more chains before and after (nats per image, SE) and the :func:`verdict`. A pure
    function of the rows; ValueError naming the onset when a side or an arm has no runs."""
    rows = []
    for (fam, m, onset), g in runs.groupby(["family", "n_hidden", "onset_update"], sort=True):
        got = {}
        for side in ("before", "after"):
            s = g[g.side == side]
            more, recipe = s[s.chains_factor > 1].gain.to_numpy(), s[s.chains_factor == 1].gain.to_numpy()
            if len(more) < 2 or len(recipe) < 2:
                raise ValueError(f"{fam} m = {m}, onset {onset}: the {side} side has {len(recipe)} run(s) with the "
                                 f"recipe's chains and {len(more)} with more; at least 2 each are needed")
            got[side] = benefit(more, recipe) + (int(s["update"].iloc[0]), int(s["updates"].iloc[0]),
                                                 float(recipe.mean()), float(more.mean()))
        ok, why = verdict(got["before"][:4], got["after"][:4])
        (b0, se0, _, _, u0, n, g0r, g0m), (b1, se1, *_, g1r, g1m) = got["before"], got["after"]
        rows.append(dict(family=fam, n_hidden=int(m), onset_update=int(onset), before_update=u0, updates=n,
                         chains=int(g.chains.min()), factor=int(g.chains_factor.max()),
                         seeds=int(((g.side == "after") & (g.chains_factor == 1)).sum()),
                         gain_before_recipe=g0r, gain_before_more=g0m, gain_after_recipe=g1r, gain_after_more=g1m,
                         benefit_before=b0, benefit_before_se=se0, benefit_after=b1, benefit_after_se=se1,
                         confirmed=ok, verdict=why))
    return pd.DataFrame(rows)
