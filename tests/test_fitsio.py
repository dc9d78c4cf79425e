"""The FITS edge: real archive files, synthetic round trips, and every validation error."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from survey.cli import cli
from survey.errors import InputFileError, OutputExistsError
from survey.wfc3ir.fitsio import (
    open_exposure,
    read_asn,
    read_flt,
    read_ima,
    safe_rootname,
    write_asn,
    write_flt,
    write_ima,
)
from survey.wfc3ir.model import Ramp

REAL_IMAS = ["ibxy01z8q_ima.fits", "ibxy07p9q_ima.fits", "iccz11q4q_ima.fits"]
SHA256 = {
    "ibxy01z8q_ima.fits": "f578cb24787ee65324fae8058bcf37fec5365b1dcf959012246f028aa1e7fb3e",
    "ib4606cpq_flt_cutout.fits": "b872fb943a12ea9c7e7f16e83e6b6398e4dce824f6acfd9ec0ee18fa41838eee",
}


def small_ramp(nsamp: int = 5, size: int = 74, seed: int = 0) -> Ramp:
    """A hand-made IMA-like ramp: constant rate 2 e-/s + noise, times 0, 3, 6, ..."""
    rng = np.random.default_rng(seed)
    samptime = np.arange(nsamp) * 3.0
    sci = (2.0 + rng.normal(0, 0.1, (nsamp, size, size))).astype(np.float32)
    sci[0] = 0.0
    err = np.full((nsamp, size, size), 0.5, np.float32)
    dq = np.zeros((nsamp, size, size), np.uint16)
    dq[:, 10, 10] = 16
    dq[3:, 20, 20] = 256 | 8192  # a saturated pixel and a CR, from read 3 on
    dq[:, 30, 30] |= 32768  # the top bit must survive the int16 round trip
    samp = np.broadcast_to(np.arange(1, nsamp + 1, dtype=np.int16)[:, None, None], sci.shape)
    time = np.broadcast_to(samptime.astype(np.float32)[:, None, None], sci.shape)
    primary = fits.Header()
    for key, value in {
        "INSTRUME": "WFC3", "DETECTOR": "IR", "FILTER": "F105W", "OBSTYPE": "IMAGING",
        "OBSMODE": "MULTIACCUM", "SAMP_SEQ": "RAPID", "NSAMP": nsamp, "ROOTNAME": "iabc01x1q",
        "EXPTIME": float(samptime[-1]), "SUBARRAY": size != 1024, "CRCORR": "OMIT",
    }.items():  # fmt: skip
        primary[key] = value
    headers = []
    for k in range(nsamp):
        h = fits.Header()
        h["BUNIT"] = "ELECTRONS/S"
        h["SAMPNUM"] = k
        h["SAMPTIME"] = float(samptime[k])
        h["DELTATIM"] = float(samptime[k] - samptime[k - 1]) if k else 0.0
        h["ROUTTIME"] = 56000.0 + samptime[k] / 86400
        h["LTV1"] = h["LTV2"] = -(1014 - (size - 10)) / 2 + 5
        headers.append(h)
    return Ramp(sci, err, dq, samp, time, samptime, primary, headers)


@pytest.fixture
def ima_file(tmp_path: Path) -> Path:
    return write_ima(small_ramp(), tmp_path / "iabc01x1q_ima.fits")


def rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a FITS file, letting ``edit(hdul)`` change it (inputs stay untouched)."""
    with fits.open(src) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    edit(hdul)
    hdul.writeto(dst, output_verify="silentfix")
    return dst


# ---------------------------------------------------------------------------------------------
# Real archive files


