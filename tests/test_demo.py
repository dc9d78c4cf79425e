"""`survey demo`: the whole flow on the demo program, end to end, checked against truth."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from survey.cli import cli
from survey.demo import (
    DEMO_MARKER,
    LIMB_RISING,
    DemoError,
    demo_config,
    prepare_directory,
    run_demo,
)
from survey.simulate import SimulationConfigError, plan_program, simulate_program
from survey.simulate.config import PlantedCase, ProgramConfig
from survey.simulate.sky import IBOHBFB9Q_HE

#: Categories of the demo program with one F105W orbit: a clean exposure and one with He I,
#: an F140W pair with limb light in the second, a direct image and a G102 exposure.
PROMISED = {"linear": 3, "uniform-tvb": 1, "spatial-tvb": 1, "not-applicable": 1}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo program with one F105W orbit (six exposures) on 74² subarrays, one process."""
    out = tmp_path_factory.mktemp("demo") / "survey-demo"
    lines: list[str] = []
    config = demo_config(size=74, orbits=1)
    summary = run_demo(out, config=config, jobs=1, progress=lines.append)
    return summary, lines


def query(summary, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(summary.catalog), read_only=True) as con:
        return con.sql(sql).pl()


def test_plan_puts_he_where_the_seed_has_it():
    """ibohbfb9q's visit: six F105W STEP200 exposures, two per orbit over three orbits, He I
    rising in the second of each orbit (just before occultation), the first one as b9q's."""
    specs = plan_program(demo_config())
    assert [sum(s.visit == v for s in specs) for v in range(3)] == [6, 2, 2]
    visit = [s for s in specs if s.visit == 0]
    assert [(s.filter, s.samp_seq, s.nsamp) for s in visit] == [("F105W", "STEP200", 16)] * 6
    assert [s.orbit for s in visit] == [0, 0, 1, 1, 2, 2]
    he = [s for s in visit if s.he.active]
    assert [s.orbit_position for s in he] == ["last"] * 3
    assert {s.he.kind for s in he} == {"rising"} and he[0].he == IBOHBFB9Q_HE
    assert specs[0].rootname.startswith("iboh01")  # CANDELS 12242's program code
    limb = [s for s in specs if s.scatter.active]
    assert [(s.filter, s.orbit_position) for s in limb] == [("F140W", "last")]
    assert [s.filter for s in specs if s.is_grism] == ["G102"]
    assert plan_program(demo_config(seed=5)) != specs  # the seed changes the scene and noise
    assert {s.rootname for s in plan_program(demo_config())} == {s.rootname for s in specs}


def test_random_planting_leaves_planted_exposures_alone():
    case = PlantedCase(0, 1, scatter=LIMB_RISING)
    config = ProgramConfig(n_visits=1, exposures_per_visit=4, he_fraction=1.0,
                           scattered_fraction=0.0, cases=(case,))  # fmt: skip
    specs = plan_program(config)
    assert specs[1].scatter == LIMB_RISING and not specs[1].he.active
    assert sum(s.he.active for s in specs) == 3  # every other eligible exposure


def test_planted_cases_are_checked():
    with pytest.raises(SimulationConfigError, match="no such exposure"):
        ProgramConfig(n_visits=1, exposures_per_visit=2, cases=(PlantedCase(0, 2),))
    with pytest.raises(SimulationConfigError, match="two planted cases"):
        ProgramConfig(n_visits=1, exposures_per_visit=2,
                      cases=(PlantedCase(0, 1), PlantedCase(0, 1)))  # fmt: skip
    config = ProgramConfig(n_visits=1, exposures_per_visit=2, filters=("F140W",),
                           cases=(PlantedCase(0, 1, he=IBOHBFB9Q_HE),))  # fmt: skip
    with pytest.raises(SimulationConfigError, match="only reaches F105W"):
        plan_program(config)


def test_catalog_holds_every_exposure_and_verdicts_match_truth(demo):
    summary, _ = demo
    truth = pl.read_parquet(summary.out / "data" / "truth.parquet")
    assert len(truth) == 6
    catalog = query(summary, "select rootname from exposures order by rootname")
    assert catalog["rootname"].to_list() == sorted(truth["rootname"])
    flags = query(summary, "select rootname, verdict from flags")
    both = truth.join(flags, on="rootname")
    assert (both["verdict"] == both["category"]).all(), both.select("rootname", "category",
                                                                    "verdict")  # fmt: skip
    assert dict(truth["category"].value_counts().iter_rows()) == PROMISED
    assert summary.agreement == (6, 6)


