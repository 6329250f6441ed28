"""A committed fixture tree (4 cells, every built-in entry) regenerates its leaderboard byte for byte.

The tree is made by ``bash tests/data/fixture/regenerate.sh``; the expected README.md and
index.html are stored beside it. PNGs are compared between two builds of the same inputs, and (from the
committed results/) between a build with numpy's widest SIMD kernels and one without.
"""
import shutil
from pathlib import Path

import pandas as pd
import pytest

from snrbench.report import leaderboard

from snrbench.report import scoring

from snrbench import store

FIXTURE = Path(__file__).parent / "data" / "fixture"


def test_fixture_leaderboard_is_byte_identical(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(FIXTURE / "results", root)
    assert store.verify(root) == []
    first = leaderboard.build(root, tmp_path / "a")
    second = leaderboard.build(root, tmp_path / "b")
    assert [p.name for p in first] == ["curves_exact-rbm.png", "heatmap_exact-rbm.png", "frontier.png",
                                       "differences_white-box.png", "differences_sampler-only.png", "scores.csv",
                                       "rankings.csv", "exact-rbm.truth.csv", "README.md", "index.html"]
    for p, q in zip(first, second):
        assert p.read_bytes() == q.read_bytes(), p.name
    for name in ("README.md", "index.html"):
        assert (tmp_path / "a" / name).read_bytes() == (FIXTURE / "leaderboard" / name).read_bytes(), name
    text = (tmp_path / "a" / "README.md").read_text()
    # first of the white-box ranking, its cost (chain-sweeps, seconds) beside the tracked fraction
    assert "| multimode | 1 | 1–1 | 1 tied | 1.000 [1.000, 1.000] | 0 | 0.144 | +0.250 [+0.000, +0.667] | 4/4 |" in text
    assert "| multimode | 1 | 1–1 | 1 tied | 0.750 [0.333, 1.000] | 4,194,304 | 10.6 | +0.000 [+0.000, +0.000] |" in text
    # the README's rankings show the numbers of rankings.csv (one row per ranked entry)
    ranked = pd.read_csv(tmp_path / "a" / "data" / "rankings.csv")
    assert set(ranked.columns) >= {"tier", "entry", "statistic", "ci_low", "ci_high", "rank", "rank_low", "rank_high",
                                   "tie_group", "margin_over_iid"}
    assert "0.000" not in set(pd.read_csv(tmp_path / "a" / "data" / "rankings.csv", dtype=str)["p_vs_next"].dropna())
    for r in ranked.itertuples(index=False):
        tie = f"{r.tie_group} tied" if r.tied else str(r.tie_group)
        row = f"| {r.entry} | {r.rank} | {r.rank_low}–{r.rank_high} | {tie} |"
        assert row in text and f"{r.statistic:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" in text, row


def test_fixture_scores_recompute_identically(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(FIXTURE / "results", root)
    stored = store.read_table(root, "scores.parquet").to_pandas()
    scoring.score(root)
    again = store.read_table(root, "scores.parquet").to_pandas()
    pd.testing.assert_frame_equal(stored, again)


def test_project_readme_shows_the_current_overall_table():
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "README.md").read_text()
    block = text[text.index(leaderboard.README_BEGIN) + len(leaderboard.README_BEGIN): text.index(leaderboard.README_END)]
    assert block.strip("\n") == leaderboard.markdown_overall(repo / "results").strip("\n")


def test_page_citation_matches_citation_cff():
    import re

    from snrbench import __version__

    cff = (Path(__file__).resolve().parents[1] / "CITATION.cff").read_text()
    title = re.search(r'^title: "(.*)"$', cff, re.M).group(1)
    version = re.search(r'^version: "(.*)"$', cff, re.M).group(1)
    bib = leaderboard.BIBTEX % version
    assert f"title   = {{{title}}}" in bib and f"version = {{{__version__}}}" in bib and version == __version__


def _widest_simd() -> str:
    """The SIMD targets numpy dispatches to on this machine (e.g. "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"):
    disabling them makes numpy run the baseline kernels, whose vectorised log10 differs in the last bit."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return " ".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f))


def _score_in_subprocess(root: Path, env: dict) -> None:
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "snrbench.cli", "--results", str(root), "score"]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **env}, timeout=300)


RESULTS = Path(__file__).resolve().parents[1] / "results"
#: Rendered from the committed results/ (the fixture's 4 cells happen to draw the same pixels either way):
#: q_curves of an exact family (exact-rbm's differed before logaxes) and of a checkpoint family, and the frontier.
_RENDER = """
import sys
from pathlib import Path

import pandas as pd

from snrbench.families import get
from snrbench.report import figures

root, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("exact-rbm", "mnist"):
    get(name).plot(root, out / f"q_curves_{name}.png")
figures.plot_frontier(pd.read_parquet(root / "scores.parquet"), out / "frontier.png")
"""


def test_figures_write_the_same_bytes_without_the_widest_simd(tmp_path):
    """The figures `snrbench plot` and `snrbench leaderboard` draw on log axes, rendered from the committed
    results in two processes, one with numpy's widest SIMD kernels disabled: the PNGs are byte for byte the
    same (matplotlib's log scale went through numpy's vectorised log, whose last bit moved pixels)."""
    import os
    import subprocess
    import sys

    value = _widest_simd()
    if not value:
        pytest.skip("numpy dispatches to no SIMD target beyond its baseline on this machine")
    outs = [tmp_path / "default", tmp_path / "other"]
    for out, env in zip(outs, ({}, {"NPY_DISABLE_CPU_FEATURES": value})):
        out.mkdir()
        subprocess.run([sys.executable, "-c", _RENDER, str(RESULTS), str(out)], check=True, capture_output=True,
                       timeout=300, env={**os.environ, **env})
    names = sorted(p.name for p in outs[0].glob("*.png"))
    assert names == ["frontier.png", "q_curves_exact-rbm.png", "q_curves_mnist.png"]
    differ = [n for n in names if (outs[0] / n).read_bytes() != (outs[1] / n).read_bytes()]
    assert differ == [], f"{differ} differ under NPY_DISABLE_CPU_FEATURES={value}"


@pytest.mark.parametrize("setting", ["OPENBLAS_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES"])
def test_score_writes_the_same_bytes_under_other_cpu_settings(tmp_path, setting):
    """`snrbench score` in two processes, the default one and one with one BLAS thread or without the
    widest SIMD kernels: the scores, onsets and manifest come out byte for byte the same."""
    value = "1" if setting == "OPENBLAS_NUM_THREADS" else _widest_simd()
    if not value:
        pytest.skip("numpy dispatches to no SIMD target beyond its baseline on this machine")
    roots = [tmp_path / "default" / "results", tmp_path / "other" / "results"]
    for root, env in zip(roots, ({}, {setting: value})):
        shutil.copytree(FIXTURE / "results", root)
        _score_in_subprocess(root, env)
    for rel in ("scores.parquet", "manifest.json"):
        assert (roots[0] / rel).read_bytes() == (roots[1] / rel).read_bytes(), f"{rel} differs under {setting}={value}"
    if setting == "NPY_DISABLE_CPU_FEATURES":  # the figures too: one build without the SIMD kernels, one with
        import os
        import subprocess
        import sys

        outs = [tmp_path / "default" / "leaderboard", tmp_path / "other" / "leaderboard"]
        leaderboard.build(roots[0], outs[0])
        code = f"from snrbench.report import leaderboard; leaderboard.build({str(roots[1])!r}, {str(outs[1])!r})"
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300,
                       env={**os.environ, setting: value})
        for p in sorted(outs[0].glob("*.png")):
            assert p.read_bytes() == (outs[1] / p.name).read_bytes(), f"{p.name} differs under {setting}={value}"


_GOODHART = """
import sys

import numpy as np
import pandas as pd

from snrbench.report import goodhart

rng = np.random.default_rng(0)
rows = []
doses = sorted(10 ** rng.uniform(-2, 2, 40))  # many irregular doses: the log of each is drawn
for rewarded, doses in (("none", [0.0]), ("single-gap", doses), ("magnetization", doses)):
    for dose in doses:
        for seed in range(3):
            rows.append({"rewarded": rewarded, "dose": dose, "seed": seed, "reward_T": 64,
                         "rewarded_value": rng.normal(dose / 7, 0.3), "true_log10_q": rng.normal(-dose / 11, 0.2),
                         "forecast_single-gap": rng.normal(0, 0.3), "forecast_magnetization": rng.normal(0, 0.3),
                         "loglik": rng.normal(-0.6 - dose / 50, 0.02), "loglik_independent": -0.69})
goodhart.plot(pd.DataFrame(rows), sys.argv[1])
"""


def test_goodhart_figure_writes_the_same_bytes_without_the_widest_simd(tmp_path):
    """goodhart.plot (the dose ladder figure `snrbench leaderboard` is to draw) on a synthetic ladder, in two
    processes, one with numpy's widest SIMD kernels disabled: the PNGs are byte for byte the same (its dose
    axis used matplotlib's log scale, through numpy's vectorised log)."""
    import os
    import subprocess
    import sys

    value = _widest_simd()
    if not value:
        pytest.skip("numpy dispatches to no SIMD target beyond its baseline on this machine")
    outs = [tmp_path / "default.png", tmp_path / "other.png"]
    for out, env in zip(outs, ({}, {"NPY_DISABLE_CPU_FEATURES": value})):
        subprocess.run([sys.executable, "-c", _GOODHART, str(out)], check=True, capture_output=True, timeout=300,
                       env={**os.environ, **env})
    assert outs[0].read_bytes() == outs[1].read_bytes(), f"goodhart.png differs under NPY_DISABLE_CPU_FEATURES={value}"


def test_goodhart_figure_uses_no_matplotlib_log_scale(monkeypatch, tmp_path):
    """Every axis of goodhart.plot is linear (doses drawn as their log10, store.logaxes); the earlier code set
    xscale="log", whose pixels depend on numpy's SIMD log kernels."""
    import numpy as np

    from snrbench.report import goodhart

    scales = []
    monkeypatch.setattr(goodhart.store, "save_figure",
                        lambda fig, out, dpi=100: scales.extend((a.get_xscale(), a.get_yscale()) for a in fig.axes) or out)
    namespace = {}
    exec(_GOODHART.replace("goodhart.plot(pd.DataFrame(rows), sys.argv[1])", "ladder = pd.DataFrame(rows)"), namespace)
    goodhart.plot(namespace["ladder"], tmp_path / "goodhart.png")
    assert scales and all(s == ("linear", "linear") for s in scales), scales
    assert np.isfinite(namespace["ladder"].dose).all()


