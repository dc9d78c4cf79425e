"""The ``survey`` command line: parse, call the library, format. Nothing else lives here.

Heavy imports happen inside the commands so that ``survey --help`` is instant. Library errors
(:class:`~survey.errors.SurveyError`) become ``Error: <message>`` and a non-zero exit code;
anything else is a bug and keeps its traceback, with a line asking for a report.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import __version__
from .errors import SurveyError

__all__ = ["cli", "main"]

log = logging.getLogger("survey")


class SurveyGroup(click.Group):
    """A click group that turns library errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SurveyError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=SurveyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="survey")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """Find and fix WFC3/IR exposures hit by time-variable (He I) background.

    Typical flow: survey scan → survey flag → survey fix → survey report.
    Run `survey COMMAND --help` for each command.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    log.setLevel(level)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def info(files: tuple[Path, ...]) -> None:
    """Check WFC3/IR RAW, IMA or FLT files and print what they hold.

    For each file: rootname, filter, sample sequence, reads and their times (time order,
    seconds since the zeroth read), array size, units and the calwf3 switches that matter
    here. A file that cannot be read gets a one-line error; the others are still shown.
    """
    from .wfc3ir.fitsio import open_exposure

    failures = 0
    for path in files:
        try:
            with open_exposure(path) as exposure:
                click.echo(_describe(exposure))
        except SurveyError as exc:
            click.echo(f"Error: {exc}", err=True)
            failures += 1
    if failures:
        raise click.exceptions.Exit(2)


def _describe(exposure) -> str:
    meta = exposure.meta
    ny, nx = exposure.shape
    times = ", ".join(f"{t:.3f}" for t in exposure.samptime)
    flags = []
    if meta.is_grism:
        flags.append("grism")
    if meta.is_spatial_scan:
        flags.append("spatial scan")
    geometry = f"subarray {meta.subtype}" if meta.subarray else "full frame"
    switches = " ".join(f"{k}={meta.switches.get(k, '?')}" for k in ("CRCORR", "FLATCORR"))
    return "\n".join(
        [
            f"{exposure.path}",
            f"  rootname {meta.rootname}  filter {meta.filter}  {meta.samp_seq} NSAMP={meta.nsamp}"
            f"  EXPTIME={meta.exptime:g} s  {geometry}",
            f"  {exposure.kind}: {exposure.nsamp} imset(s) of {nx}x{ny}, BUNIT {meta.bunit}",
            f"  read times (s): {times}",
            f"  {switches}" + (f"  [{', '.join(flags)}]" if flags else ""),
        ]
    )


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="survey")
    except Exception:  # a bug: keep the traceback, ask for a report
        import traceback

        traceback.print_exc()
        click.echo(
            "survey hit an unexpected error (a bug). Please report it with the traceback above.",
            err=True,
        )
        sys.exit(70)
