"""The command line on a 4-cell fixture suite: groundtruth → verify → summary → plot, and errors."""
import shutil
from pathlib import Path

import pytest

from snrbench.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    folder.mkdir()
    shutil.copy(DATA / "exact-rbm.toml", folder / "exact-rbm.toml")
    monkeypatch.setenv("SNRBENCH_TASKS", str(folder))
    return folder


def test_run_verify_and_damage(tmp_path, tasks, capsys, monkeypatch):
    from snrbench.jobs import ladder

    monkeypatch.setattr(ladder, "N_REPLICATES", 64)  # every stage runs; the ladder's accuracy is tested elsewhere
    res = str(tmp_path / "results")
    assert main(["--results", res, "run", "--workers", "1", "--quiet", "--out", str(tmp_path / "lb"),
                 "--budget", "65536"]) == 0  # the black-box entries at the lowest rung only: fast
    out = capsys.readouterr().out
    assert "4 of 4 cells computed" in out and "n6m3-b3-sym-s0" in out
    assert (tmp_path / "lb" / "q_curves_exact-rbm.png").stat().st_size > 10_000
    assert main(["--results", res, "groundtruth", "--quiet"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    path = Path(res) / "ground_truth" / "exact-rbm.spectrum.parquet"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert main(["--results", res, "verify"]) == 1
    err = capsys.readouterr().err
    assert "FAIL ground_truth/exact-rbm.spectrum.parquet: checksum mismatch" in err


def test_bad_spec_gives_clear_error(tmp_path, tasks, capsys):
    (tasks / "exact-rbm.toml").write_text("family = 'exact-rbm'\n")
    assert main(["--results", str(tmp_path / "r"), "groundtruth", "--quiet"]) == 2
    assert "missing key 'suite'" in capsys.readouterr().err


def test_help_version_and_options_after_the_command(tmp_path, tasks, capsys):
    from snrbench._version import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"snrbench {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text
    for cmd in ("run", "groundtruth", "verify", "summary", "predict", "score", "leaderboard", "submit"):
        assert f"\n    {cmd} " in text, cmd
    empty = tmp_path / "nothing"
    assert main(["verify", "--results", str(empty)]) == 1  # --results after the command is the one used
    assert str(empty / "manifest.json") in capsys.readouterr().err
    assert main(["summary", "--family", "nosuch"]) == 2
    assert "unknown family 'nosuch'; known: exact-rbm" in capsys.readouterr().err
    assert main(["predict", "--entry", "nosuch", "--results", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no entry named nosuch; known entries: " in err and "pilot-q" in err
    assert main(["predict", "--budget", "5", "--results", str(empty)]) == 2
    assert "--budget 5: not a budget of the ladder" in capsys.readouterr().err


def test_a_scratch_results_folder_gets_its_page_beside_it(tmp_path, monkeypatch):
    """``--results /elsewhere/results leaderboard`` without ``--out`` writes ``/elsewhere/leaderboard`` and
    leaves the committed page and README of the folder it runs from alone (it used to write ./leaderboard
    and ./README.md: a scratch submission rewrote the project's page)."""
    here = tmp_path / "project"
    (here / "leaderboard").mkdir(parents=True)
    (here / "leaderboard" / "index.html").write_text("committed page")
    (here / "README.md").write_text("committed readme")
    scratch = tmp_path / "scratch"
    shutil.copytree(DATA / "fixture" / "results", scratch / "results")
    monkeypatch.chdir(here)
    assert main(["--results", str(scratch / "results"), "leaderboard"]) == 0
    assert (scratch / "leaderboard" / "index.html").stat().st_size > 10_000
    assert (here / "leaderboard" / "index.html").read_text() == "committed page"
    assert sorted(p.name for p in here.iterdir()) == ["README.md", "leaderboard"]
    assert (here / "README.md").read_text() == "committed readme"
