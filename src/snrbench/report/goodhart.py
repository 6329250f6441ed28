"""The Goodhart track: what a dose of a Q forecast in the loss does to the forecast, to Q and to learning.

For every cell of the ``goodhart`` family (students trained on ``ℓ + λ·R``, :mod:`snrbench.families.goodhart`):

* the rewarded value ``R`` = the rewarded forecast of ``log10 Q(T_reward)`` (dex), recomputed from
  the stored student by :mod:`snrbench.truth.forecasts` (every forecast on the λ = 0 cells);
* the true ``log10 Q(T_reward)`` (dex), read from the stored exact ground truth;
* the exact mean log-likelihood ``ℓ`` (nats per sample), beside that of the best model without
  couplings (independent visible units at the data's means, ``W = 0``): a student at or below it
  has learned nothing about the correlations in the data.

:func:`plot` draws the three along the dose ladder, one panel per rewarded quantity
(``leaderboard/goodhart.png``); :func:`verdict` states whether the notebook's claim (the rewarded
diagnostic soars a billionfold while the model stops learning) is reproduced, with the numbers;
:func:`tracked_table` gives the tracked fraction of each entry on the cells optimised against each
quantity beside the λ = 0 cells, from a scores table. ``python -m snrbench.report.goodhart
[RESULTS] [OUT.png]`` prints the ladder, the verdict and, where scores exist, the table.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..families import get, load_suite
from ..store.locations import project_root
from ..store.logaxes import log10_exact
from ..truth import differentiable, forecasts
from . import scoring
from .figures import OKABE_ITO

__all__ = ["FAMILY", "BILLIONFOLD", "dose_ladder", "plot", "verdict", "held_arms", "tracked_table", "independent_loglik"]

FAMILY = "goodhart"
#: "Soars a billionfold": the median rewarded value rises by at least this many dex.
BILLIONFOLD = 9.0


def independent_loglik(data: np.ndarray) -> float:
    """Mean log-likelihood (nats per sample) of independent ±1 units at the data's means: the best
    model with ``W = 0``."""
    p = np.clip((1.0 + data.mean(0)) / 2.0, 1e-12, 1 - 1e-12)
    on = data > 0
    return float(np.mean(np.sum(np.where(on, np.log(p), np.log1p(-p)), axis=1)))


def dose_ladder(root: Path | str) -> pd.DataFrame:
    """One row per cell: seed, rewarded, dose, every forecast and the rewarded value at ``T_reward``
    (dex), the stored true ``log10 Q(T_reward)`` and its parts ``log10 ‖g‖²`` and ``log10 Tr Cov`` (dex),
    ``loglik`` and ``loglik_independent`` (nats)."""
    import torch

    family = get(FAMILY)
    truth = store.read_table(Path(root), family.truth_paths()[0]).to_pandas()
    rows = []
    for cell in load_suite(FAMILY)[1]:
        spec = cell.spec
        T = spec["reward_T"]
        g = truth[(truth.cell_id == cell.cell_id) & (truth["T"] == T)]
        if len(g) != 1:
            raise ValueError(f"no stored ground truth for {cell.label} at T = {T}: run `snrbench groundtruth "
                             f"--family {FAMILY}`")
        rbm, data = family.build_model(spec), family.build_data(spec)
        with torch.no_grad():
            ch = differentiable.chain(rbm.W, rbm.a, rbm.b)  # one chain for the four forecasts
            fc = {k: float(f(rbm.W, rbm.a, rbm.b, data, [T], ch=ch)[0]) for k, f in forecasts.FORECASTS.items()}
            ll = float(differentiable.log_likelihood(rbm.W, rbm.a, rbm.b, data))
        rows.append(dict(label=cell.label, cell_id=cell.cell_id, seed=spec["seed"], rewarded=spec["rewarded"],
                         dose=spec["dose"], reward_T=T, **{f"forecast_{k}": v for k, v in fc.items()},
                         rewarded_value=fc.get(spec["rewarded"], np.nan), true_log10_q=float(g.log10_q.iloc[0]),
                         log10_grad_norm2=math.log10(g.grad_norm2.iloc[0]),
                         log10_trace_cov=math.log10(g.trace_cov.iloc[0]),
                         loglik=ll, loglik_independent=independent_loglik(data)))
    return pd.DataFrame(rows)


def _arm(ladder: pd.DataFrame, name: str) -> pd.DataFrame:
    """The λ = 0 cells (their rewarded value set to ``name``'s forecast) and ``name``'s cells."""
    base = ladder[ladder.rewarded == "none"].assign(rewarded_value=lambda d: d[f"forecast_{name}"])
    return pd.concat([base, ladder[ladder.rewarded == name]])


def plot(ladder: pd.DataFrame, out: Path | str) -> Path:
    """Rewarded value and true log10 Q (dex, left axis) and log-likelihood (nats, right axis) against the
    dose, one panel per rewarded quantity; dots are seeds, lines their medians; λ = 0 drawn at the left.
    The dose axis is logarithmic, drawn as ``log10`` of the doses on a linear axis (:mod:`snrbench.store.logaxes`,
    not matplotlib's log scale, whose vectorised log moved pixels with the CPU): the same PNG bytes on every CPU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r for r in forecasts.FORECASTS if r in set(ladder.rewarded)]
    doses = sorted(d for d in ladder.dose.unique() if d > 0)
    zero_at = doses[0] / 10.0
    rows = (len(names) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(10.0, 3.8 * rows), sharey=True, squeeze=False)
    axes = axes.ravel()
    for ax, name in zip(axes, names):
        arm = _arm(ladder, name).assign(x=lambda d: log10_exact(np.where(d.dose > 0, d.dose, zero_at)))
        med = arm.groupby("x")[["rewarded_value", "true_log10_q", "loglik"]].median()
        ax.plot(med.index, med.rewarded_value, "-o", color=OKABE_ITO[0], label="rewarded forecast")
        ax.plot(med.index, med.true_log10_q, "--s", color=OKABE_ITO[3], label="true log10 Q")
        ax.scatter(arm.x, arm.rewarded_value, s=8, color=OKABE_ITO[0], alpha=0.5)
        ax.scatter(arm.x, arm.true_log10_q, s=8, color=OKABE_ITO[3], alpha=0.5)
        ax.axhline(0.0, color="grey", lw=0.7)
        ax.set(xlabel="dose λ (nats per dex)", title=f"rewarded: {name}")
        ax.set_xticks(log10_exact([zero_at] + doses), ["0"] + [f"{d:g}" for d in doses])
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(med.index, med.loglik, ":^", color=OKABE_ITO[2], label="log-likelihood")
        twin.scatter(arm.x, arm.loglik, s=8, color=OKABE_ITO[2], alpha=0.5)
        twin.axhline(float(arm.loglik_independent.median()), color=OKABE_ITO[2], lw=0.8, alpha=0.6,
                     label="independent units (W = 0)")
        twin.set_ylim(float(ladder.loglik.min()) - 0.5, float(ladder.loglik.max()) + 0.5)
        twin.set_ylabel("mean log-likelihood (nats)")
        if ax is axes[0]:
            lines, more = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
            fig.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower center", ncol=4)
    T = int(ladder.reward_T.iloc[0])
    for ax in axes[::2]:
        ax.set_ylabel(f"log10 Q(T = {T})  (dex)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return store.save_figure(fig, out, dpi=100)


def held_arms(ladder: pd.DataFrame) -> list[str]:
    """The rewarded quantities for which the claim holds (:func:`verdict`'s criterion), in forecast order."""
    return verdict(ladder, arms=True)[2]


def verdict(ladder: pd.DataFrame, arms: bool = False):
    """Whether the claim holds for some rewarded quantity: at some dose the median (over seeds) rewarded
    value is ≥ :data:`BILLIONFOLD` dex above λ = 0 while the median log-likelihood is at or below the
    independent-units model's; and the sentence with every quantity's numbers (with ``arms``, also the
    list of quantities for which it holds)."""
    parts, held = [], []
    ll_ind = float(ladder.loglik_independent.median())
    for name in [r for r in forecasts.FORECASTS if r in set(ladder.rewarded)]:
        arm = _arm(ladder, name)
        med = arm.groupby("dose")[["rewarded_value", "true_log10_q", "log10_grad_norm2", "log10_trace_cov",
                                   "loglik"]].median()
        rise = med.rewarded_value - med.rewarded_value.loc[0.0]
        ok = (rise >= BILLIONFOLD) & (med.loglik <= ll_ind)
        top = float(med.index.max())
        parts.append(f"{name}: λ = 0 → {top:g} moves the rewarded value {med.rewarded_value.loc[0.0]:+.1f} → "
                     f"{med.rewarded_value.loc[top]:+.1f} dex (×10^{rise.loc[top]:.1f}), true log10 Q "
                     f"{med.true_log10_q.loc[0.0]:+.1f} → {med.true_log10_q.loc[top]:+.1f} (log10 ‖g‖² "
                     f"{med.log10_grad_norm2.loc[0.0]:+.1f} → {med.log10_grad_norm2.loc[top]:+.1f}, log10 Tr Cov "
                     f"{med.log10_trace_cov.loc[0.0]:+.1f} → {med.log10_trace_cov.loc[top]:+.1f}), log-likelihood "
                     f"{med.loglik.loc[0.0]:.2f} → {med.loglik.loc[top]:.2f} nats"
                     + (f" (claim holds from λ = {float(ok[ok].index.min()):g})" if ok.any() else ""))
        if ok.any():
            held.append(name)
    head = (f"Reproduced for {', '.join(held)}" if held else "Not reproduced") + (
        f" (criterion: median rewarded value ≥ {BILLIONFOLD:g} dex above λ = 0 with median log-likelihood at or "
        f"below the independent-units model's {ll_ind:.2f} nats). ")
    sentence = head + "; ".join(parts) + "."
    return (bool(held), sentence, held) if arms else (bool(held), sentence)


def tracked_table(scores: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Tracked fraction at the full budget of each (entry, tier) on the λ = 0 cells and on the cells
    optimised against each rewarded quantity (doses > 0), as ``"k/n"`` strings."""
    spec = truth.drop_duplicates("cell_id").set_index("cell_id").spec_json.map(json.loads)
    arm = spec.map(lambda s: "λ = 0" if s["dose"] == 0 else s["rewarded"])
    s = scoring.at_largest_budget(scores[scores.family == FAMILY]).assign(arm=lambda d: d.cell_id.map(arm))
    cols = ["λ = 0"] + [r for r in forecasts.FORECASTS if r in set(arm)]
    table = s.groupby(["predictor", "access", "arm"]).tracked.agg(lambda t: f"{int(t.sum())}/{len(t)}").unstack("arm")
    return table.reindex(columns=cols)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else project_root() / "results"
    ladder = dose_ladder(root)
    cols = ["label", "rewarded_value", "true_log10_q", "log10_grad_norm2", "log10_trace_cov", "loglik"]
    print(ladder[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    gap = (ladder.forecast_true - ladder.true_log10_q).abs().max()
    print(f"differentiable float64 route vs stored exact truth at T_reward, all cells: max |Δ| = {gap:.2e} dex")
    print(verdict(ladder)[1])
    if len(argv) > 1:
        print("figure:", plot(ladder, argv[1]))
    if (root / "scores.parquet").is_file():
        truth = store.read_table(root, get(FAMILY).truth_paths()[0]).to_pandas()
        print(tracked_table(pd.read_parquet(root / "scores.parquet"), truth).to_string())


if __name__ == "__main__":
    main()
