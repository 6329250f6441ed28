"""The notebook's claims, replicated (``snrbench replicate``, :mod:`snrbench.report.replicate`).

The fast claims (computed from the committed ``results/`` in seconds each) must give the rows stored in
``docs/REPLICATION.md`` cell for cell (the file holds no timings, so a rerun gives the same text); claims 4
and 9 (bounded sampling, about a minute) are checked the same way under ``-m slow``. The verdict rule, the
closed-form reversibilized gap, the stale-kernel guard and ``--write``'s refusal are checked on their own.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from snrbench.core.model import RBM
from snrbench.report import replicate as rep
from snrbench.store.locations import project_root
from snrbench.truth import exact

ROOT = project_root()
DOC = ROOT / "docs" / "REPLICATION.md"


@pytest.fixture(scope="module")
def stored():
    return {int(c[0].split(".")[0]): c for c in rep._table_lines(DOC)}


def _row_cells(row):
    return [c.replace("\n", " ") for c in rep._cells(row)]


def test_stored_report_has_every_claim(stored):
    assert sorted(stored) == list(range(1, 10))
    assert {c[3].strip("*") for c in stored.values()} <= {rep.REPRODUCED, rep.IN_KIND, rep.NOT_REPRODUCED}
    assert "Seconds" not in DOC.read_text()  # no timings: the generated file is the same on every run


@pytest.mark.parametrize("number", rep.FAST)
def test_fast_claim_matches_stored_row(number, stored):
    row = rep.claim(number, ROOT / "results")
    assert _row_cells(row) == stored[number], f"claim {number}: {row.ours} — {row.reason}"


@pytest.mark.slow
@pytest.mark.parametrize("number", (4, 9))
def test_bounded_claim_matches_stored_row(number, stored):
    row = rep.claim(number, ROOT / "results")
    assert _row_cells(row) == stored[number], f"claim {number}: {row.ours} — {row.reason}"
    if number == 4:
        assert row.details["guard"], "our StaleKernelError did not refuse the stale configuration"


def test_index_numbers_are_in_the_quoted_sentence():
    """Every number marked *index* (outside our parenthetical glosses) occurs in the quoted index sentence."""
    for p in rep.NOTEBOOK.values():
        assert p.entry.startswith("“") and p.entry.endswith("”")
        bare = re.sub(r"\([^)]*\)", "", p.index)
        for token in re.findall(r"\d[\d.,]*\d|\d", bare):
            assert token in p.entry, f"claim {p.claim}: {token!r} is not in the index's sentence"
        assert ("(index)" in p.number) == bool(p.index) and ("(entry)" in p.number) == bool(p.entry_numbers)


def test_write_refuses_a_single_claim(tmp_path):
    from snrbench import cli

    before = DOC.read_bytes()
    assert cli.main(["replicate", "--claim", "2", "--write"]) == 2
    assert DOC.read_bytes() == before


def test_stale_kernels_are_refused_by_the_guard():
    """The stale configuration of claim 4 on a small model: our guard raises, the honest one passes."""
    from snrbench.truth.tempering import ParallelTempering, StaleKernelError

    rng = np.random.default_rng(0)
    trained = RBM(0.5 * rng.standard_normal((6, 3)), 0.1 * rng.standard_normal(6), 0.1 * rng.standard_normal(3), "spin")
    stale = RBM(0.01 * rng.standard_normal((6, 3)), np.zeros(6), np.zeros(3), "spin")
    betas, a0 = np.linspace(1.0, 0.0, 4), np.zeros(6)
    with pytest.raises(StaleKernelError):
        ParallelTempering.check_kernels(rep.stale_tempering(trained, stale, a0, betas, 2, seed=0))
    ParallelTempering.check_kernels(ParallelTempering(trained, a0, betas, 2, seed=0))


def test_gap_collapse():
    assert rep.gap_collapse([1.0, 1.1, 40.0, 50.0, 100.0]) == (2, pytest.approx(40.0 / 1.1))
    assert rep.gap_collapse([3.0])[0] == -1


def test_page_section_from_stored_report():
    section = rep.page_section(ROOT / "docs" / "REPLICATION.md")
    assert section.count("<tr>") == 10 and "<script" not in section and "Claims of the notebook" in section
    page = (ROOT / "leaderboard" / "index.html").read_text()  # the project's page carries it, current, in its nav
    assert section in page and '<a href="#claims-of-the-notebook">' in page


def test_verdict_rule():
    assert rep.verdict(True, True) == rep.REPRODUCED
    assert rep.verdict(True, False) == rep.IN_KIND
    assert rep.verdict(False, True) == rep.NOT_REPRODUCED
    assert rep.within_factor(1.9, 1.0) and not rep.within_factor(2.1, 1.0) and not rep.within_factor(0.0, 1.0)
    assert rep.within_range(23.0, 25.8, 26.0, 30.0) and not rep.within_range(11.9, 23.0, 26.0, 30.0)
    assert rep.fractions_close(48, 48, 45, 48) and not rep.fractions_close(0, 48, 23, 48)
    # claim 3 compares the excess of rungs: no effect (K_u = K) is 0, never within 2× of the notebook's
    assert rep.excess(22, 16) == pytest.approx(0.375) and rep.excess(16, 16) == 0.0
    assert rep.within_factor(rep.excess(22, 16), rep.excess(136, 96))
    assert not rep.within_factor(rep.excess(16, 16), rep.excess(136, 96))


def test_reversibilized_gap_closed_form_against_dense():
    """½(P + P*) of the joint sweep, by enumeration, against (γ + γ/(1 + √(1−γ)))/2 of the visible chain's
    observable gap, on a random small spin RBM with biases (no symmetry)."""
    rng = np.random.default_rng(3)
    rbm = RBM(0.8 * rng.standard_normal((5, 3)), 0.3 * rng.standard_normal(5), 0.3 * rng.standard_normal(3), "spin")
    sol = exact.solve(rbm)
    dense_gap, dense_relevant = rep.reversibilized_spectrum_dense(rbm)
    assert dense_gap == pytest.approx(float(rep.reversibilized_gap(sol.spectral_gap)), rel=1e-9)
    assert dense_relevant == pytest.approx(float(rep.reversibilized_gap(sol.observable_gap())), rel=1e-9)
    tiny = np.array([1e-30, 1e-8])  # no cancellation: → 3γ/4
    assert np.allclose(rep.reversibilized_gap(tiny), 0.75 * tiny, rtol=1e-8)


def test_uniform_ladder_needs_more_rungs_when_uneven():
    betas = np.linspace(1.0, 0.0, 5)
    even = rep.uniform_ladder_rungs(betas, [0.4] * 4, 0.4)
    assert even == (5, pytest.approx(1.0))
    uneven = rep.uniform_ladder_rungs(betas, [0.4, 0.4, 0.1, 0.4], 0.4)
    assert uneven[0] > 5 and uneven[1] > 1.0


def test_random_walk_tau_grows_with_length():
    lengths = np.array([1000, 4000])
    tau = rep.random_walk_tau_growth(lengths, chains=4)
    assert tau[1] > 2.0 * tau[0] and math.isfinite(tau[1])
