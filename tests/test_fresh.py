"""Fresh draws: an entry that carries the public answers is perfect on the public cells and flagged
on cells drawn fresh from the same recipe; an honest entry is not; a draw regenerates identically."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from snrbench import cli
from snrbench.families import build_data, build_model, get, load_suite
from snrbench.predict import Problem, seeds
from snrbench.report import fresh, leaderboard
from snrbench.truth.exact import solve

SUITE = Path(__file__).parent / "data" / "exact-rbm.toml"

CHEATER = '''
import hashlib
import re

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


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture()
def public(suite):
    """A results folder with the fixture suite's ground truth, and the answers for its cells."""
    results = suite / "results"
    assert cli.main(["--results", str(results), "groundtruth", "--family", "exact-rbm", "--quiet", "--workers", "1"]) == 0
    cells = load_suite("exact-rbm")[1]
    answers = {_key(c): [float(x) for x in solve(build_model(c), build_data(c)).log10_q()] for c in cells}
    return results, answers


def _submit(suite, results, entry, *budgets):
    argv = ["--results", str(results), "submit", str(entry), "--family", "exact-rbm", "--quiet",
            "--out", str(suite / "leaderboard"), "--workers", "1"]
    return cli.main(argv + [x for b in budgets for x in ("--budget", str(b))])


def _refused(suite, results, capsys, entry, *budgets) -> str:
    before = _tree(results)
    capsys.readouterr()
    assert _submit(suite, results, entry, *budgets) == 1
    err = capsys.readouterr().err
    assert "submit: rejected, not published; results/ is unchanged" in err
    assert _tree(results) == before and not (suite / "leaderboard").exists()
    assert not list(suite.glob(".fresh-*")) and not list(suite.glob(".publish-*"))  # staging removed
    return err


def test_answer_key_is_refused_flagged_and_blind(public, suite, capsys):
    """It answers the public cells from a table (0 sweeps) and zeros elsewhere: perfect in public,
    flagged on the two fresh draws that every submission runs, and refused."""
    results, answers = public
    entry = suite / "answer_key.py"
    entry.write_text(CHEATER.format(answers=answers).split("class ExactKey")[0])
    err = _refused(suite, results, capsys, entry, 65536)
    assert re.search(r"answer-key \(sampler-only\) at budget 65,536: public 4/4 against fresh 0/4 and 0/4, a gap of "
                     r"\+1\.00 > 3 σ = 0\.75 \(flagged\)", err), err
    assert "answer-key (sampler-only) at budget 65,536: tracked cell n6m3-b1-sym-s0 of exact-rbm with 0 sweeps" in err


@pytest.mark.slow
def test_answer_key_is_refused_at_every_budget(public, suite, capsys):
    """The lower budgets drive the area and the 90% columns: the draws run at each of them."""
    from snrbench.predict import BUDGETS

    results, answers = public
    entry = suite / "answer_key.py"
    entry.write_text(CHEATER.format(answers=answers).split("class ExactKey")[0])
    err = _refused(suite, results, capsys, entry)
    for b in BUDGETS:
        assert f"answer-key (sampler-only) at budget {b:,}: public 4/4 against fresh 0/4 and 0/4" in err, (b, err)


def test_an_entry_that_dodges_the_fresh_cells_is_refused(public, suite, capsys):
    """It answers the public cells from a table and raises on any other: a failing fresh run used to
    store nothing, so nothing was flagged."""
    results, answers = public
    entry = suite / "dodger.py"
    entry.write_text(CHEATER.format(answers=answers).split("class ExactKey")[0].replace(
        "return Prediction(ANSWERS.get(key(problem), [0.0] * len(problem.T)))",
        "return Prediction(ANSWERS[key(problem)])"))
    err = _refused(suite, results, capsys, entry, 65536)
    found = re.findall(r"answer-key \(sampler-only\) on a fresh draw of exact-rbm at budget 65,536: 3 of 4 cells "
                       r"failed \(n6m3-b1-sym-s[0-9]+: raised KeyError: '[0-9a-f]{64}'", err)
    assert len(found) == 2, err  # both draws


def test_an_honest_entry_is_published_with_its_draws(public, suite, capsys):
    results, _ = public
    entry = suite / "exact_key.py"
    entry.write_text("import numpy as np\nfrom snrbench.predict import Prediction, Predictor\n\n\nclass ExactKey"
                     + CHEATER.split("class ExactKey")[1])
    capsys.readouterr()
    key = results / seeds.KEY_NAME
    assert not key.exists()  # ground truth only: no entry has run in this folder yet
    assert _submit(suite, results, entry) == 0
    cap = capsys.readouterr()
    assert "submit: exact-key (white-box) stored" in cap.out
    # the folder's first accepted submission stores its sampler key with the results, readable by its owner only
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == seeds.KEY_BYTES
    m = re.search(r"public against fresh draws (\d+) and (\d+)", cap.out)
    seed = int(m[1])
    folders = sorted(p.name for p in (results / "fresh").iterdir())
    assert len(folders) == 2 and all(re.fullmatch(r"[0-9a-f]{16}-[12]", f) for f in folders)  # names say nothing
    assert f"fresh draw {seed}" in (results / "fresh" / folders[0] / "tasks" / "exact-rbm.toml").read_text()
    table = fresh.stored_comparison(results, leaderboard.load_scores(results))
    (row,) = table.itertuples(index=False)
    assert row.public == row.fresh_1 == row.fresh_2 == "4/4" and not row.flagged
    assert "Public against fresh draws" in (suite / "leaderboard" / "README.md").read_text()
    assert cli.main(["--results", str(results), "verify"]) == 0
