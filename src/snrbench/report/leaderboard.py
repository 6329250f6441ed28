"""The leaderboard: Markdown, a static HTML page and PNG figures, a pure function of ``results/``.

:func:`build` reads ``scores.parquet``, the predictions and the ground truth through
:func:`snrbench.store.read_table` (so a damaged or hand-edited file is refused), checks that the
scores are not older than their inputs, and writes (each via a temporary file and a rename)::

    out/curves_<family>.png    true vs predicted Q(T), up to 8 cells per family (full budget)
    out/heatmap_<family>.png   max_T err per cell × entry (full budget)
    out/frontier.png           tracked fraction against budget, per family and overall
    out/README.md              explanation, overall table, one table per family and tier, figures
    out/index.html             the same, self-contained (inline style, no external resources)

Nothing in the output depends on the time, the host or the paths, so identical inputs give
byte-identical files.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import scoring
from .. import store
from ..families import get, names
from ..predict.contract import BUDGET

__all__ = ["build", "markdown_overall", "markdown_frame", "load_scores", "update_readme", "README_BEGIN", "README_END", "MAX_CURVE_CELLS"]

#: Cells shown per family in ``curves_<family>.png``.
MAX_CURVE_CELLS = 8
_TIERS = ("white-box", "model", "sampler-only")
_DPI = 100
_TEXT_COLUMNS = ("entry", "tier")
_FAMILY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

_INTRO = (
    "Every entry predicts log10 Q(T) (C = 1) on the T grid of every cell of a family; Q is the gradient "
    "signal-to-noise ratio ‖g‖² / Tr Cov ĝ(T) of a window of T sweeps. "
    "err(T) = |log10 Q_pred(T) − log10 Q_true(T)| (dex); a cell is tracked when max_T err ≤ log10 2 ≈ 0.301, "
    "i.e. the prediction is within a factor 2 of Q at every T (shown as tracked/cells). "
    "Timing: T*(1) is the window at which Q first reaches 1; the T* ratio is T*_pred / T*_true (1 is exact) and "
    "the worst T* factor is the largest max(r, 1/r) over the cells (∞: one side never reaches Q = 1 on the grid). "
    f"Spearman ρ ranks the family's cells by log10 Q at T = {scoring.T_REF} (predicted vs true; the overall table "
    "shows the mean over families; – when undefined). ‖g‖² err is the |log10| error of the entry's estimate of "
    "‖g‖² (– when the entry reports none). Tiers: white-box entries may read the exact transition operator "
    "(exact families); model entries get the parameters, the data and the metered sampler (mnist families); "
    "sampler-only entries get only states and observables from a sampler running in another process. Every "
    "sampler is metered outside the entry's process. Black-box entries run at every budget of the ladder "
    "2^10, 2^12, 2^14 and 2^16 sweeps × 64 chains per cell; the tables per tier are at the full budget 2^16·64, "
    "the budget-ladder tables give the tracked cells at each budget, the area under the tracked fraction over "
    "log2 budget (1: every cell at every budget) and the smallest budget that tracks 90% of the cells. "
    "Cost: median chain-sweeps, wall-clock seconds and the worker's CPU seconds per cell. Rows are ranked by tracked cells, then by the "
    "median of max_T err. mnist families (RBMs trained on MNIST, Monte Carlo ground truth on T = 2^0 … 2^10): "
    "entries see a seeded random subset of 512 of the 784·m gradient observables, scaled so that sums of squares "
    "are unbiased; the plateau-onset table gives, per hidden size, the first checkpoint where the training's own "
    "C·Q(T = k) falls below 1 after having reached it (none: it never does), true and forecast, and the error in "
    "checkpoints. Checkpoints whose parallel-tempering starts fail the equilibration check (the ladders begun at "
    "training images and those begun at base-rate samples disagree, or the chains still drift between halfway and "
    "the end) are left out of the scores, and the onset is searched over the checkpoints before the first of them."
)

# (summary column, header) of the tables; the first columns (entry, tier, families) are added per table.
_METRICS = [
    ("tracked", "tracked"),
    ("median_max_err", "median max err (dex)"),
    ("max_max_err", "max max err (dex)"),
    ("median_timing_ratio", "median T* ratio"),
    ("worst_timing_factor", "worst T* factor"),
    ("spearman", "Spearman ρ"),
    ("median_grad_norm2_err", "median ‖g‖² err (dex)"),
    ("median_sweeps", "median sweeps"),
    ("median_seconds", "median seconds"),
    ("median_cpu_seconds", "median CPU s"),
]


def _fmt(x: float) -> str:
    """Fixed number format: 3 significant digits, ∞ for inf, – for NaN."""
    x = float(x)
    if np.isnan(x):
        return "–"
    if np.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.3g}"


def _ranked(summary: pd.DataFrame) -> pd.DataFrame:
    """Tracked cells (desc), then median max err (asc), then entry name and tier."""
    return summary.sort_values(["tracked", "median_max_err", "predictor", "access"],
                               ascending=[False, True, True, True], kind="stable", ignore_index=True)


def _table(summary: pd.DataFrame, overall: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["entry"] + (["tier", "families"] if overall else []) + [h for _, h in _METRICS]
    rows = []
    for r in _ranked(summary).itertuples(index=False):
        row = [r.predictor] + ([r.access, str(r.n_families)] if overall else [])
        for key, _ in _METRICS:
            row.append(f"{r.tracked}/{r.n_cells}" if key == "tracked" else _fmt(getattr(r, key)))
        rows.append(row)
    return headers, rows


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    cell = lambda s: s.replace("|", "\\|")  # noqa: E731 - a pipe would end the Markdown cell
    align = [":---" if h in _TEXT_COLUMNS else "---:" for h in headers]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    cls = ['' if h not in _TEXT_COLUMNS else ' class="t"' for h in headers]
    out = ["<table>", "<thead><tr>" + "".join(f"<th{c}>{esc(h)}</th>" for h, c in zip(headers, cls))
           + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td{c}>{esc(v)}</td>" for v, c in zip(row, cls)) + "</tr>" for row in rows]
    return "\n".join(out + ["</tbody>", "</table>"]) + "\n"


def _tiers(values) -> list[str]:
    present = set(values)
    return [t for t in _TIERS if t in present] + sorted(present - set(_TIERS))


def _load_scores(root: Path) -> pd.DataFrame:
    """``scores.parquet`` (checksum verified), refused when older than the files it was computed from."""
    if not (root / scoring.SCORES_REL).exists():
        raise store.ResultsError(f"missing {root / scoring.SCORES_REL}: compute it first with "
                                 "snrbench.report.scoring.score(root)")
    table = store.read_table(root, scoring.SCORES_REL)
    meta = json.loads((table.schema.metadata or {}).get(b"snrbench", b"{}"))
    scores = table.to_pandas()
    manifest = json.loads((root / store.MANIFEST).read_text())["files"]
    # the families scored, from the metadata: a family whose every cell was left out has no score rows
    families = meta.get("families") or sorted(set(scores["family"]))
    rels = scoring.prediction_files(root) + [get(f).truth_paths()[0] for f in families]
    now = {rel: manifest.get(rel, {}).get("sha256") for rel in rels}
    then = meta.get("inputs") or {}
    changed = sorted(rel for rel in set(now) | set(then) if now.get(rel) != then.get(rel))
    if changed:
        raise store.ResultsError(f"{scoring.SCORES_REL} is out of date with {', '.join(changed)}: "
                                 "rerun the scoring (snrbench.report.scoring.score(root))")
    for family in set(scores["family"]):
        if not _FAMILY_RE.match(family):
            raise store.ResultsError(f"family name {family!r} is not usable in a file name")
    return scores


def load_scores(root: Path | str) -> pd.DataFrame:
    """The stored per-cell scores under ``root``, refused when damaged or older than their inputs."""
    return _load_scores(Path(root))


def _fresh_table(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["entry", "tier", "families", "draws", "public", "fresh", "fresh (2nd)", "gap", "σ", "flag"]
    rows = [[r.predictor, r.access, r.families, r.draws, r.public, r.fresh_1, r.fresh_2, f"{r.gap:+.2f}",
             f"{r.sigma:.2f}", "FLAGGED" if r.flagged else ""] for r in table.itertuples(index=False)]
    return headers, rows


def markdown_frame(df: pd.DataFrame, fresh: bool = False) -> str:
    """Markdown of per-cell scores summarised per family (tracked/cells, median max err at the full
    budget), or with ``fresh`` of a :func:`snrbench.report.fresh.compare` table."""
    if fresh:
        return _markdown_table(*_fresh_table(df)) if len(df) else "(no entry scored on two draws)\n"
    fs = scoring.family_summary(df) if len(df) else pd.DataFrame()
    headers = ["family", "entry", "tier", "tracked", "median max err (dex)"]
    rows = [[r.family, r.predictor, r.access, f"{r.tracked}/{r.n_cells}", _fmt(r.median_max_err)]
            for r in fs.itertuples(index=False)]
    return _markdown_table(headers, rows)


def _markdown_overall(scores: pd.DataFrame) -> str:
    return _markdown_table(*_table(scoring.overall_summary(scores), overall=True))


def markdown_overall(root: Path | str) -> str:
    """The overall leaderboard table (Markdown) of the scores stored under ``root``."""
    return _markdown_overall(_load_scores(Path(root)))


def _write_text(path: Path, text: str) -> None:
    store.atomic_write(path, lambda tmp: tmp.write_bytes(text.encode("utf-8")))


def _save_png(fig, path: Path) -> None:
    # No "Software" key and no timestamps: the PNG bytes depend only on what is drawn.
    store.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None}))


def _colours(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _curve_cells(truth: pd.DataFrame) -> pd.DataFrame:
    """Up to MAX_CURVE_CELLS cells, evenly spread over the lowest seed's cells sorted by label
    (over all cells sorted by seed and label when the lowest seed has fewer than that)."""
    cells = truth.drop_duplicates("cell_id").sort_values(["seed", "label", "cell_id"], ignore_index=True)
    first = cells[cells.seed == cells.seed.min()]
    pool = first if len(first) >= min(MAX_CURVE_CELLS, len(cells)) else cells
    if len(pool) > MAX_CURVE_CELLS:
        pool = pool.iloc[np.unique(np.round(np.linspace(0, len(pool) - 1, MAX_CURVE_CELLS)).astype(int))]
    return pool.reset_index(drop=True)


def _plot_curves(family: str, truth: pd.DataFrame, pred: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    cells = _curve_cells(truth)
    entries = sorted(set(zip(pred["predictor"], pred["access"])))
    colours = _colours(len(entries))
    ncols = min(4, len(cells))
    nrows = -(-len(cells) // ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.9 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(cells):]:
        ax.set_axis_off()
    for ax, cell in zip(axes.flat, cells.itertuples(index=False)):
        t = truth[truth.cell_id == cell.cell_id].sort_values("T")
        ax.plot(t["T"], 10.0 ** t["log10_q"], color="black", lw=3.0, label="ground truth")
        for (name, access), col in zip(entries, colours):
            p = pred[(pred.cell_id == cell.cell_id) & (pred.predictor == name) & (pred.access == access)]
            p = p.sort_values("T")
            ax.plot(p["T"], 10.0 ** p["log10_q"], color=col, lw=1.5, ls={"white-box": "-", "model": ":"}.get(access, "--"),
                    label=f"{name} ({access})")
        ax.axhline(1.0, color="grey", lw=0.7)
        ax.set(xscale="log", yscale="log", title=cell.label)
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="major")
    for ax in axes[-1]:
        ax.set_xlabel("T (sweeps)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("Q(T)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"{family}: true (black) vs predicted Q(T); solid = white-box, dashed = sampler-only, dotted = model", fontsize=10)
    _save_png(fig, path)


def _plot_heatmap(family: str, scores: pd.DataFrame, path: Path) -> None:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    cells = scores.drop_duplicates("cell_id").sort_values(["label", "cell_id"])
    entries = sorted(set(zip(scores["predictor"], scores["access"])))
    M = np.full((len(cells), len(entries)), np.nan)
    row = {c: i for i, c in enumerate(cells["cell_id"])}
    col = {e: j for j, e in enumerate(entries)}
    for r in scores.itertuples(index=False):
        M[row[r.cell_id], col[(r.predictor, r.access)]] = r.max_err
    vmax = max(2.0 * scoring.TRACK_TOL, float(np.nanmax(M)))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    fig = Figure(figsize=(3.0 + 1.3 * len(entries), 1.8 + 0.35 * len(cells)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    for i, j in zip(*np.nonzero(np.isfinite(M))):
        v = M[i, j]
        ax.text(j, i, _fmt(v), ha="center", va="center", fontsize=7, color="white" if v < 0.6 * vmax else "black")
        if v > scoring.TRACK_TOL + 1e-12:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2.0))
    ax.set_xticks(range(len(entries)), [f"{n} ({a})" for n, a in entries], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(cells)), list(cells["label"]), fontsize=7)
    ax.set_title(f"{family}: max over T of |log10 Q_pred − log10 Q_true| (dex); red box = not tracked", fontsize=9)
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label("max err (dex)", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    cbar.ax.axhline(scoring.TRACK_TOL, color="red", lw=1.5)
    _save_png(fig, path)


def _readme(overall_md: str, sections: list[tuple[str, str, str]], figures: list[tuple[str, str, str]]) -> str:
    parts = ["# snrbench leaderboard\n", _INTRO + "\n", "## Overall\n", overall_md]
    last = None
    for family, tier, table in sections:
        if family != last:
            parts.append(f"## {family}\n")
            last = family
        parts += [f"### {tier}\n", table]
    parts.append("## Figures\n")
    parts += [f"![{alt}]({name})\n" for _, name, alt in figures]
    return "\n".join(parts)


def _html(overall: str, sections: list[tuple[str, str, str]], figures: list[tuple[str, str, str]]) -> str:
    esc = html.escape
    style = ("body{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
             "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
             "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}"
             "th{background:#f2f2f2}th.t,td.t{text-align:left}"
             "img{max-width:100%;display:block;margin:0.5em 0 1.5em}")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>snrbench leaderboard</title>", f"<style>{style}</style>", "</head>", "<body>",
             "<h1>snrbench leaderboard</h1>", f"<p>{esc(_INTRO)}</p>", "<h2>Overall</h2>", overall.rstrip("\n")]
    last = None
    for family, tier, table in sections:
        if family != last:
            parts.append(f"<h2>{esc(family)}</h2>")
            last = family
        parts += [f"<h3>{esc(tier)}</h3>", table.rstrip("\n")]
    parts.append("<h2>Figures</h2>")
    parts += [f'<img src="{esc(name)}" alt="{esc(alt)}">' for _, name, alt in figures]
    return "\n".join(parts + ["</body>", "</html>"]) + "\n"


def _budget_label(b: float) -> str:
    """``2^k·64`` for a ladder budget (chain-sweeps), "–" for none."""
    if not np.isfinite(b):
        return "–"
    k = np.log2(b / 64)
    return f"2^{int(k)}·64" if k == int(k) else f"{int(b):,}"


def _budget_table(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Per black-box entry: tracked/cells at each budget, the area over log-budget and the smallest
    budget tracking 90%; ranked by the area (then the name)."""
    from ..predict.contract import BUDGETS

    s = summary[np.isfinite(summary["area"])]
    headers = ["entry", "tier"] + [_budget_label(b) for b in BUDGETS] + ["area", f"budget for {scoring.TRACK_GOAL:.0%}"]
    rows = []
    order = s.drop_duplicates(["predictor", "access"]).sort_values(["area", "predictor", "access"],
                                                                  ascending=[False, True, True], kind="stable")
    for r in order.itertuples(index=False):
        g = s[(s.predictor == r.predictor) & (s.access == r.access)].set_index("budget")
        rows.append([r.predictor, r.access] + [f"{g.loc[b, 'tracked']}/{g.loc[b, 'n_cells']}" for b in BUDGETS]
                    + [f"{r.area:.2f}", _budget_label(r.budget_90)])
    return headers, rows


