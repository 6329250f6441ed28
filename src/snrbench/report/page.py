"""The leaderboard's HTML page: one self-contained file, readable with JavaScript off.

Everything is inline (style, script, per-cell SVG curves); images are the PNGs beside the page and
links are relative, so the page loads from disk with no request leaving ``file://``. With
JavaScript on, every table sorts by any column header (numbers by the value in ``data-v``, ∞ as
``Infinity``) and a
form filters the page by family and tier; with it off the form stays hidden and every table is
still there. Output depends only on its arguments, so identical inputs give identical bytes.

Layout: the first column of every table stays in place when the table scrolls sideways (CSS
``position: sticky; left: 0``); on a phone (≤ 600 px wide) a table's secondary columns (those not
in ``Table.primary``) are hidden behind a "show every column" button; headings keep clear of the
sticky filter bar (``scroll-margin-top``); a filter that leaves a table with no row shows "No entry
matches …" instead of a header-only table. Text from entries (their docstrings) is escaped first
and only then given markup: ``x`` in double backticks becomes ``<code>``, and "DESIGN §5" a link to
that section of docs/DESIGN.md (:func:`prose_html`).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = ["Num", "Link", "Prose", "Table", "table_html", "cell_svg", "page_html", "swatch", "prose_html",
           "plain_text", "design_anchors", "heading_slug"]

esc = html.escape

#: SVG dash pattern per tier, as in the PNG figures (solid, dashed, dotted).
DASH = {"white-box": "", "sampler-only": "6 3", "model": "1.5 3"}


@dataclass(frozen=True)
class Num:
    """A table cell shown as ``text`` and sorted by ``value`` (NaN sorts last either way)."""
    text: str
    value: float


@dataclass(frozen=True)
class Link:
    """A table cell holding a link (``href`` relative to the page) and a hover ``title``."""
    text: str
    href: str | None
    title: str = ""


@dataclass(frozen=True)
class Prose:
    """A table cell of text written by an entry's author, rendered by :func:`prose_html` (``design``:
    the href of docs/DESIGN.md from the page, None for no links; ``anchors``: section number → anchor)."""
    text: str
    design: str | None = None
    anchors: tuple[tuple[str, str], ...] = ()


_CODE = re.compile(r"``(.+?)``", re.S)
_DESIGN = re.compile(r"DESIGN(?:\.md)?,? §\s?(\d+(?:\.\d+)*)")


def heading_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped (``-`` and ``_`` kept),
    spaces to ``-``; e.g. "5. Scoring and the leaderboard" → ``5-scoring-and-the-leaderboard``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def design_anchors(markdown: str) -> tuple[tuple[str, str], ...]:
    """(section number, anchor) for every numbered heading of DESIGN.md ("## 5. Scoring …" → ("5", slug),
    "### 2.3 Equilibration checks" → ("2.3", slug))."""
    out = []
    for m in re.finditer(r"^#{2,4} +(\d+(?:\.\d+)*)\.? +(.+?) *$", markdown, re.M):
        out.append((m.group(1), heading_slug(f"{m.group(1)}{'.' if '.' not in m.group(1) else ''} {m.group(2)}")))
    return tuple(out)


def _design_links(text: str, design: str | None, anchors: dict[str, str]) -> str:
    """``text`` escaped, with each "DESIGN §N" turned into a link to ``design#anchor`` (the anchor comes from
    ``anchors``, never from the text; an unknown section links to the file)."""
    if not design:
        return esc(text)
    out, pos = [], 0
    for m in _DESIGN.finditer(text):
        anchor = anchors.get(m.group(1))
        href = design + (f"#{anchor}" if anchor else "")
        out += [esc(text[pos:m.start()]), f'<a href="{esc(href)}">{esc(m.group(0))}</a>']
        pos = m.end()
    return "".join(out + [esc(text[pos:])])


def prose_html(text: str, design: str | None = None, anchors=()) -> str:
    """An entry author's text as HTML: every character escaped, then ``x`` (double backticks) as
    ``<code>x</code>`` and "DESIGN §N" as a link to section N of DESIGN.md at ``design`` (a relative
    href chosen by the page, so no text can make a ``javascript:`` or outside link)."""
    anchors = dict(anchors)
    out, pos = [], 0
    for m in _CODE.finditer(text):
        out += [_design_links(text[pos:m.start()], design, anchors), f"<code>{esc(m.group(1))}</code>"]
        pos = m.end()
    return "".join(out + [_design_links(text[pos:], design, anchors)])


def plain_text(text: str) -> str:
    """The same text without its markup (double backticks dropped), for attributes such as a title."""
    return _CODE.sub(lambda m: m.group(1), text)


@dataclass
class Table:
    """A table: ``caption`` (plain text), ``headers``, ``rows`` of str | Num | Link | Prose cells; the
    first column is the row header. ``row_tiers`` (one per row) lets the tier filter hide rows.
    ``primary`` names the columns a phone shows at first (None: all); the others are secondary."""
    caption: str
    headers: list[str]
    rows: list[list]
    row_tiers: list[str] | None = None
    drop_constant: bool = True
    note: str = ""
    dropped: list[str] = field(default_factory=list)
    primary: tuple[str, ...] | None = None

    def pruned(self) -> "Table":
        """The table without the columns that read the same on every row (two rows or more); the
        caption says what they were."""
        if not self.drop_constant or len(self.rows) < 2:
            return self
        text = lambda c: c.text if isinstance(c, (Num, Link, Prose)) else str(c)  # noqa: E731
        keep = [j for j in range(len(self.headers)) if j < 2 or len({text(r[j]) for r in self.rows}) > 1]
        same = [f"{self.headers[j]} = {text(self.rows[0][j])}" for j in range(len(self.headers)) if j not in keep]
        return Table(self.caption, [self.headers[j] for j in keep], [[r[j] for j in keep] for r in self.rows],
                     self.row_tiers, False, self.note, same, self.primary)


def _class(*names: str) -> str:
    """`` class="a b"`` of the non-empty ``names``, or "" when none."""
    names = [n for n in names if n]
    return f' class="{" ".join(names)}"' if names else ""


def _sort_value(x: float) -> str:
    """A number as its ``data-v`` attribute: what the script's ``parseFloat`` reads back, so ±∞ is written
    ``Infinity``/``-Infinity`` (``repr`` gives "inf", which parseFloat reads as NaN and sorts last); NaN is ""."""
    x = float(x)
    if x != x:
        return ""
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _cell(c, tag: str, scope: str = "", sec: bool = False) -> str:
    classes = lambda *cs: _class(*cs, "sec" if sec else "")  # noqa: E731
    if isinstance(c, Num):
        v = _sort_value(c.value)
        return f'<{tag}{scope}{classes("n")} data-v="{v}">{esc(c.text)}</{tag}>'
    if isinstance(c, Link):
        title = f' title="{esc(c.title)}"' if c.title else ""
        inner = f'<a href="{esc(c.href)}"{title}>{esc(c.text)}</a>' if c.href else f"<span{title}>{esc(c.text)}</span>"
        return f"<{tag}{scope}{classes()}>{inner}</{tag}>"
    if isinstance(c, Prose):
        wide = "w" if len(c.text) > 60 else ""
        return f"<{tag}{scope}{classes(wide)}>{prose_html(c.text, c.design, c.anchors)}</{tag}>"
    wide = "w" if len(str(c)) > 60 else ""  # long prose wraps instead of widening the table
    return f"<{tag}{scope}{classes(wide)}>{esc(str(c))}</{tag}>"


def table_html(t: Table) -> str:
    """A sortable ``<table>`` with a caption, ``scope`` on header cells, in a box that scrolls sideways;
    a table without rows is a sentence saying so (no header-only table)."""
    t = t.pruned()
    if not t.rows:
        return f'<p class="empty">{esc(t.caption)} No entry has a row here yet.</p>'
    numeric = [any(isinstance(r[j], Num) for r in t.rows) for j in range(len(t.headers))]
    sec = [t.primary is not None and j > 0 and h not in t.primary for j, h in enumerate(t.headers)]
    caption = esc(t.caption) + (f' <span class="same">Same on every row: {esc("; ".join(t.dropped))}.</span>'
                                if t.dropped else "")
    cls = "sortable" + (" has-sec" if any(sec) else "")
    out = [f'<div class="scroll"><table class="{cls}">', f"<caption>{caption}</caption>", "<thead><tr>"]
    num = ' data-type="num"'
    out += [f'<th scope="col"{num if n else ""}{_class("sec" if s else "")}>{esc(h)}</th>'
            for h, n, s in zip(t.headers, numeric, sec)]
    out += ["</tr></thead>", "<tbody>"]
    for i, row in enumerate(t.rows):
        tier = f' data-tier="{esc(t.row_tiers[i])}"' if t.row_tiers else ""
        out.append(f"<tr{tier}>" + _cell(row[0], "th", ' scope="row"')
                   + "".join(_cell(c, "td", sec=s) for c, s in zip(row[1:], sec[1:])) + "</tr>")
    out += ["</tbody>", "</table></div>"]
    if t.note:
        out.append(f'<p class="note">{esc(t.note)}</p>')
    return "\n".join(out)


def swatch(colour: str, tier: str) -> str:
    """A short inline SVG line in the entry's colour and its tier's dash pattern (a legend key)."""
    pattern = DASH.get(tier, "4 2 1 2")
    dash = f' stroke-dasharray="{pattern}"' if pattern else ""
    return (f'<svg class="key" width="28" height="10" aria-hidden="true"><line x1="1" y1="5" x2="27" y2="5" '
            f'stroke="{colour}" stroke-width="2.5"{dash}/></svg>')


def cell_svg(title: str, T, truth, ci, curves) -> str:
    """An inline SVG of log10 Q against log2 T: the truth (black, its 95% CI as a grey band when
    ``ci`` = (low, high) is given) and ``curves`` = [(name, tier, colour, T, log10 Q)]. The y range
    is the truth's ± 1 dex, widened to 2 dex at most by the predictions (the rest is clipped)."""
    import numpy as np

    W, H, L, R, TOP, B = 440, 250, 46, 10, 10, 34
    T = np.asarray(T, float)
    truth = np.asarray(truth, float)
    lo, hi = float(np.min(truth)) - 1.0, float(np.max(truth)) + 1.0
    for *_, _T, y in curves:
        y = np.asarray(y, float)
        y = y[np.isfinite(y)]
        if y.size:
            lo, hi = max(min(lo, float(y.min())), float(np.min(truth)) - 2.0), min(max(hi, float(y.max())), float(np.max(truth)) + 2.0)
    x0, x1 = float(np.log2(T.min())), float(np.log2(T.max()))
    sx = lambda t: L + (np.log2(t) - x0) / max(x1 - x0, 1e-9) * (W - L - R)  # noqa: E731
    sy = lambda q: TOP + (hi - np.clip(q, lo, hi)) / (hi - lo) * (H - TOP - B)  # noqa: E731
    pts = lambda ts, ys: " ".join(f"{sx(t):.1f},{sy(y):.1f}" for t, y in zip(ts, ys) if np.isfinite(y))  # noqa: E731
    parts = [f'<svg class="curve" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{esc(title)}">',
             f"<title>{esc(title)}</title>",
             f'<rect x="{L}" y="{TOP}" width="{W - L - R}" height="{H - TOP - B}" fill="#fff" stroke="#bbb"/>']
    for k in range(int(np.ceil(x0)), int(np.floor(x1)) + 1, 2):
        x = sx(2.0 ** k)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>'
                     f'<text x="{x:.1f}" y="{H - B + 13}" text-anchor="middle">{2 ** k}</text>')
    for q in range(int(np.ceil(lo)), int(np.floor(hi)) + 1):
        y = sy(q)
        parts.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="{"#888" if q == 0 else "#eee"}"/>'
                     f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end">{q}</text>')
    parts.append(f'<text x="{(L + W - R) / 2:.0f}" y="{H - 4}" text-anchor="middle">T (sweeps)</text>'
                 f'<text x="11" y="{(TOP + H - B) / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 11 {(TOP + H - B) / 2:.0f})">log10 Q</text>')
    if ci is not None:
        low, high = (np.asarray(c, float) for c in ci)
        band = [f"{sx(t):.1f},{sy(y):.1f}" for t, y in zip(T, high)] + [f"{sx(t):.1f},{sy(y):.1f}" for t, y in zip(T[::-1], low[::-1])]
        parts.append(f'<polygon points="{" ".join(band)}" fill="#ccc" stroke="none"/>')
    parts.append(f'<polyline points="{pts(T, truth)}" fill="none" stroke="#000" stroke-width="3.5"/>')
    for name, tier, colour, t, y in curves:
        dash = f' stroke-dasharray="{DASH[tier]}"' if DASH.get(tier) else ""
        parts.append(f'<polyline points="{pts(np.asarray(t, float), np.asarray(y, float))}" fill="none" '
                     f'stroke="{colour}" stroke-width="2"{dash}><title>{esc(name)} ({esc(tier)})</title></polyline>')
    return "".join(parts) + "</svg>"


