"""`survey scan` / `survey fix` on a Dask cluster, and scans of fsspec URLs: the catalog and the
corrected files must be exactly those of the local process pool."""

from __future__ import annotations

import functools
import importlib
import logging
import operator
import os
import shutil
import socket
import tempfile
from pathlib import Path

import duckdb
import fsspec
import numpy as np
import polars as pl
import psutil
import pytest
from click.testing import CliRunner

from survey import distributed as seam
from survey.cli import SurveyGroup
from survey.distributed import ClusterError, Executor, check_dask_address, run_each
from survey.fix.command import fix
from survey.flag.command import flag
from survey.scan.command import scan
from survey.simulate import ProgramConfig, simulate_program
from survey.wfc3ir.fitsio import read_flt

CLI = SurveyGroup(name="survey", commands={"scan": scan, "flag": flag, "fix": fix})
STAMPS = {"scanned_at", "failed_at", "fixed_at"}  # the only columns allowed to differ
KEYS = {"exposures": "rootname", "reads": "rootname, sampnum", "scan_errors": "path"}
URL_COLUMNS = ["path", "flt_path", "raw_path", "asn_path"]


def invoke(*args: object):
    return CliRunner().invoke(CLI, [*map(str, args)])


def table(catalog: Path, name: str) -> pl.DataFrame:
    order = KEYS.get(name, "rootname")
    with duckdb.connect(str(catalog), read_only=True) as con:
        frame = con.sql(f"select * from {name} order by {order}").pl()
    return frame.drop([c for c in frame.columns if c in STAMPS])


def assert_same_catalog(one: Path, other: Path) -> None:
    for name in KEYS:
        assert table(one, name).equals(table(other, name)), name


@pytest.fixture(scope="module")
def cluster():
    """One 2-worker LocalCluster shared by the tests, reached through its address."""
    import dask
    from distributed import LocalCluster

    with (
        tempfile.TemporaryDirectory(prefix="survey-test-dask-") as scratch,
        dask.config.set({"temporary-directory": scratch}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.WARNING,
            local_directory=scratch,
        ) as local,
    ):
        yield local.scheduler_address


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    """Six 74² exposures in two visits (F105W with He I and limb light; G102 + direct)."""
    out = tmp_path_factory.mktemp("dask") / "prog"
    config = ProgramConfig(
        n_visits=2, exposures_per_visit=3, size=74, seed=7, filters=("F105W", "G102")
    )
    simulate_program(out, config)
    return out


@pytest.fixture(scope="module")
def pooled(program, tmp_path_factory) -> Path:
    """The reference: the program scanned by a local pool of two processes, and flagged."""
    catalog = tmp_path_factory.mktemp("pooled") / "pool.duckdb"
    result = invoke("scan", program, "--jobs", 2, "--catalog", catalog)
    assert result.exit_code == 0, result.output
    assert invoke("flag", "--catalog", catalog).exit_code == 0
    return catalog


def test_scan_on_a_dask_cluster_equals_the_local_pool(program, pooled, cluster, tmp_path):
    catalog = tmp_path / "dask.duckdb"
    result = invoke("scan", program, "--dask", cluster, "--catalog", catalog)
    assert result.exit_code == 0, result.output
    assert "6 scanned, 0 skipped (unchanged), 0 failed" in result.output
    assert_same_catalog(catalog, pooled)
    again = invoke("scan", program, "--dask", cluster, "--catalog", catalog)
    assert "0 scanned, 6 skipped (unchanged)" in again.output


def test_dask_local_starts_a_cluster_and_stops_it(program, pooled, cluster, tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    catalog = tmp_path / "local.duckdb"
    result = invoke("scan", program, "--dask", "local", "--jobs", 2, "--catalog", catalog)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == [
        f"{catalog}: 6 scanned, 0 skipped (unchanged), 0 failed"
    ]  # no cluster chatter on the terminal
    assert_same_catalog(catalog, pooled)
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()}
    assert after <= before  # its worker processes are gone