def _plot_frontier(scores: pd.DataFrame, path: Path) -> None:
    """Tracked fraction against budget (log axis) for every black-box entry: one panel per family
    and one with every family's cells pooled."""
    from matplotlib.figure import Figure

    panels = [("all families", scoring.budget_summary(scores, by_family=False))]
    fam = scoring.budget_summary(scores)
    panels += [(f, fam[fam.family == f]) for f in sorted(set(fam["family"]))]
    panels = [(t, s[np.isfinite(s["area"])]) for t, s in panels]
    panels = [(t, s) for t, s in panels if len(s)]
    entries = sorted({(r.predictor, r.access) for _, s in panels for r in s.itertuples(index=False)})
    colours = dict(zip(entries, _colours(len(entries))))
    ncols = min(3, max(1, len(panels)))
    nrows = -(-max(1, len(panels)) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, (title, s) in zip(axes.flat, panels):
        for (name, access), g in s.groupby(["predictor", "access"], sort=True):
            ax.plot(g["budget"], g["fraction"], marker="o", ms=3, lw=1.5, color=colours[(name, access)],
                    ls="--" if access == "sampler-only" else ":", label=f"{name} ({access})")
        ax.axhline(scoring.TRACK_GOAL, color="grey", lw=0.7)
        ax.set(xscale="log", ylim=(-0.03, 1.03), title=title)
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
    fig.suptitle("tracked fraction against budget (grey: 90%); dashed = sampler-only, dotted = model", fontsize=10)
    _save_png(fig, path)


def _onset_tables(root: Path) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
    """Per mnist family: (m, checkpoints searched, entry, tier, true onset, forecast onset, error) from
    ``onset.parquet``."""
    from ..truth.onset import ONSET_REL

    if not (root / ONSET_REL).exists():
        return []
    df = store.read_table(root, ONSET_REL).to_pandas()
    upd = lambda u: "none" if u < 0 else str(int(u))  # noqa: E731
    headers = ["m", "checkpoints searched", "entry", "tier", "true onset (update)", "forecast onset (update)",
               "error (checkpoints)"]
    out = []
    for family, g in df.groupby("family", sort=True):
        g = g.sort_values(["n_hidden", "onset_error", "predictor", "access"], kind="stable")
        rows = [[str(int(r.n_hidden)), str(int(r.n_checkpoints)), r.predictor, r.access, upd(r.onset_update_true),
                 upd(r.onset_update_pred), str(int(r.onset_error))] for r in g.itertuples(index=False)]
        out.append((family, (headers, rows)))
    return out


def build(root: Path | str, out: Path | str) -> list[Path]:
    """Write the leaderboard of the results under ``root`` into ``out``; returns the paths written.

    Files, in the order returned: ``curves_<family>.png`` and ``heatmap_<family>.png`` for each
    family (sorted by name), then ``README.md`` and ``index.html``. Raises
    :class:`snrbench.store.ResultsError` when a result file is missing, damaged or hand-edited, or
    when ``scores.parquet`` is older than its inputs.
    """
    import matplotlib.style

    root, out = Path(root), Path(out)
    scores = _load_scores(root)
    families = sorted(set(scores["family"]))
    truth, pred = scoring.scorable(scoring.read_ground_truth(root, families), scoring.read_predictions(root))
    pred, full = pred[pred.budget == BUDGET], scores[scores.budget == BUDGET]
    fam_summary = scoring.family_summary(scores)
    fam_budgets = scoring.budget_summary(scores)

    written, figures, md_sections, html_sections = [], [], [], []
    with matplotlib.style.context("default"):  # the user's matplotlibrc must not change the bytes
        for family in families:
            curves, heat = out / f"curves_{family}.png", out / f"heatmap_{family}.png"
            _plot_curves(family, truth[truth.family == family], pred[pred.family == family], curves)
            _plot_heatmap(family, full[full.family == family], heat)
            written += [curves, heat]
            figures += [(family, curves.name, f"{family}: true vs predicted Q(T)"),
                        (family, heat.name, f"{family}: max err per cell and entry")]
        frontier = out / "frontier.png"
        _plot_frontier(scores, frontier)
        written.append(frontier)
        figures.insert(0, ("", frontier.name, "tracked fraction against budget"))
    onsets = dict(_onset_tables(root))
    for family in families:
        fs = fam_summary[fam_summary.family == family]
        offered = get(family).tiers if family in names() else ()
        tables = [(tier, _table(fs[fs.access == tier], overall=False) if (fs.access == tier).any() else None)
                  for tier in _tiers(list(fs["access"]) + list(offered))]
        ladder = _budget_table(fam_budgets[fam_budgets.family == family])
        if ladder[1]:
            tables.append(("budget ladder", ladder))
        if family in onsets:
            tables.append(("plateau onset", onsets[family]))
        for tier, table in tables:
            md_sections.append((family, tier, _markdown_table(*table) if table else "No entries in this tier yet.\n"))
            html_sections.append((family, tier, _html_table(*table) if table else "<p>No entries in this tier yet.</p>\n"))
    overall = _table(scoring.overall_summary(scores), overall=True)
    ladder = _budget_table(scoring.budget_summary(scores, by_family=False))
    none = "No entry has been run at every budget of the ladder yet (`snrbench predict`)."
    md_sections.insert(0, ("Budget ladder", "all families", _markdown_table(*ladder) if ladder[1] else none + "\n"))
    html_sections.insert(0, ("Budget ladder", "all families",
                             _html_table(*ladder) if ladder[1] else f"<p>{html.escape(none)}</p>\n"))
    from . import fresh

    against = fresh.stored_comparison(root, scores)
    if len(against):
        md_sections.insert(1, ("Public against fresh draws", "exact families", _markdown_table(*_fresh_table(against))))
        html_sections.insert(1, ("Public against fresh draws", "exact families", _html_table(*_fresh_table(against))))
    readme, index = out / "README.md", out / "index.html"
    _write_text(readme, _readme(_markdown_table(*overall), md_sections, figures))
    _write_text(index, _html(_html_table(*overall), html_sections, figures))
    return written + [readme, index]


README_BEGIN = "<!-- overall table: begin -->"
README_END = "<!-- overall table: end -->"


def update_readme(readme: Path | str, table_md: str) -> bool:
    """Replace the text between the README markers with ``table_md``; False when no markers."""
    readme = Path(readme)
    if not readme.is_file():
        return False
    text = readme.read_text()
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        return False
    new = text[: i + len(README_BEGIN)] + "\n" + table_md.strip("\n") + "\n" + text[j:]
    if new != text:
        _write_text(readme, new)
    return True
