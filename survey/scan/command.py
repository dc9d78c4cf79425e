"""``survey scan``: the click command (parse, call :func:`survey.scan.scan_paths`, report).

Only click is imported at module level, so ``survey --help`` stays instant. Register it with
``cli.add_command(scan)``.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["scan"]


@click.command(
    "scan",
    epilog=(
        "Exit codes: 0 every file scanned or skipped as unchanged; 2 one or more files "
        "failed (each is in the scan_errors table; the others are catalogued) or a PATH "
        "does not exist; 1 the catalog cannot be opened; 3 an export file exists (use "
        "--overwrite); 130 interrupted (files already written stay)."
    ),
)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("survey.duckdb"),
    show_default=True,
    help="DuckDB catalog to create or update.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores); with 1 the scan runs in this process, "
    "sharing each read with a helper thread when a core is free. Results do not depend on it.",
)
@click.option(
    "--dask",
    "dask",
    metavar="local|ADDRESS",
    default=None,
    help="Run the per-file work on a Dask cluster: 'local' starts a LocalCluster of --jobs "
    "processes; tcp://host:port connects to a running scheduler. Every worker must read the "
    "PATHS at the same path or URL; this process alone writes the catalog.",
)
@click.option(
    "--rescan",
    is_flag=True,
    help="Scan every file again, even those unchanged since the last scan.",
)
@click.option(
    "--export-parquet",
    "export_parquet",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the tables to DIR/exposures.parquet, reads.parquet and "
    "scan_errors.parquet (flat files, tool version and scan parameters in their metadata).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing Parquet files in the --export-parquet directory.",
)
def scan(
    paths: tuple[str, ...],
    catalog: Path,
    jobs: int | None,
    dask: str | None,
    rescan: bool,
    export_parquet: Path | None,
    overwrite: bool,
) -> None:
    """Per-read sky statistics of every IMA under PATHS into a DuckDB catalog.

    PATHS are IMA files or directories, searched recursively for *_ima.fits and *_ima.fits.gz:
    local paths or fsspec URLs (s3://bucket/prefix, gs://…, file://…; the protocol's package,
    such as s3fs, must be installed). For each IMA the catalog gets one `exposures` row (header
    facts, whether the flatten-ramp correction applies, FLT/RAW/ASN files beside it and the
    archive FLT's sky statistics) and one `reads` row per read after the zeroth: times, the
    exact pstat-style median (median_rate), the DQ- and source-masked sky statistics of the
    cumulative rate and of the per-pixel instantaneous rate, and box and quadrant medians. The
    view `interval_rates` gives ΔC/Δt per read interval. Columns and units: sql/README.md.

    Unchanged files are skipped (size, modification time, content fingerprint); each file is
    written in one transaction, so an interrupted scan resumes where it stopped. A file that
    cannot be scanned is recorded in `scan_errors` and the scan goes on. A summary goes to
    stderr at the end; a progress bar is shown on a terminal.
    """
    import sys

    from .runner import scan_paths

    def report(line: str) -> None:
        click.echo(f"Failed: {line}", err=True)

    summary = scan_paths(
        paths,
        catalog=catalog,
        jobs=jobs,
        dask=dask,
        rescan=rescan,
        export_parquet=export_parquet,
        overwrite=overwrite,
        progress=sys.stderr.isatty(),
        report=report,
        freeze_gc=True,
    )
    click.echo(f"{catalog}: {summary.line()}", err=True)
    for path in summary.exported:
        click.echo(f"wrote {path}", err=True)
    if summary.exit_code:
        raise click.exceptions.Exit(summary.exit_code)