_STYLE = """
:root{--fg:#1b1b1b;--muted:#555;--line:#d0d0d0;--head:#f1f1f1;--accent:#0b5cad}
*{box-sizing:border-box}[hidden]{display:none!important}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);line-height:1.45;margin:0 auto;max-width:96em;padding:0 1em 3em}
header{border-bottom:1px solid var(--line);margin-bottom:1em}
h1{margin:.6em 0 .3em}h2{margin-top:2em;border-bottom:1px solid var(--line)}h3{margin-bottom:.3em}
.lede{font-size:1.08em;max-width:52em}
nav{display:flex;flex-wrap:wrap;gap:.2em .9em;margin:.4em 0}nav a{white-space:nowrap}a{color:var(--accent)}
.filters{background:var(--head);padding:.5em .8em;border-radius:4px;display:flex;flex-wrap:wrap;gap:1em;position:sticky;top:0;z-index:3}
h2,h3,section[id],details[id]{scroll-margin-top:4em}
.scroll{overflow-x:auto;max-width:100%;margin:.3em 0 1.2em;container-type:inline-size}
.scroll caption{max-width:min(60em,100cqw)}
table{border-collapse:collapse;font-size:.9em}
caption{text-align:left;font-size:.92em;color:var(--muted);padding:.2em 0 .4em;caption-side:top;max-width:60em}
th,td{border:1px solid var(--line);padding:.25em .55em;text-align:left;white-space:nowrap}td.w{white-space:normal;min-width:18em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:var(--head);position:sticky;top:0}
thead th:first-child,tbody th{position:sticky;left:0;z-index:1;box-shadow:inset -1px 0 0 var(--line),inset 0 -1px 0 var(--line)}
thead th:first-child{z-index:2}tbody th{background:#fff}
thead th button{all:unset;cursor:pointer}thead th button::after{content:" \\2195";color:#999}
thead th[aria-sort=ascending] button::after{content:" \\2191";color:var(--fg)}
thead th[aria-sort=descending] button::after{content:" \\2193";color:var(--fg)}
tbody th{font-weight:600}
.same,.note{color:var(--muted);font-size:.9em}
p.empty{color:var(--muted);font-style:italic}
.coltoggle{display:none;margin:.2em 0}
.diagnose{border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:4px;padding:.2em 1em;margin:1em 0;max-width:60em}
.diagnose h2{border:0;margin-top:.5em}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1.5em;align-items:start}
figure{margin:0 0 1.2em}figure img{max-width:100%;height:auto;display:block;border:1px solid var(--line)}
figcaption{font-size:.9em;color:var(--muted)}
details.cell{border:1px solid var(--line);border-radius:4px;margin:.3em 0;padding:.2em .6em}
details.cell[open]{background:#fafafa}
.cellbody{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.cellbody>*{min-width:0;max-width:100%}
svg.curve{max-width:100%;height:auto;font-size:10px;font-family:inherit}
svg.key{vertical-align:middle;margin-right:.3em}
pre{background:var(--head);padding:.6em;overflow-x:auto;font-size:.85em;max-width:100%}
dl.prov{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.prov dt{font-weight:600}dl.prov dd{margin:0;overflow-wrap:anywhere;min-width:0}
@media (max-width:900px){.grid{grid-template-columns:minmax(0,1fr)}}
@media (max-width:600px){.js table.has-sec:not(.all) .sec{display:none}.coltoggle{display:inline-block}
.filters{position:static}table.has-sec th,table.has-sec td{white-space:normal;padding:.2em .3em}table.has-sec{font-size:.8em}
table.has-sec thead th button::after{content:none}}
@media (max-width:500px){body{padding:0 .5em 2em}th,td{padding:.2em .35em}}
"""

