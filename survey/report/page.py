"""HTML assembly: self-contained pages that open anywhere without a network.

A page inlines the vega-embed bundle of vl-convert-python (Vega, Vega-Lite, vega-embed; no
``<script src>``, no CDN) once, each chart's Vega-Lite spec as JSON and each image as a
``data:`` URI. Everything from the catalog is text that may come from a FITS header: it is
HTML-escaped in the page, and ``<``, ``>`` and ``&`` are ``\\u``-escaped inside the JSON of the
specs, so no value can close a ``<script>`` element or open markup.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "Page",
    "esc",
    "image_tag",
    "render_page",
    "script_json",
    "table_html",
    "vega_bundle",
]

_STYLE = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; }
body { margin: 0 auto; max-width: 1180px; padding: 0 24px 40px; }
header { border-bottom: 2px solid #1f77b4; margin-bottom: 8px; }
h1 { font-size: 1.6em; margin: 18px 0 4px; }
h2 { font-size: 1.2em; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
p.lead, p.note { color: #555; margin: 4px 0 10px; }
nav a { margin-right: 14px; }
.controls { position: sticky; top: 0; background: #fff; padding: 8px 0; z-index: 5;
            border-bottom: 1px solid #eee; }
.controls label { margin-right: 18px; }
table { border-collapse: collapse; font-size: 0.9em; margin: 6px 0 12px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 9px; text-align: left; }
th { background: #f4f6f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; width: 10px; height: 10px; border-radius: 5px;
           margin-right: 5px; }
.figures { display: flex; flex-wrap: wrap; gap: 22px; }
figure { margin: 0; }
figure img { width: 288px; height: 288px; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; color: #444; max-width: 288px; }
.pair { border: 1px solid #e4e4e4; padding: 8px; border-radius: 4px; }
.pair h3 { font-size: 1em; margin: 0 0 6px; }
.pair .imgs { display: flex; gap: 8px; }
footer { margin-top: 36px; border-top: 1px solid #ddd; font-size: 0.82em; color: #555; }
footer dt { font-weight: 600; float: left; clear: left; width: 140px; }
footer dd { margin-left: 150px; }
"""

# Records every error of the page before anything else runs (the browser test reads it), and
# marks the page rendered once every chart has been drawn.
_ERROR_TRAP = """
window.surveyErrors = [];
function surveyError(text) {
  window.surveyErrors.push(String(text));
  document.documentElement.setAttribute('data-js-errors', window.surveyErrors.join(' | '));
}
window.addEventListener('error', e => surveyError(e.message));
window.addEventListener('unhandledrejection', e => surveyError(e.reason));
"""

_EMBED = """
const surveyViews = [];
const surveyOptions = {actions: false, renderer: 'svg'};
Promise.all(Object.entries(surveySpecs).map(([id, spec]) =>
  vegaEmbed('#' + id, spec, surveyOptions).then(result => surveyViews.push(result.view))
)).then(() => {
  surveyFromHash();
  return surveyChoose();
}).then(() => {
  document.documentElement.setAttribute('data-rendered', String(surveyViews.length));
}).catch(surveyError);

// a link such as index.html#filter=F105W&visit=ibohbf opens the page with that choice
function surveyFromHash() {
  const wanted = new URLSearchParams(window.location.hash.slice(1));
  for (const select of document.querySelectorAll('select[data-param]')) {
    const value = wanted.get(select.dataset.param.replace('_choice', ''));
    if (value !== null && [...select.options].some(option => option.value === value)) {
      select.value = value;
    }
  }
}

function surveyChoose() {
  const choice = {};
  for (const select of document.querySelectorAll('select[data-param]')) {
    choice[select.dataset.param] = select.value;
  }
  for (const view of surveyViews) {
    for (const [name, value] of Object.entries(choice)) {
      try { view.signal(name, value); } catch (e) { /* this chart has no such parameter */ }
    }
  }
  for (const row of document.querySelectorAll('tr[data-filter], .pair[data-filter]')) {
    const hidden = (choice.filter_choice && choice.filter_choice !== 'all'
                    && row.dataset.filter !== choice.filter_choice)
                || (choice.visit_choice && choice.visit_choice !== 'all'
                    && row.dataset.visit !== choice.visit_choice);
    row.hidden = hidden;
  }
  return Promise.all(surveyViews.map(view => view.runAsync()));
}
for (const select of document.querySelectorAll('select[data-param]')) {
  select.addEventListener('change', surveyChoose);
}
"""


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """The vega-embed JavaScript bundle (Vega + Vega-Lite + vega-embed) from vl-convert."""
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())


def esc(value: object) -> str:
    """HTML text of a value (None → empty), quotes escaped too."""
    return "" if value is None else html.escape(str(value), quote=True)


def script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` survives literally."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def image_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inline as a ``data:`` URI."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def table_html(
    columns: Sequence[tuple[str, str]], rows: Iterable[dict], *, numeric: Sequence[str] = ()
) -> str:
    """A table of ``rows`` (dicts); ``columns`` = (key, heading). Cells are escaped unless
    the row gives ``<key>__html`` (markup this module made). ``filter``/``visit`` keys become
    ``data-`` attributes so the page's drop-downs can hide rows."""
    head = "".join(f"<th>{esc(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        attrs = "".join(
            f' data-{key}="{esc(row[key])}"' for key in ("filter", "visit") if key in row
        )
        cells = []
        for key, _ in columns:
            inner = row.get(f"{key}__html", esc(row.get(key)))
            css = ' class="num"' if key in numeric else ""
            cells.append(f"<td{css}>{inner}</td>")
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass
class Page:
    """One HTML page: title, navigation, sections of markup and the charts they refer to."""

    title: str
    subtitle: str = ""
    nav: str = ""
    controls: str = ""
    sections: list[str] = field(default_factory=list)
    specs: dict[str, dict] = field(default_factory=dict)
    footer: str = ""

    def chart(self, chart_id: str, spec: dict, heading: str, note: str = "") -> None:
        """Add a section holding one chart (``spec``: a Vega-Lite dict)."""
        self.specs[chart_id] = spec
        text = f'<p class="note">{note}</p>' if note else ""
        self.sections.append(f'<h2>{heading}</h2>{text}<div id="{chart_id}"></div>')


def render_page(page: Page) -> str:
    """The complete HTML document of ``page`` (title and subtitle are escaped here; sections,
    nav, controls and footer are markup built with :func:`esc`)."""
    specs = script_json(page.specs)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(page.title)}</title>
<style>{_STYLE}</style>
<script>{_ERROR_TRAP}</script>
<script>{vega_bundle()}</script>
</head>
<body>
<header><h1>{esc(page.title)}</h1><p class="lead">{esc(page.subtitle)}</p>{page.nav}</header>
{page.controls}
{"".join(f"<section>{s}</section>" for s in page.sections)}
<footer>{page.footer}</footer>
<script>const surveySpecs = {specs};</script>
<script>{_EMBED}</script>
</body>
</html>
"""
