"""A committed fixture tree (4 cells, every built-in entry) regenerates its leaderboard byte for byte.

The tree is made by ``bash tests/data/fixture/regenerate.sh``; the expected README.md and
index.html are stored beside it. PNGs are compared between two builds of the same inputs.
"""
import shutil
from pathlib import Path

import pandas as pd

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
    assert [p.name for p in first] == ["curves_exact-rbm.png", "heatmap_exact-rbm.png", "frontier.png", "scores.csv",
                                       "exact-rbm.truth.csv", "README.md", "index.html"]
    for p, q in zip(first, second):
        assert p.read_bytes() == q.read_bytes(), p.name
    for name in ("README.md", "index.html"):
        assert (tmp_path / "a" / name).read_bytes() == (FIXTURE / "leaderboard" / name).read_bytes(), name
    text = (tmp_path / "a" / "README.md").read_text()
    assert "| multimode | 1 | 4/4 | 1.000 |" in text  # first of the white-box ranking


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
