"""``write_report``: the catalog → an index page and one page per visit, written atomically.

Index (``index.html``): program overview in time, the ranking with its thresholds, the sky
noise before/after for every fixed exposure (chart and the seed notebook's mean/median/σ
table), and the visits. Visit pages (``visit-<ipppss>.html``, named after the validated
rootnames, never after header text): the exposures, their ramps before/after, the
scattered-light diagnostic, sky histograms and before/after cutouts of the fixed ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from altair import MaxRowsError

from .. import __version__
from ..atomic import atomic_output, check_writable
from ..errors import SurveyError
from . import charts
from .data import (
    ROBUST_SIGMA,
    ReportData,
    exposure_frame,
    fix_parameters_text,
    histogram_frame,
    load_report_data,
    lr_frame,
    noise_frame,
    primary_sigma,
    ramp_frame,
)
from .page import Page, esc, image_tag, render_page, table_html

__all__ = ["ReportError", "ReportResult", "write_report"]

_VISIT = re.compile(r"^[a-z0-9]{6}$")
INDEX_NAME = "index.html"
_INDEX_CHART = f"{INDEX_NAME}: the %s chart"
#: A visit page draws every exposure's ramp up to this many, else only the flagged ones.
RAMP_PANELS = 12
MAX_RAMP_PANELS = 48


class ReportError(SurveyError):
    """The report cannot be made (empty catalog, an output exists)."""


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote."""

    index: Path  #: the index page
    pages: list[Path]  #: every page written, the index first
    n_exposures: int
    n_visits: int
    n_fixed: int


def write_report(catalog: Path, out: Path, *, overwrite: bool = False) -> ReportResult:
    """Write the HTML report of ``catalog`` into the directory ``out``.

    Existing pages are only replaced with ``overwrite`` (checked before anything is written).
    """
    data = load_report_data(catalog)
    if data.exposures.is_empty():
        raise ReportError(f"{catalog}: the catalog holds no exposures (run `survey scan`)")
    out = Path(out)
    visits = _visit_pages(data.exposures)
    targets = [out / INDEX_NAME, *(out / name for name in visits.values())]
    for target in targets:
        check_writable(target, overwrite=overwrite)
    exposures = exposure_frame(data.exposures, visits)
    context = _Context(data, exposures, _footer(data))
    pages = {out / INDEX_NAME: index_page(context, visits)}
    for visit, name in visits.items():
        pages[out / name] = visit_page(context, visit, visits)
    _write_all(pages, overwrite)
    n_fixed = exposures.filter(pl.col("fix_status") == "fixed").height
    return ReportResult(out / INDEX_NAME, targets, exposures.height, len(visits), n_fixed)


def _write_all(pages: dict[Path, Page], overwrite: bool) -> None:
    """Every page to a temporary file first; only when all are rendered do they take their
    names (the index last), so a failure leaves no page behind and a re-run is clean. Temporary
    files, not strings: an archive-scale report has thousands of ~1 MB pages."""
    with contextlib.ExitStack() as stack:
        for path, page in pages.items():  # entered first, the index is renamed last
            tmp = stack.enter_context(atomic_output(path, overwrite=overwrite))
            tmp.write_text(render_page(page), encoding="utf-8")


def _visit_pages(exposures: pl.DataFrame) -> dict[str, str]:
    """Visit → page file name, in time order (visits from validated rootnames only)."""
    order = exposures.sort("expstart", nulls_last=True)["rootname"].str.slice(0, 6)
    visits = [v for v in dict.fromkeys(order) if _VISIT.match(v)]
    return {visit: f"visit-{visit}.html" for visit in visits}


@dataclass
class _Context:
    data: ReportData
    exposures: pl.DataFrame
    footer: str


def _spec(chart, where: str) -> dict:
    """The Vega-Lite dict of ``chart``; one line naming the limit if it has too many rows."""
    try:
        with charts.row_limit():
            return chart.to_dict()
    except MaxRowsError:
        raise ReportError(
            f"{where}: more than {charts.MAX_ROWS:,} rows to inline in one chart "
            f"(survey.report.charts.MAX_ROWS)"
        ) from None


