"""Entry descriptions on the page: rendered (double backticks as code, "DESIGN §N" as links into
docs/DESIGN.md) and still escaped, since an entry's docstring is written by a stranger; tables with
secondary columns, empty tables, and the "Diagnose your own model" box."""
import re
import shutil
from pathlib import Path

from snrbench.report import leaderboard, page

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "data" / "fixture"
ANCHORS = page.design_anchors((REPO / "docs" / "DESIGN.md").read_text())


def test_double_backticks_become_code_and_design_references_links():
    out = page.prose_html("observable-projected (DESIGN §5): ``Tr Cov(T) = V v_T(λ)``; see DESIGN §2.3.",
                          "../docs/DESIGN.md", ANCHORS)
    assert "<code>Tr Cov(T) = V v_T(λ)</code>" in out and "``" not in out
    assert '<a href="../docs/DESIGN.md#5-scoring-and-the-leaderboard">DESIGN §5</a>' in out
    assert '<a href="../docs/DESIGN.md#23-equilibration-checks">DESIGN §2.3</a>' in out
    # without a place for DESIGN.md (a leaderboard outside the project) the reference stays text
    assert "<a" not in page.prose_html("DESIGN §5", None, ANCHORS)
    assert page.plain_text("a ``b`` c") == "a b c"


def test_every_anchor_is_a_heading_of_design_md():
    text = (REPO / "docs" / "DESIGN.md").read_text()
    headings = {page.heading_slug(h) for h in re.findall(r"^#+ +(.+?) *$", text, re.M)}
    assert dict(ANCHORS)["5"] == "5-scoring-and-the-leaderboard" and len(ANCHORS) >= 9
    assert {a for _, a in ANCHORS} <= headings


def test_hostile_descriptions_stay_escaped():
    """Markup inside backticks, a quote that would end the href, and a javascript: section number."""
    evil = ('``<script>alert(1)</script>`` <img src=x onerror=alert(2)> DESIGN §5" onmouseover="alert(3) '
            "DESIGN §javascript:alert(4) ``</code><script>alert(5)</script>`` DESIGN.md §9")
    out = page.prose_html(evil, "../docs/DESIGN.md", ANCHORS)
    assert "<script" not in out and "<img" not in out and "</code><" not in out.replace("</code><a", "")
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in out
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs and all(h.startswith("../docs/DESIGN.md") for h in hrefs), hrefs
    assert "javascript:" not in "".join(hrefs)
    # the only attributes in the output are the hrefs the page chose
    assert re.findall(r"<(\w+)(?:\s[^>]*)?>", out) == ["code", "a", "code", "a"] or set(
        re.findall(r"<(\w+)", out)) <= {"code", "a"}
    assert "onmouseover=" not in re.sub(r"&quot;|&#x27;", "", out.split(">DESIGN §5</a>")[0])


def test_a_hostile_entry_docstring_on_the_built_page(tmp_path, monkeypatch):
    """End to end: an entry whose source docstring carries markup is shown rendered and escaped, and
    its DESIGN reference links into the project's docs/DESIGN.md, nowhere else."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE / "results", root / "results")
    shutil.copytree(REPO / "predictors", root / "predictors")
    (root / "docs").mkdir()
    (root / "tasks").mkdir()
    shutil.copy(Path(__file__).parent / "data" / "exact-rbm.toml", root / "tasks" / "exact-rbm.toml")  # the fixture's suite
    shutil.copy(REPO / "docs" / "DESIGN.md", root / "docs" / "DESIGN.md")
    src = root / "predictors" / "multimode.py"
    body = src.read_text().split('"""', 2)[2]
    src.write_text('"""multimode: ``<script>alert(1)</script>`` (DESIGN §5" onclick="alert(2)) '
                   '<a href="javascript:alert(3)">x</a> DESIGN §javascript:alert(4)."""' + body)
    monkeypatch.setenv("SNRBENCH_ROOT", str(root))
    leaderboard.build(root / "results", root / "leaderboard")
    text = (root / "leaderboard" / "index.html").read_text()
    assert "<script>alert" not in text and "javascript:" not in "".join(re.findall(r'href="([^"]*)"', text))
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in text
    assert '<a href="../docs/DESIGN.md#5-scoring-and-the-leaderboard">DESIGN §5</a>' in text
    assert 'onclick="' not in text and "&lt;a href=&quot;javascript:alert(3)&quot;&gt;" in text
    # the hover title of the entry's name carries the plain text, escaped
    assert 'title="multimode: &lt;script&gt;alert(1)&lt;/script&gt;' in text
    # the diagnose box links the README's section (the page sits in the project's leaderboard/)
    assert '<section id="diagnose"' in text and 'href="../README.md#diagnose-your-own-model"' in text


