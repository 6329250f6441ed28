"""The leaderboard's HTML page: one self-contained file, readable with JavaScript off.

Everything is inline (style, script, per-cell SVG curves); images are the PNGs beside the page and
links are relative, so the page loads from disk with no request leaving ``file://``. With
JavaScript on, every table sorts by any column header (numbers by the value in ``data-v``) and a
form filters the page by family and tier; with it off the form stays hidden and every table is
still there. Output depends only on its arguments, so identical inputs give identical bytes.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

__all__ = ["Num", "Link", "Table", "table_html", "cell_svg", "page_html", "swatch"]

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


@dataclass
class Table:
    """A table: ``caption`` (plain text), ``headers``, ``rows`` of str | Num | Link cells; the
    first column is the row header. ``row_tiers`` (one per row) lets the tier filter hide rows."""
    caption: str
    headers: list[str]
    rows: list[list]
    row_tiers: list[str] | None = None
    drop_constant: bool = True
    note: str = ""
    dropped: list[str] = field(default_factory=list)

    def pruned(self) -> "Table":
        """The table without the columns that read the same on every row (two rows or more); the
        caption says what they were."""
        if not self.drop_constant or len(self.rows) < 2:
            return self
        text = lambda c: c.text if isinstance(c, (Num, Link)) else str(c)  # noqa: E731
        keep = [j for j in range(len(self.headers)) if j < 2 or len({text(r[j]) for r in self.rows}) > 1]
        same = [f"{self.headers[j]} = {text(self.rows[0][j])}" for j in range(len(self.headers)) if j not in keep]
        return Table(self.caption, [self.headers[j] for j in keep], [[r[j] for j in keep] for r in self.rows],
                     self.row_tiers, False, self.note, same)


def _cell(c, tag: str, scope: str = "") -> str:
    if isinstance(c, Num):
        v = "" if c.value != c.value else repr(float(c.value))
        return f'<{tag}{scope} class="n" data-v="{v}">{esc(c.text)}</{tag}>'
    if isinstance(c, Link):
        title = f' title="{esc(c.title)}"' if c.title else ""
        inner = f'<a href="{esc(c.href)}"{title}>{esc(c.text)}</a>' if c.href else f"<span{title}>{esc(c.text)}</span>"
        return f"<{tag}{scope}>{inner}</{tag}>"
    wide = ' class="w"' if len(str(c)) > 60 else ""  # long prose wraps instead of widening the table
    return f"<{tag}{scope}{wide}>{esc(str(c))}</{tag}>"


def table_html(t: Table) -> str:
    """A sortable ``<table>`` with a caption, ``scope`` on header cells, in a box that scrolls sideways."""
    t = t.pruned()
    numeric = [any(isinstance(r[j], Num) for r in t.rows) for j in range(len(t.headers))]
    caption = esc(t.caption) + (f' <span class="same">Same on every row: {esc("; ".join(t.dropped))}.</span>'
                                if t.dropped else "")
    out = ['<div class="scroll"><table class="sortable">', f"<caption>{caption}</caption>", "<thead><tr>"]
    num = ' data-type="num"'
    out += [f'<th scope="col"{num if n else ""}>{esc(h)}</th>' for h, n in zip(t.headers, numeric)]
    out += ["</tr></thead>", "<tbody>"]
    for i, row in enumerate(t.rows):
        tier = f' data-tier="{esc(t.row_tiers[i])}"' if t.row_tiers else ""
        out.append(f"<tr{tier}>" + _cell(row[0], "th", ' scope="row"') + "".join(_cell(c, "td") for c in row[1:]) + "</tr>")
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
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);line-height:1.45;margin:0 auto;max-width:96em;padding:0 1em 3em}
header{border-bottom:1px solid var(--line);margin-bottom:1em}
h1{margin:.6em 0 .3em}h2{margin-top:2em;border-bottom:1px solid var(--line)}h3{margin-bottom:.3em}
.lede{font-size:1.08em;max-width:52em}
nav{display:flex;flex-wrap:wrap;gap:.2em .9em;margin:.4em 0}nav a{white-space:nowrap}a{color:var(--accent)}
.filters{background:var(--head);padding:.5em .8em;border-radius:4px;display:flex;flex-wrap:wrap;gap:1em;position:sticky;top:0;z-index:2}
.scroll{overflow-x:auto;max-width:100%;margin:.3em 0 1.2em}
table{border-collapse:collapse;font-size:.9em}
caption{text-align:left;font-size:.92em;color:var(--muted);padding:.2em 0 .4em;caption-side:top;max-width:60em}
th,td{border:1px solid var(--line);padding:.25em .55em;text-align:left;white-space:nowrap}td.w{white-space:normal;min-width:18em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:var(--head);position:sticky;top:0}
thead th button{all:unset;cursor:pointer}thead th button::after{content:" \\2195";color:#999}
thead th[aria-sort=ascending] button::after{content:" \\2191";color:var(--fg)}
thead th[aria-sort=descending] button::after{content:" \\2193";color:var(--fg)}
tbody th{font-weight:600}
.same,.note{color:var(--muted);font-size:.9em}
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
var form=document.getElementById('filters');if(!form)return;form.hidden=false;
function apply(){var f=document.getElementById('filter-family').value,k=document.getElementById('filter-tier').value;
document.querySelectorAll('[data-family]').forEach(function(e){e.hidden=!!f&&e.getAttribute('data-family')!==f;});
document.querySelectorAll('[data-tier]').forEach(function(e){e.hidden=!!k&&e.getAttribute('data-tier')!==k;});}
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
