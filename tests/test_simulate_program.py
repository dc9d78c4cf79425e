"""Synthetic programs: planning, headers, files on disk, truth tables and determinism."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from survey.errors import OutputExistsError
from survey.simulate import (
    CATEGORIES,
    IBOHBFB9Q_HE,
    ProgramConfig,
    SceneConfig,
    SimulationConfigError,
    categorize,
    exposure_spec,
    plan_program,
    simulate_exposure,
    simulate_program,
)
from survey.wfc3ir.fitsio import read_asn, read_ima
from survey.wfc3ir.model import HE_I_FILTERS

ROOTNAME = re.compile(r"^i[a-z0-9]{3}[a-z0-9]{2}[a-z0-9]{2}q$")
SMALL = ProgramConfig(
    n_visits=2, exposures_per_visit=3, size=74, seed=7, filters=("F105W", "F140W"),
    he_fraction=0.5, scattered_fraction=0.3, scene=SceneConfig(n_stars=50, n_galaxies=100),
)  # fmt: skip
TRUTH_COLUMNS = {
    "rootname", "filter", "samp_seq", "nsamp", "size", "he_profile", "he_peak",
    "scattered_peak", "category", "visit", "asn_id", "expstart", "zodi", "n_cr",
}  # fmt: skip


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("program")
    return simulate_program(outdir, SMALL)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- planning -------------------------------------------------------------------------------


def test_plan_names_times_and_orbits():
    config = ProgramConfig(n_visits=3, exposures_per_visit=6, seed=3)
    specs = plan_program(config)
    assert len(specs) == 18 and len({s.rootname for s in specs}) == 18
    assert all(ROOTNAME.match(s.rootname) for s in specs)
    for v in range(3):
        visit = [s for s in specs if s.visit == v]
        assert {s.asn_id for s in visit} == {f"I{visit[0].rootname[1:6].upper()}010"}
        for a, b in itertools.pairwise(visit):
            assert a.expend < b.expstart  # exposures never overlap
        # two 1600-s exposures per ~96-min orbit
        assert [s.orbit for s in visit] == [0, 0, 1, 1, 2, 2]
        starts = np.array([s.expstart for s in visit]) * 86400
        assert 5500 < starts[2] - starts[0] < 6000
    assert plan_program(config) == specs  # deterministic


def test_plan_places_he_and_limb_light_where_they_occur():
    filters = ("F105W", "F110W", "F160W", "G102")
    config = ProgramConfig(
        n_visits=6,
        exposures_per_visit=4,
        seed=11,
        he_fraction=0.6,
        scattered_fraction=0.3,
        filters=filters,
    )
    specs = plan_program(config)
    he = [s for s in specs if s.he.active]
    assert {s.he.kind for s in he} == {"rising", "decaying", "step"}
    for s in he:
        assert s.filter in HE_I_FILTERS and not s.scatter.active
        assert s.exptime >= 500
        if s.he.kind == "rising":
            assert s.orbit_position in ("last", "only")  # before occultation
        if s.he.kind == "decaying":
            assert s.orbit_position in ("first", "only")  # after shadow exit
    scattered = [s for s in specs if s.scatter.active]
    assert scattered and all(s.orbit_position != "middle" for s in scattered)
    eligible = [
        s for s in specs if s.filter in HE_I_FILTERS and s.exptime >= 500 and not s.scatter.active
    ]
    assert len(he) == round(0.6 * len(eligible))


def test_plan_grism_visit_has_direct_images_and_own_association():
    specs = plan_program(ProgramConfig(n_visits=1, exposures_per_visit=6, filters=("G141",)))
    assert [s.filter for s in specs] == ["F140W", "G141", "G141", "F140W", "G141", "G141"]
    assert {s.asn_id[-3:] for s in specs if s.filter == "G141"} == {"020"}
    assert all(s.drizcorr == "OMIT" for s in specs if s.is_grism)


def test_filter_mix_and_crowded_fraction_are_seeded():
    config = ProgramConfig(n_visits=20, exposures_per_visit=1, crowded=0.25,
                           filter_mix={"F105W": 3, "F160W": 1})  # fmt: skip
    specs = plan_program(config)
    filters = [s.filter for s in specs]
    assert set(filters) == {"F105W", "F160W"} and filters.count("F105W") > filters.count("F160W")
    assert sum(s.crowded for s in specs) == 5
    assert plan_program(replace(config, seed=1)) != specs


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 500}, "size must be one of"),
        ({"filters": ("F999W",)}, "unknown filter"),
        ({"samp_seq": ("STEP999",)}, "unknown sample sequence"),
        ({"nsamp": (17,)}, "nsamp must be"),
        ({"he_profiles": ("wobbly",)}, "unknown He I profile"),
        ({"he_fraction": 1.5}, "he_fraction must be within"),
        ({"program_code": "AB!"}, "program_code"),
        ({"n_visits": 0}, "n_visits"),
    ],
)
def test_config_errors_are_specific(changes, message):
    with pytest.raises(SimulationConfigError, match=message):
        ProgramConfig(**changes)


def test_category_rule():
    assert categorize(grism=True, he_peak=2.0, scattered_peak=2.0) == "not-applicable"
    assert categorize(grism=False, he_peak=2.0, scattered_peak=0.5) == "spatial-tvb"
    assert categorize(grism=False, he_peak=2.0, scattered_peak=0.0) == "uniform-tvb"
    assert categorize(grism=False, he_peak=0.1, scattered_peak=0.05) == "linear"


# -- headers --------------------------------------------------------------------------------


def test_primary_and_read_headers_look_like_calwf3():
    sim = simulate_exposure(exposure_spec(size=266, he=IBOHBFB9Q_HE))
    p, reads, t = sim.ramp.primary, sim.ramp.read_headers, sim.ramp.samptime
    assert p["SAMPZERO"] == pytest.approx(t[1] - 0.020535, abs=1e-6)
    assert (p["SUBARRAY"], p["SUBTYPE"], p["APERTURE"]) == (True, "SQ256SUB", "IRSUB256")
    assert p["CRCORR"] == "OMIT" and p["FLATCORR"] == "COMPLETE" and p["DRIZCORR"] == "PERFORM"
    assert p["SCAN_TYP"] == "N" and p["CCDGAIN"] == 2.5 and p["READNSEA"] == 20.2
    assert p["EXPTIME"] == pytest.approx(t[-1])
    assert p["EXPEND"] == pytest.approx(p["EXPSTART"] + t[-1] / 86400, abs=1e-8)
    assert p["ASN_TAB"] == p["ASN_ID"].lower() + "_asn.fits"
    routtime = np.array([h["ROUTTIME"] for h in reads])
    assert np.all(np.diff(routtime) > 0) and routtime[0] == pytest.approx(p["EXPSTART"])
    assert routtime[-1] == pytest.approx(p["EXPEND"], abs=1e-8)
    assert [h["SAMPNUM"] for h in reads] == list(range(16))
    assert [h["SAMPTIME"] for h in reads] == pytest.approx(list(t))
    assert [h["DELTATIM"] for h in reads] == pytest.approx(list(np.diff(t, prepend=0.0)), abs=1e-6)
    assert all(h["LTV1"] == h["LTV2"] == -374.0 for h in reads)  # as in the real ibxy01z8q
    assert all(h["BUNIT"] == "ELECTRONS/S" and h["SIZAXIS1"] == 266 for h in reads)
    assert reads[-1]["NGOODPIX"] > 60000
    assert not any(p.get(k) == "PERFORM" for k in ("DQICORR", "ZSIGCORR", "UNITCORR", "CRCORR"))
    assert "DATE" in p and p["DATE"] >= p["DATE-OBS"]  # processing date follows the observation


def test_wcs_puts_the_target_at_the_dithered_reference_pixel():
    spec = exposure_spec(size=266, nsamp=3)
    moved = replace(spec, pointing=replace(spec.pointing, postarg1=0.542, postarg2=0.182))
    sim = simulate_exposure(moved, scene=SceneConfig(n_stars=0, n_galaxies=0))
    header = sim.ramp.read_headers[-1]
    assert (header["CRPIX1"], header["CRPIX2"]) == (133.0, 133.0)  # FLT 507 + LTV
    x, y = WCS(header).all_world2pix(moved.pointing.ra, moved.pointing.dec, 1)
    assert (x - 133, y - 133) == pytest.approx(moved.pointing.shift, abs=1e-3)
    scale = np.hypot(header["CD1_1"], header["CD2_1"]) * 3600
    assert scale == pytest.approx(0.1355, rel=1e-4)


# -- files ----------------------------------------------------------------------------------


def test_program_writes_imas_asns_and_truth(program):
    out = program.outdir
    truth = pl.read_parquet(out / "truth.parquet")
    assert set(truth.columns) >= TRUTH_COLUMNS
    assert truth.height == 6 and truth.equals(program.truth)
    assert set(truth["category"]) <= set(CATEGORIES)
    for row in truth.iter_rows(named=True):
        verdict = categorize(
            grism=row["filter"] in ("G102", "G141"),
            he_peak=row["he_peak"],
            scattered_peak=row["scattered_peak"],
        )
        assert row["category"] == verdict
        assert (row["he_peak"] > 0) == (row["he_profile"] != "none")
        assert (out / f"{row['rootname']}_ima.fits").exists()
        assert (out / "truth" / f"{row['rootname']}_truth.fits").exists()
    reads = pl.read_parquet(out / "truth_reads.parquet")
    assert reads.height == truth["nsamp"].sum()
    assert {"bkg_rate", "bkg_cumulative", "left_rate", "right_rate", "he_rate"} <= set(
        reads.columns
    )
    for asn in program.asn_paths:
        rows = read_asn(asn)
        members = [r[0] for r in rows if r[1] == "EXP-DTH"]
        expected = truth.filter(pl.col("asn_id") == asn.name[:9].upper())["rootname"].to_list()
        assert members == expected
    assert not list(out.glob("**/.*tmp*"))  # atomic writes leave no temporaries


def test_ima_layout_on_disk(program):
    path = program.ima_paths[0]
    with fits.open(path) as hdul:
        nsamp = hdul[0].header["NSAMP"]
        assert len(hdul) == 1 + 5 * nsamp and hdul[0].header["NEXTEND"] == 5 * nsamp
        assert hdul[0].header["FILENAME"] == path.name
        sampnums = [hdul["SCI", m].header["SAMPNUM"] for m in range(1, nsamp + 1)]
        assert sampnums == list(range(nsamp - 1, -1, -1))  # imset 1 is the last read
        for m in (1, nsamp):
            for name, value in (
                ("SAMP", nsamp - m + 1),
                ("TIME", hdul["SCI", m].header["SAMPTIME"]),
            ):
                ext = hdul[name, m]
                assert ext.header["NAXIS"] == 0 and ext.data is None
                assert ext.header["PIXVALUE"] == pytest.approx(value)
        assert hdul["DQ", 1].data.dtype == np.dtype(">i2")


def test_ima_reads_back_with_injected_sky(program):
    truth_reads = program.truth_reads
    # limb light is a gradient: the median of gradient + noise is not the noiseless median
    flat_sky = program.truth.filter(pl.col("category") != "spatial-tvb")["rootname"].to_list()
    assert len(flat_sky) >= 3
    for root in flat_sky:
        path = program.outdir / f"{root}_ima.fits"
        ramp = read_ima(path)
        rows = truth_reads.filter(pl.col("rootname") == root).sort("read")
        expected = rows["sky_cumulative"].to_numpy()[1:]
        with fits.open(path.parent / "truth" / f"{root}_truth.fits") as truth:
            good = (
                (truth["BPIX"].data == 0)
                & (truth["CRMAP"].data == 0)
                & (truth["SCENE"].data < 0.05)
            )
        good[:5], good[-5:], good[:, :5], good[:, -5:] = False, False, False, False
        medians = np.array([np.median(ramp.sci[k][good]) for k in range(1, ramp.nsamp)])
        sigma = (
            1.2533
            * np.sqrt(400 + expected * ramp.samptime[1:])
            / ramp.samptime[1:]
            / np.sqrt(good.sum())
        )
        assert np.all(np.abs(medians - expected) < 5 * sigma + 0.01), root


def test_truth_images_match_the_ramp(program):
    path = program.ima_paths[1]
    ramp = read_ima(path)
    with fits.open(path.parent / "truth" / f"{ramp.meta.rootname}_truth.fits") as truth:
        assert truth["RATE"].data.shape == ramp.shape
        sat = truth["SATREAD"].data
        crs = truth["CRS"].data
        assert len(crs) == program.truth.filter(pl.col("rootname") == ramp.meta.rootname)["n_cr"][0]
    flagged = (ramp.dq & 256) > 0
    assert np.array_equal(np.where(flagged.any(axis=0), flagged.argmax(axis=0), -1), sat)


def test_same_seed_same_bytes_other_seed_differs(program, tmp_path):
    again = simulate_program(tmp_path / "again", SMALL)
    first = sorted(p.relative_to(program.outdir) for p in program.outdir.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again.outdir) for p in again.outdir.rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert sha(program.outdir / rel) == sha(again.outdir / rel), rel
    other = simulate_program(tmp_path / "other", replace(SMALL, seed=8))
    assert sha(other.ima_paths[0]) != sha(program.ima_paths[0])


def test_existing_outputs_are_not_replaced_unless_asked(program):
    ima = program.ima_paths[0]
    before = sha(ima)
    with pytest.raises(OutputExistsError):
        simulate_program(program.outdir, SMALL)
    assert sha(ima) == before
    again = simulate_program(program.outdir, SMALL, overwrite=True)
    assert sha(again.ima_paths[0]) == before


def test_custom_specs_plant_a_case(tmp_path):
    specs = plan_program(replace(SMALL, n_visits=1, he_fraction=0.0, scattered_fraction=0.0))
    specs[1] = replace(specs[1], he=IBOHBFB9Q_HE)
    summary = simulate_program(tmp_path, SMALL, specs=specs)
    assert summary.truth["category"].to_list() == ["linear", "uniform-tvb", "linear"]
    assert summary.truth["he_profile"][1] == "rising" and summary.truth["he_peak"][1] == 1.5


def test_duplicate_rootnames_are_refused_before_any_work(tmp_path):
    specs = plan_program(replace(SMALL, n_visits=1))
    with pytest.raises(SimulationConfigError, match="duplicate rootnames"):
        simulate_program(tmp_path, SMALL, specs=[specs[0], specs[0]])
    assert not list(tmp_path.iterdir())
