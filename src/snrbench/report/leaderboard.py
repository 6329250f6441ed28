"""The leaderboard: Markdown, one HTML page, PNG figures and CSV downloads, from ``results/``.

:func:`build` reads ``scores.parquet``, the predictions and the ground truth through
:func:`snrbench.store.read_table` (so a damaged or hand-edited file is refused), checks that the
scores are not older than their inputs, and writes (each via a temporary file and a rename)::

    out/curves_<family>.png        true vs predicted Q(T), up to 8 cells per family (full budget)
    out/heatmap_<family>.png       max_T err per entry × cell (full budget)
    out/frontier.png               tracked fraction against budget, per ranked family and pooled over them
    out/differences_<tier>.png     per tier: each entry's paired difference from the #1 and from iid (95%)
    out/goodhart.png               the Goodhart track's dose ladder (:mod:`.goodhart`; with the goodhart family)
    out/interventions_<family>.png the plateau onsets tested by intervention (a family with a stored intervention table)
    out/data/scores.csv            every per-cell score (all budgets)
    out/data/rankings.csv          per tier and ranked entry: the statistic, its intervals, tie group, margin
    out/data/<family>.truth.csv    each family's ground-truth curves
    out/README.md                  the tables in Markdown, with the figures
    out/index.html                 the page (:mod:`.page`): rankings per tier, provenance, one section
                                   per family with its tables, figures and per-cell curves, links

Besides ``results/`` the build reads each family's suite description (``tasks/<family>.toml``), the
headings of ``docs/DESIGN.md`` (the anchors of "DESIGN §N" links), the first docstring paragraph of each
entry's source file when that source is a relative path inside the project (its description, and a link
to it; a source outside is shown by its file name only, neither read nor linked), and for the Goodhart
track the stored students (``tasks/goodhart/*.npz``). Nothing depends on the time, the host or absolute
paths, so identical inputs give byte-identical files.
"""
from __future__ import annotations

import ast
import html
import json
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from . import figures, goodhart, intervals, page, rankings, scoring
from .. import store
from .._version import __version__
from ..families import get, load_suite, names
from ..predict.contract import BUDGET
from ..store.locations import project_root
from .page import Link, Num, Prose, Table

__all__ = ["build", "markdown_overall", "markdown_frame", "load_scores", "update_readme", "README_BEGIN",
           "README_END", "MAX_CURVE_CELLS", "BIBTEX"]

MAX_CURVE_CELLS = figures.MAX_CURVE_CELLS
_TIERS = ("white-box", "model", "sampler-only")
_FAMILY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: The page's citation; the same fields as CITATION.cff (a test keeps the two in step).
BIBTEX = """@software{snrbench,
  title   = {snrbench: a benchmark suite and leaderboard for trainability predictors of energy-based models},
  author  = {{the snrbench developers}},
  version = {%s},
  license = {MIT},
  note    = {CITATION.cff in the repository}
}"""

_LEDE = ("An energy-based model trains only while its sampled gradient carries more signal than noise. "
         "snrbench measures that as Q(T), the squared signal-to-noise ratio of a gradient estimated from Gibbs "
         "chains run T sweeps, on suites of models whose true Q(T) is known, and asks cheap diagnostics to "
         "predict it. An entry tracks a model when its predicted curve is within a factor 2 of the truth at "
         "every T, and entries are ranked within their tier, which says what they were allowed to look at.")

_GLOSSARY = [
    ("family", "a suite of related models with one recipe, e.g. small exactly solvable RBMs or RBMs trained on "
               "MNIST (each family's section says how its models and its ground truth were made)."),
    ("cell", "one model of a family with its data; its ground truth is the curve log10 Q(T) on a grid of T."),
    ("entry", "a predictor: code that returns log10 Q(T) for a cell (the links give each one's source)."),
    ("tier", "what an entry may see: white-box entries read the exact transition operator (exact families); "
             "model entries get the parameters, the data and a metered sampler; sampler-only entries get only "
             "states and observables from a sampler running in another process."),
    ("Q(T)", "‖g‖² / Tr Cov ĝ(T): the true gradient's squared norm over the total variance of the gradient "
             "estimated from one chain's window of T sweeps (C = 1 chain). With C chains and k sweeps per "
             "gradient, training sees C·Q(T = k)."),
    ("dex", "a factor of 10: an error of 0.301 dex = log10 2 is a factor 2."),
    ("max err", "max over the T grid of |log10 Q_pred(T) − log10 Q_true(T)|, in dex; tracked: max err ≤ log10 2."),
    ("T*(1)", "the first T at which Q reaches 1 (the window one chain needs for a useful gradient); the T* ratio "
              "is T*_pred / T*_true."),
    ("budget", "chain-sweeps an entry may spend on a cell; black-box entries run at 2^10, 2^12, 2^14 and 2^16 "
               "sweeps × 64 chains, and the per-tier tables are at the full budget 2^16·64."),
    ("fresh draws", "new cells from the same recipes with new seeds, solved on the fly, so an entry tuned to the "
                    "public cells shows a gap."),
    ("plateau onset", "the first checkpoint of a training run where C·Q(T = k) falls below 1 after having reached "
                      "it: the point where the gradient drowns in sampling noise."),
]

_INTRO = (
    "Every entry predicts log10 Q(T) (C = 1) on the T grid of every cell of a family; Q is the gradient "
    "signal-to-noise ratio ‖g‖² / Tr Cov ĝ(T) of a window of T sweeps. "
    "err(T) = |log10 Q_pred(T) − log10 Q_true(T)| (dex); a cell is tracked when max_T err ≤ log10 2 ≈ 0.301, "
    "i.e. the prediction is within a factor 2 of Q at every T (shown as tracked/cells). "
    "Timing: T*(1) is the window at which Q first reaches 1; the T* ratio is T*_pred / T*_true (1 is exact) and "
    "the worst T* factor is the largest max(r, 1/r) over the cells (∞: one side never reaches Q = 1 on the grid). "
    f"Spearman ρ ranks the family's cells by log10 Q at T = {scoring.T_REF} (predicted vs true; n/a when "
    "undefined). ‖g‖² err is the |log10| error of the entry's estimate of ‖g‖² (n/a when the entry reports none). Tiers: white-box entries may read the exact transition operator "
    "(exact families); model entries get the parameters, the data and the metered sampler (mnist families); "
    "sampler-only entries get only states and observables from a sampler running in another process. Every "
    "sampler is metered outside the entry's process. Black-box entries run at every budget of the ladder "
    "2^10, 2^12, 2^14 and 2^16 sweeps × 64 chains per cell; the tables per tier are at the full budget 2^16·64 "
    "(a per-family table names its budget when an entry was run at lower budgets only), "
    "the budget-ladder tables give the tracked cells at each budget, the area under the tracked fraction over "
    "log2 budget (1: every cell at every budget) and the smallest budget that tracks 90% of the cells. "
    "Cost: median chain-sweeps, wall-clock seconds and the worker's CPU seconds per cell, beside the tracked cells in "
    "every table. The per-tier rankings are ranked as their rule says; rows of the per-family tables by tracked cells, "
    "then by the median of max_T err. mnist families (RBMs trained on MNIST, Monte Carlo ground truth on T = 2^0 … 2^10): "
    "entries see a seeded random subset of 512 of the 784·m gradient observables, scaled so that sums of squares "
    "are unbiased; the plateau-onset table gives, per hidden size, the first checkpoint where the training's own "
    "C·Q(T = k) falls below 1 after having reached it (none: it never does), true and forecast, and the error in "
    "checkpoints. Checkpoints whose truth is not trusted are left out of the scores, and the onset is searched over "
    "the checkpoints before the first of them: those whose parallel-tempering starts fail the equilibration check "
    "(the ladders begun at training images and those begun at base-rate samples disagree, or the chains still drift "
    "between halfway and the end), and those whose truth is not certified (no two start generators of independent "
    "method, population annealing and tempering, both pass their health checks and agree at every T). "
    "Each family's note names the cells without a full-budget score and why, read per cell from its truth table "
    "(equilibration check failed; not certified, with the certification's measured reason on the cell)."
)

