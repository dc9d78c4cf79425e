"""The scanner's lean FITS path and fast kernels give exactly what astropy and numpy give.

The lean opener (:mod:`survey.scan.leanfits`) must be indistinguishable from
:func:`survey.wfc3ir.fitsio.open_exposure`: the same header values, arrays (bit for bit, same
dtypes), metadata and one-line errors, whether it reads a file itself or hands it to astropy.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from survey.errors import InputFileError
from survey.scan import _kernels as kern
from survey.scan import measure
from survey.scan.cores import CoreMonitor, read_proc_stat
from survey.scan.leanfits import LeanExposure, open_lean, read_flt_sky
from survey.scan.params import ScanParameters
from survey.scan.regions import MaskWorkspace, _background_map, cell_map
from survey.scan.stats import ReadStatistics
from survey.simulate import ProgramConfig, simulate_program
from survey.wfc3ir.fitsio import (
    EXTNAMES,
    MultiAccumFile,
    open_exposure,
    read_flt,
    read_ima,
    write_flt,
    write_ima,
)
from survey.wfc3ir.model import Ramp

REAL = ["ibxy01z8q_ima.fits", "ibxy07p9q_ima.fits", "iccz11q4q_ima.fits"]
REAL_FLT = "ib4606cpq_flt_cutout.fits"
COMMENTARY = ("COMMENT", "HISTORY", "")


def small_ramp(nsamp: int = 4, size: int = 42) -> Ramp:
    """A small IMA-like ramp with constant SAMP/TIME extensions and DQ's top bit set."""
    rng = np.random.default_rng(1)
    samptime = np.arange(nsamp) * 2.5
    sci = (1.5 + rng.normal(0, 0.1, (nsamp, size, size))).astype(np.float32)
    sci[0] = 0.0
    err = rng.uniform(0.1, 0.2, sci.shape).astype(np.float32)
    dq = np.zeros(sci.shape, np.uint16)
    dq[2:, 7, 9] = 8192 | 32768
    dq[:, 3, 4] = 4
    samp = np.broadcast_to(np.arange(1, nsamp + 1, dtype=np.int16)[:, None, None], sci.shape)
    time = np.broadcast_to(samptime.astype(np.float32)[:, None, None], sci.shape)
    primary = fits.Header()
    for key, value in {
        "INSTRUME": "WFC3", "DETECTOR": "IR", "FILTER": "F110W", "OBSTYPE": "IMAGING",
        "OBSMODE": "MULTIACCUM", "SAMP_SEQ": "RAPID", "NSAMP": nsamp, "ROOTNAME": "iabc02x1q",
        "EXPTIME": float(samptime[-1]), "SUBARRAY": True, "CRCORR": "OMIT",
        "TIME-OBS": "12:34:56", "TARGNAME": "NGC 1: FIELD",
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
        h["LTV1"] = h["LTV2"] = -486.0
        headers.append(h)
    return Ramp(sci, err, dq, samp, time, samptime, primary, headers)


@pytest.fixture
def ima(tmp_path: Path) -> Path:
    return write_ima(small_ramp(), tmp_path / "iabc02x1q_ima.fits")


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _same_get(a, b, key: str) -> bool:
    """``a.get(key)`` and ``b.get(key)`` give the same value or raise the same error."""
    outcomes = []
    for header in (a, b):
        try:
            outcomes.append(("ok", header.get(key)))
        except Exception as exc:
            outcomes.append((type(exc).__name__, str(exc)))
    (kind_a, value_a), (kind_b, value_b) = outcomes
    return kind_a == kind_b and _same(value_a, value_b)


def assert_same_exposure(a: MultiAccumFile, b: MultiAccumFile) -> None:
    """``b`` answers everything a scan (or anyone) asks exactly as ``a``."""
    assert (a.kind, a.nsamp, a.shape) == (b.kind, b.nsamp, b.shape)
    assert a.samptime.tolist() == b.samptime.tolist()
    assert repr(a.meta) == repr(b.meta)
    assert list(a.primary) == list(b.primary) and len(a.primary) == len(b.primary)
    assert all(_same_get(a.primary, b.primary, key) for key in a.primary)
    for k in range(a.nsamp):
        header_a, header_b = a.read_headers[k], b.read_headers[k]
        assert list(header_a) == list(header_b) and len(header_a) == len(header_b)
        for key in header_a:
            if key not in COMMENTARY:
                assert _same_get(header_a, header_b, key), key
                assert key in header_b
        assert header_b.get("NO_SUCH") is None and "NO_SUCH" not in header_b
        for name in EXTNAMES:
            x, y = a.extension(name, k), b.extension(name, k)
            assert (x.dtype, x.shape) == (y.dtype, y.shape), (name, k)
            assert x.tobytes() == y.tobytes(), (name, k)


def outcome(opener, path: Path):
    """(``"ok"``, exposure) or (exception type, message) of opening ``path`` and reading
    every array (astropy's own failures included: the lean path must not differ there)."""
    try:
        exposure = opener(path)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    try:
        for k in range(exposure.nsamp):
            for name in EXTNAMES:
                exposure.extension(name, k)
    except Exception as exc:
        exposure.close()
        return type(exc).__name__, str(exc)
    return "ok", exposure


def assert_same_outcome(path: Path) -> MultiAccumFile | None:
    kind_a, a = outcome(open_exposure, path)
    kind_b, b = outcome(open_lean, path)
    assert kind_a == kind_b, (a, b)
    if kind_a != "ok":
        assert a == b
        assert kind_a != "InputFileError" or "\n" not in b
        return None
    with a, b:
        assert_same_exposure(a, b)
    return b


# -- the lean path on good files -------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("name", [*REAL, REAL_FLT])
def test_real_archive_files_read_leanly_and_identically(real_data: Path, name: str) -> None:
    """Archive IMAs, and an FLT with CONTINUE cards and HDRLET/WCSCORR extensions."""
    with open_lean(real_data / name) as lean:
        assert isinstance(lean, LeanExposure)
    assert_same_outcome(real_data / name)


@pytest.mark.realdata
def test_real_flt_sky_arrays_equal_read_flt(real_data: Path) -> None:
    sci, dq = read_flt_sky(real_data / REAL_FLT)
    flt = read_flt(real_data / REAL_FLT)
    assert sci.tobytes() == flt.sci.tobytes() and sci.dtype == flt.sci.dtype
    assert dq.tobytes() == flt.dq.tobytes() and dq.dtype == flt.dq.dtype


def test_synthetic_ima_with_constant_extensions(ima: Path) -> None:
    lean = assert_same_outcome(ima)
    assert isinstance(lean, LeanExposure)


def test_whole_ramp_loads_as_read_ima_loads_it(ima: Path) -> None:
    """MultiAccumFile's own stack/to_ramp, on the lean HDUs (astropy-like ``data``)."""
    with LeanExposure(ima) as lean:
        ramp = lean.to_ramp()
    reference = read_ima(ima)
    for name in ("sci", "err", "dq", "samp", "time"):
        a, b = getattr(reference, name), getattr(ramp, name)
        assert (a.dtype, a.shape, a.strides == (0, 0, 0)) == (
            b.dtype,
            b.shape,
            b.strides == (0, 0, 0),
        )
        assert a.tobytes() == b.tobytes(), name


def _edit(src: Path, dst: Path, edit) -> Path:
    with fits.open(src) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    edit(hdul)
    hdul.writeto(dst, output_verify="silentfix")
    return dst


def _duplicate_samptime(hdul):
    hdul["SCI", 2].header.append(fits.Card("SAMPTIME", 999.0), useblanks=False)


def _long_string(hdul):
    hdul["SCI", 1].header["S_REGION"] = "POLYGON " + " 12.345678" * 20


def _record_valued(hdul):
    hdul["SCI", 1].header["DP1"] = "AXIS.1: 1"


def _one_continue(hdul):
    """A value just too long for one card: exactly one CONTINUE card follows it."""
    hdul[0].header["TARGNAME"] = "GOODS-NORTH-" + "X" * 60


@pytest.mark.parametrize(
    "edit",
    [_duplicate_samptime, _long_string, _record_valued, _one_continue],
    ids=lambda f: f.__name__,
)
def test_headers_astropy_must_parse_whole_still_read_leanly(ima, tmp_path, edit) -> None:
    """A duplicated keyword (astropy's first wins), CONTINUE cards, a record-valued card."""
    path = _edit(ima, tmp_path / "e_ima.fits", edit)
    assert isinstance(assert_same_outcome(path), LeanExposure)


# -- files the lean path hands to astropy, with the same result -----------------------------


def _hierarch(hdul):
    hdul["SCI", 1].header["HIERARCH SURVEY LONG KEY"] = 1


def _scaled_dq(hdul):
    hdul["DQ", 1].data = hdul["DQ", 1].data.astype(np.uint16)  # written with BZERO = 32768


def _undetected(hdul):
    hdul[0].header["DETECTOR"] = "UVIS"


def _bad_bunit(hdul):
    hdul["SCI", 2].header["BUNIT"] = "JY"


def _drop_sci(hdul):
    del hdul[6]
    hdul[0].header["NEXTEND"] = len(hdul) - 1


def _bad_samptime(hdul):
    hdul["SCI", 2].header["SAMPTIME"] = 0.5


def _missing_pixvalue(hdul):
    del hdul["TIME", 1].header["PIXVALUE"]


EDITS = [_hierarch, _scaled_dq, _undetected, _bad_bunit, _drop_sci, _bad_samptime]


@pytest.mark.parametrize("edit", [*EDITS, _missing_pixvalue], ids=lambda f: f.__name__)
def test_edited_files_give_what_open_exposure_gives(ima, tmp_path, edit) -> None:
    assert_same_outcome(_edit(ima, tmp_path / "e_ima.fits", edit))


def _raw(ima: Path, tmp_path: Path, case: str) -> Path:
    data = ima.read_bytes()
    path = tmp_path / "r_ima.fits"
    if case == "not FITS":
        data = b"this is not a FITS file\n" * 200
    elif case == "truncated mid-data":
        data = data[: len(data) // 2]
    elif case == "truncated at a block":
        data = data[: (len(data) // 2880 - 3) * 2880]
    elif case == "trailing bytes":
        data = data + bytes(2880)
    elif case == "control character":
        at = data.index(b"FILTER  = 'F110W")
        data = data[: at + 12] + b"\x07" + data[at + 13 :]
    elif case == "control character in SCI":
        at = data.index(b"BUNIT   = 'ELECTRONS/S")
        data = data[: at + 13] + b"\x07" + data[at + 14 :]
    elif case == "gzip":
        path = tmp_path / "r_ima.fits.gz"
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


RAW_CASES = [
    "not FITS",
    "truncated mid-data",
    "truncated at a block",
    "trailing bytes",
    "control character",
    "control character in SCI",
    "gzip",
]


@pytest.mark.parametrize("case", RAW_CASES)
def test_damaged_files_give_what_open_exposure_gives(ima, tmp_path, case) -> None:
    assert_same_outcome(_raw(ima, tmp_path, case))


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # astropy leaks a handle on some
def test_random_header_damage_gives_what_open_exposure_gives(ima, tmp_path) -> None:
    """One to three bytes of the headers changed, 300 times: the lean path must take every
    damaged card, value, comment and END as astropy does (or hand the file to it)."""
    import gc
    import random

    data = ima.read_bytes()
    with fits.open(ima) as hdul:
        spans = [(h.fileinfo()["hdrLoc"], h.fileinfo()["datLoc"]) for h in hdul]
    rng = random.Random(7)
    alphabet = b" =/'.:-_0123456789ABCDEFNTXZ&\x07\n"
    lean = 0
    for i in range(40):
        raw = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            start, stop = rng.choice(spans)
            raw[rng.randrange(start, stop)] = rng.choice(alphabet)
        path = tmp_path / f"d{i}_ima.fits"
        path.write_bytes(bytes(raw))
        lean += isinstance(assert_same_outcome(path), LeanExposure)
        path.unlink()
        gc.collect()  # astropy's leaked handles close here, under this test's filter
    assert lean >= 3  # both paths are exercised (damaged padding or bytes: astropy)


def test_missing_file_is_the_same_error(tmp_path) -> None:
    assert_same_outcome(tmp_path / "nothing_ima.fits")


def test_flt_arrays_and_errors_equal_read_flt(ima, tmp_path) -> None:
    ramp = small_ramp()
    flt_ramp = read_flt_like(ramp)
    flt = write_flt(flt_ramp, tmp_path / "iabc02x1q_flt.fits")
    sci, dq = read_flt_sky(flt)
    reference = read_flt(flt)
    assert sci.tobytes() == reference.sci.tobytes() and dq.tobytes() == reference.dq.tobytes()
    for path in (ima, _edit(flt, tmp_path / "x_flt.fits", _flt_without_time_value)):
        with pytest.raises(InputFileError) as expected:
            read_flt(path)
        with pytest.raises(InputFileError) as got:
            read_flt_sky(path)
        assert str(got.value) == str(expected.value)


def read_flt_like(ramp: Ramp):
    from survey.wfc3ir.fitsio import FLTImage

    header = ramp.read_headers[-1].copy()
    return FLTImage(
        sci=ramp.sci[-1], err=ramp.err[-1], dq=ramp.dq[-1], samp=ramp.samp[-1],
        time=ramp.time[-1], primary=ramp.primary.copy(), sci_header=header,
    )  # fmt: skip


def _flt_without_time_value(hdul):
    del hdul["TIME", 1].header["PIXVALUE"]


# -- the whole scan: lean path against astropy ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_program(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lean") / "prog"
    config = ProgramConfig(n_visits=1, exposures_per_visit=2, size=74, seed=11)
    simulate_program(out, config)
    return out


def test_scan_rows_are_identical_through_astropy(tiny_program, monkeypatch) -> None:
    """The lean path with every helper thread against astropy in one thread."""
    paths = sorted(tiny_program.glob("*_ima.fits"))
    monkeypatch.setattr(measure, "spare_core", lambda: True)
    lean = [measure.measure_exposure(p, prefetch=True, threads=2) for p in paths]

    def astropy_flt(path):
        flt = read_flt(path)
        return flt.sci, flt.dq

    monkeypatch.setattr(measure, "open_lean", open_exposure)
    monkeypatch.setattr(measure, "read_flt_sky", astropy_flt)
    plain = [measure.measure_exposure(p, prefetch=False, threads=1) for p in paths]
    for a, b in zip(plain, lean, strict=True):
        assert a.exposure["flt_path"] is not None
        assert a.exposure.keys() == b.exposure.keys()
        assert all(_same(a.exposure[k], b.exposure[k]) for k in a.exposure)
        assert len(a.reads) == len(b.reads)
        for x, y in zip(a.reads, b.reads, strict=True):
            assert all(_same(x[k], y[k]) for k in x), [k for k in x if not _same(x[k], y[k])]


# -- kernels against numpy --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 9), (64, 64), (266, 266)])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.5, 1.0])
def test_gather_masked_equals_compress(shape, density) -> None:
    rng = np.random.default_rng(shape[0] * 7 + int(density * 100))
    values = rng.normal(size=shape).astype(np.float32)
    mask = rng.random(shape) < density
    out = np.empty(values.size + 8, np.float32)
    n = kern.gather_masked(values, mask, out)
    assert out[:n].tobytes() == np.compress(mask.ravel(), values.ravel()).tobytes()


def test_byteswap_equals_numpy() -> None:
    rng = np.random.default_rng(3)
    for dtype in (np.uint16, np.uint32):
        words = rng.integers(0, np.iinfo(dtype).max, 1001, dtype=dtype, endpoint=True)
        swapped = words.copy()
        kern.byteswap_inplace(swapped)
        assert swapped.tobytes() == words.byteswap().tobytes()


def _numpy_background(image: np.ndarray, cell: int) -> np.ndarray:
    """The background map as plain numpy computes it (bilinear blends of block medians)."""
    ny, nx = image.shape
    gy, gx = -(-ny // cell), -(-nx // cell)
    padded = np.pad(image, ((0, gy * cell - ny), (0, gx * cell - nx)), mode="edge")
    step = 4 if cell >= 16 else 2
    blocks = padded[::step, ::step].reshape(gy, cell // step, gx, cell // step)
    coarse = np.median(blocks.transpose(0, 2, 1, 3).reshape(gy, gx, -1), axis=2)
    coarse = coarse.astype(np.float32)

    def blend(values, n, axis):
        g = values.shape[axis]
        position = np.clip((np.arange(n) + 0.5) / cell - 0.5, 0, g - 1)
        low = np.minimum(position.astype(np.intp), max(g - 2, 0))
        weight = (position - low).astype(np.float32)
        a = np.take(values, low, axis=axis)
        b = np.take(values, np.minimum(low + 1, g - 1), axis=axis)
        return a + (b - a) * weight.reshape((-1, 1) if axis == 0 else (1, -1))

    return blend(blend(coarse, ny, 0), nx, 1)


@pytest.mark.parametrize(("shape", "cell"), [((64, 64), 8), ((128, 100), 16), ((256, 256), 32)])
def test_background_map_equals_numpy_bit_for_bit(shape, cell) -> None:
    rng = np.random.default_rng(shape[1])
    x = np.mgrid[: shape[0], : shape[1]][1]
    image = (0.5 + 0.002 * x + rng.normal(0, 0.05, shape)).astype(np.float32)
    background, residual = _background_map(image, cell, MaskWorkspace(shape))
    expected = _numpy_background(image, cell)
    assert background.tobytes() == expected.tobytes()
    assert residual.tobytes() == np.subtract(image, expected, dtype=np.float32).tobytes()


def test_threads_scanning_files_at_once_get_their_own_buffers(tiny_program) -> None:
    """Library users (or a multi-threaded Dask worker) may scan several files at once."""
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted(tiny_program.glob("*_ima.fits")) * 3
    alone = [measure.measure_exposure(p, threads=1).reads for p in paths]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda p: measure.measure_exposure(p, threads=1).reads, paths))
    for a, b in zip(alone, together, strict=True):
        assert [sorted(r.items()) for r in a] == [sorted(r.items()) for r in b]


# -- helper threads: only with a free core, never changing a number ---------------------------


def test_split_read_passes_equal_one_thread_bit_for_bit() -> None:
    """Two threads counting half the rows each give the one-thread histograms and numbers."""
    rng = np.random.default_rng(5)
    shape = (133, 101)  # odd sizes: uneven halves
    prev = (0.5 + rng.normal(0, 0.05, shape)).astype(np.float32)
    sci = (prev + 0.01 + rng.normal(0, 0.05, shape)).astype(np.float32)
    sci[40:44, 50:54] += 30  # a star
    sci[7, 9] = np.inf
    dq = np.zeros(shape, np.uint16)
    dq[10:20, 30] = 8192
    dq[60, 60:70] = 4 | 32
    cells = cell_map(*shape)
    rows = []
    for threads in (1, 2):
        engine = ReadStatistics(shape, cells, ScanParameters())
        engine.use_threads(threads)
        first = engine.measure(sci, dq, None, None, t=10.0, t_prev=0.0, rate_units=True)
        second = engine.measure(sci, dq, prev, dq, t=20.0, t_prev=10.0, rate_units=True)
        engine.use_threads(1)
        rows.append((first, second))
    for a, b in zip(*rows, strict=True):
        assert a.keys() == b.keys()
        assert all(_same(a[k], b[k]) for k in a), [k for k in a if not _same(a[k], b[k])]


def test_helper_threads_only_with_a_free_core(tiny_program, monkeypatch) -> None:
    path = sorted(tiny_program.glob("*_ima.fits"))[0]
    used = []
    original = ReadStatistics.use_threads
    monkeypatch.setattr(
        ReadStatistics, "use_threads", lambda self, n: used.append(n) or original(self, n)
    )
    results = []
    for free in (True, False):
        monkeypatch.setattr(measure, "spare_core", lambda free=free: free)
        results.append(measure.measure_exposure(path, threads=2))
    assert used == [2, 1]
    assert results[0].reads == results[1].reads


def test_core_monitor_tells_a_busy_machine_from_a_free_core() -> None:
    """Two cores; the counters are (idle, total) ticks summed over both."""
    now = [0.0]
    samples = iter([(0, 0), (50, 200), (50, 400), (50, 400), (250, 600), None])
    monitor = CoreMonitor(lambda: next(samples), cores=2, clock=lambda: now[0])
    assert monitor.free()  # nothing known yet
    now[0] = 1.0
    assert monitor.free()  # 50 of 200 ticks idle: 0.5 core
    now[0] = 2.0
    assert not monitor.free()  # no idle tick: every core busy
    now[0] = 2.1
    assert not monitor.free()  # within the window: the last verdict, counters not read
    now[0] = 3.0
    assert not monitor.free()  # counters unchanged (no tick): the last verdict
    now[0] = 4.0
    assert monitor.free()  # 200 of 200 ticks idle
    now[0] = 5.0
    assert monitor.free()  # counters unreadable: assume a free core


def test_proc_stat_is_read_as_idle_and_total_ticks(tmp_path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 2 8 70 5 1 1 3 4 0\ncpu0 5 1 4 35 2 0 1 1 2 0\n")
    assert read_proc_stat(str(stat)) == (75.0, 100.0)
    assert read_proc_stat(str(tmp_path / "missing")) is None
