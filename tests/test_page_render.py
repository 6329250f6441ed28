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
