"""The notebook's claims, replicated: one row per claim, its published number beside ours (issue 38).

snrbench grew out of a public research notebook on thermodynamic trainability (its index is in
``shared/seeds/``). :data:`NOTEBOOK` quotes, for each of its nine headline claims, the index's sentence
word for word, the numbers the index gives (marked *index*) and the numbers of the entry itself as issue 38
quoted them (marked *entry*: the index does not give them, and they are not checked here); those are the
only constants here. Every number of ours is
measured by a pure function below, from the stored results (``results/``) where they hold it, or by a
bounded computation (claims 4, 6's draw scan and dense check, and 9; about a minute together on one core).

**The verdict rule** (:func:`verdict`, DESIGN §10). Each claim's measurement answers two questions:

* *direction*: does our measurement show the effect the notebook states (the same sign, the same
  ordering, the same failure)?
* *magnitude*: is our number the notebook's within :data:`FACTOR` (2×, the scoring tolerance of
  0.301 dex), or, for a count of cells, within :data:`FRACTION` (0.1) of the notebook's fraction, or,
  for a published range, inside that range widened by 0.301 dex on each side?

*reproduced* when both hold, *reproduced in kind* when only the direction does, *not reproduced*
otherwise; each row says why, with the measured numbers (definition, kernel, grid or precision).

``snrbench replicate [--claim N] [--write]`` prints the table (seconds per claim on stderr); ``--write``
regenerates ``docs/REPLICATION.md`` beside the results folder read, from all nine claims (refused with
``--claim``); the file holds no timings, so a rerun on the same results writes the same bytes. :func:`page_section` gives the leaderboard page's "Claims of the notebook"
section (HTML) from the same rows.
"""
from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import store
from ..core import spectral
from ..core.model import RBM, all_states
from ..families import get, load_suite
from ..families.notebook import EXACT, PLANTED, TRAINED, TRAINED_LARGE

__all__ = ["NOTEBOOK", "Published", "Row", "FACTOR", "FRACTION", "FAST", "REPRODUCED", "IN_KIND", "NOT_REPRODUCED",
           "verdict", "within_factor", "within_range", "fractions_close", "asymptotic_factor", "excess",
           "float64_slowest_overlap", "relevant_gap_log10_q", "uniform_ladder_rungs",
           "stale_kernel_swaps", "stale_tempering", "reversibilized_gap", "reversibilized_spectrum_dense", "planted_draws", "gap_collapse", "free_energy_series", "tau_growth", "reliable",
           "random_walk_tau_growth", "claim", "replicate", "markdown", "page_section", "read_verdicts"]

#: Magnitude tolerance of a ratio: the scoring tolerance, a factor 2 (0.301 dex).
FACTOR = 2.0
#: Magnitude tolerance of a count of cells: the absolute difference of the tracked fractions.
FRACTION = 0.1
REPRODUCED, IN_KIND, NOT_REPRODUCED = "reproduced", "reproduced in kind", "not reproduced"
#: Claims computed from stored results (6: with a bounded exact scan) in seconds each (the test runs these).
FAST = (1, 2, 3, 5, 6, 7, 8)


@dataclass(frozen=True)
class Published:
    """One headline claim of the notebook: the index's sentence it comes from (word for word, ``…`` marking a
    cut), our one-line statement of it, the numbers the index gives (word for word) and the numbers the
    issue quoted from the entry itself, which the index does not give."""

    claim: int
    entry: str
    statement: str
    index: str
    entry_numbers: str = ""

    @property
    def number(self) -> str:
        """The "notebook" column: each number with its source, *index* or *entry* (as quoted in issue 38)."""
        parts = [f"{self.index} (index)"] if self.index else []
        return "; ".join(parts + ([f"{self.entry_numbers} (entry)"] if self.entry_numbers else []))


NOTEBOOK = {p.claim: p for p in (
    Published(1, "“The textbook way to predict whether a thermodynamic model trains — read off its slowest sampling "
                 "mode — can over-predict the gradient SNR by a factor of ten-octillion. Under spin-flip symmetry the "
                 "slowest mode is invisible to the gradient.”",
              "Reading off the slowest sampling mode “can over-predict the gradient SNR by a factor of ten-octillion”: "
              "under spin-flip symmetry the slowest mode is invisible to the gradient",
              "ten-octillion", "10^26–10^30; overlap ≤ 3.5e-17"),
    Published(2, "“The most convenient thing to watch in a sampler — a single scalar like the magnetization — is the "
                 "wrong thing to watch. It can mistime your gradient by 72x”",
              "Magnetization-based mixing can mistime the gradient by 72x", "72x"),
    Published(3, "“Parallel tempering … On a trained MNIST energy model it fails differently: the specific heat is so "
                 "uneven along the ladder that no uniform temperature step satisfies every rung at once.”",
              "On a trained MNIST model PT fails because the specific heat is uneven along the ladder: no uniform "
              "temperature step satisfies every rung at once", "",
              "136 rungs needed against a 96-rung budget"),
    Published(4, "“Two expensive GPU runs concluded parallel tempering mixed a trained MNIST energy model near-ideally. "
                 "A third run found the sampler's local kernels were silently built from the untrained weights — the "
                 "real swap-acceptance was 0.0099, and nothing mixed.”",
              "Stale local kernels (untrained weights; swaps use the trained ones) fake mixing",
              "real swap-acceptance 0.0099, nothing mixed", "0 round trips"),
    Published(5, "“An observable-projected, multi-mode, differentiable predictor read from the sampler's spectrum — "
                 "tracking the gradient SNR in 45 of 48 exact-diag cells where a single gap manages 23.”",
              "The observable-projected multimode predictor tracks Q in 45 of 48 exact cells; a single gap in 23 "
              "(the entry: the slowest mode with gradient weight)", "45 of 48; a single gap 23"),
    Published(6, "“Plant a handful of modes in an RBM and the observable-relevant gap drops 100-fold — 0.65 to "
                 "0.006.”",
              "Planted modes drop the observable-relevant gap about 100-fold (the entry: a second mode, block kernel "
              "compared with its reversibilization ½(P + P*))", "100-fold — 0.65 to 0.006",
              "0.648 → 0.006 (108-fold) at m = 5, β = 3"),
    Published(7, "“… the pre-registered result that plateau onset tracks the Gibbs spectral gap.”",
              "Plateau onset tracks the Gibbs spectral gap (pre-registered)", "plateau onset tracks the gap"),
    Published(8, "“We dropped the trainability predictor into the loss as a regularizer and turned the knob. The "
                 "diagnostic soared a billionfold. The model stopped learning.”",
              "A trainability diagnostic used as a regularizer soars a billionfold while the model stops learning",
              "a billionfold (≥ 9 dex); the model stopped learning"),
    Published(9, "“Our acceleration theorem needs a reversible sampler and a flood of decorrelated samples per step. "
                 "On a real trained MNIST model, those two demands are antagonistic — and we have the curve that "
                 "shows it.”",
              "On a trained MNIST model a reversible kernel's τ grows in proportion to the run length L: it never "
              "equilibrates", "", "τ/L ≈ 0.15–0.17 for L = 1,000 … 32,000"),
)}


@dataclass(frozen=True)
class Row:
    """One claim's replication: the notebook's number and ours, where from, how to recompute, the verdict."""

    claim: int
    statement: str
    notebook: str
    ours: str
    cells: str
    command: str
    direction: bool
    magnitude: bool
    reason: str
    seconds: float = 0.0
    details: dict = field(default_factory=dict, compare=False)

    @property
    def verdict(self) -> str:
        return verdict(self.direction, self.magnitude)


# --- the rule -------------------------------------------------------------------------------------------
def verdict(direction: bool, magnitude: bool) -> str:
    """*reproduced* (direction and magnitude), *reproduced in kind* (direction only), *not reproduced*."""
    if direction and magnitude:
        return REPRODUCED
    return IN_KIND if direction else NOT_REPRODUCED


def within_factor(ours: float, published: float, factor: float = FACTOR) -> bool:
    """``|log10(ours/published)| ≤ log10 factor`` (both positive)."""
    if not (ours > 0 and published > 0 and math.isfinite(ours)):
        return False
    return abs(math.log10(ours) - math.log10(published)) <= math.log10(factor) + 1e-12


