"""What ``survey report`` reads from the catalog, and the frames the charts draw.

The catalog is opened read-only and is the only input (no FITS file is opened): exposures,
``flags`` (required: run ``survey flag`` first), ``fixes`` and ``fix_images`` (empty if
``survey fix`` never ran). Queries live in ``sql/report/``. The ``*_frame`` functions are pure
polars transformations of query results, tested on hand-made frames.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import SurveyError

__all__ = [
    "OPTIONAL_COLUMNS",
    "ROBUST_SIGMA",
    "WINDOW_STD",
    "ReportData",
    "ReportDataError",
    "exposure_frame",
    "finite_or_null",
    "fix_parameters_text",
    "histogram_frame",
    "load_report_data",
    "lr_frame",
    "noise_frame",
    "ramp_frame",
    "visit_of",
]

_MJD_EPOCH = dt.datetime(1858, 11, 17)
_TABLES = "select table_name from information_schema.tables"
#: Layer files of tables a catalog made before them lacks (created empty, as temporary tables).
_OPTIONAL_TABLES = {"fixes": "005_fixes.sql", "fix_images": "006_fix_images.sql"}
#: Exposure columns a catalog made before them lacks (NULL then): the notebook's window mean
#: and std of ``survey fix`` (``fixes``) and of the scan (``exposures.flt_sky_std``).
OPTIONAL_COLUMNS = ("before_mean", "before_std", "after_mean", "after_std", "flt_sky_std")
#: What the primary σ of the noise chart and tables is: the STScI notebook's statistic, or
#: (a catalog without it) the robust σ.
WINDOW_STD = "std within median ± 0.5 e⁻/s (notebook)"
ROBUST_SIGMA = "robust σ (1.4826·MAD)"


class ReportDataError(SurveyError):
    """The catalog cannot be read or lacks what the report needs."""


@dataclass
class ReportData:
    """Everything a report is made of (raw query results, see ``sql/report/``)."""

    catalog: Path
    exposures: pl.DataFrame
    reads: pl.DataFrame
    fixes: pl.DataFrame
    images: pl.DataFrame
    thresholds: dict[str, object] = field(default_factory=dict)
    fix_parameters: list[tuple[str, int]] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)


def load_report_data(catalog: str | Path) -> ReportData:
    """Read everything the report needs from ``catalog`` (read-only)."""
    import duckdb

    path = Path(catalog)
    if not path.is_file():
        raise ReportDataError(f"{path}: no catalog (run `survey scan` and `survey flag` first)")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        raise ReportDataError(f"{path}: cannot open the catalog ({message})") from None
    with con:
        _require_tables(con, path)
        thresholds = _query(con, "parameters.sql").to_dicts()
        thresholds = thresholds[0] if thresholds else {}
        _set_flag_variables(con, thresholds)
        return ReportData(
            catalog=path.resolve(),
            exposures=_query(con, "exposures.sql"),
            reads=_query(con, "reads.sql"),
            fixes=_query(con, "fixes.sql"),
            images=_query(con, "images.sql"),
            thresholds=thresholds,
            fix_parameters=[tuple(r) for r in _query(con, "fix_parameters.sql").rows()],
            info=dict(con.execute("select key, value from catalog_info").fetchall()),
        )


def _query(con, name: str) -> pl.DataFrame:
    from ..scan.catalog import load_sql

    return finite_or_null(con.sql(load_sql(f"report/{name}")).pl())


def _finite(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_finite()).then(expr).otherwise(None)


def finite_or_null(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every NaN and ±inf of its float (and list-of-float) columns as NULL.

    A catalog legitimately holds NaN (the sky of an empty region, an undefined left − right
    or σ); a page must show it as missing, and JSON has no NaN. One place, at load."""
    lists = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.List) and dtype.inner.is_float()
    ]
    return frame.with_columns(
        _finite(pl.col(pl.Float32, pl.Float64)),
        *(pl.col(name).list.eval(_finite(pl.element())) for name in lists),
    )


def _require_tables(con, path: Path) -> None:
    from ..scan.catalog import load_sql

    tables = {row[0] for row in con.execute(_TABLES).fetchall()}
    if "exposures" not in tables or "catalog_info" not in tables:
        raise ReportDataError(f"{path}: not a survey catalog (run `survey scan` first)")
    if "flags" not in tables:
        raise ReportDataError(f"{path}: no table `flags` (run `survey flag` first)")
    for table, layer in _OPTIONAL_TABLES.items():
        if table not in tables:  # an older catalog: the same table, empty, for this session
            create = load_sql(layer).replace("create table if not exists", "create temp table")
            con.execute(create).fetchall()


def _set_flag_variables(con, thresholds: dict) -> None:
    """The read_metrics view takes `survey flag`'s read thresholds as session variables."""
    for key in ("read_floor", "max_read_error"):
        value = thresholds.get(key)
        if value is not None:
            con.execute(f"set variable flag_{key} = $value", {"value": float(value)}).fetchall()


