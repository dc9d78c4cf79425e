"""The report's charts: pure functions from polars frames (see :mod:`survey.report.data`) to
Altair charts. No I/O, no HTML; tests read the Vega-Lite specs.

Every chart that shows exposures carries two Vega-Lite parameters, ``filter_choice`` and
``visit_choice`` (value ``"all"``), and filters its rows on them; the page's drop-downs set
them on every chart at once. Rows stay one per exposure (or per read on a visit page); above
:data:`LINEAR_SAMPLE` linear exposures the index charts draw every other exposure and an evenly
spaced sample of the linear ones (their subtitle says so), so an archive-scale catalog (10⁵
exposures) keeps an index of a few MB. :data:`MAX_ROWS` raises Altair's 5000-row guard on
purpose and refuses anything bigger than a page should hold (``survey report`` turns that
into one ``Error:`` line).
"""

from __future__ import annotations

import contextlib

import altair as alt
import polars as pl

__all__ = [
    "FILTER_PARAM",
    "LINEAR_SAMPLE",
    "MAX_ROWS",
    "MIN_HALF_SPAN",
    "VERDICT_COLOURS",
    "VISIT_PARAM",
    "histogram_chart",
    "lr_chart",
    "noise_chart",
    "overview_chart",
    "ramps_chart",
    "ranking_chart",
    "row_limit",
    "sample_linear",
    "thin",
]

#: Most rows a chart may inline (10⁴ exposures of a large program fit; 5000 is Altair's guard).
MAX_ROWS = 50_000
#: Linear exposures an index chart draws at most: above it an evenly spaced sample (every
#: exposure of another verdict is drawn), so the index of an archive-scale catalog stays a few
#: MB and its SVG drawable.
LINEAR_SAMPLE = 5_000
FILTER_PARAM, VISIT_PARAM = "filter_choice", "visit_choice"
VERDICT_COLOURS = {
    "uniform-tvb": "#d62728",
    "spatial-tvb": "#9467bd",
    "linear": "#1f77b4",
    "not-applicable": "#a0a0a0",
    "not flagged": "#333333",
}
#: e⁻/s: the smallest half-range of a ramp panel's y axis (half the default ``--min-excess``).
MIN_HALF_SPAN = 0.05
STAGE_ORDER = ["archive FLT", "survey fix", "linear exposures"]
_WIDTH = 860
_RATE = "e⁻/s"


@contextlib.contextmanager
def row_limit(rows: int | None = None):
    """Altair's row guard raised to ``rows`` (default :data:`MAX_ROWS`) while charts are built
    and serialised."""
    with alt.data_transformers.enable("default", max_rows=rows or MAX_ROWS):
        yield


def _verdict_colour(title: str = "verdict") -> alt.Color:
    scale = alt.Scale(domain=list(VERDICT_COLOURS), range=list(VERDICT_COLOURS.values()))
    return alt.Color("verdict:N", scale=scale, title=title)


def _selectable(chart, *, by_visit: bool = True):
    """Add the page-wide filter/visit parameters and filter the rows on them."""
    params = [alt.param(name=FILTER_PARAM, value="all")]
    test = f"({FILTER_PARAM} == 'all' || datum.filter == {FILTER_PARAM})"
    if by_visit:
        params.append(alt.param(name=VISIT_PARAM, value="all"))
        test += f" && ({VISIT_PARAM} == 'all' || datum.visit == {VISIT_PARAM})"
    return chart.add_params(*params).transform_filter(test)


def _threshold_rule(value: float, label: str, y_field: str = "y") -> alt.LayerChart:
    """A dashed horizontal line at ``value`` with its label at the right end."""
    base = alt.Chart(pl.DataFrame({y_field: [value], "label": [label]}))
    rule = base.mark_rule(color="#444", strokeDash=[6, 4]).encode(y=f"{y_field}:Q")
    text = base.mark_text(align="right", dy=-6, x="width", color="#444", fontSize=11).encode(
        y=f"{y_field}:Q", text="label:N"
    )
    return rule + text


def thin(frame: pl.DataFrame, which: pl.Expr, limit: int) -> tuple[pl.DataFrame, int]:
    """``frame`` with at most ``limit`` of the rows where ``which`` holds, evenly spaced in
    the frame's order (deterministic), and every other row; and how many rows ``which`` held.

    Row i of the n chosen ones is kept when i·limit mod n < limit: exactly ``limit`` rows,
    one at the start of each of ``limit`` equal stretches."""
    n = frame.filter(which).height
    if n <= limit:
        return frame, n
    position = pl.int_range(pl.len()).over(which)
    return frame.filter(~which | ((position * limit) % n < limit)), n


