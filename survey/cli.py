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


def _csv(kind: type):
    """A click callback turning 'a,b,c' into a tuple of ``kind``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list, got {value!r}") from None

    return parse


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--visits", default=2, show_default=True, help="Number of visits (one ASN each).")
@click.option(
    "--exposures-per-visit", default=4, show_default=True,
    help="Exposures per visit (about two 1600-s exposures fit in an orbit).",
)  # fmt: skip
@click.option(
    "--size", type=click.Choice(["1024", "522", "266", "138", "74"]), default="1024",
    show_default=True, help="Raw array size: full frame or a centred IRSUB subarray.",
)  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Random seed: same seed, same files.")
@click.option(
    "--filters", callback=_csv(str), default="F105W", show_default=True,
    help="Filters, one per visit, cycled (F098M F105W F110W F125W F140W F160W G102 G141).",
)  # fmt: skip
@click.option(
    "--samp-seq", callback=_csv(str), default="STEP200", show_default=True,
    help="Sample sequences per visit, cycled (RAPID, SPARS5..SPARS200, STEP25..STEP400).",
)  # fmt: skip
@click.option(
    "--nsamp", callback=_csv(int), default="16", show_default=True,
    help="NSAMP per visit, cycled (2..16, zeroth read included).",
)  # fmt: skip
@click.option(
    "--he-fraction", default=0.35, show_default=True,
    help="Fraction of eligible exposures (F105W/F110W/G102, >= 500 s) given He I.",
)  # fmt: skip
@click.option(
    "--scattered-fraction", default=0.15, show_default=True,
    help="Fraction of eligible exposures given Earth-limb scattered light.",
)  # fmt: skip
@click.option("--crowded", is_flag=True, help="Crowded fields (many stars) in every visit.")
@click.option(
    "--crcorr", type=click.Choice(["complete", "omit"]), default="complete", show_default=True,
    help="complete: what MAST holds (IMA with CR flags + FLT from the ramp fit); "
    "omit: the IMA as calwf3 leaves it with CRCORR=OMIT, no FLT.",
)  # fmt: skip
@click.option("--proposid", default=12242, show_default=True, help="Proposal ID (PROPOSID).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def simulate(
    outdir: Path,
    visits: int,
    exposures_per_visit: int,
    size: str,
    seed: int,
    filters: tuple[str, ...],
    samp_seq: tuple[str, ...],
    nsamp: tuple[int, ...],
    he_fraction: float,
    scattered_fraction: float,
    crowded: bool,
    crcorr: str,
    proposid: int,
    overwrite: bool,
) -> None:
    """Write a synthetic WFC3/IR program with known truth to OUTDIR.

    Per visit an ASN table; per exposure what MAST holds: the IMA (flat-fielded e-/s reads,
    calwf3 noise model ERR, DQ with zero-read, saturation, static bad-pixel and CRCORR's cosmic-
    ray flags) and the FLT of calwf3's ramp fit, which fails on He I exposures as calwf3 does
    (--crcorr omit: the CRCORR=OMIT IMA instead, no FLT); plus truth.parquet (one row per
    exposure: filter, He I profile and peak, scattered-light peak, the category a perfect
    triage gives), truth_reads.parquet (per-read background) and truth/<rootname>_truth.fits
    (noiseless rate image, CR map). Physics: zodiacal sky per filter, He I (rising, decaying,
    step) in F105W/F110W/G102, Earth-limb scattered light, stars and galaxies, cosmic rays,
    saturation, per-amplifier read noise.
    """
    from .simulate import ProgramConfig, simulate_program

    config = ProgramConfig(
        n_visits=visits,
        exposures_per_visit=exposures_per_visit,
        size=int(size),
        seed=seed,
        filters=filters,
        samp_seq=samp_seq,
        nsamp=nsamp,
        he_fraction=he_fraction,
        scattered_fraction=scattered_fraction,
        crowded=crowded,
        proposid=proposid,
    )
    with _Progress("simulating", total=visits * exposures_per_visit) as advance:
        summary = simulate_program(
            outdir,
            config,
            overwrite=overwrite,
            crcorr=crcorr,
            progress=lambda spec: advance(spec.rootname),
        )
    counts = summary.truth.group_by("category").len().sort("category").rows()
    click.echo(
        f"Wrote {len(summary.ima_paths)} IMAs{' and FLTs' if crcorr == 'complete' else ''} "
        f"and {len(summary.asn_paths)} ASNs to {outdir} "
        f"({', '.join(f'{n} {c}' for c, n in counts)}); truth in {summary.truth_path}",
        err=True,
    )


class _Progress:
    """A rich progress bar on a terminal, silence otherwise. ``advance(label)`` per item."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self._bar = what, total, None

    def __enter__(self):
        if not sys.stderr.isatty():
            return lambda label=None: None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        task = self._bar.add_task(self.what, total=self.total)
        return lambda label=None: self._bar.update(
            task, advance=1, description=f"{self.what} {label or ''}"
        )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@cli.command()