# -- index page ------------------------------------------------------------------------------
def index_page(ctx: _Context, visits: dict[str, str]) -> Page:
    exposures = ctx.exposures
    catalog = ctx.data.catalog
    page = Page(
        title=f"survey report — {catalog.name}",
        subtitle=f"{exposures.height} exposures in {len(visits)} visits, "
        f"{_counts_text(exposures['verdict'])}",
        controls=_controls(exposures, with_visits=True),
        footer=ctx.footer,
    )
    page.sections.append("<h2>Summary</h2>" + _summary_table(exposures))
    page.chart(
        "overview", _spec(charts.overview_chart(exposures), _INDEX_CHART % "overview"),
        "Program overview",
        "Each exposure at its EXPSTART (bar: to EXPEND), one row per visit; colour = verdict of "
        "<code>survey flag</code>, shape = filter. Hover for the reason, click for the visit.",
    )  # fmt: skip
    page.chart(
        "ranking",
        _spec(charts.ranking_chart(exposures, ctx.data.thresholds), _INDEX_CHART % "ranking"),
        "Ranking",
        "Ranked by score = max(0, excess − 3σ): the change of the sky rate beyond its noise. "
        "Top: the excess itself (the change of the sky rate, in the tooltip beside the score). "
        "Dashed: the thresholds of the verdicts (uniform-tvb needs excess, ratio and χ²/dof at "
        "or above theirs; spatial-tvb needs reads with left − right above its threshold).",
    )  # fmt: skip
    noise = noise_frame(exposures)
    if noise.filter(pl.col("stage") == "survey fix").height:
        page.chart(
            "noise", _spec(charts.noise_chart(noise), _INDEX_CHART % "noise"),
            "Sky noise before and after",
            "σ as in the STScI flatten-ramp notebook: the standard deviation of the FLT sky "
            "pixels (DQ-good, outside the source mask) within median ± 0.5 e⁻/s, which sees the "
            "broad wings a ramp fit broken by He I leaves (a MAD sees only the core: it is in "
            "the tooltip and the table). Archive FLT and corrected FLT, one line per fixed "
            "exposure; right: the archive FLTs of the linear exposures, the level a clean ramp "
            "fit reaches" + _linear_note(noise) + ".",
        )  # fmt: skip
        page.sections.append(_noise_tables(exposures))
    else:
        page.sections.append("<h2>Sky noise before and after</h2><p>No exposure fixed yet "
                             "(run <code>survey fix --flagged</code>).</p>")  # fmt: skip
    page.sections.append("<h2>Visits</h2>" + _visits_table(exposures, visits))
    return page


def _counts_text(column: pl.Series) -> str:
    counts = column.value_counts(sort=True).rows()
    return ", ".join(f"{n} {esc(value)}" for value, n in counts)


def _controls(exposures: pl.DataFrame, *, with_visits: bool) -> str:
    def select(param: str, label: str, values: list[str]) -> str:
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        return (
            f'<label>{label} <select data-param="{param}"><option value="all">all</option>'
            f"{options}</select></label>"
        )

    filters = sorted(v for v in exposures["filter"].unique().to_list() if v is not None)
    parts = [select(charts.FILTER_PARAM, "Filter", filters)]
    if with_visits:
        visits = sorted(exposures["visit"].unique().to_list())
        parts.append(select(charts.VISIT_PARAM, "Visit", visits))
    return f'<div class="controls">{"".join(parts)}</div>'


def _dot(verdict: str) -> str:
    colour = charts.VERDICT_COLOURS.get(verdict, "#000")
    return f'<span class="verdict" style="background:{colour}"></span>{esc(verdict)}'


def _summary_table(exposures: pl.DataFrame) -> str:
    summary = (
        exposures.group_by("verdict")
        .agg(
            n=pl.len(),
            fixed=(pl.col("fix_status") == "fixed").sum(),
            refused=(pl.col("fix_status") == "refused").sum(),
            failed=(pl.col("fix_status") == "failed").sum(),
        )
        .sort("n", descending=True)
    )
    rows = [dict(r, verdict__html=_dot(r["verdict"])) for r in summary.iter_rows(named=True)]
    columns = [("verdict", "verdict"), ("n", "exposures"), ("fixed", "fixed"),
               ("refused", "refused"), ("failed", "failed")]  # fmt: skip
    return table_html(columns, rows, numeric=("n", "fixed", "refused", "failed"))


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _linear_note(noise: pl.DataFrame) -> str:
    """Says so when the linear exposures' σ is the robust one (a scan without the window std)."""
    linear = noise.filter(pl.col("stage") == "linear exposures")
    robust = linear.filter(pl.col("statistic") == ROBUST_SIGMA).height
    if not robust:
        return ""
    return (
        f" (for {robust} of {linear.height} the scan's robust σ: the catalog has no window std "
        "for them; for a clean, Gaussian sky the two agree)"
    )


