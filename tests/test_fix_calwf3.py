"""`survey fix --engine calwf3`: the recipe's orchestration with stand-in executables, CRDS
best references from a local cache, errors, and (where hstcal is installed) the real thing.

The stand-in ``calwf3.e``/``wf3ir.e`` (``STAND_IN`` below) is a Python script put on PATH. It
logs what it was handed, fails as calwf3 does when ``iref`` does not end with ``/`` or a
reference the header names is not there, and writes plausible products:

- on ``<root>_raw.fits`` it "calibrates" a RAW whose reads are already in e⁻/s (the simulated
  CRCORR=OMIT IMA in a RAW's header) by adding 0.1 e⁻/s to every read — as new reference files
  would change the sky — and writes ``<root>_ima.fits`` (CRCORR=OMIT) and ``<root>_flt.fits``;
- on an IMA it runs survey's own CRCORR port, so the products can be compared with the native
  engine's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from survey.errors import OutputExistsError
from survey.fit import archive_products
from survey.fix import calwf3 as calwf3_module
from survey.fix.exposure import FixError, FixParameters, fix_exposure
from survey.fix.methods import measure_skies
from survey.fix.sky import get_estimator
from survey.simulate import IBOHBFB9Q_HE, SceneConfig, exposure_spec, simulate_exposure
from survey.wfc3ir.fitsio import read_flt, read_ima, write_flt, write_ima

B = 5
SHIFT = 0.1  #: e⁻/s the stand-in's "RAW calibration" adds to every read


def _crds_helpers():
    """tests/test_crds.py's cache builder (tests are not a package: --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location(
        "_test_crds", Path(__file__).with_name("test_crds.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crds_helpers = _crds_helpers()

STAND_IN = r"""#!{python}
import json, os, sys, time
from pathlib import Path
from astropy.io import fits

name, args = Path(sys.argv[0]).name, sys.argv[1:]
target = Path(args[0])
with fits.open(target) as hdul:
    header = hdul[0].header.copy()
    has_8192 = any(((h.data.astype("int32") & 8192) != 0).any() for h in hdul
                   if h.name == "DQ" and h.data is not None)
iref = os.environ.get("iref", "")
refs = {{k: v for k, v in header.items() if isinstance(v, str) and v.startswith("iref$")}}
step = "raw" if target.name.endswith("_raw.fits") else "ima"
opens = {{"raw": ("CCDTAB", "OSCNTAB", "BPIXTAB", "DARKFILE", "NLINFILE", "PFLTFILE", "IMPHTTAB"),
         "ima": ("CCDTAB", "OSCNTAB", "CRREJTAB")}}[step]  # what calwf3 opens in that run
missing = sorted(k for k in opens if not os.path.isfile(iref + header.get(k, "iref$")[5:]))
record = dict(name=name, step=step, args=args, cwd=os.getcwd(), crcorr=header["CRCORR"],
              asn_tab=header.get("ASN_TAB"), iref=iref, refs=refs, missing=missing,
              has_8192=bool(has_8192))
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps(record) + "\n")
if os.environ.get("STAND_IN_SLEEP"):
    time.sleep(float(os.environ["STAND_IN_SLEEP"]))
if os.environ.get("STAND_IN_FAIL") == step:
    print("CALWF3 starting")
    print("ERROR:  CRREJTAB not found")
    print("some clean-up chatter", file=sys.stderr)
    sys.exit(2)
if not iref.endswith("/") or missing:
    print(f"ERROR:  cannot open reference file(s) {{missing}} with iref={{iref!r}}")
    sys.exit(2)
if os.environ.get("STAND_IN_NO_OUTPUT") == step:
    sys.exit(0)
if step == "raw":
    root = target.name.removesuffix("_raw.fits")
    flt = Path(args[1]) if len(args) == 2 else Path(f"{{root}}_flt.fits")
    ima = flt.with_name(flt.name.replace("_flt", "_ima"))
    with fits.open(target) as hdul:
        for hdu in hdul:
            if hdu.name == "SCI" and hdu.header.get("SAMPTIME", 0) > 0:
                hdu.data = hdu.data + {shift}
        for key, value in list(hdul[0].header.items()):
            if key.endswith("CORR") and value == "PERFORM" and key != "CRCORR":
                hdul[0].header[key] = "COMPLETE"
        hdul.writeto(ima)
        fits.PrimaryHDU(header=hdul[0].header).writeto(flt)
else:
    from survey.fit import fit_exposure
    root = target.name.removesuffix(".fits")
    flt = Path(args[1]) if len(args) == 2 else Path(f"{{root}}_flt.fits")
    fit_exposure(target, flt, ima_out=flt.with_name(flt.name.replace("_flt", "_ima")))
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def exposure(tmp_path_factory):
    """An ibohbfb9q-like He I exposure (138², STEP200, 16 reads): archive IMA + FLT, and a
    RAW stand-in (the CRCORR=OMIT reads under a RAW's switches) beside them; plus the native
    engine's fix for comparison."""
    root = tmp_path_factory.mktemp("calwf3")
    spec = exposure_spec(size=138, zodi=0.47, seed=4, he=IBOHBFB9Q_HE)
    sim = simulate_exposure(spec, scene=SceneConfig(n_stars=60, n_galaxies=40))
    name = spec.rootname
    folder = root / "in"
    folder.mkdir()
    flagged, flt, _ = archive_products(sim.ramp)
    write_flt(flt, folder / f"{name}_flt.fits")
    ima = write_ima(flagged, folder / f"{name}_ima.fits")
    raw = write_ima(sim.ramp, folder / f"{name}_raw.fits")
    with fits.open(raw, mode="update") as hdul:
        for key in ("DQICORR", "ZSIGCORR", "DARKCORR", "NLINCORR", "FLATCORR", "PHOTCORR",
                    "CRCORR", "ZOFFCORR", "UNITCORR"):  # fmt: skip
            hdul[0].header[key] = "PERFORM"
        hdul[0].header["FILENAME"] = raw.name
    native = fix_exposure(ima, root / "native")
    return {"name": name, "ima": ima, "raw": raw, "dir": folder, "native": native,
            "hashes": {p.name: sha(p) for p in folder.iterdir()}}  # fmt: skip


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """Put stand-ins on PATH (all of the user's CRDS/iref setup removed); returns a function
    ``install(*names) -> read_log`` ."""
    for key in ("iref", "CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT", "STAND_IN_FAIL",
                "STAND_IN_SLEEP", "STAND_IN_NO_OUTPUT"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CRDS_MODE", "auto")  # crds' default, as importing it leaves it
    log = tmp_path / "stand_in.jsonl"
    monkeypatch.setenv("STAND_IN_LOG", str(log))

    def install(*names: str):
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        for name in names:
            exe = bindir / name
            exe.write_text(STAND_IN.format(python=sys.executable, shift=SHIFT))
            exe.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
        return lambda: [json.loads(line) for line in log.read_text().splitlines()]

    return install


@pytest.fixture
def crds_cache(tmp_path, monkeypatch) -> Path:
    cache = crds_helpers.build_crds_cache(tmp_path / "crds_cache")
    crds_helpers.use_crds_cache(monkeypatch, cache)
    return cache


def iref_dir(tmp_path: Path, header_path: Path) -> Path:
    """A user-made $iref directory holding every file the header names."""
    folder = tmp_path / "iref"
    folder.mkdir()
    for value in fits.getheader(header_path).values():
        if isinstance(value, str) and value.startswith("iref$"):
            (folder / value[5:]).write_bytes(b"ref")
    return folder


def inputs_untouched(exposure) -> bool:
    return {p.name: sha(p) for p in exposure["dir"].iterdir()} == exposure["hashes"]


def sky_median(flt) -> float:
    good = (flt.dq & 0x3FFF) == 0
    return float(np.median(flt.sci[good]))


# -- the RAW recipe ---------------------------------------------------------------------------


def test_raw_recipe_with_crds_best_references(exposure, stand_in, crds_cache, tmp_path):
    read_log = stand_in("calwf3.e", "wf3ir.e")
    out = tmp_path / "out"
    result = fix_exposure(exposure["ima"], out, FixParameters(engine="calwf3"))
    name = exposure["name"]
    raw_run, ima_run = read_log()
    wfc3 = crds_cache / "references" / "hst" / "wfc3"
    # 1-2: calwf3.e on a copy of the RAW, CRCORR=OMIT, CRDS's best references as iref$names
    assert raw_run["name"] == "calwf3.e" and raw_run["args"] == [f"{name}_raw.fits"]
    assert raw_run["crcorr"] == "OMIT" and raw_run["asn_tab"] == f"{name}_raw.fits"
    assert raw_run["iref"] == f"{wfc3}/" and raw_run["missing"] == []
    assert raw_run["refs"]["DARKFILE"] == "iref$x3c0000ci_drk.fits"  # STEP200 SQ128SUB
    assert raw_run["refs"]["PFLTFILE"] == "iref$4ac19225i_pfl.fits"
    assert Path(raw_run["cwd"]).parent.parent == out  # private work dir inside OUT
    # 3-4: the flattened IMA, CRCORR=PERFORM, through wf3ir.e
    assert ima_run["name"] == "wf3ir.e" and ima_run["step"] == "ima"
    assert ima_run["crcorr"] == "PERFORM" and not ima_run["has_8192"]
    assert ima_run["refs"]["CRREJTAB"] == "iref$u6a1748ri_crr.fits" and ima_run["missing"] == []
    # outputs under the native names, nothing else left; inputs byte-identical
    assert sorted(p.name for p in out.iterdir()) == [f"{name}_flt.fits", f"{name}_ima.fits"]
    assert inputs_untouched(exposure)
    # the skies were measured on the RAW run's IMA (+0.1 e-/s everywhere), not the archive's
    native = exposure["native"]
    assert result.level == pytest.approx(native.level + SHIFT, abs=2e-3)
    shifted = read_ima(exposure["raw"])
    shifted.sci[1:] = (shifted.sci[1:] + SHIFT).astype(np.float32)
    expected = measure_skies(shifted, get_estimator("masked"))
    assert np.allclose(result.sky[1:], expected.sky[1:], rtol=0, atol=1e-5)
    flt = read_flt(result.flt_out)
    assert sky_median(flt) == pytest.approx(sky_median(read_flt(native.flt_out)) + SHIFT, abs=5e-3)
    assert flt.primary["FIXINPUT"] == "raw" and flt.primary["CRDS_CTX"] == "hst_0001.pmap"
    history = "\n".join(str(h) for h in flt.primary["HISTORY"])
    assert "input raw" in history and "CRDS hst_0001.pmap" in history
    assert "DARKFILE = iref$" in history and "underestimated" in history
    parameters = json.loads(result.row()["parameters"])
    assert parameters["calwf3_input"] == "raw" and parameters["crds_context"] == "hst_0001.pmap"
    with fits.open(result.flt_out) as hdul:
        table = hdul["FIXREADS"].data
        assert np.allclose(table["SKY"][1:], expected.sky[1:], rtol=0, atol=1e-5)


def test_archive_ima_path_needs_only_three_tables(exposure, stand_in, crds_cache, tmp_path):
    """Without the RAW (or --calwf3-input ima), the 303-MB dark is neither needed nor fetched."""
    (crds_cache / "references" / "hst" / "wfc3" / "x3c0000ci_drk.fits").unlink()
    read_log = stand_in("wf3ir.e")
    params = FixParameters(engine="calwf3", calwf3_input="ima")
    result = fix_exposure(exposure["ima"], tmp_path / "out", params)
    (run,) = read_log()
    assert run["step"] == "ima" and run["crcorr"] == "PERFORM" and not run["has_8192"]
    assert {k: run["refs"][k] for k in ("CCDTAB", "OSCNTAB", "CRREJTAB")} == {
        "CCDTAB": "iref$t2c16200i_ccd.fits",
        "OSCNTAB": "iref$q911321mi_osc.fits",
        "CRREJTAB": "iref$u6a1748ri_crr.fits",
    }
    assert result.level == pytest.approx(exposure["native"].level, abs=1e-6)  # same skies
    flt = read_flt(result.flt_out)
    assert flt.primary["FIXINPUT"] == "archive-ima"
    assert np.allclose(
        flt.sci, read_flt(exposure["native"].flt_out).sci, atol=1e-4, equal_nan=True
    )  # fmt: skip  (the stand-in runs the same port)
    assert json.loads(result.row()["parameters"])["calwf3_input"] == "archive-ima"
    assert inputs_untouched(exposure)


@pytest.mark.parametrize("names", [("wf3ir.e",), ("calwf3.e",)])
def test_either_executable_alone_with_iref(exposure, stand_in, tmp_path, monkeypatch, names):
    """$iref given by the user (no CRDS): header names kept, ``iref`` handed on with its '/'."""
    read_log = stand_in(*names)
    monkeypatch.setenv("iref", str(iref_dir(tmp_path, exposure["raw"])))  # no trailing '/'
    result = fix_exposure(exposure["ima"], tmp_path / "out", FixParameters(engine="calwf3"))
    raw_run, ima_run = read_log()
    name = exposure["name"]
    assert all(run["iref"] == f"{tmp_path / 'iref'}/" for run in (raw_run, ima_run))
    assert raw_run["refs"]["DARKFILE"] == fits.getval(exposure["raw"], "DARKFILE")
    if names == ("wf3ir.e",):
        assert raw_run["args"] == [f"{name}_raw.fits", f"{name}_flt.fits"]
        assert len(ima_run["args"]) == 2 and ima_run["args"][1].endswith(f"{name}_flt.fits")
    else:
        assert raw_run["asn_tab"] == f"{name}_raw.fits"
        assert ima_run["args"] == [f"{name}_ima.fits"] and ima_run["asn_tab"] == f"{name}_ima.fits"
    assert read_flt(result.flt_out).primary["FIXINPUT"] == "raw"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{name}_flt.fits",
        f"{name}_ima.fits",
    ]


def test_gzipped_raw(exposure, stand_in, tmp_path, monkeypatch):
    import gzip

    read_log = stand_in("calwf3.e", "wf3ir.e")
    monkeypatch.setenv("iref", f"{iref_dir(tmp_path, exposure['raw'])}/")
    folder = tmp_path / "in"
    folder.mkdir()
    ima = Path(shutil.copy(exposure["ima"], folder))
    raw = folder / f"{exposure['raw'].name}.gz"
    raw.write_bytes(gzip.compress(exposure["raw"].read_bytes()))
    before = sha(raw)
    result = fix_exposure(ima, tmp_path / "out", FixParameters(engine="calwf3"))
    assert [run["step"] for run in read_log()] == ["raw", "ima"]
    assert read_flt(result.flt_out).primary["FIXINPUT"] == "raw" and sha(raw) == before


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["raw", "ima"])
def test_calwf3_failure_is_one_line_and_leaves_nothing(exposure, stand_in, crds_cache,
                                                       tmp_path, monkeypatch, step):  # fmt: skip
    stand_in("calwf3.e", "wf3ir.e")
    monkeypatch.setenv("STAND_IN_FAIL", step)
    out = tmp_path / "out"
    target = f"{exposure['name']}_{step}.fits"
    kind = "calwf3.e" if step == "raw" else "wf3ir.e"
    with pytest.raises(FixError) as info:
        fix_exposure(exposure["ima"], out, FixParameters(engine="calwf3"))
    assert str(info.value) == f"{kind} failed on {target} (exit 2): ERROR:  CRREJTAB not found"
    assert list(out.iterdir()) == []  # work directory removed, nothing written
    assert inputs_untouched(exposure)


def test_timeout_and_missing_outputs(exposure, stand_in, crds_cache, tmp_path, monkeypatch):
    stand_in("calwf3.e", "wf3ir.e")
    monkeypatch.setattr(calwf3_module, "TIMEOUT_S", 1)
    monkeypatch.setenv("STAND_IN_SLEEP", "3")
    with pytest.raises(FixError, match=r"calwf3\.e on \w+_raw\.fits did not finish in 1 s"):
        fix_exposure(exposure["ima"], tmp_path / "a", FixParameters(engine="calwf3"))
    monkeypatch.delenv("STAND_IN_SLEEP")
    monkeypatch.setattr(calwf3_module, "TIMEOUT_S", 600)
    monkeypatch.setenv("STAND_IN_NO_OUTPUT", "ima")
    with pytest.raises(FixError, match=r"^wf3ir\.e finished but wrote no \w+_flt\.fits$"):
        fix_exposure(exposure["ima"], tmp_path / "b", FixParameters(engine="calwf3"))
    assert list((tmp_path / "a").iterdir()) == list((tmp_path / "b").iterdir()) == []


def test_offline_crds_without_the_dark_is_one_clear_line(exposure, stand_in, crds_cache,
                                                         tmp_path):  # fmt: skip
    (crds_cache / "references" / "hst" / "wfc3" / "x3c0000ci_drk.fits").unlink()
    read_log = stand_in("calwf3.e", "wf3ir.e")
    with pytest.raises(FixError) as info:
        fix_exposure(exposure["ima"], tmp_path / "out", FixParameters(engine="calwf3"))
    message = str(info.value)
    assert message.startswith(
        f"CRDS: no cached reference for DARKFILE (x3c0000ci_drk.fits) of {exposure['name']}"
    )
    assert "\n" not in message and "CRDS_PATH" in message
    assert not (tmp_path / "stand_in.jsonl").exists() or read_log() == []  # calwf3 never ran
    assert list((tmp_path / "out").iterdir()) == [] and inputs_untouched(exposure)


def test_without_hstcal_a_clear_message(exposure, stand_in, tmp_path, monkeypatch):
    stand_in()
    with pytest.raises(FixError, match=r"needs calwf3\.e or wf3ir\.e on PATH .* --engine native"):
        fix_exposure(exposure["ima"], tmp_path / "out", FixParameters(engine="calwf3"))
    assert not (tmp_path / "out").exists()


def test_no_references_configured_and_no_raw(exposure, stand_in, tmp_path):
    stand_in("wf3ir.e")
    with pytest.raises(FixError, match=r"needs \$iref .* or CRDS \(set CRDS_SERVER_URL"):
        fix_exposure(exposure["ima"], tmp_path / "out", FixParameters(engine="calwf3"))
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(exposure["ima"], lonely / exposure["ima"].name)
    params = FixParameters(engine="calwf3", calwf3_input="raw")
    with pytest.raises(FixError, match=r"--calwf3-input raw, but no \w+_raw\.fits beside it"):
        fix_exposure(lonely / exposure["ima"].name, tmp_path / "out", params)
    with pytest.raises(FixError, match="unknown calwf3_input 'fits'"):
        FixParameters(engine="calwf3", calwf3_input="fits")


def test_existing_outputs_are_kept(exposure, stand_in, crds_cache, tmp_path):
    """Same parameters: skipped; other parameters: refused without --overwrite."""
    stand_in("calwf3.e", "wf3ir.e")
    out = tmp_path / "out"
    fix_exposure(exposure["ima"], out, FixParameters(engine="calwf3"))
    before = {p.name: sha(p) for p in out.iterdir()}
    again = fix_exposure(exposure["ima"], out, FixParameters(engine="calwf3"))
    assert again.status == "skipped"
    with pytest.raises(OutputExistsError):
        fix_exposure(exposure["ima"], out, FixParameters(engine="calwf3", calwf3_input="ima"))
    assert {p.name: sha(p) for p in out.iterdir()} == before


def test_command_line(exposure, stand_in, crds_cache, tmp_path):
    """`survey fix --engine calwf3` on a scanned catalog: the RAW beside the IMA is used, the
    `fixes` row says which path ran; a bad option value is a usage error."""
    import duckdb
    from click.testing import CliRunner

    from survey.cli import SurveyGroup
    from survey.fix.command import fix
    from survey.scan import scan_paths

    stand_in("calwf3.e", "wf3ir.e")
    catalog = tmp_path / "survey.duckdb"
    scan_paths([exposure["dir"]], catalog=catalog, jobs=1)
    cli = SurveyGroup(name="survey", commands={"fix": fix})
    args = ["fix", exposure["name"], "--engine", "calwf3", "--method", "flatten", "--catalog",
            str(catalog)]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(catalog), read_only=True) as con:
        (parameters,) = con.execute("select parameters from fixes").fetchone()
    assert json.loads(parameters)["calwf3_input"] == "raw", (result.output, parameters)
    result = CliRunner().invoke(cli, [*args, "--refs", "cdbs"])
    assert result.exit_code == 2 and "Invalid value for '--refs'" in result.output
    assert inputs_untouched(exposure)