# (summary column, header) of the per-family tables; entry (and tier, families) come first.
_METRICS = [
    ("tracked", "tracked"),
    ("median_sweeps", "median chain-sweeps"),
    ("median_seconds", "median seconds"),
    ("median_max_err", "median max err (dex)"),
    ("max_max_err", "max max err (dex)"),
    ("median_timing_ratio", "median T* ratio"),
    ("worst_timing_factor", "worst T* factor"),
    ("spearman", "Spearman ρ"),
    ("median_grad_norm2_err", "median ‖g‖² err (dex)"),
    ("median_cpu_seconds", "median CPU s"),
]
#: The columns a phone shows at first (the others behind the table's "show every column" button).
_PRIMARY = ("entry", "rank", "mean tracked fraction [95%]", "median chain-sweeps", "median seconds")
_PRIMARY_FAMILY = ("entry", "tracked", "median chain-sweeps", "median seconds")


def _fmt(x: float) -> str:
    """Fixed number format: 3 significant digits, ∞ for inf, n/a for NaN (does not apply)."""
    x = float(x)
    if np.isnan(x):
        return "n/a"
    if np.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.3g}"


def _num(x: float) -> Num:
    return Num(_fmt(x), float(x))


def _sweeps(x: float) -> Num:
    """Chain-sweeps as a whole number with thousands separators (n/a for NaN)."""
    x = float(x)
    return Num(f"{x:,.0f}" if np.isfinite(x) else _fmt(x), x)


def _count(k: int, n: int) -> Num:
    return Num(f"{k}/{n}", k / n if n else float("nan"))


def _text(c) -> str:
    return c.text if isinstance(c, (Num, Link, Prose)) else str(c)


def _ranked(summary: pd.DataFrame) -> pd.DataFrame:
    """Tracked cells (desc), then median max err (asc), then entry name and tier."""
    return summary.sort_values(["tracked", "median_max_err", "predictor", "access"],
                               ascending=[False, True, True, True], kind="stable", ignore_index=True)


def _table(summary: pd.DataFrame, entry=lambda n, a: n) -> tuple[list[str], list[list]]:
    """A per-family table (:func:`.scoring.family_summary` rows of one family and tier), ranked (:func:`_ranked`)."""
    headers = ["entry"] + [h for _, h in _METRICS]
    rows = []
    for r in _ranked(summary).itertuples(index=False):
        row = [entry(r.predictor, r.access)]
        for key, _ in _METRICS:
            row.append(_count(r.tracked, r.n_cells) if key == "tracked"
                       else _sweeps(r.median_sweeps) if key == "median_sweeps" else _num(getattr(r, key)))
        rows.append(row)
    return headers, rows


def _markdown_table(headers: list[str], rows: list[list]) -> str:
    cell = lambda s: _text(s).replace("|", "\\|")  # noqa: E731 - a pipe would end the Markdown cell
    align = [":---" if h in ("entry", "tier", "family") else "---:" for h in headers]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _tiers(values) -> list[str]:
    present = set(values)
    return [t for t in _TIERS if t in present] + sorted(present - set(_TIERS))


def _load_scores(root: Path) -> tuple[pd.DataFrame, dict]:
    """``scores.parquet`` (checksum verified) and its metadata, refused when older than its inputs."""
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
    return scores, meta


def load_scores(root: Path | str) -> pd.DataFrame:
    """The stored per-cell scores under ``root``, refused when damaged or older than their inputs."""
    return _load_scores(Path(root))[0]


def _fresh_table(table: pd.DataFrame, entry=lambda n, a: n) -> tuple[list[str], list[list]]:
    headers = ["entry", "tier", "families", "draws", "public", "fresh", "fresh (2nd)", "gap", "σ", "flag"]
    frac = lambda s: Num(s, int(s.split("/")[0]) / max(1, int(s.split("/")[1])))  # noqa: E731
    rows = [[entry(r.predictor, r.access), r.access, r.families, r.draws, frac(r.public), frac(r.fresh_1),
             frac(r.fresh_2), Num(f"{r.gap:+.2f}", r.gap), Num(f"{r.sigma:.2f}", r.sigma),
             "FLAGGED" if r.flagged else ""] for r in table.itertuples(index=False)]
    return headers, rows


def markdown_frame(df: pd.DataFrame, fresh: bool = False) -> str:
    """Markdown of per-cell scores summarised per family (tracked/cells, median max err at each entry's
    largest budget, the full one unless only lower rungs were run), or with ``fresh`` of a
    :func:`snrbench.report.fresh.compare` table."""
    if fresh:
        return _markdown_table(*_fresh_table(df)) if len(df) else "(no entry scored on two draws)\n"
    fs = scoring.family_summary(df) if len(df) else pd.DataFrame()
    headers = ["family", "entry", "tier", "tracked", "median max err (dex)"]
    rows = [[r.family, r.predictor, r.access, f"{r.tracked}/{r.n_cells}", _fmt(r.median_max_err)]
            for r in fs.itertuples(index=False)]
    return _markdown_table(headers, rows)


_RANKING_RULE = ("Within a tier every ranked entry is scored on the same cells. Rank: the mean over families of "
                 "the tracked fraction (each family weighs the same), then Borda points (one per entry beaten in "
                 "a family, half per tie), then the median max err.")

_HOW_TO_READ = (
    "How to read the intervals: the mean tracked fraction comes with a 95% interval from a paired bootstrap "
    f"({intervals.N_BOOT:,} replicates, fixed seed): each replicate redraws the cells within every family and, on "
    "Monte Carlo families, redraws each cell's truth inside its confidence interval, so a cell near the factor-2 "
    "line counts with its probability; every entry of a tier sees the same replicates. The rank interval holds 95% "
    "of the replicates' ranks (ties between replicates are exact: the statistic is computed as a fraction of "
    "integers). Adjacent entries share a tie group (marked “tied”) unless a paired sign-flip test, on each cell's "
    "difference averaged over the same truth draws, finds their difference non-zero at the 5% level after a Holm "
    "correction over the tier's adjacent pairs: a tied "
    "pair's order is not established by these cells. “Tied” comes from that adjacent-pair test alone, and a tie "
    "group chains the pairs it does not separate, so two entries of one group that are not neighbours may still "
    "differ (data/rankings.csv gives each adjacent pair's Holm-adjusted p, “< 0.001” below 0.001). The margin over "
    "iid is the paired difference from the floor entry iid, which "
    "assumes no autocorrelation at all (Q(T) = T·‖g‖²/V), with its 95% interval; an interval above 0 says the "
    "entry beat the floor on these cells. The intervals of the fraction, the rank and the margin are descriptive: "
    "each holds on its own, uncorrected for the other entries and pairs of the tier, so none of them is a test. "
    "Robustness: the fewest cells whose removal brings another entry level with the #1 "
    "(counted exactly, removals of whole families included: the mean is then over the families left); a small "
    "number means the #1 rests on a handful of cells.")