#: Columns of the seed-style table, per stage: (mean, median, σ, robust σ) of the FLT sky.
_STAGE_COLUMNS = {
    "before": ("before_mean", "before_median", "before_std", "before_sigma"),
    "after": ("after_mean", "after_median", "after_std", "after_sigma"),
}


def _noise_tables(exposures: pl.DataFrame) -> str:
    """The seed notebook's table (mean, median, std of the FLT sky within median ± 0.5 e⁻/s,
    robust σ beside it) for every fixed exposure, and σ over all of them and the linear ones."""
    fixed = exposures.filter(pl.col("fix_status") == "fixed").with_columns(
        gain=pl.col("before_std") / pl.col("after_std"),
        gain_robust=pl.col("before_sigma") / pl.col("after_sigma"),
    )
    keys = [*_STAGE_COLUMNS["before"], *_STAGE_COLUMNS["after"]]
    rows = [
        {**r, **{k: _fmt(r[k]) for k in keys}, "gain": _fmt(r["gain"], 2),
         "gain_robust": _fmt(r["gain_robust"], 2)}
        for r in fixed.iter_rows(named=True)
    ]  # fmt: skip
    columns = [("rootname", "rootname"), ("visit", "visit"), ("filter", "filter"),
               ("fix_method", "method")]  # fmt: skip
    for stage, label in (("before", "archive"), ("after", "fixed")):
        mean, median, std, robust = _STAGE_COLUMNS[stage]
        columns += [(mean, f"{label} mean"), (median, f"{label} median"),
                    (std, f"{label} σ"), (robust, f"{label} robust σ")]  # fmt: skip
    columns += [("gain", "σ archive / fixed"), ("gain_robust", "robust σ archive / fixed")]
    per_exposure = table_html(columns, rows, numeric=(*keys, "gain", "gain_robust"))
    return (
        "<h3>FLT sky of every fixed exposure (e⁻/s)</h3>"
        '<p class="note">As the seed notebook: mean and σ (standard deviation) of the sky '
        "pixels within median ± 0.5 e⁻/s (the notebook takes 0–1 e⁻/s for a 0.47 e⁻/s sky, "
        "1–2 e⁻/s for a 1.5 e⁻/s sky), and the σ-clipped median. In a failed ramp fit mean "
        "and median disagree (skewed, double-peaked sky). The robust σ (1.4826·MAD) measures "
        "only the core of the sky and barely sees the damage. Empty cells: exposures fixed "
        "before survey stored the notebook statistics.</p>"
        + per_exposure
        + "<h3>Over the survey (e⁻/s)</h3>"
        + _aggregate_table(fixed, exposures)
    )


def _aggregate_table(fixed: pl.DataFrame, exposures: pl.DataFrame) -> str:
    linear = exposures.filter(pl.col("verdict") == "linear")
    groups = (
        ("archive FLT of the fixed exposures", fixed, *_STAGE_COLUMNS["before"][2:],
         "before_median"),
        ("survey fix", fixed, *_STAGE_COLUMNS["after"][2:], "after_median"),
        ("archive FLT of the linear exposures", linear, "flt_sky_std", "flt_sky_sigma",
         "flt_sky_median"),
    )  # fmt: skip
    rows = []
    for name, frame, std, robust, median in groups:
        sigmas = frame.select(*primary_sigma(std, robust))
        values = sigmas["sigma"].drop_nulls()
        if sigmas.filter(pl.col("statistic") == ROBUST_SIGMA).height:
            name += " (σ: robust where the window std is missing)"
        rows.append({
            "product": name, "n": str(values.len()),
            "mean_sigma": _fmt(values.mean()), "median_sigma": _fmt(values.median()),
            "std_sigma": _fmt(values.std()) if values.len() > 1 else "",
            "median_robust": _fmt(frame[robust].drop_nulls().median()),
            "median_sky": _fmt(frame[median].drop_nulls().median()),
        })  # fmt: skip
    columns = [("product", "FLT"), ("n", "exposures"), ("mean_sigma", "mean of σ"),
               ("median_sigma", "median of σ"), ("std_sigma", "scatter of σ"),
               ("median_robust", "median of robust σ"), ("median_sky", "median sky")]  # fmt: skip
    numeric = ("n", "mean_sigma", "median_sigma", "std_sigma", "median_robust", "median_sky")
    return table_html(columns, rows, numeric=numeric)


