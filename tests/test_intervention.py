"""The intervention that confirms a plateau onset: the benefit of more chains and its verdict, and the
resumed training it rests on."""
import numpy as np
import pytest
import torch
from scipy import stats

from snrbench.core.model import RBM
from snrbench.truth import hidden_enum
from snrbench.truth.intervention import benefit, verdict
from snrbench.truth.train import TrainConfig, resume_pcd

pytestmark = pytest.mark.usefixtures("one_thread")


def test_benefit_is_the_welch_difference_of_the_arms():
    more, recipe = np.array([3.0, 3.4, 2.9, 3.3]), np.array([2.0, 2.5, 2.2, 1.9])
    b, se, p, df = benefit(more, recipe)
    assert b == pytest.approx(more.mean() - recipe.mean())
    assert se == pytest.approx(np.sqrt(more.var(ddof=1) / 4 + recipe.var(ddof=1) / 4))
    t = b / se  # Welch's statistic: its one-sided p with the Welch–Satterthwaite df is scipy's own test's
    assert p == pytest.approx(stats.ttest_ind(more, recipe, equal_var=False, alternative="greater").pvalue)
    assert p == pytest.approx(stats.t.sf(t, df)) and 3 <= df <= 6 and p < 0.01
    with pytest.raises(ValueError, match="at least 2 seeds"):
        benefit([1.0], [0.0, 1.0])


