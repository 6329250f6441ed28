"""Scoring and the leaderboard on a small fixture tree: exact ground truth of the 4-cell fixture
suite plus two hand-made entries whose scores are known exactly.

- ``truth-copy`` (white-box): the ground-truth curves themselves → err = 0 everywhere, 4/4 tracked.
- ``shifted`` (sampler-only): truth + 0.5 dex at every T, ‖g‖² = 2 × truth → err = 0.5 > log10 2
  (0/4 tracked) and grad_norm2_err = log10 2.
"""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from snrbench.jobs import groundtruth

from snrbench.report import leaderboard

from snrbench.report import scoring

from snrbench import store

FIXTURE = Path(__file__).parent / "data" / "exact-rbm.toml"
FAMILY = "exact-rbm"
SHIFT = 0.5
EXACT = dict(rel=1e-9, abs=1e-12)  # scores store 10 significant digits (scoring.SIGNIFICANT_DIGITS)


def prediction(truth: pd.DataFrame, name: str, access: str, shift=0.0, g_factor: float | None = None,
               sweeps: int = 0, budget: int = 2**16 * 64) -> dict:
    """Columns of a ``predictions`` table: the truth's curves shifted by ``shift`` dex (a number, or
    one per row)."""
    n = len(truth)
    return dict(
        suite=list(truth.suite), family=list(truth.family), cell_id=list(truth.cell_id), label=list(truth.label),
        predictor=[name] * n, access=[access] * n, budget=np.full(n, budget), T=truth["T"].to_numpy(),
        log10_q=truth.log10_q.to_numpy() + shift,
        tau=np.full(n, np.nan),
        grad_norm2=truth.grad_norm2.to_numpy() * g_factor if g_factor else np.full(n, np.nan),
        sweeps=np.full(n, sweeps), seconds=np.full(n, 0.25), cpu_seconds=np.full(n, 0.2), source=["tests"] * n, source_sha256=["0" * 64] * n,
    )


def truth_of(root) -> pd.DataFrame:
    return store.read_table(root, groundtruth.ground_truth_paths(FAMILY)[0]).to_pandas()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("base") / "results"
    groundtruth.generate(FAMILY, root, workers=1, progress=False, suite_file=FIXTURE)
    truth = truth_of(root)
    store.write_table(root, "predictions/truth-copy.parquet", "predictions",
                      prediction(truth, "truth-copy", "white-box"))
    store.write_table(root, "predictions/shifted.parquet", "predictions",
                      prediction(truth, "shifted", "sampler-only", shift=SHIFT, g_factor=2.0, sweeps=2**16 * 64))
    scoring.score(root)
    return root


@pytest.fixture
def results(base, tmp_path):
    """A private copy of the fixture tree (tests may damage it)."""
    return Path(shutil.copytree(base, tmp_path / "results"))


@pytest.fixture
def scores(base):
    return store.read_table(base, scoring.SCORES_REL).to_pandas()


def test_exact_entries_score_as_constructed(scores):
    copy, shifted = scores[scores.predictor == "truth-copy"], scores[scores.predictor == "shifted"]
    assert len(copy) == len(shifted) == 4 and set(copy.access) == {"white-box"}
    assert (copy.max_err == 0).all() and (copy.median_err == 0).all() and copy.tracked.all()
    assert (copy.timing_ratio == 1).all() and copy.grad_norm2_err.isna().all()
    assert np.allclose(copy.log10_q_pred_ref, copy.log10_q_true_ref, rtol=0, atol=0)
    assert shifted.max_err.to_numpy() == pytest.approx(np.full(4, SHIFT), **EXACT)
    assert shifted.median_err.to_numpy() == pytest.approx(np.full(4, SHIFT), **EXACT)
    assert not shifted.tracked.any()
    assert shifted.grad_norm2_err.to_numpy() == pytest.approx(np.full(4, np.log10(2)), **EXACT)
    assert (shifted.sweeps == 2**16 * 64).all() and (shifted.seconds == 0.25).all()
    keys = list(zip(scores.family, scores.access, scores.predictor, scores.label))
    assert keys == sorted(keys) and keys[0][1] == "sampler-only"


