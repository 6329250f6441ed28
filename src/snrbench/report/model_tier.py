"""The model tier against the sampler-only tier, per family and budget (issue 37): a pure function of
the stored scores.

For every family where some entry has model-tier scores and every budget it was scored at, one row per
model-tier entry: its tracked fraction, cells, median CPU seconds and median chain-sweeps per cell,
beside the best sampler-only entry at the same family and budget (ranked as the per-family tables
are: tracked fraction, then the lower median ``max_err``, then the name) with the same figures. A
zero-cost entry's fraction thus sits beside its CPU seconds and its 0 chain-sweeps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "model_tier_table"]

#: Columns of :func:`model_tier_table` (fractions in [0, 1]; seconds of CPU; chain-sweeps per cell).
COLUMNS = ["family", "budget", "entry", "cells", "tracked_fraction", "cpu_seconds", "chain_sweeps",
           "best_sampler_only", "sampler_only_cells", "sampler_only_fraction", "sampler_only_cpu_seconds",
           "sampler_only_chain_sweeps"]


def _summary(g: pd.DataFrame) -> dict:
    return dict(cells=int(len(g)), fraction=float(g["tracked"].astype(bool).mean()),
                cpu=float(np.median(g["cpu_seconds"])), sweeps=float(np.median(g["sweeps"])),
                max_err=float(np.median(g["max_err"])))


def model_tier_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, budget, model-tier entry) with the best sampler-only entry beside it.

    ``scores``: the scores table (columns ``family``, ``predictor``, ``access``, ``budget``,
    ``tracked``, ``max_err``, ``sweeps``, ``cpu_seconds``; one row per cell). Columns :data:`COLUMNS`;
    the sampler-only columns are empty (None / NaN) where no sampler-only entry was scored at that
    family and budget. Rows sorted by family, budget, then descending tracked fraction and entry name.
    """
    rows = []
    model = scores[scores["access"] == "model"]
    sampler = scores[scores["access"] == "sampler-only"]
    for (family, budget), g in model.groupby(["family", "budget"], sort=True):
        rivals = sampler[(sampler["family"] == family) & (sampler["budget"] == budget)]
        best_name, best = None, None
        for name, r in rivals.groupby("predictor", sort=True):
            s = _summary(r)
            if best is None or (-s["fraction"], s["max_err"], name) < (-best["fraction"], best["max_err"], best_name):
                best_name, best = name, s
        for name, e in g.groupby("predictor", sort=True):
            s = _summary(e)
            rows.append(dict(family=family, budget=int(budget), entry=name, cells=s["cells"],
                             tracked_fraction=s["fraction"], cpu_seconds=s["cpu"], chain_sweeps=s["sweeps"],
                             best_sampler_only=best_name,
                             sampler_only_cells=None if best is None else best["cells"],
                             sampler_only_fraction=np.nan if best is None else best["fraction"],
                             sampler_only_cpu_seconds=np.nan if best is None else best["cpu"],
                             sampler_only_chain_sweeps=np.nan if best is None else best["sweeps"]))
    out = pd.DataFrame(rows, columns=COLUMNS)
    if out.empty:
        return out
    out = out.sort_values(["family", "budget", "tracked_fraction", "entry"], ascending=[True, True, False, True],
                          kind="stable")
    return out.reset_index(drop=True)