def within_range(lo: float, hi: float, pub_lo: float, pub_hi: float, factor: float = FACTOR) -> bool:
    """Our interval ``[lo, hi]`` (dex) overlaps the published ``[pub_lo, pub_hi]`` (dex) widened by
    ``log10 factor`` on each side."""
    w = math.log10(factor)
    return hi >= pub_lo - w and lo <= pub_hi + w


def fractions_close(k: int, n: int, k_pub: int, n_pub: int, tol: float = FRACTION) -> bool:
    """``|k/n − k_pub/n_pub| ≤ tol`` (tracked fractions of cells)."""
    return abs(k / n - k_pub / n_pub) <= tol + 1e-12


# --- reading stored results ---------------------------------------------------------------------------
def _truth(root: Path, family: str, table: str = "") -> pd.DataFrame:
    """A stored ground-truth table (``table``: "", ".spectrum", ".tempering", …), checked against the manifest."""
    return store.read_table(root, f"ground_truth/{family}{table}.parquet").to_pandas()


def _scores(root: Path) -> pd.DataFrame:
    return store.read_table(root, "scores.parquet").to_pandas()


def _full_budget(s: pd.DataFrame) -> pd.DataFrame:
    return s[s.budget == s.groupby(["family", "predictor", "access"]).budget.transform("max")]


def _cell_spec(family: str, label: str) -> dict:
    for cell in load_suite(family)[1]:
        if cell.label == label:
            return cell.spec
    raise KeyError(f"{family}: no cell {label}")


# --- claim 1 ------------------------------------------------------------------------------------------
def asymptotic_factor(tau_gap, tau_grad) -> np.ndarray:
    """``log10(τ_gap/τ_grad)`` (dex): for ``T ≫ τ_gap`` the single-gap forecast's ``Tr Cov ≈ V·τ_gap/T``
    against the true ``V·τ_grad/T``, so this is the factor by which it misjudges ``Q`` once both are
    asymptotic (τ in sweeps, DESIGN §1)."""
    return np.log10(np.asarray(tau_gap, dtype=np.float64)) - np.log10(np.asarray(tau_grad, dtype=np.float64))