def test_tables_mark_secondary_columns_and_say_when_empty():
    t = page.Table("c.", ["entry", "rank", "extra"], [["a", page.Num("1", 1), "x"], ["b", page.Num("2", 2), "y"]],
                   primary=("entry", "rank"))
    out = page.table_html(t)
    assert 'class="sortable has-sec"' in out and '<th scope="col" class="sec">extra</th>' in out
    assert out.count('class="sec"') == 3 and '<th scope="row">a</th>' in out
    assert "has-sec" not in page.table_html(page.Table("c.", ["entry", "rank"], [["a", "1"], ["b", "2"]]))
    empty = page.table_html(page.Table("Nothing here.", ["entry", "rank"], []))
    assert "<table" not in empty and 'class="empty"' in empty


def test_a_source_outside_the_project_is_named_but_neither_linked_nor_read(tmp_path, monkeypatch):
    """An entry submitted from a file outside the project: the page shows its file name only, with no href,
    no description and no absolute path (DESIGN §5: no host or absolute path enters the output); the old
    page linked ``..//tmp/alice/my_predictor.py`` and showed its docstring."""
    root, alice = tmp_path / "project", tmp_path / "alice"
    (root / "predictors").mkdir(parents=True)
    alice.mkdir()
    (root / "predictors" / "inside.py").write_text('"""Inside: read and linked."""\n')
    (alice / "my_predictor.py").write_text('"""SECRET docstring of a file outside the project."""\n')
    (root / "predictors" / "escape.py").symlink_to(alice / "my_predictor.py")  # a link out of the project
    monkeypatch.setenv("SNRBENCH_ROOT", str(root))
    p = object.__new__(leaderboard._Page)
    p.up, p.design, p.anchors = "..", None, ()
    p.sources = {("abs", "sampler-only"): [f"{alice}/my_predictor.py::Mine"],
                 ("dotdot", "sampler-only"): ["../alice/my_predictor.py::Mine"],
                 ("link", "sampler-only"): ["predictors/escape.py::Mine"],
                 ("inside", "sampler-only"): ["predictors/inside.py::Inside"]}
    out = p.entries() + "".join(page.table_html(page.Table("t", ["entry", "x"], [[p.entry(n, a), "1"]]))
                                for n, a in p.sources)
    assert str(tmp_path) not in out and "alice" not in out and "SECRET" not in out
    assert "my_predictor.py::Mine" in out and "escape.py::Mine" in out
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert set(hrefs) == {"../predictors/inside.py"}, hrefs
    assert "Inside: read and linked." in out


def test_infinite_values_sort_as_infinite():
    """∞ in a numeric cell is written ``data-v="Infinity"``, which the script's parseFloat reads as Infinity
    (it wrote "inf", parsed as NaN: ∞ sorted last both ways, after 40 in ascending order)."""
    t = page.Table("t", ["entry", "worst T* factor"], [["a", page.Num("2.5", 2.5)], ["b", page.Num("∞", float("inf"))],
                                                       ["c", page.Num("−∞", float("-inf"))], ["d", page.Num("n/a", float("nan"))]])
    out = page.table_html(t)
    assert re.findall(r'data-v="([^"]*)"', out) == ["2.5", "Infinity", "-Infinity", ""]
    assert "parseFloat(v===null?td.textContent:v)" in page._SCRIPT  # parseFloat("Infinity") === Infinity


