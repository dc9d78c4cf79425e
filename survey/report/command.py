"""``survey report``: parse, call :func:`survey.report.write_report`, say where the index is.
Only click is imported here."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report"]


@click.command()
@click.option(
    "--catalog",
    default="survey.duckdb",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The catalog of `survey scan`/`survey flag` (and `survey fix`).",
)
@click.option(
    "--out",
    "out_dir",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for index.html and the per-visit pages.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing pages.")
def report(catalog: Path, out_dir: Path, overwrite: bool) -> None:
    """Write self-contained HTML dashboards of the catalog to OUT.

    An index page (every exposure in time by visit and filter, coloured by verdict; the
    non-linearity ranking with its thresholds; FLT sky noise before/after for every fixed
    exposure) and one page per visit (ramps before/after, scattered-light diagnostic, sky
    histograms, before/after cutouts). Built from the catalog alone; the pages inline all
    their JavaScript and images and open without a network.
    """
    from . import write_report

    result = write_report(catalog, out_dir, overwrite=overwrite)
    click.echo(
        f"{result.index}: {result.n_exposures} exposures, {result.n_visits} visit pages, "
        f"{result.n_fixed} fixed",
        err=True,
    )
    click.echo(str(result.index))