def _robustness(r) -> str:
    """The robustness sentence of one tier (:class:`.intervals.Robustness`)."""
    if r is None:
        return ""
    if r.k == 0:
        return f"Robustness: 0 of {r.n_cells} cells — {r.new_first} is already level with {r.first} on the mean tracked fraction."
    if r.k is None:
        return (f"Robustness: no removal of cells (whole families included, one cell kept) makes another entry #1 "
                f"(#1: {r.first}, {r.n_cells} cells).")
    shown = ", ".join(r.removed[:6]) + (f" and {len(r.removed) - 6} more" if len(r.removed) > 6 else "")
    return (f"Robustness: {r.k} of {r.n_cells} cells — removing no fewer ({shown}) brings {r.new_first} level "
            f"with {r.first} on the mean tracked fraction, so that the #1 could change.")


def _p_text(p: float) -> str:
    """A p-value as written in rankings.csv: 3 decimals, "< 0.001" below 0.001 (never "0.000": the sign-flip p
    is at least 1/(1 + B)), "" where there is none (the last entry of a tier)."""
    if p != p:
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.{intervals.DECIMALS}f}"


def _signed(x: float) -> str:
    return f"{x:+.{intervals.DECIMALS}f}".replace("-", "−")


def _interval(x: float, lo: float, hi: float, signed: bool = False) -> Num:
    f = _signed if signed else (lambda v: f"{v:.{intervals.DECIMALS}f}")
    return Num(f"{f(x)} [{f(lo)}, {f(hi)}]", x)


def _apart(families) -> str:
    """The tracks among ``families`` that no ranking or pooled ladder includes (``Family.ranked`` False), in
    words: "the goodhart track has its own section", or "" when none."""
    apart = [f for f in sorted(set(families)) if f in names() and not get(f).ranked]
    own = "tracks have their own sections" if len(apart) > 1 else "track has its own section"
    return f"the {', '.join(apart)} {own}" if apart else ""


def _pooled(families) -> str:
    """"every ranked family's cells pooled", with :func:`_apart` after a semicolon when it says anything."""
    apart = _apart(families)
    return "every ranked family's cells pooled" + (f"; {apart}" if apart else "")


def _ranked_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """The score rows of the families pooled in the rankings and the all-families budget ladder
    (:attr:`snrbench.families.Family.ranked`; a track such as ``goodhart`` is shown in its own section)."""
    keep = [f for f in sorted(set(scores["family"])) if f not in names() or get(f).ranked]
    return scores[scores["family"].isin(keep)]