def _fixture_page(tmp_path, monkeypatch, scores=None, every=None):
    """A page object over a copy of the fixture tree (exact-rbm, 4 cells), optionally with other scores or truth."""
    from snrbench.report import scoring

    root = tmp_path / "project"
    shutil.copytree(FIXTURE / "results", root / "results")
    (root / "tasks").mkdir()
    shutil.copy(Path(__file__).parent / "data" / "exact-rbm.toml", root / "tasks" / "exact-rbm.toml")
    monkeypatch.setenv("SNRBENCH_ROOT", str(root))
    stored, meta = leaderboard._load_scores(root / "results")
    every = scoring.read_ground_truth(root / "results", ["exact-rbm"]) if every is None else every
    pred = scoring.read_predictions(root / "results")
    return leaderboard._Page(root / "results", root / "leaderboard", stored if scores is None else scores(stored),
                             meta, every(scoring.read_ground_truth(root / "results", ["exact-rbm"]))
                             if callable(every) else every, pred, None)


def test_a_family_run_at_lower_budgets_only_says_so(tmp_path, monkeypatch):
    """Entries stored at the ladder's first rung only: the family tables name that budget, and no cell is said
    to have failed an equilibration check (the old page said "at the full budget" and, on a family with an
    ``equilibrated`` column, "Left out of scoring (equilibration check failed)" for every cell)."""
    from snrbench.predict.contract import BUDGETS

    p = _fixture_page(tmp_path, monkeypatch, scores=lambda s: s[s.budget == BUDGETS[0]],
                      every=lambda t: t.assign(equilibrated=True))
    text = p.family("exact-rbm", {})
    assert "sampler-only entries at budget 2^10·64, the largest run (the full budget is 2^16·64)." in text
    assert "at the full budget." not in text and "equilibration" not in text
    assert "No cell has a full-budget score" in text and text.count("· no full-budget score</summary>") == 4


def test_left_out_cells_name_the_reason_from_the_truth_table(tmp_path, monkeypatch):
    """Per cell, the reason comes from the truth columns: ``equilibrated`` False → "equilibration check failed",
    a boolean ``certified`` False → "not certified" (its ``certification`` text on the cell); the old page
    called every cell without a score "equilibration check failed"."""
    from snrbench.report import figures

    def truth(t):
        ids = list(figures.sorted_cells(t)["cell_id"])
        return t.assign(equilibrated=t.cell_id != ids[0], certified=~t.cell_id.isin(ids[1:3]),
                        certification=t.cell_id.map({ids[1]: "annealing and tempering disagree at 3/11 T",
                                                     ids[2]: "no population-annealing run"}).fillna("exact starts"))

    every = truth(_fixture_page(tmp_path / "a", monkeypatch).every)
    labels = list(figures.sorted_cells(every)["label"])
    ids = list(figures.sorted_cells(every)["cell_id"])
    # as scoring will leave them out: the unequilibrated cell and the first uncertified one have no score
    p = _fixture_page(tmp_path / "b", monkeypatch, scores=lambda s: s[~s.cell_id.isin(ids[:2])], every=every)
    text = p.family("exact-rbm", {})
    assert (f"Left out of scoring: {labels[0]} (equilibration check failed); {labels[1]} (not certified)."
            in text), re.findall(r"Left out[^<]*", text)
    assert f"Scored although the ground truth is not certified: {labels[2]}." in text
    assert f'<summary title="annealing and tempering disagree at 3/11 T">{labels[1]} · not scored (not certified)</summary>' in text
    assert re.search(rf'<summary title="no population-annealing run">{re.escape(labels[2])} · tracked by \d of \d entries · '
                     r"not certified</summary>", text)
    assert f"<summary>{labels[0]} · not scored (equilibration check failed)</summary>" not in text  # it has a title
    assert f">{labels[0]} · not scored (equilibration check failed)</summary>" in text
