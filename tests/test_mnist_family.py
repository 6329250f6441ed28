"""The mnist family's pipeline on small stand-ins: training, checkpoints, suite cells, Monte Carlo at
scale (checked against the exact solver), the m ≤ 20 anchor, parallel-tempering starts and the onset."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from snrbench.truth import exact

from snrbench.truth import hidden_enum

from snrbench.families import get as get_family
from snrbench.families import mnist as mnist_family
from snrbench.truth.mc_scale import Z_MAX, independent_total_variance, scale_q_curve
from snrbench.core.model import RBM, all_states
from snrbench.core.observables import mean_gradient_observables
from snrbench.truth.onset import log10_q_train, onset_index, onset_table
from snrbench.families import TaskSpecError, load_suite
from snrbench.truth.train import CheckpointError, TrainConfig, checkpoint_updates, load_checkpoint, train_pcd

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def _digits(n_rows: int, n: int, seed: int) -> np.ndarray:
    """Binary stand-in data: noisy copies of three prototypes."""
    rng = np.random.default_rng(seed)
    protos = rng.random((3, n)) < 0.3
    rows = protos[rng.integers(0, 3, n_rows)]
    flip = rng.random(rows.shape) < 0.05
    return (rows ^ flip).astype(np.float64)


def test_checkpoint_updates_are_geometric():
    assert checkpoint_updates(TrainConfig(n_hidden=4, updates=256, first_checkpoint=16)) == [0, 16, 32, 64, 128, 256]


def test_train_writes_checkpoints_with_metadata_and_exact_likelihood(tmp_path):
    data = _digits(200, 12, 0)
    cfg = TrainConfig(n_hidden=3, updates=512, batch=20, chains=20, k=2, lr=0.3, first_checkpoint=128, seed=3)
    paths = train_pcd(data, cfg, tmp_path, meta=dict(data_sha256="x"), progress=False)
    assert [p.name for p in paths] == [f"m003-u{u:05d}.npz" for u in (0, 128, 256, 512)]
    rbm, meta = load_checkpoint(paths[-1])
    assert meta["hyper_parameters"]["k"] == 2 and meta["update"] == 512 and meta["data_sha256"] == "x"
    assert meta["model_sha256"] == rbm.sha256
    # log-likelihood against brute force over all 2^12 visible states
    lp = rbm.log_marginal_visible(all_states(12, "binary"))
    log_z = np.logaddexp.reduce(lp)
    assert meta["log_likelihood"] == pytest.approx(float(rbm.log_marginal_visible(data).mean() - log_z), abs=1e-9)
    # training moved the weights and the likelihood went up from the start
    rbm0, meta0 = load_checkpoint(paths[0])
    assert np.abs(rbm.W - rbm0.W).max() > 0.1
    assert meta["log_likelihood"] > meta0["log_likelihood"] + 0.5
    # seeded: a second run gives the same checkpoint bytes
    again = train_pcd(data, cfg, tmp_path / "again", meta=dict(data_sha256="x"), progress=False)
    assert again[-1].read_bytes() == paths[-1].read_bytes()


def test_checkpoint_tampering_and_missing_files_are_named(tmp_path):
    data = _digits(50, 8, 1)
    paths = train_pcd(data, TrainConfig(n_hidden=2, updates=16, batch=10, chains=10, k=1), tmp_path, progress=False)
    with np.load(paths[-1]) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["W"][0, 0] += 1.0
    np.savez_compressed(paths[-1], **arrays)
    with pytest.raises(CheckpointError, match="does not match its metadata"):
        load_checkpoint(paths[-1])
    paths[0].with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="missing checkpoint file"):
        load_checkpoint(paths[0])


def _small_binary(seed: int) -> tuple[RBM, np.ndarray]:
    r = np.random.default_rng(seed)
    rbm = RBM(r.normal(0, 0.8, (10, 4)), r.normal(0, 0.5, 10), r.normal(0, 0.5, 4), "binary")
    data = RBM(r.normal(0, 0.8, (10, 4)), None, None, "binary").sample_exact(300, r)
    return rbm, data


@pytest.mark.parametrize("observables", ["weights", "weights+biases"])
def test_scale_curve_agrees_with_the_exact_solver(observables):
    rbm, data = _small_binary(1)
    T = 2 ** np.arange(8)
    sol = exact.solve(rbm, data, observables)
    v0 = rbm.sample_exact(1024, np.random.default_rng(5))
    c = scale_q_curve(rbm, mean_gradient_observables(rbm, data, observables), v0, T, observables, seed=3)
    truth = sol.log10_q(T)
    inside = (c.ci_low <= truth) & (truth <= c.ci_high)
    assert inside.mean() >= 0.75, (truth, c.ci_low, c.ci_high)
    assert np.median(np.abs(c.trace_cov / sol.trace_cov(T) - 1)) < 0.03
    assert np.all(np.abs(c.trace_cov - sol.trace_cov(T)) < 5 * c.trace_cov_se)
    assert c.grad_norm2_low <= sol.grad_norm2 <= c.grad_norm2_high
    # with the exact ‖g‖² the curve is ‖g‖²/Tr Ĉ
    e = scale_q_curve(rbm, mean_gradient_observables(rbm, data, observables), v0, T, observables, seed=3,
                      grad_norm2_exact=sol.grad_norm2)
    np.testing.assert_allclose(e.log10_q, np.log10(sol.grad_norm2 / e.trace_cov), rtol=1e-12)


def test_scale_curve_detects_a_wrong_start_and_a_wrong_data_mean():
    """The checks have teeth: chains stuck in one mode of a bimodal model give Tr Ĉ(1) far below the exact
    V, and a shifted data mean puts the exact ‖g‖² outside the Monte Carlo CI."""
    r = np.random.default_rng(3)
    xi, eta = r.integers(0, 2, 10) * 2.0 - 1, r.integers(0, 2, 4) * 2.0 - 1
    W = 1.5 * np.outer(xi, eta)
    rbm = RBM(W, -W.sum(1) / 2, -W.sum(0) / 2, "binary")  # the binary image of a spin-flip symmetric model
    data = rbm.sample_exact(300, r)
    sol = exact.solve(rbm, data, "weights")
    mode = np.tile((xi > 0).astype(float), (512, 1))
    c = scale_q_curve(rbm, mean_gradient_observables(rbm, data, "weights"), mode, [1, 2], seed=0)
    assert sol.trace_cov(np.array([1]))[0] - c.trace_cov[0] > 5 * c.trace_cov_se[0]
    rbm, data = _small_binary(2)
    sol = exact.solve(rbm, data, "weights")
    shifted = mean_gradient_observables(rbm, data, "weights") + 0.05
    c = scale_q_curve(rbm, shifted, rbm.sample_exact(512, r), [1, 2], seed=0)
    assert not c.grad_norm2_low <= sol.grad_norm2 <= c.grad_norm2_high


def test_independent_total_variance_matches_exact_v():
    rbm, data = _small_binary(4)
    V, se = independent_total_variance(rbm, rbm.sample_exact(20000, np.random.default_rng(0)))
    assert abs(V - exact.solve(rbm, data, "weights").total_variance) < 4 * se


@pytest.mark.parametrize("observables", ["weights", "weights+biases"])
def test_compare_states_against_explicit_f(observables):
    """The z-scores, two-sample and paired, equal those computed from f formed row by row; one law agrees
    (most seeds), a law stuck in one mode of a bimodal model does not, and a paired drift is caught."""
    from snrbench.truth.mc_scale import compare_states
    from snrbench.core.observables import gradient_observables

    rbm, data = _small_binary(5)
    dm = mean_gradient_observables(rbm, data, observables)
    r = np.random.default_rng(9)
    v_a, v_b = rbm.sample_exact(400, r), rbm.sample_exact(300, r)
    f_a, f_b = gradient_observables(rbm, v_a, observables), gradient_observables(rbm, v_b, observables)
    u = dm - np.vstack([f_a, f_b]).mean(0)
    s_a, s_b = f_a @ u / np.linalg.norm(u), f_b @ u / np.linalg.norm(u)
    d_a, d_b = (((f - f.mean(0)) ** 2).sum(1) * len(f) / (len(f) - 1) for f in (f_a, f_b))
    welch = lambda x, y: (y.mean() - x.mean()) / np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))  # noqa: E731
    got = compare_states(rbm, dm, v_a, v_b, observables)
    assert got.z_gradient == pytest.approx(welch(s_a, s_b), rel=1e-9)
    assert got.z_variance == pytest.approx(welch(d_a, d_b), rel=1e-9)
    v_c = rbm.sample_exact(400, r)
    f_c = gradient_observables(rbm, v_c, observables)
    u = dm - np.vstack([f_a, f_c]).mean(0)
    diff_s = (f_c - f_a) @ u / np.linalg.norm(u)
    diff_d = ((f_c - f_c.mean(0)) ** 2).sum(1) * 400 / 399 - d_a
    paired = compare_states(rbm, dm, v_a, v_c, observables, paired=True)
    assert paired.z_gradient == pytest.approx(diff_s.mean() / diff_s.std(ddof=1) * 20, rel=1e-9)
    assert paired.z_variance == pytest.approx(diff_d.mean() / diff_d.std(ddof=1) * 20, rel=1e-9)
    same = [compare_states(rbm, dm, rbm.sample_exact(400, r), rbm.sample_exact(400, r), observables).agree
            for _ in range(20)]
    assert sum(same) >= 18
    with pytest.raises(ValueError, match="matched rows"):
        compare_states(rbm, dm, v_a, v_b, observables, paired=True)
    # a bimodal model: one set from the exact law, the other stuck in one mode
    xi, eta = r.integers(0, 2, 10) * 2.0 - 1, r.integers(0, 2, 4) * 2.0 - 1
    W = 1.5 * np.outer(xi, eta)
    sym = RBM(W, -W.sum(1) / 2 + 0.1, -W.sum(0) / 2, "binary")
    exact_rows = sym.sample_exact(400, r)
    stuck = np.tile((xi > 0).astype(float), (400, 1))
    stuck[r.random(stuck.shape) < 0.05] = 0.0  # a little noise inside the mode
    sym_dm = mean_gradient_observables(sym, data, observables)
    bad = compare_states(sym, sym_dm, exact_rows, stuck, observables)
    assert not bad.agree and max(abs(bad.z_variance), abs(bad.z_gradient)) > Z_MAX
    # paired drift: chains that start stuck and relax a little under Gibbs are caught
    from snrbench.core.sampler import BlockGibbs

    g = BlockGibbs(sym, 400, dtype=torch.float64, seed=1, v0=np.tile((xi > 0).astype(float), (400, 1)))
    g.run(1)
    early = g.v.numpy()
    g.run(500)  # chains cross to the other mode one by one: a drift, not a draw from one law
    assert not compare_states(sym, sym_dm, early, g.v.numpy(), observables, paired=True).agree


def test_onset_rule():
    assert onset_index([-1.0, -0.5, 0.2, 0.5, -0.1, 0.3]) == 4  # first fall below 1 after reaching it
    assert onset_index([-1.0, -2.0]) == 0  # never reaches 1: drowned from the start
    assert onset_index([0.1, 0.2]) == -1  # never falls back: no onset
    assert log10_q_train([1, 2, 4, 8, 16], [0, 1, 2, 3, 4], chains=100, k=8) == pytest.approx(5.0)
    assert log10_q_train([1, 2, 4, 8, 16], [0, 1, 2, 3, 4], chains=10, k=11) == pytest.approx(1 + 3 + np.log2(11 / 8))


def test_onset_table_scores_forecasts_in_checkpoints():
    T = [1, 2, 4, 8]
    truth_q = [-3.0, -1.0, -2.5, -2.5]  # + log10(100) at T = 8: -1, 1, -0.5, -0.5 → onset at index 2
    rows, pred = [], []
    for i, (u, q) in enumerate(zip([0, 16, 32, 64], truth_q)):
        for t in T:
            rows.append(dict(family="mnist", cell_id=f"c{i}", n_hidden=16, update=u, T=t, log10_q=q,
                             train_chains=100, train_k=8))
            pred.append(dict(predictor="good", access="sampler-only", family="mnist", cell_id=f"c{i}", T=t, log10_q=q))
            pred.append(dict(predictor="late", access="sampler-only", family="mnist", cell_id=f"c{i}", T=t,
                             log10_q=q + (2.0 if i == 2 else 0.0)))
            pred.append(dict(predictor="never", access="sampler-only", family="mnist", cell_id=f"c{i}", T=t, log10_q=0.0))
    table = onset_table(pd.DataFrame(rows), pd.DataFrame(pred)).set_index("predictor")
    assert (table.onset_index_true == 2).all() and (table.onset_update_true == 32).all()
    assert table.loc["good", "onset_error"] == 0
    assert table.loc["late", "onset_index_pred"] == 3 and table.loc["late", "onset_error"] == 1
    assert table.loc["never", "onset_index_pred"] == -1 and table.loc["never", "onset_error"] == 2  # 4 − 2
    # a checkpoint whose truth is not equilibrated ends the search: only the leading trusted ones count
    truth = pd.DataFrame(rows).assign(equilibrated=lambda d: d["update"] != 32)
    cut = onset_table(truth, pd.DataFrame(pred)).set_index("predictor")
    assert (cut.n_checkpoints == 2).all() and (cut.onset_index_true == -1).all()
    assert cut.loc["good", "onset_error"] == 0 and cut.loc["never", "onset_error"] == 0
    assert onset_table(truth.assign(equilibrated=False), pd.DataFrame(pred)).empty
    # so does an equilibrated checkpoint whose truth is not certified (two generators did not agree)
    uncertified = pd.DataFrame(rows).assign(equilibrated=True, certified=lambda d: d["update"] != 32)
    assert onset_table(uncertified, pd.DataFrame(pred)).equals(cut.reset_index()[onset_table(truth, pd.DataFrame(pred)).columns])


@pytest.fixture(scope="module")
def tiny_suite_files(tmp_path_factory):
    """A tasks folder with checkpoints of two tiny 784-pixel RBMs (m = 3 and m = 24) on stand-in data."""
    from snrbench.core.mnist_data import data_sha256

    root = tmp_path_factory.mktemp("tasks")
    data = _digits(120, 784, 7)
    data.setflags(write=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for m in (3, 24):
        cfg = TrainConfig(n_hidden=m, updates=16, batch=20, chains=20, k=2, lr=0.1, first_checkpoint=16,
                          ais_runs=32, ais_betas=200)
        train_pcd(data, cfg, root / "mnist", meta=dict(data_sha256=data_sha256(data)), progress=False)
    torch.set_num_threads(threads)
    doc = (REPO / "tasks" / "mnist.toml").read_text()
    doc = doc.replace("hidden = [16, 64]", "hidden = [3, 24]")
    doc = doc.replace("updates = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]", "updates = [0, 16]")
    doc = doc.replace("t_max = 1024", "t_max = 16").replace("n_replicates = 1024", "n_replicates = 256")
    for key, val in (("placement_rounds", 10), ("rounds", 20), ("rounds_per_rung_squared", 0.5)):
        doc = "\n".join(f"{key} = {val}" if line.startswith(f"{key} =") else line for line in doc.splitlines())
    (root / "mnist.toml").write_text(doc)
    return root, data


@pytest.fixture
def tiny_suite(tiny_suite_files, monkeypatch):
    root, data = tiny_suite_files
    monkeypatch.setattr(mnist_family, "_binarized", lambda source: data)
    monkeypatch.setenv("SNRBENCH_TASKS", str(root))
    return root, data


def test_mnist_suite_cells_and_errors(tiny_suite, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "tasks"
    shutil.copytree(tiny_suite[0], root)
    monkeypatch.setenv("SNRBENCH_TASKS", str(root))
    header, cells = load_suite("mnist")
    assert [c.label for c in cells] == ["m3-u0", "m3-u16", "m24-u0", "m24-u16"]
    spec = cells[1].spec
    assert spec["tempering"] is None and cells[3].spec["tempering"]["method"] == "trajectory"
    assert cells[3].spec["trajectory"] == [dict(update=0, checkpoint="m024-u00000",
                                                checkpoint_sha256=cells[2].spec["checkpoint_sha256"])]
    assert "trajectory" not in cells[1].spec and cells[2].spec["trajectory"] == []
    assert get_family("mnist").build_model(spec).sha256 == json.loads((root / "mnist" / "m003-u00016.json").read_text())["model_sha256"]
    # a missing checkpoint is named, with the command that makes it
    (root / "mnist" / "m024-u00016.npz").unlink()
    with pytest.raises(TaskSpecError, match="m = 24, update 16.*train-mnist"):
        load_suite("mnist")
    bad = tomllib.loads((root / "mnist.toml").read_text())
    assert bad["estimator"]["t_max"] == 16


def test_anchor_cell_must_show_one(tiny_suite):
    """m ≤ 20: exact ‖g‖² inside the Monte Carlo CI; Tr Ĉ(1) of the chains = V of independent exact samples."""
    from snrbench.jobs.groundtruth import solve_cell

    _, cells = load_suite("mnist")
    out = solve_cell("mnist", cells[1].spec_json)["mnist_truth"]
    g2 = out["grad_norm2"][0]
    assert out["grad_norm2_method"][0].startswith("exact")
    assert g2 == pytest.approx(hidden_enum.grad_norm2(get_family("mnist").build_model(cells[1].spec),
                                                      get_family("mnist").build_data(cells[1].spec)), rel=1e-12)
    assert out["grad_norm2_mc_low"][0] <= g2 <= out["grad_norm2_mc_high"][0]
    z = (out["trace_cov"][0] - out["total_variance_indep"][0]) / np.hypot(out["trace_cov_se"][0],
                                                                          out["total_variance_indep_se"][0])
    assert abs(z) < 4
    assert out["T"] == [1, 2, 4, 8, 16] and out["start"][0] == "exact"


TEMPERATURE = dict(method="temperature", rungs=4, beta_min=0.0, adapt_rounds=20, rounds=20, sweeps_per_round=2)


@pytest.mark.parametrize("method", ["trajectory", "temperature"])
def test_tempered_cell_reports_its_ladder(tiny_suite, method):
    """Both start generators: one ladder per group, its rungs, acceptance and round trips stored, and
    the verdict is the four-z check. Trajectory rungs run from the base rate (position 0) to this
    checkpoint (position 2 for the second checkpoint of the grid); temperature rungs from β = 1 to 0."""
    from snrbench.jobs.groundtruth import solve_cell

    _, cells = load_suite("mnist")
    spec = cells[3].spec
    if method == "temperature":
        spec.pop("trajectory")
        spec["tempering"] = TEMPERATURE
    out = solve_cell("mnist", json.dumps(spec, sort_keys=True))
    pt = pd.DataFrame(out["tempering"])
    assert (pt.method == method).all()
    assert pt.start.drop_duplicates().tolist() == ["training images", "base-rate samples"]
    for _, ladder in pt.groupby("start"):
        K = len(ladder)
        assert ladder.rung.tolist() == list(range(K)) and K >= 2
        if method == "temperature":
            assert K == 4 and ladder.beta.iloc[0] == 1.0 and ladder.beta.iloc[-1] == 0.0
            assert ladder.position.isna().all() and ladder.replica_tau.isna().all()
        else:
            pos = ladder.position.to_numpy()
            assert pos[0] == 0.0 and pos[-1] == 2.0 and np.all(np.diff(pos) > 0) and ladder.beta.isna().all()
            assert ladder.replica_tau.iloc[0] > 0
        acc = ladder.swap_acceptance.to_numpy()
        assert np.isnan(acc[-1]) and np.all((acc[:-1] > 0) & (acc[:-1] <= 1))
        assert ladder.sweeps.iloc[0] >= K * 20 * spec["n_replicates"] // 2
    truth = out["mnist_truth"]
    assert truth["start"][0] == f"{method} tempering" and truth["grad_norm2_method"][0] == "monte carlo"
    assert np.isnan(truth["total_variance_indep"][0])
    z = [truth[f"{k}_z_{q}"][0] for k in ("start", "drift") for q in ("variance", "gradient")]
    assert np.all(np.isfinite(z)) and truth["equilibrated"][0] == (max(np.abs(z)) <= Z_MAX)


def test_bad_tempering_tables_are_named(tiny_suite, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "tasks"
    shutil.copytree(tiny_suite[0], root)
    monkeypatch.setenv("SNRBENCH_TASKS", str(root))
    doc = (root / "mnist.toml").read_text()
    for text, message in ((doc.replace('method = "trajectory"', 'method = "annealing"'), "method must be one of"),
                          (doc.rstrip() + "\nrungs = 4\n", r"unknown key\(s\) \['rungs'\]"),
                          (doc.replace("target = 0.3", ""), "missing key 'target'")):
        (root / "mnist.toml").write_text(text)
        with pytest.raises(TaskSpecError, match=message):
            load_suite("mnist")


def test_starts_that_remember_their_start_are_flagged_and_left_out_of_scoring(tiny_suite):
    """No tempering rounds: the groups begun at training images and at base-rate samples stay apart, the
    cell is stored with equilibrated = False, and scoring drops it (truth and predictions) but keeps the rest."""
    from snrbench.jobs.groundtruth import solve_cell
    from snrbench.report.scoring import scorable

    _, cells = load_suite("mnist")
    spec = cells[3].spec
    spec["tempering"].update(rounds=0, rounds_per_rung_squared=0.0)
    out = solve_cell("mnist", json.dumps(spec, sort_keys=True))["mnist_truth"]
    assert out["equilibrated"][0] is False and max(abs(out["start_z_variance"][0]), abs(out["start_z_gradient"][0])) > Z_MAX
    anchor = solve_cell("mnist", cells[1].spec_json)["mnist_truth"]
    assert anchor["equilibrated"][0] is True and np.isnan(anchor["start_z_variance"][0])
    assert np.isnan(anchor["drift_z_gradient"][0])
    truth = pd.concat([pd.DataFrame(out), pd.DataFrame(anchor)], ignore_index=True)
    pred = truth[["family", "cell_id", "T", "log10_q"]].assign(predictor="p", access="sampler-only")
    t, p = scorable(truth, pred)
    assert set(t.cell_id) == set(p.cell_id) == {anchor["cell_id"][0]}
    assert len(t) == len(anchor["T"]) and len(p) == len(anchor["T"])
    # equilibrated but not certified (DESIGN §2.4): left out too; certified: kept
    passed = truth.assign(equilibrated=True)
    assert set(scorable(passed, pred)[1].cell_id) == {anchor["cell_id"][0]}  # a fresh tempered cell: certified False
    assert set(scorable(passed.assign(certified=True), pred)[1].cell_id) == set(truth.cell_id)
    # beside a family without the column (exact ground truth), and with no predictions at all
    exact_rows = pd.DataFrame(dict(family=["exact-rbm"] * 2, cell_id=["e", "e"], T=[1, 2], log10_q=[0.0, 0.1]))
    t, p = scorable(pd.concat([truth, exact_rows], ignore_index=True), pred.iloc[:0])
    assert set(t.cell_id) == {anchor["cell_id"][0], "e"} and len(p) == 0 and list(p.columns) == list(pred.columns)


def test_generate_resume_summary_and_plot(tiny_suite, tmp_path):
    """`snrbench groundtruth/summary/plot --family mnist` on the stand-in suite: stored, verified, skipped on
    a re-run; one summary row per checkpoint; the figure is written."""
    from snrbench.cli import main
    from snrbench.jobs.groundtruth import generate
    from snrbench.families._trained_report import true_onsets
    from snrbench.store import verify

    results = tmp_path / "results"
    out = generate("mnist", results, progress=False)
    assert out["cells"] == 4 and out["computed"] == 4 and not verify(results)
    assert generate("mnist", results, progress=False)["skipped"]
    summary = get_family("mnist").summary(results)
    assert list(summary.label) == ["m3-u0", "m3-u16", "m24-u0", "m24-u16"]
    assert (summary.pt_rungs[:2] == 0).all() and (summary.pt_rungs[2:] >= 2).all()
    assert summary.pt_method.tolist() == ["", "", "trajectory", "trajectory"]
    assert summary.V_indep.notna().tolist() == [True, True, False, False]
    onsets = true_onsets(summary)
    ok = summary.equilibrated & summary.certified  # the onset is searched over the leading trusted checkpoints
    trusted = [2, 2 if ok.iloc[2:].all() else int(ok.iloc[2])]  # m = 24: leading ones
    assert list(onsets.m) == [3, 24] and list(onsets.n_checkpoints) == trusted
    assert main(["--results", str(results), "plot", "--family", "mnist", "--out", str(tmp_path / "lb")]) == 0
    assert (tmp_path / "lb" / "q_curves_mnist.png").stat().st_size > 10_000
    assert main(["--results", str(results), "summary", "--family", "mnist"]) == 0
    check_starts(results)
    anneal_and_certify(results)
    temper_longer(results)
    intervene(results)


def intervene(results):
    """`snrbench intervene` with an onset put at m3-u16: 2 sides × 2 arms × 2 seeds resumed for the
    16 updates between the checkpoints, stored and verified; each start's log-likelihood is the
    hidden-side enumeration of its checkpoint; a second call reuses every run; one verdict per onset."""
    from unittest import mock

    from snrbench.jobs import intervention
    from snrbench.store import read_table, verify

    onsets = pd.DataFrame([dict(m=3, n_checkpoints=2, onset_index=1, onset_update=16),
                           dict(m=24, n_checkpoints=2, onset_index=-1, onset_update=-1)])
    with mock.patch.object(intervention, "true_onsets", lambda summary: onsets):
        table = intervention.intervene_family("mnist", results, factor=2, seeds=2, workers=1, progress=False)
        pieces = sorted((results / ".partial" / "intervention-mnist").iterdir())
        stamps = [p.stat().st_mtime_ns for p in pieces]
        again = intervention.intervene_family("mnist", results, factor=2, seeds=2, workers=1, progress=False)
    assert [p.stat().st_mtime_ns for p in pieces] == stamps and again.equals(table) and not verify(results)
    stored = read_table(results, intervention.intervention_path("mnist")).to_pandas()
    assert stored.equals(table) and len(stored) == 8 and (stored.updates == 16).all() and (stored.onset_update == 16).all()
    assert stored.groupby(["side", "chains_factor"]).size().to_dict() == {(s, f): 2 for s in ("after", "before") for f in (1, 2)}
    assert sorted(stored.groupby("side").label.first().items()) == [("after", "m3-u16"), ("before", "m3-u0")]
    assert set(stored.chains) == {20, 40} and np.allclose(stored.gain, stored.log_likelihood_end - stored.log_likelihood_start)
    fam, data = get_family("mnist"), None
    for label, g in stored.groupby("label"):
        cell = next(c for c in load_suite("mnist")[1] if c.label == label)
        rbm, data = fam.build_model(cell.spec), fam.build_data(cell.spec)
        exact = rbm.log_marginal_visible(data).mean() - hidden_enum.log_partition(rbm)
        assert np.allclose(g.log_likelihood_start, exact, rtol=0, atol=1e-9)
    verdicts = intervention.summary(stored)
    assert len(verdicts) == 1 and verdicts.verdict.iloc[0].startswith(("confirmed", "not confirmed"))


def temper_longer(results):
    """`snrbench temper`: a tempered cell re-run with 2× the recipe's rounds replaces its stored rows
    in place (its tempering rows record twice the rounds, its start names the factor, it waits for
    certification); every other cell's rows are untouched; a second call skips it; a factor below 2
    and a cell with exact starts are refused. A run stopped inside the cell, after its first group
    of ladders, resumes from what it kept and stores the rows of the run that was not stopped."""
    from unittest import mock

    from snrbench.cli import main
    from snrbench.families import _trained
    from snrbench.jobs.longer_tempering import temper_longer as run
    from snrbench.store import read_table, verify

    def tables(results=results):
        return (read_table(results, "ground_truth/mnist.parquet").to_pandas(),
                read_table(results, "ground_truth/mnist.tempering.parquet").to_pandas())

    truth0, pt0 = tables()
    stopped = results.parent / "stopped"
    shutil.copytree(results, stopped)
    real, calls = _trained.equilibrate_trajectory, []

    def stop_in_the_second_group(*args, **kwargs):
        calls.append(kwargs["resume"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with mock.patch.object(_trained, "equilibrate_trajectory", stop_in_the_second_group), pytest.raises(KeyboardInterrupt):
        run("mnist", stopped, ["m24-u16"], 2, progress=False)
    keep = next((stopped / ".partial" / "temper-mnist").iterdir())
    assert sorted(p.name for p in keep.iterdir()) == ["group0.npz", "placement.npz"] and tables(stopped)[0].equals(truth0)
    row = run("mnist", results, ["m24-u16"], 2, progress=False).iloc[0]
    truth, pt = tables()
    (keep / "group1.part.npz").write_bytes(b"PK\x03\x04 a truncated archive")  # a damaged piece is computed again
    with pytest.warns(UserWarning, match=r"group1\.part\.npz: kept progress unreadable \(BadZipFile"):
        run("mnist", stopped, ["m24-u16"], 2, progress=False)
    assert not keep.exists() and all(a.equals(b) for a, b in zip(tables(stopped), (truth, pt)))
    assert not verify(results) and list(truth.label.unique()) == list(truth0.label.unique())
    mine, mine0 = pt[pt.label == "m24-u16"], pt0[pt0.label == "m24-u16"]
    assert (mine.groupby("start").rounds.first() == 2 * mine0.groupby("start").rounds.first()).all()
    cell = truth[truth.label == "m24-u16"]
    assert (cell.start == "trajectory tempering, 2× rounds").all() and not cell.certified.any()
    assert row.round_trips == " + ".join(str(t) for t in mine.groupby("start", sort=False).round_trips.first())
    assert truth[truth.label != "m24-u16"].reset_index(drop=True).equals(truth0[truth0.label != "m24-u16"].reset_index(drop=True))
    assert pt[pt.label != "m24-u16"].reset_index(drop=True).equals(pt0[pt0.label != "m24-u16"].reset_index(drop=True))
    assert run("mnist", results, ["m24-u16"], 2, progress=False).note.tolist() == ["already stored"]
    with pytest.raises(ValueError, match="integer ≥ 2"):
        run("mnist", results, ["m24-u16"], 1, progress=False)
    with pytest.raises(ValueError, match="no tempered truth"):
        run("mnist", results, ["m3-u16"], 2, progress=False)
    assert main(["--results", str(results), "certify", "--family", "mnist"]) == 0


def anneal_and_certify(results):
    """`snrbench anneal` and `snrbench certify` on the stored stand-in truth: the side table holds one
    row per (cell, T) and verifies; log Z of the m = 3 checkpoints lies within max(0.1 nats, 3 SE) of
    enumeration; the exact-start cells are certified whatever annealing says, a tempered cell is
    certified only with every check passed, and a stored curve moved by 0.5 dex is refused by name. A
    second generation with more sweeps per step is stored beside the first, not mistaken for it; run
    on two processes it gives the rows one process gives."""
    from snrbench.cli import main
    from snrbench.jobs import certify, start_check
    from snrbench.jobs.annealing import anneal_family, annealing_path
    from snrbench.store import commit, read_table, verify

    rows = anneal_family("mnist", results, n_particles=128, runs=2, sweeps_per_step=2, progress=False, workers=1)
    assert sorted(rows.label.unique()) == ["m24-u0", "m24-u16", "m3-u0", "m3-u16"] and len(rows) == 4 * 5
    assert not verify(results)
    serial = results.parent / "serial"
    shutil.copytree(results, serial)
    again = anneal_family("mnist", results, hidden=[3], n_particles=128, runs=2, sweeps_per_step=4, progress=False,
                          workers=2)
    one = anneal_family("mnist", serial, hidden=[3], n_particles=128, runs=2, sweeps_per_step=4, progress=False,
                        workers=1)
    assert again.drop(columns="seconds").equals(one.drop(columns="seconds"))
    stored = read_table(results, annealing_path("mnist")).to_pandas()  # a second generation sits beside the first
    assert (again.sweeps_per_step == 4).all() and again.sweeps.max() > rows[rows.n_hidden == 3].sweeps.max()
    assert stored.groupby("label").sweeps_per_step.nunique().to_dict() == {"m24-u0": 1, "m24-u16": 1, "m3-u0": 2, "m3-u16": 2}
    table = start_check.annealing_vs_stored("mnist", results, sweeps_per_step=2)
    exact = table[table.n_hidden == 3].drop_duplicates("label")
    assert exact.log_z_ok.all(), exact[["label", "log_z", "log_z_err", "log_z_exact"]]
    verdict = certify.certify("mnist", results).set_index("label")
    assert verdict.loc[["m3-u0", "m3-u16"], "certified"].all()
    tempered = verdict.loc[["m24-u0", "m24-u16"]]
    stored = read_table(results, "ground_truth/mnist.parquet").to_pandas()
    assert stored.groupby("label").certified.first().to_dict() == verdict.certified.to_dict() and not verify(results)
    for label, row in tempered.iterrows():
        assert row.certified == (row.certification.startswith("population annealing")), row.certification
    ann = read_table(results, annealing_path("mnist")).to_pandas()
    moved = ann.assign(log10_q=ann.log10_q + 0.5, ci_low=ann.ci_low + 0.5, ci_high=ann.ci_high + 0.5, healthy=True)
    commit(results, {annealing_path("mnist"): ("annealing", moved.to_dict("list"), {})})
    refused = certify.certify("mnist", results, write=False).set_index("label")
    assert not refused.loc[["m24-u0", "m24-u16"], "certified"].any()
    assert refused.loc["m24-u0", "certification"].count("disagree") == 1
    assert refused.loc[["m3-u0", "m3-u16"], "certified"].all()
    assert main(["--results", str(results), "ladders", "--family", "mnist"]) == 0
    # attack: the side table rewritten by hand (its curve back on the stored one, every run healthy, the
    # manifest untouched) certifies nothing and un-certifies nothing: certify refuses it by name, writes nothing
    import pyarrow as pa
    import pyarrow.parquet as pq

    from snrbench.store import ResultsError
    from snrbench.store.schema import arrow_schema

    truth_file, side = results / "ground_truth" / "mnist.parquet", results / annealing_path("mnist")
    before, kept = truth_file.read_bytes(), side.read_bytes()
    forged = ann.assign(healthy=True, eff_families=1e6)
    pq.write_table(pa.Table.from_pydict(forged.to_dict("list"), schema=arrow_schema("annealing")),
                   results / annealing_path("mnist"))
    with pytest.raises(ResultsError, match=r"mnist\.annealing\.parquet: checksum mismatch"):
        certify.certify("mnist", results)
    assert truth_file.read_bytes() == before
    side.write_bytes(kept)


def check_starts(results):
    """`snrbench check-starts` on the stored stand-in truth: the m = 3 curves re-solved from PTT starts
    agree with the exact-start ones within their CIs, and temperature PT is run on the trajectory
    ladders' own chain-sweep budget (within one round of it)."""
    from snrbench.jobs import start_check

    exact = start_check.trajectory_vs_exact("mnist", results)
    assert sorted(exact.label.unique()) == ["m3-u0", "m3-u16"] and len(exact) == 2 * 5
    assert exact.inside.mean() >= 0.8 and exact.equilibrated.all()
    table = start_check.trajectory_vs_temperature("mnist", results, n_rungs=4, adapt_rounds=4).set_index("label")
    assert list(table.index) == ["m24-u0", "m24-u16"]
    one_round = 2 * 4 * 2 * 128  # both groups × 4 rungs × 2 sweeps × R/2 chains
    assert (abs(table.pt_sweeps - table.ptt_sweeps) <= one_round).all(), table[["pt_sweeps", "ptt_sweeps"]]
    assert (table.ptt_trips_per_1000 >= 0).all() and (table.pt_rungs == 4).all()
    assert (table.max_abs_delta >= table.mean_delta.abs()).all() and (table.max_abs_delta < 0.5).all()
    one = start_check.trajectory_vs_temperature("mnist", results, n_rungs=4, adapt_rounds=4, labels=["m24-u16"])
    assert one.label.tolist() == ["m24-u16"]
    assert one.drop(columns="pt_seconds").equals(table.loc[["m24-u16"]].reset_index().drop(columns="pt_seconds"))
    curves = one.attrs["curves"]  # both curves per T; the largest gap is the table's max_abs_delta
    assert len(curves) == 5 and (curves.pt_low <= curves.pt).all() and (curves.pt <= curves.pt_high).all()
    assert np.isclose(np.max(np.abs(curves.pt - curves.ptt)), one.max_abs_delta.iloc[0])
    with pytest.raises(ValueError, match="no cell m24-u99 in the suite; cells: m3-u0, m3-u16, m24-u0, m24-u16"):
        start_check.trajectory_vs_exact("mnist", results, labels=["m24-u99"])