@click.argument("ima", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "flt_out", required=True, type=click.Path(path_type=Path),
    help="FLT to write (e.g. OUT/ibohbfb9q_flt.fits).",
)  # fmt: skip
@click.option(
    "--ima-out", type=click.Path(path_type=Path), default=None,
    help="Also write the IMA with the cosmic-ray flags (8192) in its DQ.",
)  # fmt: skip
@click.option(
    "--crsigma", type=click.FloatRange(min=0, min_open=True), default=4.0, show_default=True,
    help="Cosmic-ray rejection threshold (sigma), CRREJTAB CRSIGMAS.",
)  # fmt: skip
@click.option(
    "--badinpdq", type=click.IntRange(0, 65535), default=256, show_default=True,
    help="DQ bits that exclude a read from the first fitting pass (CRREJTAB BADINPDQ).",
)  # fmt: skip
@click.option(
    "--errors", "error_model", type=click.Choice(["physical", "calwf3", "pipeline"]),
    default="physical", show_default=True,
    help="ERR model: physical (correct, in e-), calwf3 (its re-entrant values, for parity "
    "checks) or pipeline (calwf3's normal-pipeline formula).",
)  # fmt: skip
@click.option(
    "--weighting", type=click.Choice(["index", "time"]), default="index", show_default=True,
    help="Fixsen weights by read index (calwf3) or by read time (hstcal #569).",
)  # fmt: skip
@click.option(
    "--keep-archive-flags", is_flag=True,
    help="Do not reset the CR flags an earlier CRCORR left in an archive IMA.",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def fit(
    ima: Path,
    flt_out: Path,
    ima_out: Path | None,
    crsigma: float,
    badinpdq: int,
    error_model: str,
    weighting: str,
    keep_archive_flags: bool,
    overwrite: bool,
) -> None:
    """Fit the ramps of an IMA (calwf3 CRCORR, natively) and write the FLT.

    A numpy/numba port of calwf3's up-the-ramp fit with cosmic-ray rejection: no calwf3, no
    CRDS, and the input is never modified. Accepts an IMA made with CRCORR=OMIT or PERFORM,
    or an archive IMA (CRCORR=COMPLETE), whose old CR flags are reset in memory first. The FLT
    is laid out like calwf3's (science area, SCI/ERR/DQ/SAMP/TIME, LTV shifted by the trim,
    CRCORR=COMPLETE, statistics keywords, HISTORY with the parameters).
    """
    import numpy as np

    from .fit import FitParameters, fit_exposure

    params = FitParameters(
        crsigma=crsigma,
        badinpdq=badinpdq,
        error_model=error_model,  # type: ignore[arg-type]
        weighting=weighting,  # type: ignore[arg-type]
        reset_archive_flags=not keep_archive_flags,
    )
    products = fit_exposure(ima, flt_out, ima_out=ima_out, params=params, overwrite=overwrite)
    flt = products.flt
    click.echo(
        f"{flt_out}: median {float(np.median(flt.sci)):.4f} e-/s, "
        f"{products.n_cr_pixels} pixels with CRs, {products.n_unstable} made UNSTABLE"
        + (" (archive CR flags reset first)" if products.reset else ""),
        err=True,
    )


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


# The command modules import only click; their work is imported lazily.
from .demo_command import demo  # noqa: E402
from .fetch.command import fetch  # noqa: E402
from .fix.command import fix  # noqa: E402
from .flag.command import flag, sql  # noqa: E402
from .report.command import report  # noqa: E402
from .scan.command import scan  # noqa: E402

for _command in (fetch, scan, flag, sql, fix, report, demo):
    cli.add_command(_command)


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
