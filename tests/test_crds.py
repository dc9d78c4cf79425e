"""Best references through the real ``crds`` library, offline, from a CRDS cache built here.

``build_crds_cache`` writes a small but valid HST cache: ``config/hst/server_config`` (what a
synced cache keeps of the server's state), a pipeline mapping ``hst_0001.pmap`` → WFC3
instrument mapping → one rmap per reftype selecting files by DETECTOR (and SAMP_SEQ/SUBTYPE
for darks, FILTER for flats) and by DATE-OBS/TIME-OBS (UseAfter), with CRDS's own checksums,
plus tiny reference files under ``references/hst/wfc3/``. CRDS_MODE=local and a server URL on
a closed 127.0.0.1 port make every test hermetic: whatever is not cached cannot be fetched.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from survey.fix.crdsrefs import (
    IMA_REFTYPES,
    CrdsReferenceError,
    best_references,
    crds_configured,
    raw_reftypes,
)

IR = "('IR',)"
#: reftype → (parkeys, {match tuple: {use-after date: file}})
RULES: dict[str, tuple[tuple[str, ...], dict[str, dict[str, str]]]] = {
    "ccdtab": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "t2c16200i_ccd.fits"}}),
    "oscntab": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "q911321mi_osc.fits"}}),
    "crrejtab": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "u6a1748ri_crr.fits"}}),
    "bpixtab": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "3562033hi_bpx.fits"}}),
    "nlinfile": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "u1k1727mi_lin.fits"}}),
    "imphttab": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "8ch15233i_imp.fits"}}),
    "darkfile": (
        ("DETECTOR", "SAMP_SEQ", "SUBTYPE"),
        {
            "('IR', 'STEP200', 'FULLIMAG')": {"1991-01-01 00:00:00": "35620245i_drk.fits"},
            "('IR', 'STEP200', 'SQ128SUB')": {"1991-01-01 00:00:00": "x3c0000ci_drk.fits"},
            "('IR', 'STEP200', 'SQ256SUB')": {
                "1991-01-01 00:00:00": "x1a0000ai_drk.fits",
                "2011-01-01 00:00:00": "x2b0000bi_drk.fits",
            },
        },
    ),
    "pfltfile": (
        ("DETECTOR", "FILTER"),
        {
            "('IR', 'F105W')": {"1991-01-01 00:00:00": "4ac19225i_pfl.fits"},
            "('IR', 'F140W')": {"1991-01-01 00:00:00": "4ac1922ai_pfl.fits"},
        },
    ),
    "dfltfile": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "N/A"}}),
    "lfltfile": (("DETECTOR",), {IR: {"1991-01-01 00:00:00": "N/A"}}),
}


def _rmap(reftype: str, parkeys: tuple[str, ...], table: dict[str, dict[str, str]]) -> str:
    cases = []
    for match, dates in table.items():
        rows = "".join(f"        '{date}' : '{name}',\n" for date, name in dates.items())
        cases.append(f"    {match} : UseAfter({{\n{rows}    }}),\n")
    header = {
        "derived_from": "survey tests", "filekind": reftype.upper(), "instrument": "WFC3",
        "mapping": "REFERENCE", "name": f"hst_wfc3_{reftype}_0001.rmap", "observatory": "HST",
        "parkey": (parkeys, ("DATE-OBS", "TIME-OBS")), "sha1sum": "0",
    }  # fmt: skip
    return f"header = {header!r}\n\nselector = Match({{\n{''.join(cases)}}})\n"


def build_crds_cache(root: Path) -> Path:
    """A valid offline HST CRDS cache in ``root`` (module docstring); returns ``root``."""
    from crds.refactoring import checksum

    maps = root / "mappings" / "hst"
    refs = root / "references" / "hst" / "wfc3"
    config = root / "config" / "hst"
    for folder in (maps, refs, config):
        folder.mkdir(parents=True, exist_ok=True)
    info = {"observatory": "hst", "operational_context": "hst_0001.pmap",
            "latest_context": "hst_0001.pmap", "edit_context": "hst_0001.pmap",
            "bad_files": "", "bad_files_list": [], "force_remote_mode": False,
            "last_synced": "2026-01-01 00:00:00"}  # fmt: skip
    (config / "server_config").write_text(repr(info))
    selector = "".join(f"    '{r}' : 'hst_wfc3_{r}_0001.rmap',\n" for r in RULES)
    imap = {"derived_from": "survey tests", "instrument": "WFC3", "mapping": "INSTRUMENT",
            "name": "hst_wfc3_0001.imap", "observatory": "HST", "parkey": (),
            "sha1sum": "0"}  # fmt: skip
    pmap = {"derived_from": "survey tests", "mapping": "PIPELINE", "name": "hst_0001.pmap",
            "observatory": "HST", "parkey": ("INSTRUME",), "sha1sum": "0"}  # fmt: skip
    imap_name = imap["name"]
    files = {
        "hst_0001.pmap": f"header = {pmap!r}\n\nselector = {{\n    'WFC3' : '{imap_name}',\n}}\n",
        "hst_wfc3_0001.imap": f"header = {imap!r}\n\nselector = {{\n{selector}}}\n",
    }
    files.update({f"hst_wfc3_{r}_0001.rmap": _rmap(r, *rule) for r, rule in RULES.items()})
    for name, text in files.items():
        (maps / name).write_text(text)
        checksum.update_checksum(str(maps / name))
    for _, table in RULES.values():
        for dates in table.values():
            for name in dates.values():
                if name != "N/A":
                    (refs / name).write_bytes(b"reference " + name.encode())
    return root


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def use_crds_cache(monkeypatch, cache: Path) -> None:
    """Point CRDS at ``cache``, offline; nothing of the user's own CRDS setup leaks in."""
    for key in ("CRDS_CONTEXT", "CRDS_CLIENT_TIMEOUT_SECONDS", "CRDS_PATH_SINGLE",
                "CRDS_REFPATH", "CRDS_MAPPATH", "CRDS_CFGPATH", "iref"):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_SERVER_URL", closed_port_url())
    monkeypatch.setenv("CRDS_MODE", "local")


