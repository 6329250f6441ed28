"""Fresh draws: an entry that carries the public answers is perfect on the public cells and flagged
on cells drawn fresh from the same recipe; an honest entry is not; a draw regenerates identically."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from snrbench import cli
from snrbench.families import build_data, build_model, get, load_suite
from snrbench.predict import Problem
from snrbench.report import fresh, leaderboard
from snrbench.truth.exact import solve

SUITE = Path(__file__).parent / "data" / "exact-rbm.toml"

CHEATER = '''
import hashlib

import numpy as np

from snrbench.predict import Prediction, Predictor

ANSWERS = {answers!r}  # computed offline with the exact solver, keyed on what the entry sees


def key(problem):
    return hashlib.sha256(np.round(np.asarray(problem.data_mean, dtype=np.float64), 10).tobytes()).hexdigest()


class AnswerKey(Predictor):
    name = "answer-key"
    access = "sampler-only"

    def predict(self, problem):
        return Prediction(ANSWERS.get(key(problem), [0.0] * len(problem.T)))


class ExactKey(Predictor):
    """Honest: the white-box tier's exact operator, on any cell."""
    name = "exact-key"
    access = "white-box"

    def predict(self, problem):
        return Prediction(problem.exact.solution.log10_q())
'''


def _key(cell) -> str:
    dm = Problem(build_model(cell), build_data(cell)).data_mean
    return hashlib.sha256(np.round(np.asarray(dm, dtype=np.float64), 10).tobytes()).hexdigest()


@pytest.fixture()
def suite(tmp_path, monkeypatch):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "exact-rbm.toml").write_text(SUITE.read_text())
    monkeypatch.setenv("SNRBENCH_TASKS", str(tasks))
    return tmp_path


def test_fresh_seeds_are_new_and_reproducible():
    from snrbench.families._exact import FRESH_SEED_BASE, fresh_seeds

    a = fresh_seeds(7, 3)
    assert a == fresh_seeds(7, 3) and len(set(a)) == 3 and min(a) >= FRESH_SEED_BASE
    assert set(a).isdisjoint(fresh_seeds(8, 3))
    text = SUITE.read_text()
    drawn = get("exact-rbm").fresh_suite(text, 7, "x")
    assert drawn != text and "fresh draw 7" in drawn
    with pytest.raises(ValueError, match="int ≥ 0"):
        fresh_seeds(-1, 3)


def test_answer_key_is_perfect_in_public_and_flagged_on_fresh_draws(suite, capsys):
    public = load_suite("exact-rbm")[1]
    answers = {_key(c): [float(x) for x in solve(build_model(c), build_data(c)).log10_q()] for c in public}
    entry = suite / "answer_key.py"
    entry.write_text(CHEATER.format(answers=answers))
    results, out = suite / "results", suite / "leaderboard"
    args = ["--results", str(results), "groundtruth", "--family", "exact-rbm", "--quiet", "--workers", "1"]
    assert cli.main(args) == 0
    argv = ["--results", str(results), "submit", str(entry), "--family", "exact-rbm", "--fresh", "7", "--quiet",
            "--out", str(out), "--budget", "65536", "--workers", "1"]  # public: one rung (the key needs no sampler)
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    scores = fresh.draw_scores(results, 7)
    assert set(scores.predictor) == {"answer-key", "exact-key"}
    table = fresh.stored_comparison(results, leaderboard.load_scores(results))
    rows = {r.predictor: r for r in table.itertuples(index=False)}
    cheat, honest = rows["answer-key"], rows["exact-key"]
    assert cheat.public == "4/4" and cheat.fresh_1 != "4/4" and cheat.flagged          # perfect where it knows the answers
    assert honest.public == honest.fresh_1 == honest.fresh_2 == "4/4" and not honest.flagged
    assert "FLAGGED" in printed and "public against fresh draws 7 and 8" in printed
    page = (out / "README.md").read_text()
    assert "Public against fresh draws" in page and "FLAGGED" in page
    # the same draw again: the same cells, the same truth, the same scores
    before = {d: fresh.draw_scores(results, d).drop(columns=["seconds", "cpu_seconds"]) for d in (7, 8)}
    truth = (fresh.draw_root(results, 7) / "ground_truth" / "exact-rbm.parquet").read_bytes()
    assert cli.main(argv) == 0
    for d in (7, 8):
        after = fresh.draw_scores(results, d).drop(columns=["seconds", "cpu_seconds"])
        assert after.equals(before[d]), d
    assert (fresh.draw_root(results, 7) / "ground_truth" / "exact-rbm.parquet").read_bytes() == truth
    assert cli.main(["--results", str(results), "verify"]) == 0
