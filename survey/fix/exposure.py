"""Fix one exposure: read the IMA (never modified), correct, fit, write FLT and IMA to OUT.

Outputs are ``OUT/<rootname>_ima.fits`` (the corrected reads, with this fit's CR flags) and
``OUT/<rootname>_flt.fits``. Both carry the extension ``FIXREADS`` (one row per read: time,
sky, applied offset, popped flag), the keywords ``FIXMETH FIXENGIN FIXSKY FIXREGN FIXDIGST``
(+ ``SURVEYV``) and HISTORY lines. The IMA is written first and the FLT last, each atomically:
an FLT whose ``FIXDIGST`` matches the parameters means the exposure is done; an IMA left
without its FLT by a killed run is simply written again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from .. import __version__
from ..atomic import atomic_output
from ..errors import InputFileError, OutputExistsError, SurveyError
from ..fit import flt_sci_header
from ..provenance import stamp_header
from ..skystats import sky_statistics
from ..wfc3ir.dq import SDQFLAGS, SKY_BAD_BITS
from ..wfc3ir.fitsio import FLTImage, read_flt, read_ima, safe_rootname, write_flt, write_ima
from ..wfc3ir.model import Ramp
from .methods import (
    exposure_source_mask,
    flatten_ramp,
    last_minus_first,
    lr_excess,
    measure_skies,
    pop_reads,
    popped_reads,
)
from .sky import get_estimator, parse_region

__all__ = [
    "ENGINES",
    "FLT_SKY_KEYS",
    "METHODS",
    "FixError",
    "FixParameters",
    "FixRefusedError",
    "FixResult",
    "fix_exposure",
    "flt_sky_stats",
    "output_paths",
]

METHODS = ("flatten", "pop-reads", "last-minus-first")
#: Sky statistics stored per FLT as ``fixes.before_<key>``/``after_<key>`` (sql/README.md).
FLT_SKY_KEYS = ("median", "sigma", "bimodality", "npix", "mean", "std")
ENGINES = ("native", "calwf3")


class FixError(SurveyError):
    """An exposure cannot be fixed (bad input, bad option, unavailable engine)."""


class FixRefusedError(FixError):
    """The method does not apply to this exposure (grism, spatial scan, …); says why."""


@dataclass(frozen=True, kw_only=True)
class FixParameters:
    """What a fix does; :meth:`digest` identifies outputs made with the same parameters."""

    method: str = "flatten"
    engine: str = "native"
    sky: str = "masked"
    region: str | None = None
    lr_threshold: float = 0.1  #: e⁻/s, pop-reads: L − R of a scattered-light interval
    lr_ratio: float = 1.1  #: pop-reads: L / R of a scattered-light interval
    calwf3_input: str = "auto"  #: engine calwf3: ``raw`` (the recipe), ``ima`` or ``auto``
    references: str = "auto"  #: engine calwf3: ``crds``, ``iref`` or ``auto``

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise FixError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.engine not in ENGINES:
            raise FixError(f"unknown engine {self.engine!r}; choose from {', '.join(ENGINES)}")
        for name, value, allowed in (
            ("calwf3_input", self.calwf3_input, ("auto", "raw", "ima")),
            ("references", self.references, ("auto", "crds", "iref")),
        ):
            if value not in allowed:
                raise FixError(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")
        get_estimator(self.sky)
        region = parse_region(self.region)
        object.__setattr__(self, "region", str(region) if region else None)

    def digest(self) -> str:
        """Parameters and tool version: a new release redoes what an older one fixed."""
        text = json.dumps({**asdict(self), "survey_version": __version__}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class FixResult:
    """What :func:`fix_exposure` did (one row of the catalog's ``fixes`` table)."""

    rootname: str
    status: str  #: fixed, skipped (done before with the same parameters), refused, failed
    params: FixParameters
    ima_in: str
    message: str = ""
    flt_out: str | None = None
    ima_out: str | None = None
    read_times: list[float] = field(default_factory=list)
    sky: list[float] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)
    popped: list[bool] = field(default_factory=list)
    level: float | None = None
    exptime: float | None = None
    before: dict[str, float | None] = field(default_factory=dict)
    after: dict[str, float | None] = field(default_factory=dict)
    #: sky histograms and PNG cutouts for the report (``fix_images`` columns, see
    #: :func:`survey.report.images.fix_images`); empty when there is no usable sky
    images: dict[str, object] = field(default_factory=dict)
    #: what the run resolved, added to the ``parameters`` JSON (engine calwf3:
    #: ``calwf3_input`` = raw | archive-ima, ``crds_context``)
    resolved: dict[str, object] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        p = self.params
        row = {
            "rootname": self.rootname, "status": self.status, "message": self.message or None,
            "method": p.method, "engine": p.engine, "sky_estimator": p.sky, "region": p.region,
            "parameters": json.dumps({**asdict(p), **self.resolved}, sort_keys=True),
            "params_digest": p.digest(),
            "ima_in": self.ima_in, "flt_out": self.flt_out, "ima_out": self.ima_out,
            "sky_level": self.level, "exptime": self.exptime,
            "n_popped": int(sum(self.popped)) if self.popped else None,
            "read_times": self.read_times or None, "read_sky": self.sky or None,
            "read_offsets": self.offsets or None, "read_popped": self.popped or None,
        }  # fmt: skip
        for when, stats in (("before", self.before), ("after", self.after)):
            for key in FLT_SKY_KEYS:
                row[f"{when}_{key}"] = stats.get(key)
        row.update(self.images)  # split off into `fix_images` by survey.fix.catalog.write_fix
        return row