@pytest.mark.realdata
@pytest.mark.parametrize("name", REAL_IMAS)
def test_real_ima_reads_in_time_order(real_data: Path, name: str) -> None:
    ramp = read_ima(real_data / name)
    assert ramp.nsamp == 4
    assert ramp.shape == (266, 266)
    np.testing.assert_allclose(ramp.samptime, [0.0, 0.277815, 0.55563, 0.833445], rtol=1e-6)
    assert [h["SAMPNUM"] for h in ramp.read_headers] == [0, 1, 2, 3]
    # header-only SAMP/TIME expanded: SAMP = read number + 1, TIME = SAMPTIME
    assert ramp.samp.dtype == np.int16 and ramp.time.dtype == np.float32
    np.testing.assert_array_equal(ramp.samp[:, 0, 0], [1, 2, 3, 4])
    np.testing.assert_allclose(ramp.time[:, 100, 100], ramp.samptime, rtol=1e-6)
    assert ramp.meta.bunit == "ELECTRONS/S"
    assert ramp.meta.ltv1 == -374.0 and ramp.meta.subtype == "SQ256SUB"
    with fits.open(real_data / name) as hdul:  # imset 1 is the last read
        np.testing.assert_array_equal(ramp.sci[-1], hdul["SCI", 1].data)
        np.testing.assert_array_equal(ramp.sci[0], hdul["SCI", 4].data)
        np.testing.assert_array_equal(ramp.dq[-1], hdul["DQ", 1].data.astype(np.uint16))


@pytest.mark.realdata
def test_real_ima_cr_flags_persist_to_later_reads(real_data: Path) -> None:
    """Archive CRCORR put 8192 on the CR read and every later read (domain reference §2)."""
    ramp = read_ima(real_data / "ibxy01z8q_ima.fits")
    cr = (ramp.dq & 8192) > 0
    assert cr.any()
    assert not cr[0].any()
    assert np.all(cr[1:-1] <= cr[2:])  # once flagged, flagged in every later read


@pytest.mark.realdata
def test_real_ima_lazy_access_matches_full_read(real_data: Path) -> None:
    ramp = read_ima(real_data / "iccz11q4q_ima.fits")
    with open_exposure(real_data / "iccz11q4q_ima.fits") as exposure:
        assert exposure.kind == "ramp" and exposure.nsamp == 4
        np.testing.assert_array_equal(exposure.sci(2), ramp.sci[2])
        science = exposure.sci(3, science=True)
        assert science.shape == (256, 256)
        np.testing.assert_array_equal(science, ramp.sci[3, 5:-5, 5:-5])
        np.testing.assert_array_equal(exposure.dq(1), ramp.dq[1])
    # the median rate of the last read over the science area, as pstat 'midpt' would give
    # restricted to science pixels
    assert np.median(ramp.sci[-1][ramp.science[1:]]) == pytest.approx(0.4808, abs=1e-3)


@pytest.mark.realdata
def test_real_flt_with_headerlets(real_data: Path) -> None:
    flt = read_flt(real_data / "ib4606cpq_flt_cutout.fits")
    assert flt.sci.shape == (10, 10)
    assert flt.samp.dtype == np.int16 and flt.dq.dtype == np.uint16
    assert flt.primary["NSAMP"] == 14 and flt.primary["SAMP_SEQ"].strip() == "STEP100"
    with open_exposure(real_data / "ib4606cpq_flt_cutout.fits") as exposure:
        assert exposure.kind == "flt"
        assert exposure.meta.filter == "F110W" and not exposure.meta.subarray


@pytest.mark.realdata
def test_real_files_are_never_modified(real_data: Path, tmp_path: Path) -> None:
    for name, digest in SHA256.items():
        path = real_data / name
        ramp_or_flt = read_flt(path) if "flt" in name else read_ima(path)
        out = tmp_path / name
        (write_flt if "flt" in name else write_ima)(ramp_or_flt, out)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


@pytest.mark.realdata
def test_real_ima_round_trip_is_lossless(real_data: Path, tmp_path: Path) -> None:
    ramp = read_ima(real_data / "ibxy01z8q_ima.fits")
    back = read_ima(write_ima(ramp, tmp_path / "ibxy01z8q_ima.fits"))
    for name in ("sci", "err", "dq", "samp", "time", "samptime"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ramp, name))
    assert back.read_headers[-1]["ROUTTIME"] == ramp.read_headers[-1]["ROUTTIME"]