# -- re-run digest ----------------------------------------------------------------------------


def test_a_new_release_redoes_what_an_older_one_fixed(exposure, tmp_path, monkeypatch):
    import survey.fix.exposure as exposure_module

    out = tmp_path / "out"
    old_digest = fix_exposure(exposure["ima"], out).params.digest()
    assert fix_exposure(exposure["ima"], out).status == "skipped"
    monkeypatch.setattr(exposure_module, "__version__", "99.0.0")
    assert FixParameters().digest() != old_digest
    with pytest.raises(OutputExistsError):  # not silently skipped: made by another version
        fix_exposure(exposure["ima"], out)
    assert fix_exposure(exposure["ima"], out, overwrite=True).status == "fixed"
    assert fits.getval(out / f"{exposure['name']}_flt.fits", "FIXDIGST") == FixParameters().digest()


# -- the real hstcal -------------------------------------------------------------------------


@pytest.mark.calwf3
@pytest.mark.skipif(
    shutil.which("wf3ir.e") is None or not (os.environ.get("iref") or os.environ.get("CRDS_PATH")),  # noqa: SIM112
    reason="needs hstcal's wf3ir.e on PATH and $iref or a CRDS cache with the IR references",
)
def test_real_calwf3_engine(exposure, tmp_path):
    """hstcal's own CRCORR on the flattened archive IMA: the same sky as the native engine."""
    params = FixParameters(engine="calwf3", calwf3_input="ima")
    result = fix_exposure(exposure["ima"], tmp_path, params)
    flt = read_flt(result.flt_out)
    assert sky_median(flt) == pytest.approx(result.level, abs=0.005)