# -- frames for the charts -------------------------------------------------------------------
def visit_of(rootname: str) -> str:
    """The visit of a (validated) rootname ``ipppssoot``: ``ipppss``."""
    return rootname[:6]


def _utc(mjd: str) -> pl.Expr:
    micros = (pl.col(mjd) * 86_400e6).round().cast(pl.Int64)
    return pl.lit(_MJD_EPOCH) + pl.duration(microseconds=micros)


def exposure_frame(exposures: pl.DataFrame, pages: dict[str, str]) -> pl.DataFrame:
    """Exposures with ``visit``, a verdict for every row (``not flagged`` if the exposure was
    scanned after ``survey flag``), UT start/end as ISO strings with ``Z`` (so browsers read
    UTC) and ``href`` = the page of the exposure's visit (``pages``: visit → file name).
    :data:`OPTIONAL_COLUMNS` missing from an older catalog are added as NULL."""
    missing = [name for name in OPTIONAL_COLUMNS if name not in exposures.columns]
    exposures = exposures.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    frame = exposures.with_columns(
        visit=pl.col("rootname").str.slice(0, 6),
        verdict=pl.col("verdict").fill_null("not flagged"),
        start=_utc("expstart"),
        end=_utc("expend"),
    )
    return frame.with_columns(
        start_utc=pl.col("start").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        end_utc=pl.col("end").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        start_text=pl.col("start").dt.strftime("%Y-%m-%d %H:%M:%S"),
        href=pl.col("visit").replace_strict(pages, default=None, return_dtype=pl.String),
    ).drop("start", "end")


def primary_sigma(std: str, robust: str) -> list[pl.Expr]:
    """``sigma``: the notebook's window std (column ``std``), or the robust σ (``robust``) where
    the catalog has no window std; ``statistic`` says which; ``robust_sigma`` the robust σ."""
    has_std = pl.col(std).is_not_null()
    return [
        pl.coalesce(std, robust).alias("sigma"),
        pl.when(has_std)
        .then(pl.lit(WINDOW_STD))
        .otherwise(pl.lit(ROBUST_SIGMA))
        .alias("statistic"),
        pl.col(robust).alias("robust_sigma"),
    ]


def noise_frame(exposures: pl.DataFrame) -> pl.DataFrame:
    """Long frame for the noise chart: per fixed exposure its FLT sky σ before (archive FLT)
    and after (survey fix), and the archive σ of every linear exposure (the reference).

    σ is the seed notebook's statistic, the std of the sky pixels within median ± 0.5 e⁻/s
    (``before_std``/``after_std``; the linear exposures' ``flt_sky_std`` once the scan stores
    it), else the robust σ (see :func:`primary_sigma`); ``exposure_frame`` output expected."""
    fixed = exposures.filter(
        (pl.col("fix_status") == "fixed") & pl.col("after_sigma").is_not_null()
    )
    keys = ["rootname", "visit", "filter", pl.col("fix_method").alias("method")]
    stages = [
        fixed.select(*keys, *primary_sigma("before_std", "before_sigma"),
                     stage=pl.lit("archive FLT"), median="before_median"),
        fixed.select(*keys, *primary_sigma("after_std", "after_sigma"),
                     stage=pl.lit("survey fix"), median="after_median"),
        exposures.filter(pl.col("verdict") == "linear").select(
            *keys, *primary_sigma("flt_sky_std", "flt_sky_sigma"),
            stage=pl.lit("linear exposures"), median="flt_sky_median",
        ),
    ]  # fmt: skip
    return pl.concat(stages).filter(pl.col("sigma").is_not_null())


