"""Fix many exposures: choose each one's method, run them (in parallel), collect results.

Workers only compute and write their own output files; the caller (the main process) is the
catalog's single writer. One failing exposure becomes a ``failed`` result and the rest go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import SurveyError
from .catalog import Target
from .exposure import FixParameters, FixRefusedError, FixResult, fix_exposure

__all__ = ["AUTO_METHODS", "Job", "choose_method", "make_jobs", "run_jobs", "run_one"]

#: ``--method auto``: the method for each triage verdict.
AUTO_METHODS = {"uniform-tvb": "flatten", "spatial-tvb": "pop-reads"}


@dataclass(frozen=True)
class Job:
    target: Target
    params: FixParameters
    refusal: str | None = None  #: set when auto refuses: the reason, nothing is run


def choose_method(target: Target, method: str) -> tuple[str, str | None]:
    """(method, refusal reason or None) for ``--method`` (``auto`` follows the verdict)."""
    if method != "auto":
        return method, None
    verdict = target.verdict
    if verdict in AUTO_METHODS:
        return AUTO_METHODS[verdict], None
    if verdict == "not-applicable":
        return "flatten", f"not applicable: {target.reason or 'see survey flag'}"
    if verdict == "linear":
        return "flatten", "verdict linear: nothing to fix (force with --method flatten)"
    return "flatten", "no verdict: run `survey flag`, or choose --method"


def make_jobs(targets: list[Target], method: str, base: FixParameters) -> list[Job]:
    jobs = []
    for target in targets:
        chosen, refusal = choose_method(target, method)
        jobs.append(Job(target, replace(base, method=chosen), refusal))
    return jobs


def _failed(job: Job, status: str, message: str) -> FixResult:
    return FixResult(job.target.rootname, status, job.params, job.target.path, message=message)


def run_one(job: Job, out_dir: str, overwrite: bool) -> FixResult:
    """Fix one exposure; every problem becomes a result (never raises)."""
    if job.refusal:
        return _failed(job, "refused", job.refusal)
    try:
        archive = job.target.flt_path
        if archive and not Path(archive).exists():
            archive = None
        return fix_exposure(
            job.target.path, out_dir, job.params, overwrite=overwrite, archive_flt=archive
        )
    except FixRefusedError as exc:
        return _failed(job, "refused", str(exc))
    except SurveyError as exc:
        return _failed(job, "failed", str(exc))
    except Exception as exc:  # a bug: report it, go on with the others
        message = f"internal error ({type(exc).__name__}: {exc}); please report it"
        return _failed(job, "failed", message)


def run_jobs(
    jobs: list[Job], out_dir: str | Path, *, overwrite: bool = False, n_jobs: int = 1
) -> Iterator[FixResult]:
    """Yield one result per job (completion order with ``n_jobs`` > 1)."""
    out = str(out_dir)
    if n_jobs <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_one(job, out, overwrite)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
        futures = [pool.submit(run_one, job, out, overwrite) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