# -- pop-reads ERR ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("popped", "extra_reads"),
    [({3}, 1), ({3, 4}, 1), ({1}, 0), ({1, 2}, 0), ({2, 6}, 2)],
)
def test_pop_reads_err_is_propagated(exposure, popped, extra_reads):
    """Hand-computed: with ERR_k = sqrt(R² + λ t_k)/t_k (R = 20 e⁻ CDS, λ = 2 e⁻/s), the popped
    ramp's counts C'_j keep the Poisson variance λ t'_j of the kept time only and gain R² per
    popped run not starting at interval 1 (reads a−1 and b enter the difference)."""
    from survey.fix.methods import pop_reads

    ramp = read_ima(exposure["raw"])
    for amp in "ABCD":
        ramp.primary[f"READNSE{amp}"] = 20.0
    t = ramp.samptime.astype(np.float64)
    lam, r2 = 2.0, 400.0
    err = np.sqrt(r2 + lam * t[1:]) / t[1:]
    ramp.err = np.concatenate([ramp.err[:1], np.broadcast_to(
        err[:, None, None], (ramp.nsamp - 1, *ramp.shape))]).astype(np.float32)  # fmt: skip
    mask = np.zeros(ramp.nsamp, dtype=bool)
    mask[list(popped)] = True
    out = pop_reads(ramp, mask)
    lost = np.cumsum(np.where(mask, ramp.deltatim, 0.0))
    kept = np.flatnonzero(~mask)
    for j_new, j in enumerate(kept[1:], start=1):
        runs_before = extra_reads if j > max(popped) else (1 if j > min(popped) > 1 else 0)
        t_new = t[j] - lost[j]
        expected = np.sqrt(r2 + lam * t_new + runs_before * r2) / t_new
        assert out.samptime[j_new] == pytest.approx(t_new, abs=1e-5)
        assert np.allclose(out.err[j_new], expected, rtol=2e-6), (j, expected)