_SCRIPT = """
(function(){
function key(td,num){if(!num)return td.textContent.trim().toLowerCase();var v=td.getAttribute('data-v');var x=parseFloat(v===null?td.textContent:v);return isNaN(x)?null:x;}
function sortBy(t,i,th){var num=th.getAttribute('data-type')==='num';var asc=th.getAttribute('aria-sort')!=='ascending';
t.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('aria-sort');});th.setAttribute('aria-sort',asc?'ascending':'descending');
var body=t.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a.cells[i],num),y=key(b.cells[i],num);if(x===y)return 0;if(x===null)return 1;if(y===null)return -1;return (x<y?-1:1)*(asc?1:-1);});
rows.forEach(function(r){body.appendChild(r);});}
document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('thead th').forEach(function(th,i){
var b=document.createElement('button');b.type='button';b.textContent=th.textContent;b.title='sort by '+th.textContent;th.textContent='';th.appendChild(b);
b.addEventListener('click',function(){sortBy(t,i,th);});});});
document.documentElement.classList.add('js');
document.querySelectorAll('table.has-sec').forEach(function(t){var n=t.querySelectorAll('thead th.sec').length;
var b=document.createElement('button');b.type='button';b.className='coltoggle';b.setAttribute('aria-expanded','false');
b.textContent='show every column ('+n+' more)';
b.addEventListener('click',function(){var all=t.classList.toggle('all');b.setAttribute('aria-expanded',all?'true':'false');
b.textContent=all?'show fewer columns':'show every column ('+n+' more)';});
t.parentNode.parentNode.insertBefore(b,t.parentNode);});
var form=document.getElementById('filters');if(!form)return;form.hidden=false;
function apply(){var f=document.getElementById('filter-family').value,k=document.getElementById('filter-tier').value;
document.querySelectorAll('[data-family]').forEach(function(e){e.hidden=!!f&&e.getAttribute('data-family')!==f;});
document.querySelectorAll('[data-tier]').forEach(function(e){e.hidden=!!k&&e.getAttribute('data-tier')!==k;});
document.querySelectorAll('table.sortable').forEach(function(t){var rows=Array.prototype.slice.call(t.tBodies[0].rows);
var none=rows.length>0&&rows.every(function(r){return r.hidden;});var box=t.parentNode,msg=box.nextElementSibling;
if(!msg||!msg.classList.contains('nomatch')){msg=document.createElement('p');msg.className='empty nomatch';box.parentNode.insertBefore(msg,box.nextSibling);}
var what=[];if(k)what.push('tier: '+k);if(f)what.push('family: '+f);
msg.textContent='No entry matches the filter ('+what.join(', ')+') in this table: '+(t.caption?t.caption.textContent:'');
msg.hidden=!none;box.hidden=none;var b=box.previousElementSibling;if(b&&b.classList.contains('coltoggle'))b.hidden=none;});}
form.addEventListener('change',apply);apply();
})();
"""


def page_html(title: str, body: list[str], families: list[str], tiers: list[str]) -> str:
    """The whole page: head (viewport, inline style), the filter form, ``body`` blocks, inline script."""
    opts = lambda xs: "".join(f'<option value="{esc(x)}">{esc(x)}</option>' for x in xs)  # noqa: E731
    form = ('<form id="filters" class="filters" hidden aria-label="filter the page">'
            f'<label>Family <select id="filter-family"><option value="">all families</option>{opts(families)}</select></label>'
            f'<label>Tier <select id="filter-tier"><option value="">all tiers</option>{opts(tiers)}</select></label>'
            "</form>")
    head = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{esc(title)}</title>",
            f"<style>{_STYLE}</style>", "</head>", "<body>"]
    return "\n".join(head + [body[0], form] + body[1:] + [f"<script>{_SCRIPT}</script>", "</body>", "</html>"]) + "\n"