def ir_header(**changes) -> dict[str, object]:
    header = {"INSTRUME": "WFC3", "DETECTOR": "IR", "FILTER": "F105W", "SAMP_SEQ": "STEP200",
              "SUBTYPE": "FULLIMAG", "CCDAMP": "ABCD", "CCDGAIN": 2.5, "DATE-OBS": "2012-04-01",
              "TIME-OBS": "10:00:00", "DQICORR": "PERFORM", "ZSIGCORR": "PERFORM",
              "DARKCORR": "PERFORM", "NLINCORR": "PERFORM", "FLATCORR": "PERFORM",
              "PHOTCORR": "PERFORM", "CRCORR": "PERFORM"}  # fmt: skip
    header.update(changes)
    return header


@pytest.fixture(scope="module")
def cache_template(tmp_path_factory) -> Path:
    return build_crds_cache(tmp_path_factory.mktemp("crds") / "crds_cache")


@pytest.fixture
def cache(cache_template, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the cache per test (tests remove files, CRDS writes its config)."""
    root = Path(shutil.copytree(cache_template, tmp_path / "crds_cache"))
    use_crds_cache(monkeypatch, root)
    return root


def test_reftypes_follow_the_calibration_switches():
    assert raw_reftypes(ir_header()) == (
        "ccdtab", "oscntab", "crrejtab", "bpixtab", "darkfile", "nlinfile", "pfltfile",
        "dfltfile", "lfltfile", "imphttab",
    )  # fmt: skip
    # no dark subtraction nor zero-read signal: no 303-MB dark; a re-run on an IMA needs 3 tables
    off = ir_header(DARKCORR="OMIT", ZSIGCORR="OMIT", FLATCORR="COMPLETE", PHOTCORR="OMIT")
    assert raw_reftypes(off) == ("ccdtab", "oscntab", "crrejtab", "bpixtab", "nlinfile")
    assert IMA_REFTYPES == ("ccdtab", "oscntab", "crrejtab")


def test_best_references_are_chosen_by_the_header(cache):
    refs = best_references(ir_header(), raw_reftypes(ir_header()), rootname="ibohbfb9q")
    wfc3 = cache / "references" / "hst" / "wfc3"
    assert refs.context == "hst_0001.pmap"
    assert refs.paths["DARKFILE"] == wfc3 / "35620245i_drk.fits"
    assert refs.paths["PFLTFILE"] == wfc3 / "4ac19225i_pfl.fits"
    assert refs.paths["DFLTFILE"] is None and refs.paths["LFLTFILE"] is None  # N/A in the rules
    keywords = refs.keywords()
    assert keywords["CCDTAB"] == "iref$t2c16200i_ccd.fits"
    assert keywords["DFLTFILE"] == "N/A"
    assert refs.directories() == {wfc3}
    # another subarray, filter and date select other files (UseAfter picks the latest before)
    other = ir_header(SUBTYPE="SQ256SUB", FILTER="F140W", **{"DATE-OBS": "2010-06-01"})
    refs = best_references(other, ("darkfile", "pfltfile"), rootname="ibohbfb9q")
    assert refs.keywords() == {"DARKFILE": "iref$x1a0000ai_drk.fits",
                               "PFLTFILE": "iref$4ac1922ai_pfl.fits"}  # fmt: skip
    later = dict(other, **{"DATE-OBS": "2013-06-01"})
    refs = best_references(later, ("darkfile",), rootname="ibohbfb9q")
    assert refs.keywords() == {"DARKFILE": "iref$x2b0000bi_drk.fits"}


def test_offline_without_the_cached_file_is_one_clear_line(cache):
    (cache / "references" / "hst" / "wfc3" / "35620245i_drk.fits").unlink()
    with pytest.raises(CrdsReferenceError) as info:
        best_references(ir_header(), raw_reftypes(ir_header()), rootname="ibohbfb9q")
    message = str(info.value)
    assert message.startswith(
        "CRDS: no cached reference for DARKFILE (35620245i_drk.fits) of ibohbfb9q"
    )
    assert "CRDS_PATH" in message and "CRDS_SERVER_URL" in message and "\n" not in message
    # what is cached still works offline: the three tables of a re-run on an IMA
    assert best_references(ir_header(), IMA_REFTYPES, rootname="ibohbfb9q").paths["CCDTAB"]


def test_no_cache_at_all_is_one_clear_line_not_an_exit(tmp_path, monkeypatch):
    """CRDS calls sys.exit when it has neither a server nor a cached configuration."""
    use_crds_cache(monkeypatch, tmp_path / "empty")
    with pytest.raises(CrdsReferenceError, match=r"^CRDS: choosing the rules for ibohbfb9q fail"):
        best_references(ir_header(), IMA_REFTYPES, rootname="ibohbfb9q")


def test_no_rule_for_the_header_names_the_reftype(cache):
    with pytest.raises(CrdsReferenceError, match=r"no best reference for DARKFILE of ib.*SPARS"):
        best_references(ir_header(SAMP_SEQ="SPARS25"), ("darkfile",), rootname="ibohbfb9q")


def test_hostile_reference_names_never_become_paths(cache, monkeypatch):
    import crds

    monkeypatch.setattr(crds, "getrecommendations", lambda *a, **k: {"ccdtab": "../../x.fits"})
    with pytest.raises(CrdsReferenceError, match=r"not a reference name '\.\./\.\./x\.fits'"):
        best_references(ir_header(), ("ccdtab",), rootname="ibohbfb9q")


def test_environment_defaults_are_scoped(cache, monkeypatch):
    """A short network timeout during the call; the user's environment is left as it was."""
    import crds

    seen = {}
    real = crds.getrecommendations

    def spy(*args, **keys):
        seen["timeout"] = os.environ.get("CRDS_CLIENT_TIMEOUT_SECONDS")
        return real(*args, **keys)

    monkeypatch.setattr(crds, "getrecommendations", spy)
    best_references(ir_header(), ("ccdtab",), rootname="ibohbfb9q")
    assert seen["timeout"] == "30"
    assert os.environ.get("CRDS_CLIENT_TIMEOUT_SECONDS") in (None, "3600")  # crds' own default
    monkeypatch.setenv("CRDS_CLIENT_TIMEOUT_SECONDS", "7")
    best_references(ir_header(), ("ccdtab",), rootname="ibohbfb9q")
    assert seen["timeout"] == "7" and os.environ["CRDS_CLIENT_TIMEOUT_SECONDS"] == "7"


def test_crds_counts_as_configured_only_when_the_user_set_it(monkeypatch):
    for key in ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_CONTEXT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CRDS_MODE", "auto")  # what importing crds writes into os.environ
    assert not crds_configured()
    monkeypatch.setenv("CRDS_SERVER_URL", "https://hst-crds.stsci.edu")
    assert crds_configured()


def test_rules_carry_crds_checksums(cache):
    """The cache's rules load with CRDS's checksum verification on (not switched off)."""
    import crds

    text = (cache / "mappings" / "hst" / "hst_wfc3_darkfile_0001.rmap").read_text()
    assert "'sha1sum' : '0'" not in text
    assert not crds.config.get_ignore_checksum()
    assert "darkfile" in crds.get_cached_mapping("hst_0001.pmap").get_filekinds(ir_header())
