"""FITS headers of a simulated IMA, laid out like real calwf3 products.

The card order, section titles and keyword set copy the real IMA ibxy01z8q and the FLT header
of ib4606cpq; the values come from the :class:`~survey.simulate.plan.ExposureSpec`. Nothing
reads the wall clock: DATE and PROCTIME are derived from the simulated observation, so the
same seed gives the same bytes.

Geometry decisions (domain reference §2):
- ``LTV1/2 = -(1024 - size)/2 + 5`` for a centred array of raw size ``size``: -374 for the
  266² subarray, as in the real ibxy01z8q, and +5 for full frame, which is what the FLT's
  ``LTV = 0`` implies once calwf3 subtracts the 5-px trim (the reference calls this
  unverified; it is the only value consistent with both facts).
- ``CRPIX = 507 + LTV`` (1-based IMA pixels) puts the IR aperture's reference point (FLT
  pixel 507, 507) at the same detector pixel for every size; grism apertures are offset by
  (-102, +20) like GRISM256 in ibxy01z8q (CRPIX 31, 153).
- The CD matrix uses the IR pixel scales (0.1355", 0.1211") and ORIENTAT = PA_V3 + 44.83°, both
  read off the real headers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from astropy.io import fits

from ..provenance import stamp_header
from ..wfc3ir.detector import AMP_GAIN, AMP_READNOISE_CDS, BORDER, FULL_FRAME
from ..wfc3ir.dq import SDQFLAGS
from .plan import PIXEL_SCALE, ExposureSpec

__all__ = ["aperture", "ltv", "primary_header", "read_header", "subtype"]

#: (PHOTFLAM erg/cm²/Å/e-, PHOTPLAM Å, PHOTBW Å) per filter; F105W/F110W from real headers,
#: others approximate (the IMPHTTAB is time-dependent anyway). Grisms carry no photometry.
PHOTOMETRY = {
    "F098M": (6.0502e-20, 9864.72, 469.2),
    "F105W": (3.0608668e-20, 10551.05, 845.6),
    "F110W": (1.5318e-20, 11534.459, 1428.4883),
    "F125W": (2.2483e-20, 12486.06, 866.2),
    "F140W": (1.4737e-20, 13922.91, 1132.4),
    "F160W": (1.9276e-20, 15369.18, 826.3),
    "G102": (0.0, 0.0, 0.0),
    "G141": (0.0, 0.0, 0.0),
}
#: Reference files of ibohbfb9q (domain reference §8), used for every exposure.
REFERENCE_FILES = (
    ("BPIXTAB", "iref$3562033hi_bpx.fits", "bad pixel table"),
    ("CCDTAB", "iref$t2c16200i_ccd.fits", "detector calibration parameters"),
    ("OSCNTAB", "iref$q911321mi_osc.fits", "detector overscan table"),
    ("CRREJTAB", "iref$u6a1748ri_crr.fits", "cosmic ray rejection parameters"),
    ("DARKFILE", "iref$35620245i_drk.fits", "dark image file name"),
    ("NLINFILE", "iref$u1k1727mi_lin.fits", "detector nonlinearities file"),
    ("PFLTFILE", "iref$4ac19225i_pfl.fits", "pixel to pixel flat field file name"),
    ("DFLTFILE", "iref$4ac18263i_dfl.fits", "delta flat field file name"),
    ("LFLTFILE", "N/A", "low order flat"),
    ("GRAPHTAB", "N/A", "the HST graph table"),
    ("COMPTAB", "N/A", "the HST components table"),
    ("IMPHTTAB", "iref$8ch15233i_imp.fits", "Image Photometry Table"),
    ("IDCTAB", "iref$w3m18525i_idc.fits", "image distortion correction table"),
    ("DGEOFILE", "N/A", "Distortion correction image"),
    ("MDRIZTAB", "iref$3562021pi_mdz.fits", "MultiDrizzle parameter table"),
    ("SATUFILE", "N/A", "saturation reference image"),
)
SWITCH_COMMENTS = (
    ("DQICORR", "data quality initialization"),
    ("ZSIGCORR", "Zero read signal correction"),
    ("ZOFFCORR", "subtract MULTIACCUM zero read"),
    ("DARKCORR", "Subtract dark image"),
    ("BLEVCORR", "subtract bias level computed from ref pixels"),
    ("NLINCORR", "correct for detector nonlinearities"),
    ("FLATCORR", "flat field data"),
    ("CRCORR", "identify cosmic ray hits"),
    ("UNITCORR", "convert to count rates"),
    ("PHOTCORR", "populate photometric header keywords"),
    ("RPTCORR", "combine individual repeat observations"),
    ("DRIZCORR", "drizzle processing"),
)
ORIENTAT_OFFSET = 44.83  # ORIENTAT - PA_V3 (deg) in ibxy01z8q
CAL_VER = "3.7.1 (Oct-18-2023)"
ORIGIN = "survey.simulate (HSTIO-like layout)"


def ltv(size: int) -> float:
    """IMA LTV1/2 of a centred array (see the module docstring for why full frame is +5)."""
    return -(FULL_FRAME - size) / 2 + BORDER


def subtype(size: int) -> str:
    return "FULLIMAG" if size == FULL_FRAME else f"SQ{size - 2 * BORDER}SUB"


def aperture(size: int, grism: bool) -> str:
    """APERTURE name: IR / IRSUB256 for imaging, GRISM1024 / GRISM256 for the grisms."""
    science = size - 2 * BORDER
    if grism:
        return f"GRISM{FULL_FRAME if size == FULL_FRAME else science}"
    return "IR" if size == FULL_FRAME else f"IRSUB{science}"


def _mjd_to_datetime(mjd: float) -> dt.datetime:
    return dt.datetime(1858, 11, 17) + dt.timedelta(days=float(mjd))


def _section(header: fits.Header, title: str, cards) -> None:
    """A blank line, an indented '/ TITLE' line and a blank line, as hstio writes them."""
    # add_blank would gather every blank card together; append keeps them in place
    for text in ("", f"      / {title}", ""):
        header.append(("", text), end=True)
    for card in cards:
        header.append(card, end=True)


def _identity_cards(spec: ExposureSpec) -> list:
    p = spec.pointing
    start = _mjd_to_datetime(spec.expstart)  # DATE-OBS/TIME-OBS from the simulated start
    return [
        ("SUNANGLE", p.sunangle, "angle between sun and V1 axis"),
        ("MOONANGL", p.moonangl, "angle between moon and V1 axis"),
        ("SUN_ALT", p.sun_alt, "altitude of the sun above Earth's limb"),
        ("FGSLOCK", "FINE", "commanded FGS lock (FINE,COARSE,GYROS,UNKNOWN)"),
        ("GYROMODE", "T", "number of gyros scheduled, T=3+OBAD"),
        ("REFFRAME", "ICRS", "guide star catalog version"),
        ("MTFLAG", " ", "moving target flag; T if it is a moving target"),
        ("DATE-OBS", start.strftime("%Y-%m-%d"), "UT date of start of observation (yyyy-mm-dd)"),
        ("TIME-OBS", start.strftime("%H:%M:%S"), "UT time of start of observation (hh:mm:ss)"),
        ("EXPSTART", spec.expstart, "exposure start time (Modified Julian Date)"),
        ("EXPEND", round(spec.expend, 8), "exposure end time (Modified Julian Date)"),
        ("EXPTIME", spec.exptime, "exposure duration (seconds)--calculated"),
        ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
        ("QUALCOM1", "", ""),
        ("QUALCOM2", "", ""),
        ("QUALCOM3", "", ""),
        ("QUALITY", "", ""),
    ]


def _configuration_cards(spec: ExposureSpec) -> list:
    return [
        ("OBSTYPE", "SPECTROSCOPIC" if spec.is_grism else "IMAGING",
         "observation type - imaging or spectroscopic"),
        ("OBSMODE", "MULTIACCUM", "operating mode"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", spec.size != FULL_FRAME, "data from a subarray (T) or full frame (F)"),
        ("SUBTYPE", subtype(spec.size), "Size/type of IR subarray"),
        ("DETECTOR", "IR", "detector in use: UVIS or IR"),
        ("FILTER", spec.filter, "element selected from filter wheel"),
        ("SAMP_SEQ", spec.samp_seq, "MultiAccum exposure time sequence name"),
        ("NSAMP", spec.nsamp, "number of MULTIACCUM samples"),
        ("SAMPZERO", spec.sampzero, "sample time of the zeroth read (sec)"),
        ("APERTURE", aperture(spec.size, spec.is_grism), "aperture name"),
        ("PROPAPER", "", "proposed aperture name"),
        ("DIRIMAGE", "NONE", "direct image for grism or prism exposure"),
    ]  # fmt: skip


def _scan_cards() -> list:
    return [
        ("SCAN_TYP", "N", "C:bostrophidon; D:C with dwell; N:N/A"),
        ("SCAN_WID", 0.0, "scan width (arcsec)"),
        ("ANG_SIDE", 0.0, "angle between sides of parallelogram (deg)"),
        ("DWELL_LN", 0, "dwell pts/line for scan pointing (1-99,0 if NA)"),
        ("DWELL_TM", 0.0, "wait time (duration) at each dwell point (sec)"),
        ("SCAN_ANG", 0.0, "position angle of scan line (deg)"),
        ("SCAN_RAT", 0.0, "commanded rate of the line scan (arcsec/sec)"),
        ("NO_LINES", 0, "number of lines per scan (1-99,0 if NA)"),
        ("SCAN_LEN", 0.0, "scan length (arcsec)"),
        ("SCAN_COR", "C", "scan coordinate frame of ref: celestial,vehicle"),
        ("CSMID", "IR", "Channel Select Mechanism ID"),
    ]


def _photometry_cards(filter_name: str) -> list:
    flam, plam, bw = PHOTOMETRY[filter_name]
    return [
        ("PHOTMODE", f"WFC3 IR {filter_name}", "Obser"),
        ("PHOTFLAM", flam, "Inverse sensitivity, ergs/cm2/A/e-"),
        ("PHOTFNU", 3.33564e4 * flam * plam**2, "Inverse sensitivity, Jy*sec/e-"),
        ("PHOTZPT", -21.1, "ST magnitude zero point"),
        ("PHOTPLAM", plam, "Pivot wavelength (Angstroms)"),
        ("PHOTBW", bw, "RMS bandwidth of filter plus detector"),
    ]


def _pattern_cards(spec: ExposureSpec) -> list:
    return [
        ("PATTERN1", "WFC3-IR-DITHER-BOX-MIN", "primary pattern type"),
        ("P1_SHAPE", "BOX", "primary pattern shape"),
        ("P1_PURPS", "DITHER", "primary pattern purpose"),
        ("P1_NPTS", 4, "number of points in primary pattern"),
        ("P1_PSPAC", 0.572, "point spacing for primary pattern (arc-sec)"),
        ("P1_LSPAC", 0.365, "line spacing for primary pattern (arc-sec)"),
        ("P1_ANGLE", 18.528, "angle between sides of parallelogram patt (deg)"),
        ("P1_FRAME", "POS-TARG", "coordinate frame of primary pattern"),
        ("P1_ORINT", 18.528, "orientation of pattern to coordinate frame (deg"),
        ("P1_CENTR", "NO", "center pattern relative to pointing (yes/no)"),
        ("PATTSTEP", spec.pointing.pattstep, "position number of this point in the pattern"),
    ]


def _engineering_cards() -> list:
    cards = [
        ("CCDAMP", "ABCD", "CCD Amplifier Readout Configuration"),
        ("CCDGAIN", 2.5, "commanded gain of CCD"),
        ("CCDOFSAB", 190, "commanded CCD bias offset for amps A&B"),
        ("CCDOFSCD", 190, "commanded CCD bias offset for amps C&D"),
    ]
    cards += [(f"ATODGN{a}", g, f"calibrated gain for amplifier {a}") for a, g in AMP_GAIN.items()]
    cards += [(f"READNSE{a}", r, f"calibrated read noise for amplifier {a}")
              for a, r in AMP_READNOISE_CDS.items()]  # fmt: skip
    cards += [(f"BIASLEV{a}", 0.0, f"bias level for amplifier {a}") for a in AMP_GAIN]
    return cards


def _switch_cards(spec: ExposureSpec) -> list:
    values = dict.fromkeys((k for k, _ in SWITCH_COMMENTS), "COMPLETE")
    values.update(CRCORR="OMIT", RPTCORR="OMIT", DRIZCORR=spec.drizcorr)
    return [(key, values[key], comment) for key, comment in SWITCH_COMMENTS]


#: Constant cards of real IMAs that the simulation has no use for, kept for fidelity.
_SAA_CARDS = [
    ("SAA_EXIT", "", "time of last exit from SAA contour level 23"),
    ("SAA_TIME", 0, "seconds since last exit from SAA contour 23"),
    ("SAA_DARK", "N/A", "association name for post-SAA dark exposures"),
    ("SAACRMAP", "N/A", "SAA cosmic ray map file"),
]
_CRREJ_CARDS = [
    ("MEANEXP", 0.0, "reference exposure time for parameters"),
    ("SCALENSE", 0.0, "multiplicative scale factor applied to noise"),
    ("INITGUES", "", "initial guess method (MIN or MED)"),
    ("SKYSUB", "", "sky value subtracted (MODE or NONE)"),
    ("SKYSUM", 0.0, "sky level from the sum of all constituent image"),
    ("CRSIGMAS", "", "statistical rejection criteria"),
    ("CRRADIUS", 0.0, "rejection propagation radius (pixels)"),
    ("CRTHRESH", 0.0, "rejection propagation threshold"),
    ("BADINPDQ", 0, "data quality flag bits to reject"),
    ("REJ_RATE", 0.0, "rate at which pixels are affected by cosmic ray"),
    ("CRMASK", False, "flag CR-rejected pixels in input files (T/F)"),
]
_UNUSED_REFERENCES = [
    ("CRDS_VER", "11.17.6, b11.4.0", ""),
    *((key, "N/A", "") for key in ("ATODTAB", "BIACFILE", "BIASFILE", "D2IMFILE", "DRKCFILE",
                                   "FLSHFILE", "NPOLFILE", "PCTETAB", "SNKCFILE")),
]  # fmt: skip


def _primary_sections(spec: ExposureSpec, proctime: float) -> list[tuple[str, list]]:
    """(title, cards) of the primary header, in the order of a real IMA."""
    p = spec.pointing
    return [
        ("DATA DESCRIPTION KEYWORDS", [
            ("ROOTNAME", spec.rootname, "rootname of the observation set"),
            ("IMAGETYP", "EXT", "type of exposure identifier"),
            ("PRIMESI", "WFC3", "instrument designated as prime"),
        ]),
        ("TARGET INFORMATION", [
            ("TARGNAME", p.targname, "proposer's target name"),
            ("RA_TARG", p.ra, "right ascension of the target (deg) (J2000)"),
            ("DEC_TARG", p.dec, "declination of the target (deg) (J2000)"),
        ]),
        ("PROPOSAL INFORMATION", [
            ("PROPOSID", spec.proposid, "PEP proposal identifier"),
            ("LINENUM", f"{spec.visit_code}.{spec.exposure + 1:03d}",
             "proposal logsheet line number"),
            ("PR_INV_L", "Synthetic", "last name of principal investigator"),
            ("PR_INV_F", "Survey", "first name of principal investigator"),
            ("PR_INV_M", "", "middle name / initial of principal investigat"),
        ]),
        ("EXPOSURE INFORMATION", _identity_cards(spec)),
        ("POINTING INFORMATION", [("PA_V3", p.pa_v3, "position angle of V3-axis of HST (deg)")]),
        ("TARGET OFFSETS (POSTARGS)", [
            ("POSTARG1", p.postarg1, "POSTARG in axis 1 direction"),
            ("POSTARG2", p.postarg2, "POSTARG in axis 2 direction"),
        ]),
        ("DIAGNOSTIC KEYWORDS", [
            ("OPUS_VER", "HSTDP 2023_3", "data processing software system version"),
            ("CSYS_VER", "caldp_20231201", "calibration software system version id"),
            ("CAL_VER", CAL_VER, "CALWF3 code version"),
            ("PROCTIME", proctime, "Pipeline processing time (MJD)"),
        ]),
        ("INSTRUMENT CONFIGURATION INFORMATION", _configuration_cards(spec)),
        ("POST-SAA DARK KEYWORDS", _SAA_CARDS),
        ("SCAN KEYWORDS", _scan_cards()),
        ("CALIBRATION SWITCHES: PERFORM, OMIT, COMPLETE, SKIPPED", _switch_cards(spec)),
        ("CALIBRATION REFERENCE FILES", list(REFERENCE_FILES)),
        ("COSMIC RAY REJECTION ALGORITHM PARAMETERS", _CRREJ_CARDS),
        ("PHOTOMETRY KEYWORDS", _photometry_cards(spec.filter)),
        ("OTFR KEYWORDS", [("T_SGSTAR", "", "OMS calculated guide star control")]),
        ("PATTERN KEYWORDS", _pattern_cards(spec)),
        ("ENGINEERING PARAMETERS", _engineering_cards()),
        ("ASSOCIATION KEYWORDS", [
            ("ASN_ID", spec.asn_id, "unique identifier assigned to association"),
            ("ASN_TAB", f"{spec.asn_id.lower()}_asn.fits", "name of the association table"),
            ("ASN_MTYP", "EXP-DTH", "Role of the Member in the Association"),
            ("CRDS_CTX", "hst_1127.pmap", ""),
            *_UNUSED_REFERENCES,
        ]),
    ]  # fmt: skip


def primary_header(spec: ExposureSpec, *, provenance: dict | None = None) -> fits.Header:
    """Primary header of the IMA as calwf3 leaves it with CRCORR = OMIT."""
    proctime = round(spec.expend + 0.25, 8)  # "processed" a few hours later, never the clock
    h = fits.Header()
    for card in (
        ("ORIGIN", ORIGIN, "FITS file originator"),
        ("DATE", _date(proctime), "date this file was written (yyyy-mm-dd)"),
        ("NEXTEND", 5 * spec.nsamp, "Number of standard extensions"),
        ("FILENAME", f"{spec.rootname}_ima.fits", "name of file"),
        ("FILETYPE", "SCI", "type of data found in data file"),
        ("", ""),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", "WFC3", "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
    ):
        h.append(card, end=True)
    for title, cards in _primary_sections(spec, proctime):
        _section(h, title, cards)
    for step in ("DQICORR", "ZSIGCORR", "BLEVCORR", "ZOFFCORR", "NLINCORR", "DARKCORR",
                 "PHOTCORR", "UNITCORR", "FLATCORR"):  # fmt: skip
        h.add_history(f"{step} complete.")
    h.add_history("CRCORR omitted: reads left as cumulative rates (synthetic IMA).")
    stamp_header(h, "simulate", provenance)
    return h


def _date(mjd: float) -> str:
    return _mjd_to_datetime(mjd).strftime("%Y-%m-%d")


def _wcs_cards(spec: ExposureSpec) -> list:
    """Tangent-plane WCS of the array; the target sits at CRPIX + the POSTARG shift."""
    p = spec.pointing
    offset = ltv(spec.size)
    crpix = np.array([507.0 + offset, 507.0 + offset])
    if spec.is_grism:
        crpix += (-102.0, 20.0)
    theta = np.radians((p.pa_v3 + ORIENTAT_OFFSET + 180.0) % 360.0 - 180.0)
    sx, sy = PIXEL_SCALE[0] / 3600.0, PIXEL_SCALE[1] / 3600.0
    cd = np.array(
        [[-sx * np.cos(theta), sy * np.sin(theta)], [sx * np.sin(theta), sy * np.cos(theta)]]
    )
    d_ra, d_dec = cd @ np.array(p.shift)
    crval1 = p.ra - d_ra / np.cos(np.radians(p.dec))
    crval2 = p.dec - d_dec
    orientat = round(float(np.degrees(theta)), 4)
    return [
        ("WCSAXES", 2, "number of World Coordinate System axes"),
        ("CRPIX1", float(crpix[0]), "x-coordinate of reference pixel"),
        ("CRPIX2", float(crpix[1]), "y-coordinate of reference pixel"),
        ("CRVAL1", round(float(crval1) % 360.0, 10), "first axis value at reference pixel"),
        ("CRVAL2", round(float(crval2), 10), "second axis value at reference pixel"),
        ("CTYPE1", "RA---TAN", "the coordinate type for the first axis"),
        ("CTYPE2", "DEC--TAN", "the coordinate type for the second axis"),
        ("CD1_1", float(f"{cd[0, 0]:.6g}"), "partial of first axis coordinate w.r.t. x"),
        ("CD1_2", float(f"{cd[0, 1]:.6g}"), "partial of first axis coordinate w.r.t. y"),
        ("CD2_1", float(f"{cd[1, 0]:.6g}"), "partial of second axis coordinate w.r.t. x"),
        ("CD2_2", float(f"{cd[1, 1]:.6g}"), "partial of second axis coordinate w.r.t. y"),
        ("LTV1", offset, "offset in X to subsection start"),
        ("LTV2", offset, "offset in Y to subsection start"),
        ("LTM1_1", 1.0, "reciprocal of sampling rate in X"),
        ("LTM2_2", 1.0, "reciprocal of sampling rate in Y"),
        ("PA_APER", orientat, "Position Angle of reference aperture center (de"),
        ("VAFACTOR", 1.0, "velocity aberration plate scale factor"),
        ("ORIENTAT", orientat, "position angle of image y axis (deg. e of n)"),
        ("RA_APER", round(float(crval1) % 360.0, 10), "RA of aperture reference position"),
        ("DEC_APER", round(float(crval2), 10), "Declination of aperture reference position"),
    ]


def _statistics(sci, err, dq, science) -> list:
    """calwf3's statistics keywords over science pixels free of SDQFLAGS bits."""
    good = science & ((dq & SDQFLAGS) == 0)
    values = sci[good].astype(np.float64)
    noise = err[good].astype(np.float64)
    snr = np.abs(values[noise > 0]) / noise[noise > 0]

    def stat(a, f):
        return float(f"{f(a):.8g}") if a.size else 0.0

    return [
        ("NGOODPIX", int(good.sum()), "number of good pixels"),
        ("SDQFLAGS", SDQFLAGS, "serious data quality flags"),
        ("GOODMIN", stat(values, np.min), "minimum value of good pixels"),
        ("GOODMAX", stat(values, np.max), "maximum value of good pixels"),
        ("GOODMEAN", stat(values, np.mean), "mean value of good pixels"),
        ("SNRMIN", stat(snr, np.min), "minimum signal to noise of good pixels"),
        ("SNRMAX", stat(snr, np.max), "maximum signal to noise of good pixels"),
        ("SNRMEAN", stat(snr, np.mean), "mean value of signal to noise of good pixels"),
        ("SOFTERRS", 0, "number of soft error pixels (DQF=1)"),
    ]


