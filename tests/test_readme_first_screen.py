"""The README's first screen (its first 60 lines) is a complete page for a user, and every command in
it runs from a fresh clone: here, by the named test, or by ``make test`` (what CI runs, ``.ci/run``).

A command is a line of a code block (comments dropped) or an inline code span that starts with a
command word (``make``, ``snrbench``, ``.venv/``, ``source``, ``pip``, ``python``). Each must be
claimed by one rule of :data:`RULES`; a new command on the first screen fails the test until a rule
(and so a test) covers it.
"""
import importlib.util
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_SCREEN = 60
VENV_BIN = REPO / ".venv" / "bin"
_COMMAND = re.compile(r"^(make|snrbench|\.venv/|source |pip |python)")


def first_screen() -> str:
    return "\n".join((REPO / "README.md").read_text().split("\n")[:FIRST_SCREEN])


def commands(text: str) -> tuple[list[str], list[str]]:
    """(shell commands, python blocks) of ``text``: code-block lines and inline command spans."""
    shell, python = [], []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang == "python":
            python.append(body)
            continue
        shell += [ln.split("#")[0].strip() for ln in body.splitlines() if ln.split("#")[0].strip()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = [s.strip() for s in re.findall(r"`([^`\n]+)`", prose)]
    shell += [s for s in spans if _COMMAND.match(s) and "..." not in s and "…" not in s]
    return shell, python


def _wheel_tests():
    spec = importlib.util.spec_from_file_location("readme_wheel_tests", REPO / "tests" / "test_wheel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd, env=None) -> str:
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, f"{cmd}: rc {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def _make(cmd: str) -> None:
    """``make``: its default goal is the venv stamp, which ``make test`` (CI's command) builds first."""
    assert cmd == "make", cmd
    text = (REPO / "Makefile").read_text()
    rules = [m.group(1) for m in re.finditer(r"^([^\s#.][^:=\n]*):(?!=)", text, re.M)]
    assert rules[0] == "$(STAMP)", f"make's default goal is {rules[0]}"
    assert re.search(r"^STAMP := \$\(VENV\)/\.installed-stamp$", text, re.M) and "VENV := .venv" in text
    assert re.search(r"^test: \$\(STAMP\)", text, re.M), "make test does not build the venv first"
    recipe = text[text.index("$(STAMP):"):text.index("\n\n", text.index("$(STAMP):"))]
    assert "-m venv $(VENV)" in recipe and "install" in recipe and "-e '.[dev]'" in recipe, recipe
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("make test"), ci


def _snrbench_here(cmd: str) -> None:
    """``.venv/bin/snrbench --help`` and the bare ``snrbench diagnose``/``snrbench submit`` named in
    prose: run (their ``--help``) from the checkout's venv, which ``make`` made."""
    args = cmd.split()[1:]
    if args != ["--help"]:
        args = args[:1] + ["--help"]
    out = _run([str(VENV_BIN / "snrbench")] + args)
    assert "usage: snrbench" in out, out[:300]
    if args == ["--help"]:
        assert "diagnose" in out and "submit" in out and "leaderboard" in out


def _activate(cmd: str) -> None:
    """``source .venv/bin/activate``: afterwards a bare ``snrbench`` is found (and only then: PATH
    starts without the venv)."""
    assert cmd == "source .venv/bin/activate", cmd
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    bare = subprocess.run(["bash", "-c", "command -v snrbench"], cwd=REPO, env=env, capture_output=True, text=True)
    assert bare.returncode != 0, "snrbench is on PATH before activation: the check proves nothing"
    out = _run(["bash", "-c", f"{cmd} && snrbench --help"], env=env)
    assert "usage: snrbench" in out


def _bare(cmd: str) -> None:
    """A bare ``snrbench`` right after ``make`` is "command not found" (the README says so), and
    found after activation: the same check as :func:`_activate`."""
    assert cmd == "snrbench", cmd
    _activate("source .venv/bin/activate")


def _pip_wheel(cmd: str) -> None:
    """``pip install 'snrbench[sklearn]'``: tests/test_wheel.py installs the wheel with exactly the
    closure of its requirements under the ``sklearn`` extra, and runs the README's examples there."""
    assert cmd == "pip install 'snrbench[sklearn]'", cmd
    src = (REPO / "tests" / "test_wheel.py").read_text()
    assert 'extras={"sklearn"}' in src and "def installed_for_users(" in src
    assert "def test_readme_diagnose_examples_run_from_the_wheel(installed_for_users" in src


def _diagnose_example(cmd: str) -> None:
    """A ``snrbench diagnose`` example: one of the Diagnose section's commands, which
    tests/test_wheel.py runs from the installed wheel."""
    section = _wheel_tests()._readme_diagnose_section()
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    run = [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines()]
    assert cmd in run, f"{cmd!r} is not in the README's Diagnose section, which the wheel test runs"
    _snrbench_here(cmd)


def _submit(cmd: str) -> None:
    """``snrbench submit my_predictor.py``: tests/test_wheel.py submits the README's example under
    that file name from the installed wheel (test_submit.py does so from the checkout)."""
    assert cmd == "snrbench submit my_predictor.py", cmd
    src = (REPO / "tests" / "test_wheel.py").read_text()
    assert '[snr, "submit", "my_predictor.py"' in src
    _snrbench_here(cmd)


RULES = [
    (lambda c: c == "make", _make),
    (lambda c: c == ".venv/bin/snrbench --help", _snrbench_here),
    (lambda c: c == "source .venv/bin/activate", _activate),
    (lambda c: c == "snrbench", _bare),
    (lambda c: c.startswith("pip install"), _pip_wheel),
    (lambda c: c.startswith("snrbench diagnose "), _diagnose_example),
    (lambda c: c == "snrbench diagnose", _snrbench_here),
    (lambda c: c.startswith("snrbench submit "), _submit),
]


def test_first_screen_is_a_complete_user_page():
    text = first_screen()
    assert text.startswith("# snrbench\n") and text.count("```") % 2 == 0, "a code block crosses line 60"
    heads = re.findall(r"^## (.+)$", text, re.M)
    assert heads[:2] == ["Install", "Diagnose your own model"] and any("leaderboard" in h for h in heads), heads
    for needle in (".venv/bin/snrbench", "source .venv/bin/activate", "leaderboard/index.html",
                   "#submit-a-predictor", "docs/developer.md", "snrbench diagnose"):
        assert needle in text, needle


def test_the_readme_gives_one_ranking_rule_and_it_is_the_codes():
    """The rule the first screen states is the key of report/rankings.py; no other rule is called the
    ranking (the budget-ladder tables' order by area is named as theirs)."""
    from snrbench.report import leaderboard, rankings

    readme = (REPO / "README.md").read_text()
    assert "**rank** = the mean over families of the\ntracked fraction, then Borda points, then the median max error" in first_screen()
    assert "ranked by ``mean_fraction``, then ``borda``, then ``median_max_err``" in rankings.__doc__.replace("\n", " ")
    assert "then Borda points" in leaderboard._RANKING_RULE and "then the median max err" in leaderboard._RANKING_RULE
    assert not re.search(r"rank\w* (them )?by the\s+area", readme), "a second ranking rule (by area)"


def test_every_first_screen_command_is_run_by_a_test():
    shell, python = commands(first_screen())
    assert len(shell) >= 7 and len(python) == 1, (shell, python)
    for cmd in shell:
        rule = next((check for match, check in RULES if match(cmd)), None)
        assert rule is not None, f"the first screen's command {cmd!r} is run by no test: add a rule"
        rule(cmd)
    # the one Python block is the Diagnose section's, which tests/test_wheel.py runs
    section = _wheel_tests()._readme_diagnose_section()
    assert python == re.findall(r"```python\n(.*?)```", section, re.S)


def test_an_uncovered_command_is_caught():
    shell, _ = commands("```bash\nmake\nrm -rf results   # oops\n```\nthen `snrbench predict --force`.")
    assert shell == ["make", "rm -rf results", "snrbench predict --force"]
    assert [next((c for m, c in RULES if m(s)), None) is None for s in shell] == [False, True, True]
