"""The predictor contract and the built-in entries, in process on fixture cells."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from snrbench.truth.exact import solve
from snrbench.predict import AccessError, BudgetExceeded, Prediction, Problem, check_prediction
from snrbench.families import build_data, build_model, load_suite

ROOT = Path(__file__).resolve().parents[1]
CELLS = load_suite(Path(__file__).parent / "data" / "exact-rbm.toml")[1]


def _entry(module: str, cls: str, **kw):
    spec = importlib.util.spec_from_file_location(f"_test_{module}", ROOT / "predictors" / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, cls)(**kw)


def _problem(cell, access="white-box", **kw):
    return Problem(build_model(cell), build_data(cell), access=access, exact_available=True, label=cell.label,
                   seed=7, **kw)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.label)
def test_multimode_all_modes_is_the_exact_curve(cell):
    """Consistency: the white-box multimode with every mode kept reproduces the exact Q(T)."""
    truth = solve(build_model(cell), build_data(cell)).log10_q()
    pred = _entry("multimode", "MultimodeWhiteBox", n_modes=None).predict(_problem(cell))
    np.testing.assert_allclose(pred.log10_q, truth, rtol=0, atol=1e-8)
    one = _entry("multimode", "MultimodeWhiteBox", n_modes=1).predict(_problem(cell))
    assert np.all(np.isfinite(one.log10_q)) and one.log10_q[0] == pytest.approx(truth[0], abs=1e-12)  # Q(1) = ‖g‖²/V


def test_single_gap_white_box_formula():
    cell = CELLS[1]  # n6m3-b1-bias: the slow mode carries weight
    sol = solve(build_model(cell), build_data(cell))
    pred = _entry("single_gap", "SingleGapWhiteBox").predict(_problem(cell))
    assert pred.tau == pytest.approx((1 + (1 - sol.spectral_gap)) / sol.spectral_gap)
    T = 2.0 ** np.arange(17)
    lam = 1 - sol.spectral_gap
    vT = (T + 2 * np.array([sum((t - s) * lam**s for s in range(1, int(t))) for t in T])) / T**2
    np.testing.assert_allclose(pred.log10_q, np.log10(sol.grad_norm2 / (sol.total_variance * vT)), atol=1e-10)


def test_black_box_multimode_tracks_a_fast_cell():
    """Monte Carlo route: the Galerkin estimate from the metered sampler agrees with exact."""
    cell = [c for c in CELLS if c.label == "n6m3-b1-bias-s0"][0]
    truth = solve(build_model(cell), build_data(cell))
    problem = _problem(cell, access="sampler-only")
    pred = _entry("multimode", "MultimodeBlackBox", n_chains=64, n_sweeps=2**13, burn_in=2**10).predict(problem)
    assert problem.sweeps_used == 64 * 2**13
    assert np.abs(pred.log10_q - truth.log10_q()).max() < np.log10(1.25)
    assert pred.grad_norm2 == pytest.approx(truth.grad_norm2, rel=0.05)
    assert pred.tau == pytest.approx(truth.tau_grad, rel=0.2)


def test_problem_guards():
    cell = CELLS[0]
    bb = _problem(cell, access="sampler-only")
    with pytest.raises(AccessError, match="white-box entries only"):
        bb.exact
    with pytest.raises(AccessError, match="no exact operator"):
        Problem(build_model(cell), build_data(cell), access="white-box", exact_available=False).exact
    s = bb.sampler(64)
    s.run(2**16 - 1)
    with pytest.raises(BudgetExceeded, match="budget is 4,194,304"):
        s.run(2)
    assert bb.sweeps_used == 64 * (2**16 - 1)
    for what in ("model", "data"):  # the sampler-only tier gets neither
        with pytest.raises(AccessError, match=f"problem.{what} is for model and white-box entries only"):
            getattr(bb, what)
    with pytest.raises(ValueError):
        _problem(cell).data[0, 0] = 5.0  # read-only
    with pytest.raises(ValueError):
        bb.data_mean[0] = 5.0


def test_chains_begin_at_the_data_only_for_the_tiers_that_see_it():
    """``start="data"``: a model-tier sampler's chains begin at rows of the cell's data drawn with the
    sampler's seed (a read of the states is charged like a sweep); the sampler-only tier is refused by
    the contract and, reached past it, by the meter itself; an unknown start is refused."""
    from snrbench.predict.meter import Meter

    cell = CELLS[0]
    model, data = build_model(cell), build_data(cell)
    mt = Problem(model, data, access="model")
    s = mt.sampler(8, seed=5, start="data")
    rows = data[np.random.default_rng(5).choice(len(data), 8, replace=False)]
    assert np.array_equal(s.v.numpy(), rows) and mt.sweeps_used == 8
    assert not np.array_equal(Problem(model, data, access="model").sampler(8, seed=5).v.numpy(), rows)
    bb = Problem(model, data, access="sampler-only")
    with pytest.raises(AccessError, match=r'problem.sampler\(start="data"\) is for model and white-box entries only'):
        bb.sampler(8, start="data")
    with pytest.raises(ValueError, match="start='data' is for model and white-box entries"):
        bb._meter.new(8, None, "float32", "data")
    with pytest.raises(ValueError, match=r"start must be one of \('uniform', 'data'\), got 'exact'"):
        mt._meter.new(8, None, "float32", "exact")
    many = Meter(model, "weights", 0, data_starts=data[:3]).new(8, 1, "float32", "data")  # more chains than rows
    assert many == (0, 8)


def test_prediction_is_immutable_and_checked():
    p = Prediction([0.0] * 17)
    with pytest.raises(ValueError):
        p.log10_q[0] = 1.0
    with pytest.raises(AttributeError):
        p.tau = 3.0
    assert check_prediction(p, 17) is None
    assert "expected (17,)" in check_prediction(Prediction([0.0] * 5), 17)
    assert "NaN" in check_prediction(Prediction([np.nan] + [0.0] * 16), 17)
    assert "−inf (Q = 0)" in check_prediction(Prediction([-np.inf] + [0.0] * 16), 17)
    assert "tau" in check_prediction(Prediction([0.0] * 17, tau=-1.0), 17)
    assert "not snrbench.predict.Prediction" in check_prediction(np.zeros(17), 17)


def test_pilot_run_streaming_matches_the_kept_series():
    """The streamed reductions (chain means, pooled V, window variances) against the same numbers
    computed from the whole recorded series."""
    from snrbench.pilot import pilot_run

    cell = CELLS[1]
    run = pilot_run(_problem(cell, access="sampler-only"), n_chains=16, n_sweeps=640, burn_in=64,
                    keep_series=True, windows=(1, 2, 8, 64))
    f = run.f
    L, C, n_obs = f.shape
    assert (L, C) == (640, 16) and run.m.shape == (L, C)
    np.testing.assert_allclose(run.chain_means, f.mean(axis=0), rtol=1e-12)
    assert run.variance == pytest.approx(float(f.reshape(-1, n_obs).var(axis=0).sum()), rel=1e-10)
    for t in (1, 2, 8, 64):
        w = f.reshape(L // t, t, C, n_obs).mean(axis=1).reshape(-1, n_obs)
        assert run.window_trace_cov[t] == pytest.approx(float(w.var(axis=0).sum()), rel=1e-10), t
    assert run.window_trace_cov[64] < run.window_trace_cov[1]


@pytest.mark.parametrize("module,cls", [("pilot_q", "PilotQ"), ("magnetization", "MagnetizationBlackBox"),
                                        ("iat_per_observable", "IatPerObservable"),
                                        ("multimode", "MultimodeBlackBox"), ("single_gap", "SingleGapBlackBox")])
def test_black_box_entries_fit_every_budget_of_the_ladder(module, cls):
    """Each built-in black-box entry answers at the two lowest rungs within the budget, spending most
    of it; at the full budget its layout (the arithmetic, not the run) fits too."""
    from snrbench.pilot import budget_layout
    from snrbench.predict import BUDGET, BUDGETS

    assert BUDGETS == (2**10 * 64, 2**12 * 64, 2**14 * 64, 2**16 * 64) and BUDGET == BUDGETS[-1]
    cell = CELLS[1]
    for budget in BUDGETS[:2]:
        problem = _problem(cell, access="sampler-only", budget=budget)
        pred = _entry(module, cls).predict(problem)
        assert check_prediction(pred, len(problem.T)) is None
        assert 0.8 * budget <= problem.sweeps_used <= budget, (budget, problem.sweeps_used)
    for n_chains in (64, 128):
        assert budget_layout(BUDGET, n_chains, 0.125).chain_sweeps <= BUDGET
    with pytest.raises(ValueError, match="only 1 sweeps each"):
        budget_layout(100, 64)


def test_readme_example_answers_the_frozen_cells_of_every_exact_family(one_thread, readme_example):
    """The README's example entry is meant for the exact families (its full-observable record would
    not fit an MNIST cell's memory cap; the README says so and its submit command names them): it
    gives a valid answer on every exact family's cells at the largest β (where chains freeze: the
    rejections of a constant chain came from there). Its layout is the same at every rung (32
    chains × 2,048 sweeps)."""
    from snrbench.predict import BUDGETS

    namespace: dict = {}
    exec(compile(readme_example, "my_predictor.py", "exec"), namespace)
    entry = namespace["TraceIat"]()
    for family in ("exact-rbm", "planted", "ising"):
        cells = load_suite(family)[1]
        hottest = max(c.spec["beta"] for c in cells)
        for cell in [c for c in cells if c.spec["beta"] == hottest]:
            problem = Problem(build_model(cell), build_data(cell), observables=cell.spec["observables"],
                              access="sampler-only", label=cell.label, seed=0, family=family, budget=BUDGETS[0])
            assert check_prediction(entry.predict(problem), len(problem.T)) is None, (family, cell.label)
            assert problem.sweeps_used == 32 * 2048


def test_the_submitted_example_file_is_the_readme_example(readme_example):
    """examples/my_predictor.py is the file whose row is on the leaderboard: the README's block, verbatim."""
    assert (ROOT / "examples" / "my_predictor.py").read_text() == readme_example


def test_sources_inside_the_project_are_stored_relative_to_it():
    from snrbench.predict.predictions import _portable

    assert _portable(f"{ROOT}/examples/my_predictor.py::TraceIat") == "examples/my_predictor.py::TraceIat"
    assert _portable(f"{ROOT}/predictors/pilot_q.py::PilotQ") == "predictors/pilot_q.py::PilotQ"
    assert _portable("/elsewhere/x.py::X") == "/elsewhere/x.py::X"
