"""Rank exposures by count-rate non-linearity and give each a verdict (``survey flag``).

All SQL lives in ``sql/`` (package ``survey.sql``) and is loaded with the scanner's loader
(:func:`survey.scan.catalog.load_sql`):

* ``020_read_metrics.sql`` and ``030_exposure_metrics.sql`` are catalog-layer *views* (they run
  whenever a catalog is opened); their thresholds are DuckDB session variables
  (``flag_read_floor``, ``flag_max_read_error``, ``flag_lr_threshold``, ``flag_lr_ratio``,
  ``flag_lr_nsigma``)
  which :func:`flag_catalog` sets from :class:`FlagParameters` with bound values;
* ``100_ranking.sql`` is the parameterised triage query, ``110_write_flags.sql`` stores it.

Verdict rules, defaults and their justification: ``sql/README.md`` (section ``survey flag``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SurveyError

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "VERDICTS",
    "FlagError",
    "FlagParameters",
    "flag_catalog",
    "query_catalog",
    "rank",
]

VERDICTS = ("linear", "uniform-tvb", "spatial-tvb", "not-applicable")

#: FlagParameters field → the DuckDB session variable read by the views 020/030.
_VARIABLES = {
    "read_floor": "flag_read_floor",
    "max_read_error": "flag_max_read_error",
    "lr_threshold": "flag_lr_threshold",
    "lr_ratio": "flag_lr_ratio",
    "lr_nsigma": "flag_lr_nsigma",
}
_RANKING_PARAMS = ("min_excess", "min_ratio", "min_chi2", "min_reads", "min_lr_reads")
_LAYER_VIEWS = {
    "read_metrics": "020_read_metrics.sql",
    "exposure_metrics": "030_exposure_metrics.sql",
}


class FlagError(SurveyError):
    """The catalog is missing, locked, fails its checks, or a query is not allowed."""

    exit_code = 1


@dataclass(frozen=True, kw_only=True)
class FlagParameters:
    """Thresholds of the triage (units in the comments; justification in sql/README.md)."""

    min_excess: float = 0.1  # e⁻/s: max − min instantaneous sky rate for a uniform TVB
    min_ratio: float = 1.1  # 1: max / min instantaneous sky rate
    min_chi2: float = 10.0  # 1: χ²/dof of a constant rate
    min_reads: int = 3  # reads precise enough to use
    lr_threshold: float = 0.1  # e⁻/s: left − right of a scattered-light read
    lr_ratio: float = 1.1  # 1: left / right of a scattered-light read
    lr_nsigma: float = 3.0  # σ: left − right of a scattered-light read, in units of its error
    min_lr_reads: int = 2  # reads with scattered light for a spatial TVB
    max_read_error: float = 0.02  # e⁻/s: largest error of a used read's median rate
    read_floor: float = 0.005  # e⁻/s: systematic error per read, in quadrature

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not value >= 0:  # also catches NaN
                raise FlagError(f"{field.name} must be ≥ 0, got {value}")
        if self.min_reads < 2:
            raise FlagError(f"min_reads must be ≥ 2, got {self.min_reads}")
        if self.max_read_error <= 0:
            raise FlagError(f"max_read_error must be > 0, got {self.max_read_error}")

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def _load(name: str) -> str:
    from ..scan.catalog import load_sql

    return load_sql(name)


def _set_variables(con: duckdb.DuckDBPyConnection, params: FlagParameters) -> None:
    from ..scan.params import ScanParameters

    for field, variable in _VARIABLES.items():
        # the variable name comes from the fixed table above; the value is bound
        con.execute(f"set variable {variable} = $value", {"value": getattr(params, field)})
    # checks/scan_version.sql: rows of an older scan must be rescanned before the triage
    con.execute("set variable scan_params_digest = $value", {"value": ScanParameters().digest()})


def _require(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FlagError(f"{path}: no such catalog (run `survey scan` first)")
    return path


def rank(con: duckdb.DuckDBPyConnection, params: FlagParameters) -> pl.DataFrame:
    """The triage (``100_ranking.sql``) on an open connection, most non-linear first."""
    _set_variables(con, params)
    values = {name: getattr(params, name) for name in _RANKING_PARAMS}
    import polars as pl

    return pl.from_arrow(con.sql(_load("100_ranking.sql"), params=values).to_arrow_table())


def flag_catalog(path: str | Path, params: FlagParameters | None = None) -> pl.DataFrame:
    """Run the checks, rank the catalog's exposures, store the ``flags`` table, return it."""
    from .. import __version__
    from ..scan.catalog import Catalog

    params = params or FlagParameters()
    path = _require(Path(path))
    with Catalog(path) as catalog:  # applies the layer (views 020/030) and the schema check
        con = catalog.con
        _set_variables(con, params)
        failed = {name: rows for name, rows in catalog.run_checks().items() if rows}
        if failed:
            detail = "; ".join(f"{name}: {len(rows)} row(s)" for name, rows in failed.items())
            if "scan_version" in failed:  # the common case after an upgrade: say what to do
                n = len(failed["scan_version"])
                raise FlagError(
                    f"{path}: {n} exposure(s) were scanned by an older survey; run `survey scan`"
                    " on the same files (same --catalog) to update them, then flag again"
                )
            raise FlagError(f"{path}: catalog checks failed ({detail}); rescan the files")
        frame = rank(con, params)
        flag_batch = frame.to_arrow()  # noqa: F841 (found by DuckDB's replacement scan)
        values = params.as_dict() | {
            "survey_version": __version__,
            "flagged_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }
        con.execute("begin transaction").fetchall()
        con.execute(_load("110_write_flags.sql"), values).fetchall()
        con.execute("commit").fetchall()
    return frame


def query_catalog(path: str | Path, sql: str) -> pl.DataFrame:
    """Run one read-only SELECT on the catalog and its views (``survey sql``)."""
    import duckdb

    path = _require(Path(path))
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise FlagError(f"cannot parse the query: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise FlagError(f"give exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise FlagError(f"only SELECT queries are allowed (read-only), got {kind.name}")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.Error, OSError) as exc:
        raise FlagError(f"{path}: cannot open the catalog ({_first_line(exc)})") from None
    try:
        _ensure_views(con)
        return con.sql(sql).pl()
    except duckdb.Error as exc:
        raise FlagError(f"query failed: {_first_line(exc)}") from None
    finally:
        con.close()


def _ensure_views(con: duckdb.DuckDBPyConnection) -> None:
    """A catalog scanned before the flag views existed gets them as temporary views."""
    have = {row[0] for row in con.execute("select view_name from duckdb_views()").fetchall()}
    for view, name in _LAYER_VIEWS.items():
        if view not in have:
            text = _load(name).replace("create or replace view", "create or replace temp view")
            con.execute(text).fetchall()


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else type(value).__name__
