"""``survey fix``: parse, call :mod:`survey.fix.runner`, report. Only click is imported here."""

from __future__ import annotations

import click

__all__ = ["fix"]


@click.command()
@click.argument("rootnames", nargs=-1)
@click.option(
    "--flagged",
    is_flag=True,
    help="Fix every exposure whose verdict is uniform-tvb or spatial-tvb.",
)
@click.option(
    "--catalog",
    default="survey.duckdb",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The catalog of `survey scan`/`survey flag`.",
)
@click.option(
    "--out",
    "out_dir",
    default="fixed",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output directory (never the inputs').",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "flatten", "pop-reads", "last-minus-first"]),
    default="auto",
    show_default=True,
    help="auto: flatten for uniform-tvb, pop-reads for spatial-tvb, refuse others.",
)
@click.option(
    "--engine",
    type=click.Choice(["native", "calwf3"]),
    default="native",
    show_default=True,
    help="native: survey's ramp fit (correct ERR); calwf3: hstcal's calwf3.e/wf3ir.e "
    "(flatten only; needs them on PATH, and CRDS or $iref for the reference files).",
)
@click.option(
    "--calwf3-input",
    type=click.Choice(["auto", "raw", "ima"]),
    default="auto",
    show_default=True,
    help="Engine calwf3: raw (the recipe: calwf3 on a copy of the RAW with CRCORR=OMIT), ima "
    "(the archive IMA, flags reset) or auto (raw when <root>_raw.fits is beside the IMA).",
)
@click.option(
    "--refs",
    "references",
    type=click.Choice(["auto", "crds", "iref"]),
    default="auto",
    show_default=True,
    help="Engine calwf3: reference files from CRDS (best references, synced into CRDS_PATH) "
    "or from $iref as the headers name them; auto: CRDS if a CRDS_* variable is set.",
)
@click.option(
    "--sky",
    type=click.Choice(["median", "clipped", "masked"]),
    default="masked",
    show_default=True,
    help="Per-read sky estimator (masked: DQ + sources + clipping).",
)
@click.option(
    "--region",
    default=None,
    metavar="X1:X2,Y1:Y2",
    help="Sky region in science-area pixels (default: the whole science area).",
)
@click.option(
    "-j",
    "--jobs",
    "n_jobs",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Exposures fixed in parallel (processes).",
)
@click.option(
    "--dask",
    "dask",
    metavar="local|ADDRESS",
    default=None,
    help="Fix on a Dask cluster: 'local' starts a LocalCluster of --jobs processes; "
    "tcp://host:port connects to a running scheduler. Every worker must read the IMAs and "
    "write OUT at the same paths; this process alone writes the catalog.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def fix(rootnames, flagged, catalog, out_dir, method, engine, calwf3_input, references, sky,
        region, n_jobs, dask, overwrite) -> None:  # fmt: skip
    """Correct flagged exposures: flatten-ramp (He I), pop-reads (scattered light) or
    last-minus-first, from the archive IMA, which is never modified.

    Writes OUT/<rootname>_flt.fits and OUT/<rootname>_ima.fits (the corrected reads) with the
    per-read skies in an extension FIXREADS, and a row per exposure in the catalog table
    `fixes`. A re-run skips exposures already fixed with the same parameters. Grism data are
    never flattened.
    """
    import sys

    from ..errors import SurveyError
    from .catalog import open_catalog, select_targets, write_fix
    from .exposure import FixParameters, _require_calwf3
    from .runner import make_jobs, run_jobs

    if not rootnames and not flagged:
        raise click.UsageError("name ROOTNAMEs or use --flagged")
    base = FixParameters(method="flatten" if method == "auto" else method, engine=engine,
                         sky=sky, region=region, calwf3_input=calwf3_input,
                         references=references)  # fmt: skip
    if engine == "calwf3":
        _require_calwf3()
    counts: dict[str, int] = {}
    with open_catalog(catalog) as cat:
        jobs = make_jobs(select_targets(cat.con, list(rootnames), flagged), method, base)
        if not jobs:
            click.echo("nothing to fix", err=True)
            return
        results = run_jobs(jobs, out_dir, overwrite=overwrite, n_jobs=n_jobs, dask=dask)
        show = sys.stderr.isatty()
        with click.progressbar(length=len(jobs), label="fixing", file=sys.stderr,
                               hidden=not show) as bar:  # fmt: skip
            for result in results:
                if result.status != "skipped":  # keep the row of the run that made the files
                    write_fix(cat.con, result.row())
                counts[result.status] = counts.get(result.status, 0) + 1
                bar.update(1)
                if result.status in ("refused", "failed") or not show:
                    _report(result)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"{len(jobs)} exposures: {summary}; table `fixes` written", err=True)
    if counts.get("failed"):

        class FixFailedError(SurveyError):
            exit_code = 2

        raise FixFailedError(f"{counts['failed']} exposure(s) failed (see above and table `fixes`)")


def _report(result) -> None:
    if result.status == "fixed":
        before, after = (result.before or {}).get("std"), (result.after or {}).get("std")
        extra = f", sky σ {after:.4g} e-/s" if after else ""  # the notebook's std, as fixes
        if after and before:
            extra = f", sky σ {before:.4g} → {after:.4g} e-/s"
        click.echo(f"{result.rootname}: {result.params.method} → {result.flt_out}{extra}",
                   err=True)  # fmt: skip
    else:
        click.echo(f"{result.rootname}: {result.status}: {result.message}", err=True)