def test_the_difference_test_holds_its_level_with_four_seeds_per_arm():
    """Simulated onsets where more chains help equally on both sides: the difference test, a t with the
    Welch–Satterthwaite df, confirms at most about its 5% (a normal z on four seeds per arm did 6.5–8%)."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(4000):
        g = rng.standard_normal((4, 4)) * np.array([1.0, 3.0, 1.0, 3.0])[:, None]  # unequal spreads
        before, after = benefit(g[1] + 1.0, g[0]), benefit(g[3] + 1.0, g[2])
        hits += verdict(before, (after[0], after[1], 0.0, after[3]))[0]  # the first test passed: the second alone
    assert hits / 4000 < 0.058


def test_verdict_needs_help_after_the_onset_and_more_than_before():
    small = (0.01, 0.02, 0.3, 5.0)
    assert verdict(small, (0.5, 0.05, 1e-4, 5.0))[0]  # helps after, not before: a sampler-limited plateau
    ok, why = verdict((0.5, 0.05, 1e-4, 5.0), (0.5, 0.05, 1e-4, 5.0))  # as much before: chains were never the limit
    assert not ok and "do not help more after the onset than before" in why
    ok, why = verdict(small, (0.02, 0.05, 0.35, 5.0))
    assert not ok and why.startswith("not confirmed (more chains do not help after the onset;")
    assert "+0.020 ± 0.050 nats/image after the onset" in why


def _toy(seed=0, n=12, m=3):
    rng = np.random.default_rng(seed)
    teacher = RBM(rng.normal(0, 1.5, (n, m)), rng.normal(0, 0.5, n), rng.normal(0, 0.5, m), "binary")
    data = hidden_enum.sample_visible(teacher, 400, rng)
    student = RBM(rng.normal(0, 0.01, (n, m)), np.zeros(n), np.zeros(m), "binary")
    return student, data


def _exact_ll(rbm, data):
    return float(rbm.log_marginal_visible(data).mean() - hidden_enum.log_partition(rbm))


def test_resume_pcd_goes_on_with_the_recipe_and_more_chains_cut_the_noise():
    """No update, or a zero rate, leaves the model as it was; a seed fixes the run; with 10× the chains the
    spread over seeds of the model after a few updates shrinks (the chains' noise is what more chains cut),
    and training from a small-weight start gains log-likelihood."""
    rbm, data = _toy()
    cfg = TrainConfig(n_hidden=3, lr=0.1, batch=50, chains=2, k=1)
    same = resume_pcd(rbm, data, cfg, 0, 0, 2, seed=1)
    assert np.array_equal(same.W, rbm.W.astype(np.float32).astype(np.float64))
    frozen = resume_pcd(rbm, data, TrainConfig(n_hidden=3, lr=0.0, batch=50, chains=2, k=1), 0, 5, 2, seed=1)
    assert np.array_equal(frozen.W, same.W)
    one, again = (resume_pcd(rbm, data, cfg, 0, 5, 2, seed=3) for _ in range(2))
    assert np.array_equal(one.W, again.W) and not np.array_equal(one.W, same.W)

    def spread(chains):
        Ws = np.stack([resume_pcd(rbm, data, cfg, 0, 5, chains, seed=s).W for s in range(12)])
        return Ws.std(0).mean()

    assert spread(20) < 0.6 * spread(2)
    trained = resume_pcd(rbm, data, cfg, 0, 200, 20, seed=0)
    assert _exact_ll(trained, data) > _exact_ll(rbm, data) + 0.5


def test_the_rate_schedule_goes_on_from_the_checkpoint():
    """With a 1/t rate the resumed updates use the rate of update start + 1, …: resuming at a late
    update moves the model less than resuming the same model at update 0."""
    rbm, data = _toy(1)
    cfg = TrainConfig(n_hidden=3, lr=0.1, lr_decay=4, batch=50, chains=10, k=1)
    early = resume_pcd(rbm, data, cfg, 0, 3, 10, seed=2)
    late = resume_pcd(rbm, data, cfg, 400, 3, 10, seed=2)
    step_early, step_late = np.abs(early.W - rbm.W).sum(), np.abs(late.W - rbm.W).sum()
    assert step_late < step_early / 20  # lr at u = 401 is 1/101 of the first, vs 1/1…1/1.5 early


def _runs(after_more=2.4):
    rows, rng = [], np.random.default_rng(0)
    for side, label, update in (("before", "m16-u1024", 1024), ("after", "m16-u2048", 2048)):
        for factor, centre in ((1, 6.4 if side == "before" else 0.9), (10, 6.5 if side == "before" else after_more)):
            for seed in range(4):
                g = centre + 0.1 * rng.standard_normal()
                rows.append(dict(suite="v1", family="mnist-plateau", cell_id=label, label=label, n_hidden=16,
                                 update=update, onset_update=2048, side=side, chains=10 * factor, chains_factor=factor,
                                 train_k=1, updates=1024, seed=seed, log_likelihood_start=-170.0,
                                 log_likelihood_end=-170.0 + g, gain=g, log_likelihood_method="exact"))
    import pandas as pd
    return pd.DataFrame(rows)


def test_one_verdict_and_one_sentence_per_onset_and_a_figure(tmp_path):
    """The stored runs give one verdict per onset (confirmed when only the onset's side gains from
    chains); the page's sentence names the onset, the arms and the verdict; the figure's bytes depend
    only on the runs."""
    from snrbench.jobs.intervention import summary
    from snrbench.report.figures import plot_interventions
    from snrbench.report.leaderboard import _intervention_sentences

    v = summary(_runs())
    assert len(v) == 1 and bool(v.confirmed.iloc[0]) and v.before_update.iloc[0] == 1024 and v.seeds.iloc[0] == 4
    assert not summary(_runs(after_more=0.95)).confirmed.iloc[0]
    (sentence,) = _intervention_sentences(v)
    assert sentence.startswith("m = 16, onset at update 2048: training resumed for 1024 updates from u1024 and from "
                               "u2048 with 10 and with 100 chains (4 seeds each); mean gain ")
    assert "— confirmed: benefit of more chains" in sentence
    for name in ("a.png", "b.png"):
        plot_interventions("mnist-plateau", _runs(), v, tmp_path / name)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").stat().st_size > 5_000


def test_the_intervened_onsets_are_the_scored_onsets():
    """One rule for "the true onset" everywhere: the onsets that ``snrbench intervene`` tests and the
    family figures mark (``true_onsets`` of the per-checkpoint summary) are those of the scored onset
    table (``results/onset.parquet``), both searched over the leading equilibrated *and certified*
    checkpoints, and every stored intervention tests one of them. (The summary once left ``certified``
    out, and mnist-plateau m = 64 was intervened at u256 while its trusted prefix stops at u64.)"""
    from pathlib import Path

    from snrbench import store
    from snrbench.families import get
    from snrbench.families._trained_report import true_onsets
    from snrbench.truth.onset import ONSET_REL

    root = Path(__file__).resolve().parents[1] / "results"
    onsets = store.read_table(root, ONSET_REL).to_pandas().drop_duplicates(["family", "n_hidden"])
    for family, g in onsets.groupby("family"):
        ours = true_onsets(get(family).summary(root)).set_index("m")
        for r in g.itertuples():
            assert (ours.loc[r.n_hidden, "onset_update"], ours.loc[r.n_hidden, "n_checkpoints"]) == \
                (r.onset_update_true, r.n_checkpoints), (family, r.n_hidden)
        rel = f"ground_truth/{family}.intervention.parquet"
        if (root / rel).exists():
            tested = store.read_table(root, rel).to_pandas()
            for (m, at), _ in tested.groupby(["n_hidden", "onset_update"]):
                assert ours.loc[m, "onset_update"] == at, (family, m, at)