def output_paths(out_dir: str | Path, rootname: str) -> tuple[Path, Path]:
    """(FLT, IMA) written for ``rootname`` in ``out_dir``."""
    out = Path(out_dir)
    return out / f"{rootname}_flt.fits", out / f"{rootname}_ima.fits"


def _digest_of(path: Path) -> str | None:
    try:
        return str(fits.getval(path, "FIXDIGST"))
    except (OSError, KeyError, IndexError):
        return None


def _check_outputs(ima: Path, flt_out: Path, ima_out: Path, digest: str, overwrite: bool) -> bool:
    """True if already done with these parameters; raises if an output may not be replaced."""
    for out in (flt_out, ima_out):
        if out.resolve().parent == ima.resolve().parent:
            raise FixError(f"{out}: refusing to write beside the inputs; choose another --out")
    done = flt_out.exists() and ima_out.exists() and not overwrite
    if done and _digest_of(flt_out) == digest and _digest_of(ima_out) == digest:
        return True
    if overwrite:
        return False
    if flt_out.exists():
        raise OutputExistsError(flt_out)
    if ima_out.exists() and _digest_of(ima_out) != digest:  # ours, left by a killed run: redo
        raise OutputExistsError(ima_out)
    return False


def _clean_stale_temporaries(out_dir: Path, names: tuple[str, ...]) -> None:
    """Remove temporaries a killed run left (``.<name>.<random>.tmp.fits``)."""
    for name in names:
        for stale in out_dir.glob(f".{name}.*.tmp*"):
            stale.unlink(missing_ok=True)


def _check_input(ramp: Ramp, path: Path) -> None:
    meta = ramp.meta
    if meta.bunit.upper() not in ("ELECTRONS/S", "COUNTS/S"):
        raise InputFileError(path, f"BUNIT {meta.bunit!r} is not a rate; expected an IMA")
    if ramp.nsamp < 3:
        raise InputFileError(path, f"NSAMP={ramp.nsamp}: too few reads to fix")


def _refusal(ramp: Ramp, params: FixParameters) -> str | None:
    meta = ramp.meta
    if params.method == "flatten" and meta.is_grism:
        return (
            "grism: the He I/zodi mix changes from read to read, so a per-read scalar cannot "
            "flatten a dispersed background (domain reference §6)"
        )
    if params.method != "last-minus-first" and meta.is_spatial_scan:
        return "spatial scan: sources move along the ramp"
    return None


