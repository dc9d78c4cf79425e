"""`survey scan` on simulated programs and real archive files: the catalog a user gets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from astropy.io import fits
from click.testing import CliRunner

from survey import __version__
from survey.cli import SurveyGroup
from survey.scan.catalog import Catalog, check_sql
from survey.scan.command import scan
from survey.scan.params import ScanParameters
from survey.simulate import ProgramConfig, simulate_program
from survey.wfc3ir.fitsio import open_exposure

CLI = SurveyGroup(name="survey", commands={"scan": scan})
STAMPS = {"scanned_at", "failed_at"}  # the only columns allowed to differ between two scans


def run(*args: object, catalog: Path | None = None):
    argv = ["scan", *map(str, args)]
    if catalog is not None:
        argv += ["--catalog", str(catalog)]
    return CliRunner().invoke(CLI, argv)


def table(catalog: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(catalog), read_only=True) as con:
        return con.sql(sql).pl()


def comparable_full(catalog: Path, name: str) -> pl.DataFrame:
    key = {"exposures": "rootname", "reads": "rootname, sampnum", "scan_errors": "path"}[name]
    return table(catalog, f"select * from {name} order by {key}")


def comparable(catalog: Path, name: str) -> pl.DataFrame:
    frame = comparable_full(catalog, name)
    return frame.drop([c for c in frame.columns if c in STAMPS])


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> tuple[Path, pl.DataFrame]:
    """Six 74² exposures in two visits (one F105W, one G102 with a direct image)."""
    out = tmp_path_factory.mktemp("program") / "prog"
    summary = simulate_program(
        out,
        ProgramConfig(
            n_visits=2, exposures_per_visit=3, size=74, seed=7, filters=("F105W", "G102")
        ),
    )
    return out, summary.truth


@pytest.fixture(scope="module")
def scanned(program, tmp_path_factory) -> Path:
    catalog = tmp_path_factory.mktemp("catalog") / "survey.duckdb"
    result = run(program[0], "--jobs", 1, catalog=catalog)
    assert result.exit_code == 0, result.output
    return catalog


@pytest.fixture(scope="module")
def pstat():
    """wfc3tools.pstat without a display (it switches matplotlib to interactive mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from wfc3tools import pstat

    yield pstat
    plt.ioff()
    plt.close("all")


# -- the catalog against the manifest -----------------------------------------------------


def test_rows_match_the_manifest(program, scanned) -> None:
    _, truth = program
    exposures = table(scanned, "select * from exposures order by rootname")
    reads = table(scanned, "select rootname, count(*) as n from reads group by rootname")
    assert exposures["rootname"].to_list() == sorted(truth["rootname"].to_list())
    merged = truth.join(exposures, on="rootname", suffix="_cat").join(reads, on="rootname")
    assert (merged["n"] == merged["nsamp"] - 1).all()
    for column in ("filter", "samp_seq", "nsamp", "asn_id", "targname"):
        assert merged[column].to_list() == merged[f"{column}_cat"].to_list(), column
    for column in ("exptime", "expstart", "expend"):
        assert np.allclose(merged[column], merged[f"{column}_cat"], rtol=0, atol=1e-6), column
    assert (exposures["proposid"] == 12242).all()
    assert exposures["asn_path"].map_elements(lambda p: Path(p).is_file(), pl.Boolean).all()


def test_grism_exposures_are_catalogued_but_not_applicable(program, scanned) -> None:
    exposures = table(scanned, "select filter, applicable, not_applicable_reason from exposures")
    grism = exposures.filter(pl.col("filter") == "G102")
    assert len(grism) >= 1
    assert not grism["applicable"].any() and (grism["not_applicable_reason"] == "grism").all()
    imaging = exposures.filter(pl.col("filter") != "G102")
    assert imaging["applicable"].all() and imaging["not_applicable_reason"].is_null().all()
    assert table(scanned, "select * from scan_errors").is_empty()


def test_median_rate_equals_pstat_read_for_read(program, scanned, pstat) -> None:
    reads = table(scanned, "select * from reads order by rootname, sampnum")
    for path in sorted(program[0].glob("*_ima.fits"))[:3]:
        with open_exposure(path) as exposure:
            nsamp, (ny, nx) = exposure.nsamp, exposure.shape
            rootname = exposure.meta.rootname
        region = {"col_slice": (5, nx - 5), "row_slice": (5, ny - 5), "stat": "midpt"}
        times, rates = pstat(str(path), units="rate", plot=False, **region)
        _, counts = pstat(str(path), units="counts", plot=False, **region)
        mine = reads.filter(pl.col("rootname") == rootname).sort("sampnum")
        assert mine["sampnum"].to_list() == list(range(1, nsamp))
        # pstat: element i-1 is imset i = read nsamp - i; its last element is a 0 placeholder
        order = nsamp - 1 - mine["sampnum"].to_numpy()
        assert (mine["median_rate"].to_numpy() == rates[order]).all()
        assert (mine["samptime"].to_numpy() == times[order]).all()
        assert np.allclose(mine["median_counts"].to_numpy(), counts[order], rtol=1e-12)


def test_sql_checks_find_nothing_on_a_scanned_catalog(scanned) -> None:
    with duckdb.connect(str(scanned), read_only=True) as con:
        for name, sql in check_sql().items():
            assert con.execute(sql).fetchall() == [], name


def test_sql_checks_catch_a_damaged_catalog(scanned, tmp_path) -> None:
    damaged = tmp_path / "damaged.duckdb"
    shutil.copy(scanned, damaged)
    with duckdb.connect(str(damaged)) as con:
        root = con.execute("select min(rootname) from exposures").fetchall()[0][0]
        con.execute("delete from reads where rootname = ? and sampnum = 3", [root]).fetchall()
        con.execute(
            "update reads set samptime = 0 where rootname = ? and sampnum = 5", [root]
        ).fetchall()
        con.execute(
            "update reads set median_rate = 'inf' where rootname = ? and sampnum = 7", [root]
        ).fetchall()
        con.execute(
            "update exposures set not_applicable_reason = null where not applicable"
        ).fetchall()
        found = {name: con.execute(sql).fetchall() for name, sql in check_sql().items()}
    assert found["read_counts"] and found["monotonic_times"] and found["finite_rates"]
    assert found["applicability"] and not found["unique_keys"]


def test_masked_statistics_recover_the_sky_of_a_crowded_field(tmp_path) -> None:
    out = tmp_path / "crowded"
    truth = simulate_program(
        out,
        ProgramConfig(
            n_visits=1,
            exposures_per_visit=1,
            size=266,
            seed=3,
            crowded=True,
            he_fraction=1.0,
            he_profiles=("rising",),
            scattered_fraction=0.0,
        ),
    ).truth_reads
    catalog = tmp_path / "c.duckdb"
    assert run(out, "--jobs", 1, catalog=catalog).exit_code == 0
    reads = table(catalog, "select * from reads order by sampnum").join(
        truth.rename({"read": "sampnum"}), on=["rootname", "sampnum"]
    )
    late = reads.filter(pl.col("samptime") > 50)  # early reads are read-noise dominated
    noise = late["sky_sigma"] / late["sky_nclip"].sqrt() * 1.25  # σ of a median
    plain_bias = late["median_rate"] - late["sky_cumulative"]
    masked_bias = late["sky_median"] - late["sky_cumulative"]
    assert (plain_bias > 5 * noise).all()  # sources push the plain median up
    assert (masked_bias.abs() < 4 * noise + 2e-4).all()
    inst_noise = late["inst_sigma"] / late["inst_nclip"].sqrt() * 1.25
    inst_bias = late["inst_median"] - late["sky_rate"]
    assert (inst_bias.abs() < 4 * inst_noise + 5e-4).all()
    assert late["sky_rate"].max() > late["sky_rate"].min() + 0.3  # the He I ramp is there


# -- incremental scans ---------------------------------------------------------------------


def test_unchanged_files_are_skipped_changed_ones_rescanned(program, tmp_path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(program[0], folder)
    catalog = tmp_path / "s.duckdb"
    assert run(folder, "--jobs", 1, catalog=catalog).exit_code == 0
    n = len(list(folder.glob("*_ima.fits")))
    again = run(folder, "--jobs", 1, catalog=catalog)
    assert again.exit_code == 0 and f"0 scanned, {n} skipped (unchanged), 0 failed" in again.output
    first, second = sorted(folder.glob("*_ima.fits"))[:2]
    st = first.stat()
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    with fits.open(second) as hdul:
        offset = hdul[1].fileinfo()["datLoc"] + 4 * 400  # a pixel of the last read
    assert offset < 60000  # inside the fingerprinted head of the file
    data = bytearray(second.read_bytes())  # same size and mtime, other pixel values
    data[offset : offset + 4] = np.array([123.0], ">f4").tobytes()
    st = second.stat()
    second.write_bytes(bytes(data))
    os.utime(second, ns=(st.st_atime_ns, st.st_mtime_ns))
    third = run(folder, "--jobs", 1, catalog=catalog)
    assert f"2 scanned, {n - 2} skipped" in third.output, third.output
    forced = run(folder, "--jobs", 1, "--rescan", catalog=catalog)
    assert f"{n} scanned, 0 skipped" in forced.output
    assert comparable(catalog, "reads").equals(comparable(catalog, "reads"))


def test_jobs_two_gives_the_same_catalog_as_jobs_one(program, scanned, tmp_path) -> None:
    catalog = tmp_path / "two.duckdb"
    result = run(program[0], "--jobs", 2, catalog=catalog)
    assert result.exit_code == 0, result.output
    for name in ("exposures", "reads", "scan_errors"):
        assert comparable(catalog, name).equals(comparable(scanned, name)), name


_KILLER = """
import sys, time
from survey.scan import catalog, runner

original = catalog.Catalog._write_rows
def slow(self, result, info, exposure, rootname, batches):
    if result.exposure["rootname"] == sys.argv[3]:
        # stop inside the transaction: after the exposure insert, before the reads
        self.con.execute("begin transaction").fetchall()
        self._forget(info.path, rootname)
        self._insert({"exposure_batch": batches["exposure_batch"]})
        print("inside", flush=True)
        time.sleep(60)
    out = original(self, result, info, exposure, rootname, batches)
    print("committed", rootname, flush=True)
    return out
catalog.Catalog._write_rows = slow
runner.scan_paths([sys.argv[1]], catalog=sys.argv[2], jobs=1)
"""


def test_a_killed_scan_resumes_to_the_catalog_of_a_clean_scan(program, scanned, tmp_path) -> None:
    folder = program[0]
    catalog = tmp_path / "killed.duckdb"
    rootnames = sorted(p.name[:9] for p in folder.glob("*_ima.fits"))
    victim = rootnames[3]
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLER), str(folder), str(catalog), victim],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in child.stdout:
        lines.append(line.strip())
        if line.startswith("inside"):
            child.kill()  # SIGKILL in the middle of a transaction
            break
    child.wait(timeout=60)
    child.stdout.close()
    assert child.returncode == -9 and lines[-1] == "inside"
    assert len([x for x in lines if x.startswith("committed")]) == 3
    after_kill = table(catalog, "select rootname from exposures order by rootname")
    assert after_kill["rootname"].to_list() == rootnames[:3]  # no partial file
    assert (
        table(catalog, f"select count(*) as n from reads where rootname = '{victim}'")["n"][0] == 0
    )
    resumed = run(folder, "--jobs", 1, catalog=catalog)
    assert resumed.exit_code == 0
    assert f"{len(rootnames) - 3} scanned, 3 skipped" in resumed.output
    for name in ("exposures", "reads", "scan_errors"):
        assert comparable(catalog, name).equals(comparable(scanned, name)), name


