"""``survey demo``: the whole flow — simulate, scan, flag, fix, report — on a synthetic program.

The program is modelled on the domain reference's worked example, visit IBOHBF040 of CANDELS
program 12242 (§1): a visit of F105W STEP200 NSAMP 16 exposures, two per orbit, with He I
rising toward Earth occultation in the second exposure of every orbit (the first one planted
exactly as ibohbfb9q's), plus an F140W visit whose second exposure catches Earth-limb
scattered light and a G102 visit (a short F105W direct image, then a grism exposure that also
sees He I). Every case is planted explicitly (:class:`~survey.simulate.config.PlantedCase`),
so the categories do not depend on the seed, which only draws the scene and the noise.

Layout of the output directory::

    DIR/.survey-demo    marker (tool version, settings): --overwrite replaces only such a DIR
    DIR/data/           the simulated program: IMAs, FLTs, ASNs, truth.parquet, truth/
    DIR/survey.duckdb   the catalog (scan → flag → fix tables)
    DIR/fixed/          corrected FLTs and IMAs of the flagged exposures
    DIR/reports/        the HTML dashboards (index.html first)

:func:`run_demo` drives the library functions in that order (never the ``survey`` commands)
and returns a :class:`DemoSummary`; ``survey demo`` prints it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import __version__
from .atomic import atomic_output
from .errors import SurveyError
from .simulate.config import PlantedCase, ProgramConfig
from .simulate.sky import IBOHBFB9Q_HE, TimeProfile

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_SIZE",
    "DEMO_ENTRIES",
    "DEMO_MARKER",
    "DemoError",
    "DemoSummary",
    "ExposureOutcome",
    "FixOutcome",
    "demo_config",
    "prepare_directory",
    "run_demo",
    "truth_scatter",
]

#: 522² subarrays: full frame (1024²) needs ~3 GB for this program, over the 2 GB budget.
DEFAULT_SIZE = 522
DEFAULT_SEED = 1
DEMO_MARKER = ".survey-demo"
#: Everything the demo writes in its directory; --overwrite removes exactly these.
DEMO_ENTRIES = ("data", "fixed", "reports", "survey.duckdb", "survey.duckdb.wal", DEMO_MARKER)

#: He I rising toward occultation in the last exposure of orbits 1, 2, 3 (cycled): ibohbfb9q's
#: profile (§1), a weaker later rise and a strong early one.
HE_RISING = (
    IBOHBFB9Q_HE,
    TimeProfile("rising", amplitude=0.9, t0=600.0, width=600.0),
    TimeProfile("rising", amplitude=2.2, t0=350.0, width=450.0),
)
#: Earth-limb light brightening toward occultation (left edge brighter).
LIMB_RISING = TimeProfile("rising", amplitude=1.2, t0=400.0, width=800.0)
#: He I in the grism exposure: real, but flatten-ramp must not touch a grism.
GRISM_HE = TimeProfile("rising", amplitude=1.2, t0=300.0, width=500.0)


class DemoError(SurveyError):
    """The output directory cannot be used for the demo."""

    exit_code = 3


def demo_config(*, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, orbits: int = 3):
    """The demo program: ``2 * orbits`` F105W exposures, 2 F140W, 1 F105W direct + 1 G102.

    He I rises in the second exposure of each F105W orbit (two 1600-s STEP200 exposures fill
    an orbit), limb light in the second F140W exposure, He I in the G102 exposure.
    """
    he_cases = tuple(
        PlantedCase(visit=0, exposure=2 * k + 1, he=HE_RISING[k % len(HE_RISING)])
        for k in range(orbits)
    )
    return ProgramConfig(
        n_visits=3,
        exposures_per_visit=(2 * orbits, 2, 2),
        size=size,
        seed=seed,
        filters=("F105W", "F140W", "G102"),
        samp_seq=("STEP200", "STEP200", "SPARS100"),
        nsamp=(16, 16, 16),
        he_fraction=0.0,
        scattered_fraction=0.0,
        program_code="boh",  # CANDELS 12242's, as in ibohbfb9q
        start_mjd=56298.76597,  # 2013-01-06 18:23 UT, the start of IBOHBF040
        cases=(
            *he_cases,
            PlantedCase(visit=1, exposure=1, scatter=LIMB_RISING),
            PlantedCase(visit=2, exposure=1, he=GRISM_HE),
        ),
    )


@dataclass(frozen=True)
class ExposureOutcome:
    """One exposure: what the simulator planted and what ``survey flag`` said."""

    rootname: str
    filter: str
    truth: str
    verdict: str | None

    @property
    def agrees(self) -> bool:
        return self.truth == self.verdict


@dataclass(frozen=True)
class FixOutcome:
    """One fixed (or refused, or failed) exposure: its FLT sky noise before (archive FLT) and
    after, as the catalog's ``fixes`` table holds it — the notebook's std within median ± 0.5
    e⁻/s and the robust (MAD) σ — and as the scatter about the simulator's true rate
    (:func:`truth_scatter`)."""

    rootname: str
    method: str
    status: str
    flt: str | None
    sigma_before: float | None = None
    sigma_after: float | None = None
    std_before: float | None = None
    std_after: float | None = None
    scatter_before: float | None = None
    scatter_after: float | None = None
    message: str = ""


@dataclass
class DemoSummary:
    """What :func:`run_demo` did, for the user and for tests."""

    out: Path
    catalog: Path
    index: Path
    exposures: list[ExposureOutcome]
    fixes: list[FixOutcome]
    seconds: float
    disk_bytes: int
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def agreement(self) -> tuple[int, int]:
        """(exposures whose verdict equals the truth category, exposures)."""
        return sum(e.agrees for e in self.exposures), len(self.exposures)

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.exposures:
            key = e.verdict or "no verdict"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def lines(self) -> list[str]:
        """The summary ``survey demo`` prints."""
        from .flag.command import format_frame

        good, total = self.agreement
        counts = ", ".join(f"{n} {verdict}" for verdict, n in self.verdict_counts().items())
        return [
            f"{total} exposures simulated, scanned, flagged, fixed and reported in "
            f"{self.seconds:.1f} s; {self.disk_bytes / 1e9:.2f} GB in {self.out}",
            "",
            format_frame(self._table(), "table"),
            "FLT sky noise, e⁻/s, archive FLT → fixed:",
            f"  {NOTEBOOK:<21} std of the sky pixels within median ± 0.5 e⁻/s, as the STScI "
            "notebook (fixes.after_std)",
            f"  {VS_TRUTH:<21} (p97.5 − p2.5)/3.92 of FLT − the simulator's true rate",
            f"  {ROBUST:<21} 1.4826·MAD (fixes.after_sigma): the core's width, blind to the "
            "wings a broken fit leaves",
            "",
            f"verdicts: {counts}; {good}/{total} agree with the simulator's truth",
            f"catalog:   {self.catalog}",
            f"dashboard: {self.index}",
        ]

    def _table(self):
        import polars as pl

        fixes = {f.rootname: f for f in self.fixes}
        rows = [{"rootname": e.rootname, "filter": e.filter, "truth": e.truth,
                 "verdict": e.verdict, **_fix_cells(fixes.get(e.rootname))}
                for e in self.exposures]  # fmt: skip
        return pl.DataFrame(rows, infer_schema_length=None)


#: Table headings of the noise measures (e⁻/s, archive FLT → fixed FLT), main one first.
NOTEBOOK, VS_TRUTH, ROBUST = "sky σ (notebook)", "sky scatter vs truth", "robust σ (MAD)"


def _fix_cells(fix: FixOutcome | None) -> dict[str, str]:
    if fix is None:
        return {"fix": "", NOTEBOOK: "", VS_TRUTH: "", ROBUST: ""}
    if fix.status not in ("fixed", "skipped"):
        return {"fix": f"{fix.method} {fix.status}", NOTEBOOK: "", VS_TRUTH: "", ROBUST: ""}
    return {
        "fix": fix.method,
        NOTEBOOK: _before_after(fix.std_before, fix.std_after),
        VS_TRUTH: _before_after(fix.scatter_before, fix.scatter_after),
        ROBUST: _before_after(fix.sigma_before, fix.sigma_after),
    }


def _before_after(before: float | None, after: float | None) -> str:
    def num(value: float | None) -> str:
        return "?" if value is None else f"{value:.4f}"

    text = f"{num(before)} → {num(after)}"
    return text + (f" ({before / after:.1f}×)" if before and after else "")


def truth_scatter(flt: str | Path, expected, sky) -> float | None:
    """Scatter of an FLT about the true rate ``expected`` on the true sky pixels ``sky``
    (science-area arrays), in e⁻/s.

    (p97.5 − p2.5)/3.92 of FLT − expected: σ for Gaussian noise, but unlike the catalog's
    robust (MAD) σ it sees the wings and the second peak that a ramp fit broken by He I
    leaves in the sky (domain reference §1), and a left-over limb-light gradient.
    """
    import numpy as np

    from .wfc3ir.dq import SKY_BAD_BITS
    from .wfc3ir.fitsio import read_flt

    image = read_flt(flt)
    good = sky & ((image.dq & SKY_BAD_BITS) == 0) & np.isfinite(image.sci)
    if good.sum() < 100:
        return None
    low, high = np.percentile(image.sci[good] - expected[good], [2.5, 97.5])
    return float((high - low) / 3.92)


def _expected_rate(method: str, truth: dict, zodi: float):
    """What a method aims at (science area): flatten keeps the exposure's mean background
    (``RATE``); pop-reads removes the limb light, leaving scene + zodi."""
    from .wfc3ir.detector import BORDER as B

    if method == "pop-reads":
        return truth["SCENE"][B:-B, B:-B] + zodi
    return truth["RATE"][B:-B, B:-B]


def prepare_directory(out: Path, *, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` and it holds an earlier demo, whose
    entries (:data:`DEMO_ENTRIES`, nothing else) are then removed."""
    if out.exists() and not out.is_dir():
        raise DemoError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise DemoError(
            f"{out}: directory is not empty (choose another --out, or --overwrite to replace "
            "an earlier demo there)"
        )
    if not (out / DEMO_MARKER).is_file():
        raise DemoError(
            f"{out}: not a survey demo directory (no {DEMO_MARKER}); --overwrite only "
            "replaces an earlier demo, choose an empty or new --out"
        )
    for name in DEMO_ENTRIES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _write_marker(out: Path, config: ProgramConfig) -> None:
    """Claims the directory (so --overwrite may replace it later) and records provenance."""
    settings = {"survey_version": __version__, "size": config.size, "seed": config.seed,
                "exposures": config.n_exposures}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / DEMO_MARKER) as tmp:
        tmp.write_text(json.dumps(settings, indent=1) + "\n")