def _rankings(full: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The rankings with their intervals (:func:`.intervals.tier_intervals`) of every tier with entries."""
    return intervals.tier_intervals(full, _tiers(list(full["access"]) + list(_TIERS)))


def _tier_tables(full: pd.DataFrame, entry=lambda n, a: n, ranked=None) -> list[tuple[str, Table | None, str]]:
    """(tier, ranking table or None when the tier has no entry, robustness sentence) for every tier, from
    full-budget scores (:func:`.rankings.tier_ranking`, intervals from :func:`.intervals.tier_intervals`)."""
    table, robust = ranked if ranked is not None else _rankings(full)
    out = []
    for tier in _tiers(list(full["access"]) + list(_TIERS)):
        s = full[full.access == tier]
        if s.empty:
            out.append((tier, None, ""))
            continue
        r, fams, unranked = rankings.tier_ranking(s)
        iv = table[table.tier == tier].set_index("entry")
        has_iid = "iid" in iv.index
        headers = (["entry", "rank", "rank 95%", "tie group", "mean tracked fraction [95%]", "median chain-sweeps",
                    "median seconds"]
                   + (["margin over iid [95%]"] if has_iid else []) + fams + ["Borda", "median max err (dex)", "median CPU s"])
        rows = []
        for x in r.to_dict("records"):
            v = iv.loc[x["predictor"]]
            rows.append([entry(x["predictor"], tier), Num(str(x["rank"]), x["rank"]),
                         Num(f"{v.rank_low}–{v.rank_high}", v.rank_low),
                         Num(f"{v.tie_group} tied" if v.tied else str(v.tie_group), v.tie_group),
                         _interval(v.statistic, v.ci_low, v.ci_high), _sweeps(x["median_sweeps"]),
                         _num(x["median_seconds"])]
                        + ([_interval(v.margin_over_iid, v.margin_low, v.margin_high, signed=True)] if has_iid else [])
                        + [_count(round(x[f"fraction:{f}"] * x[f"cells:{f}"]), x[f"cells:{f}"]) for f in fams]
                        + [Num(f"{x['borda']:g}", x["borda"]), _num(x["median_max_err"]), _num(x["median_cpu_seconds"])])
        n = int(r["n_cells"].iloc[0])
        note = ("Not ranked (scored on fewer cells): " + ", ".join(f"{k} ({v} of {n} cells)" for k, v in sorted(unranked.items()))
                + "; their per-family tables are below.") if unranked else ""
        caption = (f"{tier}: tracked fraction per family at the full budget, over the same {n} cells "
                   f"({len(fams)} {'family' if len(fams) == 1 else 'families'}) for every ranked entry.")
        out.append((tier, Table(caption, headers, rows, [tier] * len(rows), drop_constant=False, note=note,
                                primary=_PRIMARY),
                    _robustness(robust.get(tier))))
    return out


def _markdown_overall(scores: pd.DataFrame, figures_dir: str = "leaderboard/", ranked=None) -> str:
    """The rankings, one per tier, in Markdown (what the project README shows between its markers), with the
    intervals, tie groups, robustness and each tier's figure of paired differences (under ``figures_dir``)."""
    parts = [_RANKING_RULE + "\n", _HOW_TO_READ + "\n"]
    scores = _ranked_rows(scores)
    for tier, t, robust in _tier_tables(scores[scores.budget == BUDGET], ranked=ranked):
        parts.append(f"**{tier}**" + (f" — {t.caption.split(': ', 1)[1]}" if t else ": no entries yet.") + "\n")
        if t:
            parts.append(_markdown_table(t.headers, t.rows) + (f"\n{t.note}\n" if t.note else ""))
            parts.append(robust + "\n")
            parts.append(f"![{tier}: paired differences]({figures_dir}differences_{tier}.png)\n")
    return "\n".join(parts)


def markdown_overall(root: Path | str, figures_dir: str = "leaderboard/") -> str:
    """The overall leaderboard table (Markdown) of the scores stored under ``root``; figure links point into
    ``figures_dir`` (relative to the file that shows the table)."""
    return _markdown_overall(_load_scores(Path(root))[0], figures_dir)


_GOODHART_TABLE = ("Tracked cells at the full budget of each entry on the λ = 0 cells and on the cells whose "
                   "students were trained against each rewarded quantity (doses λ > 0).")


def _goodhart_track(root: Path, scores: pd.DataFrame, every: pd.DataFrame, out: Path) -> tuple[str, list, list, str]:
    """(verdict sentence, headers, rows, figure name) of the Goodhart track (:mod:`.goodhart`): the dose
    ladder recomputed from the stored students, rounded as scores are (:func:`.scoring.stable_floats`),
    drawn into ``out/goodhart.png``; the tracked table from the stored scores."""
    ladder = goodhart.dose_ladder(root)
    for c in ladder.columns:
        ladder[c] = scoring.stable_floats(ladder[c].to_numpy())
    goodhart.plot(ladder, out / "goodhart.png")
    table = goodhart.tracked_table(scores, every[every.family == goodhart.FAMILY])
    headers = ["entry", "tier"] + [str(c) for c in table.columns]
    rows = [[name, access] + [str(v) for v in table.loc[(name, access)]] for name, access in table.index]
    return goodhart.verdict(ladder)[1], headers, rows, "goodhart.png"


def _write_text(path: Path, text: str) -> None:
    store.atomic_write(path, lambda tmp: tmp.write_bytes(text.encode("utf-8")))


def _readme(overall_md: str, sections: list[tuple[str, str, str]], figs: list[tuple[str, str, str]]) -> str:
    parts = ["# snrbench leaderboard\n", _INTRO + "\n", "## Rankings, one per tier\n", overall_md]
    last = None
    for family, tier, table in sections:
        if family != last:
            parts.append(f"## {family}\n")
            last = family
        parts += [f"### {tier}\n", table]
    parts.append("## Figures\n")
    parts += [f"![{alt}]({name})\n" for _, name, alt in figs]
    return "\n".join(parts)


def _budget_label(b: float) -> str:
    """``2^k·64`` for a ladder budget (chain-sweeps), "not reached" for none."""
    if not np.isfinite(b):
        return "not reached"
    k = np.log2(b / 64)
    return f"2^{int(k)}·64" if k == int(k) else f"{int(b):,}"


def _budgets_shown(scores: pd.DataFrame) -> str:
    """The budget a per-family table shows (each entry's largest, :func:`.scoring.at_largest_budget`), in words:
    "at the full budget", or the budgets when an entry was run at lower rungs only."""
    shown = sorted(set(scoring.at_largest_budget(scores)["budget"]))
    if not shown or shown == [BUDGET]:
        return "at the full budget"
    labels = ", ".join(_budget_label(b) for b in shown)
    return (f"at budget {labels}, the largest run" if len(shown) == 1 else f"at each entry's largest budget ({labels})") + (
        f" (the full budget is {_budget_label(BUDGET)})")


def _budget_table(summary: pd.DataFrame, entry=lambda n, a: n) -> tuple[list[str], list[list]]:
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
        rows.append([entry(r.predictor, r.access), r.access] + [_count(g.loc[b, "tracked"], g.loc[b, "n_cells"]) for b in BUDGETS]
                    + [Num(f"{r.area:.2f}", r.area), Num(_budget_label(r.budget_90), r.budget_90)])
    return headers, rows


def _model_tier_rows(scores: pd.DataFrame, family: str, entry=lambda n, a: n) -> tuple[list[str], list[list]]:
    """The model tier against the sampler-only tier on ``family`` (:func:`.model_tier.model_tier_table`):
    per budget and model-tier entry, its tracked cells, median CPU seconds and chain-sweeps per cell,
    beside the best sampler-only entry at that budget with the same figures (no rows: no model tier)."""
    from .model_tier import model_tier_table

    t = model_tier_table(scores[scores["family"] == family])
    headers = ["entry", "budget", "tracked", "median CPU s", "median chain-sweeps", "best sampler-only",
               "its tracked", "its median CPU s", "its median chain-sweeps"]
    num = lambda x, fmt: Num("—", float("nan")) if x != x else Num(format(x, fmt), float(x))  # noqa: E731
    rows = [[entry(r.entry, "model"), Num(_budget_label(r.budget), r.budget),
             _count(round(r.tracked_fraction * r.cells), r.cells), num(r.cpu_seconds, ".3g"), num(r.chain_sweeps, ",.0f"),
             entry(r.best_sampler_only, "sampler-only") if r.best_sampler_only else "—",
             _count(round(r.sampler_only_fraction * r.sampler_only_cells), int(r.sampler_only_cells))
             if r.best_sampler_only else "—", num(r.sampler_only_cpu_seconds, ".3g"),
             num(r.sampler_only_chain_sweeps, ",.0f")] for r in t.itertuples(index=False)]
    return headers, rows


def _interventions(root: Path, families) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per family with a stored intervention table: its runs and one verdict per onset
    (:func:`snrbench.truth.intervention.summary`)."""
    from ..jobs.intervention import intervention_path
    from ..truth.intervention import summary

    out = {}
    for family in families:
        if (root / intervention_path(family)).exists():
            runs = store.read_table(root, intervention_path(family)).to_pandas()
            out[family] = (runs, summary(runs))
    return out


def _intervention_sentences(verdicts: pd.DataFrame) -> list[str]:
    """One sentence per onset: where it is, what was run, and the verdict with its numbers."""
    return [f"m = {v.n_hidden}, onset at update {v.onset_update}: training resumed for {v.updates} updates from "
            f"u{v.before_update} and from u{v.onset_update} with {v.chains} and with {v.chains * v.factor} chains "
            f"({v.seeds} seeds each); mean gain {v.gain_before_recipe:.2f} → {v.gain_before_more:.2f} nats/image "
            f"before, {v.gain_after_recipe:.2f} → {v.gain_after_more:.2f} at the onset — {v.verdict}."
            for v in verdicts.itertuples(index=False)]


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
                 upd(r.onset_update_pred), Num(str(int(r.onset_error)), int(r.onset_error))]
                for r in g.itertuples(index=False)]
        out.append((family, (headers, rows)))
    return out


def _file_meta(root: Path, rel: str) -> dict:
    import pyarrow.parquet as pq

    return json.loads((pq.read_schema(root / rel).metadata or {}).get(b"snrbench", b"{}"))


def _in_project(source: str) -> str | None:
    """The file part of an entry's source (``path::Class``) when it is a relative path inside the project
    root, else None: a source submitted from elsewhere (an absolute path, ``..``, a link out of the project)
    is neither read nor linked, and the page shows only its file name (no host or absolute path in the output)."""
    rel = source.split("::")[0]
    if not rel or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).anchor or ".." in PurePosixPath(rel).parts:
        return None
    root = project_root().resolve()
    try:
        (root / rel).resolve().relative_to(root)
    except (ValueError, OSError):
        return None
    return rel


def _shown_source(source: str) -> str:
    """``source`` as the page shows it: as stored when inside the project, else only its file name (and class)."""
    if _in_project(source) is not None:
        return source
    rel, sep, cls = source.partition("::")
    return PureWindowsPath(rel).name + sep + cls  # the last component, after a / or a backslash


def _describe(source: str) -> str:
    """The first paragraph of the docstring of the entry's source file (``path::Class``, relative to the
    project root), or "" when it cannot be read or lies outside the project (:func:`_in_project`)."""
    rel = _in_project(source)
    if rel is None:
        return ""
    path = project_root() / rel
    try:
        doc = ast.get_docstring(ast.parse(path.read_text()))
    except (OSError, SyntaxError, ValueError):
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split()) if doc else ""


def results_href(root: Path | str, out: Path | str) -> str | None:
    """The link from ``out`` to the results folder when both sit in one project folder (the standard
    ``results/`` beside ``leaderboard/``), else None (the page then offers the CSV copies only)."""
    root, out = Path(root).resolve(), Path(out).resolve()
    return os.path.relpath(root, out) if root.parent == out.parent else None


_EQUILIBRATION = "equilibration check failed"
_NOT_CERTIFIED = "not certified"
_NO_FULL = "no full-budget score"


def _false(cells: pd.DataFrame, column: str) -> np.ndarray:
    """Per cell, whether the truth table's boolean ``column`` is False (absent, not boolean or null: no)."""
    if column not in cells:
        return np.zeros(len(cells), bool)
    try:
        values = cells[column].astype("boolean")
    except (TypeError, ValueError):
        return np.zeros(len(cells), bool)
    return (~values).fillna(False).to_numpy(bool)


