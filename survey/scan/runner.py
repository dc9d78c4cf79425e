"""Scan many IMAs into a catalog: decide what to scan, compute in parallel, write in order.

One process writes (DuckDB allows one writer per file); with ``jobs > 1`` worker processes
(started with ``spawn``, so no DuckDB or thread state is forked), or the workers of a Dask
cluster (``dask``, see :mod:`survey.distributed`), only compute. Results are written in the
sorted order of the files, whatever order the workers finish in, so a scan with ``--jobs 2``
or on Dask produces the same catalog as ``--jobs 1``.

fsspec URLs (``s3://…``) are scanned by the worker that gets them: the IMA and its FLT are
stream-copied to a temporary directory on the worker, measured there with the local reader,
and deleted; the catalog records the URLs (the FLT/RAW/ASN beside it too).

Each file is one transaction: a scan killed at any moment leaves complete files only, and the
next scan resumes with the files whose rows are missing or stale.
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..distributed import Executor, run_each
from ..errors import InputFileError
from .catalog import Catalog, check_export
from .files import (
    FileInfo,
    discover,
    fetch,
    file_info,
    ima_stem,
    is_ima_name,
    is_url,
    name_of,
    remote_infos,
    remote_neighbour,
    url_error,
    url_filesystem,
)
from .params import ScanParameters

__all__ = ["ScanSummary", "default_jobs", "scan_paths"]

log = logging.getLogger("survey.scan")

#: Exit codes of ``survey scan`` (also in its help and the README).
EXIT_OK = 0
EXIT_FILES_FAILED = 2


@dataclass
class ScanSummary:
    """What one scan did."""

    catalog: Path
    scanned: int = 0
    skipped: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, message)
    exported: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def exit_code(self) -> int:
        return EXIT_FILES_FAILED if self.failures else EXIT_OK

    def line(self) -> str:
        text = f"{self.scanned} scanned, {self.skipped} skipped (unchanged), {self.failed} failed"
        if self.failed:
            text += f" (see table scan_errors in {self.catalog})"
        return text


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    """Worker start-up: import the scanner (numba kernels from the disk cache), then freeze
    the import-time objects out of the garbage collector's way (see :func:`_freeze_gc`)."""
    from . import measure  # noqa: F401

    _freeze_gc()


def _freeze_gc() -> None:
    """Move every object alive now to the permanent generation (:func:`gc.freeze`).

    Parsing 81 FITS headers per file allocates enough to trigger full collections, which
    would otherwise walk all the objects of numpy, astropy and numba each time: ~10 ms of a
    ~100 ms full-frame scan. Done once per process (the import-time objects are what counts).
    """
    import gc

    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def _work(path: str, params: ScanParameters, threads: int = 1) -> tuple:
    """Scan one file (in a worker or in-process): ("ok", result) or (kind, message, details)."""
    from .measure import measure_exposure

    try:
        if is_url(path):
            return ("ok", _measure_url(path, params, threads))
        return ("ok", measure_exposure(path, params, threads=threads))
    except InputFileError as exc:
        return ("input", exc.problem, "")
    except Exception as exc:  # a bug: record it, keep scanning, keep the traceback for -vv
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:200]
        return ("internal", f"{message} (unexpected: please report it)", traceback.format_exc())


_ASN_ID = re.compile(r"^[a-z0-9]{9}$")


def _measure_url(url: str, params: ScanParameters, threads: int):
    """Scan the IMA at an fsspec URL from a temporary local copy of it and its FLT (deleted
    after); the result names the remote files, never the temporary ones."""
    import tempfile

    from .measure import measure_exposure

    fs, path = url_filesystem(url)
    parent, stem = posixpath.dirname(path), ima_stem(path)
    with tempfile.TemporaryDirectory(prefix="survey-scan-") as tmp:
        try:
            local = fetch(fs, path, Path(tmp))
            flt = remote_neighbour(fs, parent, stem, "flt")
            if flt is not None:
                fetch(fs, flt, Path(tmp))
        except OSError as exc:
            raise url_error(url, f"cannot fetch the file ({exc})") from None
        result = measure_exposure(local, params, threads=threads)
    copies = {str(Path(tmp) / posixpath.basename(p)): p for p in (path, flt) if p}
    _name_remote_files(result, fs, copies, parent, stem)
    return result


def _name_remote_files(result, fs, copies: dict[str, str], parent: str, stem: str) -> None:
    """Put the URLs of the remote FLT/RAW/ASN into ``result`` in place of local copies."""
    row = result.exposure
    flt = copies.get(row["flt_path"]) if row["flt_path"] else None
    raw = remote_neighbour(fs, parent, stem, "raw")
    asn_id = str(row.get("asn_id") or "").lower()
    asn = remote_neighbour(fs, parent, asn_id, "asn") if _ASN_ID.match(asn_id) else None
    for key, found in (("flt_path", flt), ("raw_path", raw), ("asn_path", asn)):
        row[key] = fs.unstrip_protocol(found) if found else None
    result.notes = [
        (fs.unstrip_protocol(copies[p]) if p in copies else p, kind, message)
        for p, kind, message in result.notes
    ]


def _lost(path: str, exc: BaseException) -> tuple:
    """The outcome of a file whose worker failed outside :func:`_work` (killed, say)."""
    message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:200]
    return ("internal", f"the worker failed ({message})", "")


def _compute(paths: Sequence[str], executor: Executor, params: ScanParameters) -> Iterator[tuple]:
    """Outcomes of :func:`_work`, in the order of ``paths``."""
    if executor.dask is None and (executor.jobs <= 1 or len(paths) <= 1):
        # one process: let a helper thread share each read's pixel passes if a core is free
        threads = 2 if default_jobs() >= 2 else 1
        for path in paths:
            yield _work(path, params, threads)
        return
    work = functools.partial(_work, params=params)
    outcomes = run_each(
        work, paths, executor, on_error=_lost, initializer=_init_worker, ordered=True
    )
    for _, outcome in outcomes:
        yield outcome