@pytest.mark.realdata
def test_real_gz_reads_like_plain(real_data: Path, tmp_path: Path) -> None:
    gz = tmp_path / "ibxy07p9q_ima.fits.gz"
    with open(real_data / "ibxy07p9q_ima.fits", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    np.testing.assert_array_equal(read_ima(gz).sci, read_ima(real_data / "ibxy07p9q_ima.fits").sci)


def test_scaled_integer_dq_reads_like_plain(real_data: Path, tmp_path: Path) -> None:
    """A DQ written as uint16 (BITPIX 16 with BZERO 32768, as some tools write unsigned data)
    cannot be memory-mapped by astropy: it is read without the map, bits unchanged."""
    scaled = tmp_path / "ibxy01z8q_ima.fits"
    with fits.open(real_data / "ibxy01z8q_ima.fits") as hdul:
        copy = fits.HDUList([hdu.copy() for hdu in hdul])
    for hdu in copy:
        if hdu.name == "DQ" and hdu.data is not None:
            hdu.data = hdu.data.astype(np.uint16)  # same bits, now unsigned
    copy.writeto(scaled)
    assert fits.getheader(scaled, ("DQ", 1))["BZERO"] == 32768
    plain, ours = read_ima(real_data / "ibxy01z8q_ima.fits"), read_ima(scaled)
    np.testing.assert_array_equal(ours.dq, plain.dq)
    np.testing.assert_array_equal(ours.sci, plain.sci)


# ---------------------------------------------------------------------------------------------
# Writing like calwf3


def test_written_ima_layout(ima_file: Path) -> None:
    with fits.open(ima_file) as hdul:
        assert len(hdul) == 1 + 5 * 5
        assert hdul[0].header["NEXTEND"] == 25
        assert hdul[0].header["FILENAME"] == "iabc01x1q_ima.fits"
        names = [(h.header["EXTNAME"], h.header["EXTVER"]) for h in hdul[1:]]
        assert names[:5] == [("SCI", 1), ("ERR", 1), ("DQ", 1), ("SAMP", 1), ("TIME", 1)]
        # reverse time order: imset 1 is the last read
        assert hdul["SCI", 1].header["SAMPNUM"] == 4 and hdul["SCI", 5].header["SAMPNUM"] == 0
        # constant extensions header-only, with the BITPIX of their type and hstio keywords
        for name, bitpix, value in (("SAMP", 16, 5), ("TIME", -32, 12.0), ("ERR", -32, 0.5)):
            header = hdul[name, 1].header
            assert header["NAXIS"] == 0 and header["BITPIX"] == bitpix
            assert (header["NPIX1"], header["NPIX2"], header["PIXVALUE"]) == (74, 74, value)
        assert hdul["DQ", 1].header["NAXIS"] == 2  # not constant: written as an array
        assert hdul["DQ", 1].data.dtype == np.dtype(">i2")
        assert hdul["SAMP", 1].header["BUNIT"] == "SAMPLES"
        assert hdul["ERR", 1].header["LTV1"] == hdul["SCI", 1].header["LTV1"]


def test_synthetic_round_trip_keeps_every_bit(ima_file: Path) -> None:
    ramp = small_ramp()
    back = read_ima(ima_file)
    for name in ("sci", "err", "dq", "samp", "time", "samptime"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ramp, name))
    assert back.dq[4, 30, 30] == 32768 and back.dq[4, 20, 20] == 256 | 8192
    assert back.samp.strides == (2, 0, 0)  # constant SAMP stays a broadcast view
    np.testing.assert_allclose(back.counts()[:, 40, 40], ramp.sci[:, 40, 40] * ramp.samptime)