def test_figure_keys_name_only_the_tiers_drawn():
    """A figure's title names the line style of each tier it draws and no other (mnist has no
    white-box entry, so its curves must not promise a solid white-box line)."""
    from snrbench.report.figures import tier_styles

    assert tier_styles(["sampler-only", "model", "sampler-only"]) == "dotted = model, dashed = sampler-only"
    assert tier_styles(["white-box"]) == "solid = white-box"


def test_a_family_with_no_full_budget_score_gets_a_placeholder_heatmap(tmp_path):
    """A results folder whose entries were stored at the lower rungs only (``submit --budget 65536`` on a
    fresh folder) crashed publishing: the heatmap took the max over no cells."""
    from snrbench.report.figures import plot_heatmap

    scores = pd.read_parquet(FIXTURE / "results" / "scores.parquet")
    plot_heatmap("exact-rbm", scores.iloc[:0], tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pooled_ladder_says_the_goodhart_track_is_apart():
    """The all-families budget ladder (table caption, frontier alt text, leaderboard README) pools the ranked
    families only and says so: it said "every family's cells pooled" while leaving the goodhart track out."""
    assert leaderboard._pooled(["exact-rbm", "goodhart", "mnist"]) == (
        "every ranked family's cells pooled; the goodhart track has its own section")
    assert leaderboard._pooled(["exact-rbm"]) == "every ranked family's cells pooled"
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "leaderboard" / "README.md").read_text()
    assert "Tracked cells at each budget, every ranked family's cells pooled; the goodhart track has its own section." in text
    page = (repo / "leaderboard" / "index.html").read_text()
    assert "one panel with every ranked family&#x27;s cells pooled and one per ranked family (the goodhart track" in page
