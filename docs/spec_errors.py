"""Tries malformed suite specs against load_suite and prints the Markdown table in docs/spec_errors.md
(python docs/spec_errors.py > docs/spec_errors.md): each case edits a copy of a shipped suite."""
import re
import sys
import tempfile
from pathlib import Path

from snrbench.families import TaskSpecError, load_suite, suite_path

TEXT = {f: suite_path(f).read_text() for f in ("exact-rbm", "planted", "ising", "mnist")}


def line(text, key, new):
    """Replace the line `key = ...` (first one) by `new` (None: drop it)."""
    pat = re.compile(rf"(?m)^{re.escape(key)}\s*=.*$")
    assert pat.search(text), key
    return pat.sub("" if new is None else new, text, count=1)


CASES = [
    ("missing key", "exact-rbm", lambda t: line(t, "n_samples", None)),
    ("missing table", "exact-rbm", lambda t: t.replace("[estimator]\nobservables = \"weights\"", "")),
    ("wrong type (str for int)", "exact-rbm", lambda t: line(t, "n_samples", 'n_samples = "500"')),
    ("wrong type (bool for float)", "exact-rbm", lambda t: line(t, "disorder", "disorder = true")),
    ("wrong type (table)", "exact-rbm",
     lambda t: t.replace('[estimator]\nobservables = "weights"', "").replace("[grid]", 'estimator = "weights"\n\n[grid]', 1)),
    ("bad TOML", "exact-rbm", lambda t: t.replace("[grid]", "[grid")),
    ("shape [0, 4]", "exact-rbm", lambda t: line(t, "shapes", "shapes = [[0, 4]]")),
    ("shape [6]", "exact-rbm", lambda t: line(t, "shapes", "shapes = [[6]]")),
    ("empty list", "exact-rbm", lambda t: line(t, "seeds", "seeds = []")),
    ("beta = inf", "exact-rbm", lambda t: line(t, "betas", "betas = [1.0, inf]")),
    ("beta < 0", "exact-rbm", lambda t: line(t, "betas", "betas = [-1.0]")),
    ("bias_std = nan", "exact-rbm", lambda t: line(t, "bias_std", "bias_std = nan")),
    ("negative seed", "exact-rbm", lambda t: line(t, "seeds", "seeds = [-1]")),
    ("unknown key seedz", "exact-rbm", lambda t: line(t, "seeds", "seedz = [0, 1, 2]")),
    ("unknown header key", "exact-rbm", lambda t: t.replace('suite = "v1"', 'suite = "v1"\nsuit = "v2"')),
    ("typo of 'family'", "exact-rbm", lambda t: t.replace('family = "exact-rbm"', 'famly = "exact-rbm"')),
    ("unknown choice", "exact-rbm", lambda t: line(t, "symmetries", 'symmetries = ["symetric"]')),
    ("wrong units", "exact-rbm", lambda t: line(t, "units", 'units = "binary"')),
    ("exact-rbm n=40 m=8", "exact-rbm", lambda t: line(t, "shapes", "shapes = [[40, 8]]")),
    ("exact-rbm n=4 m=30", "exact-rbm", lambda t: line(t, "shapes", "shapes = [[4, 30]]")),
    ("exact-rbm n=14 m=16", "exact-rbm", lambda t: line(t, "shapes", "shapes = [[14, 16]]")),
    ("planted n=16 m=14", "planted", lambda t: line(t, "shapes", "shapes = [[16, 14]]")),
    ("planted patterns = [0]", "planted", lambda t: line(t, "patterns", "patterns = [0]")),
    ("planted control = 1", "planted", lambda t: line(t, "ferromagnetic_control", "ferromagnetic_control = 1")),
    ("ising N = 20", "ising", lambda t: line(t, "sizes", "sizes = [8, 20]")),
    ("ising N = 1", "ising", lambda t: line(t, "sizes", "sizes = [1]")),
    ("ising unknown model", "ising", lambda t: line(t, "models", 'models = ["potts"]')),
    ("ising teacher_beta_scale = -inf", "ising", lambda t: line(t, "teacher_beta_scale", "teacher_beta_scale = -inf")),
    ("mnist t_max = 1000", "mnist", lambda t: line(t, "t_max", "t_max = 1000")),
    ("mnist hidden = [0]", "mnist", lambda t: line(t, "hidden", "hidden = [0]")),
    ("mnist tempering typo", "mnist", lambda t: line(t, "target", "targett = 0.3")),
    ("mnist tempering key missing", "mnist", lambda t: line(t, "target", None)),
    ("mnist key of the other method", "mnist", lambda t: t.rstrip() + "\nrungs = 4\n"),
    ("mnist target = 1.0", "mnist", lambda t: line(t, "target", "target = 1.0")),
    ("unknown family", "exact-rbm", lambda t: t.replace('family = "exact-rbm"', 'family = "exact-rmb"')),
]

rows = []
with tempfile.TemporaryDirectory() as tmp:
    for what, fam, edit in CASES:
        path = Path(tmp) / "tasks" / "x.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(edit(TEXT[fam]))
        try:
            load_suite(path)
            msg = "(loads: no error)"
        except TaskSpecError as exc:
            msg = str(exc).replace(str(Path(tmp)) + "/", "")
        rows.append((what, fam, msg))
    try:
        load_suite("nosuch")
    except TaskSpecError as exc:
        rows.append(("unknown family by name", "-", str(exc)))

print("| case | suite edited | message |\n|---|---|---|")
for what, fam, msg in rows:
    cell = msg.replace("|", "\\|")
    print(f"| {what} | {fam} | `{cell}` |")