def _fixed_series(fixes: pl.DataFrame) -> pl.DataFrame:
    """Per non-zeroth read of every fixed exposure: the fix's sky m_k (cumulative rate) and its
    instantaneous rate (m_k·t_k − m_{k−1}·t_{k−1})/Δt before; after the fix the cumulative rate
    C′_k/t′_k over the intervals kept (offsets added, popped intervals left out) and the
    instantaneous rate of each kept interval."""
    rows = []
    for fix in fixes.iter_rows(named=True):
        times, sky = fix["read_times"], fix["read_sky"]
        offsets = fix["read_offsets"] or [0.0] * len(times)
        popped = fix["read_popped"] or [False] * len(times)
        before = after = 0.0  # C_0 = 0: t_0 = 0
        counts, exposed = 0.0, 0.0
        for k in range(1, len(times)):
            # a NULL (a NaN in the catalog) time, sky or offset leaves its rates missing
            dt_k = _difference(times[k], times[k - 1])
            now_before = _product(sky[k], times[k])
            now_after = _product(_sum(sky[k], offsets[k]), times[k])
            inst_before = _rate(now_before, before, dt_k)
            inst_after = None if popped[k] else _rate(now_after, after, dt_k)
            if not popped[k]:
                counts = (
                    None if inst_after is None or counts is None else counts + inst_after * dt_k
                )
                exposed += dt_k or 0.0
            rows.append(
                {
                    "rootname": fix["rootname"],
                    "sampnum": k,
                    "fixed_sky": sky[k],
                    "fixed_inst": inst_before,
                    "after_inst": inst_after,
                    "after_cum": None
                    if popped[k] or counts is None or exposed <= 0
                    else counts / exposed,
                }
            )
            before, after = now_before, now_after
    schema = {
        "rootname": pl.String,
        "sampnum": pl.Int32,
        "fixed_sky": pl.Float64,
        "fixed_inst": pl.Float64,
        "after_inst": pl.Float64,
        "after_cum": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _product(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a * b


def _rate(now: float | None, previous: float | None, dt_k: float | None) -> float | None:
    if now is None or previous is None or dt_k is None or dt_k <= 0:
        return None
    return (now - previous) / dt_k


def ramp_frame(reads: pl.DataFrame, fixes: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """Long frame for the ramp charts: per used read, the cumulative (SCI_k median) and
    instantaneous (ΔC/Δt) sky rate, before and — for fixed exposures — after the fix.

    Before a fix the series are the fix's own per-read skies (its estimator); for an exposure
    not fixed, the scan's masked sky. Reads the triage does not use (too short to measure the
    sky to ``max_read_error``) are left out.
    """
    data = (
        reads.with_columns(pl.col("sampnum").cast(pl.Int32))
        .join(_fixed_series(fixes), on=["rootname", "sampnum"], how="left")
        .join(exposures.select("rootname", "visit", "filter", "verdict"), on="rootname")
        .filter(pl.col("used"))
        .with_columns(
            cum_before=pl.coalesce("fixed_sky", "sky_median"),
            inst_before=pl.when(pl.col("fixed_sky").is_not_null())
            .then(pl.col("fixed_inst"))
            .otherwise(pl.col("rate_sky")),
            label=pl.concat_str(
                "rootname", pl.col("filter").fill_null("?"), "verdict", separator=" · "
            ),
        )
    )
    series = [
        data.select(
            "rootname",
            "label",
            "visit",
            "filter",
            t="samptime",
            rate=column,
            quantity=pl.lit(quantity),
            stage=pl.lit(stage),
        )
        for column, quantity, stage in (
            ("cum_before", "cumulative", "before"),
            ("inst_before", "instantaneous", "before"),
            ("after_cum", "cumulative", "after"),
            ("after_inst", "instantaneous", "after"),
        )
    ]
    frame = pl.concat(series)
    return frame.filter(pl.col("rate").is_not_null() & pl.col("rate").is_finite()).sort(
        "rootname", "quantity", "stage", "t"
    )


def lr_frame(reads: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """Left − right difference of the instantaneous rate per used read, per exposure."""
    meta = exposures.select("rootname", "visit", "filter", "verdict")
    return (
        reads.filter(pl.col("used") & pl.col("lr_diff").is_not_null())
        .join(meta, on="rootname")
        .select("rootname", "visit", "filter", "verdict", t="samptime", lr_diff="lr_diff")
        .sort("rootname", "t")
    )


def histogram_frame(images: pl.DataFrame, exposures: pl.DataFrame) -> pl.DataFrame:
    """Long frame of the sky histograms: per fixed exposure, stage and bin, the bin centre
    (e⁻/s) and the fraction of that stage's sky pixels in the bin."""
    rows = []
    for image in images.iter_rows(named=True):
        for stage, counts in (
            ("archive FLT", image["before_hist"]),
            ("survey fix", image["after_hist"]),
        ):
            if not counts or image["hist_lo"] is None or image["hist_hi"] is None:
                continue  # no histogram, or its range was NaN in the catalog
            width = (image["hist_hi"] - image["hist_lo"]) / len(counts)
            total = max(1, sum(counts))
            for i, count in enumerate(counts):
                rows.append(
                    {
                        "rootname": image["rootname"],
                        "stage": stage,
                        "rate": image["hist_lo"] + (i + 0.5) * width,
                        "fraction": count / total,
                    }
                )
    schema = {"rootname": pl.String, "stage": pl.String, "rate": pl.Float64, "fraction": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema)
    return frame.join(exposures.select("rootname", "visit", "filter"), on="rootname")


def fix_parameters_text(rows: list[tuple[str, int]]) -> list[str]:
    """One line per distinct ``survey fix`` parameter set: ``n × key=value, …``."""
    lines = []
    for text, n in rows:
        try:
            params = json.loads(text)
            body = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        except (TypeError, ValueError):
            body = str(text)
        lines.append(f"{n} × {body}")
    return lines