def sample_linear(frame: pl.DataFrame, limit: int | None = None) -> tuple[pl.DataFrame, str]:
    """Every exposure not linear and at most ``limit`` (default :data:`LINEAR_SAMPLE`) linear
    ones (:func:`thin`, in the frame's order); the second value says what is drawn ("" when
    everything is)."""
    linear = pl.col("verdict") == "linear"
    shown, n_linear = thin(frame, linear, limit or LINEAR_SAMPLE)
    if shown.height == frame.height:
        return frame, ""
    others = frame.height - n_linear
    return shown, (
        f"Drawn: all {others:,} exposures not linear (flagged, not applicable, not flagged) "
        f"and {shown.height - others:,} of {n_linear:,} linear ones, evenly spaced"
    )


def _titled(text: str, note: str) -> alt.TitleParams | str:
    return alt.TitleParams(text, subtitle=note) if note else text


# -- index page ------------------------------------------------------------------------------
def overview_chart(exposures: pl.DataFrame) -> alt.VConcatChart:
    """Every exposure in time, one row per visit, coloured by verdict, shaped by filter: on
    the program's UT axis (zoom and pan with the mouse) and, below, in minutes since the
    visit's first exposure (orbits and exposure order). Bars span EXPSTART → EXPEND. Needs
    ``rootname visit filter verdict start_utc end_utc start_text expstart expend excess ratio
    score reason href``. Above :data:`LINEAR_SAMPLE` linear exposures, a sample of them
    (:func:`sample_linear`, evenly spaced in time if the frame is in time order)."""
    tooltip = [
        alt.Tooltip("rootname:N"),
        alt.Tooltip("visit:N"),
        alt.Tooltip("filter:N"),
        alt.Tooltip("start_text:N", title="start (UT)"),
        alt.Tooltip("verdict:N"),
        alt.Tooltip("score:Q", format=".3f", title=f"score ({_RATE})"),
        alt.Tooltip("excess:Q", format=".3f", title=f"excess ({_RATE})"),
        alt.Tooltip("ratio:Q", format=".2f"),
        alt.Tooltip("reason:N"),
    ]
    exposures = exposures.select(
        "rootname",
        "visit",
        "filter",
        "verdict",
        "start_utc",
        "end_utc",
        "start_text",
        "expstart",
        "expend",
        "score",
        "excess",
        "ratio",
        "reason",
        "href",
    )  # only what the chart shows: the page inlines it
    exposures, note = sample_linear(exposures)
    if note:
        note += " in time"
    n_visits = max(1, exposures["visit"].n_unique()) if len(exposures) else 1
    y = alt.Y("visit:N", title="visit", sort="ascending")
    program = _timeline(
        x=alt.X("start_utc:T", title="EXPSTART (UT)", scale=alt.Scale(type="utc")),
        x2="end_utc:T",
        y=y,
        tooltip=tooltip,
        data=exposures,
    ).properties(width=_WIDTH, height=max(90, 22 * n_visits), title="The program (UT)")
    in_visit = (
        _timeline(
            x=alt.X("start_min:Q", title="minutes since the visit's first exposure"),
            x2="end_min:Q",
            y=y,
            tooltip=tooltip,
            data=exposures,
        )
        .transform_joinaggregate(visit_start="min(expstart)", groupby=["visit"])
        .transform_calculate(
            start_min="(datum.expstart - datum.visit_start) * 1440",
            end_min="(datum.expend - datum.visit_start) * 1440",
        )
        .properties(width=_WIDTH, height=max(90, 22 * n_visits), title="Inside each visit")
    )
    chart = alt.vconcat(
        _selectable(program.interactive(bind_y=False)),
        _selectable(in_visit),
        title=_titled(
            "Program overview: every exposure in time (click one for its visit page)", note
        ),
    )
    return chart.resolve_scale(color="shared", shape="shared")


def _timeline(*, x, x2, y, tooltip, data) -> alt.LayerChart:
    base = alt.Chart(data).encode(x=x, y=y, tooltip=tooltip, href="href:N")
    spans = base.mark_bar(height=6, opacity=0.35).encode(
        x2=x2, color=_verdict_colour().legend(None)
    )
    points = base.mark_point(filled=True, size=90, opacity=0.9).encode(
        color=_verdict_colour(), shape=alt.Shape("filter:N", title="filter")
    )
    return spans + points


