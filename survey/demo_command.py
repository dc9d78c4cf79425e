"""``survey demo``: parse, call :func:`survey.demo.run_demo`, print. Only click is imported here."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["demo"]


@click.command(
    "demo",
    epilog="Exit codes: 0 done; 3 DIR is not empty (or not an earlier demo, with --overwrite); "
    "1 or 2 a step failed (its one-line error says which file).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("survey-demo"),
    show_default=True,
    help="Directory to write, in the working directory by default; must be new or empty.",
)
@click.option(
    "--size",
    type=click.Choice(["1024", "522", "266", "138", "74"]),
    default="522",
    show_default=True,
    help="Array size of the exposures: 522² subarrays fit in ~0.75 GB; full frame (1024) "
    "needs ~3.4 GB.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Random seed of the scene and noise (the planted cases never change).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the scan and the fixes (default: all cores).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier demo in DIR (only a directory `survey demo` made).",
)
def demo(out_dir: Path, size: str, seed: int, jobs: int | None, overwrite: bool) -> None:
    """Run the whole flow offline on a synthetic program: simulate → scan → flag → fix →
    report.

    The program is modelled on CANDELS visit IBOHBF040 (ibohbfb9q): six F105W STEP200
    exposures, two per orbit, He I rising toward Earth occultation in the second exposure of
    each orbit; an F140W visit with Earth-limb scattered light in one exposure; a G102 visit
    (direct image + grism). Writes DIR/data (the program and its truth), DIR/survey.duckdb,
    DIR/fixed and DIR/reports, then prints where the dashboard is, each exposure's verdict
    against the simulator's truth and the sky noise of the fixed ones before → after.
    Progress goes to stderr, the summary to stdout.
    """
    import time

    from .demo import demo_config, run_demo

    start = time.perf_counter()

    def progress(line: str) -> None:
        click.echo(f"[{time.perf_counter() - start:6.1f} s] {line}", err=True)

    config = demo_config(size=int(size), seed=seed)
    summary = run_demo(out_dir, config=config, jobs=jobs, overwrite=overwrite, progress=progress)
    click.echo("\n".join(summary.lines()))
