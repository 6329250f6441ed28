"""Fresh draws: new cells from the exact families' recipes, solved on the fly, to score entries on
cells nobody has seen. Every ``snrbench submit`` runs two (:func:`check`) before it publishes.

A draw is named by a seed S (an int ≥ 0, drawn by ``secrets`` unless the operator gives one). It
takes every exact family's suite, keeps its grid and recipe and replaces the model seeds by
:func:`snrbench.families._exact.fresh_seeds` (S, so new models and new teachers). A submission's
two draws, S and S + 1, are results folders of their own, ``results/fresh/<token>-1`` and
``<token>-2``, with a random ``token`` (:func:`new_token`): the folder name, which a worker sees in
its list of blocked paths, says nothing of the seed. Each holds the drawn suite files under
``tasks/`` (where the seed is recorded: anyone regenerates a draw from it), their exact ground
truth, the entries' predictions at every budget they are published at, their scores and a
manifest of its own. They are made in a staging folder beside ``results/`` and moved in only with
the submission they checked.

An entry's public score is compared with the two draws at each budget: the gap is the public
tracked fraction minus the mean of the two fresh ones, the noise ``σ = max(|p₁ − p₂|/√2,
√(p̄(1 − p̄)/n), 1/n)`` (the spread of the two draws, the binomial spread of one draw of n cells, one
cell), and the gap is **flagged** when it exceeds 3σ: an entry that knows the public cells (tuned
to them, or carrying answers keyed on them) scores better there than on cells drawn the same way.
A submission flagged at any budget, or failing on a fresh cell, is not published.
"""
from __future__ import annotations

import math
import re
import secrets
from pathlib import Path

import pandas as pd

from .. import store
from ..families import get, names
from ..jobs.groundtruth import generate
from ..predict.predictions import predict_entries
from . import scoring

__all__ = ["FRESH_DIR", "new_token", "fresh_families", "draw_suites", "run_draw", "draw_scores", "compare",
           "stored_comparison", "check", "FLAG_SIGMAS"]

FRESH_DIR = "fresh"
#: A public-minus-fresh gap above this many noise units is flagged.
FLAG_SIGMAS = 3.0
_PAIR = re.compile(r"([0-9a-f]{16})-1")


def new_token() -> str:
    """A random name for a submission's pair of draws (64 bits from ``secrets``)."""
    return secrets.token_hex(8)


def fresh_families(families=None) -> list[str]:
    """The families of ``families`` (default: all registered) that offer fresh draws."""
    return [f for f in (families or names()) if get(f).fresh_draws]


