"""The one declaration of every Parquet column snrbench stores, with units.

Each table is a list of :class:`Column`; :func:`arrow_schema` turns it into a ``pyarrow.Schema``
whose fields carry ``unit`` and ``doc`` metadata. Every file also carries file-level metadata under
the key ``snrbench`` (JSON: schema version, table, suite, family, code version, method, precision,
seeds, hardware) — see :func:`file_metadata`.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass

import pyarrow as pa

__all__ = ["SCHEMA_VERSION", "Column", "TABLES", "arrow_schema", "file_metadata", "META_KEY"]

SCHEMA_VERSION = "1"
META_KEY = b"snrbench"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    doc: str


_CELL = [
    Column("suite", pa.string(), "", "suite version, e.g. v1"),
    Column("family", pa.string(), "", "task family"),
    Column("cell_id", pa.string(), "", "content hash (16 hex) of the cell spec"),
    Column("label", pa.string(), "", "human-readable cell name"),
]

GROUND_TRUTH = _CELL + [
    Column("n_visible", pa.int32(), "units", "visible units n (Ising: spins N)"),
    Column("n_hidden", pa.int32(), "units", "hidden units m (Ising: 0)"),
    Column("beta", pa.float64(), "", "coupling scale β"),
    Column("symmetric", pa.bool_(), "", "spin-flip symmetric (a = b = 0; Ising h = 0)"),
    Column("seed", pa.int32(), "", "model seed"),
    Column("T", pa.int64(), "sweeps", "window length T; one sweep = h|v then v|h (RBM families), "
           "= N random-scan single-site updates (ising family)"),
    Column("log10_q", pa.float64(), "log10(dimensionless)", "log10 Q(T, C=1) = log10(‖g‖² / Tr Cov[ĝ(T,1)])"),
    Column("trace_cov", pa.float64(), "f²", "Tr Cov[ĝ(T, 1)]"),
    Column("grad_norm2", pa.float64(), "f²", "‖g‖², g = mean_data f − E_p f"),
    Column("total_variance", pa.float64(), "f²", "V = Σ_a Var_p f_a"),
    Column("tau_grad", pa.float64(), "sweeps", "Σ_k (S_k/V)(1+λ_k)/(1−λ_k) (τ = 1 + 2Σρ convention)"),
    Column("tau_m", pa.float64(), "sweeps", "integrated autocorrelation time of m(v) = mean_i v_i"),
    Column("tau_gap", pa.float64(), "sweeps", "(1+λ_1)/(1−λ_1) of the slowest mode"),
    Column("spectral_gap", pa.float64(), "1/sweep", "global gap 1 − λ_1"),
    Column("observable_gap", pa.float64(), "1/sweep", "1 − λ of the slowest mode with S_k ≥ 1e-12·V"),
    Column("gap_method", pa.string(), "", "how the gaps were computed"),
    Column("model_sha256", pa.string(), "", "hash of the model parameters (units, W, a, b)"),
    Column("spec_json", pa.string(), "", "the cell spec (canonical JSON)"),
]

SPECTRUM = _CELL + [
    Column("mode", pa.int32(), "", "mode index k ≥ 1, ascending gap within the cell"),
    Column("sector", pa.string(), "", "all | even | odd (spin-flip parity)"),
    Column("gap", pa.float64(), "1/sweep", "1 − λ_k, to high relative accuracy"),
    Column("lam", pa.float64(), "", "λ_k (float64; use gap near 1)"),
    Column("weight", pa.float64(), "f²", "S_k = Σ_a c_{a,k}² of the gradient observables"),
    Column("weight_fraction", pa.float64(), "", "S_k / V"),
    Column("weight_m", pa.float64(), "m²", "S_k of the magnetization"),
    Column("gap_method", pa.string(), "", "how the gaps were computed"),
]

OPERATIONAL = _CELL + [
    Column("start", pa.string(), "", "start distribution π_0 of v_0: uniform | data (the data set's empirical law, as in CD)"),
    Column("burn_in_rule", pa.string(), "", "0 | ceil(5/observable_gap)"),
    Column("burn_in", pa.float64(), "sweeps", "burn-in B before the window (float: may exceed int64)"),
    Column("T", pa.int64(), "sweeps", "window length T (same sweep as the ground-truth table)"),
    Column("log10_q_op", pa.float64(), "log10(dimensionless)", "log10 Q_op = log10(‖g‖² / E‖ĝ − g‖²), bias included"),
    Column("mse", pa.float64(), "f²", "E‖ĝ(T) − g‖² = ‖bias‖² + Tr Cov_op"),
    Column("bias2", pa.float64(), "f²", "‖E ĝ(T) − g‖²"),
    Column("log10_q", pa.float64(), "log10(dimensionless)", "stationary log10 Q(T) of the same cell, beside it"),
]

LADDER = _CELL + [
    Column("T", pa.int64(), "sweeps", "window length T"),
    Column("log10_q_mc", pa.float64(), "log10(dimensionless)", "Monte Carlo log10 Q(T, C=1)"),
    Column("ci_low", pa.float64(), "log10(dimensionless)", "2.5% bootstrap percentile of log10 Q (over replicates)"),
    Column("ci_high", pa.float64(), "log10(dimensionless)", "97.5% bootstrap percentile"),
    Column("log10_q_exact", pa.float64(), "log10(dimensionless)", "exact log10 Q(T) of the cell"),
    Column("inside_ci", pa.bool_(), "", "ci_low ≤ exact ≤ ci_high"),
    Column("trace_cov_mc", pa.float64(), "f²", "Tr Ĉ(T), unbiased (ddof 1)"),
    Column("trace_cov_se", pa.float64(), "f²", "standard error of Tr Ĉ(T)"),
    Column("trace_cov_exact", pa.float64(), "f²", "exact Tr Cov(T)"),
    Column("grad_norm2_mc", pa.float64(), "f²", "‖ḡ‖² − Tr Ĉ(T_max)/R"),
    Column("grad_norm2_exact", pa.float64(), "f²", "exact ‖g‖²"),
    Column("n_replicates", pa.int32(), "chains", "R independent replicate chains"),
    Column("start", pa.string(), "", "exact (chains start from exact samples of p)"),
    Column("rhat", pa.float64(), "", "worst split-R̂ over the top-3 principal components of f"),
    Column("tau_L", pa.float64(), "recorded steps", "Sokal τ of the worst component from the first half (L)"),
    Column("tau_2L", pa.float64(), "recorded steps", "the same from the whole record (2L)"),
    Column("thin", pa.int32(), "sweeps", "sweeps per recorded step of the diagnostic series"),
    Column("doubling_ok", pa.bool_(), "", "|τ(2L) − τ(L)|/τ(L) < 0.15 and L ≥ 5τ"),
    Column("flagged", pa.bool_(), "", "R̂ > 1.01 or the doubling rule failed"),
]

MNIST_TRUTH = _CELL + [
    Column("n_visible", pa.int32(), "units", "visible units n (784 pixels)"),
    Column("n_hidden", pa.int32(), "units", "hidden units m"),
    Column("update", pa.int64(), "updates", "PCD updates at this checkpoint"),
    Column("seed", pa.int32(), "", "training seed"),
    Column("T", pa.int64(), "sweeps", "window length T (grid 2^0 … t_max of the suite)"),
    Column("log10_q", pa.float64(), "log10(dimensionless)", "Monte Carlo log10 Q(T, C=1) = log10(‖g‖² / Tr Ĉ(T))"),
    Column("ci_low", pa.float64(), "log10(dimensionless)", "2.5% bootstrap percentile of log10 Q (over replicates)"),
    Column("ci_high", pa.float64(), "log10(dimensionless)", "97.5% bootstrap percentile"),
    Column("trace_cov", pa.float64(), "f²", "Tr Ĉ(T), unbiased (ddof 1)"),
    Column("trace_cov_se", pa.float64(), "f²", "standard error of Tr Ĉ(T)"),
    Column("grad_norm2", pa.float64(), "f²", "‖g‖² used in Q: exact (m ≤ 20) or Monte Carlo"),
    Column("grad_norm2_method", pa.string(), "", "exact (hidden-side enumeration) | monte carlo"),
    Column("grad_norm2_mc", pa.float64(), "f²", "Monte Carlo ‖ḡ‖² − Tr Ĉ(T_max)/R"),
    Column("grad_norm2_mc_low", pa.float64(), "f²", "2.5% bootstrap percentile of the Monte Carlo ‖g‖²"),
    Column("grad_norm2_mc_high", pa.float64(), "f²", "97.5% bootstrap percentile"),
    Column("total_variance_indep", pa.float64(), "f²", "V = Σ Var_p f from independent exact samples (NaN: m > 20)"),
    Column("total_variance_indep_se", pa.float64(), "f²", "its standard error"),
    Column("n_replicates", pa.int32(), "chains", "R independent replicate chains"),
    Column("start", pa.string(), "", "exact (h ~ p(h), v | h) | temperature tempering | trajectory tempering"),
    Column("rhat", pa.float64(), "", "worst split-R̂ over the top-3 principal components of f"),
    Column("tau_L", pa.float64(), "recorded steps", "Sokal τ of the worst component from the first half (L)"),
    Column("tau_2L", pa.float64(), "recorded steps", "the same from the whole record (2L)"),
    Column("thin", pa.int32(), "sweeps", "sweeps per recorded step of the diagnostic series"),
    Column("doubling_ok", pa.bool_(), "", "|τ(2L) − τ(L)|/τ(L) < 0.15 and L ≥ 5τ"),
    Column("flagged", pa.bool_(), "", "R̂ > 1.01 or the doubling rule failed"),
    Column("start_z_variance", pa.float64(), "", "two-sample z of V = Tr Ĉ(1) between the PT groups begun at "
           "training images and at base-rate samples (NaN: exact starts)"),
    Column("start_z_gradient", pa.float64(), "", "the same for the mean of f along the gradient direction"),
    Column("drift_z_variance", pa.float64(), "", "paired z of V between every chain's state halfway through the "
           "production rounds and its final state (NaN: exact starts)"),
    Column("drift_z_gradient", pa.float64(), "", "the same for the mean of f along the gradient direction"),
    Column("equilibrated", pa.bool_(), "", "exact starts, or all four |z| ≤ 3.3 (False: left out of scoring)"),
    Column("certified", pa.bool_(), "", "exact starts, or two generators of independent method (population annealing "
           "and tempering) agree within their CIs at every T and each passes its health check (DESIGN §2.4)"),
    Column("certification", pa.string(), "", "the evidence for `certified`, or every check it failed with its "
           "measured value"),
    Column("train_chains", pa.int32(), "chains", "persistent chains C of the training"),
    Column("train_k", pa.int64(), "sweeps", "Gibbs sweeps per PCD update (k)"),
    Column("log_likelihood", pa.float64(), "nats/image", "mean log p(v) over the training data (exact or AIS)"),
    Column("model_sha256", pa.string(), "", "hash of the model parameters (units, W, a, b)"),
    Column("spec_json", pa.string(), "", "the cell spec (canonical JSON)"),
]

TEMPERING = _CELL + [
    Column("start", pa.string(), "", "the group of R/2 ladders: begun at training images | base-rate samples"),
    Column("method", pa.string(), "", "temperature (base-rate ↔ model in β) | trajectory (models along training)"),
    Column("rung", pa.int32(), "", "rung k (temperature: 0 is β = 1, the model; trajectory: 0 is the base-rate "
                                   "model, the last rung the checkpoint)"),
    Column("beta", pa.float64(), "", "β_k after adaptation (NaN for trajectory rungs)"),
    Column("position", pa.float64(), "checkpoints", "trajectory rung's place: 0 base rate, j + 1 the j-th "
                                                    "checkpoint of the grid, linear between (NaN for temperature)"),
    Column("swap_acceptance", pa.float64(), "", "acceptance of swaps between rungs k and k+1 (NaN at the last rung)"),
    Column("swap_acceptance_q10", pa.float64(), "", "10% quantile over the group's ladders of each ladder's own "
           "acceptance between rungs k and k+1 (NaN at the last rung, and for runs stored before it was recorded)"),
    Column("round_trips", pa.int64(), "", "round trips β=1 → β_min → β=1 over the group's ladders, production rounds"),
    Column("rounds", pa.int64(), "rounds", "production rounds (each: sweeps then one swap round)"),
    Column("sweeps", pa.int64(), "chain-sweeps", "chain-sweeps spent by the group over all rungs (with its "
                                                 "adaptation, or half the shared rung placement)"),
    Column("replica_tau", pa.float64(), "rounds", "integrated autocorrelation time of the replica index at the "
                                                  "checkpoint's rung, production rounds (NaN for temperature)"),
]

_MNIST = {c.name: c for c in MNIST_TRUTH}

ANNEALING = _CELL + [_MNIST["n_hidden"], _MNIST["update"]] + [
    Column("n_particles", pa.int32(), "particles", "population P of each annealing run"),
    Column("runs", pa.int32(), "", "independent annealing runs along the trajectory"),
    Column("sweeps_per_step", pa.int32(), "sweeps", "Gibbs sweeps of every particle after each annealing step"),
    Column("log_z", pa.float64(), "nats", "log Ẑ = log mean_r Ẑ_r over the runs (population annealing)"),
    Column("log_z_err", pa.float64(), "nats", "standard error sd_r(log Ẑ_r)/√runs"),
    Column("log_z_exact", pa.float64(), "nats", "log Z by hidden-side enumeration (NaN: m > 20)"),
    Column("ess", pa.float64(), "", "ESS/P at the checkpoint, smallest over the runs"),
    Column("min_ess", pa.float64(), "", "smallest step ESS/P (before resampling) since the previous checkpoint, "
           "over the runs"),
    Column("families", pa.int32(), "", "distinct initial ancestors among a run's P particles, smallest over the runs"),
    Column("eff_families", pa.float64(), "", "effective families 1/Σ_f (n_f/P)², smallest over the runs"),
    Column("steps", pa.int32(), "", "annealing steps from the previous checkpoint (run 0)"),
    Column("sweeps", pa.int64(), "chain-sweeps", "chain-sweeps of all runs from the base-rate model to here"),
    Column("healthy", pa.bool_(), "", "every run passes its health check (families and ESS floors)"),
    Column("health", pa.string(), "", "the floors missed, with measured values ('' when healthy)"),
    _MNIST["T"],
    Column("log10_q", pa.float64(), "log10(dimensionless)", "log10 Q(T, C=1) of R annealing starts"),
] + [_MNIST[k] for k in ("ci_low", "ci_high", "trace_cov", "grad_norm2")] + [
    Column("n_replicates", pa.int32(), "chains", "R annealing starts (drawn evenly from the runs' stations)"),
    Column("seconds", pa.float64(), "s", "wall-clock time of the cell's Q(T) (annealing runs not included)"),
]

INTERVENTION = _CELL + [_MNIST["n_hidden"], _MNIST["update"]] + [
    Column("onset_update", pa.int64(), "updates", "the plateau onset the run tests (first checkpoint with C·Q(k) < 1)"),
    Column("side", pa.string(), "", "before | after: the run starts at the checkpoint before the onset or at it"),
    Column("chains", pa.int32(), "chains", "persistent chains of the resumed training (the recipe's, or more)"),
    Column("chains_factor", pa.int32(), "", "chains / the recipe's chains (1 or the intervention's factor)"),
    Column("train_k", pa.int32(), "sweeps", "Gibbs sweeps per update (the recipe's)"),
    Column("updates", pa.int32(), "updates", "PCD updates of the resumed training (the same on both sides)"),
    Column("seed", pa.int32(), "", "seed of the resumed training (chains' starts, batches, sweeps)"),
    Column("log_likelihood_start", pa.float64(), "nats/image", "mean log p(v) over the data at the checkpoint"),
    Column("log_likelihood_end", pa.float64(), "nats/image", "mean log p(v) after the resumed training"),
    Column("gain", pa.float64(), "nats/image", "log_likelihood_end − log_likelihood_start"),
    Column("log_likelihood_method", pa.string(), "", "exact (hidden-side enumeration) or AIS with its settings"),
]

_ENTRY = [
    Column("predictor", pa.string(), "", "entry name (unique across tiers)"),
    Column("access", pa.string(), "", "white-box | model | sampler-only"),
]

_BUDGET = Column("budget", pa.int64(), "chain-sweeps", "the cell's budget the entry ran under (one rung of the "
                 "ladder 2^10 … 2^16 × 64; white-box entries: the full 2^16 × 64)")

PREDICTIONS = _CELL + _ENTRY + [
    _BUDGET,
    Column("T", pa.int64(), "sweeps", "window length T"),
    Column("log10_q", pa.float64(), "log10(dimensionless)", "predicted log10 Q(T, C=1)"),
    Column("tau", pa.float64(), "sweeps", "the entry's τ, if it reports one (NaN otherwise)"),
    Column("grad_norm2", pa.float64(), "f²", "the entry's estimate of ‖g‖² (NaN when it does not report one)"),
    Column("sweeps", pa.int64(), "chain-sweeps", "sampler cost of the cell: Σ over chains of sweeps run"),
    Column("seconds", pa.float64(), "s", "wall-clock time of the cell in the worker (measured by the runner)"),
    Column("cpu_seconds", pa.float64(), "s", "CPU time of the worker on the cell, waited-for children included "
           "(the sampler process's sweeps are counted in `sweeps`)"),
    Column("source", pa.string(), "", "where the entry came from (file path or entry point)"),
    Column("source_sha256", pa.string(), "", "hash of the entry's source file"),
]

SCORES = _CELL + _ENTRY + [
    _BUDGET,
    Column("max_err", pa.float64(), "dex", "max over T of |log10 Q_pred(T) − log10 Q_true(T)|"),
    Column("median_err", pa.float64(), "dex", "median over T of the same"),
    Column("tracked", pa.bool_(), "", "max_err ≤ log10 2"),
    Column("track_z_low", pa.float64(), "standard deviations", "smallest shift z of the truth, in its CI's "
           "standard deviations at every T, at which the cell is still tracked (−inf: any; no finite z between "
           "track_z_low and track_z_high: none)"),
    Column("track_z_high", pa.float64(), "standard deviations", "largest such z (+inf: any; exact truth: ±inf)"),
    Column("t_star_pred", pa.float64(), "sweeps", "T*(1) of the prediction (inf: never reaches Q = 1)"),
    Column("t_star_true", pa.float64(), "sweeps", "T*(1) of the ground truth"),
    Column("timing_ratio", pa.float64(), "", "T*_pred(1) / T*_true(1)"),
    Column("log10_q_pred_ref", pa.float64(), "log10(dimensionless)", "predicted log10 Q at T_ref (Spearman input)"),
    Column("log10_q_true_ref", pa.float64(), "log10(dimensionless)", "true log10 Q at T_ref"),
    Column("grad_norm2_err", pa.float64(), "dex", "|log10 ‖g‖²_pred − log10 ‖g‖²_true| (NaN: not reported)"),
    Column("sweeps", pa.int64(), "chain-sweeps", "sampler cost of the cell"),
    Column("seconds", pa.float64(), "s", "wall-clock time of the cell in the worker"),
    Column("cpu_seconds", pa.float64(), "s", "CPU time of the worker on the cell"),
]

ONSET = [
    Column("family", pa.string(), "", "mnist family"),
    Column("n_hidden", pa.int32(), "units", "hidden units m of the trained RBMs"),
    Column("predictor", pa.string(), "", "entry name"),
    Column("access", pa.string(), "", "white-box | model | sampler-only"),
    Column("n_checkpoints", pa.int32(), "", "checkpoints of this hidden size"),
    Column("onset_index_true", pa.int32(), "checkpoints", "index of the true plateau onset (-1: none)"),
    Column("onset_update_true", pa.int64(), "updates", "its PCD update count (-1: none)"),
    Column("onset_index_pred", pa.int32(), "checkpoints", "index of the forecast onset (-1: none)"),
    Column("onset_update_pred", pa.int64(), "updates", "its PCD update count (-1: none)"),
    Column("onset_error", pa.int32(), "checkpoints", "|index_pred − index_true| ('none' = one past the last)"),
]

TABLES = {"ground_truth": GROUND_TRUTH, "onset": ONSET, "spectrum": SPECTRUM, "operational": OPERATIONAL, "ladder": LADDER,
          "mnist_truth": MNIST_TRUTH, "tempering": TEMPERING, "annealing": ANNEALING, "intervention": INTERVENTION,
          "predictions": PREDICTIONS, "scores": SCORES}


def arrow_schema(table: str) -> pa.Schema:
    """The declared ``pyarrow.Schema`` of ``table`` (field metadata: unit, doc)."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; declared: {sorted(TABLES)}")
    return pa.schema(
        [pa.field(c.name, c.type, nullable=False, metadata={"unit": c.unit, "doc": c.doc}) for c in TABLES[table]]
    )


def hardware() -> str:
    """``"<machine> <system>, <N> CPUs (<model>)"``: what the numbers of a file were computed on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()} {platform.system()}, {cpus} CPUs" + (f" ({model})" if model else "")


def file_metadata(table: str, **info) -> dict[bytes, bytes]:
    """File-level metadata: schema version, table name, code version, hardware, plus ``info``."""
    from .._version import __version__

    meta = dict(schema_version=SCHEMA_VERSION, table=table, code_version=__version__, hardware=hardware(),
                python=platform.python_version())
    meta.update(info)
    return {META_KEY: json.dumps(meta, sort_keys=True).encode()}