def test_reference_T_is_on_the_grid_and_read_there(base, scores):
    truth = truth_of(base)
    at_ref = truth[truth["T"] == scoring.T_REF].set_index("cell_id").log10_q
    stored = scores.set_index("cell_id").log10_q_true_ref.groupby(level=0).first()
    assert stored.to_dict() == {c: scoring.stable_floats(np.array([v]))[0] for c, v in at_ref.items()}


@pytest.mark.parametrize("extra, tracked", [(0.0, True), (1e-9, False)])
def test_tracked_boundary_is_a_factor_two(base, extra, tracked):
    truth = truth_of(base)
    pred = pd.DataFrame(prediction(truth, "x2", "white-box", shift=scoring.TRACK_TOL + extra))
    out = scoring.score_cells(truth, pred)
    assert len(out) == 4 and (out.tracked == tracked).all()


def _line(cell, log10_q):
    T = 2 ** np.arange(17)
    return pd.DataFrame(dict(suite="v1", family="toy", cell_id=cell, label=f"cell-{cell}", T=T,
                             log10_q=log10_q(np.log10(T)), grad_norm2=1.0))


def test_timing_ratio_by_hand():
    """Q_true(T) = T/100 reaches 1 at T* = 100 exactly (a straight line in log–log), Q = T/1000 at 1000,
    Q = T at T = 1; a flat Q = 0.1 never reaches 1 (ratio inf; 1 when the truth does not either)."""
    truth = pd.concat([_line("a", lambda lT: lT - 2), _line("b", lambda lT: 0 * lT - 1)], ignore_index=True)
    curves = {("late", "a"): lambda lT: lT - 3, ("early", "a"): lambda lT: lT,
              ("never", "a"): lambda lT: 0 * lT - 1, ("never", "b"): lambda lT: 0 * lT - 1}
    pred = pd.concat([_line(cell, f).assign(predictor=name, access="white-box", budget=2**22, sweeps=0, seconds=0.0, cpu_seconds=0.0,
                                            grad_norm2=np.nan)
                      for (name, cell), f in curves.items()], ignore_index=True)
    out = scoring.score_cells(truth, pred).set_index(["predictor", "cell_id"])
    assert out.loc[("late", "a"), "t_star_true"] == pytest.approx(100, rel=1e-12)
    assert out.loc[("late", "a"), "t_star_pred"] == pytest.approx(1000, rel=1e-12)
    assert out.loc[("late", "a"), "timing_ratio"] == pytest.approx(10, rel=1e-12)
    assert out.loc[("early", "a"), "timing_ratio"] == pytest.approx(0.01, rel=1e-12)
    assert out.loc[("never", "a"), "timing_ratio"] == np.inf
    assert out.loc[("never", "b"), "timing_ratio"] == 1.0
    summary = scoring.family_summary(out.reset_index()).set_index("predictor")
    assert summary.loc["late", "worst_timing_factor"] == pytest.approx(10, rel=1e-12)
    assert summary.loc["early", "worst_timing_factor"] == pytest.approx(100, rel=1e-12)
    assert summary.loc["never", "worst_timing_factor"] == np.inf
    assert summary.loc["never", "n_cells"] == 2 and np.isnan(summary.loc["never", "spearman"])  # < 3 cells