def ranking_chart(exposures: pl.DataFrame, thresholds: dict[str, float]) -> alt.VConcatChart:
    """Exposures sorted by non-linearity score (rank 1 = most non-linear), with the triage's
    quantities against their thresholds: excess and ``min_excess`` (e⁻/s; uniform-tvb tests
    excess, the score only orders), χ²/dof and ``min_chi2``, the largest left − right
    difference and ``lr_threshold`` (e⁻/s). Ranks count every exposure; above
    :data:`LINEAR_SAMPLE` linear ones a sample of them is drawn, evenly spaced in rank."""
    columns = (
        "rootname",
        "visit",
        "filter",
        "verdict",
        "score",
        "excess",
        "ratio",
        "chi2_dof",
        "lr_max",
        "reason",
        "href",
    )
    data = exposures.select(columns).sort(["score", "excess"], descending=True, nulls_last=True)
    data = data.with_columns(
        rank=pl.int_range(1, pl.len() + 1), chi2_plot=pl.col("chi2_dof").clip(lower_bound=0.1)
    )
    data, note = sample_linear(data)
    if note:
        note += " in rank"
    x = alt.X(
        "rank:Q",
        title="rank by score = max(0, excess − 3σ) (1 = most non-linear)",
        scale=alt.Scale(nice=False),
        axis=alt.Axis(tickMinStep=1, format="d"),
    )
    tooltip = [
        "rootname:N",
        "visit:N",
        "filter:N",
        "verdict:N",
        alt.Tooltip("score:Q", format=".3f"),
        alt.Tooltip("excess:Q", format=".3f"),
        alt.Tooltip("ratio:Q", format=".2f"),
        alt.Tooltip("chi2_dof:Q", format=".1f"),
        alt.Tooltip("lr_max:Q", format=".3f"),
        "reason:N",
    ]
    panels = []
    for field, title, scale, key, label in (
        ("excess", f"excess: sky-rate change ({_RATE})", alt.Scale(), "min_excess", "min excess"),
        ("chi2_plot", "χ²/dof of a constant rate", alt.Scale(type="log"), "min_chi2", "min χ²/dof"),
        ("lr_max", f"max left − right ({_RATE})", alt.Scale(), "lr_threshold", "L − R threshold"),
    ):
        points = (
            alt.Chart(data)
            .mark_circle(size=55, opacity=0.85)
            .encode(
                x=x,
                y=alt.Y(f"{field}:Q", title=title, scale=scale),
                color=_verdict_colour(),
                tooltip=tooltip,
                href="href:N",
            )
        )
        value = thresholds.get(key)
        layer = (
            points
            if value is None
            else points + _threshold_rule(value, f"{label} {value:g}", y_field=field)
        )
        panels.append(_selectable(layer.properties(width=_WIDTH, height=130)))
    title = _titled("Ranking: non-linearity of every exposure", note)
    return alt.vconcat(*panels, title=title).resolve_scale(color="shared")


def noise_chart(noise: pl.DataFrame) -> alt.LayerChart:
    """FLT sky σ before (archive FLT) and after (survey fix) for every fixed exposure, joined
    by a line, beside the σ of the linear exposures' archive FLTs (the reference). σ is the
    seed notebook's std within median ± 0.5 e⁻/s where the catalog has it (``statistic``
    says), the robust σ in the tooltip. Needs ``rootname visit filter stage sigma statistic
    robust_sigma median method`` (:func:`survey.report.data.noise_frame`). Above
    :data:`LINEAR_SAMPLE` linear exposures, an evenly spaced sample of them."""
    noise, n_linear = thin(noise, pl.col("stage") == "linear exposures", LINEAR_SAMPLE)
    note = (
        f"Linear exposures: {LINEAR_SAMPLE:,} of {n_linear:,}, evenly spaced"
        if n_linear > LINEAR_SAMPLE
        else ""
    )
    base = alt.Chart(noise).encode(
        x=alt.X("stage:N", sort=STAGE_ORDER, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("sigma:Q", title=f"FLT sky σ ({_RATE}; notebook: std within median ± 0.5)",
                scale=alt.Scale(zero=True)),
        color=alt.Color("filter:N", title="filter"),
        tooltip=[
            "rootname:N", "visit:N", "filter:N", "stage:N", "method:N",
            alt.Tooltip("sigma:Q", format=".4f", title=f"σ ({_RATE})"),
            alt.Tooltip("statistic:N", title="σ is"),
            alt.Tooltip("robust_sigma:Q", format=".4f", title=f"robust σ, MAD ({_RATE})"),
            alt.Tooltip("median:Q", format=".4f", title=f"sky median ({_RATE})"),
        ],
    )  # fmt: skip
    lines = base.transform_filter("datum.stage != 'linear exposures'").mark_line(opacity=0.6)
    lines = lines.encode(detail="rootname:N")
    points = base.mark_circle(size=70, opacity=0.85).encode(
        xOffset=alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-1, 1]))
    )
    chart = (lines + points).transform_calculate(
        jitter="datum.stage == 'linear exposures' ? sampleNormal(0, 0.25) : 0"
    )
    chart = chart.properties(
        width=520,
        height=320,
        title=_titled("Sky noise before and after the fix (linear exposures: reference)", note),
    )
    return _selectable(chart)


