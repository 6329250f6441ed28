"""One ranking per tier, over the same cells for every entry of the tier.

For a tier, every ranked entry is scored on the same cells at the full budget: the entries scored on
every cell any entry of the tier has are ranked over all of them; an entry with fewer cells is listed
beside the ranking, not in it (when no entry covers them all, the ranking runs over the cells common
to every entry instead). So no entry gains or loses by having run on more or fewer cells. Per entry:

- ``fraction[f]`` — tracked cells / cells of family f (among the common cells);
- ``mean_fraction`` — the mean of ``fraction[f]`` over the families (each family weighs the same,
  whatever its number of cells);
- ``borda`` — Borda points as MTEB aggregates tasks: in each family an entry earns one point per
  entry it beats on ``fraction`` and half a point per tie; summed over families;
- ``median_max_err`` — the median over the common cells of max_T err (dex);
- the cost, medians over the common cells: ``median_sweeps`` (chain-sweeps the entry spent per cell),
  ``median_seconds`` (wall-clock s) and ``median_cpu_seconds`` (the worker's CPU s). Not in the key.

Entries are ranked by ``mean_fraction``, then ``borda``, then ``median_max_err`` (lower first), then name.
``mean_fraction`` is compared **exactly** (:func:`exact_scores`): as the integer ``Σ_f count_f · L/m_f``
(``count_f`` tracked cells of the ``m_f`` cells of family f, ``L`` the least common multiple of the
``m_f``), whose value is ``mean_fraction · L · F``; the float is that integer divided once, for display.
Two entries equal as rationals are therefore equal (and go to Borda points), whatever the float rounding
of a sum of fractions would say (``(0.1 + 0.2 + 0.3)/3`` and ``(0.3 + 0.2 + 0.1)/3`` differ by an ulp).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["common_cells", "ranked_scores", "tier_ranking", "exact_scores"]


def exact_scores(counts, sizes) -> tuple[list[int], int]:
    """(scores, denominator) of the mean tracked fraction, exactly (module doc): ``counts`` (E × F) tracked
    cells of each entry in each family, ``sizes`` (F) the families' numbers of cells; ``scores[e] =
    Σ_f counts[e, f] · L/sizes[f]`` (Python ints) with ``L = lcm(sizes)``, and ``denominator = L · F``, so
    that the mean tracked fraction is ``scores[e] / denominator``. Equal rationals give equal scores."""
    sizes = [int(m) for m in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError("every family needs at least one cell")
    lcm = math.lcm(*sizes)
    unit = [lcm // m for m in sizes]
    scores = [sum(int(c) * u for c, u in zip(row, unit)) for row in np.asarray(counts).tolist()]
    return scores, lcm * len(sizes)


def common_cells(scores: pd.DataFrame) -> set[tuple[str, str]]:
    """The (family, cell_id) pairs scored for every entry of ``scores`` (empty when there is none)."""
    sets = [set(zip(g["family"], g["cell_id"])) for _, g in scores.groupby("predictor", sort=True)]
    return set.intersection(*sets) if sets else set()


def ranked_scores(scores: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """(the rows a tier is ranked on, unranked): the full-coverage entries' rows on their common cells
    (module doc), and each entry left out (fewer cells) with its number of cells."""
    cells = {p: set(zip(g["family"], g["cell_id"])) for p, g in scores.groupby("predictor", sort=True)}
    union = set().union(*cells.values()) if cells else set()
    full = [p for p, c in cells.items() if c == union]
    unranked = {p: len(c) for p, c in cells.items() if p not in full} if full else {}
    scores = scores[scores["predictor"].isin(full)] if full else scores
    common = common_cells(scores)
    keep = np.fromiter((k in common for k in zip(scores["family"], scores["cell_id"])), bool, len(scores))
    return scores[keep], unranked


def tier_ranking(scores: pd.DataFrame) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
    """(ranking, families, unranked) for the full-budget scores of one tier (module doc).

    ``ranking`` has one row per ranked entry with predictor, n_cells, tracked, ``fraction:<family>``
    per family, mean_fraction, borda, median_max_err, median_sweeps, median_seconds, median_cpu_seconds, in rank order (``rank``
    1…); ``unranked`` maps each entry left out (fewer cells) to its number of cells.
    """
    s, unranked = ranked_scores(scores)
    families = sorted(set(s["family"]))
    if s.empty:
        return pd.DataFrame(), families, unranked
    frac = s.groupby(["predictor", "family"])["tracked"].mean().unstack("family")[families]
    count = s.groupby(["predictor", "family"])["tracked"].sum().unstack("family")[families].reindex(frac.index)
    size = s.groupby(["predictor", "family"]).size().unstack("family")[families].reindex(frac.index)
    if (size.nunique() > 1).any():
        raise ValueError("every ranked entry must be scored on the same cells")
    key, denominator = exact_scores(count.to_numpy(), size.iloc[0].to_numpy())
    borda = pd.Series(0.0, index=frac.index)
    for f in families:  # on the counts: every ranked entry has the same cells, so they order the fractions exactly
        x = count[f].to_numpy()
        borda += [(x[i] > x).sum() + 0.5 * ((x[i] == x).sum() - 1) for i in range(len(x))]
    g = s.groupby("predictor")
    out = pd.DataFrame({
        "predictor": frac.index,
        "n_cells": g.size().reindex(frac.index).to_numpy(),
        "tracked": g["tracked"].sum().reindex(frac.index).astype(int).to_numpy(),
        **{f"fraction:{f}": frac[f].to_numpy() for f in families},
        **{f"cells:{f}": s[s.family == f].groupby("predictor").size().reindex(frac.index).to_numpy() for f in families},
        "mean_fraction": [k / denominator for k in key],  # one correctly rounded division of the exact score
        "borda": borda.to_numpy(),
        "median_max_err": g["max_err"].median().reindex(frac.index).to_numpy(),
        "median_sweeps": g["sweeps"].median().reindex(frac.index).to_numpy(),
        "median_seconds": g["seconds"].median().reindex(frac.index).to_numpy(),
        "median_cpu_seconds": g["cpu_seconds"].median().reindex(frac.index).to_numpy(),
    })
    out["_score"] = pd.Series(key, index=out.index, dtype=object)  # exact (Python ints): compared, never rounded
    out = out.sort_values(["_score", "borda", "median_max_err", "predictor"],
                          ascending=[False, False, True, True], kind="stable", ignore_index=True).drop(columns="_score")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out, families, unranked