def draw_suites(root: Path | str, seed: int, families) -> dict[str, Path]:
    """Write the drawn suite file of each family under ``root/tasks/`` (the same text every time)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a fresh draw's seed must be an int ≥ 0, got {seed!r}")
    folder = Path(root) / "tasks"
    out = {}
    for family in families:
        fam = get(family)
        src = fam.suite_path()
        path = folder / src.name
        text = fam.fresh_suite(src.read_text(), seed, str(src))
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            store.atomic_write(path, lambda tmp: tmp.write_text(text))
        out[family] = path
    return out


def run_draw(root: Path | str, seed: int, entries, families, budgets=None, workers: int = 2, time_limit: float = 300.0,
             limits: dict | None = None, progress: bool = True, scheduler: str | None = None, blocked=()) -> list:
    """Draw ``seed`` into the results folder ``root``, solve it, run ``entries`` on it at ``budgets``
    (None: each entry's whole ladder), store the runs that succeeded and score; returns every run
    (:class:`snrbench.predict.runner.EntryRun`; the caller refuses those with failures).
    ``scheduler``: where the cells of both run (:func:`snrbench.jobs.executor.map_cells`); ``blocked``:
    what the entries may not touch besides ``root`` (the whole staging folder of the draws, the public
    results: :func:`snrbench.predict.runner.blocked_paths`)."""
    root = Path(root)
    suites = draw_suites(root, seed, families)
    for family, path in suites.items():
        generate(family, root, workers=workers, progress=progress, suite_file=path, scheduler=scheduler)
    runs = predict_entries(root, entries, list(suites), force=True, workers=workers, time_limit=time_limit,
                           progress=progress, suite_files={f: str(p) for f, p in suites.items()}, limits=limits,
                           budgets=budgets, scheduler=scheduler, blocked=blocked)
    if any(not r.failures for r in runs):
        scoring.score(root)
    return runs


def draw_scores(root: Path | str) -> pd.DataFrame:
    """The stored per-cell scores of the draw in ``root`` (empty when it has none)."""
    root = Path(root)
    if not (root / scoring.SCORES_REL).exists():
        return pd.DataFrame(columns=["family", "access", "predictor", "budget", "tracked"])
    return store.read_table(root, scoring.SCORES_REL).to_pandas()


def _fraction(scores: pd.DataFrame) -> tuple[int, int]:
    return int(scores["tracked"].sum()), len(scores)


def compare(public: pd.DataFrame, draws: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Public against fresh, one row per (access, predictor, budget) scored on both draws (the first
    two of ``draws``, name → scores), over the families the draws cover: tracked counts, the gap,
    the noise σ and the flag (module doc). ``draws`` (a column) names the budget too."""
    rows = []
    if len(draws) < 2:
        return pd.DataFrame(rows)
    (d1, s1), (d2, s2) = sorted(draws.items())[:2]
    for (access, name, budget), g1 in s1.groupby(["access", "predictor", "budget"], sort=True):
        g2 = s2[(s2.access == access) & (s2.predictor == name) & (s2.budget == budget)]
        fams = sorted(set(g1.family))
        g0 = public[(public.access == access) & (public.predictor == name) & (public.budget == budget)
                    & public.family.isin(fams)]
        if g2.empty or g0.empty:
            continue
        (t0, n0), (t1, n1), (t2, n2) = _fraction(g0), _fraction(g1), _fraction(g2)
        p0, p1, p2 = t0 / n0, t1 / n1, t2 / n2
        pbar, n = (p1 + p2) / 2, (n1 + n2) / 2
        sigma = max(abs(p1 - p2) / math.sqrt(2), math.sqrt(pbar * (1 - pbar) / n), 1 / n)
        gap = p0 - pbar
        rows.append(dict(predictor=name, access=access, families=", ".join(fams),
                         draws=f"{d1}, {d2} at {int(budget):,}", budget=int(budget),
                         public=f"{t0}/{n0}", fresh_1=f"{t1}/{n1}", fresh_2=f"{t2}/{n2}",
                         gap=gap, sigma=sigma, flagged=bool(gap > FLAG_SIGMAS * sigma)))
    return pd.DataFrame(rows)


def stored_comparison(results: Path | str, public: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare` of the public scores with each stored pair of draws (``fresh/<token>-1`` and
    ``-2``, what one ``snrbench submit`` makes), for the entries scored on that pair."""
    base = Path(results) / FRESH_DIR
    pairs = sorted(m[1] for p in base.iterdir() if (m := _PAIR.fullmatch(p.name))) if base.is_dir() else []
    rows = [compare(public, {f"{t}-{k}": draw_scores(base / f"{t}-{k}") for k in (1, 2)}) for t in pairs
            if (base / f"{t}-2").is_dir()]
    rows = [r for r in rows if len(r)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def check(public: pd.DataFrame, draws: dict[str, pd.DataFrame], runs, entries) -> tuple[pd.DataFrame, list[str]]:
    """Why ``entries`` may not be published, from the fresh ``runs`` (every cell must succeed) and the
    comparison of their ``public`` scores with the two ``draws`` at every budget (none may be flagged,
    and every budget published must have been drawn); also, a sampler-only entry may not track a
    public cell it never sampled (0 sweeps: it can only have known the answer). Returns (the
    comparison, the reasons; none: publish)."""
    keys = {(e.access, e.name) for e in entries}
    table = compare(public, draws)
    table = table[[k in keys for k in zip(table.access, table.predictor)]] if len(table) else table
    failed = [(r, [c for c in r.failures if not c.skipped]) for r in runs if r.failures]
    why = [f"{r.entry} on a fresh draw of {r.family} at budget {r.budget:,}: {len(bad)} of {len(r.results)} cells "
           f"failed ({bad[0].label}: {bad[0].error[:300]})" for r, bad in failed if bad]
    why += [f"{r.predictor} ({r.access}) at budget {r.budget:,}: public {r.public} against fresh {r.fresh_1} and "
            f"{r.fresh_2}, a gap of {r.gap:+.2f} > {FLAG_SIGMAS:g} σ = {FLAG_SIGMAS * r.sigma:.2f} (flagged)"
            for r in table.itertuples(index=False) if r.flagged]
    mine = public[[k in keys for k in zip(public.access, public.predictor)]]
    fams = set().union(*(set(d.family) for d in draws.values())) if draws else set()
    compared = {(r.access, r.predictor, r.budget) for r in table.itertuples(index=False)}
    for (access, name, budget), g in mine[mine.family.isin(fams)].groupby(["access", "predictor", "budget"]):
        if not why and (access, name, int(budget)) not in compared:
            why.append(f"{name} ({access}) at budget {int(budget):,}: published there but not run on the fresh draws")
    blind = mine[(mine.access == "sampler-only") & mine.tracked & (mine.sweeps == 0)]
    why += [f"{r.predictor} (sampler-only) at budget {int(r.budget):,}: tracked cell {r.label} of {r.family} with 0 "
            "sweeps; a sampler-only entry cannot know a cell it never sampled" for r in blind.itertuples(index=False)]
    return table, why