def test_a_failing_file_on_a_worker_is_recorded_and_the_rest_go_on(program, cluster, tmp_path):
    folder = tmp_path / "messy"
    shutil.copytree(program, folder)
    broken = sorted(folder.glob("*_ima.fits"))[2]
    broken.write_bytes(b"SIMPLE  =   garbage" * 500)
    pool, dask = tmp_path / "pool.duckdb", tmp_path / "dask.duckdb"
    assert invoke("scan", folder, "--jobs", 2, "--catalog", pool).exit_code == 2
    result = invoke("scan", folder, "--dask", cluster, "--catalog", dask)
    assert result.exit_code == 2
    assert "5 scanned, 0 skipped (unchanged), 1 failed" in result.output
    assert f"Failed: {broken}" in result.output
    errors = table(dask, "scan_errors")
    assert errors["path"].to_list() == [str(broken)] and errors["kind"].to_list() == ["input"]
    assert_same_catalog(dask, pool)


def test_fix_on_a_dask_cluster_equals_the_local_pool(program, pooled, cluster, tmp_path):
    catalogs = {}
    for how, option in (("pool", ("--jobs", 2)), ("dask", ("--dask", cluster))):
        catalogs[how] = tmp_path / f"{how}.duckdb"
        shutil.copy(pooled, catalogs[how])
        result = invoke("fix", "--flagged", "--catalog", catalogs[how], "--out",
                        tmp_path / how, *option)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "2 exposures: 2 fixed" in result.output
    rows = {how: table(catalog, "fixes") for how, catalog in catalogs.items()}
    for how, frame in rows.items():
        outputs = frame["flt_out"].to_list() + frame["ima_out"].to_list()
        assert all(Path(p).parent == tmp_path / how for p in outputs)
    assert (
        rows["pool"].drop(["flt_out", "ima_out"]).equals(rows["dask"].drop(["flt_out", "ima_out"]))
    )
    for name in rows["pool"]["rootname"]:
        serial = read_flt(tmp_path / "pool" / f"{name}_flt.fits")
        parallel = read_flt(tmp_path / "dask" / f"{name}_flt.fits")
        for plane in ("sci", "err", "dq"):
            assert np.array_equal(getattr(serial, plane), getattr(parallel, plane)), plane


# -- fsspec URLs ---------------------------------------------------------------------------


def assert_same_rows_with_urls(url_catalog: Path, local: Path, prefix: str, root: Path) -> None:
    """Every row equal to the local scan's, the file names as URLs instead of paths."""
    ours, theirs = table(url_catalog, "exposures"), table(local, "exposures")
    for column in URL_COLUMNS:
        expected = [None if p is None else prefix + p[len(str(root)) :] for p in theirs[column]]
        assert ours[column].to_list() == expected, column
    assert (ours["file_mtime_ns"] - theirs["file_mtime_ns"]).abs().max() < 1000
    assert ours["fingerprint"].equals(theirs["fingerprint"])  # the same bytes were hashed
    skip = [*URL_COLUMNS, "file_mtime_ns", "neighbours_sig"]
    assert ours.drop(skip).equals(theirs.drop(skip))
    assert table(url_catalog, "reads").equals(table(local, "reads"))


def test_file_urls_on_a_dask_cluster_give_the_local_rows(program, pooled, cluster, tmp_path):
    catalog = tmp_path / "urls.duckdb"
    url = f"file://{program}"
    result = invoke("scan", url, "--dask", cluster, "--catalog", catalog)
    assert result.exit_code == 0, result.output
    assert_same_rows_with_urls(catalog, pooled, f"file://{program}", program)
    again = invoke("scan", url, "--dask", cluster, "--catalog", catalog)
    assert "0 scanned, 6 skipped (unchanged)" in again.output
    assert invoke("flag", "--catalog", catalog).exit_code == 0  # and fix reads the URLs
    result = invoke("fix", "--flagged", "--catalog", catalog, "--out", tmp_path / "out",
                    "--dask", cluster)  # fmt: skip
    assert result.exit_code == 0 and "2 fixed" in result.output, result.output
    ima_in = table(catalog, "fixes")["ima_in"].to_list()
    assert all(p.startswith(f"file://{program}/") for p in ima_in)


