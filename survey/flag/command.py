"""``survey flag`` and ``survey sql``: parse, call :mod:`survey.flag.triage`, format.

Machine-readable output (table, CSV, JSON) goes to stdout alone; messages go to stderr.
"""

from __future__ import annotations

import click

__all__ = ["flag", "format_frame", "sql"]

FORMATS = ("table", "csv", "json")
#: Columns of the ``table`` format of ``survey flag`` (CSV and JSON carry every column).
TABLE_COLUMNS = ("rootname", "score", "verdict", "excess", "ratio", "chi2_dof", "lr_max",
                 "filter", "asn_id", "reason")  # fmt: skip


def format_frame(frame, fmt: str, columns: tuple[str, ...] | None = None) -> str:
    """Render a polars frame as an aligned text table, CSV or a JSON array of objects."""
    import json
    import math

    if fmt == "csv":
        return frame.write_csv().rstrip("\n")
    rows = frame.to_dicts()
    if fmt == "json":

        def clean(value):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if hasattr(value, "isoformat"):
                return value.isoformat()
            return value

        return json.dumps([{k: clean(v) for k, v in row.items()} for row in rows], indent=1)
    names = [c for c in (columns or frame.columns) if c in frame.columns]
    cells = [[_cell(row[name]) for name in names] for row in rows]
    widths = [max([len(n), *(len(c[i]) for c in cells)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    # header text is data: keep it on one line
    return str(value).replace("\n", " ").replace("\r", " ")


_catalog_option = click.option(
    "--catalog",
    default="survey.duckdb",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The DuckDB catalog written by `survey scan`.",
)
_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format on stdout (json: an array of objects).",
)


@click.command()
@_catalog_option
@_format_option
@click.option(
    "--min-excess",
    type=float,
    default=0.1,
    show_default=True,
    help="Uniform TVB: smallest max − min instantaneous sky rate (e⁻/s).",
)
@click.option(
    "--min-ratio",
    type=float,
    default=1.1,
    show_default=True,
    help="Uniform TVB: smallest max / min instantaneous sky rate.",
)
@click.option(
    "--min-chi2",
    type=float,
    default=10.0,
    show_default=True,
    help="Uniform TVB: smallest χ²/dof of a constant-rate fit.",
)
@click.option(
    "--lr-threshold",
    type=float,
    default=0.1,
    show_default=True,
    help="Scattered light in a read: left − right box rate above this (e⁻/s).",
)
@click.option(
    "--lr-ratio",
    type=float,
    default=1.1,
    show_default=True,
    help="Scattered light in a read: left / right box rate above this.",
)
@click.option(
    "--lr-nsigma",
    type=float,
    default=3.0,
    show_default=True,
    help="Scattered light in a read: left − right also above this many times its error.",
)
@click.option(
    "--min-lr-reads",
    type=int,
    default=2,
    show_default=True,
    help="Spatial TVB: at least this many reads with scattered light.",
)
@click.option(
    "--max-read-error",
    type=float,
    default=0.02,
    show_default=True,
    help="Use only reads whose rate error (of the clipped mean) is at most this (e⁻/s).",
)
@click.option(
    "--read-floor",
    type=float,
    default=0.005,
    show_default=True,
    help="Systematic error per read added in quadrature (e⁻/s).",
)
@click.option(
    "--min-reads",
    type=int,
    default=3,
    show_default=True,
    help="Not applicable with fewer usable reads than this.",
)
def flag(catalog: str, fmt: str, **thresholds) -> None:  # fmt: skip
    """Rank the catalog's exposures by count-rate non-linearity and give each a verdict.

    Every exposure gets one of linear, uniform-tvb (He I-like: flatten-ramp applies),
    spatial-tvb (Earth-limb scattered light: it does not) or not-applicable, with a reason.
    Runs the catalog checks, writes the table `flags` (with the thresholds used) into the
    catalog and prints the ranking, most non-linear first. Rules and thresholds:
    sql/README.md.
    """
    from .triage import FlagParameters, flag_catalog

    params = FlagParameters(**thresholds)
    frame = flag_catalog(catalog, params)
    click.echo(format_frame(frame, fmt, TABLE_COLUMNS if fmt == "table" else None))
    counts = frame["verdict"].value_counts(sort=True).rows()
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts)
    click.echo(f"{len(frame)} exposures: {summary}; table `flags` written", err=True)


@click.command()
@click.argument("query")
@_catalog_option
@_format_option
def sql(query: str, catalog: str, fmt: str) -> None:
    """Run one read-only SELECT QUERY on the catalog and its views.

    Tables: exposures, reads, flags (after `survey flag`); views: interval_rates,
    read_metrics, exposure_metrics. Statements that write are refused. Example:

      survey sql "select asn_id, count(*) from flags where verdict = 'uniform-tvb'
      group by asn_id having count(*) > 2"
    """
    from .triage import query_catalog

    click.echo(format_frame(query_catalog(catalog, query), fmt))
