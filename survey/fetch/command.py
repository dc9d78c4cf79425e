"""``survey fetch``: parse, call :mod:`survey.fetch`, report. Only click is imported here."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["fetch"]


def _checked(parse_name: str):
    """A click callback running ``survey.fetch.criteria.<parse_name>`` on the value."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        from . import criteria

        if value is None or value == ():
            return None
        try:
            return getattr(criteria, parse_name)(value)
        except criteria.FetchCriteriaError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


@click.command(
    "fetch",
    epilog="Exit codes: 0 every file downloaded or present; 2 a file failed or MAST listed a "
    "file name that was refused (the others are fetched), or a bad option; 4 MAST unreachable "
    "or its answer unusable; 130 interrupted (complete files stay, no partial file is left).",
)
@click.option("--program", callback=_checked("parse_program"), help="HST proposal ID, e.g. 12242.")
@click.option(
    "--visit", callback=_checked("parse_visit"),
    help="Visit ID: characters 5-6 of the rootname (ibohbfb9q → BF).",
)  # fmt: skip
@click.option(
    "--obs-id", "obs_id", callback=_checked("parse_obs_id"),
    help="MAST obs_id or a pattern with * and ?, e.g. 'IBOHBF*' (quote it in the shell).",
)  # fmt: skip
@click.option(
    "--filter", "filters", multiple=True, callback=_checked("parse_filters"),
    help="WFC3/IR filter(s), e.g. F105W; repeat or separate with commas.",
)  # fmt: skip
@click.option(
    "--products", default="IMA,FLT,RAW,ASN", show_default=True,
    callback=_checked("parse_products"), help="calwf3 products to download.",
)  # fmt: skip
@click.option(
    "--out", "out_dir", default=".", show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files, flat: OUT/<rootname>_<product>.fits.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
    help="Seconds without an answer from MAST before giving up.",
)  # fmt: skip
@click.option(
    "--overwrite", is_flag=True,
    help="Replace a file of a product's name in OUT that survey fetch did not write.",
)  # fmt: skip
@click.option("--server", default=None, hidden=True, help="MAST base URL (for tests).")
def fetch(program, visit, obs_id, filters, products, out_dir, timeout, overwrite, server) -> None:
    """Download WFC3/IR calwf3 products (IMA, FLT, RAW, ASN) from MAST into one flat folder.

    Queries MAST (astroquery Observations: HST, WFC3/IR, the program, filters and obs_id),
    lists the products of the matching observations and downloads the calwf3 ones asked for
    as OUT/<rootname>_<product>.fits. Files already present with the size MAST lists are
    skipped, so a re-run completes an interrupted one; each file is written under a temporary
    name and renamed when complete. A different file of that name which fetch did not write
    (not in the manifest) is kept and reported (exit 2) unless --overwrite.
    OUT/fetch_manifest.json records each file's dataURI, size and SHA-256 and each run's
    options. A progress bar on a terminal, a summary at the end.
    """
    import sys

    from . import (
        FetchCriteria,
        FetchCriteriaError,
        FetchSummary,
        MastClient,
        plan_fetch,
        run_fetch,
    )
    from .manifest import write_manifest

    try:
        criteria = FetchCriteria(program=program, visit=visit, obs_id=obs_id,
                                 filters=filters or (), products=products)  # fmt: skip
    except FetchCriteriaError as exc:
        raise click.UsageError(str(exc)) from None
    tty = sys.stderr.isatty()
    client = MastClient(server=server, timeout=timeout)
    with _Status("querying MAST", tty):
        found = client.find_products(criteria)
    plan = plan_fetch(found, out_dir, overwrite=overwrite)
    if not found:
        kinds = "/".join(criteria.products)
        click.echo(f"nothing to fetch: MAST lists no {kinds} for WFC3/IR {criteria.describe()}",
                   err=True)  # fmt: skip
        return
    summary = FetchSummary(plan.out_dir)
    try:
        with _ByteProgress(plan.bytes_to_fetch, tty) as (advance, say):
            run_fetch(client, plan, summary=summary, progress=advance, report=say)
    finally:  # also when stopped: the files that did arrive are recorded
        write_manifest(summary, criteria, client.server)
    click.echo(summary.line(), err=True)
    if summary.exit_code:
        raise click.exceptions.Exit(summary.exit_code)


class _Status:
    """A spinner with a message on a terminal while MAST is queried; nothing otherwise."""

    def __init__(self, message: str, enabled: bool):
        self.message, self.enabled, self._status = message, enabled, None

    def __enter__(self) -> None:
        if self.enabled:
            from rich.console import Console

            self._status = Console(stderr=True).status(self.message)
            self._status.start()

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()


class _ByteProgress:
    """A byte-level rich progress bar on a terminal; plain lines on stderr otherwise.

    Yields ``(advance(nbytes), say(line))``: on a terminal only failures and refusals are
    printed, above the bar.
    """

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self._bar = total, enabled, None

    def __enter__(self):
        if not self.enabled:
            return (lambda nbytes: None), (lambda line: click.echo(line, err=True))
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        self._bar = Progress(
            TextColumn("downloading"), *columns, console=Console(stderr=True), transient=True
        )
        self._bar.start()
        task = self._bar.add_task("download", total=self.total or None)

        def say(line: str) -> None:
            if not line.startswith("downloaded "):  # failures and refusals only
                self._bar.console.print(line, markup=False, highlight=False)

        return (lambda nbytes: self._bar.advance(task, nbytes)), say

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