def flt_sky_stats(
    sci: np.ndarray, dq: np.ndarray, sources: np.ndarray | None
) -> dict[str, float | None]:
    """:func:`survey.skystats.sky_statistics` of an FLT's sky pixels (finite, DQ-good, outside
    ``sources``): clipped median, robust σ, bimodality, and the notebook's mean and std within
    median ± 0.5 e⁻/s."""
    bad = ((dq & SKY_BAD_BITS) != 0) | ~np.isfinite(sci)
    if sources is not None and sources.shape == sci.shape:
        bad |= sources
    return sky_statistics(sci[~bad])


def _fit(ramp: Ramp):
    from ..fit import FitParameters, fit_ramp

    return fit_ramp(ramp, FitParameters())


@dataclass
class _Corrected:
    flt: FLTImage
    ima: Ramp
    popped: np.ndarray
    offsets: np.ndarray
    notes: list[str]


def _apply(ramp: Ramp, params: FixParameters, plan) -> _Corrected:
    """Run the method on the ramp: the FLT and the IMA (corrected reads) to write."""
    zeros = np.zeros(ramp.nsamp)
    none_popped = np.zeros(ramp.nsamp, dtype=bool)
    if params.method == "flatten":
        fixed = flatten_ramp(ramp, plan)
        products = _fit(fixed)
        ima = replace(fixed, dq=products.ima_dq, primary=fixed.primary.copy())
        notes = [f"flatten: SCI_k += M - m_k, M = {plan.level:.6g} e-/s (last read)"]
        return _Corrected(products.flt, ima, none_popped, plan.offset, notes)
    if params.method == "pop-reads":
        lefts, rights = lr_excess(ramp, plan.sources)
        popped = popped_reads(lefts, rights, threshold=params.lr_threshold, ratio=params.lr_ratio)
        short = pop_reads(ramp, popped) if popped.any() else ramp
        products = _fit(short)
        ima = replace(short, dq=products.ima_dq, primary=short.primary.copy())
        lost = float(np.sum(ramp.deltatim[popped]))
        notes = [
            f"pop-reads: intervals {list(map(int, np.flatnonzero(popped)))} removed "
            f"(L - R > {params.lr_threshold:g} e-/s and L/R > {params.lr_ratio:g}); "
            f"EXPTIME reduced by {lost:.3f} s"
        ]
        return _Corrected(products.flt, ima, popped, zeros, notes)
    lmf = last_minus_first(ramp)
    flt = FLTImage(
        lmf.sci, lmf.err, lmf.dq, lmf.samp, lmf.time, ramp.primary.copy(), flt_sci_header(ramp)
    )
    notes = [
        "last-minus-first: (C_last - C_0)/dt per pixel, last unsaturated read",
        "cosmic rays NOT removed: left for AstroDrizzle (needs dithered exposures)",
    ]
    return _Corrected(flt, ramp, none_popped, zeros, notes)


def _stamp(header: fits.Header, params: FixParameters, provenance: dict, notes: list[str]):
    stamp_header(header, "fix", provenance)
    for note in notes:
        header.add_history(note)
    header["FIXMETH"] = (params.method, "survey fix: method")
    header["FIXENGIN"] = (params.engine, "survey fix: engine")
    header["FIXSKY"] = (params.sky, "survey fix: per-read sky estimator")
    header["FIXREGN"] = (params.region or "science", "survey fix: sky region X1:X2,Y1:Y2")
    header["FIXDIGST"] = (params.digest(), "survey fix: digest of the parameters")


def _read_table(ramp: Ramp, plan, offsets, popped) -> fits.BinTableHDU:
    columns = [
        fits.Column(name="READ", format="J", array=np.arange(ramp.nsamp)),
        fits.Column(name="SAMPTIME", format="D", unit="s", array=ramp.samptime),
        fits.Column(name="SKY", format="D", unit="electron/s", array=plan.sky),
        fits.Column(name="OFFSET", format="D", unit="electron/s", array=offsets),
        fits.Column(name="POPPED", format="L", array=popped),
    ]
    return fits.BinTableHDU.from_columns(columns, name="FIXREADS")