@pytest.fixture
def in_memory(program):
    """The program copied into fsspec's in-memory file system (this process only)."""
    memory = fsspec.filesystem("memory")
    for path in program.iterdir():
        if path.is_file():
            memory.pipe_file(f"/prog/{path.name}", path.read_bytes())
    yield "memory:///prog"
    memory.rm("/prog", recursive=True)


def test_fix_refuses_to_write_beside_file_url_inputs(program, tmp_path):
    """``file://`` inputs are local files: OUT = their folder is refused even with --overwrite
    (the temporary copies fix works on must not hide where the inputs live)."""
    import hashlib
    import shutil

    folder = tmp_path / "prog"
    folder.mkdir()
    for path in program.glob("*_ima.fits"):
        shutil.copy(path, folder)
        flt = path.with_name(path.name.replace("_ima", "_flt"))
        if flt.exists():
            shutil.copy(flt, folder)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    catalog = tmp_path / "c.duckdb"
    assert invoke("scan", f"file://{folder}", "--jobs", 1, "--catalog", catalog).exit_code == 0
    assert invoke("flag", "--catalog", catalog).exit_code == 0
    result = invoke("fix", "--flagged", "--catalog", catalog, "--out", folder, "--overwrite")
    assert result.exit_code == 2
    assert "refusing to write beside the inputs" in result.output
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == digests


def test_memory_urls_give_the_local_rows(program, pooled, in_memory, tmp_path):
    catalog = tmp_path / "memory.duckdb"
    result = invoke("scan", in_memory, "--jobs", 1, "--catalog", catalog)
    assert result.exit_code == 0, result.output
    ours, theirs = table(catalog, "exposures"), table(pooled, "exposures")
    assert ours["path"].to_list() == [f"{in_memory}/{Path(p).name}" for p in theirs["path"]]
    assert ours["fingerprint"].equals(theirs["fingerprint"])
    skip = [*URL_COLUMNS, "file_mtime_ns", "neighbours_sig"]
    assert ours.drop(skip).equals(theirs.drop(skip))
    assert table(catalog, "reads").equals(table(pooled, "reads"))
    assert not list(tmp_path.glob("survey-scan-*"))


def test_a_rootname_from_two_urls_is_catalogued_once(program, in_memory, tmp_path):
    """The duplicate check looks through fsspec: one URL is catalogued, the other is an error
    naming it (``Path(url).exists()`` was always False, so the second silently replaced it)."""
    ima = sorted(p.name for p in program.glob("*_ima.fits"))[0]
    memory = fsspec.filesystem("memory")
    memory.pipe_file(f"/copy/{ima}", memory.cat_file(f"/prog/{ima}"))
    try:
        catalog = tmp_path / "dup.duckdb"
        result = invoke("scan", f"{in_memory}/{ima}", "memory:///copy", "--jobs", 1,
                        "--catalog", catalog)  # fmt: skip
        assert result.exit_code == 2 and "is catalogued from" in result.output, result.output
        assert table(catalog, "scan_errors")["kind"].to_list() == ["duplicate"]
        kept = table(catalog, "exposures")["path"].to_list()
        assert kept in ([f"{in_memory}/{ima}"], [f"memory:///copy/{ima}"])
        assert f"is catalogued from {kept[0]}" in result.output
    finally:
        memory.rm("/copy", recursive=True)


