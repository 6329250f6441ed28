"""Fresh draws: new cells from the exact families' recipes, solved on the fly, to score entries on
cells nobody has seen.

A draw is named by a seed S (an int ≥ 0). It takes every exact family's suite, keeps its grid and
recipe and replaces the model seeds by :func:`snrbench.families._exact.fresh_seeds` (S, so new
models and new teachers), and lives in its own results folder ``results/fresh/<S>/``: the drawn
suite files under ``tasks/``, their exact ground truth, the entries' predictions at the full budget
and their scores, with a manifest of its own. Anyone regenerates a draw from its seed.

An entry's public score is compared with two draws, S and S + 1: the gap is the public tracked
fraction minus the mean of the two fresh ones, the noise ``σ = max(|p₁ − p₂|/√2, √(p̄(1 − p̄)/n),
1/n)`` (the spread of the two draws, the binomial spread of one draw of n cells, one cell), and the
gap is **flagged** when it exceeds 3σ: an entry that knows the public cells (tuned to them, or
carrying answers keyed on them) scores better there than on cells drawn the same way.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import store
from ..families import get, names
from ..jobs.groundtruth import generate
from ..predict.contract import BUDGET
from ..predict.predictions import predict_entries
from . import scoring

__all__ = ["FRESH_DIR", "draw_root", "fresh_families", "draw_suites", "run_draw", "draw_scores", "compare",
           "stored_comparison", "FLAG_SIGMAS"]

FRESH_DIR = "fresh"
#: A public-minus-fresh gap above this many noise units is flagged.
FLAG_SIGMAS = 3.0


def draw_root(results: Path | str, draw: int) -> Path:
    """``results/fresh/<draw>``: the results folder of one draw."""
    if isinstance(draw, bool) or not isinstance(draw, int) or draw < 0:
        raise ValueError(f"a fresh draw's seed must be an int ≥ 0, got {draw!r}")
    return Path(results) / FRESH_DIR / str(draw)


def fresh_families(families=None) -> list[str]:
    """The families of ``families`` (default: all registered) that offer fresh draws."""
    return [f for f in (families or names()) if get(f).fresh_draws]


def draw_suites(results: Path | str, draw: int, families) -> dict[str, Path]:
    """Write the drawn suite file of each family under ``draw_root/tasks/`` (the same text every time)."""
    folder = draw_root(results, draw) / "tasks"
    out = {}
    for family in families:
        fam = get(family)
        src = fam.suite_path()
        path = folder / src.name
        text = fam.fresh_suite(src.read_text(), draw, str(src))
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            store.atomic_write(path, lambda tmp: tmp.write_text(text))
        out[family] = path
    return out


def run_draw(results: Path | str, draw: int, entries, families, workers: int = 2, time_limit: float = 300.0,
             limits: dict | None = None, progress: bool = True, scheduler: str | None = None) -> pd.DataFrame:
    """Draw, solve (resumable: a stored draw is reused), run ``entries`` on it at the full budget,
    store and score; returns the draw's per-cell scores of those entries. ``scheduler``: where the
    cells of both run (:func:`snrbench.jobs.executor.map_cells`; None: local processes)."""
    root = draw_root(results, draw)
    suites = draw_suites(results, draw, families)
    for family, path in suites.items():
        generate(family, root, workers=workers, progress=progress, suite_file=path, scheduler=scheduler)
    runs = predict_entries(root, entries, list(suites), force=True, workers=workers, time_limit=time_limit,
                           progress=progress, suite_files={f: str(p) for f, p in suites.items()}, limits=limits,
                           budgets=(BUDGET,), scheduler=scheduler)
    failed = [r for r in runs if r.failures]
    if failed:
        r = failed[0]
        raise RuntimeError(f"fresh draw {draw}: {r.entry} failed on {len(r.failures)} cells of {r.family} "
                           f"({r.failures[0].label}: {r.failures[0].error[:300]})")
    scoring.score(root)
    return draw_scores(results, draw)


def draw_scores(results: Path | str, draw: int) -> pd.DataFrame:
    """The stored per-cell scores of one draw (empty when it has none)."""
    root = draw_root(results, draw)
    if not (root / scoring.SCORES_REL).exists():
        return pd.DataFrame(columns=["family", "access", "predictor", "budget", "tracked"])
    return store.read_table(root, scoring.SCORES_REL).to_pandas()


def _fraction(scores: pd.DataFrame) -> tuple[int, int]:
    return int(scores["tracked"].sum()), len(scores)


def compare(public: pd.DataFrame, draws: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Public against fresh, one row per (access, predictor) scored on two draws, over the families
    the draws cover (public: at the largest budget the entry was scored at, normally the full one;
    fresh: at the full budget): tracked counts, the gap, the noise σ and the flag (module doc)."""
    rows = []
    if len(draws) < 2:
        return pd.DataFrame(rows)
    (d1, s1), (d2, s2) = sorted(draws.items())[:2]
    full = lambda s: s[s["budget"] == BUDGET]  # noqa: E731
    s1, s2, public = full(s1), full(s2), scoring.at_largest_budget(public)
    for (access, name), g1 in s1.groupby(["access", "predictor"], sort=True):
        g2 = s2[(s2.access == access) & (s2.predictor == name)]
        fams = sorted(set(g1.family))
        g0 = public[(public.access == access) & (public.predictor == name) & public.family.isin(fams)]
        if g2.empty or g0.empty:
            continue
        (t0, n0), (t1, n1), (t2, n2) = _fraction(g0), _fraction(g1), _fraction(g2)
        p0, p1, p2 = t0 / n0, t1 / n1, t2 / n2
        pbar, n = (p1 + p2) / 2, (n1 + n2) / 2
        sigma = max(abs(p1 - p2) / math.sqrt(2), math.sqrt(pbar * (1 - pbar) / n), 1 / n)
        gap = p0 - pbar
        rows.append(dict(predictor=name, access=access, families=", ".join(fams), draws=f"{d1}, {d2}",
                         public=f"{t0}/{n0}", fresh_1=f"{t1}/{n1}", fresh_2=f"{t2}/{n2}",
                         gap=gap, sigma=sigma, flagged=bool(gap > FLAG_SIGMAS * sigma)))
    return pd.DataFrame(rows)


def stored_comparison(results: Path | str, public: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare` of the public scores with the two lowest-numbered stored draws of each entry
    (draws S and S + 1 are what ``snrbench submit --fresh S`` makes)."""
    base = Path(results) / FRESH_DIR
    draws = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit()) if base.is_dir() else []
    scored = {d: draw_scores(results, d) for d in draws}
    rows = []
    keys = sorted({k for s in scored.values() for k in zip(s.access, s.predictor)})
    for access, name in keys:
        mine = {d: s[(s.access == access) & (s.predictor == name)] for d, s in scored.items()}
        mine = {d: s for d, s in mine.items() if len(s)}
        pair = next(((d, d + 1) for d in sorted(mine) if d + 1 in mine), None)
        if pair:
            rows.append(compare(public, {d: mine[d] for d in pair}))
    rows = [r for r in rows if len(r)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