def _disk_bytes(root: Path) -> int:
    """Bytes allocated under ``root`` (what ``du`` counts)."""
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


def _simulate(data: Path, config: ProgramConfig, say: Callable[[str], None]):
    from .simulate import simulate_program

    n = config.n_exposures
    done = iter(range(1, n + 1))
    say(f"simulating {n} exposures of {config.size}×{config.size} pixels into {data}")
    return simulate_program(
        data, config, progress=lambda spec: say(f"  {spec.rootname} ({next(done)}/{n})")
    )


def _scan(data: Path, catalog: Path, jobs: int | None, say: Callable[[str], None]) -> None:
    from .scan.runner import scan_paths

    summary = scan_paths([data], catalog=catalog, jobs=jobs, report=lambda line: say(line))
    say(f"scan: {summary.line()}")
    if summary.failed:
        raise DemoError(f"{catalog}: {summary.failed} simulated file(s) failed to scan")


def _flag(catalog: Path, truth, say: Callable[[str], None]) -> list[ExposureOutcome]:
    from .flag.triage import flag_catalog

    verdicts = dict(flag_catalog(catalog).select("rootname", "verdict").iter_rows())
    outcomes = [
        ExposureOutcome(root, filt, category, verdicts.get(root))
        for root, filt, category in truth.select("rootname", "filter", "category").iter_rows()
    ]
    say(f"flag: {sum(o.agrees for o in outcomes)}/{len(outcomes)} verdicts match the truth")
    return outcomes