def _visits_table(exposures: pl.DataFrame, visits: dict[str, str]) -> str:
    grouped = exposures.group_by("visit", maintain_order=True).agg(
        targname=pl.col("targname").unique(maintain_order=True).drop_nulls().str.join(", "),
        filters=pl.col("filter").unique(maintain_order=True).drop_nulls().str.join(", "),
        n=pl.len(),
        flagged=pl.col("verdict").is_in(["uniform-tvb", "spatial-tvb"]).sum(),
        fixed=(pl.col("fix_status") == "fixed").sum(),
        start=pl.col("start_text").min(),
    )
    rows = []
    for row in grouped.iter_rows(named=True):
        name = visits.get(row["visit"])
        link = f'<a href="{esc(name)}">{esc(row["visit"])}</a>' if name else esc(row["visit"])
        rows.append({**row, "visit__html": link})
    columns = [("visit", "visit"), ("start", "first start (UT)"), ("targname", "target"),
               ("filters", "filters"), ("n", "exposures"), ("flagged", "flagged"),
               ("fixed", "fixed")]  # fmt: skip
    return table_html(columns, rows, numeric=("n", "flagged", "fixed"))


# -- visit pages -----------------------------------------------------------------------------
def visit_page(ctx: _Context, visit: str, visits: dict[str, str]) -> Page:
    exposures = ctx.exposures.filter(pl.col("visit") == visit)
    names = list(visits)
    at = names.index(visit)
    links = ['<a href="index.html">← program</a>']
    if at > 0:
        links.append(f'<a href="{visits[names[at - 1]]}">previous visit {names[at - 1]}</a>')
    if at + 1 < len(names):
        links.append(f'<a href="{visits[names[at + 1]]}">next visit {names[at + 1]}</a>')
    targets = ", ".join(exposures["targname"].drop_nulls().unique(maintain_order=True))
    filters = ", ".join(exposures["filter"].drop_nulls().unique(maintain_order=True))
    page = Page(
        title=f"Visit {visit}",
        subtitle=f"{exposures.height} exposures · target {targets} · {filters} · "
        f"{_counts_text(exposures['verdict'])}",
        nav=f"<nav>{''.join(links)}</nav>",
        controls=_controls(exposures, with_visits=False),
        footer=ctx.footer,
    )
    page.sections.append("<h2>Exposures</h2>" + _exposures_table(exposures))
    _visit_charts(page, ctx, exposures)
    images = ctx.data.images.filter(pl.col("rootname").is_in(exposures["rootname"].implode()))
    if images.height:
        page.sections.append(_images_section(images, exposures))
    return page


def _visit_charts(page: Page, ctx: _Context, exposures: pl.DataFrame) -> None:
    names = exposures["rootname"].implode()
    where = f"visit {exposures['visit'][0]}: the %s chart"
    reads = ctx.data.reads.filter(pl.col("rootname").is_in(names))
    shown, note = _ramp_exposures(exposures)
    ramps = ramp_frame(reads, ctx.data.fixes, shown)
    if ramps.height:
        page.chart(
            "ramps", _spec(charts.ramps_chart(ramps), where % "ramps"), "Ramps: sky rate per read",
            "Per read: the cumulative rate (median of SCI_k) and the instantaneous rate "
            "(ΔC/Δt of the medians); dashed: after <code>survey fix</code> (flatten makes both "
            "flat at the exposure's mean rate; pop-reads leaves out the scattered-light reads)."
            + note,
        )  # fmt: skip
    lr = lr_frame(reads, exposures)
    if lr.height:
        threshold = ctx.data.thresholds.get("lr_threshold")
        page.chart(
            "scattered", _spec(charts.lr_chart(lr, threshold), where % "scattered-light"),
            "Scattered-light diagnostic",
            "Clipped mean instantaneous rate of the left box (columns 40–239 of the full frame) "
            "minus the right box (760–959), as survey flag uses it: Earth-limb light brightens "
            "the left side.",
        )  # fmt: skip
    images = ctx.data.images.filter(pl.col("rootname").is_in(names))
    hists = histogram_frame(images, exposures)
    if hists.height:
        page.chart(
            "histograms", _spec(charts.histogram_chart(hists), where % "histogram"),
            "Sky histograms",
            "Sky pixels of the FLT (DQ-good, outside the source mask) on common bins; a failed "
            "ramp fit leaves a wide, often double-peaked sky.",
        )  # fmt: skip