def test_a_missing_protocol_package_is_one_clear_line(tmp_path, monkeypatch):
    registry = importlib.import_module("fsspec.registry").known_implementations
    missing = {"class": "no_such_package.FileSystem", "err": "Install nosuchfs to use surveytest"}
    monkeypatch.setitem(registry, "surveytest", missing)  # as s3:// without s3fs
    result = invoke("scan", "surveytest://bucket/prog", "--catalog", tmp_path / "c.duckdb")
    assert result.exit_code == 2
    assert result.output == (
        "Error: surveytest://bucket/prog: no fsspec implementation installed "
        "(Install nosuchfs to use surveytest)\n"
    )


# -- addresses and the executor seam -------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "address"),
    [
        ("local", "local"),
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("scheduler.example.org:8786", "tcp://scheduler.example.org:8786"),
        ("tls://[::1]:8786", "tls://[::1]:8786"),
    ],
)
def test_scheduler_addresses_are_normalised(given, address):
    assert check_dask_address(given) == address


@pytest.mark.parametrize(
    "given", ["", "tcp://host", "tcp://host:0", "tcp://host:70000", "http://h:1", "a b:1", "h:1/x"]
)
def test_malformed_addresses_are_refused_before_connecting(given):
    with pytest.raises(ClusterError, match="not a Dask scheduler address"):
        Executor(jobs=2, dask=given)


def test_bad_or_unreachable_schedulers_are_one_line_errors(program, pooled, tmp_path, monkeypatch):
    result = invoke("scan", program, "--dask", "tcp://nohost", "--catalog", tmp_path / "a.db")
    assert result.exit_code == 1
    assert result.output == (
        "Error: tcp://nohost: not a Dask scheduler address (expected 'local' or tcp://host:port)\n"
    )
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(seam, "CONNECT_TIMEOUT", 1.0)
    shutil.copy(pooled, tmp_path / "b.db")
    commands = [
        ("scan", program, "--rescan", "--catalog", tmp_path / "b.db"),
        ("fix", "--flagged", "--catalog", tmp_path / "b.db", "--out", tmp_path / "out"),
    ]
    for command in commands:
        result = invoke(*command, "--dask", f"127.0.0.1:{port}")
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"Error: tcp://127.0.0.1:{port}: cannot reach the Dask")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["pool", "dask"])
def test_a_task_that_raises_becomes_its_on_error_result(where, cluster):
    executor = Executor(jobs=2) if where == "pool" else Executor(dask=cluster)
    divide = functools.partial(operator.truediv, 1.0)
    results = run_each(
        divide, [4, 0, 2, 0.5], executor, ordered=True, on_error=lambda item, exc: repr(exc)
    )
    assert list(results) == [
        (4, 0.25),
        (0, "ZeroDivisionError('float division by zero')"),
        (2, 0.5),
        (0.5, 2.0),
    ]


def test_completion_order_yields_every_item_once_beyond_the_window(cluster, monkeypatch):
    monkeypatch.setattr(seam, "_PER_THREAD", 1)  # a window of 2 tasks for 20 items
    items = list(range(1, 21))
    results = run_each(
        functools.partial(operator.mul, 3), items, Executor(dask=cluster), on_error=print
    )
    assert sorted(results) == [(i, 3 * i) for i in items]


def test_a_worker_that_dies_becomes_an_on_error_result(tmp_path):
    import dask
    from distributed import LocalCluster

    tasks = [
        functools.partial(operator.mul, 2, 3),
        functools.partial(os._exit, 1),  # the worker process dies
    ]
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),  # no retry
        dask.config.set({"temporary-directory": str(tmp_path)}),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.ERROR,
            local_directory=tmp_path,
        ) as local,
    ):
        executor = Executor(dask=local.scheduler_address)
        results = run_each(
            operator.call, tasks, executor, ordered=True, on_error=lambda _, e: type(e).__name__
        )
        assert [result for _, result in results] == [6, "KilledWorker"]
        again = run_each(operator.call, tasks[:1], executor, on_error=print)  # a new worker
        assert [result for _, result in again] == [6]
