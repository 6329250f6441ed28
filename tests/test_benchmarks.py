"""The benchmark suite's own unit tests: its helpers compute what they say, and every asv benchmark
runs at its cheapest parameters (asv itself only imports them in CI: ``asv check``)."""
import math

import numpy as np
import pytest

from benchmarks import bench_exact, bench_predictors, bench_sampler, common, peers


def test_limit_combines_rates_as_serial_costs():
    assert common.limit_rate(100.0, 100.0) == pytest.approx(50.0)
    assert common.limit_rate(1000.0, 250.0) == pytest.approx(200.0)  # 1 ms + 4 ms per sweep


def test_sweep_rate_counts_sweeps_per_second(monkeypatch):
    """A step that takes 2 ms of a fake clock per call of 4 sweeps runs at 2000 sweeps/s: the count
    of calls and sweeps, not the machine's speed, is what is tested."""
    clock = [0.0]
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])

    def step():
        clock[0] += 0.002

    assert common.sweep_rate(step, 4, min_time=0.02, repeat=2) == pytest.approx(2000.0)


@pytest.fixture
def quick_rates(monkeypatch):
    """Benchmarks' timing loops at their shortest: these tests check that they run, not how fast."""
    import functools

    from benchmarks import bench_sampler

    quick = functools.partial(common.sweep_rate, min_time=0.005, repeat=1)
    for mod in (peers, bench_sampler):
        if hasattr(mod, "sweep_rate"):
            monkeypatch.setattr(mod, "sweep_rate", quick)


def test_floor_steps_touch_the_right_shapes():
    f = common.Floor(8, 5, 3)
    f.matmuls()
    f.uniforms()
    assert f.out_h.shape == (8, 3) and f.out_v.shape == (8, 5) and f.u.shape == (8, 8)
    np.testing.assert_allclose(f.out_h.numpy(), (f.x @ f.W).numpy(), rtol=1e-6)
    assert 0.0 <= float(f.u.min()) and float(f.u.max()) < 1.0


def test_peers_table_names_every_contender_and_ratio(quick_rates):
    row = peers.measure(64, 6, 4, peers={"snrbench": peers.snrbench_step, "absent": lambda *a: None})
    assert row["limit"] == pytest.approx(common.limit_rate(row["a_matmuls"], row["b_uniforms"]))
    assert row["snrbench"] > 0 and math.isnan(row["absent"])
    text = peers.table([row], ["snrbench", "absent"])
    assert "snrbench" in text and "n/a" in text and f"{row['snrbench'] / row['limit']:4.2f}" in text


@pytest.mark.parametrize("name", ["rbms", "scikit-learn"])
def test_peer_steps_advance_their_chains(name):
    pytest.importorskip({"rbms": "rbms", "scikit-learn": "sklearn"}[name])
    step = peers.PEERS[name](common.mnist_like_rbm(6, 4), 16, "cpu")
    step()


def test_sampler_benchmarks_run(quick_rates):
    b = bench_sampler.BlockGibbsSweep()
    for dtype in ("float32", "float64"):
        b.setup("4096x12x6", dtype)
        b.time_sweep("4096x12x6", dtype)
        b.peakmem_run_16("4096x12x6", dtype)
    frac = bench_sampler.FractionOfFloor().track_fraction_of_limit("4096x12x6")
    assert 0.0 < frac < float("inf")  # a ratio of two timings: its size is for asv, not for a test
    c = bench_sampler.SamplerCorrectness()
    c.setup()
    assert c.track_max_trace_cov_error_se() < 5.0  # a correct sampler; a broken draw gives tens


def test_exact_benchmarks_run():
    assert bench_exact.exact_rbm_model("n20m8").W.shape == (20, 8)
    b = bench_exact.ExactSolve()
    b.setup("n10m4")
    b.time_solve("n10m4")
    assert b.track_eig_check("n10m4") < 1e-12
    g = bench_exact.ExactSpectralGap()
    g.setup("n10m4")
    assert 0.0 < g.track_gap("n10m4") <= 1.0


@pytest.mark.parametrize("key", ["single-gap:white-box", "magnetization:sampler-only"])
def test_predictor_benchmarks_run(key, monkeypatch):
    from snrbench.predict.meter import BUDGETS

    monkeypatch.setattr(bench_predictors, "RUN_BUDGET", BUDGETS[0])  # the lowest rung: the benchmark runs, fast
    b = bench_predictors.PredictorCell()
    b.setup(key)
    assert 0.0 <= b.track_max_error_dex(key) < 10.0


def test_sampler_only_benchmark_serves_the_same_answer(monkeypatch):
    """The sampler-only cost benchmark runs, and its two routes give bit-identical predictions
    (served_vs_in_process raises otherwise); the ratio itself is for asv, not for a test."""
    from snrbench.predict.meter import BUDGETS

    monkeypatch.setattr(bench_predictors, "RUN_BUDGET", BUDGETS[1])
    t_served, t_local = bench_predictors.served_vs_in_process("magnetization:sampler-only", bench_predictors.COST_CELLS[:2])
    assert t_served > 0 and t_local > 0