def _visible_kernel(rbm: RBM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense float64 blocked-Gibbs kernel on the visible states ``K = A B`` (``A = p(h|v)``,
    ``B = p(v|h)``), the stationary law ``p(v)`` and the visible states (enumeration, 2^n states)."""
    V, H = all_states(rbm.n_visible, rbm.units), all_states(rbm.n_hidden, rbm.units)
    log_j = V @ rbm.W @ H.T + (V @ rbm.a)[:, None] + (H @ rbm.b)[None, :]  # log p̃(v, h)
    log_j -= log_j.max()
    joint = np.exp(log_j)
    joint /= joint.sum()
    pv, ph = joint.sum(1), joint.sum(0)
    A, B = joint / pv[:, None], (joint / ph[None, :]).T
    return A @ B, pv, V


def float64_slowest_overlap(rbm: RBM) -> tuple[float, float]:
    """The notebook's route to claim 1's overlap: the float64 eigendecomposition of the whole visible
    kernel, no symmetry sectors; returns ``(1 − λ_1, √(S_1/V))`` of the slowest non-stationary mode, with
    ``S_1 = Σ_ij ⟨f̃_ij, φ_1⟩_p²`` over ``f_ij = v_i E[h_j|v]``: the normalised overlap (dimensionless)."""
    K, p, V = _visible_kernel(rbm)
    s = np.sqrt(p)
    M = s[:, None] * K / s[None, :]
    lam, vec = np.linalg.eigh(0.5 * (M + M.T))
    phi = vec[:, -2] / s  # L²(p)-normalised; the last column is the stationary √p
    hid = np.tanh(V @ rbm.W + rbm.b) if rbm.units == "spin" else 1.0 / (1.0 + np.exp(-(V @ rbm.W + rbm.b)))
    f = (V[:, :, None] * hid[:, None, :]).reshape(len(V), -1)
    f = f - p @ f
    overlap = ((p * phi) @ f) ** 2
    return float(1.0 - lam[-2]), math.sqrt(float(overlap.sum() / (p @ f**2).sum()))


def _rounding(x: float) -> str:
    """A float64 residue as printed in the report: below 1e-13 only that bound (its digits depend on the
    BLAS and its threads, and the stored report must be the same bytes on any CPU), else ``≤ x``."""
    return "< 1e-13" if x < 1e-13 else f"≤ {x:.1e}"


def _claim1(root: Path, quick: bool) -> Row:
    from .scoring import T_REF

    t = _truth(root, EXACT)
    cells = t.drop_duplicates("cell_id")
    sym = cells[cells.symmetric]
    fac = pd.Series(asymptotic_factor(sym.tau_gap, sym.tau_grad), index=sym.label.values)
    top = sym.beta == sym.beta.max()
    lo, hi = float(fac[top.values].min()), float(fac[top.values].max())
    sp = _truth(root, EXACT, ".spectrum")
    first = sp[sp.cell_id.isin(sym.cell_id) & (sp["mode"] == 1)]
    odd = int((first.sector == "odd").sum())
    w_odd = float(sp[sp.cell_id.isin(sym.cell_id) & (sp.sector == "odd")].weight_fraction.max())
    s = _full_budget(_scores(root))
    sg = s[(s.family == EXACT) & (s.predictor == "single-gap") & (s.access == "white-box")
           & s.cell_id.isin(sym.cell_id)]
    # Q_single ≤ Q_true (the single gap's v_T(λ_1) ≥ every v_T(λ_k)), compared at T = T_REF from the scores
    below = int((sg.log10_q_pred_ref <= sg.log10_q_true_ref).sum())
    t_max = int(t["T"].max())
    cap = math.log10(t_max) - math.log10(float(sym.tau_grad.min()))  # v_T ≤ T on the grid
    fam = get(EXACT)
    ov = []
    # the strongest coupling on the smallest n (2^n visible states, one dense float64 eigh each); the tiniest
    # gaps are on the larger n, whose dense eigh costs (2^Δn)^3 times more
    small = (sym.n_visible == sym.n_visible.min()) & top
    for label in sym.label[small]:
        spec = json.loads(sym.spec_json[sym.label == label].iloc[0])
        ov.append(float64_slowest_overlap(fam.build_model(spec))[1])
    # an overlap counts as zero below the solver's weight threshold (S/V < 1e-12, i.e. √(S/V) < 1e-6)
    direction = odd == len(sym) and w_odd == 0.0 and below == len(sg) and max(ov) < 1e-6
    magnitude = within_range(lo, hi, 26.0, 30.0)
    n_lo, n_hi = int(sym.n_visible.min()), int(sym.n_visible.max())
    ours = (f"τ_gap/τ_grad = 10^{lo:.1f}–10^{hi:.1f} at β = {sym.beta.max():g} (10^{fac.min():.1f}–10^{fac.max():.1f} "
            f"over all {len(sym)} symmetric cells); on the grid T ≤ 2^{int(math.log2(t_max))} at most "
            f"10^{sg.max_err.max():.2f}; slowest mode odd in {odd}/{len(sym)}, its weight exactly {w_odd:g} "
            f"(sectors); float64 without sectors: normalised overlap {_rounding(max(ov))}")
    reason = (f"Same mechanism: the slowest mode is odd in every symmetric cell and invisible to the gradient. "
              f"Reading of 'over-predict': v_T(λ) grows with λ and the slowest mode has the largest λ, so the single "
              f"gap's Tr Cov = V·v_T(λ_1) ≥ Σ_k S_k v_T(λ_k) and its Q is never above the true Q (measured: "
              f"Q_single ≤ Q_true at T = 2^{int(math.log2(T_REF))} in {below}/{len(sg)} of these cells, white-box, full "
              f"budget); what it over-predicts is the time, τ_gap/τ_grad sweeps, and that factor is compared. "
              f"Magnitude: grid — our strongest coupling is β = {sym.beta.max():g} on n = {n_lo} … {n_hi}, whose "
              f"slowest gap gives 10^{lo:.1f}–10^{hi:.1f}, {26.0 - hi:.1f} dex short of 10^26; on the scored grid "
              f"(T ≤ 2^{int(math.log2(t_max))}, where v_T ≤ T) the factor cannot exceed T/τ_grad ≤ 10^{cap:.1f}. "
              f"Precision: our solver splits the sectors, so the overlap is exactly 0; the notebook's float64 route "
              f"(one eigh, no sectors) gives a normalised overlap |⟨f̃, φ_1⟩|/√V {_rounding(max(ov))} on the "
              f"n = {n_lo}, β = {sym.beta.max():g} cells: zero to rounding, like its 3.5e-17 (a residue's size is "
              f"not a magnitude to compare).")
    return Row(1, NOTEBOOK[1].statement, NOTEBOOK[1].number, ours, f"exact-rbm: {len(sym)} symmetric cells "
               f"(float64 overlap: the {len(ov)} with n = {n_lo}, β = {sym.beta.max():g})", "snrbench replicate --claim 1",
               direction, magnitude, reason, details=dict(lo=lo, hi=hi, overlap=max(ov), below=below))


# --- claim 2 ------------------------------------------------------------------------------------------
def _claim2(root: Path, quick: bool) -> Row:
    s = _full_budget(_scores(root))
    ranked = [f for f in s.family.unique() if get(f).ranked]
    m = s[(s.predictor == "magnetization") & s.family.isin(ranked)].copy()
    m["factor"] = np.maximum(m.timing_ratio, 1.0 / m.timing_ratio)
    fin = m[np.isfinite(m.factor)]
    worst = fin.loc[fin.factor.idxmax()]
    per = fin.groupby("family").factor.max()
    over = int((fin.factor >= 72.0).sum())
    t = _truth(root, EXACT).drop_duplicates("cell_id")
    bias = t[~t.symmetric]
    r_bias = float((bias.tau_m / bias.tau_grad).max())
    direction = float(worst.factor) >= FACTOR
    magnitude = within_factor(float(worst.factor), 72.0)
    ours = (f"{worst.factor:.0f}× ({worst.family} {worst.label}; worst T*(1) factor of the magnetization entry at "
            f"full budget; per family: " + ", ".join(f"{f} {v:.0f}×" for f, v in per.items())
            + f"); exact τ_m/τ_grad up to {r_bias:.2g} on biased exact-rbm cells")
    reason = (f"Same direction: watching the magnetization mistimes the gradient, beyond the factor-2 tolerance on "
              f"{int((fin.factor > FACTOR).sum())}/{len(fin)} scored cells and by ≥ 72× on {over}. Magnitude: grid — "
              f"the worst factor depends on the cells one looks at; ours reach {worst.factor:.0f}× at {worst.family} "
              f"{worst.label}, {math.log10(worst.factor / 72.0):.1f} dex past the notebook's 72x (index).")
    return Row(2, NOTEBOOK[2].statement, NOTEBOOK[2].number, ours,
               f"{len(fin)} cells of the ranked families with a finite T*(1) ratio ({', '.join(ranked)})",
               "snrbench replicate --claim 2", direction, magnitude, reason,
               details=dict(worst=float(worst.factor), cell=str(worst.label)))


# --- claim 3 ------------------------------------------------------------------------------------------
def uniform_ladder_rungs(betas, acceptance, a_min: float) -> tuple[int, float]:
    """Rungs a *uniform* β step needs so that every adjacent pair accepts at least ``a_min``, and the
    unevenness ``max_k s_k / min_k s_k``.

    ``betas`` (K, decreasing) and ``acceptance`` (K − 1, pair k = rungs k, k+1) are an adapted ladder;
    ``s_k = σ(A_k)/(β_k − β_{k+1})`` (per unit β; ``σ(A)`` of :func:`~snrbench.truth.trajectory.pair_distance`,
    ``σ/Δβ`` ≈ √Var(E)) is the local √(specific heat).
    A uniform step Δβ keeps pair acceptance ≥ ``a_min`` only where ``s·Δβ ≤ σ(a_min)``, so
    ``K_uniform = ⌈(β_0 − β_{K−1}) · max_k s_k / σ(a_min)⌉ + 1``. ``s`` is averaged over each pair, so
    the true maximum is at least ``max_k s_k``: K_uniform is a lower bound.
    """
    betas, acc = np.asarray(betas, dtype=np.float64), np.asarray(acceptance, dtype=np.float64)
    from ..truth.trajectory import pair_distance

    s = pair_distance(acc) / -np.diff(betas)
    need = (betas[0] - betas[-1]) * s.max() / float(pair_distance(a_min))
    return int(math.ceil(need - 1e-9)) + 1, float(s.max() / s.min())


def excess(k_needed, k_budget) -> float:
    """``(K_needed − K_budget)/K_budget``: the fraction of rungs missing (0 when the budget suffices), the
    magnitude claim 3 compares (a plain ratio would count 1.0, no effect, within 2× of the notebook's)."""
    return (float(k_needed) - float(k_budget)) / float(k_budget)


def _claim3(root: Path, quick: bool) -> Row:
    family = TRAINED_LARGE
    tp = _truth(root, family, ".tempering")
    truth = _truth(root, family).drop_duplicates("cell_id").set_index("label")
    rows = []
    for (label, start), g in tp.groupby(["label", "start"]):
        g = g.sort_values("rung")
        acc = g.swap_acceptance.to_numpy()[:-1]
        k_unif, uneven = uniform_ladder_rungs(g.beta.to_numpy(), acc, float(acc.min()))
        rows.append(dict(label=label, start=start, K=len(g), a_min=float(acc.min()), k_uniform=k_unif,
                         uneven=uneven, update=int(truth.loc[label, "update"]),
                         n_hidden=int(truth.loc[label, "n_hidden"]), method=str(g.method.iloc[0]),
                         certified=bool(truth.loc[label, "certified"]),
                         equilibrated=bool(truth.loc[label, "equilibrated"])))
    d = pd.DataFrame(rows)
    d["excess"] = (d.k_uniform - d.K) / d.K
    cert = d[d.certified]
    best = cert.excess.max()
    heads = cert[cert.excess == best].sort_values(["update", "start"])
    head = heads.iloc[0]
    ex_pub = excess(136, 96)
    over = cert[cert.k_uniform > cert.K]
    direction = len(over) > 0
    magnitude = best > 0 and within_factor(float(best), ex_pub)
    late = d.sort_values("update").groupby("label", sort=False).first()
    rungs = "/".join(str(k) for k in sorted(d.K.unique()))
    ours = (f"{head.k_uniform} uniform rungs needed against the {head.K}-rung budget on certified ladders "
            f"({', '.join(sorted(set(heads.label), key=lambda x: int(x.split('-u')[1])))}: ×{head.k_uniform / head.K:.2f}, "
            f"{100 * best:.1f}% more rungs; the notebook 136/96, {100 * ex_pub:.1f}% more); √C uneven up to "
            f"{cert.uneven.max():.1f}× along a certified ladder ({d.uneven.max():.1f}× over all)")
    reason = (f"Same direction: on {over.label.nunique()}/{cert.label.nunique()} certified checkpoints a uniform β step "
              f"needs more rungs than the adapted ladder's budget to keep every pair at the acceptance the adapted "
              f"ladder reaches (its lowest pair: {head.a_min:.2f} at {head.label}); the unevenness grows with training "
              f"(σ/Δβ max/min: {late.uneven.iloc[0]:.1f}× at {late.index[0]}, {late.uneven.iloc[-1]:.1f}× at "
              f"{late.index[-1]}). Filter: only ladders whose checkpoint is `certified` in the stored truth "
              f"({cert.label.nunique()} of {d.label.nunique()}); over all checkpoints up to {d.k_uniform.max()} rungs "
              f"({d.loc[d.k_uniform.idxmax()].label}, not certified). Magnitude: the excess (K_uniform − K)/K, "
              f"{best:.3f} against (136 − 96)/96 = {ex_pub:.3f}" + (" (within 2×)" if magnitude else "")
              + ". Kernel: our path is base-rate ↔ model (RBM(βW, (1−β)a₀ + βa, βb), DESIGN §2.4), not a plain "
              f"temperature; grid: {rungs} rungs ({', '.join(sorted(d.method.unique()))} PT), m = "
              f"{'/'.join(str(m) for m in sorted(d.n_hidden.unique()))}. Computed from the stored ladders.")
    return Row(3, NOTEBOOK[3].statement, NOTEBOOK[3].number, ours,
               f"{family}: {d.label.nunique()} checkpoints ({cert.label.nunique()} certified) × "
               f"{d.start.nunique()} groups of ladders (stored temperature PT)",
               "snrbench replicate --claim 3", direction, magnitude, reason,
               details=dict(excess=float(best), ratio=float(head.k_uniform / head.K)))


# --- claim 4 ------------------------------------------------------------------------------------------
def stale_kernel_swaps(trained: RBM, stale: RBM, a0, v0, n_rungs: int = 16, adapt_rounds: int = 100,
                       rounds: int = 200, seed: int = 0) -> dict:
    """The notebook's stale-kernel run and its correction on one trained model.

    1. *Stale*: parallel tempering (:class:`~snrbench.truth.tempering.ParallelTempering`, ``len(v0)``
       ladders, linear ladder from β = 1 to the base-rate model β = 0) whose rung samplers are built from
       ``tempered(stale, β_k, a0)`` while the swap energies use ``trained``; the ladder is adapted to equal
       acceptance for ``adapt_rounds`` rounds, then ``rounds`` production rounds are counted.
    2. The guard: whether :meth:`ParallelTempering.check_kernels` raises on that configuration.
    3. *True*: the same (stale-adapted) ladder with kernels built from ``trained``, from the same starts,
       ``adapt_rounds`` rounds of burn-in (ladder fixed), then ``rounds`` counted.

    Returns the apparent and true swap acceptance (mean and lowest pair, dimensionless), round trips
    (count over all ladders), ``guard`` (True: :class:`StaleKernelError` was raised) and the ladder.
    """
    import torch

    from ..truth.tempering import ParallelTempering, StaleKernelError

    R = len(v0)
    betas = 1.0 - np.arange(n_rungs) / (n_rungs - 1)
    with torch.no_grad():
        pt = stale_tempering(trained, stale, a0, betas, R, seed=seed, v0=v0)
        pt.adapt(adapt_rounds, window=10)
        pt.reset_stats()
        for _ in range(rounds):
            pt.step(1)
        apparent, trips_apparent = pt.swap_acceptance, pt.round_trips
        try:
            ParallelTempering.check_kernels(pt)
            guard = False
        except StaleKernelError:
            guard = True
        true = ParallelTempering(trained, a0, pt.betas, R, seed=seed + 1, v0=v0)
        for _ in range(adapt_rounds):
            true.step(1)
        true.reset_stats()
        for _ in range(rounds):
            true.step(1)
    return dict(apparent_mean=float(np.mean(apparent)), apparent_min=float(np.min(apparent)),
                trips_apparent=int(trips_apparent), guard=guard, true_mean=float(np.mean(true.swap_acceptance)),
                true_min=float(np.min(true.swap_acceptance)), trips_true=int(true.round_trips),
                betas=np.array(pt.betas), chains=R, rounds=rounds,
                adapt_rounds=adapt_rounds, rungs=n_rungs)


def stale_tempering(trained: RBM, stale: RBM, a0, betas, n_chains: int, seed: int = 0, v0=None):
    """A :class:`~snrbench.truth.tempering.ParallelTempering` on ``trained`` whose rung samplers are built from
    ``tempered(stale, β_k, a0)`` (the notebook's bug) and whose own kernel check is switched off, as in the
    notebook's runs; ``ParallelTempering.check_kernels(pt)`` is the guard that must refuse it."""
    from ..core.sampler import BlockGibbs
    from ..core.tempered import tempered
    from ..truth.tempering import ParallelTempering

    class _Stale(ParallelTempering):
        def _sampler(self, k, v):  # the notebook's bug: kernels from the initial weights
            s = int(self._seeds[k].spawn(1)[0].generate_state(1)[0])
            return BlockGibbs(tempered(stale, self._betas[k], self.a0), self.n_chains, self.device, self.dtype, s, v)

        def check_kernels(self, tol=None):  # the guard switched off
            pass

    return _Stale(trained, a0, betas, n_chains, seed=seed, v0=v0)


def _mnist_model(family: str, label: str):
    from ..core.tempered import base_rate_bias

    fam = get(family)
    spec = _cell_spec(family, label)
    rbm, data = fam.build_model(spec), fam.build_data(spec)
    return rbm, data, base_rate_bias(data, rbm.units)


def _claim4(root: Path, quick: bool) -> Row:
    trained, data, a0 = _mnist_model(TRAINED, "m64-u16384")
    stale, _, _ = _mnist_model(TRAINED, "m64-u0")
    R = 32
    v0 = data[np.random.default_rng(0).choice(len(data), R, replace=False)]
    r = stale_kernel_swaps(trained, stale, a0, v0, seed=0)
    mt = _truth(root, TRAINED)
    k = int(mt[mt.label == "m64-u16384"].train_k.iloc[0])
    # the effect only: a faked mixing (more trips, higher acceptance with the stale kernels); the guard is ours
    direction = r["trips_apparent"] > r["trips_true"] and r["apparent_min"] > r["true_min"]
    magnitude = within_factor(r["true_min"], 0.0099) and r["trips_true"] == 0
    ours = (f"true swap acceptance {r['true_min']:.4f} at the worst pair (mean {r['true_mean']:.3f}), "
            f"{r['trips_true']} round trips; the stale run showed {r['apparent_min']:.3f} (mean "
            f"{r['apparent_mean']:.3f}) and {r['trips_apparent']} round trips; our guard (StaleKernelError) "
            + ("raised" if r["guard"] else "NOT raised") + " on the stale configuration")
    reason = (f"Same failure: with kernels from the initial weights the ladder adapts to the wrong laws and looks "
              f"mixed ({r['trips_apparent']} round trips in {r['rounds']} rounds × {r['chains']} ladders); on the same "
              f"ladder with the trained kernels the worst pair accepts {r['true_min']:.4f} and "
              f"{r['trips_true']} trips are made. The guard is a property of our code, not of the effect: it is "
              "reported, not part of the verdict (tests/test_replicate.py checks it). Magnitude: "
              + ("within 2× of 0.0099 with 0 trips." if magnitude else
                 f"{r['true_min']:.4f} against 0.0099 — kernel/grid: our model is a {trained.n_visible} × "
                 f"{trained.n_hidden} PCD-{k} checkpoint on a {r['rungs']}-rung base-rate ↔ model ladder; the "
                 "notebook's ladder and model are not published."))
    return Row(4, NOTEBOOK[4].statement, NOTEBOOK[4].number, ours,
               f"mnist m64-u16384 (stale kernels from m64-u0), {r['chains']} ladders × {r['rungs']} rungs, "
               f"{r['adapt_rounds']} + {r['rounds']} rounds",
               "snrbench replicate --claim 4", direction, magnitude, reason,
               details={k: v for k, v in r.items() if k != "betas"})


# --- claim 5 ------------------------------------------------------------------------------------------
def relevant_gap_log10_q(grad_norm2: float, total_variance: float, observable_gap: float, T) -> np.ndarray:
    """The notebook's single *relevant*-gap forecast: ``log10 ‖g‖² − log10[V · v_T(1 − γ_obs)]`` (dex),
    ``γ_obs`` the gap of the slowest mode with ``S_k ≥ 1e-12·V`` (the stored ``observable_gap``), one
    timescale applied to the whole static variance ``V`` (f²)."""
    return math.log10(grad_norm2) - np.log10(total_variance * spectral.variance_factor([observable_gap], T)[0])


def _white_box_modes() -> int:
    """``n_modes`` of the built-in white-box multimode entry (``predictors/multimode.py``), as scored."""
    from ..predict import registry

    entry = next(e for e in registry.builtin_entries() if e.key == ("multimode", "white-box"))
    return int(registry.instantiate(entry).n_modes)


def _claim5(root: Path, quick: bool) -> Row:
    t = _truth(root, EXACT)
    tracked = 0
    for _, g in t.groupby("cell_id"):
        g = g.sort_values("T")
        pred = relevant_gap_log10_q(g.grad_norm2.iloc[0], g.total_variance.iloc[0], g.observable_gap.iloc[0],
                                    g["T"].to_numpy())
        tracked += int(np.abs(pred - g.log10_q.to_numpy()).max() <= math.log10(2.0))
    n = t.cell_id.nunique()
    s = _full_budget(_scores(root))
    wb = s[(s.family == EXACT) & (s.access == "white-box")]
    mm, sg = int(wb[wb.predictor == "multimode"].tracked.sum()), int(wb[wb.predictor == "single-gap"].tracked.sum())
    # the notebook's ordering: multimode tracks more cells than the single relevant gap, which tracks some
    direction = mm > tracked > 0
    n_sym = int(t.drop_duplicates("cell_id").symmetric.sum())
    n_modes = _white_box_modes()
    magnitude = fractions_close(mm, n, 45, 48) and fractions_close(tracked, n, 23, 48)
    ours = (f"multimode {mm}/{n}; single relevant gap {tracked}/{n} (recomputed from the stored spectra); our "
            f"single-gap entry, on the slowest gap of any parity, {sg}/{n}")
    reason = (f"Definition: our `single-gap` entry takes the slowest mode of either parity, which is odd and invisible "
              f"on the {n_sym} symmetric cells and slow on the biased ones, hence {sg}/{n}; the notebook's single gap is the "
              f"slowest *relevant* one, which we compute from the stored exact spectra ({tracked}/{n}, against "
              f"23 of 48). Multimode ({n_modes} modes, white-box) {mm}/{n} against 45 of 48"
              + (f": within {FRACTION:g} of the fraction." if magnitude else f": not within {FRACTION:g} of the fraction."))
    return Row(5, NOTEBOOK[5].statement, NOTEBOOK[5].number, ours, f"exact-rbm: {n} cells, factor-2 tracking at "
               f"every T of 2^{int(math.log2(t['T'].min()))} … 2^{int(math.log2(t['T'].max()))}", "snrbench replicate --claim 5", direction, magnitude, reason,
               details=dict(multimode=mm, relevant=tracked, single_gap=sg))


# --- claim 6 ------------------------------------------------------------------------------------------
def reversibilized_gap(gap) -> np.ndarray:
    """Gap ``1 − λ₊`` of the reversibilization ``½(P + P*)`` of the joint blocked-Gibbs sweep for a visible-chain
    mode of gap ``γ = 1 − μ`` (1/sweep).

    The sweep ``P`` on ``(v, h)`` draws ``h' ~ p(h|v)`` then ``v' ~ p(v|h')``; its time reversal ``P*`` draws
    ``v'`` first. ``½(P + P*)`` maps into functions ``g(v) + k(h)``, on which its eigenvalues solve
    ``(2λ − μ)² = μ`` for each eigenvalue μ of the visible chain ``AB`` (equal to those of ``BA``), so
    ``λ± = (μ ± √μ)/2``. Written without cancellation: ``1 − λ₊ = (γ + γ/(1 + √(1−γ)))/2`` (→ 3γ/4 as γ → 0).
    The remaining eigenvalues are 0 and ``λ₋ ≤ 0``.
    """
    g = np.asarray(gap, dtype=np.float64)
    return 0.5 * (g + g / (1.0 + np.sqrt(1.0 - g)))


def reversibilized_spectrum_dense(rbm: RBM, threshold: float = 1e-12) -> tuple[float, float]:
    """Independent route for :func:`reversibilized_gap`, by enumeration of the joint states (2^(n+m)):
    the dense ``S = ½(P + P*)`` in float64, its ``L²(π)``-symmetrised eigendecomposition, and the weights
    of the joint observables ``v_i h_j``. Returns ``(gap of S, observable-relevant gap of S)`` (1/sweep;
    relevant: the slowest mode with weight ≥ ``threshold·V``)."""
    Vs, Hs = all_states(rbm.n_visible, rbm.units), all_states(rbm.n_hidden, rbm.units)
    log_j = Vs @ rbm.W @ Hs.T + (Vs @ rbm.a)[:, None] + (Hs @ rbm.b)[None, :]
    joint = np.exp(log_j - log_j.max())
    joint /= joint.sum()
    pv, ph = joint.sum(1), joint.sum(0)
    A, B = joint / pv[:, None], (joint / ph[None, :]).T  # p(h|v), p(v|h)
    nv, nh = len(Vs), len(Hs)
    # P[(v,h),(v',h')] = A[v,h'] B[h',v'];  P*[(v,h),(v',h')] = B[h,v'] A[v',h']
    P = np.repeat((A[:, :, None] * B[None, :, :]).transpose(0, 2, 1)[:, None, :, :], nh, axis=1).reshape(nv * nh, -1)
    Pst = np.repeat((B[:, :, None] * A[None, :, :])[None, :, :, :], nv, axis=0).reshape(nv * nh, -1)
    pi = joint.reshape(-1)
    s = np.sqrt(pi)
    S = 0.5 * (P + Pst)
    M = s[:, None] * S / s[None, :]
    lam, vec = np.linalg.eigh(0.5 * (M + M.T))
    f = (np.repeat(Vs, nh, axis=0)[:, :, None] * np.tile(Hs, (nv, 1))[:, None, :]).reshape(nv * nh, -1)
    f = f - pi @ f
    c = (vec.T * s[None, :]) @ f  # ⟨f̃, φ_k⟩_π with φ_k = vec_k/√π
    w = (c**2).sum(1)
    order = np.argsort(-lam)[1:]  # drop the stationary mode
    rel = [k for k in order if w[k] >= threshold * (pi @ f**2).sum()]
    return float(1.0 - lam[order[0]]), float(1.0 - lam[rel[0]])


#: Claim 6's draw scan on the entry's cell: recipe seeds at the stored noise, and noise levels at the stored seed.
DRAW_SEEDS = tuple(range(6))
DRAW_NOISES = (0.0, 0.25, 0.5)


def planted_draws(spec: dict, seeds=DRAW_SEEDS, noises=DRAW_NOISES) -> pd.DataFrame:
    """The observable gap (1/sweep, exact solver, block kernel) of the planted recipe ``spec`` with M = 1 and
    M = 2 patterns, for each recipe seed in ``seeds`` (``spec``'s noise) and each noise in ``noises``
    (``spec``'s seed): one row per draw with ``gap1``, ``gap2`` and the reversibilized fold ``rev1/rev2``."""
    from ..truth import exact

    fam = get(PLANTED)
    draws = [(int(sd), float(spec["noise"])) for sd in seeds]
    draws += [(int(spec["seed"]), float(nz)) for nz in noises if float(nz) != float(spec["noise"])]
    rows = []
    for sd, nz in draws:
        gaps = [float(exact.solve(fam.recipe(dict(spec, patterns=M, control=False, seed=sd, noise=nz), sd)[0])
                      .observable_gap()) for M in (1, 2)]
        rev = reversibilized_gap(gaps)
        rows.append(dict(seed=sd, noise=nz, gap1=gaps[0], gap2=gaps[1], fold=float(rev[0] / rev[1])))
    return pd.DataFrame(rows)


def _claim6(root: Path, quick: bool) -> Row:
    t = _truth(root, PLANTED).drop_duplicates("cell_id").copy()
    t["spec"] = t.spec_json.map(json.loads)
    t["M"] = t.spec.map(lambda s: 0 if s["control"] else s["patterns"])
    t["rev"] = reversibilized_gap(t.observable_gap.to_numpy())
    key = t.set_index(["n_hidden", "beta", "M"])
    cell = (5, 3.0)  # the entry's m = 5, β = 3 (as quoted in issue 38)
    spec1 = key.loc[(*cell, 1), "spec"]
    b1, b2 = float(key.loc[(*cell, 1), "observable_gap"]), float(key.loc[(*cell, 2), "observable_gap"])
    r1, r2 = float(key.loc[(*cell, 1), "rev"]), float(key.loc[(*cell, 2), "rev"])
    fold = r1 / r2
    pub = 0.65 / 0.006  # the index: "100-fold — 0.65 to 0.006"
    # the exp5 grid: fold drop M = 1 → 2 per (m, β), reversibilized
    drops = {(m, b): float(key.loc[(m, b, 1), "rev"] / key.loc[(m, b, 2), "rev"])
             for m in sorted(t.n_hidden.unique()) for b in sorted(t.beta.unique())}
    ferro = float(key.loc[(*cell, 0), "rev"])
    # independent route: the same recipe on a smaller model (2^(n+m) joint states), the dense ½(P + P*) and its
    # relevant gap (weights of the joint v_i h_j) against the closed form of the visible chain's relevant gap
    # (weights of v_i E[h_j|v]); the two select the same mode here by spin-flip parity (a = b = 0), which is
    # not a general identity
    from ..truth import exact

    fam = get(PLANTED)
    checks = []
    small_n, small_m = 6, 3
    for M in (1, 2):
        spec = dict(key.loc[(*cell, M), "spec"], n_visible=small_n, n_hidden=small_m)
        small = fam.recipe(spec, spec["seed"])[0]
        closed = float(reversibilized_gap(exact.solve(small).observable_gap()))
        checks.append(abs(reversibilized_spectrum_dense(small)[1] - closed) / closed)
    draws = planted_draws(spec1)
    by_seed = draws[draws.noise == float(spec1["noise"])]
    by_noise = draws[draws.seed == int(spec1["seed"])]
    direction = fold > 10.0
    magnitude = within_factor(fold, pub)
    near = min(((abs(math.log10(v / pub)), k) for k, v in drops.items()))[1]
    lab = f"n{spec1['n_visible']}m{spec1['n_hidden']}, β = {cell[1]:g}"
    ours = (f"{r1:.3f} → {r2:.4f} ({fold:.0f}-fold) for ½(P + P*); {b1:.4f} → {b2:.4f} ({b1 / b2:.0f}-fold) for the "
            f"block kernel ({lab}, seed {spec1['seed']}, noise {spec1['noise']:g}); over {len(draws)} draws of that "
            f"recipe the fold spans 10^{math.log10(draws.fold.min()):.1f}–10^{math.log10(draws.fold.max()):.1f}; exp5 "
            f"grid M = 1 → 2 drops {min(drops.values()):.2g}–{max(drops.values()):.3g}-fold, nearest {pub:.0f} at "
            f"m = {near[0]}, β = {near[1]:g} ({drops[near]:.0f}-fold)")
    big = sorted(k for k, v in drops.items() if v > 10.0)
    reason = (f"Same direction: a second pattern makes a slow even mode the gradient sees; the drop M = 1 → 2 exceeds "
              f"10-fold on {len(big)}/{len(drops)} (m, β) of the grid, β ∈ {{{', '.join(f'{b:g}' for b in sorted({b for _, b in big}))}}} "
              f"(at β = {cell[1]:g}: {', '.join(f'm = {m}: {drops[(m, cell[1])]:.0f}×' for m in sorted(t.n_hidden.unique()))}). "
              f"Draws ({lab}, block kernel): recipe seeds {by_seed.seed.min()}–{by_seed.seed.max()} at noise "
              f"{spec1['noise']:g} give an M = 1 gap of {by_seed.gap1.min():.4f}–{by_seed.gap1.max():.4f} and an M = 2 gap "
              f"of {by_seed.gap2.min():.1e}–{by_seed.gap2.max():.1e}; noise "
              f"{by_noise.noise.min():g}–{by_noise.noise.max():g} at seed {spec1['seed']} keeps the M = 1 gap ≥ "
              f"{by_noise.gap1.min():.3f}; so the fold (½(P + P*)) spans {draws.fold.min():.3g}–{draws.fold.max():.3g} "
              f"over draws, set by the M = 2 gap. "
              f"Kernel: reversibilizing changes each slow gap by 1 − λ₊ = (γ + γ/(1 + √(1−γ)))/2 (→ 3γ/4), checked "
              f"against a dense ½(P + P*) (its relevant gap, weights of the joint v_i h_j) on the same recipe at "
              f"n = {small_n}, m = {small_m}, M = 1 and 2 (relative difference {_rounding(max(checks))}; the two select "
              f"the same mode here by spin-flip parity, not by a general identity); it turns our M = 1 gap {b1:.4f} "
              f"into {r1:.3f}, not 0.648. The notebook's M = 1 level (0.65 in the index, 0.648 in the entry) is "
              f"unexplained by the draw (≥ {draws.gap1.min():.3f}, reversibilized ≥ "
              f"{float(reversibilized_gap(draws.gap1.min())):.3f}, over the scanned seeds and noise) or by the kernel; "
              f"the ferromagnetic control gives {ferro:.3f}. Magnitude: {fold:.0f}-fold against {pub:.0f}-fold "
              f"(0.65/0.006), one draw of a fold that spans "
              f"{math.log10(draws.fold.max() / draws.fold.min()):.1f} dex over draws.")
    ratio = sorted({int(r.n_visible) // int(r.n_hidden) for r in t.itertuples()})
    Ms = sorted(int(x) for x in t.M.unique() if x > 0)
    return Row(6, NOTEBOOK[6].statement, NOTEBOOK[6].number, ours,
               f"planted: the exp5 grid, m ∈ {{{', '.join(str(m) for m in sorted(t.n_hidden.unique()))}}}, n = "
               f"{'/'.join(str(r) for r in ratio)}m, {t.beta.nunique()} β × (M = {Ms[0]} … {Ms[-1]} + ferromagnetic "
               f"control) = {len(t)} cells; draws of {lab}: seeds {', '.join(str(x) for x in DRAW_SEEDS)} and noise "
               f"{', '.join(f'{x:g}' for x in DRAW_NOISES)}, exact solver",
               "snrbench replicate --claim 6", direction, magnitude, reason,
               details=dict(fold=fold, block=(b1, b2), rev=(r1, r2), dense_check=max(checks),
                            draw_folds=draws.fold.tolist()))


# --- claim 7 ------------------------------------------------------------------------------------------
def gap_collapse(tau_gap) -> tuple[int, float]:
    """The checkpoint where the slowest gap collapses: the index ``i ≥ 1`` of the largest rise of
    ``τ_gap`` from checkpoint ``i − 1`` to ``i`` (sweeps, ordered by update), and that rise (a factor);
    ``(-1, nan)`` with fewer than two checkpoints."""
    tau = np.log(np.asarray(tau_gap, dtype=np.float64))
    if tau.size < 2:
        return -1, float("nan")
    i = int(np.argmax(np.diff(tau))) + 1
    return i, float(np.exp(tau[i] - tau[i - 1]))


def _claim7(root: Path, quick: bool) -> Row:
    o = store.read_table(root, "onset.parquet").to_pandas()
    p = store.read_table(root, "predictions/single-gap.parquet").to_pandas()
    p = p[p.budget == p.groupby(["family", "access"]).budget.transform("max")].drop_duplicates(["cell_id", "access"])
    per = o.drop_duplicates(["family", "n_hidden"]).sort_values(["family", "n_hidden"])
    rows = []
    for g in per.itertuples():
        t = _truth(root, g.family).drop_duplicates("cell_id")
        t = t[t.n_hidden == g.n_hidden].sort_values("update").iloc[: int(g.n_checkpoints)]  # the onset's prefix
        tau = p[p.family == g.family].set_index("cell_id").tau.reindex(t.cell_id)
        i, rise = gap_collapse(tau.to_numpy())
        k = int(t.train_k.iloc[0])
        on = o[(o.family == g.family) & (o.n_hidden == g.n_hidden)]
        rows.append(dict(name=f"{g.family} m{g.n_hidden}", k=k, onset=int(g.onset_index_true), n=int(g.n_checkpoints),
                         collapse=i, rise=rise, labels=t.label.tolist(), access=str(p[p.family == g.family].access.iloc[0]),
                         exact=int((on.onset_error == 0).sum()), entries=len(on),
                         iid_error=int(on[on.predictor == "iid"].onset_error.max()) if (on.predictor == "iid").any() else -1))
    d = pd.DataFrame(rows)
    testable = d[d.onset > 0]  # onset index 0: Q_train never reached 1, the onset sits at the first checkpoint
    hit = testable[(testable.collapse - testable.onset).abs() <= 1]
    direction = len(testable) > 0 and len(hit) == len(testable)
    magnitude = direction
    where = lambda r, i: r.labels[i].split("-")[-1] if i >= 0 else "none"  # noqa: E731
    ours = "; ".join(
        f"{r.name}: τ_gap collapses at {where(r, r.collapse)} (×{r.rise:.1f}), onset "
        + (f"at {where(r, r.onset)}" if r.onset > 0 else "at the first checkpoint (Q_train never reached 1)"
           if r.onset == 0 else "none")
        + f" ({r.n} trusted checkpoints)" for r in d.itertuples())
    pcd1 = d[(d.k == 1) & (d.onset >= 0)]
    pcdk = d[(d.k > 1) & (d.onset > 0)]
    reason = (f"Test as stated: does the onset coincide (within one checkpoint) with the collapse of the gap, the "
              f"largest rise of the stored τ_gap (the single-gap entry, {', '.join(sorted(d.access.unique()))}, "
              f"largest budget) between consecutive trusted checkpoints? It does in {len(hit)}/{len(testable)} of the "
              f"(family, m) whose Q_train reached 1 before an onset"
              + (f" ({', '.join(f'{r.name}: {abs(r.collapse - r.onset)} checkpoint' + ('' if abs(r.collapse - r.onset) == 1 else 's') + ' apart' for r in testable.itertuples())})"
                 if len(testable) else "")
              + "; and τ_gap collapses where no onset follows ("
              + ", ".join(f"{r.name} ×{r.rise:.0f}" for r in d[d.onset < 0].itertuples()) + "). "
              + (f"On PCD-1 ({', '.join(pcd1.name)}) the forecast onsets have no power, not evidence either way: "
                 f"there Q_train = C·Q(1) = C·‖g‖²/V for any chain (DESIGN §1) contains no "
                 f"gap, and every entry is exact at the onset ({int(pcd1.exact.sum())}/{int(pcd1.entries.sum())} "
                 f"forecasts with onset error 0, the gap-free iid included)." if len(pcd1) else "")
              + (" With k > 1 sweeps per gradient the forecasts have power (Q_train = C·Q(k) holds the autocorrelation): "
                 + "; ".join(f"{r.name} (PCD-{r.k}): {r.exact}/{r.entries} forecasts exact, iid off by {r.iid_error} "
                             "checkpoints" for r in pcdk.itertuples()) + "." if len(pcdk) else "")
              + " τ_gap is estimated from the sampler (the MNIST models have no exact spectrum).")
    return Row(7, NOTEBOOK[7].statement, NOTEBOOK[7].number, ours,
               "onset.parquet and predictions/single-gap.parquet: "
               + ", ".join(f"{r.name} (PCD-{r.k})" for r in d.itertuples()),
               "snrbench replicate --claim 7", direction, magnitude, reason,
               details=dict(testable=len(testable), coincide=len(hit), collapse=d.collapse.tolist(),
                            onset=d.onset.tolist()))


# --- claim 8 ------------------------------------------------------------------------------------------
def _claim8(root: Path, quick: bool) -> Row:
    from . import goodhart

    ladder = goodhart.dose_ladder(root)
    held, sentence, arms = goodhart.verdict(ladder, arms=True)
    ll_ind = float(ladder.loglik_independent.median())
    rewarded = sorted(set(ladder.rewarded) - {"none"})
    best = None
    for name in rewarded:
        arm = goodhart._arm(ladder, name)
        med = arm.groupby("dose")[["rewarded_value", "loglik"]].median()
        rise = float(med.rewarded_value.max() - med.rewarded_value.loc[0.0])
        stopped = bool((med.loglik <= ll_ind).any())
        if best is None or rise > best[1]:
            best = (name, rise, stopped, float(med.loglik.min()))
    name, rise, stopped, ll = best
    direction = rise > 0 and stopped
    magnitude = held
    top = float(ladder.dose.max())
    doses = sorted(d for d in ladder.dose.unique() if d > 0)
    spec = json.loads(_truth(root, "goodhart").spec_json.iloc[0])
    ours = (f"10^{rise:.1f} ({name}; median over seeds, λ = 0 → {top:g}), log-likelihood {ll:.2f} nats against "
            f"{ll_ind:.2f} for independent units; holds for: " + (", ".join(arms) if arms else "none"))
    reason = ("Same outcome: " + sentence.split(". ")[0] + f". The students are n = {spec['n_visible']}, "
              f"m = {spec['n_hidden']} planted-teacher fits (DESIGN §3, goodhart; the whole ladder: "
              "python -m snrbench.report.goodhart); the notebook's ladder is not published.")
    return Row(8, NOTEBOOK[8].statement, NOTEBOOK[8].number, ours,
               f"goodhart: {len(ladder)} students ({ladder.seed.nunique()} seeds × (λ = 0 + {len(doses)} doses "
               f"{', '.join(f'{d:g}' for d in doses)} × {len(rewarded)} rewarded quantities))",
               "snrbench replicate --claim 8", direction, magnitude, reason,
               details=dict(rise=rise, arms=list(arms)))


# --- claim 9 ------------------------------------------------------------------------------------------
#: Sokal's window constant (``M ≥ c·τ̂(M)``), as in :func:`snrbench.core.autocorr.integrated_time`; the
#: window must fit in the record, so a found window gives ``τ̂ ≤ M/c < L/c``.
SOKAL_C = 5.0
#: The estimator's own reliability flag: ``L ≥ RELIABLE·τ̂`` (``integrated_time``'s ``tol``).
RELIABLE = 50.0
#: Claim 9's burn-in (sweeps) before the first recorded sweep, from training images.
BURN_IN = 2000


def free_energy_series(rbm: RBM, v0, sweeps: int, seed: int = 0, burn_in: int = 0) -> np.ndarray:
    """The free energy ``F(v) = −aᵀv − Σ_j log(1 + e^{(Wᵀv + b)_j})`` (nats), shape ``(chains, sweeps)``,
    along blocked-Gibbs chains begun at ``v0``, recorded after ``burn_in`` sweeps."""
    import torch

    from ..core.sampler import BlockGibbs

    s = BlockGibbs(rbm, len(v0), seed=seed, v0=v0)
    W, a, b = (torch.tensor(np.array(x), dtype=torch.float32) for x in (rbm.W, rbm.a, rbm.b))
    out = np.empty((len(v0), int(sweeps)))
    with torch.no_grad():
        if burn_in:
            s.run(int(burn_in))
        for t in range(int(sweeps)):
            s.run(1)
            v = s.v
            out[:, t] = (-(v @ a) - torch.nn.functional.softplus(v @ W + b).sum(1)).numpy()
    return out


def tau_growth(rbm: RBM, v0, lengths, seed: int = 0, burn_in: int = 0) -> np.ndarray:
    """Sokal ``τ(L)`` (sweeps, c = :data:`SOKAL_C`) of :func:`free_energy_series` on the first ``L`` sweeps of
    one run, for each ``L`` in ``lengths``; the autocorrelation is averaged over chains. The estimator's own
    reliability flag (``L ≥ 50τ``) is not applied here: see :func:`reliable`."""
    from ..core.autocorr import integrated_time

    x = free_energy_series(rbm, v0, int(max(lengths)), seed, burn_in)
    return np.array([integrated_time(x[:, :int(n)], c=SOKAL_C, quiet=True) for n in lengths])


def reliable(tau, lengths) -> np.ndarray:
    """Per length: does ``L ≥ 50·τ̂`` hold (the flag ``integrated_time`` raises on unless ``quiet``)?"""
    return np.asarray(lengths, dtype=np.float64) >= RELIABLE * np.asarray(tau, dtype=np.float64)


def random_walk_tau_growth(lengths, chains: int = 8, seed: int = 0) -> np.ndarray:
    """Sokal ``τ(L)`` (steps) of Gaussian random walks, a series that never equilibrates: what the estimator
    returns for a series it cannot resolve (below its ceiling ``L/c``, since its window ``M ≥ cτ̂`` must fit
    in ``L``)."""
    from ..core.autocorr import integrated_time

    x = np.cumsum(np.random.default_rng(seed).standard_normal((chains, int(max(lengths)))), axis=1)
    return np.array([integrated_time(x[:, :int(n)], c=SOKAL_C, quiet=True) for n in lengths])


def _claim9(root: Path, quick: bool) -> Row:
    from ..core.autocorr import integrated_time
    from ..core.diagnostics import doubling_rule

    lengths = np.array([1000, 2000, 4000, 8000, 16000, 32000])
    n_chains, start_seed = 8, 1
    walk = random_walk_tau_growth(lengths, chains=n_chains) / lengths
    runs = {}
    for family, label in ((TRAINED, "m64-u16384"), (TRAINED_LARGE, "m256-u16384")):
        rbm, data, _ = _mnist_model(family, label)
        v0 = data[np.random.default_rng(start_seed).choice(len(data), n_chains, replace=False)]
        x = free_energy_series(rbm, v0, int(lengths[-1]), seed=start_seed, burn_in=BURN_IN)
        tau = np.array([integrated_time(x[:, :int(n)], c=SOKAL_C, quiet=True) for n in lengths])
        check = doubling_rule(x, L=int(lengths[-1]) // 2)  # DESIGN §2.3: L ≥ 5·max(τ(L), τ(2L)), |Δτ|/τ < 0.15
        truth = _truth(root, family).drop_duplicates("cell_id").set_index("label")
        runs[f"{family} {label}"] = dict(
            tau=tau, ratio=tau / lengths, slope=float(np.polyfit(np.log(lengths), np.log(tau), 1)[0]),
            ok=bool(check.ok), rel=float(check.rel_change), rel_ok=bool(check.rel_change < 0.15),
            long=bool(check.long_enough), reliable=reliable(tau, lengths),
            certified=bool(truth.loc[label, "certified"]), shape=f"{rbm.n_visible} × {rbm.n_hidden}",
            k=int(truth.loc[label, "train_k"]))
    growing = [k for k, r in runs.items() if not r["ok"]]
    direction = bool(growing)
    magnitude = any(runs[k]["slope"] >= 0.8 and within_range(
        math.log10(runs[k]["ratio"].min()), math.log10(runs[k]["ratio"].max()), math.log10(0.15), math.log10(0.17))
        for k in growing)
    kl = lambda n: f"{n // 1000}k"  # noqa: E731
    half, full = int(lengths[-1]) // 2, int(lengths[-1])

    def flag(r):
        ok = [kl(int(n)) for n, f in zip(lengths, r["reliable"]) if f]
        return "L ≥ 50τ̂ at " + ", ".join(ok) if ok else "L ≥ 50τ̂ fails at every L"

    desc = lambda k, r: (f"{k}: τ = {r['tau'][0]:.0f} → {r['tau'][-1]:.0f} sweeps, τ/L = {r['ratio'].max():.3f} → "  # noqa: E731
                         f"{r['ratio'][-1]:.3f}, slope {r['slope']:.2f}, doubling rule at {kl(half)} → {kl(full)} "
                         + ("passes" if r["ok"] else "fails") + f" (|Δτ|/τ = {r['rel']:.2f}"
                         + ("" if r["long"] else f", L < 5τ̂") + f"); {flag(r)}")
    ours = "; ".join(desc(k, r) for k, r in runs.items()) + f"; a random walk gives τ/L = {walk.min():.3f}–{walk.max():.3f}"
    settled = [k for k, r in runs.items() if r["ok"]]
    unreliable = [k for k, r in runs.items() if not r["reliable"].all()]
    reason = ((f"Same direction on {', '.join(growing)}: τ is not settled at {full:,} sweeps (the doubling rule "
               f"fails), " if growing else f"Not the same: on every model τ settles within {full:,} sweeps; ")
              + (f"while on {', '.join(settled)} it passes ("
                 + ", ".join(f"{runs[k]['tau'][-2]:.0f} → {runs[k]['tau'][-1]:.0f}" for k in settled) + " sweeps). "
                 if settled else "")
              + (f"The estimator's own flag (L ≥ 50τ̂) fails on {', '.join(unreliable)} at the lengths not "
                 "listed: the estimator itself flags those τ̂ unreliable. " if unreliable else "")
              + f"Magnitude: τ/L falls with L (to {min(r['ratio'][-1] for r in runs.values()):.3f}) instead of holding "
              f"at 0.15–0.17, so τ is not ∝ L here. Precision: Sokal's window (c = {SOKAL_C:g}) must fit in the "
              f"record, so a found window gives τ̂ ≤ L/c: τ/L cannot exceed {1 / SOKAL_C:g}. A series that never "
              f"decorrelates (a Gaussian random walk, {n_chains} chains, the same estimator) measures τ/L = "
              f"{walk.min():.3f}–{walk.max():.3f}; a flat τ/L below the ceiling is what the estimator returns for a "
              f"series it cannot resolve, so the notebook's flat 0.15–0.17 is consistent with τ beyond the record. "
              f"Model/observable: the notebook's checkpoint and observable are not published; ours are the last "
              f"PCD-{runs[growing[0] if growing else next(iter(runs))]['k']} checkpoints, {n_chains} chains begun at "
              f"training images with {BURN_IN:,} sweeps of burn-in (not an equilibrium start), F(v). Their stored "
              "truths are "
              + ", ".join(f"{'certified' if r['certified'] else 'not certified'} ({k})" for k, r in runs.items())
              + "; this chain-length measurement does not use them.")
    return Row(9, NOTEBOOK[9].statement, NOTEBOOK[9].number, ours,
               " and ".join(f"{k} ({r['shape']})" for k, r in runs.items())
               + f", {n_chains} chains each from training images, {BURN_IN:,} sweeps of burn-in, free energy F(v), one "
               f"run of {full:,} sweeps read at L = {int(lengths[0]):,} … {full:,}",
               "snrbench replicate --claim 9", direction, magnitude, reason,
               details={k: dict(tau=r["tau"].tolist(), slope=r["slope"], ok=r["ok"],
                                reliable=r["reliable"].tolist()) for k, r in runs.items()})


_CLAIMS = {1: _claim1, 2: _claim2, 3: _claim3, 4: _claim4, 5: _claim5, 6: _claim6, 7: _claim7, 8: _claim8, 9: _claim9}


def claim(number: int, root: Path | str, quick: bool = False) -> Row:
    """Measure one claim (1 … 9) from the results folder ``root``; the row carries its own wall seconds."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the bounded computations are timed on one core
    t0 = time.perf_counter()
    try:
        row = _CLAIMS[int(number)](Path(root), quick)
    finally:
        torch.set_num_threads(threads)
    return Row(**{**row.__dict__, "seconds": time.perf_counter() - t0})


def replicate(root: Path | str, claims=None, quick: bool = False) -> list[Row]:
    """Every claim's row (or those in ``claims``), in claim order."""
    return [claim(n, root, quick) for n in sorted(claims or _CLAIMS)]


# --- output -------------------------------------------------------------------------------------------
_HEAD = ["claim", "the notebook", "ours", "verdict", "cells / models", "recompute", "why"]


def _cells(r: Row) -> list[str]:
    return [f"{r.claim}. {r.statement}", r.notebook, r.ours, f"**{r.verdict}**", r.cells, f"`{r.command}`", r.reason]


def markdown(rows: list[Row]) -> str:
    """``docs/REPLICATION.md``: the rule and the table (no timings: the file is the same on every run)."""
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["# The notebook's claims, replicated", "",
           "Generated by `snrbench replicate --write` (`src/snrbench/report/replicate.py`); do not edit by hand.",
           "Each of the notebook's numbers is marked with its source: *(index)*, word for word in the notebook's "
           "index (`shared/seeds/003_…`); *(entry)*, from the entry itself as issue 38 quoted it (the index does not "
           "give it, and it is not checked here). Ours are measured from `results/` or by the bounded computations "
           "named in each row.", "",
           "**Verdict rule** (DESIGN §10): *reproduced* when our measurement shows the effect in the notebook's "
           f"direction and its number is within a factor {FACTOR:g} of the notebook's (0.301 dex, the scoring "
           f"tolerance; a count of cells within {FRACTION:g} of the notebook's fraction; a published range widened by "
           "0.301 dex on each side); *reproduced in kind* when only the direction holds; *not reproduced* otherwise.",
           "", "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    out += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows]
    counts = pd.Series([r.verdict for r in rows]).value_counts()
    out += ["", "Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in (REPRODUCED, IN_KIND, NOT_REPRODUCED))
            + ".", ""]
    return "\n".join(out)


def _table_lines(path: Path | str) -> list[list[str]]:
    """The claim rows of a stored ``docs/REPLICATION.md``, each as its seven cells (Markdown, unescaped)."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("| ") and line[2:3].isdigit():
            cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
            out.append(cells)
    return out


def page_section(rows: list[Row] | Path | str) -> str:
    """The page's "Claims of the notebook" section (HTML, escaped, no script), from rows or from the stored
    ``docs/REPLICATION.md`` (so the page is a pure function of files, with no sampling of its own)."""
    e = html.escape
    table = [_cells(r) for r in rows] if isinstance(rows, list) else _table_lines(rows)
    head = "".join(f"<th>{e(h)}</th>" for h in _HEAD)
    body = "".join("<tr>" + "".join(f"<td>{e(c.replace('**', '').replace('`', ''))}</td>" for c in cells) + "</tr>"
                   for cells in table)
    return ('<section id="claims-of-the-notebook"><h2>Claims of the notebook</h2>'
            f"<p>Each headline claim of the research notebook snrbench grew out of, its published number beside ours, "
            f"and the verdict: <em>reproduced</em> (same direction, within a factor {FACTOR:g} or {FRACTION:g} of a "
            "fraction of cells), <em>reproduced in kind</em> (same direction, other magnitude) or <em>not "
            "reproduced</em>, with the measured reason. Details: docs/REPLICATION.md.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>")


def read_verdicts(path: Path | str) -> dict[int, str]:
    """The verdict column of a stored ``docs/REPLICATION.md``, by claim number."""
    return {int(c[0].split(".")[0]): c[3].strip("*") for c in _table_lines(path)}