def _ramp_exposures(exposures: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The exposures whose ramps a visit page draws: all of a visit of up to RAMP_PANELS,
    else the flagged and fixed ones, most non-linear first, at most MAX_RAMP_PANELS (small
    multiples stay readable)."""
    if exposures.height <= RAMP_PANELS:
        return exposures, ""
    flagged = exposures.filter(
        pl.col("verdict").is_in(["uniform-tvb", "spatial-tvb"]) | (pl.col("fix_status") == "fixed")
    )
    shown = flagged.sort("score", descending=True, nulls_last=True).head(MAX_RAMP_PANELS)
    return shown, (
        f" Drawn: {shown.height} of the visit's {flagged.height} flagged or fixed exposures "
        f"(of {exposures.height}), most non-linear first."
    )


#: FLT sky σ of a fix in a visit's exposure table: notebook std, then robust σ (e⁻/s).
_SIGMA_COLUMNS = ("before_std", "after_std", "before_sigma", "after_sigma")


def _exposures_table(exposures: pl.DataFrame) -> str:
    rows = []
    for r in exposures.iter_rows(named=True):
        rows.append({
            **r, "verdict__html": _dot(r["verdict"]), "score": _fmt(r["score"], 3),
            "excess": _fmt(r["excess"], 3), "ratio": _fmt(r["ratio"], 2),
            **{k: _fmt(r[k]) for k in _SIGMA_COLUMNS},
            "fix": " ".join(str(v) for v in (r["fix_status"], r["fix_method"]) if v),
        })  # fmt: skip
    columns = [("rootname", "rootname"), ("start_text", "start (UT)"), ("filter", "filter"),
               ("samp_seq", "sequence"), ("verdict", "verdict"), ("score", "score"),
               ("excess", "excess"), ("ratio", "ratio"), ("reason", "reason"), ("fix", "fix"),
               ("before_std", "σ archive"), ("after_std", "σ fixed"),
               ("before_sigma", "robust σ archive"), ("after_sigma", "robust σ fixed")]  # fmt: skip
    numeric = ("score", "excess", "ratio", *_SIGMA_COLUMNS)
    return table_html(columns, rows, numeric=numeric)


def _images_section(images: pl.DataFrame, exposures: pl.DataFrame) -> str:
    meta = {r["rootname"]: r for r in exposures.iter_rows(named=True)}
    pairs = []
    for image in images.iter_rows(named=True):
        info = meta.get(image["rootname"], {})
        figures = []
        for png, label, std, robust in (
            (image["before_png"], "archive FLT", info.get("before_std"), info.get("before_sigma")),
            (image["after_png"], "survey fix", info.get("after_std"), info.get("after_sigma")),
        ):
            if png is None:
                continue
            caption = f"{label}: sky σ {_fmt(std)} (robust {_fmt(robust)}) e⁻/s"
            figures.append(f"<figure>{image_tag(png, caption)}"
                           f"<figcaption>{esc(caption)}</figcaption></figure>")  # fmt: skip
        pairs.append(
            f'<div class="pair" data-filter="{esc(info.get("filter"))}">'
            f"<h3>{esc(image['rootname'])} · {esc(info.get('filter'))} · "
            f'{esc(info.get("fix_method"))}</h3><div class="imgs">{"".join(figures)}</div></div>'
        )
    sample = images.row(0, named=True)
    note = (
        f"Central {sample['cutout_size']}×{sample['cutout_size']}-pixel cutouts of the FLT, "
        "shown 1.5× with one stretch for both: each image minus its own sky median, in units "
        "of the corrected sky's robust σ, asinh from −4σ to +40σ. The archive FLT's extra noise "
        "is the extra grain. σ: std within median ± 0.5 e⁻/s (notebook)."
    )
    return (
        f'<h2>Images</h2><p class="note">{esc(note)}</p><div class="figures">{"".join(pairs)}</div>'
    )


# -- footer ----------------------------------------------------------------------------------
def _footer(data: ReportData) -> str:
    thresholds = ", ".join(
        f"{key}={value:g}" for key, value in data.thresholds.items()
        if isinstance(value, int | float)
    )  # fmt: skip
    fix_lines = "<br>".join(esc(line) for line in fix_parameters_text(data.fix_parameters))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    items = [
        ("tool", f"survey {__version__}"),
        ("catalog", str(data.catalog)),
        ("catalog made by", data.info.get("created_by", "")),
        ("last scan", data.info.get("last_scan_at", "")),
        ("flag thresholds", thresholds or "—"),
    ]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    body += f"<dt>fix parameters</dt><dd>{fix_lines or '—'}</dd>"
    body += f"<dt>generated</dt><dd>{esc(now)}</dd>"
    return f"<dl>{body}</dl>"
