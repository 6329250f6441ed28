"""The leaderboard's PNG figures: true vs predicted curves, the error heatmap, the budget frontier.

Colours are the Okabe–Ito palette (distinguishable with every common colour-vision deficiency) and
the tier is also drawn as a line style, so no figure relies on colour alone. The heatmap's colour
scale is logarithmic in the error and diverges at the tracking threshold log10 2 dex. PNG bytes
depend only on what is drawn (no timestamps, no "Software" key, matplotlib's default style), and what is
drawn comes from stored or rounded numbers: curves are drawn as stored log10 Q against log2 T on linear
axes labelled in powers (:mod:`snrbench.store.logaxes`), so no vectorised log or power (whose last bit
depends on the CPU) moves a pixel; the frontier's budgets likewise as log10 by ``math.log10``, and the
heatmap's colours as the log10 of each max err by ``math.log10``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..store.logaxes import log2_exact, log10_exact, log_ticks
from . import scoring

__all__ = ["OKABE_ITO", "TIER_DASH", "tier_styles", "natural_key", "colours", "plot_curves", "plot_heatmap", "plot_frontier",
           "plot_differences", "plot_interventions", "MAX_CURVE_CELLS", "rows_by"]

#: Cells shown per family in ``curves_<family>.png``.
MAX_CURVE_CELLS = 8
#: Okabe & Ito (2008), "Color universal design"; black is kept for the ground truth and the yellow,
#: faint as a line on white, comes last.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#999999", "#F0E442")
#: Line style per tier (matplotlib names; the page's SVG uses the same pattern as a dash array).
TIER_DASH = {"white-box": "-", "model": ":", "sampler-only": "--"}
_DPI = 100
_DASH_NAMES = {"-": "solid", "--": "dashed", ":": "dotted"}


def tier_styles(accesses) -> str:
    """"solid = white-box, dashed = sampler-only": the line style of each tier among ``accesses`` only
    (a figure's key names no style it does not draw)."""
    present = set(accesses)
    return ", ".join(f"{_DASH_NAMES[dash]} = {tier}" for tier, dash in TIER_DASH.items() if tier in present)


def natural_key(label: str) -> tuple:
    """Sort key reading digit runs as numbers, so checkpoints sort in training order (u16 < u128)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(label)))


def colours(n: int) -> list[str]:
    """``n`` colours from :data:`OKABE_ITO` (repeating beyond 8; the line style still tells tiers apart)."""
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(n)]


def _save_png(fig, path: Path) -> None:
    store.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None}))


def rows_by(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
    """``frame``'s rows for each value of ``keys`` (a tuple), in ``frame``'s order and with its index: the rows
    a boolean mask per value would select, found in one pass (a mask per cell and entry cost seconds a page)."""
    return {k: g for k, g in frame.groupby(keys, sort=False, dropna=True)}


def sorted_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, in natural label order (training order for checkpoints), cell_id breaking ties."""
    cells = frame.drop_duplicates("cell_id")
    order = sorted(range(len(cells)), key=lambda i: (natural_key(cells["label"].iloc[i]), cells["cell_id"].iloc[i]))
    return cells.iloc[order].reset_index(drop=True)


def curve_cells(truth: pd.DataFrame) -> pd.DataFrame:
    """Up to MAX_CURVE_CELLS cells, evenly spread over the lowest seed's cells in label order (over all
    cells when the lowest seed has fewer than that)."""
    cells = sorted_cells(truth)
    cells = cells.iloc[np.argsort(cells["seed"].to_numpy(), kind="stable")].reset_index(drop=True)
    first = cells[cells.seed == cells.seed.min()]
    pool = first if len(first) >= min(MAX_CURVE_CELLS, len(cells)) else cells
    if len(pool) > MAX_CURVE_CELLS:
        pool = pool.iloc[np.unique(np.round(np.linspace(0, len(pool) - 1, MAX_CURVE_CELLS)).astype(int))]
    return pool.reset_index(drop=True)


def plot_curves(family: str, truth: pd.DataFrame, pred: pd.DataFrame, path: Path) -> None:
    """True Q(T) (black, with its 95% CI where Monte Carlo) and every entry's, on up to 8 cells."""
    from matplotlib.figure import Figure

    cells = curve_cells(truth)
    entries = sorted(set(zip(pred["predictor"], pred["access"])))
    cols = colours(len(entries))
    ncols = min(4, len(cells))
    nrows = -(-len(cells) // ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.9 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(cells):]:
        ax.set_axis_off()
    truth_of, pred_of = rows_by(truth, ["cell_id"]), rows_by(pred, ["cell_id", "predictor", "access"])
    for ax, cell in zip(axes.flat, cells.itertuples(index=False)):
        t = truth_of.get((cell.cell_id,), truth.iloc[:0]).sort_values("T")
        if "ci_low" in t and t["ci_low"].notna().any():
            ax.fill_between(log2_exact(t["T"]), t["ci_low"], t["ci_high"], color="0.75", lw=0, label="95% CI")
        ax.plot(log2_exact(t["T"]), t["log10_q"], color="black", lw=3.0, label="ground truth")
        for (name, access), col in zip(entries, cols):
            p = pred_of.get((cell.cell_id, name, access), pred.iloc[:0]).sort_values("T")
            ax.plot(log2_exact(p["T"]), p["log10_q"], color=col, lw=1.6, ls=TIER_DASH.get(access, "-."),
                    label=f"{name} ({access})")
        ax.axhline(0.0, color="grey", lw=0.7)
        log_ticks(ax)
        ax.set(title=cell.label)
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="major")
    for ax in axes[-1]:
        ax.set_xlabel("T (sweeps)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("Q(T)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"{family}: true (black) vs predicted Q(T); {tier_styles(access for _, access in entries)}", fontsize=10)
    _save_png(fig, path)


def plot_heatmap(family: str, scores: pd.DataFrame, path: Path) -> None:
    """max_T err per entry (rows) and cell (columns, in label order); a × marks an untracked cell.

    The colour is log10 of the error on a diverging scale centred on the threshold log10 2, so the
    tracked range (blue) and the failures (red) each get half the scale.
    """
    import matplotlib
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    if scores.empty:  # entries stored at lower budgets only: nothing at the full budget to draw yet
        fig = Figure(figsize=(7.0, 1.6))
        fig.text(0.5, 0.5, f"{family}: no entry scored at the full budget yet", ha="center", va="center")
        _save_png(fig, path)
        return
    cells = sorted_cells(scores)
    entries = sorted(set(zip(scores["predictor"], scores["access"])))
    M = np.full((len(entries), len(cells)), np.nan)
    col = {c: j for j, c in enumerate(cells["cell_id"])}
    row = {e: i for i, e in enumerate(entries)}
    for r in scores.itertuples(index=False):
        M[row[(r.predictor, r.access)], col[r.cell_id]] = r.max_err
    floor = 1e-4
    # log10 by math one value at a time (store.logaxes): numpy's vectorised log10 differs in the last bit with
    # the SIMD kernels (in 946 of 7,437 stored max errors, measured), and one bit can change a pixel's colour
    L = log10_exact(np.maximum(M, floor)).reshape(M.shape)
    centre = math.log10(scoring.TRACK_TOL)
    top = max(math.log10(3.0), float(np.nanmax(L)) if np.isfinite(L).any() else 0.0)
    norm = TwoSlopeNorm(vmin=math.log10(floor), vcenter=centre, vmax=top)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    width = min(14.0, max(7.0, 3.2 + 0.16 * len(cells)))
    labels = max(len(str(x)) for x in cells["label"])  # rotated tick labels: about 0.07 in per character
    fig = Figure(figsize=(width, 1.3 + 0.3 * len(entries) + 0.07 * labels), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(L), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    bad = np.argwhere(M > scoring.TRACK_TOL + 1e-12)
    if len(bad):
        ax.scatter(bad[:, 1], bad[:, 0], marker="x", s=14, c="black", lw=0.9, label="not tracked")
    ax.set_yticks(range(len(entries)), [f"{n} ({a})" for n, a in entries], fontsize=8)
    ax.set_xticks(range(len(cells)), list(cells["label"]), rotation=90, fontsize=6 if len(cells) > 30 else 7)
    ax.set_title(f"{family}: max err per cell, max over T of |log10 Q_pred − log10 Q_true|; × = not tracked",
                 fontsize=9, wrap=True)
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.01)
    ticks = [t for t in (1e-4, 1e-3, 1e-2, 0.1, scoring.TRACK_TOL, 1.0, 3.0, 10.0) if math.log10(t) <= top + 1e-9]
    cbar.set_ticks([math.log10(t) for t in ticks], labels=[f"{t:g}" if t != scoring.TRACK_TOL else "log10 2" for t in ticks])
    cbar.set_label("max err (dex)", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    _save_png(fig, path)


def plot_interventions(family: str, runs: pd.DataFrame, verdicts: pd.DataFrame, path: Path) -> None:
    """One panel per plateau onset: the log-likelihood gain (nats per image) of every resumed run, with
    the recipe's chains and with more, from the checkpoint before the onset and from the one at it;
    the bar is each arm's mean. The panel's title is the verdict."""
    from matplotlib.figure import Figure

    n = len(verdicts)
    fig = Figure(figsize=(4.2 * n, 3.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, v in zip(axes, verdicts.itertuples(index=False)):
        g = runs[(runs.n_hidden == v.n_hidden) & (runs.onset_update == v.onset_update)]
        ticks = []
        for x, (side, factor) in enumerate((s, f) for s in ("before", "after") for f in (1, v.factor)):
            arm = g[(g.side == side) & (g.chains_factor == factor)].sort_values("seed")
            col = OKABE_ITO[3] if factor == 1 else OKABE_ITO[4]
            ax.bar(x, float(arm.gain.mean()), width=0.6, color=col, alpha=0.35)
            ax.scatter(np.full(len(arm), float(x)), arm.gain, color=col, s=14, zorder=3)
            ticks.append(f"{side}\n{int(arm.chains.iloc[0])} chains")
        ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
        ax.axhline(0.0, color="grey", lw=0.7)
        ax.set_ylabel("log-likelihood gain (nats/image)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(f"m = {v.n_hidden}, onset at u{v.onset_update} ({v.updates} updates): "
                     + ("confirmed" if v.confirmed else "not confirmed"), fontsize=8)
    fig.suptitle(f"{family}: does {int(verdicts.factor.iloc[0])}× the chains restore progress after the onset, "
                 "and not before? (dots: seeds; bars: means)", fontsize=9)
    _save_png(fig, path)


def plot_frontier(scores: pd.DataFrame, path: Path) -> None:
    """Tracked fraction against budget (chain-sweeps per cell, drawn as its log10 on an axis labelled 10^k)
    for every black-box entry: one panel per family of ``scores`` and one with their cells pooled (the leaderboard
    passes the ranked families only, so a track such as goodhart is in neither)."""
    from matplotlib.figure import Figure

    panels = [("families pooled", scoring.budget_summary(scores, by_family=False))]
    fam = scoring.budget_summary(scores)
    panels += [(f, fam[fam.family == f]) for f in sorted(set(fam["family"]))]
    panels = [(t, s[np.isfinite(s["area"])]) for t, s in panels]
    panels = [(t, s) for t, s in panels if len(s)]
    entries = sorted({(r.predictor, r.access) for _, s in panels for r in s.itertuples(index=False)})
    palette = dict(zip(entries, colours(len(entries))))
    markers = dict(zip(entries, "osD^vP*X" * 4))
    ncols = min(3, max(1, len(panels)))
    nrows = -(-max(1, len(panels)) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, (title, s) in zip(axes.flat, panels):
        for (name, access), g in s.groupby(["predictor", "access"], sort=True):
            ax.plot(log10_exact(g["budget"]), g["fraction"], marker=markers[(name, access)], ms=4, lw=1.5,
                    color=palette[(name, access)], ls=TIER_DASH.get(access, "-."), label=f"{name} ({access})")
        ax.axhline(scoring.TRACK_GOAL, color="grey", lw=0.7)
        ax.set(ylim=(-0.03, 1.03), title=title)
        log_ticks(ax, x=10, y=None)
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("budget (chain-sweeps per cell)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("tracked fraction", fontsize=8)
    if panels:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"tracked fraction against budget (grey: 90%); {tier_styles(a for _, a in entries)}", fontsize=10)
    _save_png(fig, path)


def plot_differences(tier: str, ranked: pd.DataFrame, path: Path) -> None:
    """One tier's paired differences (``leaderboard/data/rankings.csv`` rows, already rounded): per entry, in
    rank order from the top, the difference of its mean tracked fraction from the #1 (left) and from
    ``iid`` (right, when iid is ranked in the tier), a dot with its 95% interval as a bar; entries of one
    tie group share a colour, and the grey line is 0."""
    from matplotlib.figure import Figure

    r = ranked.reset_index(drop=True)
    panels = [("from the #1", r["statistic"] - r["statistic"].iloc[0], r["behind_first_low"], r["behind_first_high"])]
    if r["margin_over_iid"].notna().any():
        panels.append(("over iid", r["margin_over_iid"], r["margin_low"], r["margin_high"]))
    y = np.arange(len(r))[::-1].astype(float)
    groups = colours(int(r["tie_group"].max()))
    fig = Figure(figsize=(3.6 * len(panels) + 1.6, 0.45 * len(r) + 1.3), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, (title, x, lo, hi) in zip(axes, panels):
        ax.axvline(0.0, color="grey", lw=0.8)
        for i in range(len(r)):
            col = groups[int(r["tie_group"].iloc[i]) - 1]
            ax.plot([lo.iloc[i], hi.iloc[i]], [y[i], y[i]], color=col, lw=2.5, solid_capstyle="butt")
            ax.plot([x.iloc[i]], [y[i]], "o", color=col, ms=5, mec="black", mew=0.6)
        ax.set_title(f"paired difference {title}", fontsize=9)
        ax.set_xlabel("difference in mean tracked fraction", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="x")
    labels = [f"{e} (group {g}{', tied' if t else ''})" for e, g, t in zip(r["entry"], r["tie_group"], r["tied"])]
    axes[0].set_yticks(y, labels, fontsize=8)
    fig.suptitle(f"{tier}: paired differences with 95% bootstrap intervals", fontsize=10)
    _save_png(fig, path)