# -- visit pages -----------------------------------------------------------------------------
def ramps_chart(ramps: pl.DataFrame, *, columns: int = 3) -> alt.FacetChart:
    """Small multiples, one per exposure: the per-read sky rate against time, cumulative
    (SCI_k) and instantaneous (ΔC/Δt), before and after the fix. Needs ``rootname label
    visit filter t rate quantity stage``."""
    base = alt.Chart().encode(
        x=alt.X("t:Q", title="time since the zeroth read (s)"),
        y=alt.Y("rate:Q", title=f"sky rate ({_RATE})", scale=alt.Scale(zero=False)),
        color=alt.Color(
            "quantity:N",
            title="rate",
            scale=alt.Scale(domain=["instantaneous", "cumulative"], range=["#d62728", "#1f77b4"]),
        ),
        tooltip=[
            "rootname:N",
            "quantity:N",
            "stage:N",
            alt.Tooltip("t:Q", format=".1f"),
            alt.Tooltip("rate:Q", format=".4f", title=f"rate ({_RATE})"),
        ],
    )
    # a y range of at least ±MIN_HALF_SPAN around the median, so that noise of a linear
    # exposure does not fill the panel like a real change of the sky
    span = (
        alt.Chart()
        .mark_rule(opacity=0)
        .transform_joinaggregate(mid="median(rate)", groupby=["label"])
        .transform_calculate(lo=f"datum.mid - {MIN_HALF_SPAN}", hi=f"datum.mid + {MIN_HALF_SPAN}")
        .encode(x="t:Q", y="lo:Q", y2="hi:Q")
    )
    dash = alt.StrokeDash(
        "stage:N",
        title="stage",
        sort=["before", "after"],
        scale=alt.Scale(domain=["before", "after"], range=[[1, 0], [5, 3]]),
    )
    points = base.mark_point(size=22, filled=True, opacity=0.8)
    layer = alt.layer(
        base.mark_line().encode(strokeDash=dash), points, span, data=ramps
    ).properties(width=250, height=170)
    chart = layer.facet(
        facet=alt.Facet("label:N", title=None, header=alt.Header(labelFontSize=12)),
        columns=columns,
    ).resolve_scale(y="independent")
    chart = chart.properties(title="Sky rate per read (reads too imprecise to use are not shown)")
    return _selectable(chart)


def lr_chart(lr: pl.DataFrame, threshold: float | None) -> alt.LayerChart:
    """Scattered-light diagnostic: left − right box difference of the instantaneous rate per
    read, one line per exposure, with the triage's threshold. Needs ``rootname visit filter t
    lr_diff verdict``."""
    lines = (
        alt.Chart(lr)
        .mark_line(point=True)
        .encode(
            x=alt.X("t:Q", title="time since the zeroth read (s)"),
            y=alt.Y("lr_diff:Q", title=f"left − right ({_RATE})"),
            color=alt.Color("rootname:N", title="exposure"),
            tooltip=[
                "rootname:N",
                "verdict:N",
                alt.Tooltip("t:Q", format=".1f"),
                alt.Tooltip("lr_diff:Q", format=".4f", title=f"L − R ({_RATE})"),
            ],
        )
    )
    chart = (
        lines
        if threshold is None
        else lines + _threshold_rule(threshold, f"threshold {threshold:g}", y_field="lr_diff")
    )
    chart = chart.properties(
        width=_WIDTH - 120,
        height=220,
        title="Scattered light: left − right box difference per read (instantaneous rate)",
    )
    return _selectable(chart)


def histogram_chart(hists: pl.DataFrame, *, columns: int = 3) -> alt.FacetChart:
    """Sky histograms of the archive FLT and the fixed FLT, one panel per exposure (fraction
    of sky pixels per bin). Needs ``rootname visit filter stage rate fraction``."""
    layer = (
        alt.Chart()
        .mark_line(interpolate="step")
        .encode(
            x=alt.X("rate:Q", title=f"FLT sky ({_RATE})", scale=alt.Scale(zero=False)),
            y=alt.Y("fraction:Q", title="fraction of sky pixels per bin"),
            color=alt.Color(
                "stage:N",
                title="FLT",
                sort=STAGE_ORDER[:2],
                scale=alt.Scale(domain=STAGE_ORDER[:2], range=["#d62728", "#2ca02c"]),
            ),
            tooltip=[
                "rootname:N",
                "stage:N",
                alt.Tooltip("rate:Q", format=".4f"),
                alt.Tooltip("fraction:Q", format=".4f"),
            ],
        )
        .properties(width=250, height=170)
    )
    chart = (
        alt.layer(layer, data=hists)
        .facet(facet=alt.Facet("rootname:N", title=None), columns=columns)
        .resolve_scale(x="independent", y="independent")
    )
    chart = chart.properties(title="FLT sky histograms: archive (before) and survey fix (after)")
    return _selectable(chart)