def _fix(
    catalog: Path, fixed: Path, program, jobs: int, say: Callable[[str], None]
) -> list[FixOutcome]:
    """``survey fix --flagged`` (method auto): every uniform-tvb and spatial-tvb exposure."""
    from .fix.catalog import open_catalog, select_targets, write_fix
    from .fix.exposure import FixParameters
    from .fix.runner import make_jobs, run_jobs

    outcomes = []
    with open_catalog(catalog) as cat:
        todo = make_jobs(select_targets(cat.con, [], flagged=True), "auto", FixParameters())
        say(f"fixing {len(todo)} flagged exposure(s) into {fixed}")
        for result in run_jobs(todo, fixed, n_jobs=jobs):
            write_fix(cat.con, result.row())  # the main process is the catalog's only writer
            outcome = _outcome(result, program)
            note = f": {outcome.message}" if outcome.message else ""
            say(f"  {outcome.rootname}: {outcome.method} {outcome.status}{note}")
            outcomes.append(outcome)
    return sorted(outcomes, key=lambda o: o.rootname)


def _outcome(result, program) -> FixOutcome:
    """A fix result with the noise of the archive and fixed FLTs measured against truth."""
    import polars as pl

    from .simulate.program import read_truth_images
    from .wfc3ir.detector import BORDER as B

    before, after = result.before, result.after
    outcome = FixOutcome(result.rootname, result.params.method, result.status, result.flt_out,
                         before.get("sigma"), after.get("sigma"), before.get("std"),
                         after.get("std"), message=result.message)  # fmt: skip
    if result.status != "fixed":
        return outcome
    data = program.outdir  # rootnames: validated by the fix before naming its outputs
    truth = read_truth_images(data / "truth" / f"{result.rootname}_truth.fits")
    row = program.truth.row(by_predicate=pl.col("rootname") == result.rootname, named=True)
    expected = _expected_rate(result.params.method, truth, row["zodi"])
    sky = truth["SCENE"][B:-B, B:-B] < 1e-3
    archive = truth_scatter(data / f"{result.rootname}_flt.fits", expected, sky)
    return replace(outcome, scatter_before=archive,
                   scatter_after=truth_scatter(result.flt_out, expected, sky))  # fmt: skip