def _cell_status(cells: pd.DataFrame, scored: set) -> dict[str, tuple[str, str, bool]]:
    """Per cell_id: (reason, certification, scored) read from the truth table's columns and ``scored`` (the
    cell_ids with a full-budget score). The reason is "equilibration check failed" (``equilibrated``
    False), else "not certified" (a boolean ``certified`` False), else "no full-budget score" for a cell
    without a score, else ""; certification is the cell's ``certification`` text (the measured evidence),
    "" when none."""
    equilibrated, certified = ~_false(cells, "equilibrated"), ~_false(cells, "certified")
    text = (cells["certification"].fillna("").astype(str).tolist() if "certification" in cells
            else [""] * len(cells))
    out = {}
    for cell_id, eq, cert, why in zip(cells["cell_id"], equilibrated, certified, text):
        has = cell_id in scored
        reason = _EQUILIBRATION if not eq else _NOT_CERTIFIED if not cert else "" if has else _NO_FULL
        out[cell_id] = (reason, why, has)
    return out


def _left_out_note(cells: pd.DataFrame, status: dict) -> str:
    """The family note's sentences on the cells without a full-budget score, each named with its reason
    from the truth table, and on the cells scored although their truth is not certified ("" when none)."""
    left, no_full, uncertified = {}, [], []
    for cell_id, label in zip(cells["cell_id"], cells["label"]):
        reason, _, has = status[cell_id]
        if has:
            if reason == _NOT_CERTIFIED:
                uncertified.append(label)
        elif reason == _NO_FULL:
            no_full.append(label)
        else:
            left.setdefault(reason, []).append(label)
    out = ""
    if left:
        out += " Left out of scoring: " + "; ".join(f"{', '.join(v)} ({r})" for r, v in left.items()) + "."
    if no_full and len(no_full) == len(cells):
        out += (" No cell has a full-budget score (no entry was run at the full budget): the tables show each "
                "entry's largest budget.")
    elif no_full:
        out += f" No full-budget score: {', '.join(no_full)}."
    if uncertified:
        out += f" Scored although the ground truth is not certified: {', '.join(uncertified)}."
    return out