def test_family_and_overall_summaries(scores):
    fam = scoring.family_summary(scores).set_index("predictor")
    assert list(fam.index) == ["shifted", "truth-copy"]  # sorted by (family, access, predictor)
    assert fam.loc["truth-copy", ["n_cells", "tracked"]].tolist() == [4, 4]
    assert fam.loc["shifted", ["n_cells", "tracked"]].tolist() == [4, 0]
    assert fam.loc["shifted", "median_max_err"] == pytest.approx(SHIFT, **EXACT)
    assert fam.loc["shifted", "median_grad_norm2_err"] == pytest.approx(np.log10(2), **EXACT)
    assert np.isnan(fam.loc["truth-copy", "median_grad_norm2_err"])
    assert fam.loc["shifted", "median_sweeps"] == 2**16 * 64
    assert (fam.spearman == 1.0).all()  # a shift or a copy keeps the ranking of the cells
    overall = scoring.overall_summary(scores).set_index("predictor")
    assert overall.loc["truth-copy", ["n_families", "n_cells", "tracked"]].tolist() == [1, 4, 4]
    assert overall.loc["shifted", "spearman"] == 1.0


def test_spearman_of_constant_prediction_is_nan_without_warning(scores):
    flat = scores.assign(log10_q_pred_ref=0.0)  # spearmanr would warn (an error under pytest's settings)
    assert scoring.family_summary(flat).spearman.isna().all()


def test_incomplete_or_unknown_prediction_is_refused(base):
    truth = truth_of(base)
    pred = pd.DataFrame(prediction(truth, "holey", "sampler-only"))
    victim = pred.label.iloc[0]
    holey = pred.drop(index=pred.index[(pred.label == victim) & (pred["T"] == 64)])
    with pytest.raises(ValueError, match=rf"'holey'.*{victim}.*missing T=\[64\]"):
        scoring.score_cells(truth, holey)
    stranger = pred.assign(cell_id=pred.cell_id.where(pred.label != victim, "0123456789abcdef"))
    with pytest.raises(ValueError, match="0123456789abcdef.*not in the ground truth"):
        scoring.score_cells(truth, stranger)


def test_score_refuses_an_incomplete_prediction_file(results):
    truth = truth_of(results)
    data = prediction(truth[truth["T"] != 1024], "holey", "white-box")
    store.write_table(results, "predictions/holey.parquet", "predictions", data)
    with pytest.raises(ValueError, match=r"'holey'.*missing T=\[1024\]"):
        scoring.score(results)


def test_score_names_missing_ground_truth_and_its_command(results):
    (results / groundtruth.ground_truth_paths(FAMILY)[0]).unlink()
    with pytest.raises(store.ResultsError, match="snrbench groundtruth --family exact-rbm"):
        scoring.score(results)