def _write_with_table(write, image, path: Path, table: fits.BinTableHDU, overwrite: bool):
    """Write with ``write`` (write_flt/write_ima) plus the table, atomically under ``path``.

    The table is appended to the finished temporary file and the primary header's NEXTEND and
    FILENAME cards are rewritten in place (same 80 bytes), so nothing else is rewritten.
    """
    with atomic_output(path, overwrite=overwrite) as tmp:
        write(image, tmp)
        with open(tmp, "ab") as stream:
            stream.write(_hdu_bytes(table))
        with fits.open(tmp, lazy_load_hdus=False) as hdul:
            nextend = len(hdul) - 1
        _patch_cards(tmp, {"NEXTEND": nextend, "FILENAME": path.name})


def _hdu_bytes(hdu: fits.BinTableHDU) -> bytes:
    """The bytes of an extension HDU as it sits in a file (header + padded data)."""
    import io

    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    data = buffer.getvalue()
    return data[len(fits.PrimaryHDU().header.tostring()) :]


def _patch_cards(path: Path, values: dict[str, object]) -> None:
    """Rewrite existing primary-header cards in place (each stays 80 bytes)."""
    with open(path, "r+b") as stream:
        offset = 0
        while True:
            card = stream.read(80)
            if len(card) < 80 or card.startswith(b"END     "):
                break
            key = card[:8].decode("ascii").strip()
            if key in values:
                old = fits.Card.fromstring(card.decode("ascii"))
                new = fits.Card(key, values[key], old.comment).image.encode("ascii")
                stream.seek(offset)
                stream.write(new[:80])
            offset += 80
            stream.seek(offset)


def _finish_flt(corrected: _Corrected, params: FixParameters, provenance: dict) -> None:
    from ..fit import flt_statistics

    flt = corrected.flt
    if params.method != "last-minus-first":
        flt.primary["CRCORR"] = "COMPLETE"
    else:
        flt.primary["CRCORR"] = ("OMIT", "cosmic rays not removed (last-minus-first)")
    _stamp(flt.primary, params, provenance, corrected.notes)
    for key, value in flt_statistics(flt.sci, flt.err, flt.dq).items():
        flt.sci_header[key] = value
    flt.sci_header["SDQFLAGS"] = (SDQFLAGS, "serious data quality flags")
    if corrected.popped.any():
        flt.primary["NPOP"] = (int(corrected.popped.sum()), "survey fix: read intervals popped")
        flt.primary["POPREADS"] = (
            " ".join(str(int(k)) for k in np.flatnonzero(corrected.popped)),
            "survey fix: popped intervals (time order)",
        )


def find_archive_flt(ima: Path) -> Path | None:
    """The archive FLT beside the IMA (``<stem>_flt.fits[.gz]``), if any."""
    stem = ima.name.split(".")[0]
    stem = stem[: -len("_ima")] if stem.endswith("_ima") else stem
    for suffix in (".fits", ".fits.gz"):
        candidate = ima.with_name(f"{stem}_flt{suffix}")
        if candidate.exists():
            return candidate
    return None