class _Page:
    """The page's blocks (:mod:`.page`), built from the loaded results."""

    def __init__(self, root: Path, out: Path, scores, meta, every, pred, href, track=None):
        self.track = track
        self.root, self.out, self.scores, self.meta, self.every, self.pred = root, out, scores, meta, every, pred
        self.full = scores[scores.budget == BUDGET]
        self.href = href
        standard = project_root().resolve() == out.resolve().parent
        self.up = os.path.relpath(project_root(), out) if standard else None
        design = project_root() / "docs" / "DESIGN.md"
        # "DESIGN §N" in an entry's description links to that section (only in the project's own leaderboard/)
        self.design = f"{self.up}/docs/DESIGN.md" if self.up and design.is_file() else None
        self.anchors = page.design_anchors(design.read_text()) if self.design else ()
        claims = project_root() / "docs" / "REPLICATION.md"  # `snrbench replicate --write` (only on the project's own page)
        self.claims_md = claims if self.up and claims.is_file() else None
        self.sources = {k: sorted(set(g["source"])) for k, g in pred.groupby(["predictor", "access"])}

    def entry(self, name: str, access: str) -> Link:
        src = self.sources.get((name, access), [])
        first = src[0] if src else ""
        desc = _describe(first) if first else ""
        title = "; ".join(x for x in (page.plain_text(desc), _shown_source(first) if first else "") if x)
        rel = _in_project(first) if first and "::" in first else None
        href = f"{self.up}/{rel}" if self.up and rel else None
        return Link(name, href, title)

    def link(self, text: str, rel: str | None) -> str:
        return f'<a href="{html.escape(rel)}">{html.escape(text)}</a>' if rel else html.escape(text)

    def header(self, families: list[str]) -> str:
        nav = [("#diagnose", "Diagnose your own model"), ("#rankings", "Rankings"), ("#ladder", "Budget ladder"),
               ("#fresh", "Fresh draws")]
        nav += [(f"#family-{f}", f) for f in families]
        nav += [("#entries", "Entries")] + ([("#claims-of-the-notebook", "Claims of the notebook")] if self.claims_md else [])
        nav += [("#downloads", "Downloads"), ("#submit", "How to submit"), ("#cite", "Cite")]
        links = "".join(f'<a href="{h}">{html.escape(t)}</a>' for h, t in nav)
        gloss = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in _GLOSSARY)
        return (f'<header><h1>snrbench leaderboard</h1><p class="lede">{html.escape(_LEDE)}</p>'
                f'<nav aria-label="sections">{links}</nav>'
                f'<details><summary>How to read this page</summary><dl class="prov">{gloss}</dl>'
                f"<p>{html.escape(_INTRO)}</p></details></header>")

    def claims(self) -> str:
        """The notebook's claims beside ours (:func:`.replicate.page_section`, from the stored
        docs/REPLICATION.md; empty where the page is not the project's own)."""
        from . import replicate

        return replicate.page_section(self.claims_md) if self.claims_md else ""

    def diagnose(self) -> str:
        """The box that links this page to the other half of snrbench: diagnosing the reader's own model."""
        readme = f"{self.up}/README.md#diagnose-your-own-model" if self.up else None
        return ('<section id="diagnose" class="diagnose"><h2>Diagnose your own model</h2>'
                "<p>This page ranks predictors on models whose true Q(T) is known. For <em>your</em> RBM, "
                "<code>snrbench diagnose</code> measures Q(T) and names the cheapest number of chains C and sweeps k "
                "per gradient step whose gradient SNR C·Q(k) reaches 1, in one sentence first:</p>"
                "<pre>snrbench diagnose model.npz --data train.npy --speed quick   # a forecast (the multimode entry)\n"
                "snrbench diagnose model.npz --data train.npy                 # measured: Monte Carlo Q(T)</pre>"
                "<p>In a checkout, after <code>make</code>, the command is <code>.venv/bin/snrbench</code>. Models "
                "(.npz, rbms archives, scikit-learn, torch), data formats and the three speeds: "
                f"{self.link('README, section Diagnose your own model', readme)}.</p></section>")

    def provenance(self, families: list[str]) -> str:
        m = self.meta
        suites = ", ".join(f"{f} {'/'.join(sorted(set(self.every[self.every.family == f]['suite'])))}" for f in families)
        rels = scoring.prediction_files(self.root) + [get(f).truth_paths()[0] for f in families]
        hardware = sorted({_file_meta(self.root, r).get("hardware", "not recorded") for r in rels})
        rows = [("suites", suites), ("package", f"snrbench {m.get('code_version', 'not recorded')} (scores); page built by {__version__}"),
                ("commit", m.get("code_commit", "not recorded")), ("scored on", m.get("scored_on", "not recorded")),
                ("hardware", "; ".join(hardware))]
        items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
        return f'<section id="provenance"><h2>Provenance</h2><dl class="prov">{items}</dl></section>'

    def rankings(self, ranked) -> str:
        parts = ['<section id="rankings"><h2>Rankings, one per tier</h2>', f"<p>{html.escape(_RANKING_RULE)}</p>",
                 f'<p class="how">{html.escape(_HOW_TO_READ)}</p>']
        for tier, table, robust in _tier_tables(_ranked_rows(self.full), self.entry, ranked):
            parts.append(f'<section data-tier="{html.escape(tier)}" id="rank-{html.escape(tier)}"><h3>{html.escape(tier)}</h3>')
            if table is None:
                parts += ["<p>No entries in this tier yet.</p>", "</section>"]
                continue
            fig = self.figure(f"differences_{tier}.png", f"{tier}: for each entry, its paired difference in mean tracked "
                              "fraction from the #1 (left) and from iid (right), a dot with its 95% interval as a bar; "
                              "entries of one tie group share a colour.", f"{tier}: paired differences with 95% intervals.")
            # the table takes the whole width (its cost columns stay in view at 1,400 px); text and figure below
            parts += [page.table_html(table), f'<div class="grid"><p class="robust">{html.escape(robust)}</p>'
                      f"<div>{fig}</div></div>", "</section>"]
        return "\n".join(parts + ["</section>"])

    def figure(self, src: str, alt: str, caption: str) -> str:
        return (f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}" loading="lazy">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def ladder(self) -> str:
        headers, rows = _budget_table(scoring.budget_summary(_ranked_rows(self.scores), by_family=False), self.entry)
        pooled = _pooled(self.scores["family"])
        body = (page.table_html(Table(f"Tracked cells at each budget (chain-sweeps per cell), {pooled}. Area: under "
                                      "the tracked fraction over log2 budget (1 = every cell at every budget).",
                                      headers, rows, [_text(r[1]) for r in rows], drop_constant=False))
                if rows else "<p>No entry has been run at every budget of the ladder yet.</p>")
        apart = _apart(self.scores["family"])
        fig = self.figure("frontier.png", "Tracked fraction (0 to 1) against budget on a log axis, one line per "
                          "black-box entry, one panel with every ranked family's cells pooled and one per ranked "
                          f"family{f' ({apart})' if apart else ''}; grey line at 90%.",
                          f"Tracked fraction against budget, {pooled}.")
        return f'<section id="ladder"><h2>Budget ladder</h2><div class="grid"><div>{body}</div><div>{fig}</div></div></section>'

    def fresh(self) -> str:
        from . import fresh

        against = fresh.stored_comparison(self.root, self.scores)
        if not len(against):
            return '<section id="fresh"><h2>Public against fresh draws</h2><p>No entry has been scored on fresh draws yet.</p></section>'
        headers, rows = _fresh_table(against, self.entry)
        t = Table("Tracked cells on the public cells and on two fresh draws of the exact families; a gap larger than "
                  "3σ (σ from the two draws) is flagged.", headers, rows, [r[1] for r in rows])
        return f'<section id="fresh"><h2>Public against fresh draws</h2>{page.table_html(t)}</section>'

    def family(self, family: str, onsets: dict, interventions: dict | None = None) -> str:
        fam = get(family) if family in names() else None
        every = self.every[self.every.family == family]
        rel = get(family).truth_paths()[0]
        tm = _file_meta(self.root, rel)
        fs = scoring.family_summary(self.scores)
        fs = fs[fs.family == family]
        scored = set(self.full[self.full.family == family]["cell_id"])
        cells = figures.sorted_cells(every)
        status = _cell_status(cells, scored)
        desc = load_suite(family)[0].get("description", "") if fam is not None else ""
        parts = [f'<section id="family-{family}" data-family="{family}"><h2>{html.escape(family)}</h2>']
        if desc:
            parts.append(f"<p>{page.prose_html(desc, self.design, self.anchors)}</p>")
        parts.append(f'<p class="note">{len(cells)} cells, suite {html.escape("/".join(sorted(set(every["suite"]))))} '
                     f'({html.escape(tm.get("suite_file", ""))}). Ground truth: {html.escape(tm.get("method", ""))}; '
                     f'{html.escape(tm.get("precision", ""))}.'
                     + html.escape(_left_out_note(cells, status)) + "</p>")
        tables = []
        for tier in _tiers(list(fs["access"]) + list(fam.tiers if fam is not None else ())):
            g = fs[fs.access == tier]
            if g.empty:
                tables.append(f'<div data-tier="{tier}"><h3>{tier}</h3><p>No entries in this tier yet.</p></div>')
                continue
            headers, rows = _table(g, entry=self.entry)
            shown = _budgets_shown(self.scores[(self.scores.family == family) & (self.scores.access == tier)])
            t = Table(f"{family}, {tier} entries {shown}.", headers, rows, [tier] * len(rows), primary=_PRIMARY_FAMILY)
            tables.append(f'<div data-tier="{tier}"><h3>{tier}</h3>{page.table_html(t)}</div>')
        headers, rows = _budget_table(scoring.budget_summary(self.scores).query("family == @family"), self.entry)
        if rows:
            tables.append("<h3>budget ladder</h3>" + page.table_html(Table(
                f"{family}: tracked cells at each budget.", headers, rows, [_text(r[1]) for r in rows], drop_constant=False)))
        headers, rows = _model_tier_rows(self.scores, family, self.entry)
        if rows:
            tables.append("<h3>model tier against sampler-only</h3>" + page.table_html(Table(
                f"{family}: each model-tier entry at each budget beside the best sampler-only entry at the same "
                "budget (tracked fraction, then median max err); CPU seconds and chain-sweeps are medians per cell.",
                headers, rows, ["model"] * len(rows), drop_constant=False)))
        if family in onsets:
            headers, rows = onsets[family]
            tables.append("<h3>plateau onset</h3>" + page.table_html(Table(
                f"{family}: the first checkpoint where the training's C·Q(T = k) falls below 1 after reaching it "
                "(none: never), true and forecast per hidden size m; error in checkpoints.", headers, rows,
                [r[3] for r in rows], drop_constant=False)))
        tested = (interventions or {}).get(family)
        if tested is not None:
            said = "".join(f"<li>{html.escape(t)}</li>" for t in _intervention_sentences(tested[1]))
            tables.append("<h3>is the onset sampler-limited?</h3><p>Confirmed by intervention when more chains "
                          "restore progress after the onset, and not before it (DESIGN §3).</p>"
                          f"<ul class=\"interventions\">{said}</ul>")
        figs = [self.figure(f"curves_{family}.png", f"{family}: Q(T) against T (log-log) on up to 8 cells; the "
                            "thick black line is the ground truth, the coloured lines the entries (solid white-box, "
                            "dashed sampler-only, dotted model).", "True against predicted Q(T)."),
                self.figure(f"heatmap_{family}.png", f"{family}: max err per entry (rows) and cell (columns, "
                            "in label order); blue tracked, red not, a cross marks a cell not tracked.",
                            "Max err per entry and cell (colour centred on log10 2).")]
        if tested is not None:
            figs.append(self.figure(f"interventions_{family}.png", f"{family}: log-likelihood gain of each resumed "
                                    "run (dots) and each arm's mean (bars), with the recipe's chains and with more, "
                                    "before the onset and at it; one panel per onset.",
                                    "Plateau onsets tested by intervention."))
        parts.append(f'<div class="grid"><div>{"".join(tables)}</div><div>{"".join(figs)}</div></div>')
        if self.track is not None and family == goodhart.FAMILY:
            parts.append(self.goodhart())
        parts.append(self.cells(family, cells, every, status))
        return "\n".join(parts + ["</section>"])

    def goodhart(self) -> str:
        sentence, headers, rows, name = self.track
        rows = [[self.entry(r[0], r[1])] + r[1:] for r in rows]
        t = Table(_GOODHART_TABLE, headers, rows, [r[1] for r in rows], drop_constant=False)
        fig = self.figure(name, "Three quantities against the dose λ (log axis, λ = 0 at the left), one panel per "
                          "rewarded quantity: the rewarded forecast of log10 Q and the true log10 Q (dex, left axis), "
                          "the exact log-likelihood (nats, right axis) with the independent-units model's as a "
                          "reference; dots are seeds, lines their medians.", "The dose ladder.")
        return (f'<section id="goodhart-track"><h3>Goodhart track</h3><p>{html.escape(sentence)}</p>'
                f'<div class="grid"><div>{page.table_html(t)}</div><div>{fig}</div></div></section>')

    def cells(self, family: str, cells, every, status: dict) -> str:
        pred = self.pred[(self.pred.family == family) & (self.pred.budget == BUDGET)]
        entries = sorted(set(zip(pred["predictor"], pred["access"])))
        palette = dict(zip(entries, figures.colours(len(entries))))
        full = self.full[self.full.family == family]
        truth_of, pred_of = figures.rows_by(every, ["cell_id"]), figures.rows_by(pred, ["cell_id", "predictor", "access"])
        score_of, scores_of = figures.rows_by(full, ["cell_id"]), figures.rows_by(full, ["cell_id", "predictor", "access"])
        out = [f'<details class="cells"><summary>Curves of every cell ({len(cells)})</summary>']
        for c in cells.itertuples(index=False):
            t = truth_of.get((c.cell_id,), every.iloc[:0]).sort_values("T")
            ci = (t["ci_low"], t["ci_high"]) if "ci_low" in t and t["ci_low"].notna().all() else None
            curves, rows = [], []
            sc = score_of.get((c.cell_id,), full.iloc[:0])
            for name, access in entries:
                p = pred_of.get((c.cell_id, name, access), pred.iloc[:0]).sort_values("T")
                if p.empty:
                    continue
                curves.append((name, access, palette[(name, access)], p["T"], p["log10_q"]))
                s = scores_of.get((c.cell_id, name, access), full.iloc[:0])
                err = float(s["max_err"].iloc[0]) if len(s) else float("nan")
                rows.append(f'<tr><th scope="row">{page.swatch(palette[(name, access)], access)}{html.escape(name)}</th>'
                            f'<td>{html.escape(access)}</td><td class="n">{_fmt(err)}</td>'
                            f'<td>{"yes" if err <= scoring.TRACK_TOL + 1e-12 else ("n/a" if err != err else "no")}</td></tr>')
            k = int(sc["tracked"].sum()) if len(sc) else 0
            reason, why, _ = status[c.cell_id]
            shown = (f"tracked by {k} of {len(sc)} entries" + (f" · {reason}" if reason else "") if len(sc)
                     else reason if reason == _NO_FULL else f"not scored ({reason})")
            tip = f' title="{html.escape(why)}"' if why else ""
            svg = page.cell_svg(f"{c.label}: log10 Q(T), truth in black" + (" with its 95% CI" if ci else "")
                                + f", {len(curves)} entries' predictions", t["T"], t["log10_q"], ci, curves)
            spec = json.dumps(json.loads(c.spec_json), indent=1, sort_keys=True)
            table = ('<table><caption>max err per entry (dex)</caption><thead><tr><th scope="col">entry</th>'
                     '<th scope="col">tier</th><th scope="col">max err</th><th scope="col">tracked</th></tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table>')
            out.append(f'<details class="cell" id="cell-{c.cell_id}"><summary{tip}>{html.escape(c.label)} · '
                       f"{html.escape(shown)}</summary>"
                       + (f'<p class="note">Certification of the ground truth: {html.escape(why)}</p>' if why else "")
                       + f'<div class="cellbody">{svg}<div class="scroll">{table}</div></div>'
                       f"<details><summary>spec</summary><pre>{html.escape(spec)}</pre></details></details>")
        return "\n".join(out + ["</details>"])

    def entries(self) -> str:
        """Every entry: its name (a link to its source), tier, source and the first paragraph of its docstring."""
        rows = []
        for (name, access), src in sorted(self.sources.items()):
            link = self.entry(name, access)
            href = link.href if len(src) == 1 else None
            rows.append([link, access, Link(", ".join(_shown_source(x) for x in src), href),
                         Prose(_describe(src[0]), self.design, self.anchors) if src else ""])
        t = Table("Every entry on the board: the source it was run from (relative to the project; only the file "
                  "name of a source outside it, neither linked nor described) and what it does.",
                  ["entry", "tier", "source", "description"], rows, [r[1] for r in rows], drop_constant=False)
        return f'<section id="entries"><h2>Entries</h2>{page.table_html(t)}</section>'

    def downloads(self, families: list[str], csvs: dict[str, str]) -> str:
        items = [f"<li>scores (every cell, entry and budget): {self.link('CSV', csvs['scores'])}"
                 + (f", {self.link('Parquet', self.href + '/' + scoring.SCORES_REL)}" if self.href else "") + "</li>",
                 f"<li>rankings (per tier: intervals, rank intervals, tie groups, margins over iid): "
                 f"{self.link('CSV', csvs['rankings'])}</li>"]
        for f in families:
            rel = get(f).truth_paths()[0]
            items.append(f"<li>{html.escape(f)} ground truth: {self.link('CSV', csvs[f])}"
                         + (f", {self.link('Parquet', self.href + '/' + rel)}" if self.href else "") + "</li>")
        if self.href:
            items += [f"<li>predictions of {html.escape(Path(r).stem)}: {self.link('Parquet', self.href + '/' + r)}</li>"
                      for r in scoring.prediction_files(self.root)]
        return f'<section id="downloads"><h2>Downloads</h2><ul>{"".join(items)}</ul></section>'

    def footer(self) -> str:
        readme = f"{self.up}/README.md#submit-a-predictor" if self.up else None
        cff = f"{self.up}/CITATION.cff" if self.up else None
        return (f'<section id="submit"><h2>How to submit</h2><p>Write a predictor (one small class), then run '
                f"<code>snrbench submit PATH.py</code>: it runs in a sandbox on every cell, is scored and published "
                f"with the rest. The steps are in the {self.link('README, section Submit a predictor', readme)}.</p></section>"
                f'<section id="cite"><h2>Cite</h2><p>{self.link("CITATION.cff", cff)} in the repository; as BibTeX:</p>'
                f"<pre>{html.escape(BIBTEX % self.meta.get('code_version', __version__))}</pre></section>")


