"""What the exactly solvable families share: exact ground truth, its summary and its figure.

:class:`ExactFamily` solves each cell exactly (:func:`snrbench.truth.exact.solve`: the spectral
decomposition of the chain, FLINT/Arb eigenpairs for RBMs, float64 per sector for Ising models)
and writes three tables per family: the stationary curves (``<family>.parquet``), the mode spectrum
(``<family>.spectrum.parquet``) and the operational curves (``<family>.operational.parquet``:
burn-in B from a uniform or data start, bias included; :mod:`snrbench.truth.operational`). It offers
both tiers (the white-box tier reads the exact operator) and the Monte Carlo ladder check.
A subclass declares its suite keys (:attr:`~.base.Family.keys`, from the shared rules here: shapes
within the exact solver's limits, finite β, non-negative scales), gives the grid (:meth:`expand`), the
recipe (:meth:`recipe`: model and teacher from a seed), the label and how its figure groups cells
(:meth:`figure_kind`).
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..store.logaxes import log2_exact, log_ticks
from ..core.spectral import T_GRID, t_star
from ..truth import exact, operational
from .base import Cell, Family, Key, TaskSpecError, need

__all__ = ["ExactFamily", "PRECISION", "state_index", "fresh_seeds", "FRESH_SEED_BASE", "MAX_ENUMERATED",
           "exact_rbm_limit", "SHAPES", "BETAS", "SEEDS", "SPIN_UNITS", "SCALE", "N_SAMPLES", "SEED_OFFSET",
           "OBSERVABLES"]

#: Fresh-draw seeds start here, far above any public seed (the teacher's is the seed plus its offset).
FRESH_SEED_BASE = 2**20


def fresh_seeds(draw: int, n: int) -> list[int]:
    """``n`` distinct model seeds of fresh draw ``draw`` (any int ≥ 0): ``FRESH_SEED_BASE`` plus 30
    bits of ``numpy.random.SeedSequence([draw, "fresh"])``, so a draw is the same on every machine."""
    if isinstance(draw, bool) or not isinstance(draw, int) or draw < 0:
        raise ValueError(f"a fresh draw's seed must be an int ≥ 0, got {draw!r}")
    ss = np.random.SeedSequence([draw, 0x6672657368])
    out: list[int] = []
    k = n
    while len(out) < n:
        out = list(dict.fromkeys(int(x) % 2**30 + FRESH_SEED_BASE for x in ss.generate_state(k, np.uint32)))[:n]
        k += n
    return out

#: The most units of one layer the exact RBM route enumerates state by state: the solver sums over all
#: 2^max(n, m) states of the larger side, the operational table enumerates all 2^n visible states
#: (:func:`snrbench.truth.exact.chain_modes`), and :func:`snrbench.core.model.all_states` refuses more than 2^26.
MAX_ENUMERATED = 26


def exact_rbm_limit(shape: list[int]) -> str | None:
    """Why the exact RBM route cannot solve ``[n, m]``, or None: :func:`snrbench.truth.exact.solve`
    diagonalises the smaller side, ``2^min(n, m) ≤ 2^MAX_SMALL_SIDE`` states, and enumerates the larger
    one, ``2^max(n, m) ≤ 2^MAX_ENUMERATED`` states."""
    n, m = shape
    small, large = min(n, m), max(n, m)
    head = f"n = {n} visible with m = {m} hidden: "
    if small > exact.MAX_SMALL_SIDE:
        return (head + f"2^{small} states on the smaller side, beyond the exact solver's 2^{exact.MAX_SMALL_SIDE} "
                f"(truth.exact.MAX_SMALL_SIDE); use a Monte Carlo family")
    if large > MAX_ENUMERATED:
        how = ("the solver sums over all of them, the operational table lists all 2^n visible states and "
               f"core.model.all_states refuses more than 2^{MAX_ENUMERATED}" if n > MAX_ENUMERATED else
               "the solver sums over all of them")
        return (head + f"2^{large} states on the larger side, beyond the 2^{MAX_ENUMERATED} the exact route "
                f"enumerates ({how}; the smaller side's 2^{small} is within the solver's 2^{exact.MAX_SMALL_SIDE}); "
                "use a Monte Carlo family")
    return None


#: Rules of the keys the exact families share (each family's :attr:`~.base.Family.keys` uses them).
SHAPES = Key(list, item=Key(list, length=2, item=Key(int, lo=1), rule=exact_rbm_limit, noun="shape",
                            desc="[n_visible, n_hidden] of positive ints"))
BETAS = Key(list, item=Key(float, lo=0))
SEEDS = Key(list, item=Key(int, lo=0))
SPIN_UNITS = Key(str, choices=("spin",), note="suite v1 uses spin units")
SCALE = Key(float, lo=0)
N_SAMPLES = Key(int, lo=1)
SEED_OFFSET = Key(int, lo=0)
OBSERVABLES = Key(str, choices=("weights", "weights+biases"))

PRECISION = "float64 rates (relative accuracy ~1e-15); generator eigenpairs by FLINT/Arb QR at ≥ 256 bits"


def state_index(x: np.ndarray) -> np.ndarray:
    """Row index in :func:`snrbench.core.model.all_states` of each ±1 / 0-1 configuration."""
    bits = (np.asarray(x) > 0).astype(np.int64)
    return bits @ (1 << np.arange(bits.shape[1]))


class ExactFamily(Family):
    """A family of models small enough to solve exactly (see the module docstring)."""

    tiers = ("white-box", "sampler-only")
    method = "exact"
    precision = PRECISION
    tables = {"ground_truth": "", "spectrum": ".spectrum", "operational": ".operational"}
    observables = OBSERVABLES.choices
    ladder = True
    summary_columns = ("label", "log10_q_T1", "log10_q_Tmax", "t_star_1", "tau_grad", "tau_m", "tau_gap",
                       "gap_over_grad", "m_over_grad", "spectral_gap", "observable_gap")
    summary_title = "{n} cells (τ in sweeps; gaps per sweep; T*(1) = first T with Q ≥ 1)"
    fresh_draws = True

    def fresh_suite(self, text: str, draw: int, where: str) -> str:
        """The suite TOML ``text`` of a fresh draw: the same grid and recipe, its ``[grid] seeds``
        replaced by :func:`fresh_seeds` (so new models and new teachers). The result is parsed back
        and must differ from the original in those seeds only."""
        doc = tomllib.loads(text)
        self.check_spec(doc, where)
        seeds = need(need(doc, "grid", dict, where), "seeds", list, f"{where} [grid]")  # also undeclared families
        new_seeds = fresh_seeds(draw, len(seeds))
        head = re.search(r"(?m)^\[grid\]\s*$", text)
        end = re.compile(r"(?m)^\[").search(text, head.end()) if head else None
        line = re.compile(r"(?m)^seeds\s*=\s*\[[^\]]*\]").search(text, head.end(), end.start() if end else len(text)) \
            if head else None
        if line is None:
            raise TaskSpecError(f"{where}: no 'seeds = [...]' line in its [grid] table to redraw")
        out = text[: line.start()] + f"seeds = {new_seeds}  # fresh draw {draw}" + text[line.end():]
        want = dict(doc, grid=dict(doc["grid"], seeds=new_seeds))
        if tomllib.loads(out) != want:
            raise TaskSpecError(f"{where}: redrawing the seeds changed more than [grid] seeds")
        return out

    # -- spec pieces shared by the exact families (their rules: the Key constants above) ----------
    def common(self, doc: dict, where: str) -> tuple[dict, dict, dict, dict]:
        """``(common spec keys, grid, model, data)`` of a checked suite document."""
        model, est = doc["model"], doc["estimator"]
        common = dict(suite=doc["suite"], family=self.name, units=model["units"], recipe=model["recipe"],
                      n_data=doc["data"]["n_samples"], observables=est["observables"])
        return common, doc["grid"], model, doc["data"]

    # -- the recipe ---------------------------------------------------------------------------
    def recipe(self, spec: dict, seed: int, teacher: bool = False):
        """``(model, rng)``: the cell's model drawn from ``seed`` (the teacher's when ``teacher``),
        and the generator, which then draws the teacher's data."""
        raise NotImplementedError

    def build_model(self, spec: dict):
        return self.recipe(spec, spec["seed"])[0]

    def build_data(self, spec: dict) -> np.ndarray:
        """``n_data`` exact samples of the teacher (same recipe, seed ``teacher_seed``)."""
        teacher, rng = self.recipe(spec, spec["teacher_seed"], teacher=True)
        return teacher.sample_exact(spec["n_data"], rng)

    # -- ground truth -------------------------------------------------------------------------
    def chain_modes(self, model, observables: str):
        """The chain's modes for :func:`snrbench.truth.operational.window_error`."""
        return exact.chain_modes(model, observables)

    def solve_cell(self, cell: Cell) -> dict[str, dict]:
        """Solve one cell exactly; column dicts of the ground-truth, spectrum and operational tables."""
        spec, spec_json = cell.spec, cell.spec_json
        rbm, data = self.build_model(spec), self.build_data(spec)
        sol = exact.solve(rbm, data, spec["observables"])
        nT = len(T_GRID)
        base = dict(suite=spec["suite"], family=spec["family"], cell_id=cell.cell_id, label=cell.label)
        curves = {k: [v] * nT for k, v in base.items()}
        curves.update(
            n_visible=[spec["n_visible"]] * nT, n_hidden=[spec["n_hidden"]] * nT, beta=[spec["beta"]] * nT,
            symmetric=[spec["symmetric"]] * nT, seed=[spec["seed"]] * nT, T=T_GRID.tolist(),
            log10_q=sol.log10_q(T_GRID).tolist(), trace_cov=sol.trace_cov(T_GRID).tolist(),
            grad_norm2=[sol.grad_norm2] * nT, total_variance=[sol.total_variance] * nT,
            tau_grad=[sol.tau_grad] * nT, tau_m=[sol.tau_m] * nT, tau_gap=[sol.tau_gap] * nT,
            spectral_gap=[sol.spectral_gap] * nT, observable_gap=[sol.observable_gap()] * nT,
            gap_method=[sol.method] * nT, model_sha256=[rbm.sha256] * nT, spec_json=[spec_json] * nT,
        )
        order = np.argsort(sol.gaps, kind="stable")
        K = len(order)
        spectrum = {k: [v] * K for k, v in base.items()}
        spectrum.update(
            mode=list(range(1, K + 1)), sector=sol.sectors[order].tolist(), gap=sol.gaps[order].tolist(),
            lam=(1.0 - sol.gaps[order]).tolist(), weight=sol.weights[order].tolist(),
            weight_fraction=(sol.weights[order] / sol.total_variance).tolist(),
            weight_m=sol.weights_m[order].tolist(), gap_method=[sol.method] * K,
        )
        return dict(ground_truth=curves, spectrum=spectrum,
                    operational=self.operational_curves(rbm, data, spec["observables"], sol, base))

    def operational_curves(self, model, data, observables: str, sol, base: dict) -> dict:
        """Columns of the operational table for one cell: start ∈ {uniform, data} × B ∈ {0, ⌈5/γ_obs⌉}."""
        modes = self.chain_modes(model, observables)
        n_states = modes.right.shape[0]
        data_start = np.bincount(state_index(data), minlength=n_states) / len(data)
        starts = {"uniform": np.full(n_states, 1.0 / n_states), "data": data_start}
        rules = {"0": 0.0, "ceil(5/observable_gap)": float(np.ceil(5.0 / sol.observable_gap()))}
        stationary = sol.log10_q(T_GRID)
        nT = len(T_GRID)
        cols = {k: [] for k in ("start", "burn_in_rule", "burn_in", "T", "log10_q_op", "mse", "bias2", "log10_q")}
        for start, pi0 in starts.items():
            for rule, B in rules.items():
                mse, bias2 = operational.window_error(modes, pi0, T_GRID, B)
                cols["start"] += [start] * nT
                cols["burn_in_rule"] += [rule] * nT
                cols["burn_in"] += [B] * nT
                cols["T"] += T_GRID.tolist()
                cols["log10_q_op"] += (np.log10(sol.grad_norm2) - np.log10(mse)).tolist()
                cols["mse"] += mse.tolist()
                cols["bias2"] += bias2.tolist()
                cols["log10_q"] += stationary.tolist()
        n = len(cols["T"])
        out = {k: [v] * n for k, v in base.items()}
        out.update(cols)
        return out

    # -- summary and figure -------------------------------------------------------------------
    def summary(self, root: Path | str) -> pd.DataFrame:
        """One row per cell: Q at the grid ends, T*(1), the τ's and their ratios, the gaps."""
        df = store.read_table(Path(root), self.truth_paths()[0]).to_pandas()
        rows = []
        for cell_id, g in df.groupby("cell_id", sort=False):
            g = g.sort_values("T")
            r = g.iloc[0]
            rows.append(dict(
                label=r.label, cell_id=cell_id, log10_q_T1=r.log10_q, log10_q_Tmax=g.log10_q.iloc[-1],
                t_star_1=t_star(g.log10_q.to_numpy(), g["T"].to_numpy()), tau_grad=r.tau_grad, tau_m=r.tau_m,
                tau_gap=r.tau_gap, gap_over_grad=r.tau_gap / r.tau_grad, m_over_grad=r.tau_m / r.tau_grad,
                spectral_gap=r.spectral_gap, observable_gap=r.observable_gap, method=r.gap_method,
            ))
        return pd.DataFrame(rows)

    def figure_kind(self, label: str) -> str:
        """The part of a cell's label that sets its line style in the figure."""
        return label.split("-")[2]

    def figure_shape(self, n: int, m: int) -> str:
        """A panel's title: the shape of its cells."""
        return f"n={n}, m={m}"

    def plot(self, root: Path | str, out: Path | str, seed: int = 0) -> Path:
        """Q(T) for the cells of one seed: one panel per shape, colour = β, line style = the cell kind
        (:meth:`figure_kind`). Drawn as stored log10 Q against log2 T on linear axes labelled 10^k and 2^k
        (:mod:`snrbench.store.logaxes`: the same PNG bytes on every CPU)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        family = self.name
        df = store.read_table(Path(root), self.truth_paths()[0]).to_pandas()
        df = df[df.seed == seed]
        shapes = sorted({(int(a), int(b)) for a, b in zip(df.n_visible, df.n_hidden)})
        fig, axes = plt.subplots(1, len(shapes), figsize=(5.2 * len(shapes), 4.2), sharey=True, squeeze=False)
        betas = sorted(df.beta.unique())
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
        rank = {"sym": "0", "bias": "1", "ferro": "~"}  # solid = symmetric (exact-rbm); control last
        df = df.assign(kind=[self.figure_kind(lab) for lab in df.label])
        kinds = sorted(set(df.kind), key=lambda k: rank.get(k, k))
        styles = dict(zip(kinds, ["-", "--", ":", "-.", (0, (1, 1)), (0, (5, 1))] * 4))
        for ax, (n, m) in zip(axes[0], shapes):
            for beta, col in zip(betas, colors):
                for kind in kinds:
                    g = df[(df.n_visible == n) & (df.n_hidden == m) & (df.beta == beta)
                           & (df.kind == kind)]
                    if len(g):
                        g = g.sort_values("T")
                        ax.plot(log2_exact(g["T"]), g.log10_q, linestyle=styles[kind], color=col, marker=".",
                                label=f"β={beta:g} {kind}")
            ax.axhline(0.0, color="grey", lw=0.8)  # Q = 1
            log_ticks(ax)
            ax.set(xlabel="T (sweeps per gradient)", title=f"{family}: {self.figure_shape(n, m)}, seed {seed}")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("Q(T) = ‖g‖² / Tr Cov ĝ(T)   (C = 1)")
        axes[0][-1].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        return store.save_figure(fig, out, dpi=110)