def _plan(
    files: list[Path | str],
    catalog: Catalog,
    params: ScanParameters,
    rescan: bool,
    summary: ScanSummary,
    report: Callable[[str], None],
) -> list[tuple[Path, FileInfo]]:
    """The files to scan now; unchanged ones are counted as skipped, unreadable ones fail."""
    states = catalog.file_states()
    digest = params.digest()
    todo = []
    remote = remote_infos([f for f in files if isinstance(f, str)])
    for path in files:
        try:
            info = remote[path] if isinstance(path, str) else file_info(path)
            if isinstance(info, OSError):
                raise info
        except OSError as exc:
            message = f"cannot read the file ({exc.strerror or exc})"
            _fail(catalog, summary, report, str(path), "input", message)
            continue
        if not is_ima_name(name_of(path)):
            message = "not an IMA (expected a name ending in _ima.fits or _ima.fits.gz)"
            _fail(catalog, summary, report, info.path, "input", message, info)
            continue
        state = states.get(info.path)
        current = (info.size, info.mtime_ns, info.fingerprint, info.neighbours_sig, digest)
        if not rescan and state is not None and tuple(state[1:]) == current:
            summary.skipped += 1
            continue
        todo.append((path, info))
    return todo


def _fail(catalog, summary, report, path, kind, message, info=None) -> None:
    catalog.write_failure(path, kind, message, info)
    summary.failures.append((path, kind, message))
    report(f"{path}: {message}")


def scan_paths(
    paths: Sequence[str | Path],
    *,
    catalog: str | Path = "survey.duckdb",
    jobs: int | None = None,
    dask: str | None = None,
    rescan: bool = False,
    export_parquet: str | Path | None = None,
    overwrite: bool = False,
    params: ScanParameters | None = None,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
    freeze_gc: bool = False,
) -> ScanSummary:
    """Scan the IMAs under ``paths`` into the DuckDB ``catalog``; see ``survey scan --help``.

    PATHS may be local paths or fsspec URLs. ``dask`` runs the per-file work on a Dask
    cluster: ``local`` (a LocalCluster of ``jobs`` processes) or a scheduler address; every
    worker must be able to read the inputs at the same path or URL.
    ``report`` receives one line per failed file (default: the log). ``freeze_gc`` freezes the
    objects alive now out of the garbage collector's way (:func:`gc.freeze`), worth ~10% of
    an in-process scan; the command does it (its process ends with the scan), workers always
    do it. Raises
    :class:`~survey.errors.InputFileError` for a missing path, ``OutputExistsError`` for an
    export file that exists (checked before scanning), ``CatalogError`` and
    :class:`~survey.distributed.ClusterError` (a bad address, an unreachable scheduler).
    """
    params = params or ScanParameters()
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    executor = Executor(jobs=jobs, dask=dask)  # a bad address fails here, before any work
    report = report or log.warning
    export_dir = Path(export_parquet) if export_parquet is not None else None
    files = discover([p if is_url(p) else Path(p) for p in paths])
    if freeze_gc:
        _freeze_gc()
    check_export(export_dir, overwrite=overwrite)
    summary = ScanSummary(catalog=Path(catalog))
    with Catalog(catalog) as cat:
        todo = _plan(files, cat, params, rescan, summary, report)
        with _Progress(progress, len(todo)) as advance:

            def store(info: FileInfo, outcome: tuple) -> None:
                _store(cat, summary, info, outcome, params, report)
                advance()

            with _Writer(store) as writer:  # writes overlap the next computation
                outcomes = _compute([info.path for _, info in todo], executor, params)
                for (_, info), outcome in zip(todo, outcomes, strict=True):
                    writer.put(info, outcome)
        cat.set_last_scan(params)
        if export_dir is not None:
            summary.exported = cat.export_parquet(export_dir, params, overwrite=overwrite)
    return summary


def _store(
    cat: Catalog, summary: ScanSummary, info: FileInfo, outcome: tuple, params, report
) -> None:
    if outcome[0] == "ok":
        result = outcome[1]
        duplicate_of = cat.write_result(result, info, params)
        if duplicate_of is not None:
            message = f"ROOTNAME {result.exposure['rootname']} is catalogued from {duplicate_of}"
            summary.failures.append((info.path, "duplicate", message))
            report(f"{info.path}: {message}")
            return
        summary.scanned += 1
        for path, _, message in result.notes:
            report(f"{path}: {message} (FLT statistics left empty)")
        return
    kind, message, details = outcome
    if details:
        log.debug("%s: %s", info.path, details)
    _fail(cat, summary, report, info.path, kind, message, info)


class _Writer:
    """Stores outcomes in order from one background thread, so that DuckDB's transactions
    (which release the GIL) overlap the computation of the next file. The catalog is used by
    this thread only while the writer is open. Errors are raised in the caller's thread; on
    exit the results already handed over are still written, then the thread stops."""

    _STOP = object()

    def __init__(self, store: Callable[[FileInfo, tuple], None]):
        import queue
        import threading

        self._store = store
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="survey-scan-writer", daemon=True)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is None:
                try:
                    self._store(*item)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def put(self, info: FileInfo, outcome: tuple) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((info, outcome))

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(self._STOP)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


class _Progress:
    """A rich progress bar on stderr when asked (a terminal), else nothing."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled and total > 0
        self.total = total
        self._bar = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("scan", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