# -- files that cannot be scanned -----------------------------------------------------------


def _rewrite(src: Path, dst: Path, **primary) -> Path:
    with fits.open(src) as hdul:
        copy = fits.HDUList([hdu.copy() for hdu in hdul])
    for key, value in primary.items():
        copy[0].header[key] = value
    copy.writeto(dst)
    return dst


@pytest.fixture(scope="module")
def messy(program, tmp_path_factory) -> tuple[Path, Path, dict]:
    """A folder with good IMAs and every kind of bad one, scanned once."""
    folder = tmp_path_factory.mktemp("messy") / "data"
    folder.mkdir()
    good = sorted(p for p in program[0].glob("*_ima.fits"))
    imaging = [p for p in good if fits.getval(p, "FILTER") != "G102"]
    shutil.copy(imaging[0], folder)
    shutil.copy(imaging[1], folder)
    (folder / imaging[1].name.replace("_ima", "_flt")).write_bytes(b"not a FITS file" * 100)
    names = {
        "corrupt": "iabc01c1q_ima.fits",
        "truncated": "iabc01c2q_ima.fits",
        "non_ir": "iabc01c3q_ima.fits",
        "grism": "iabc01c4q_ima.fits",
        "rootname": "iabc01c5q_ima.fits",
        "markup": "iabc01c6q_ima.fits",
    }
    (folder / names["corrupt"]).write_bytes(os.urandom(30000))
    data = imaging[2].read_bytes()
    (folder / names["truncated"]).write_bytes(data[: len(data) * 3 // 5])
    _rewrite(imaging[2], folder / names["non_ir"], DETECTOR="UVIS", ROOTNAME="iabc01c3q")
    _rewrite(
        imaging[2],
        folder / names["grism"],
        FILTER="G141",
        OBSTYPE="SPECTROSCOPIC",
        ROOTNAME="iabc01c4q",
    )
    _rewrite(imaging[2], folder / names["rootname"], ROOTNAME="../../x")
    markup = _rewrite(
        imaging[2],
        folder / names["markup"],
        ROOTNAME="iabc01c6q",
        TARGNAME='<script>alert("x")</script>#[31m',
    )
    raw = markup.read_bytes()  # astropy refuses to write a control character: patch it in
    markup.write_bytes(raw.replace(b"</script>#[31m", b"</script>\x1b[31m", 1))
    catalog = tmp_path_factory.mktemp("messy_catalog") / "m.duckdb"
    before = sorted(p.name for p in folder.parent.rglob("*"))
    result = run(folder, "--jobs", 1, catalog=catalog)
    assert sorted(p.name for p in folder.parent.rglob("*")) == before  # nothing written there
    return catalog, folder, {"result": result, **names}


def test_bad_files_are_recorded_and_the_scan_goes_on(messy) -> None:
    catalog, folder, info = messy
    result = info["result"]
    assert result.exit_code == 2
    errors = {
        Path(r["path"]).name: r
        for r in table(catalog, "select * from scan_errors").rows(named=True)
    }
    for key in ("corrupt", "truncated", "non_ir", "rootname"):
        row = errors[info[key]]
        assert row["kind"] == "input" and "\n" not in row["message"]
        assert f"Failed: {folder / info[key]}" in result.output
    assert "not a FITS file" in errors[info["corrupt"]]["message"]
    assert "truncated" in errors[info["truncated"]]["message"]
    assert "not a WFC3/IR file" in errors[info["non_ir"]]["message"]
    assert "not a valid HST rootname" in errors[info["rootname"]]["message"]
    flt = [r for name, r in errors.items() if name.endswith("_flt.fits")]
    assert len(flt) == 1 and flt[0]["kind"] == "flt"
    assert "4 failed" in result.output and "2 skipped" not in result.output
    exposures = table(catalog, "select * from exposures order by rootname")
    assert len(exposures) == 4  # the two good ones, the grism and the markup one
    grism = exposures.filter(pl.col("rootname") == "iabc01c4q")
    assert grism["applicable"].to_list() == [False]
    assert grism["not_applicable_reason"].to_list() == ["grism"]
    with_flt = exposures.filter(pl.col("flt_path").is_not_null())
    assert len(with_flt) == 1 and with_flt["flt_sky_median"].is_null().all()


def test_header_text_is_stored_as_inert_printable_text(messy, tmp_path) -> None:
    catalog, _, _ = messy
    targname = table(catalog, "select targname from exposures where rootname = 'iabc01c6q'")
    assert targname["targname"].to_list() == ['<script>alert("x")</script>?[31m']


def test_failed_files_are_retried_and_cleared_once_fixed(program, tmp_path) -> None:
    folder = tmp_path / "fix"
    folder.mkdir()
    good = sorted(program[0].glob("*_ima.fits"))[0]
    target = folder / good.name
    target.write_bytes(b"garbage" * 1000)
    catalog = tmp_path / "f.duckdb"
    assert run(folder, "--jobs", 1, catalog=catalog).exit_code == 2
    assert run(folder, "--jobs", 1, catalog=catalog).exit_code == 2  # still broken: still failing
    shutil.copy(good, target)
    assert run(folder, "--jobs", 1, catalog=catalog).exit_code == 0
    assert table(catalog, "select * from scan_errors").is_empty()
    assert len(table(catalog, "select * from exposures")) == 1


def test_a_rootname_from_two_files_is_catalogued_once(program, tmp_path) -> None:
    src = sorted(program[0].glob("*_ima.fits"))[0]
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(src, tmp_path / sub / src.name)
    catalog = tmp_path / "d.duckdb"
    result = run(tmp_path / "a", tmp_path / "b", "--jobs", 1, catalog=catalog)
    assert result.exit_code == 2 and "is catalogued from" in result.output
    errors = table(catalog, "select * from scan_errors")
    assert errors["kind"].to_list() == ["duplicate"]
    assert table(catalog, "select path from exposures")["path"].to_list() == [
        str((tmp_path / "a" / src.name).resolve())
    ]


def test_user_errors_are_one_line_with_exit_codes(tmp_path) -> None:
    missing = run(tmp_path / "nowhere", catalog=tmp_path / "c.duckdb")
    assert missing.exit_code == 2 and "no such file or directory" in missing.output
    not_ima = tmp_path / "notes.txt"
    not_ima.write_text("hello")
    result = run(not_ima, catalog=tmp_path / "c.duckdb")
    assert result.exit_code == 2 and "expected a name ending in _ima.fits" in result.output
    bad_catalog = tmp_path / "bad.duckdb"
    bad_catalog.write_text("this is not a database")
    (tmp_path / "empty").mkdir()
    locked = run(tmp_path / "empty", catalog=bad_catalog)
    assert locked.exit_code == 1 and locked.output.startswith("Error: ")
    assert "cannot open the catalog" in locked.output and len(locked.output.splitlines()) == 1


# -- Parquet export --------------------------------------------------------------------------


def test_parquet_export_carries_version_and_parameters(program, tmp_path) -> None:
    import pyarrow.parquet as pq

    catalog, export = tmp_path / "p.duckdb", tmp_path / "parquet"
    result = run(program[0], "--jobs", 1, "--export-parquet", export, catalog=catalog)
    assert result.exit_code == 0, result.output
    for name in ("exposures", "reads", "scan_errors"):
        path = export / f"{name}.parquet"
        meta = pq.read_schema(path).metadata
        assert meta[b"survey_version"].decode() == __version__
        assert meta[b"survey_table"].decode() == name
        params = json.loads(meta[b"survey_scan_parameters"])
        assert params == ScanParameters().as_dict()
        assert pl.read_parquet(path).equals(comparable_full(catalog, name))
    again = run(program[0], "--jobs", 1, "--export-parquet", export, catalog=catalog)
    assert again.exit_code == 3 and "--overwrite" in again.output
    forced = run(program[0], "--export-parquet", export, "--overwrite", catalog=catalog)
    assert forced.exit_code == 0


# -- the SQL view of instantaneous rates -------------------------------------------------------


def _catalog_with_reads(path: Path, rows: list[tuple[str, int, float, float]]) -> Path:
    with Catalog(path) as cat:
        for rootname, sampnum, samptime, median in rows:
            cat.con.execute(
                "insert into reads (rootname, sampnum, samptime, median_rate, sky_median, "
                "left_median, right_median) values (?, ?, ?, ?, ?, ?, ?)",
                [rootname, sampnum, samptime, median, median, median + 0.1, median],
            ).fetchall()
    return path


def test_interval_rates_view_against_hand_computed_numbers(tmp_path) -> None:
    # C = m·t: (1, 4, 12) at t = (1, 2, 4) → r = 1/1, (4 − 1)/1, (12 − 4)/2
    rows = [("ihand0001", 1, 1.0, 1.0), ("ihand0001", 2, 2.0, 2.0), ("ihand0001", 3, 4.0, 3.0)]
    # a missing read 2: read 3 has no previous read, its rate stays NULL
    rows += [("ihand0002", 1, 1.0, 1.0), ("ihand0002", 3, 4.0, 3.0)]
    catalog = _catalog_with_reads(tmp_path / "v.duckdb", rows)
    view = table(catalog, "select * from interval_rates order by rootname, sampnum")
    first = view.filter(pl.col("rootname") == "ihand0001")
    assert first["rate_median"].to_list() == [1.0, 3.0, 4.0]
    assert first["rate_sky"].to_list() == [1.0, 3.0, 4.0]
    assert first["t_start"].to_list() == [0.0, 1.0, 2.0] and first["dt"].to_list() == [1, 1, 2]
    assert first["rate_left"].to_list() == pytest.approx([1.1, 3.1, 4.1])
    gap = view.filter(pl.col("rootname") == "ihand0002")
    assert gap["rate_median"].to_list() == [1.0, None]


def test_interval_rates_reproduce_the_ibohbfb9q_table(tmp_path) -> None:
    # domain reference §1: medians of ibohbfb9q (rounded) and the instantaneous rates from them
    t = [
        2.93,
        5.86,
        8.80,
        11.73,
        24.23,
        49.23,
        99.23,
        199.23,
        399.23,
        599.23,
        799.23,
        999.23,
        1199.23,
        1399.23,
        1599.23,
    ]
    m = [0.42, 0.48, 0.47, 0.49, 0.46, 0.47, 0.47, 0.49, 0.67, 0.97, 1.26, 1.40, 1.44, 1.46, 1.50]
    r = [0.42, 0.54, 0.45, 0.55, 0.43, 0.48, 0.47, 0.51, 0.85, 1.57, 2.13, 1.96, 1.64, 1.58, 1.78]
    rows = [("ibohbfb9q", k + 1, t[k], m[k]) for k in range(15)]
    catalog = _catalog_with_reads(tmp_path / "b9q.duckdb", rows)
    view = table(catalog, "select rate_median from interval_rates order by sampnum")
    assert np.allclose(view["rate_median"].to_numpy(), r, atol=0.0051)


# -- real archive files ------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_archive_imas(real_data, tmp_path, pstat) -> None:
    catalog = tmp_path / "real.duckdb"
    result = run(real_data, "--jobs", 1, catalog=catalog)
    assert result.exit_code == 0, result.output
    exposures = table(catalog, "select * from exposures order by rootname")
    assert exposures["rootname"].to_list() == ["ibxy01z8q", "ibxy07p9q", "iccz11q4q"]
    assert exposures["subtype"].to_list() == ["SQ256SUB"] * 3
    assert exposures["applicable"].all()  # F130N direct images through GRISM256: imaging
    reads = table(catalog, "select * from reads order by rootname, sampnum")
    assert len(reads) == 9
    path = real_data / "ibxy01z8q_ima.fits"
    _, rates = pstat(str(path), col_slice=(5, 261), row_slice=(5, 261), units="rate", plot=False)
    mine = reads.filter(pl.col("rootname") == "ibxy01z8q")["median_rate"].to_numpy()
    assert (mine == rates[[2, 1, 0]]).all()
    assert reads["frac_dq_8192"].max() > 0  # archive CRCORR flags are counted


# -- the archive FLT beside an IMA ---------------------------------------------------------------


def test_flt_sky_statistics_of_a_neighbour_flt(program, tmp_path) -> None:
    from survey.wfc3ir.fitsio import FLTImage, read_ima, write_flt

    folder = tmp_path / "withflt"
    folder.mkdir()
    src = sorted(p for p in program[0].glob("*_ima.fits") if fits.getval(p, "FILTER") != "G102")[0]
    ima = folder / src.name
    shutil.copy(src, ima)
    ramp = read_ima(ima)
    science = ramp.science[1:]
    flt = FLTImage(
        sci=ramp.sci[-1][science],
        err=ramp.err[-1][science],
        dq=ramp.dq[-1][science],
        samp=np.full(ramp.sci[-1][science].shape, ramp.nsamp, np.int16),
        time=np.full(ramp.sci[-1][science].shape, ramp.samptime[-1], np.float32),
        primary=ramp.primary,
        sci_header=ramp.read_headers[-1],
    )
    flt.dq[:3, :] |= 32
    write_flt(flt, folder / src.name.replace("_ima", "_flt"))
    catalog = tmp_path / "flt.duckdb"
    assert run(folder, "--jobs", 1, catalog=catalog).exit_code == 0
    row = table(catalog, "select * from exposures").row(0, named=True)
    last = table(catalog, "select * from reads order by sampnum desc limit 1").row(0, named=True)
    assert row["flt_path"].endswith("_flt.fits")
    assert row["flt_sky_median"] == pytest.approx(last["sky_median"], abs=0.2 * last["sky_sigma"])
    assert row["flt_sky_sigma"] == pytest.approx(last["sky_sigma"], rel=0.05)
    assert abs(row["flt_bimodality"]) < 0.1
    # a clean sky: the notebook's window std is the robust σ plus a little of the wings
    assert row["flt_sky_sigma"] <= row["flt_sky_std"] < 1.5 * row["flt_sky_sigma"]
    assert row["flt_n_dq_32"] >= 3 * flt.sci.shape[1]
    # a new FLT beside an unchanged IMA is noticed: the IMA is scanned again
    (folder / src.name.replace("_ima", "_flt")).unlink()
    again = run(folder, "--jobs", 1, catalog=catalog)
    assert "1 scanned, 0 skipped" in again.output
    assert table(catalog, "select flt_path from exposures")["flt_path"].to_list() == [None]


# -- the command itself ----------------------------------------------------------------------------


def test_command_help_documents_every_option_and_the_exit_codes() -> None:
    assert scan.help and "PATHS" in scan.help
    for param in scan.params:
        if param.param_type_name == "option":
            assert param.help, param.opts
    result = CliRunner().invoke(CLI, ["scan", "--help"])
    assert result.exit_code == 0
    for text in ("--catalog", "--jobs", "--rescan", "--export-parquet", "--overwrite", "Exit"):
        assert text in result.output


def test_importing_the_command_is_light() -> None:
    code = (
        "import sys, survey.scan.command, survey.scan; "
        "print(sorted(m for m in ('numpy', 'duckdb', 'astropy', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_library_scan_with_a_progress_bar(program, tmp_path) -> None:
    from survey.scan import scan_paths

    lines: list[str] = []
    summary = scan_paths(
        [program[0]], catalog=tmp_path / "p.duckdb", jobs=1, progress=True, report=lines.append
    )
    assert summary.scanned == len(list(program[0].glob("*_ima.fits")))
    assert summary.exit_code == 0 and not lines


# -- full frame ------------------------------------------------------------------------------------

_PEAK = """
import json, sys
from survey.scan.measure import measure_exposure
result = measure_exposure(sys.argv[1])
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(json.dumps({"peak_mb": hwm / 1024, "medians": [r["median_rate"] for r in result.reads]}))
"""


@pytest.mark.slow
def test_full_frame_exact_medians_and_memory(tmp_path) -> None:
    out = tmp_path / "ff"
    simulate_program(out, ProgramConfig(n_visits=1, exposures_per_visit=1, size=1024, seed=9))
    path = next(out.glob("*_ima.fits"))
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    assert report["peak_mb"] < 400
    with open_exposure(path) as exposure:
        expected = [float(np.median(exposure.sci(k, science=True))) for k in range(1, 16)]
    assert report["medians"] == expected


def test_prefetching_the_next_read_changes_nothing(program) -> None:
    from survey.scan import measure_exposure

    path = sorted(program[0].glob("*_ima.fits"))[0]
    with_thread = measure_exposure(path, prefetch=True)
    without = measure_exposure(path, prefetch=False)
    assert with_thread.reads == without.reads
    assert with_thread.exposure == without.exposure


def test_other_scan_parameters_rescan_every_file(program, tmp_path) -> None:
    from survey.scan import ScanParameters, scan_paths

    catalog = tmp_path / "params.duckdb"
    first = scan_paths([program[0]], catalog=catalog, jobs=1)
    same = scan_paths([program[0]], catalog=catalog, jobs=1)
    other = scan_paths([program[0]], catalog=catalog, jobs=1, params=ScanParameters(mask_sigma=4.0))
    assert same.scanned == 0 and same.skipped == first.scanned
    assert other.scanned == first.scanned
    info = json.loads(
        table(catalog, "select value from catalog_info where key = 'last_scan_parameters'")[
            "value"
        ][0]
    )
    assert info["mask_sigma"] == 4.0


def test_rows_fill_every_catalog_column(program, scanned) -> None:
    from survey.scan import measure_exposure
    from survey.scan.stats import CUMULATIVE_COLUMNS, INSTANT_COLUMNS

    result = measure_exposure(sorted(program[0].glob("*_ima.fits"))[0])
    read_columns = table(scanned, "select * from reads limit 0").columns
    assert set(result.reads[0]) == set(read_columns)
    assert set(CUMULATIVE_COLUMNS) | set(INSTANT_COLUMNS) <= set(read_columns)
    state = {
        "path",
        "file_size",
        "file_mtime_ns",
        "fingerprint",
        "neighbours_sig",
        "params_digest",
        "survey_version",
        "scanned_at",
    }
    exposure_columns = table(scanned, "select * from exposures limit 0").columns
    assert set(result.exposure) | state == set(exposure_columns)
