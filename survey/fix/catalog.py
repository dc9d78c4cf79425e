"""What ``survey fix`` reads from and writes to the catalog (the main process only).

Reads ``exposures`` (paths, applicability) and, if ``survey flag`` ran, ``flags`` (verdicts);
writes one row per handled exposure into ``fixes`` (``sql/005_fixes.sql``, created by the
catalog layer whenever a catalog opens) and, for a fixed one, its sky histograms and cutouts
into ``fix_images`` (``sql/006_fix_images.sql``, for ``survey report``). Values are bound
parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import SurveyError

__all__ = ["FIX_VERDICTS", "IMAGE_COLUMNS", "Target", "open_catalog", "select_targets", "write_fix"]

#: Verdicts ``--flagged`` takes.
FIX_VERDICTS = ("uniform-tvb", "spatial-tvb")

_HAS_FLAGS = "select count(*) from information_schema.tables where table_name = 'flags'"
_TARGETS = """
select e.rootname, e.path, e.flt_path, e.applicable, e.not_applicable_reason, {verdict}
from exposures as e {join}
order by e.rootname
"""
_INSERT = """
insert or replace into fixes by name
select * from fix_row
"""
_DELETE_IMAGES = "delete from fix_images where rootname = $rootname"
_INSERT_IMAGES = """
insert into fix_images by name
select * from images_row
"""
#: ``FixResult.row()`` keys that go to the table ``fix_images`` (sql/006_fix_images.sql).
IMAGE_COLUMNS = (
    "hist_lo", "hist_hi", "before_hist", "after_hist", "cutout_x0", "cutout_y0", "cutout_size",
    "stretch_sigma", "before_png", "after_png",
)  # fmt: skip


class FixCatalogError(SurveyError):
    """The catalog is missing or lacks what ``survey fix`` needs."""


@dataclass(frozen=True)
class Target:
    """One exposure to fix: where it is and what the triage said."""

    rootname: str
    path: str
    flt_path: str | None = None
    verdict: str | None = None
    reason: str | None = None


def open_catalog(path: str | Path):
    """Open an existing catalog for writing (refuses to create one)."""
    from ..scan.catalog import Catalog

    if not Path(path).exists():
        raise FixCatalogError(f"{path}: no catalog (run `survey scan` and `survey flag` first)")
    return Catalog(path)


def select_targets(con, rootnames: list[str], flagged: bool) -> list[Target]:
    """Catalogued exposures named in ``rootnames`` plus, with ``flagged``, every uniform-tvb
    and spatial-tvb one. Unknown rootnames raise :class:`FixCatalogError`."""
    has_flags = con.execute(_HAS_FLAGS).fetchall()[0][0] > 0
    if flagged and not has_flags:
        raise FixCatalogError("--flagged needs the table `flags`: run `survey flag` first")
    if has_flags:
        sql = _TARGETS.format(verdict="f.verdict, f.reason",
                              join="left join flags as f using (rootname)")  # fmt: skip
    else:
        sql = _TARGETS.format(verdict="null, null", join="")
    rows = con.execute(sql).fetchall()
    by_name = {}
    for root, path, flt_path, applicable, why, verdict, reason in rows:
        if verdict is None and not applicable:
            verdict, reason = "not-applicable", why
        by_name[root] = Target(root, path, flt_path, verdict, reason)
    wanted = [r.lower() for r in rootnames]
    missing = [r for r in wanted if r not in by_name]
    if missing:
        raise FixCatalogError(f"not in the catalog: {', '.join(missing)}")
    chosen = dict.fromkeys(wanted)
    if flagged:
        chosen.update(dict.fromkeys(r for r, t in by_name.items() if t.verdict in FIX_VERDICTS))
    return [by_name[r] for r in chosen]


def write_fix(con, row: dict) -> None:
    """Store one ``FixResult.row()`` (replacing the exposure's previous row): the ``fixes``
    row, and its report images in ``fix_images`` (removed when the new attempt has none)."""
    import pyarrow as pa

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    images = {k: row[k] for k in IMAGE_COLUMNS if k in row}
    full = {k: v for k, v in row.items() if k not in IMAGE_COLUMNS}
    full.update(survey_version=__version__, fixed_at=now)
    types = _arrow_types()
    schema = pa.schema([(name, types.get(name, pa.float64())) for name in full])
    fix_row = pa.Table.from_pylist([full], schema=schema)  # noqa: F841 (DuckDB finds it)
    con.execute(_INSERT).fetchall()
    con.execute(_DELETE_IMAGES, {"rootname": full["rootname"]}).fetchall()
    if images.get("after_png") is not None:
        images.update(rootname=full["rootname"], survey_version=__version__, made_at=now)
        schema = pa.schema([(name, types.get(name, pa.float64())) for name in images])
        images_row = pa.Table.from_pylist([images], schema=schema)  # noqa: F841
        con.execute(_INSERT_IMAGES).fetchall()


def _arrow_types() -> dict:
    import pyarrow as pa

    text = pa.string()
    names = (
        "rootname", "status", "message", "method", "engine", "sky_estimator", "region",
        "parameters", "params_digest", "ima_in", "flt_out", "ima_out", "survey_version",
    )  # fmt: skip
    types = dict.fromkeys(names, text)
    types.update(
        n_popped=pa.int32(), before_npix=pa.int32(), after_npix=pa.int32(),
        read_times=pa.list_(pa.float64()), read_sky=pa.list_(pa.float64()),
        read_offsets=pa.list_(pa.float64()), read_popped=pa.list_(pa.bool_()),
        fixed_at=pa.timestamp("us"), made_at=pa.timestamp("us"),
        before_hist=pa.list_(pa.int32()), after_hist=pa.list_(pa.int32()),
        cutout_x0=pa.int32(), cutout_y0=pa.int32(), cutout_size=pa.int32(),
        before_png=pa.binary(), after_png=pa.binary(),
    )  # fmt: skip
    return types
