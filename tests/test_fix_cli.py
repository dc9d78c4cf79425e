"""`survey fix` as a command on a scanned and flagged simulated program: routing by verdict,
the `fixes` table, re-runs, parallel runs, failures, and a fix killed mid-way."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from survey.cli import SurveyGroup
from survey.fit import archive_products
from survey.fix.command import fix
from survey.flag.command import flag
from survey.scan import scan_paths
from survey.simulate import (
    IBOHBFB9Q_HE,
    ProgramConfig,
    TimeProfile,
    exposure_spec,
    plan_program,
    simulate_exposure,
    simulate_program,
)
from survey.wfc3ir.fitsio import read_flt, write_flt, write_ima

CLI = SurveyGroup(name="survey", commands={"flag": flag, "fix": fix})


def invoke(*args: object):
    return CliRunner().invoke(CLI, [*map(str, args)])


def rows(catalog: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(catalog), read_only=True) as con:
        return con.execute(query).fetchall()


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """One visit of four 266² exposures: He I (ibohbfb9q-like), limb light, G102 with He I,
    and a linear one; scanned and flagged. Returns (root, catalog, {category: rootname})."""
    root = tmp_path_factory.mktemp("fix_program")
    config = ProgramConfig(n_visits=1, exposures_per_visit=4, size=266, seed=5, he_fraction=0,
                           scattered_fraction=0, grism_direct=False)  # fmt: skip
    specs = plan_program(config)
    limb = TimeProfile("rising", amplitude=2.0, t0=300.0, width=600.0)
    specs[0] = dataclasses.replace(specs[0], he=IBOHBFB9Q_HE, zodi=0.47)
    specs[1] = dataclasses.replace(specs[1], scatter=limb, scatter_edge=480.0,
                                   scatter_softness=40.0)  # fmt: skip
    specs[2] = dataclasses.replace(specs[2], filter="G102", he=IBOHBFB9Q_HE)
    simulate_program(root / "prog", config, specs=specs)
    catalog = root / "survey.duckdb"
    scan_paths([root / "prog"], catalog=catalog, jobs=1)
    assert invoke("flag", "--catalog", catalog).exit_code == 0
    names = dict(zip(("he", "limb", "grism", "linear"), (s.rootname for s in specs), strict=True))
    return root, catalog, names


@pytest.fixture(scope="module")
def fixed(program):
    root, catalog, names = program
    inputs = {p: p.read_bytes() for p in (root / "prog").rglob("*.fits")}
    result = invoke("fix", "--flagged", names["grism"], names["linear"], "--catalog", catalog,
                    "--out", root / "out")  # fmt: skip
    return result, inputs


def test_verdicts_route_the_methods(program, fixed):
    root, catalog, names = program
    result, _ = fixed
    assert result.exit_code == 0, result.output
    table = {r[0]: r[1:] for r in rows(catalog, "select rootname, status, method, message "
                                                "from fixes")}  # fmt: skip
    assert table[names["he"]][:2] == ("fixed", "flatten")
    assert table[names["limb"]][:2] == ("fixed", "pop-reads")
    assert table[names["grism"]][0] == "refused" and "grism" in table[names["grism"]][2]
    assert table[names["linear"]][0] == "refused" and "linear" in table[names["linear"]][2]
    assert sorted(p.name for p in (root / "out").iterdir()) == sorted(
        f"{names[c]}_{kind}.fits" for c in ("he", "limb") for kind in ("flt", "ima")
    )
    assert "2 fixed, 2 refused" in result.output


def test_inputs_untouched(fixed):
    _, inputs = fixed
    for path, data in inputs.items():
        assert path.read_bytes() == data, path


def test_scan_and_fix_measure_the_archive_flt_alike(program, fixed):
    """exposures.flt_sky_std (scan) and fixes.before_std (fix) are the same statistic of the
    same archive FLT: the He I exposure's broken sky, far wider than its robust σ."""
    _, catalog, names = program
    (std, sigma, before), = rows(
        catalog,
        "select e.flt_sky_std, e.flt_sky_sigma, f.before_std from exposures e "
        f"join fixes f using (rootname) where rootname = '{names['he']}'",
    )  # fmt: skip
    assert std == pytest.approx(before, rel=0.05)
    assert std > 2 * sigma


def test_fixed_imas_read_back_and_scan_as_linear(program, fixed, tmp_path):
    """The corrected IMA (imsets plus the FIXREADS table) opens with survey's own reader, and a
    scan of the output folder finds the flattened He I exposure's sky rate constant."""
    from survey.flag import flag_catalog
    from survey.wfc3ir.fitsio import read_ima

    root, _, names = program
    ramp = read_ima(root / "out" / f"{names['he']}_ima.fits")
    assert ramp.sci.shape[0] == 16
    catalog = tmp_path / "fixed.duckdb"
    summary = scan_paths([root / "out"], catalog=catalog, jobs=1)
    assert summary.failed == 0
    verdicts = dict(flag_catalog(catalog).select("rootname", "verdict").iter_rows())
    assert verdicts[names["he"]] == "linear"