def _readout_cards(spec: ExposureSpec, k: int) -> list:
    t = spec.times
    return [
        ("SAMPNUM", k, "MULTIACCUM sample number"),
        ("SAMPTIME", float(t[k]), "total integration time (sec)"),
        ("DELTATIM", round(float(t[k] - t[k - 1]), 6) if k else 0.0,
         "integration time of this sample (sec)"),
        ("ROUTTIME", round(spec.expstart + float(t[k]) / 86400.0, 8),
         "UT time of array readout (MJD)"),
        ("TDFTRANS", 0, "number of TDF transitions during current sample"),
    ]  # fmt: skip


#: Cards that never change: subarray definition (all arrays are centred) and packet info.
_PACKET_CARDS = [
    ("FILLCNT", 0, "number of segments containing fill"),
    ("ERRCNT", 0, "number of segments containing errors"),
    ("PODPSFF", False, "podps fill present (T/F)"),
    ("STDCFFF", False, "science telemetry fill data present (T=1/F=0)"),
    ("STDCFFP", "0x5569", "science telemetry fill pattern (hex)"),
]


def _readout_definition(size: int) -> list:
    return [
        ("CENTERA1", 513, "subarray axis1 center pt in unbinned dect. pix"),
        ("CENTERA2", 513, "subarray axis2 center pt in unbinned dect. pix"),
        ("SIZAXIS1", size, "subarray axis1 size in unbinned detector pixels"),
        ("SIZAXIS2", size, "subarray axis2 size in unbinned detector pixels"),
        ("BINAXIS1", 1, "axis1 data bin size in unbinned detector pixels"),
        ("BINAXIS2", 1, "axis2 data bin size in unbinned detector pixels"),
    ]