def _report(catalog: Path, reports: Path, say: Callable[[str], None]) -> Path:
    from .report import write_report

    say(f"writing the dashboards into {reports}")
    return Path(write_report(catalog, reports).index)


def run_demo(
    out: str | Path = "survey-demo",
    *,
    config: ProgramConfig | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Simulate the demo program into ``out/data``, then scan, flag, fix and report it.

    ``config`` defaults to :func:`demo_config`; ``jobs`` is the number of processes for the
    scan and the fixes (default: every core); ``progress`` receives one line per step and per
    exposure. A non-empty ``out`` is refused unless ``overwrite`` and it holds an earlier demo
    (see :func:`prepare_directory`). Raises :class:`~survey.errors.SurveyError` subclasses.
    """
    out = Path(out)
    config = config or demo_config()
    say = progress or (lambda line: None)
    start, steps = time.perf_counter(), {}

    def timed(name: str, step, *args):
        t0 = time.perf_counter()
        value = step(*args, say)
        steps[name] = time.perf_counter() - t0
        return value

    from .scan.runner import default_jobs

    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    prepare_directory(out, overwrite=overwrite)
    _write_marker(out, config)
    catalog = out / "survey.duckdb"
    program = timed("simulate", _simulate, out / "data", config)
    timed("scan", _scan, out / "data", catalog, jobs)
    exposures = timed("flag", _flag, catalog, program.truth)
    fixes = timed("fix", _fix, catalog, out / "fixed", program, jobs)
    index = timed("report", _report, catalog, out / "reports")
    seconds = time.perf_counter() - start
    return DemoSummary(out, catalog, index, exposures, fixes, seconds, _disk_bytes(out), steps)