def test_mnist_families_are_not_exact():
    """White-box entries and the ladder run only on exact families; the mnist ones have Monte Carlo
    truth, offer the model and sampler-only tiers, and score the plateau onset."""
    for name in ("mnist", "mnist-large", "mnist-plateau", "mnist-plateau-pcd16", "mnist-plateau-pcd32"):
        fam = get_family(name)
        assert fam.tiers == ("model", "sampler-only") and not fam.ladder and fam.onset and fam.method == "monte-carlo"
    for name in ("exact-rbm", "planted", "ising"):
        fam = get_family(name)
        assert "white-box" in fam.tiers and fam.ladder and not fam.onset and fam.method == "exact"


@pytest.mark.parametrize("observables", ["weights", "weights+biases"])
def test_large_cells_show_entries_a_scaled_subset_of_observables(observables):
    """n·m > MAX_OBSERVABLES: entries see a seeded random subset scaled so that sums of squares are
    unbiased; the sampler's, the data's and gradient_observables' views agree with the full f."""
    from snrbench.core.observables import gradient_observables
    from snrbench.predict import MAX_OBSERVABLES, Problem

    r = np.random.default_rng(0)
    n, m = 48, 16
    rbm = RBM(r.normal(0, 0.1, (n, m)), r.normal(0, 0.5, n), r.normal(0, 0.5, m), "binary")
    data = (r.random((200, n)) < 0.3).astype(float)
    p = Problem(rbm, data, observables=observables, seed=7)
    idx, scale = p.observable_subset
    n_obs = n * m + (n + m if observables == "weights+biases" else 0)
    assert len(idx) == MAX_OBSERVABLES == len(set(idx)) and scale == pytest.approx(np.sqrt(n_obs / MAX_OBSERVABLES))
    full = gradient_observables(rbm, data, observables)
    np.testing.assert_allclose(p.gradient_observables(data), full[:, idx] * scale, rtol=1e-12)
    np.testing.assert_allclose(p.data_mean, full.mean(0)[idx] * scale, rtol=1e-12)
    s = p.sampler(32, dtype=torch.float64)
    s.run(3)
    f_full = gradient_observables(rbm, s.v.numpy(), observables)
    np.testing.assert_allclose(s.observables().numpy(), f_full[:, idx] * scale, rtol=1e-12)
    # unbiased: over many cells (seeds) the scaled subset's Σ mean² matches the full one
    target = (full.mean(0) ** 2).sum()
    est = [(Problem(rbm, data, observables=observables, seed=k).data_mean ** 2).sum() for k in range(200)]
    assert abs(np.mean(est) - target) < 4 * np.std(est) / np.sqrt(len(est))
    # small cells: no subset, the full observables
    small = Problem(RBM(rbm.W[:10, :4], None, None, "binary"), data[:, :10], observables=observables)
    assert small.observable_subset is None and small.data_mean.shape == (40 + (14 if observables != "weights" else 0),)


def test_leaderboard_onset_section(tmp_path):
    """onset.parquet (written by the scoring for mnist families) becomes one table per family."""
    from snrbench import store
    from snrbench.report.leaderboard import _onset_tables

    assert _onset_tables(tmp_path) == []
    rows = dict(family=["mnist"] * 2, n_hidden=[16, 16], predictor=["a", "b"], access=["sampler-only"] * 2,
                n_checkpoints=[12, 12], onset_index_true=[-1, -1], onset_update_true=[-1, -1],
                onset_index_pred=[3, -1], onset_update_pred=[64, -1], onset_error=[9, 0])
    store.write_table(tmp_path, "onset.parquet", "onset", {k: np.array(v) for k, v in rows.items()})
    [(family, (headers, body))] = _onset_tables(tmp_path)
    assert family == "mnist" and headers[4] == "true onset (update)"
    text = [[getattr(c, "text", c) for c in row] for row in body]
    assert text == [["16", "12", "b", "sampler-only", "none", "none", "0"], ["16", "12", "a", "sampler-only", "none", "64", "9"]]
