"""Every relative link of the README and of docs/*.md reaches a file, and every ``#anchor`` a heading
of the file it points into (GitHub's anchors: :func:`snrbench.report.page.heading_slug`)."""
import re
from pathlib import Path

import pytest

from snrbench.report.page import heading_slug

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "docs" / "diagnose" / "README.md"]


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {heading_slug(h) for h in re.findall(r"^#{1,6} +(.+?) *$", text, re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(doc):
    bad = []
    for target in links(doc):
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading with that anchor")
    assert not bad, bad


def test_the_checker_sees_a_broken_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\n## Two words\n\n[ok](#two-words) [bad](#three) [gone](b.md)\n")
    assert links(tmp_path / "a.md") == ["#two-words", "#three", "b.md"]
    assert _anchors(tmp_path / "a.md") == {"a", "two-words"}