def test_fixes_table_holds_the_statistics(program, fixed):
    _, catalog, names = program
    query = (
        "select before_median, before_sigma, after_median, after_sigma, after_bimodality, "
        "read_sky, read_offsets, read_times, sky_level, params_digest, flt_out from fixes "
        f"where rootname = '{names['he']}'"
    )
    (row,) = rows(catalog, query)
    before_median, before_sigma, after_median, after_sigma, bimod, sky, offsets, times = row[:8]
    assert before_median - after_median > 0.1  # the archive FLT's sky is biased high
    assert after_sigma < before_sigma
    assert abs(bimod) < 0.1
    assert len(sky) == len(offsets) == len(times) == 16 and sky[0] is None
    assert offsets[-1] == 0 and row[8] == pytest.approx(sky[-1])
    assert Path(row[10]).exists()


def test_rerun_skips(program, fixed):
    root, catalog, _ = program
    before = rows(catalog, "select rootname, fixed_at from fixes order by rootname")
    result = invoke("fix", "--flagged", "--catalog", catalog, "--out", root / "out")
    assert result.exit_code == 0, result.output
    assert "2 skipped" in result.output
    assert rows(catalog, "select rootname, fixed_at from fixes order by rootname") == before


def test_parallel_equals_serial(program, fixed):
    root, catalog, names = program
    result = invoke("fix", "--flagged", "--catalog", catalog, "--out", root / "out2",
                    "--jobs", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    for c in ("he", "limb"):
        serial = read_flt(root / "out" / f"{names[c]}_flt.fits")
        parallel = read_flt(root / "out2" / f"{names[c]}_flt.fits")
        assert np.array_equal(serial.sci, parallel.sci) and np.array_equal(serial.dq, parallel.dq)


def test_one_failure_does_not_stop_the_others(program, tmp_path):
    _, catalog, names = program
    copy = tmp_path / "copy.duckdb"
    shutil.copy(catalog, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("update exposures set path = $p where rootname = $r",
                    {"p": str(tmp_path / "gone_ima.fits"), "r": names["he"]})  # fmt: skip
    result = invoke("fix", "--flagged", "--catalog", copy, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert f"{names['he']}: failed" in result.output
    status = dict(rows(copy, "select rootname, status from fixes"))
    assert status[names["he"]] == "failed" and status[names["limb"]] == "fixed"


def test_user_errors(program, tmp_path):
    _, catalog, names = program
    assert invoke("fix", "--catalog", catalog).exit_code == 2  # nothing named
    result = invoke("fix", "nosuchexp", "--catalog", catalog, "--out", tmp_path)
    assert result.exit_code == 1 and "not in the catalog: nosuchexp" in result.output
    result = invoke("fix", names["he"], "--catalog", tmp_path / "none.duckdb")
    assert result.exit_code == 1 and "no catalog" in result.output
    result = invoke("fix", names["he"], "--catalog", catalog, "--region", "5:1,0:3")
    assert result.exit_code == 1 and "empty" in result.output


def test_explicit_flatten_of_a_grism_is_refused(program, tmp_path):
    _, catalog, names = program
    result = invoke("fix", names["grism"], "--method", "flatten", "--catalog", catalog,
                    "--out", tmp_path / "g")  # fmt: skip
    assert result.exit_code == 0
    assert "refused" in result.output and "grism" in result.output
    assert not (tmp_path / "g").exists()


def test_calwf3_engine(program, tmp_path, monkeypatch):
    _, catalog, names = program
    monkeypatch.setenv("PATH", str(tmp_path))
    result = invoke("fix", names["he"], "--engine", "calwf3", "--catalog", catalog,
                    "--out", tmp_path / "o")  # fmt: skip
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ") and "calwf3.e or wf3ir.e on PATH" in result.output
    stand_in = tmp_path / "calwf3.e"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    monkeypatch.delenv("iref", raising=False)
    result = invoke("fix", names["he"], "--engine", "calwf3", "--catalog", catalog,
                    "--out", tmp_path / "o")  # fmt: skip
    assert result.exit_code == 2  # the exposure failed, reported on one line
    assert f"{names['he']}: failed: engine calwf3 needs $iref" in result.output


KILLER = """
import os, signal, sys
from pathlib import Path
import survey.fix.exposure as ex

def die(image, path, **kwargs):  # the FLT's temporary is half written, then the process dies
    Path(path).write_bytes(b"SIMPLE  =                    T" + b" " * 100)
    os.kill(os.getpid(), signal.SIGKILL)

ex.write_flt = die
ex.fix_exposure(sys.argv[1], sys.argv[2])
"""


def test_killed_fix_leaves_no_partial_files(tmp_path):
    spec = exposure_spec(size=74, zodi=0.47, seed=8, he=IBOHBFB9Q_HE)
    flagged, flt, _ = archive_products(simulate_exposure(spec).ramp)
    (tmp_path / "in").mkdir()
    ima = write_ima(flagged, tmp_path / "in" / f"{spec.rootname}_ima.fits")
    write_flt(flt, tmp_path / "in" / f"{spec.rootname}_flt.fits")
    out = tmp_path / "out"
    script = textwrap.dedent(KILLER)
    done = subprocess.run([sys.executable, "-c", script, str(ima), str(out)], check=False)
    assert done.returncode == -9
    assert not (out / f"{spec.rootname}_flt.fits").exists()  # never a partial FLT
    from survey.fix.exposure import fix_exposure

    result = fix_exposure(ima, out)
    assert result.status == "fixed"
    assert sorted(p.name for p in out.iterdir()) == [
        f"{spec.rootname}_flt.fits",
        f"{spec.rootname}_ima.fits",
    ]
    assert read_flt(result.flt_out).sci.shape == (64, 64)