def build(root: Path | str, out: Path | str, results_link: str | None = "auto") -> list[Path]:
    """Write the leaderboard of the results under ``root`` into ``out``; returns the paths written.

    Files, in the order returned: ``curves_<family>.png`` and ``heatmap_<family>.png`` for each
    family (sorted by name), ``frontier.png``, ``differences_<tier>.png`` for each tier with a ranking,
    ``data/scores.csv``, ``data/rankings.csv``, ``data/<family>.truth.csv``, ``interventions_<family>.png``
    (a family with a stored intervention table), ``goodhart.png`` (with the goodhart family), then ``README.md`` and ``index.html``. ``results_link`` is the page's link to the results folder
    ("auto": :func:`results_href`; None: no Parquet links). Raises :class:`snrbench.store.ResultsError`
    when a result file is missing, damaged or hand-edited, or when ``scores.parquet`` is older than
    its inputs.
    """
    import matplotlib.style

    root, out = Path(root), Path(out)
    scores, meta = _load_scores(root)
    families = sorted(set(scores["family"]))
    every = scoring.read_ground_truth(root, families)
    truth, pred = scoring.scorable(every, scoring.read_predictions(root))
    pred_full, full = pred[pred.budget == BUDGET], scores[scores.budget == BUDGET]
    fam_summary = scoring.family_summary(scores)
    fam_budgets = scoring.budget_summary(scores)

    written, figs, md_sections = [], [], []
    with matplotlib.style.context("default"):  # the user's matplotlibrc must not change the bytes
        for family in families:
            curves, heat = out / f"curves_{family}.png", out / f"heatmap_{family}.png"
            figures.plot_curves(family, truth[truth.family == family], pred_full[pred_full.family == family], curves)
            figures.plot_heatmap(family, full[full.family == family], heat)
            written += [curves, heat]
            figs += [(family, curves.name, f"{family}: true vs predicted Q(T)"),
                     (family, heat.name, f"{family}: max err per cell and entry")]
        frontier = out / "frontier.png"
        figures.plot_frontier(_ranked_rows(scores), frontier)
        written.append(frontier)
        figs.insert(0, ("", frontier.name, f"tracked fraction against budget, {_pooled(families)}"))
        ranked = _rankings(_ranked_rows(full))
        for tier in sorted(set(ranked[0]["tier"]), key=_tiers(ranked[0]["tier"]).index):
            diff = out / f"differences_{tier}.png"
            figures.plot_differences(tier, ranked[0][ranked[0].tier == tier], diff)
            written.append(diff)
            figs.insert(0, ("", diff.name, f"{tier}: paired differences with 95% intervals"))
    csvs = {"scores": "data/scores.csv", "rankings": "data/rankings.csv"}
    _write_text(out / csvs["scores"], scores.to_csv(index=False, lineterminator="\n"))
    _write_text(out / csvs["rankings"], ranked[0].assign(p_vs_next=ranked[0]["p_vs_next"].map(_p_text)).to_csv(
        index=False, lineterminator="\n", float_format=f"%.{intervals.DECIMALS}f"))
    written += [out / csvs["scores"], out / csvs["rankings"]]
    for family in families:
        csvs[family] = f"data/{family}.truth.csv"
        _write_text(out / csvs[family], every[every.family == family].to_csv(index=False, lineterminator="\n"))
        written.append(out / csvs[family])
    onsets = dict(_onset_tables(root))
    interventions = _interventions(root, families)
    with matplotlib.style.context("default"):
        for family, (runs, verdicts) in interventions.items():
            figures.plot_interventions(family, runs, verdicts, out / f"interventions_{family}.png")
            written.append(out / f"interventions_{family}.png")
            figs.append((family, f"interventions_{family}.png", f"{family}: plateau onsets tested by intervention"))
    track = None
    if goodhart.FAMILY in families:
        with matplotlib.style.context("default"):
            track = _goodhart_track(root, scores, every, out)
        written.append(out / track[3])
        figs.append(("", track[3], "Goodhart track: rewarded value, true Q and log-likelihood along the dose ladder"))
    for family in families:
        fs = fam_summary[fam_summary.family == family]
        offered = get(family).tiers if family in names() else ()
        here = scores[scores.family == family]
        tables = [(tier if _budgets_shown(here[here.access == tier]) == "at the full budget"
                   else f"{tier}, {_budgets_shown(here[here.access == tier])}",
                   _table(fs[fs.access == tier]) if (fs.access == tier).any() else None)
                  for tier in _tiers(list(fs["access"]) + list(offered))]
        ladder = _budget_table(fam_budgets[fam_budgets.family == family])
        if ladder[1]:
            tables.append(("budget ladder", ladder))
        model = _model_tier_rows(scores, family)
        if model[1]:
            tables.append(("model tier against sampler-only", model))
        if family in onsets:
            tables.append(("plateau onset", onsets[family]))
        md_sections += [(family, tier, _markdown_table(*table) if table else "No entries in this tier yet.\n")
                        for tier, table in tables]
        if family in interventions:
            md_sections.append((family, "is the onset sampler-limited?", "".join(
                f"- {t}\n" for t in _intervention_sentences(interventions[family][1]))))
        md_sections += ([(family, "Goodhart track", f"{track[0]}\n\n{_GOODHART_TABLE}\n\n{_markdown_table(*track[1:3])}")]
                        if track is not None and family == goodhart.FAMILY else [])
    ladder = _budget_table(scoring.budget_summary(_ranked_rows(scores), by_family=False))
    none = "No entry has been run at every budget of the ladder yet (`snrbench predict`)."
    ladder_md = f"Tracked cells at each budget, {_pooled(families)}.\n\n" + _markdown_table(*ladder) if ladder[1] else none + "\n"
    md_sections.insert(0, ("Budget ladder", "ranked families pooled", ladder_md))
    from . import fresh

    against = fresh.stored_comparison(root, scores)
    if len(against):
        md_sections.insert(1, ("Public against fresh draws", "exact families", _markdown_table(*_fresh_table(against))))
    readme, index = out / "README.md", out / "index.html"
    _write_text(readme, _readme(_markdown_overall(scores, "", ranked), md_sections, figs))
    href = results_href(root, out) if results_link == "auto" else results_link
    p = _Page(root, out, scores, meta, every, pred, href, track)
    body = [p.header(families), p.diagnose(), p.provenance(families), p.rankings(ranked), p.ladder(), p.fresh()]
    body += [p.family(f, onsets, interventions) for f in families] + [p.entries(), p.claims(), p.downloads(families, csvs), p.footer()]
    body = [b for b in body if b]  # the claims' section only on the project's own page
    tiers = _tiers(list(scores["access"]) + list(_TIERS))
    _write_text(index, page.page_html("snrbench leaderboard", ["<main>" + body[0]] + body[1:] + ["</main>"], families, tiers))
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
