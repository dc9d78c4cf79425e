"""The DuckDB catalog: schema, one transaction per file, checks and Parquet export.

Only the main process opens the catalog (DuckDB allows one writing process per file); worker
processes only compute. All SQL lives in ``sql/`` (package ``survey.sql``): the numbered files
``0NN_*.sql`` create the catalog layer (tables, then views) and run on every open, the
statements of ``scan/`` are what this module executes, ``checks/`` hold data checks that must
return no rows. Values are always bound parameters; rows travel as Arrow batches inserted
``BY NAME``.

DuckDB 2.0 wants every result consumed before the next statement, so every ``execute`` here
ends in ``fetchall()``.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..atomic import atomic_output, check_writable
from ..errors import SurveyError
from .files import FileInfo, still_exists
from .params import ScanParameters

if TYPE_CHECKING:
    from .measure import ExposureResult

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "Catalog",
    "CatalogError",
    "check_export",
    "check_sql",
    "export_targets",
    "load_sql",
]

#: Bumped when a table changes; a catalog with another version is refused (scan anew).
SCHEMA_VERSION = "1"
TABLES = ("exposures", "reads", "scan_errors")
_LAYER = re.compile(r"^0\d\d_[a-z0-9_]+\.sql$")


class CatalogError(SurveyError):
    """The catalog cannot be opened or used (locked, not a DuckDB 2 file, other schema)."""

    exit_code = 1


@lru_cache(maxsize=64)
def load_sql(name: str) -> str:
    """Text of ``sql/<name>`` (e.g. ``"scan/insert_error.sql"``)."""
    resource = files("survey.sql")
    for part in name.split("/"):
        resource = resource / part
    return resource.read_text(encoding="utf-8")


def layer_files() -> list[str]:
    """The numbered catalog-layer files (``0NN_*.sql``), in the order they run."""
    return sorted(r.name for r in files("survey.sql").iterdir() if _LAYER.match(r.name))


def check_sql() -> dict[str, str]:
    """Name → SQL of every data check (``sql/checks/*.sql``)."""
    folder = files("survey.sql") / "checks"
    return {
        r.name.removesuffix(".sql"): r.read_text(encoding="utf-8")
        for r in sorted(folder.iterdir(), key=lambda r: r.name)
        if r.name.endswith(".sql")
    }


def export_targets(directory: Path) -> list[Path]:
    """The Parquet files ``--export-parquet DIR`` writes (one per table, flat)."""
    return [Path(directory) / f"{table}.parquet" for table in TABLES]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Catalog:
    """An open catalog (a context manager). Creates the file and its schema if needed."""

    def __init__(self, path: str | Path):
        import duckdb

        self.path = Path(path)
        self._duckdb = duckdb
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path))
        except (duckdb.Error, OSError) as exc:
            raise CatalogError(
                f"{self.path}: cannot open the catalog ({_first_line(exc)})"
            ) from None
        try:
            self._apply_schema()
            # what the single writer knows, kept in step with every commit: rootname → path,
            # path → rootname, and the paths with a recorded failure
            self._owner = dict(self._run("scan/catalog_keys.sql"))
            self._held = {path: root for root, path in self._owner.items()}
            self._errors = {row[0] for row in self._run("scan/error_paths.sql")}
        except Exception:
            self.con.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------
    def _run(self, name: str, params: dict | None = None) -> list[tuple]:
        return self.con.execute(load_sql(name), params or {}).fetchall()

    def _apply_schema(self) -> None:
        had_tables = bool(
            self.con.execute(
                "select 1 from information_schema.tables where table_name = 'catalog_info'"
            ).fetchall()
        )
        if had_tables:
            version = self._run("scan/get_info.sql", {"key": "schema_version"})
            found = version[0][0] if version else "?"
            if found != SCHEMA_VERSION:
                raise CatalogError(
                    f"{self.path}: catalog schema version {found}, this survey writes "
                    f"{SCHEMA_VERSION}; scan into a new catalog"
                )
        for name in layer_files():
            self.con.execute(load_sql(name)).fetchall()
        if not had_tables:
            self._set_info("schema_version", SCHEMA_VERSION)
            self._set_info("created_by", f"survey {__version__}")

    def _set_info(self, key: str, value: str) -> None:
        self._run("scan/set_info.sql", {"key": key, "value": value})

    def info(self, key: str) -> str | None:
        rows = self._run("scan/get_info.sql", {"key": key})
        return rows[0][0] if rows else None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------
    def file_states(self) -> dict[str, tuple]:
        """path → (rootname, size, mtime_ns, fingerprint, neighbours_sig, params_digest)."""
        return {row[0]: row[1:] for row in self._run("scan/file_states.sql")}

    def count(self, table: str) -> int:
        if table not in (*TABLES, "catalog_info"):
            raise ValueError(f"unknown table {table!r}")
        return self.con.execute(f"select count(*) from {table}").fetchall()[0][0]

    def run_checks(self) -> dict[str, list[tuple]]:
        """Name → offending rows of every ``sql/checks`` file (all empty when healthy)."""
        return {name: self.con.execute(sql).fetchall() for name, sql in check_sql().items()}

    # -- writing (one transaction per file) -------------------------------------------------
    def write_result(
        self, result: ExposureResult, info: FileInfo, params: ScanParameters
    ) -> str | None:
        """Store one scanned file atomically.

        A ROOTNAME already catalogued from another existing file is not stored: the file is
        recorded in scan_errors (kind ``duplicate``) and that other path returned.
        """
        import pyarrow as pa

        rootname = str(result.exposure["rootname"])
        exposure = dict(result.exposure)
        exposure.update(
            path=info.path,
            file_size=info.size,
            file_mtime_ns=info.mtime_ns,
            fingerprint=info.fingerprint,
            neighbours_sig=info.neighbours_sig,
            params_digest=params.digest(),
            survey_version=__version__,
            scanned_at=_utcnow(),
        )
        batches = {"exposure_batch": pa.Table.from_pylist([exposure])}
        if result.reads:
            batches["reads_batch"] = pa.Table.from_pylist(result.reads)
        return self._write_rows(result, info, exposure, rootname, batches)

    def _insert(self, batches: dict) -> None:
        """Insert the Arrow batches (``scan/insert_*.sql``) inside the open transaction.

        DuckDB finds ``exposure_batch`` and ``reads_batch`` as local variables of this frame
        (a replacement scan): half the cost of registering and unregistering them per file.
        """
        exposure_batch = batches["exposure_batch"]  # noqa: F841 (read by DuckDB)
        self.con.execute(load_sql("scan/insert_exposure.sql")).fetchall()
        if "reads_batch" in batches:
            reads_batch = batches["reads_batch"]  # noqa: F841 (read by DuckDB)
            self.con.execute(load_sql("scan/insert_reads.sql")).fetchall()

    def _write_rows(self, result, info, exposure, rootname, batches) -> str | None:
        path = info.path
        other = self._owner.get(rootname)
        duplicate = other is not None and other != path and still_exists(other)
        notes = {p: (kind, message) for p, kind, message in result.notes}
        flt = exposure.get("flt_path")
        self.con.execute("begin transaction").fetchall()
        try:
            if duplicate:
                self._forget(path, None)
                self._error(info, "duplicate", f"ROOTNAME {rootname} is catalogued from {other}")
            else:
                self._forget(path, rootname)
                if flt in self._errors and flt not in notes:
                    self._run("scan/delete_error.sql", {"path": flt})
                self._insert(batches)
                for note_path, (kind, message) in notes.items():
                    self._error_row(note_path, kind, message, None, None)
            self.con.execute("commit").fetchall()
        except BaseException:
            self.con.execute("rollback").fetchall()
            raise
        # committed: bring the writer's memory in step with the catalog
        self._drop(path, None if duplicate else rootname)
        if duplicate:
            self._errors.add(path)
            return other
        self._errors.discard(path)
        self._errors.discard(flt)
        self._errors |= set(notes)
        self._owner[rootname] = path
        self._held[path] = rootname
        return None

    def write_failure(self, path: str, kind: str, message: str, info: FileInfo | None) -> None:
        """Record that a file could not be scanned (and drop its stale rows), atomically."""
        self.con.execute("begin transaction").fetchall()
        try:
            self._forget(path, None)
            size, mtime = (info.size, info.mtime_ns) if info else (None, None)
            self._error_row(path, kind, message, size, mtime)
            self.con.execute("commit").fetchall()
        except BaseException:
            self.con.execute("rollback").fetchall()
            raise
        self._drop(path, None)
        self._errors.add(path)

    def set_last_scan(self, params: ScanParameters) -> None:
        self.con.execute("begin transaction").fetchall()
        self._set_info("last_scan_at", _utcnow().isoformat(timespec="seconds") + "Z")
        self._set_info("last_scan_parameters", params.to_json())
        self.con.execute("commit").fetchall()

    def _forget(self, path: str, rootname: str | None) -> None:
        """Inside the open transaction, delete the rows of a file (and of the rootname) and its
        recorded failure; only statements with something to delete run."""
        known = path in self._held or (rootname is not None and rootname in self._owner)
        if known:
            params = {"rootname": rootname, "path": path}
            self._run("scan/delete_reads.sql", params)
            self._run("scan/delete_exposure.sql", params)
        if path in self._errors:
            self._run("scan/delete_error.sql", {"path": path})

    def _drop(self, path: str, rootname: str | None) -> None:
        """Forget (in memory) the pairs the committed :meth:`_forget` deleted."""
        old_root = self._held.pop(path, None)
        if old_root is not None and self._owner.get(old_root) == path:
            del self._owner[old_root]
        old_path = self._owner.pop(rootname, None) if rootname is not None else None
        if old_path is not None:
            self._held.pop(old_path, None)

    def _error(self, info: FileInfo, kind: str, message: str) -> None:
        self._error_row(info.path, kind, message, info.size, info.mtime_ns)

    def _error_row(self, path, kind, message, size, mtime_ns) -> None:
        self._run(
            "scan/insert_error.sql",
            {
                "path": path,
                "kind": kind,
                "message": _first_line(message),
                "failed_at": _utcnow(),
                "file_size": size,
                "file_mtime_ns": mtime_ns,
                "survey_version": __version__,
            },
        )

    # -- export -----------------------------------------------------------------------------
    def export_parquet(self, directory: Path, params: ScanParameters, *, overwrite: bool) -> list:
        """Write each table to ``DIR/<table>.parquet`` (flat), with provenance metadata."""
        import json

        import pyarrow.parquet as pq

        order = {"exposures": "rootname", "reads": "rootname, sampnum", "scan_errors": "path"}
        written = []
        created = _utcnow().isoformat(timespec="seconds") + "Z"
        for table, target in zip(TABLES, export_targets(directory), strict=True):
            data = self.con.sql(f"select * from {table} order by {order[table]}").to_arrow_table()
            metadata = dict(data.schema.metadata or {})
            metadata.update(
                {
                    b"survey_version": __version__.encode(),
                    b"survey_table": table.encode(),
                    b"survey_scan_parameters": params.to_json().encode(),
                    b"survey_schema_version": SCHEMA_VERSION.encode(),
                    b"survey_exported_at": created.encode(),
                    b"survey_columns": json.dumps(data.schema.names).encode(),
                }
            )
            data = data.replace_schema_metadata(metadata)
            with atomic_output(target, overwrite=overwrite) as tmp:
                pq.write_table(data, tmp, compression="zstd")
            written.append(target)
        return written


def check_export(directory: Path | None, *, overwrite: bool) -> None:
    """Fail early (before scanning) if an export file exists and may not be replaced."""
    if directory is None:
        return
    for target in export_targets(directory):
        check_writable(target, overwrite=overwrite)


def _first_line(value: object) -> str:
    text = str(value).strip().splitlines()[0] if str(value).strip() else type(value).__name__
    return text[:300]
