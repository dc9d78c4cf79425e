"""`survey fit`: the FLT a user gets from an IMA, checked against simulator truth and calwf3."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from survey import __version__
from survey.cli import cli
from survey.errors import InputFileError, SurveyError
from survey.fit import FitParameters, fit_exposure, flt_statistics
from survey.simulate import IBOHBFB9Q_HE, exposure_spec, simulate_exposure
from survey.wfc3ir.fitsio import read_flt, read_ima, write_ima


def _simulate(tmp_path: Path, name: str, **changes):
    sim = simulate_exposure(exposure_spec(size=266, zodi=0.47, **changes))
    path = write_ima(sim.ramp, tmp_path / f"{name}_ima.fits")
    return path, sim.truth


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    return _simulate(tmp_path_factory.mktemp("linear"), "iabc01b7q", seed=11)


@pytest.fixture(scope="module")
def helium(tmp_path_factory):
    return _simulate(tmp_path_factory.mktemp("helium"), "iabc01b9q", seed=12, he=IBOHBFB9Q_HE)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sky(truth, flt_dq):
    """Faint, clean science pixels: no source, no static flag, no CR in the truth."""
    s = slice(5, -5)
    return (truth.scene[s, s] < 0.05) & (truth.cr_map[s, s] == 0) & (flt_dq == 0)


def test_flt_layout_like_calwf3(linear, tmp_path: Path) -> None:
    ima, _ = linear
    out = tmp_path / "iabc01b7q_flt.fits"
    result = CliRunner().invoke(cli, ["fit", str(ima), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with fits.open(out) as hdul, fits.open(ima) as src:
        assert [h.header.get("EXTNAME") for h in hdul[1:]] == ["SCI", "ERR", "DQ", "SAMP", "TIME"]
        assert hdul["SCI"].data.shape == (256, 256) and hdul["SCI"].data.dtype == ">f4"
        assert hdul["DQ"].data.dtype == ">i2" and hdul["SAMP"].data.dtype == ">i2"
        primary, sci = hdul[0].header, hdul["SCI"].header
        assert primary["CRCORR"] == "COMPLETE" and primary["NEXTEND"] == 5
        assert primary["SURVEYV"] == __version__
        history = "\n".join(str(h) for h in primary["HISTORY"])
        assert f"survey {__version__} fit" in history and "crsigma = 4.0" in history
        # LTV and CRPIX move by the 5-px trim (hstcal putCalDataSect)
        for key in ("LTV1", "LTV2", "CRPIX1", "CRPIX2"):
            assert sci[key] == src["SCI", 1].header[key] - 5
        assert sci["BUNIT"] == "ELECTRONS/S" and sci["SAMPTIME"] == src["SCI", 1].header["SAMPTIME"]
        dq = hdul["DQ"].data.astype(np.int16).view(np.uint16)
        stats = flt_statistics(hdul["SCI"].data, hdul["ERR"].data, dq)
        assert sci["NGOODPIX"] == stats["NGOODPIX"] > 50_000
        assert sci["GOODMEAN"] == pytest.approx(stats["GOODMEAN"])
    assert "made UNSTABLE" in result.stderr


def test_rates_and_errors_match_truth(linear, tmp_path: Path) -> None:
    ima, truth = linear
    flt = fit_exposure(ima, tmp_path / "f_flt.fits").flt
    sky = _sky(truth, flt.dq)
    assert sky.sum() > 20_000
    rate_truth = truth.rate[5:-5, 5:-5]
    pull = (flt.sci - rate_truth)[sky] / flt.err[sky]
    assert abs(np.median(flt.sci[sky] - rate_truth[sky])) < 0.003
    assert 0.93 < np.std(pull) < 1.07
    # CRs the truth planted after read 1 are flagged in most pixels they hit
    exptime = read_ima(ima).samptime[-1]  # a subarray STEP200 is a little shorter than 1599 s
    assert (flt.samp[sky] == 16).mean() > 0.95
    assert np.all(flt.time[sky][flt.samp[sky] == 16] == np.float32(exptime))


def test_calwf3_error_mode_reproduces_its_underestimate(linear, tmp_path: Path) -> None:
    ima, truth = linear
    physical = fit_exposure(ima, tmp_path / "p_flt.fits").flt
    compat = fit_exposure(
        ima, tmp_path / "c_flt.fits", params=FitParameters(error_model="calwf3")
    ).flt
    sky = _sky(truth, physical.dq)
    ratio = np.median(physical.err[sky] / compat.err[sky])
    assert 1.3 < ratio < 2.35  # between sqrt(g) and g (domain reference §7.9: 1.51 measured)


def test_he_i_failure_is_reproduced(helium, tmp_path: Path) -> None:
    """calwf3's fit takes He I curvature for CRs in nearly every pixel (domain reference §1).

    The worked example (ibohbfb9q): a noisy, double-peaked FLT sky whose median (1.62) sits
    above the true mean rate, the IMA last-read median (1.50).
    """
    ima, truth = helium
    products = fit_exposure(ima, tmp_path / "h_flt.fits", ima_out=tmp_path / "h_ima.fits")
    assert ((products.ima_dq[-1, 5:-5, 5:-5] & 8192) > 0).mean() > 0.9
    flt = products.flt
    sky = _sky(truth, flt.dq)
    values, true_rate = flt.sci[sky], np.median(truth.rate[5:-5, 5:-5][sky])
    assert np.median(values) - true_rate > 0.1  # biased high, like 1.62 vs 1.50
    assert np.std(values[(values > 1) & (values < 2)]) > 1.7 * np.median(flt.err[sky])
    # a second peak well below the main one: pixels whose noise put the split early
    assert np.mean(values < np.median(values) - 0.2) > 0.01
    assert read_ima(tmp_path / "h_ima.fits").primary["CRCORR"] == "COMPLETE"


def test_archive_ima_is_reset_then_refit_identically(linear, tmp_path: Path) -> None:
    """An archive IMA (CRCORR=COMPLETE) refits to the same FLT as the CRCORR=OMIT IMA (§7.10)."""
    ima, _ = linear
    first = fit_exposure(ima, tmp_path / "a_flt.fits", ima_out=tmp_path / "arch_ima.fits")
    again = fit_exposure(tmp_path / "arch_ima.fits", tmp_path / "b_flt.fits")
    assert again.reset and not first.reset
    made_unstable = ((first.flt.dq & 32) > 0) & ~((read_ima(ima).dq[:, 5:-5, 5:-5] & 32) > 0).any(0)
    same = ~made_unstable
    np.testing.assert_array_equal(again.flt.sci[same], first.flt.sci[same])
    np.testing.assert_array_equal(again.flt.dq[same], first.flt.dq[same])
    kept = fit_exposure(
        tmp_path / "arch_ima.fits",
        tmp_path / "k_flt.fits",
        params=FitParameters(reset_archive_flags=False),
    )
    assert not kept.reset and (kept.flt.samp < again.flt.samp).sum() > 100  # old CRs cut reads


def test_input_untouched_and_outputs_guarded(linear, tmp_path: Path) -> None:
    ima, _ = linear
    digest = _sha(ima)
    out = tmp_path / "g_flt.fits"
    runner = CliRunner()
    assert runner.invoke(cli, ["fit", str(ima), "-o", str(out)]).exit_code == 0
    before = out.read_bytes()
    again = runner.invoke(cli, ["fit", str(ima), "-o", str(out), "--crsigma", "5"])
    assert again.exit_code == 3 and again.stderr.startswith(f"Error: {out}: output exists")
    assert out.read_bytes() == before
    assert runner.invoke(cli, ["fit", str(ima), "-o", str(out), "--overwrite"]).exit_code == 0
    with pytest.raises(SurveyError, match="refusing to write over the input"):
        fit_exposure(ima, tmp_path / "x_flt.fits", ima_out=ima, overwrite=True)
    assert _sha(ima) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_flt.fits"]


def test_raw_like_input_is_refused(linear, tmp_path: Path) -> None:
    ima, _ = linear
    raw = tmp_path / "r_ima.fits"
    with fits.open(ima) as hdul:
        hdul[0].header["ZOFFCORR"] = "PERFORM"
        hdul.writeto(raw)
    result = CliRunner().invoke(cli, ["fit", str(raw), "-o", str(tmp_path / "r_flt.fits")])
    assert result.exit_code == 2 and "ZOFFCORR not COMPLETE" in result.stderr
    assert "Traceback" not in result.output
    with pytest.raises(InputFileError):
        fit_exposure(raw, tmp_path / "r2_flt.fits")


@pytest.mark.realdata
def test_real_archive_ima(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "ibxy01z8q_ima.fits"
    digest = _sha(source)
    products = fit_exposure(source, tmp_path / "ibxy01z8q_flt.fits")
    assert products.reset
    flt = read_flt(tmp_path / "ibxy01z8q_flt.fits")
    assert flt.sci.shape == (256, 256)
    assert flt.sci_header["LTV1"] == -379.0  # IMA -374 minus the trim
    archive_cr = (read_ima(source).dq[-1, 5:-5, 5:-5] & 8192) > 0
    refit_cr = (products.ima_dq[-1, 5:-5, 5:-5] & 8192) > 0
    assert (archive_cr == refit_cr).mean() > 0.999  # same calwf3 decisions
    assert _sha(source) == digest


def test_simulated_archive_products_show_calwf3s_failure(tmp_path: Path) -> None:
    """`survey simulate` writes what MAST holds: flagged IMA + FLT, failing on He I (issue 3)."""
    from dataclasses import replace

    from survey.simulate import ProgramConfig, plan_program, simulate_program

    config = ProgramConfig(
        n_visits=1, exposures_per_visit=2, size=266, seed=5, he_fraction=0, scattered_fraction=0
    )
    quiet, helium = plan_program(config)
    helium = replace(helium, he=IBOHBFB9Q_HE, zodi=0.47)
    summary = simulate_program(tmp_path / "archive", config, specs=[quiet, helium])
    assert summary.truth["category"].to_list() == ["linear", "uniform-tvb"]
    flagged = {}
    for spec in (quiet, helium):
        ima = read_ima(tmp_path / "archive" / f"{spec.rootname}_ima.fits")
        assert ima.primary["CRCORR"] == "COMPLETE"
        flt = read_flt(tmp_path / "archive" / f"{spec.rootname}_flt.fits")
        assert flt.primary["CRCORR"] == "COMPLETE" and flt.sci.shape == (256, 256)
        flagged[spec.rootname] = ((ima.dq[-1, 5:-5, 5:-5] & 8192) > 0).mean()
    assert flagged[quiet.rootname] < 0.1 < 0.9 < flagged[helium.rootname]
    omit = simulate_program(tmp_path / "omit", config, specs=[quiet], crcorr="omit")
    assert read_ima(omit.ima_paths[0]).primary["CRCORR"] == "OMIT"
    assert not list((tmp_path / "omit").glob("*_flt.fits"))