def test_constant_dq_with_high_bit_round_trips(tmp_path: Path) -> None:
    ramp = small_ramp()
    ramp.dq = np.full(ramp.sci.shape, 32768 | 4, np.uint16)
    back = read_ima(write_ima(ramp, tmp_path / "x_ima.fits"))
    assert back.dq.dtype == np.uint16 and np.all(back.dq == 32772)


def test_gz_output_is_reproducible(tmp_path: Path) -> None:
    a = write_ima(small_ramp(), tmp_path / "a" / "iabc01x1q_ima.fits.gz")
    b = write_ima(small_ramp(), tmp_path / "b" / "iabc01x1q_ima.fits.gz")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_ima(a).sci, small_ramp().sci)
    with fits.open(a) as hdul:
        assert hdul[0].header["FILENAME"] == "iabc01x1q_ima.fits"


def test_refuses_to_overwrite_and_leaves_no_temp_files(ima_file: Path) -> None:
    before = ima_file.read_bytes()
    with pytest.raises(OutputExistsError, match="use --overwrite"):
        write_ima(small_ramp(seed=1), ima_file)
    assert ima_file.read_bytes() == before
    write_ima(small_ramp(seed=1), ima_file, overwrite=True)
    assert ima_file.read_bytes() != before
    assert sorted(p.name for p in ima_file.parent.iterdir()) == [ima_file.name]


def test_flt_round_trip(tmp_path: Path) -> None:
    ramp = small_ramp()
    flt = read_flt(write_flt(_flt_from(ramp), tmp_path / "iabc01x1q_flt.fits"))
    np.testing.assert_array_equal(flt.sci, ramp.sci[-1, 5:-5, 5:-5])
    assert flt.sci.shape == (64, 64) and flt.time.dtype == np.float32


def _flt_from(ramp: Ramp):
    from survey.wfc3ir.fitsio import FLTImage

    s = ramp.science[1:]
    return FLTImage(
        sci=ramp.sci[-1][s], err=ramp.err[-1][s], dq=ramp.dq[-1][s],
        samp=np.asarray(ramp.samp[-1][s]), time=np.asarray(ramp.time[-1][s]),
        primary=ramp.primary, sci_header=ramp.read_headers[-1],
    )  # fmt: skip


def test_asn_round_trip(tmp_path: Path) -> None:
    path = write_asn(tmp_path / "iabc01010_asn.fits", "iabc01010", ["iabc01x1q", "iabc01x2q"])
    assert read_asn(path) == [
        ("iabc01x1q", "EXP-DTH", True),
        ("iabc01x2q", "EXP-DTH", True),
        ("iabc01010", "PROD-DTH", True),
    ]


# ---------------------------------------------------------------------------------------------
# Validation: one specific one-line error naming the file


def _set(key, value, ext=0):
    def edit(hdul):
        hdul[ext].header[key] = value

    return edit


def _drop_hdu(index):
    def edit(hdul):
        del hdul[index]
        hdul[0].header["NEXTEND"] = len(hdul) - 1

    return edit


def _samptime_of(extver, value):
    def edit(hdul):
        hdul["SCI", extver].header["SAMPTIME"] = value

    return edit


BAD_CASES = {
    "not FITS": (None, r"not a FITS file"),
    "truncated": (None, r"truncated"),
    "not WFC3/IR": (_set("DETECTOR", "UVIS"), r"not a WFC3/IR file \(.*DETECTOR='UVIS'\)"),
    "not MULTIACCUM": (_set("OBSMODE", "ACCUM"), r"not a MULTIACCUM exposure"),
    "NSAMP vs NEXTEND": (_set("NSAMP", 6), r"NSAMP=6 needs NEXTEND=30, header says NEXTEND=25"),
    "missing SCI": (_drop_hdu(6), r"missing SCI extension of read 3, imset 2"),
    "non-monotonic SAMPTIME": (_samptime_of(2, 1.0), r"SAMPTIME not increasing .* read 3 at 1 s"),
    "unknown BUNIT": (_set("BUNIT", "JY", ext=1), r"unknown BUNIT 'JY' in SCI of read 4"),
}  # fmt: skip


