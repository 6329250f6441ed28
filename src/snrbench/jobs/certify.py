"""The certification rule of the checkpoint families (DESIGN §2.4): ``certified`` and its evidence.

A checkpoint's stored truth is *certified* when

* its starts are exact samples (m ≤ 20: no ladder is involved), or
* two generators of independent method agree and each passes its own health check:
  - tempering (the stored curve): the four-z check passed (``equilibrated``) and every group of
    ladders made at least :data:`ROUND_TRIP_FLOOR` round trips in production;
  - population annealing (the side table, its strongest generation per cell,
    :func:`~snrbench.jobs.annealing.strongest`): every run keeps at least
    :data:`~snrbench.truth.annealing.FAMILIES_FLOOR` effective families and a step ESS/P of at least
    :data:`~snrbench.truth.annealing.ESS_FLOOR` (:func:`~snrbench.truth.annealing.health`);
  - their ``log10 Q`` agree within the two CIs at every T, simultaneously at 95%: each half-width
    is widened to the Bonferroni level over the ``K`` points of the T grid (``|Δ| ≤ c·√(h₁² + h₂²)``,
    ``c = z(1 − 0.025/K)/z(0.975)``, 1.45 for K = 11). Pointwise 95% intervals at every one of 11
    correlated points fail two unbiased curves far more often than 1 time in 20: annealing against
    exact starts on the 24 m = 16 checkpoints, both unbiased, failed 4 of 24 cells that way.

The stored curve stays the tempering one (it is named in ``start``): where both pass and agree the
two are the same curve within their CIs, and the tempering curve is the one the entries were scored
against. An uncertified cell keeps its curve, with ``certified = False`` and every failed check,
with its measured value, in ``certification``; scoring leaves it out.

:func:`certify` writes both columns into the family's truth table (its manifest entry's group
kept) and returns the per-cell table of the evidence. It also migrates tables stored before these
columns existed (the truth table's two, and the tempering table's ``swap_acceptance_q10``, NaN for
runs that did not record it).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..families import get
from ..store.schema import arrow_schema
from ..truth.annealing import ESS_FLOOR, FAMILIES_FLOOR
from .annealing import annealing_path, strongest
from .start_check import _agree, ladder_diagnostics

__all__ = ["certify", "ROUND_TRIP_FLOOR"]

#: Fewest production round trips per group of ladders for a tempering run to pass its health check:
#: below it a group's top-rung states are refreshed from the base-rate end a handful of times at most.
ROUND_TRIP_FLOOR = 10


#: Columns added to a table since the stored MNIST tables were written; a stored table that lacks
#: exactly these is migrated by :func:`certify` (certification columns computed, the others NaN).
_ADDED = {"mnist_truth": ("certified", "certification"), "tempering": ("swap_acceptance_q10",)}


def _read(root, rel: str, table: str) -> tuple[pd.DataFrame, bool]:
    """A stored table and whether it needs migrating: one written before the columns of ``_ADDED``
    existed is read once, with its checksum still checked and only those columns missing."""
    problems = [p for p in store.verify(root) if p.startswith(rel + ":")]
    if problems and problems != [f"{rel}: columns do not match the declared {table!r} schema"]:
        raise store.ResultsError("; ".join(problems))
    df = store.read_table(root, rel, check=False).to_pandas()
    missing = sorted(c.name for c in arrow_schema(table) if c.name not in df.columns)
    if missing and missing != sorted(_ADDED[table]):
        raise store.ResultsError(f"{rel}: columns {missing} missing; only {sorted(_ADDED[table])} can be added")
    return df, bool(missing)


def _info(root, rel: str) -> dict:
    meta = json.loads(store.read_table(root, rel, check=False).schema.metadata[b"snrbench"])
    return {k: meta[k] for k in ("suite", "family", "method", "precision", "suite_file", "seeds") if k in meta}


def _annealing(root, family: str) -> pd.DataFrame:
    """The strongest generation per cell of the family's side table; none when the table was never
    made. A damaged or hand-edited table raises (its checksum is checked), so that it can neither
    certify a cell nor un-certify every cell by looking absent."""
    if not (Path(root) / annealing_path(family)).exists():
        return pd.DataFrame(columns=[c.name for c in arrow_schema("annealing")])
    return strongest(store.read_table(root, annealing_path(family)).to_pandas())


def certify(family: str, root, write: bool = True) -> pd.DataFrame:
    """One row per cell of ``family``: the tempering and annealing evidence, ``max_abs_delta`` (largest
    |log10 Q_annealing − log10 Q_stored| over T, dex), ``certified`` and ``certification`` (module
    docstring); with ``write`` the two columns go into the stored truth table."""
    fam = get(family)
    rel, pt_rel = fam.truth_paths()[:2]
    truth, _ = _read(root, rel, "mnist_truth")
    pt, pt_old = _read(root, pt_rel, "tempering")
    if pt_old and write:  # the stored runs kept only each pair's mean acceptance over ladders
        pt["swap_acceptance_q10"] = np.nan
        cols = [c.name for c in arrow_schema("tempering")]
        store.commit(root, {pt_rel: ("tempering", pt[cols].to_dict("list"), _info(root, pt_rel))})
    ladders = ladder_diagnostics(family, root) if (truth.start != "exact").any() and (write or not pt_old) else None
    if ladders is None and (truth.start != "exact").any():
        raise store.ResultsError(f"{pt_rel}: stored before swap_acceptance_q10 existed; run `snrbench certify` "
                                 "without --dry-run once to add it")
    ann = _annealing(root, family)
    rows = []
    for cell_id, ref in truth.groupby("cell_id", sort=False):
        ref = ref.sort_values("T")
        first = ref.iloc[0]
        row = dict(label=first.label, start=first.start, equilibrated=bool(first.equilibrated))
        why = []
        if first.start == "exact":
            row.update(certified=True, certification="exact starts (m ≤ 20)")
            got = ann[ann.cell_id == cell_id].sort_values("T")
            if len(got):
                row.update(max_abs_delta=float(np.max(np.abs(got.log10_q.to_numpy() - ref.log10_q.to_numpy()))),
                           annealing_eff_families=float(got.eff_families.iloc[0]),
                           annealing_ess=float(got.min_ess.iloc[0]))
            rows.append(row)
            continue
        groups = ladders[ladders.label == first.label]
        row.update(round_trips=" + ".join(str(t) for t in groups.round_trips),
                   ratio_to_bound=" / ".join(f"{r:.2g}" for r in groups.ratio))
        if not first.equilibrated:
            why.append("tempering: the four-z check failed")
        if (groups.round_trips < ROUND_TRIP_FLOOR).any():
            why.append(f"tempering: round trips {row['round_trips']} < {ROUND_TRIP_FLOOR} per group")
        got = ann[ann.cell_id == cell_id].sort_values("T")
        if got.empty:
            why.append("no population-annealing run")
        else:
            row.update(annealing_particles=int(got.n_particles.iloc[0]),
                       annealing_sweeps_per_step=int(got.sweeps_per_step.iloc[0]),
                       annealing_eff_families=float(got.eff_families.iloc[0]),
                       annealing_ess=float(got.min_ess.iloc[0]))
            if not bool(got.healthy.iloc[0]):
                why.append(f"annealing: {got.health.iloc[0]}")
            if list(got["T"]) != list(ref["T"]):
                why.append("annealing: another T grid")
            else:
                inside = _agree(ref, got, n_tests=len(ref))
                row["max_abs_delta"] = float(np.max(np.abs(got.log10_q.to_numpy() - ref.log10_q.to_numpy())))
                if not inside.all():
                    why.append(f"annealing and tempering disagree at {int((~inside).sum())}/{len(inside)} T "
                               f"(largest |Δ| {row['max_abs_delta']:.3f} dex)")
        row.update(certified=not why, certification="; ".join(why) if why else (
            f"population annealing (P = {row['annealing_particles']}, {row['annealing_sweeps_per_step']} sweeps per step, effective families ≥ {FAMILIES_FLOOR:g}, "
            f"step ESS/P ≥ {ESS_FLOOR:g}) and {first.start} (round trips {row['round_trips']}) agree at every T"))
        rows.append(row)
    table = pd.DataFrame(rows)
    if write:
        verdict = table.set_index("label")
        truth["certified"] = truth.label.map(verdict.certified).astype(bool)
        truth["certification"] = truth.label.map(verdict.certification)
        cols = [c.name for c in arrow_schema("mnist_truth")]
        store.commit(root, {rel: ("mnist_truth", truth[cols].to_dict("list"), _info(root, rel))})  # its group kept
    return table