def test_build_is_byte_identical_and_self_contained(results, tmp_path):
    a = leaderboard.build(results, tmp_path / "a")
    b = leaderboard.build(results, tmp_path / "b")
    names = [p.name for p in a]
    assert names == [p.name for p in b] == [f"curves_{FAMILY}.png", f"heatmap_{FAMILY}.png", "frontier.png",
                                            "differences_white-box.png", "differences_sampler-only.png", "scores.csv",
                                            "rankings.csv",
                                            f"{FAMILY}.truth.csv", "README.md", "index.html"]
    left = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert left == sorted(str(p.relative_to(tmp_path / "a")) for p in a)  # no temporary files left
    csv = pd.read_csv(tmp_path / "a" / "data" / "scores.csv")
    assert len(csv) == len(store.read_table(results, scoring.SCORES_REL)) and "max_err" in csv
    for pa_, pb in zip(a, b):
        assert pa_.read_bytes() == pb.read_bytes(), pa_.name
    assert a[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme, page = a[-2].read_text(), a[-1].read_text()
    assert "http" not in page and 'src="curves_exact-rbm.png"' in page and "<style>" in page
    for text in (readme, page):
        assert str(tmp_path) not in text and "/" + "tmp" not in text
    overall = leaderboard.markdown_overall(results, figures_dir="")
    assert overall in readme
    rows = [line for line in overall.splitlines() if line.startswith("| truth") or line.startswith("| shifted")]
    # one ranking per tier: entry, rank, rank interval, tie group, mean tracked fraction with its interval,
    # the cost beside it (median chain-sweeps, seconds), tracked per family, Borda, median max err
    assert rows[0].startswith("| truth-copy | 1 | 1–1 | 1 | 1.000 [1.000, 1.000] | 0 | 0.25 | 4/4 | 0 | 0 |")
    assert rows[1].startswith("| shifted | 1 | 1–1 | 1 | 0.000 [0.000, 0.000] | 4,194,304 | 0.25 | 0/4 | 0 | 0.5 |")
    assert overall.index("**white-box**") < overall.index("| truth-copy") < overall.index("**sampler-only**")
    assert "### white-box" in readme and "### sampler-only" in readme and "(heatmap_exact-rbm.png)" in readme


def test_damaged_scores_are_refused(results, tmp_path):
    path = results / scoring.SCORES_REL
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(store.ResultsError, match="checksum"):
        leaderboard.build(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_scores_older_than_predictions_are_refused(results, tmp_path):
    truth = truth_of(results)
    store.write_table(results, "predictions/shifted.parquet", "predictions",
                      prediction(truth, "shifted", "sampler-only", shift=-SHIFT))
    with pytest.raises(store.ResultsError, match="out of date.*predictions/shifted.parquet"):
        leaderboard.build(results, tmp_path / "out")
    scoring.score(results)
    assert "| shifted | 1 | 1–1 | 1 | 0.000 [0.000, 0.000] | 0 | 0.25 | 0/4 | 0 | 0.5 |" in leaderboard.markdown_overall(results)


def test_budget_ladder_summary_by_hand(base, tmp_path):
    """An entry tracking 0, 2, 4, 4 of the 4 cells at the four budgets: fractions 0, ½, 1, 1; the
    area over log2 budget by the trapezoid rule is (¼·2 + ¾·2 + 1·2)/6 = 2/3; 90% is first reached
    at 2^14·64. White-box entries (one budget) get neither."""
    from snrbench.predict import BUDGETS

    root = tmp_path / "results"
    shutil.copytree(base, root)
    truth = truth_of(root)
    cells = sorted(set(truth.cell_id))
    parts = []
    for budget, n_off in zip(BUDGETS, (4, 2, 0, 0)):
        shift = np.where(truth.cell_id.isin(cells[:n_off]), SHIFT, 0.0)
        parts.append(prediction(truth, "ladder", "sampler-only", shift=shift, sweeps=budget, budget=budget))
    columns = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    store.write_table(root, "predictions/ladder.parquet", "predictions", columns)
    scoring.score(root)
    scores = store.read_table(root, scoring.SCORES_REL).to_pandas()
    s = scoring.budget_summary(scores)
    mine = s[s.predictor == "ladder"].sort_values("budget")
    assert list(mine.budget) == list(BUDGETS) and list(mine.tracked) == [0, 2, 4, 4]
    assert list(mine.fraction) == [0.0, 0.5, 1.0, 1.0]
    assert mine.area.iloc[0] == pytest.approx(2 / 3, rel=1e-12) and mine.budget_90.iloc[0] == 2**14 * 64
    wb = s[s.predictor == "truth-copy"]
    assert len(wb) == 1 and np.isnan(wb.area.iloc[0]) and np.isnan(wb.budget_90.iloc[0])
    assert scoring.frontier_area([1, 4], [0.2, 0.6]) == pytest.approx(0.4)
    # the per-tier tables stay at the full budget: the ladder entry is 4/4 there
    fam = scoring.family_summary(scores)
    assert int(fam[fam.predictor == "ladder"].tracked.iloc[0]) == 4
    out = leaderboard.build(root, tmp_path / "lb")
    assert (tmp_path / "lb" / "frontier.png") in out
    page = (tmp_path / "lb" / "README.md").read_text()
    assert "| ladder | sampler-only | 0/4 | 2/4 | 4/4 | 4/4 | 0.67 | 2^14·64 |" in page
