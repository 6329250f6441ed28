"""The goodhart family: its suite, its stored students against their recipe, and its exact truth.

Independent routes: the stored students are retrained from their recipe (the λ = 0 fit; a rewarded
fit is the slow sibling), and a cell's ground truth from the Arb spectral solver is compared with
the differentiable float64 route of truth.differentiable.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from snrbench.core.spectral import T_GRID
from snrbench.families import Cell, TaskSpecError, get, load_suite
from snrbench.families.goodhart import REWARDED, train
from snrbench.truth import differentiable as dq
from snrbench.truth import forecasts as fc

REPO = Path(__file__).resolve().parents[1]
FAMILY = get("goodhart")
HEADER, CELLS = load_suite("goodhart")
SPECS = {c.label: c.spec for c in CELLS}


def test_suite_cells_carry_dose_and_rewarded():
    assert HEADER["family"] == "goodhart" and len(CELLS) >= 48
    assert len({c.cell_id for c in CELLS}) == len(CELLS)
    arms = {(s["rewarded"], s["dose"]) for s in SPECS.values()}
    assert {r for r, _ in arms} == set(REWARDED) | {"none"}
    assert all((d == 0) == (r == "none") for r, d in arms)
    for s in SPECS.values():
        assert 10 <= s["n_visible"] <= 12 and 4 <= s["n_hidden"] <= 6 and s["seed"] in (0, 1, 2)
    assert not FAMILY.default and FAMILY.tiers == ("white-box", "sampler-only")


def test_baseline_student_retrains_to_its_stored_parameters():
    """The λ = 0 fit of seed 0, retrained from its spec, gives the stored parameters."""
    spec = SPECS["n12m6-none-d0-s0"]
    W, a, b = train(spec, FAMILY.build_data(spec))
    rbm = FAMILY.build_model(spec)
    for got, want in ((W, rbm.W), (a, rbm.a), (b, rbm.b)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_rewarded_student_retrains_to_its_stored_parameters():
    spec = SPECS["n12m6-true-d1-s0"]
    W, a, b = train(spec, FAMILY.build_data(spec))
    np.testing.assert_allclose(W, FAMILY.build_model(spec).W, rtol=0, atol=1e-10)


def _values(spec):
    rbm, data = FAMILY.build_model(spec), FAMILY.build_data(spec)
    with torch.no_grad():
        T = [spec["reward_T"]]
        ll = float(dq.log_likelihood(rbm.W, rbm.a, rbm.b, data))
        rewarded = {name: float(f(rbm.W, rbm.a, rbm.b, data, T)[0]) for name, f in fc.FORECASTS.items()}
    return ll, rewarded


def test_dose_raises_the_reward_and_lowers_the_likelihood():
    """On seed 0, the strongest dose of each quantity beats the λ = 0 fit on that quantity and loses
    log-likelihood to it: the training really optimised what the spec says."""
    ll0, r0 = _values(SPECS["n12m6-none-d0-s0"])
    top = max(s["dose"] for s in SPECS.values())
    for name in REWARDED:
        ll, r = _values(SPECS[f"n12m6-{name}-d{top:g}-s0"])
        assert r[name] > r0[name] + 1.0 and ll < ll0 - 0.1, name


def test_truth_of_a_cell_matches_the_differentiable_route():
    spec = SPECS["n12m6-magnetization-d0.1-s1"]
    cols = FAMILY.solve_cell(Cell.from_spec(spec))["ground_truth"]
    rbm, data = FAMILY.build_model(spec), FAMILY.build_data(spec)
    got = dq.log10_q(rbm.W, rbm.a, rbm.b, data, T_GRID).numpy()
    assert np.abs(np.array(cols["log10_q"]) - got).max() < 1e-9
    assert json.loads(cols["spec_json"][0])["rewarded"] == "magnetization"


@pytest.fixture
def tasks_copy(tmp_path, monkeypatch):
    shutil.copy(REPO / "tasks" / "goodhart.toml", tmp_path / "goodhart.toml")
    shutil.copytree(REPO / "tasks" / "goodhart", tmp_path / "goodhart")
    monkeypatch.setenv("SNRBENCH_TASKS", str(tmp_path))
    return tmp_path


def test_stale_or_missing_parameters_are_refused(tasks_copy):
    toml = tasks_copy / "goodhart.toml"
    toml.write_text(toml.read_text().replace("lr = 0.05", "lr = 0.04"))
    with pytest.raises(TaskSpecError, match="another recipe"):
        load_suite("goodhart")
    toml.write_text((REPO / "tasks" / "goodhart.toml").read_text())
    (tasks_copy / "goodhart" / "n12m6-none-d0-s1.npz").unlink()
    with pytest.raises(TaskSpecError, match="python -m snrbench.families.goodhart"):
        load_suite("goodhart")


def test_replaced_parameters_are_refused(tasks_copy):
    spec = load_suite("goodhart")[1][0].spec
    path = tasks_copy / "goodhart" / f"{FAMILY.label(spec)}.npz"
    with np.load(path) as z:
        arrays = dict(z)
    arrays["W"] = arrays["W"] + 1e-9
    np.savez(path, **arrays)
    with pytest.raises(TaskSpecError, match="hash differs"):
        FAMILY.build_model(spec)


@pytest.mark.parametrize("old,new,match", [
    ('"multimode", "true"]', '"multimode", "truth"]', "unknown rewarded 'truth'"),
    ("reward_T = 64", "reward_T = 60", "power of two"),
    ("doses = [0.01,", "doses = [0.0,", "doses"),
])
def test_spec_errors(tasks_copy, old, new, match):
    toml = tasks_copy / "goodhart.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))
    with pytest.raises(TaskSpecError, match=match):
        load_suite("goodhart")


def test_independent_loglik_is_the_zero_coupling_rbm():
    """The W = 0 reference of the Goodhart report against the RBM log-likelihood with a = artanh(mean)."""
    from snrbench.report.goodhart import independent_loglik

    data = FAMILY.build_data(SPECS["n12m6-none-d0-s0"])
    a = np.arctanh(np.clip(data.mean(0), -1 + 1e-12, 1 - 1e-12))
    ref = float(dq.log_likelihood(np.zeros((12, 2)), a, np.zeros(2), data))
    assert independent_loglik(data) == pytest.approx(ref, rel=1e-10)


def _ladder(rise, loglik):
    """A synthetic dose ladder: one quantity, two seeds, doses 0 and 1."""
    import pandas as pd

    rows = []
    for seed in (0, 1):
        rows.append(dict(seed=seed, rewarded="none", dose=0.0, forecast_true=-6.0, rewarded_value=np.nan,
                         true_log10_q=-6.0, log10_grad_norm2=-8.0, log10_trace_cov=-2.0, loglik=-2.0,
                         loglik_independent=-8.0))
        rows.append(dict(seed=seed, rewarded="true", dose=1.0, forecast_true=-6.0 + rise, rewarded_value=-6.0 + rise,
                         true_log10_q=-6.0 + rise, log10_grad_norm2=-8.0 + rise, log10_trace_cov=-2.0,
                         loglik=loglik, loglik_independent=-8.0))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rise,loglik,held", [(9.5, -9.0, True), (8.5, -9.0, False), (9.5, -3.0, False)])
def test_verdict_needs_both_the_soar_and_the_lost_likelihood(rise, loglik, held):
    from snrbench.report.goodhart import verdict

    ok, sentence = verdict(_ladder(rise, loglik))
    assert ok is held and f"×10^{rise:.1f}" in sentence


def test_tracked_table_counts_cells_per_arm():
    import pandas as pd

    from snrbench.report.goodhart import tracked_table

    truth = pd.DataFrame(dict(cell_id=["a", "b", "c"], spec_json=[json.dumps(dict(dose=0.0, rewarded="none")),
                                                                   json.dumps(dict(dose=1.0, rewarded="true")),
                                                                   json.dumps(dict(dose=10.0, rewarded="true"))]))
    scores = pd.DataFrame(dict(family="goodhart", cell_id=["a", "b", "c", "a"], predictor="x",
                               access="white-box", budget=[4, 4, 4, 2], tracked=[True, True, False, False]))
    table = tracked_table(scores, truth)
    assert table.loc[("x", "white-box"), "λ = 0"] == "1/1" and table.loc[("x", "white-box"), "true"] == "1/2"


def test_goodhart_cells_stay_out_of_the_pooled_rankings():
    """The track is scored and shown on its own: its rows never reach a tier ranking or the pooled budget
    ladder (its students were optimised against some entries), while every other family's rows do."""
    import pandas as pd

    from snrbench.report.leaderboard import _markdown_overall, _ranked_rows

    assert FAMILY.ranked is False and get("exact-rbm").ranked is True
    scores = pd.DataFrame(dict(family=["exact-rbm", "goodhart", "not-registered"], cell_id=["a", "b", "c"]))
    assert list(_ranked_rows(scores).family) == ["exact-rbm", "not-registered"]
    fixture = REPO / "tests" / "data" / "fixture" / "results" / "scores.parquet"
    base = pd.read_parquet(fixture)
    mixed = pd.concat([base, base.assign(family="goodhart", tracked=~base.tracked)], ignore_index=True)
    assert _markdown_overall(mixed) == _markdown_overall(base)


def test_committed_page_shows_the_goodhart_track_of_the_stored_scores():
    """The leaderboard's Goodhart section (README and page) carries the tracked table of the stored
    scores, every built-in entry in every tier the family offers, and the verdict sentence."""
    import pandas as pd

    from snrbench.report.goodhart import tracked_table

    scores = pd.read_parquet(REPO / "results" / "scores.parquet")
    truth = pd.read_parquet(REPO / "results" / "ground_truth" / "goodhart.parquet")
    table = tracked_table(scores, truth)
    assert {a for _, a in table.index} == set(FAMILY.tiers) and len(table) >= 9
    readme = (REPO / "leaderboard" / "README.md").read_text()
    section = readme[readme.index("### Goodhart track"):]
    for (name, access), row in table.iterrows():
        assert f"| {name} | {access} | " + " | ".join(row) + " |" in section, (name, access)
    assert section.split("\n\n")[1].startswith(("Reproduced for", "Not reproduced"))
    page = (REPO / "leaderboard" / "index.html").read_text()
    assert 'id="goodhart-track"' in page and 'src="goodhart.png"' in page
