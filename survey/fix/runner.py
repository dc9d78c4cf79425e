"""Fix many exposures: choose each one's method, run them (in parallel), collect results.

Workers (a local process pool or a Dask cluster, :mod:`survey.distributed`) only compute and
write their own output files; the caller (the main process) is the catalog's single writer.
One failing exposure becomes a ``failed`` result and the rest go on.

An IMA catalogued from an fsspec URL (``survey scan s3://…``) is stream-copied, with its
archive FLT, to a temporary directory on the worker, fixed from there and deleted; the
outputs go to ``out_dir``, which every worker must be able to write (shared storage).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..distributed import Executor, run_each
from ..errors import SurveyError
from ..scan.files import fetch, is_url, url_error, url_filesystem
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


@contextlib.contextmanager
def _local_inputs(target: Target) -> Iterator[tuple[str, str | None]]:
    """(IMA, archive FLT or None) as local files: as given, or for URLs temporary copies."""
    if not is_url(target.path):
        archive = target.flt_path
        yield target.path, archive if archive and Path(archive).exists() else None
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="survey-fix-") as tmp:
        ima = _fetch_url(target.path, Path(tmp))
        if ima is None:
            raise url_error(target.path, "no such file")
        flt = _fetch_url(target.flt_path, Path(tmp)) if target.flt_path else None
        yield str(ima), str(flt) if flt else None


def _fetch_url(url: str, directory: Path) -> Path | None:
    """A temporary local copy of the file at ``url`` (None if there is none)."""
    fs, path = url_filesystem(url)
    try:
        return fetch(fs, path, directory) if fs.isfile(path) else None
    except OSError as exc:
        raise url_error(url, f"cannot fetch the file ({exc})") from None


def _local_folder(url: str | None) -> Path | None:
    """The folder of a ``file://`` URL (a local file under another name), else None."""
    if not url or not is_url(url):
        return None
    fs, path = url_filesystem(url)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return Path(path).resolve().parent if {"file", "local"} & set(protocols) else None


def _beside_url_inputs(job: Job, out_dir: str) -> str | None:
    """The refusal when OUT is the folder of a ``file://`` input: fix_exposure sees only the
    temporary copies, so it cannot tell (inputs are never written, --overwrite or not)."""
    out = Path(out_dir).resolve()
    for url in (job.target.path, job.target.flt_path):
        if _local_folder(url) == out:
            return f"{out_dir}: refusing to write beside the inputs ({url}); choose another --out"
    return None


def run_one(job: Job, out_dir: str, overwrite: bool) -> FixResult:
    """Fix one exposure; every problem becomes a result (never raises)."""
    if job.refusal:
        return _failed(job, "refused", job.refusal)
    try:
        beside = _beside_url_inputs(job, out_dir)
        if beside:
            return _failed(job, "failed", beside)
        with _local_inputs(job.target) as (ima, archive):
            result = fix_exposure(ima, out_dir, job.params, overwrite=overwrite,
                                  archive_flt=archive)  # fmt: skip
        return replace(result, ima_in=job.target.path)
    except FixRefusedError as exc:
        return _failed(job, "refused", str(exc))
    except SurveyError as exc:
        return _failed(job, "failed", str(exc))
    except Exception as exc:  # a bug: report it, go on with the others
        message = f"internal error ({type(exc).__name__}: {exc}); please report it"
        return _failed(job, "failed", message)


def _lost(job: Job, exc: BaseException) -> FixResult:
    """The result of a job whose worker failed outside :func:`run_one` (killed, say)."""
    message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:200]
    return _failed(job, "failed", f"the worker failed ({message})")


def run_jobs(
    jobs: list[Job],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    n_jobs: int = 1,
    dask: str | None = None,
) -> Iterator[FixResult]:
    """Yield one result per job (completion order with ``n_jobs`` > 1 or on Dask).

    ``dask``: ``local`` (a LocalCluster of ``n_jobs`` processes) or a scheduler address;
    :class:`~survey.distributed.ClusterError` if it is malformed or unreachable."""
    executor = Executor(jobs=n_jobs, dask=dask)
    if dask is not None:  # workers elsewhere do not share this process's working directory
        out_dir = Path(out_dir).absolute()
    work = functools.partial(run_one, out_dir=str(out_dir), overwrite=overwrite)
    for _, result in run_each(work, jobs, executor, on_error=_lost):
        yield result