def test_flagged_exposures_are_fixed_and_less_noisy(demo):
    summary, _ = demo
    fixes = query(summary, "select rootname, method, status, before_std, after_std "
                           "from fixes order by rootname")  # fmt: skip
    expected = query(
        summary,
        "select rootname, verdict from flags "
        "where verdict in ('uniform-tvb', 'spatial-tvb') order by rootname",
    )
    assert fixes["rootname"].to_list() == expected["rootname"].to_list()
    methods = dict(expected.join(fixes, on="rootname").select("verdict", "method").iter_rows())
    assert methods == {"uniform-tvb": "flatten", "spatial-tvb": "pop-reads"}
    assert (fixes["status"] == "fixed").all()
    # the notebook's σ (std within median ± 0.5 e⁻/s), the table's main noise column
    assert (fixes["after_std"] < 0.6 * fixes["before_std"]).all(), fixes
    for fix in summary.fixes:  # against the truth: the broken ramp fit's wings are gone
        assert fix.scatter_after < 0.6 * fix.scatter_before, fix
        assert fix.std_after == pytest.approx(fix.scatter_after, rel=0.25), fix
        assert (summary.out / "fixed" / f"{fix.rootname}_flt.fits").is_file()


def test_dashboard_names_every_exposure_and_summary_says_where(demo):
    summary, progress = demo
    assert summary.index.is_file() and summary.index.is_relative_to(summary.out / "reports")
    html = summary.index.read_text(encoding="utf-8")
    for exposure in summary.exposures:
        assert exposure.rootname in html
    text = "\n".join(summary.lines())
    assert f"dashboard: {summary.index}" in text
    assert "6/6 agree with the simulator's truth" in text
    assert "1 uniform-tvb" in text and "→" in text
    header = next(line for line in text.splitlines() if line.startswith("rootname"))
    columns = ("fix", "sky σ (notebook)", "sky scatter vs truth", "robust σ (MAD)")
    assert [header.index(c) for c in columns] == sorted(header.index(c) for c in columns)
    assert any(line.startswith("simulating 6 exposures") for line in progress)
    assert 0 < summary.disk_bytes < 50e6 and summary.seconds > 0


def test_non_empty_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--size", "74"])
    assert result.exit_code == 3
    assert result.output.strip() == (
        f"Error: {tmp_path}: directory is not empty (choose another --out, or --overwrite to "
        "replace an earlier demo there)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_only_an_earlier_demo(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--overwrite"])
    assert result.exit_code == 3 and "not a survey demo directory" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"
    for name in ("data", "fixed", "reports"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x_ima.fits").write_text("old")
    (tmp_path / DEMO_MARKER).write_text("{}")
    prepare_directory(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoError, match="not a directory"):
        prepare_directory(tmp_path / "file", overwrite=True)


def left_minus_right(flt_path, sky) -> float:
    """Left − right scattered-light box median of an FLT's sky pixels (science area), e⁻/s."""
    from survey.fix.methods import lr_boxes
    from survey.wfc3ir.detector import BORDER as B
    from survey.wfc3ir.fitsio import read_flt

    flt = read_flt(flt_path)
    good = sky & ((flt.dq & 0x3FFF) == 0)
    left, right = (slice(s.start - B, s.stop - B) for s in lr_boxes(flt.sci.shape[1] + 2 * B))
    return float(
        np.median(flt.sci[:, left][good[:, left]]) - np.median(flt.sci[:, right][good[:, right]])
    )


def test_limb_light_is_popped_at_the_default_size(tmp_path):
    """The demo's Earth-limb exposure at 522²: the source mask thresholds against a smooth
    local background (as the scan's), so the limb-lit left side stays sky, the left box has
    pixels, and pop-reads removes the left − right excess of the archive FLT."""
    from survey.fix import FixParameters, fix_exposure
    from survey.simulate.program import read_truth_images
    from survey.wfc3ir.detector import BORDER as B

    config = replace(demo_config(), n_visits=2, exposures_per_visit=(1, 2),
                     cases=demo_config().cases[-2:-1])  # fmt: skip
    specs = [s for s in plan_program(config) if s.scatter.active]
    program = simulate_program(tmp_path / "data", config, specs=specs)
    result = fix_exposure(program.ima_paths[0], tmp_path / "fixed",
                          FixParameters(method="pop-reads"))  # fmt: skip
    root = result.rootname
    truth = read_truth_images(tmp_path / "data" / "truth" / f"{root}_truth.fits")
    sky = truth["SCENE"][B:-B, B:-B] < 1e-3
    before = left_minus_right(tmp_path / "data" / f"{root}_flt.fits", sky)
    after = left_minus_right(result.flt_out, sky)
    print(f"\n522² limb: L - R archive {before:.3f}, pop-reads {after:.3f} e-/s, "
          f"{sum(result.popped)} intervals popped")  # fmt: skip
    assert config.size == 522 and any(result.popped)
    # what is left is limb light in intervals below the 0.1 e⁻/s popping threshold
    assert before > 0.2 and abs(after) < 0.03 and abs(after) < before / 10