def make_bad(case: str, ima_file: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "bad_ima.fits"
    if case == "not FITS":
        bad.write_bytes(b"this is not a FITS file\n" * 200)
    elif case == "truncated":
        bad.write_bytes(ima_file.read_bytes()[: ima_file.stat().st_size // 2])
    else:
        rewrite(ima_file, bad, BAD_CASES[case][0])
    return bad


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_validation_errors_name_the_file(case: str, ima_file: Path, tmp_path: Path) -> None:
    bad = make_bad(case, ima_file, tmp_path)
    with pytest.raises(InputFileError, match=BAD_CASES[case][1]) as info:
        read_ima(bad)
    message = str(info.value)
    assert message.startswith(str(bad)) and "\n" not in message


@pytest.mark.parametrize("case", ["not FITS", "truncated", "missing SCI", "unknown BUNIT"])
def test_cli_reports_bad_files_in_one_line(case: str, ima_file: Path, tmp_path: Path) -> None:
    bad = make_bad(case, ima_file, tmp_path)
    result = CliRunner().invoke(cli, ["info", str(bad), str(ima_file)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {bad}:")
    assert "Traceback" not in result.output
    assert "iabc01x1q" in result.stdout  # the good file is still described


def test_truncated_gz_is_reported(ima_file: Path, tmp_path: Path) -> None:
    gz = tmp_path / "x_ima.fits.gz"
    gz.write_bytes(gzip.compress(ima_file.read_bytes())[:5000])
    with pytest.raises(InputFileError, match="truncated"):
        read_ima(gz)


def test_missing_file() -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_ima("/nonexistent/x_ima.fits")


def test_grism_and_scan_read_fine_but_are_marked(ima_file: Path, tmp_path: Path) -> None:
    def grism_scan(hdul):
        hdul[0].header["FILTER"] = "G102"
        hdul[0].header["OBSTYPE"] = "SPECTROSCOPIC"
        hdul[0].header["SCAN_TYP"] = "C"

    meta = read_ima(rewrite(ima_file, tmp_path / "g_ima.fits", grism_scan)).meta
    assert meta.is_grism and meta.is_spatial_scan and meta.he_i_sensitive
    plain = read_ima(ima_file).meta
    assert not plain.is_grism and not plain.is_spatial_scan


@pytest.mark.parametrize(
    "value", ["../../x", "<script>alert(1)</script>", "ib/../q", "IBOHBFB9Q ", "ibohbf b9q"]
)
def test_rootname_from_header_is_untrusted(value: str) -> None:
    if value.strip().lower() == "ibohbfb9q":
        assert safe_rootname(value, "f.fits") == "ibohbfb9q"
    else:
        with pytest.raises(InputFileError, match="not a valid HST rootname"):
            safe_rootname(value, "f.fits")


def test_hostile_header_text_stays_on_one_line(ima_file: Path, tmp_path: Path) -> None:
    bad = rewrite(ima_file, tmp_path / "h_ima.fits", _set("INSTRUME", "ACS<b>x</b>" * 5))
    with pytest.raises(InputFileError) as info:
        read_ima(bad)
    assert "\n" not in str(info.value) and len(str(info.value)) < len(str(bad)) + 120


def test_control_character_in_a_header_card_is_a_clean_error(
    ima_file: Path, tmp_path: Path
) -> None:
    """astropy raises VerifyError when such a card is read; it must not escape as a traceback."""
    raw = bytearray(ima_file.read_bytes())
    at = raw.index(b"FILTER  = 'F105W")
    raw[at + 12] = 0x07  # BEL inside the string value
    bad = tmp_path / "ctrl_ima.fits"
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputFileError, match=r"invalid header card"):
        open_exposure(bad)
    result = CliRunner().invoke(cli, ["info", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