def read_header(
    spec: ExposureSpec, k: int, arrays: tuple, *, meandark: float, meanblev: float
) -> fits.Header:
    """SCI header of read ``k`` (time order); ``arrays`` = that read's (sci, err, dq).

    ``meandark`` (e-) and ``meanblev`` (DN) fill the calwf3 statistics of what it subtracted.
    """
    science = np.zeros(arrays[0].shape, bool)
    science[BORDER:-BORDER, BORDER:-BORDER] = True
    statistics = [
        *_statistics(*arrays, science),
        ("MEANDARK", float(f"{meandark:.8g}"), "average of the dark values subtracted"),
        ("MEANBLEV", float(f"{meanblev:.8g}"), "average of all bias levels subtracted"),
    ]
    h = fits.Header()
    for card in (
        ("ORIGIN", ORIGIN, "FITS file originator"),
        ("DATE", _date(spec.expend + 0.25), "date this file was written (yyyy-mm-dd)"),
        ("INHERIT", True, "inherit the primary header"),
        ("EXTNAME", "SCI", "extension name"),
        ("EXTVER", spec.nsamp - k, "extension version number"),
        ("ROOTNAME", spec.rootname, "rootname of the observation set"),
        ("EXPNAME", spec.rootname, "exposure identifier"),
        ("BUNIT", "ELECTRONS/S", "brightness units"),
    ):
        h.append(card, end=True)
    for title, cards in (
        ("World Coordinate System and Related Parameters", _wcs_cards(spec)),
        ("REPEATED EXPOSURES INFORMATION",
         [("NCOMBINE", 1, "number of image sets combined during CR rejecti")]),
        ("READOUT DEFINITION PARAMETERS", _readout_definition(spec.size)),
        ("READOUT PARAMETERS", _readout_cards(spec, k)),
        ("DATA PACKET INFORMATION", _PACKET_CARDS),
        ("IMAGE STATISTICS AND DATA QUALITY FLAGS", statistics),
    ):  # fmt: skip
        _section(h, title, cards)
    return h
