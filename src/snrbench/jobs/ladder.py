"""The ladder check: Monte Carlo ground truth on every exact cell, compared with the exact curve.

For each cell: R = 1024 replicate chains started from exact samples of p, one pass over
T = 2^0 … 2^16 (:func:`snrbench.truth.montecarlo.mc_q_curve`, bootstrap CI, split-R̂ and doubling-rule
flags), stored in ``results/ladder/<family>.parquet`` beside the exact ``log10 Q(T)`` and ``Tr Cov(T)``.
:func:`agreement` summarises: the share of (cell, T) points whose exact log10 Q lies inside the 95%
CI, and the median relative error of Tr Cov.
"""
from __future__ import annotations

from pathlib import Path


from ..truth import exact
from .. import store
from ..core.spectral import T_GRID
from ..families import Cell, get

__all__ = ["ladder_path", "ladder_cell", "agreement", "N_REPLICATES", "precision"]

N_REPLICATES = 1024


def precision() -> str:
    """The stored tables' precision note (R read when the table is written)."""
    return f"Monte Carlo, R = {N_REPLICATES} replicates from exact samples, float64 chains, 400 bootstrap resamples"


def ladder_path(family: str) -> str:
    return f"ladder/{family}.parquet"


def ladder_cell(family: str, spec_json: str, n_replicates: int | None = None) -> dict[str, dict]:
    """Monte Carlo curve of one cell of ``family`` beside its exact one: columns of the ``ladder`` table
    (``n_replicates`` default :data:`N_REPLICATES`)."""
    import torch

    from ..truth.montecarlo import mc_q_curve

    torch.set_num_threads(1)
    n_replicates = n_replicates or N_REPLICATES
    cell = Cell(spec_json)
    spec = cell.spec
    fam = get(family)
    model, data = fam.build_model(spec), fam.build_data(spec)
    sol = exact.solve(model, data, spec["observables"])
    mc = mc_q_curve(model, data, spec["observables"], T_GRID, n_replicates=n_replicates,
                    seed=int(cell.cell_id[:8], 16) % 2**31)
    truth, tc = sol.log10_q(T_GRID), sol.trace_cov(T_GRID)
    nT = len(T_GRID)
    cols = dict(suite=spec["suite"], family=spec["family"], cell_id=cell.cell_id, label=cell.label)
    cols = {k: [v] * nT for k, v in cols.items()}
    cols.update(
        T=T_GRID.tolist(), log10_q_mc=mc.log10_q.tolist(), ci_low=mc.ci_low.tolist(), ci_high=mc.ci_high.tolist(),
        log10_q_exact=truth.tolist(), inside_ci=((mc.ci_low <= truth) & (truth <= mc.ci_high)).tolist(),
        trace_cov_mc=mc.trace_cov.tolist(), trace_cov_se=mc.trace_cov_se.tolist(), trace_cov_exact=tc.tolist(),
        grad_norm2_mc=[mc.grad_norm2] * nT, grad_norm2_exact=[sol.grad_norm2] * nT,
        n_replicates=[n_replicates] * nT, start=["exact"] * nT, rhat=[mc.rhat] * nT, tau_L=[mc.tau_L] * nT,
        tau_2L=[mc.tau_2L] * nT, thin=[mc.thin] * nT, doubling_ok=[mc.doubling_ok] * nT,
        flagged=[mc.flagged] * nT,
    )
    return {"ladder": cols}


def agreement(root: Path | str, families) -> dict:
    """Coverage and median relative Tr Cov error over the stored ladder tables of ``families``."""
    import pandas as pd

    df = pd.concat([store.read_table(Path(root), ladder_path(f)).to_pandas() for f in families])
    rel = (df.trace_cov_mc / df.trace_cov_exact - 1).abs()
    cells = df.groupby("cell_id").flagged.first()
    return dict(cells=int(df.cell_id.nunique()), points=len(df), inside=int(df.inside_ci.sum()),
                coverage=float(df.inside_ci.mean()), median_rel_err=float(rel.median()),
                flagged_cells=int(cells.sum()))
