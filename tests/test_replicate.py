"""The notebook's claims, replicated (``snrbench replicate``, :mod:`snrbench.report.replicate`).

The fast claims (computed from the committed ``results/`` in a few seconds each) must give the verdicts
stored in ``docs/REPLICATION.md``; the verdict rule and the closed-form reversibilized gap are checked on
their own.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from snrbench.core.model import RBM
from snrbench.report import replicate as rep
from snrbench.store.locations import project_root
from snrbench.truth import exact

ROOT = project_root()


@pytest.fixture(scope="module")
def stored():
    return rep.read_verdicts(ROOT / "docs" / "REPLICATION.md")


def test_stored_report_has_every_claim(stored):
    assert sorted(stored) == list(range(1, 10))
    assert set(stored.values()) <= {rep.REPRODUCED, rep.IN_KIND, rep.NOT_REPRODUCED}


@pytest.mark.parametrize("number", rep.FAST)
def test_fast_claim_matches_stored_verdict(number, stored):
    row = rep.claim(number, ROOT / "results")
    assert row.verdict == stored[number], f"claim {number}: {row.ours} — {row.reason}"
    assert row.notebook == rep.NOTEBOOK[number].number  # the published number is quoted, not recomputed


def test_page_section_from_stored_report():
    section = rep.page_section(ROOT / "docs" / "REPLICATION.md")
    assert section.count("<tr>") == 10 and "<script" not in section and "Claims of the notebook" in section


def test_verdict_rule():
    assert rep.verdict(True, True) == rep.REPRODUCED
    assert rep.verdict(True, False) == rep.IN_KIND
    assert rep.verdict(False, True) == rep.NOT_REPRODUCED
    assert rep.within_factor(1.9, 1.0) and not rep.within_factor(2.1, 1.0) and not rep.within_factor(0.0, 1.0)
    assert rep.within_range(23.0, 25.8, 26.0, 30.0) and not rep.within_range(11.9, 23.0, 26.0, 30.0)
    assert rep.fractions_close(48, 48, 45, 48) and not rep.fractions_close(0, 48, 23, 48)


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