def fix_exposure(
    ima: str | Path,
    out_dir: str | Path,
    params: FixParameters = FixParameters(),
    *,
    overwrite: bool = False,
    archive_flt: str | Path | None = None,
) -> FixResult:
    """Fix one IMA into ``out_dir`` (see the module docstring). Raises :class:`FixRefusedError`
    when the method does not apply, :class:`SurveyError` for bad inputs or outputs."""
    ima, out_dir = Path(ima), Path(out_dir)
    if params.engine == "calwf3":
        _require_calwf3()
    rootname = _rootname(ima)  # names output files: validated, never raw header text
    flt_out, ima_out = output_paths(out_dir, rootname)
    result = FixResult(rootname, "fixed", params, str(ima), flt_out=str(flt_out),
                       ima_out=str(ima_out))  # fmt: skip
    if _check_outputs(ima, flt_out, ima_out, params.digest(), overwrite):
        result.status, result.message = "skipped", "already fixed with these parameters"
        return result
    ramp = read_ima(ima)
    _check_input(ramp, ima)
    reason = _refusal(ramp, params)
    if reason:
        raise FixRefusedError(f"{rootname}: {params.method} refused: {reason}")
    if params.engine == "calwf3" and params.method != "flatten":
        raise FixError(f"engine calwf3 runs flatten only; use --engine native for {params.method}")
    plan = measure_skies(ramp, get_estimator(params.sky), parse_region(params.region))
    if plan.sources is None:
        plan = plan._replace(sources=exposure_source_mask(ramp))
    if params.engine == "calwf3":
        corrected, plan = _run_calwf3(ima, ramp, plan, params, out_dir, result)
    else:
        corrected = _apply(ramp, params, plan)
    provenance = {"input": ima.name, **asdict(params), **result.resolved,
                  "sky_level": round(plan.level, 6)}  # fmt: skip
    _finish_flt(corrected, params, provenance)
    corrected.ima.primary["CRCORR"] = corrected.flt.primary["CRCORR"]
    _stamp(corrected.ima.primary, params, provenance, corrected.notes)
    table = _read_table(ramp, plan, corrected.offsets, corrected.popped)

    out_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale_temporaries(out_dir, (flt_out.name, ima_out.name))
    _write_with_table(write_ima, corrected.ima, ima_out, table, overwrite=True)
    _write_with_table(write_flt, corrected.flt, flt_out, table, overwrite=overwrite)

    result.read_times = [float(t) for t in ramp.samptime]
    result.sky = [None if not np.isfinite(v) else float(v) for v in plan.sky]
    result.offsets = [float(v) for v in corrected.offsets]
    result.popped = [bool(v) for v in corrected.popped]
    result.level = plan.level
    result.exptime = float(corrected.flt.primary.get("EXPTIME", np.nan))
    result.after = flt_sky_stats(corrected.flt.sci, corrected.flt.dq, plan.sources)
    archive = Path(archive_flt) if archive_flt else find_archive_flt(ima)
    before = None
    if archive is not None:
        try:
            before = read_flt(archive)
            result.before = flt_sky_stats(before.sci, before.dq, plan.sources)
        except SurveyError:
            before, result.before = None, {}
    result.images = _report_images(before, corrected.flt, plan.sources, result)
    return result


def _report_images(before: FLTImage | None, after: FLTImage, sources, result: FixResult):
    """Sky histograms and cutouts for ``survey report`` (same sky pixels as the stats)."""
    from ..report.images import fix_images

    def bad(flt: FLTImage) -> np.ndarray:
        mask = ((flt.dq & SKY_BAD_BITS) != 0) | ~np.isfinite(flt.sci)
        if sources is not None and sources.shape == flt.sci.shape:
            mask |= sources
        return mask

    return fix_images(
        None if before is None else before.sci, after.sci,
        None if before is None else bad(before), bad(after), result.before, result.after,
    )  # fmt: skip


def _rootname(ima: Path) -> str:
    if not ima.exists():
        raise InputFileError(ima, "no such file")
    try:
        value = fits.getval(ima, "ROOTNAME")
    except (OSError, KeyError, IndexError) as exc:
        raise InputFileError(ima, f"cannot read its ROOTNAME ({exc})") from None
    return safe_rootname(value, ima)


def _run_calwf3(ima: Path, ramp: Ramp, plan, params: FixParameters, out_dir: Path,
                result: FixResult):  # fmt: skip
    """Engine calwf3 (:mod:`survey.fix.calwf3`): its products and the skies it flattened."""
    from .calwf3 import flatten_with_calwf3

    run = flatten_with_calwf3(
        ima, ramp, plan, out_dir, result.rootname, estimator=get_estimator(params.sky),
        region=parse_region(params.region), calwf3_input=params.calwf3_input,
        references=params.references,
    )  # fmt: skip
    result.resolved = {"calwf3_input": run.input}
    if run.context:
        result.resolved["crds_context"] = run.context
    none = np.zeros(ramp.nsamp, dtype=bool)
    return _Corrected(run.flt, run.ima, none, run.plan.offset, run.notes), run.plan


def _require_calwf3() -> None:
    from .calwf3 import find_executable

    find_executable()
