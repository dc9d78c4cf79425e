"""`survey fetch` against a stand-in MAST on 127.0.0.1 that speaks the protocol astroquery 0.4.11
uses for these calls: the Mashup column config, `/api/v0/invoke` (Mast.Caom.Filtered and
Mast.Caom.Products) and `/api/v0.1/Download/file?uri=`. Every test is hermetic: name
resolution is refused for anything but 127.0.0.1, which is also how "offline" is tested.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from survey import __version__
from survey.cli import SurveyGroup
from survey.fetch import (
    FetchCriteria,
    FetchCriteriaError,
    FetchWriteError,
    MastClient,
    fetch,
    plan_fetch,
    read_manifest,
)
from survey.fetch.command import fetch as fetch_command

CLI = SurveyGroup(name="survey", commands={"fetch": fetch_command})

# Column config entries as MAST serves them (copied from astroquery's recorded
# columnsconfig.json): what build_filter_set needs to tell discrete from continuous columns.
COLUMNS_CONFIG = {
    "obs_collection": {"text": "Mission", "separator": ";", "vot.datatype": "char"},
    "instrument_name": {"text": "Instrument", "vot.datatype": "char"},
    "filters": {"text": "Filters", "separator": ";", "separatorType": "split",
                "vot.datatype": "char"},
    "proposal_id": {"text": "Proposal ID", "vot.datatype": "char"},
    "obs_id": {"text": "Observation ID", "vot.datatype": "char"},
    "obsid": {"text": "Product Group ID", "vot.datatype": "long"},
    "t_exptime": {"text": "Exposure Length", "vot.datatype": "double"},
}  # fmt: skip
OBS_FIELDS = ["obsid", "obs_collection", "instrument_name", "obs_id", "filters", "proposal_id",
              "target_name"]  # fmt: skip
PRODUCT_FIELDS = ["obsID", "obs_collection", "obs_id", "dataURI", "productType",
                  "productGroupDescription", "productSubGroupDescription", "project",
                  "productFilename"]  # fmt: skip

# Program 12242: visit BF (an association and two of its exposures) and visit BG.
OBSERVATIONS = [
    ("2001", "ibohbf040", "F105W"),
    ("2002", "ibohbfb7q", "F105W"),
    ("2003", "ibohbfb9q", "F105W"),
    ("2004", "ibohbgc1q", "F140W"),
]


def fits_bytes(rootname: str, kind: str) -> bytes:
    """A small real FITS file whose content tells which product it is."""
    hdu = fits.PrimaryHDU(np.full((8, 8), len(kind), dtype=np.int16))
    hdu.header["ROOTNAME"] = rootname
    hdu.header["FILETYPE"] = kind
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def product(obsid, obs_id, filename, kind, *, project="CALWF3", size=None, data=None):
    return {"obsID": obsid, "obs_collection": "HST", "obs_id": obs_id,
            "dataURI": f"mast:HST/product/{filename}", "productType": "SCIENCE",
            "productGroupDescription": "Minimum Recommended Products" if kind == "FLT" else "",
            "productSubGroupDescription": kind, "project": project,
            "productFilename": filename, "size": size, "_data": data}  # fmt: skip


class StandInMast:
    """Observations, products and files of a stand-in MAST, and the requests it received."""

    def __init__(self) -> None:
        self.observations = [
            {"obsid": obsid, "obs_collection": "HST", "instrument_name": "WFC3/IR",
             "obs_id": obs_id, "filters": filt, "proposal_id": "12242", "target_name": "GOODS-N"}
            for obsid, obs_id, filt in OBSERVATIONS
        ]  # fmt: skip
        self.products: dict[str, list[dict]] = {obsid: [] for obsid, _, _ in OBSERVATIONS}
        self.requests: list[tuple[str, object]] = []
        self.stall = threading.Event()  # set at teardown to free stalled handlers
        self.fail_invoke: tuple[int, str] | None = None  # (status, body) for every invoke
        for obsid, obs_id, _ in OBSERVATIONS:
            exposures = ["ibohbfb7q", "ibohbfb9q"] if obs_id == "ibohbf040" else [obs_id]
            if obs_id.endswith("0"):
                self.add(obsid, obs_id, f"{obs_id}_asn.fits", "ASN")
                self.add(obsid, obs_id, f"{obs_id}_drz.fits", "DRZ")
            for root in exposures:
                for kind in ("IMA", "FLT", "RAW"):
                    self.add(obsid, obs_id, f"{root}_{kind.lower()}.fits", kind)
            self.add(obsid, obs_id, f"{obs_id}_spt.fits", "SPT")
            self.add(obsid, obs_id, f"hst_12242_bf_wfc3_ir_f105w_{obs_id[:8]}_flt.fits", "FLT",
                     project="HAP-SVM")  # fmt: skip

    def add(self, obsid: str, obs_id: str, filename: str, kind: str, **kw) -> dict:
        data = kw.pop("data", None) or fits_bytes(re.sub(r"\W", "x", filename[:9]), kind)
        kw.setdefault("size", len(data))
        row = product(obsid, obs_id, filename, kind, data=data, **kw)
        self.products[obsid].append(row)
        return row

    def file(self, filename: str) -> bytes:
        rows = [r for rows in self.products.values() for r in rows]
        return next(r["_data"] for r in rows if r["productFilename"] == filename)

    def invokes(self, service: str) -> list[dict]:
        return [r for kind, r in self.requests if kind == "invoke" and r["service"] == service]

    def downloads(self) -> list[str]:
        return [r for kind, r in self.requests if kind == "download"]

    def select(self, filters: list[dict]) -> list[dict]:
        return [row for row in self.observations if all(_passes(row, f) for f in filters)]


def _passes(row: dict, entry: dict) -> bool:
    value = str(row[entry["paramName"]])
    parts = value.split(entry["separator"]) if entry.get("separator") else [value]
    if entry["values"] and any(v in parts for v in entry["values"]):
        return True
    pattern = entry.get("freeText")
    like = pattern and re.escape(pattern).replace("%", ".*").replace("_", ".")
    return bool(like) and re.fullmatch(like, value, flags=re.IGNORECASE) is not None


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        mast: StandInMast = self.server.mast  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if self.path == "/portal/Mashup/Mashup.asmx/columnsconfig":
            mast.requests.append(("columnsconfig", parse_qs(body)["colConfigId"][0]))
            return self._json(COLUMNS_CONFIG)
        if self.path != "/api/v0/invoke" or not body.startswith("request="):
            mast.requests.append(("unexpected", self.path))
            return self._reply(404, b"not found", "text/plain")
        request = json.loads(unquote(body.removeprefix("request=")))
        mast.requests.append(("invoke", request))
        if mast.fail_invoke:
            return self._reply(mast.fail_invoke[0], mast.fail_invoke[1].encode(), "text/html")
        if request["service"] == "Mast.Caom.Filtered":
            return self._table(mast.select(request["params"]["filters"]), OBS_FIELDS)
        obsids = request["params"]["obsid"].split(",")
        rows = [r for obsid in obsids for r in mast.products.get(obsid, [])]
        self._table(rows, PRODUCT_FIELDS)

    def do_GET(self) -> None:
        mast: StandInMast = self.server.mast  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        uri = parse_qs(url.query).get("uri", [""])[0]
        mast.requests.append(("download", uri))
        rows = [r for rows in mast.products.values() for r in rows if r["dataURI"] == uri]
        if url.path != "/api/v0.1/Download/file" or not rows or rows[-1].get("_missing"):
            return self._reply(404, b"no such product", "text/plain")
        data = rows[0]["_data"]
        if any(r.get("_cut") for r in rows):  # half the file, then the connection closes
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return None
        if any(r.get("_stall") for r in rows):  # half the file, then silence
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            mast.stall.wait(30)
            return None
        self._reply(200, data, "application/octet-stream")

    def _table(self, rows: list[dict], fields: list[str]) -> None:
        typed = [{"name": f, "type": "int" if f == "size" else "string"} for f in fields]
        if fields is PRODUCT_FIELDS:
            typed.append({"name": "size", "type": "int"})
        data = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        n = len(data)
        self._json({"status": "COMPLETE", "msg": "", "data": data, "fields": typed,
                    "paging": {"page": 1, "pageSize": n, "pagesFiltered": 1, "rows": n,
                               "rowsFiltered": n, "rowsTotal": n}})  # fmt: skip

    def _json(self, obj: object) -> None:
        self._reply(200, json.dumps(obj).encode(), "application/json")

    def _reply(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Name resolution fails for every host but 127.0.0.1, as it does offline."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mast():
    """A running stand-in MAST; yields ``(state, base_url)``."""
    state = StandInMast()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.mast = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    state.stall.set()
    server.shutdown()
    server.server_close()


def invoke(*args: object):
    return CliRunner().invoke(CLI, ["fetch", *map(str, args)])


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# --- options and the query they make ------------------------------------------------------


def test_query_carries_program_filter_and_instrument(mast, tmp_path) -> None:
    state, url = mast
    criteria = FetchCriteria(program=12242, filters=("f105w",), products=("IMA",))
    fetch(criteria, tmp_path / "out", server=url, timeout=5)
    (query,) = state.invokes("Mast.Caom.Filtered")
    sent = {f["paramName"]: f for f in query["params"]["filters"]}
    assert set(sent) == {"obs_collection", "instrument_name", "proposal_id", "filters"}
    assert sent["obs_collection"]["values"] == ["HST"]
    assert sent["instrument_name"]["values"] == ["WFC3/IR"]
    assert sent["proposal_id"]["values"] == ["12242"]
    assert sent["filters"] == {"paramName": "filters", "separator": ";", "values": ["F105W"]}
    # the products of the F105W observations are asked for, not those of the F140W one
    (products,) = state.invokes("Mast.Caom.Products")
    assert products["params"]["obsid"] == "2001,2002,2003"


def test_visit_and_products_select_the_files(mast, tmp_path) -> None:
    state, url = mast
    out = tmp_path / "out"
    result = invoke("--program", 12242, "--visit", "bf", "--products", "ima,flt,asn",
                    "--out", out, "--server", url)  # fmt: skip
    assert result.exit_code == 0, result.output
    # flat, named by MAST's file names; the HAP FLT, DRZ and SPT are not calwf3 IMA/FLT/ASN
    assert files_under(tmp_path) == {
        "out/fetch_manifest.json",
        "out/ibohbf040_asn.fits",
        "out/ibohbfb7q_ima.fits", "out/ibohbfb7q_flt.fits",
        "out/ibohbfb9q_ima.fits", "out/ibohbfb9q_flt.fits",
    }  # fmt: skip
    for path in out.glob("*.fits"):
        assert path.read_bytes() == state.file(path.name)
    # the association lists its members' files too: each is fetched once
    assert len(state.downloads()) == 5
    (products,) = state.invokes("Mast.Caom.Products")
    assert products["params"]["obsid"] == "2001,2002,2003"  # visit BG left out before listing
    assert result.stderr.strip().endswith("5 downloaded (28.8 kB), 0 skipped (present), 0 failed")


def test_obs_id_pattern_is_sent_to_mast_and_applied_exactly(mast, tmp_path) -> None:
    state, url = mast
    criteria = FetchCriteria(obs_id="ibohbf?9q", products=("RAW",))
    summary = fetch(criteria, tmp_path, server=url, timeout=5)
    (query,) = state.invokes("Mast.Caom.Filtered")
    sent = {f["paramName"]: f for f in query["params"]["filters"]}
    assert sent["obs_id"] == {"paramName": "obs_id", "values": [], "freeText": "ibohbf%9q"}
    assert "proposal_id" not in sent
    assert [p.name for p in summary.downloaded] == ["ibohbfb9q_raw.fits"]


def test_criteria_helpers_hand_checked() -> None:
    criteria = FetchCriteria(program="12242", visit="bf", obs_id="IBOH*")
    assert criteria.matches("ibohbfb9q") and criteria.matches("IBOHBF040")
    assert not criteria.matches("ibohbgc1q")  # visit BG
    assert not criteria.matches("icxxbfb9q")  # obs-id pattern
    assert FetchCriteria(program=1, obs_id="ibohbf*").matches("IBOHBF040")
    assert criteria.describe() == "program 12242, visit BF, obs-id IBOH*"
    assert FetchCriteria(obs_id="iboh*").products == ("IMA", "FLT", "RAW", "ASN")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--program", "12242;drop"], "'12242;drop'"),
        (["--program", "0"], "'0'"),
        (["--program", "1", "--visit", "B"], "'B'"),
        (["--program", "1", "--visit", "B/"], "'B/'"),
        (["--program", "1", "--obs-id", "../../x"], "'../../x'"),
        (["--program", "1", "--obs-id", "IB%"], "'IB%'"),
        (["--program", "1", "--filter", "F105W,F999X"], "'F999X'"),
        (["--program", "1", "--products", "IMA,DRZ"], "'DRZ'"),
        (["--visit", "BF"], "--program"),
        (["--obs-id", "*"], "'*'"),  # the whole archive, by another name
        (["--obs-id", "I*"], "'I*'"),
        (["--obs-id", "ib?hbfb9q"], "'ib?hbfb9q'"),
    ],
)
def test_bad_options_are_named_before_any_request(mast, tmp_path, args, named) -> None:
    state, url = mast
    result = invoke(*args, "--out", tmp_path / "out", "--server", url)
    assert result.exit_code == 2
    assert named in result.stderr
    assert state.requests == []
    assert not (tmp_path / "out").exists()


def test_library_validates_too() -> None:
    with pytest.raises(FetchCriteriaError, match="'F999X'"):
        FetchCriteria(program=1, filters=("F999X",))


# --- bookkeeping: present, truncated, refused ---------------------------------------------


def test_second_run_skips_and_a_truncated_file_is_fetched_again(mast, tmp_path) -> None:
    state, url = mast
    criteria = FetchCriteria(program=12242, visit="BF")
    first = fetch(criteria, tmp_path, server=url, timeout=5)
    assert len(first.downloaded) == 7 and first.exit_code == 0  # ASN + 2 × IMA/FLT/RAW
    n_downloads = len(state.downloads())

    second = fetch(criteria, tmp_path, server=url, timeout=5)
    assert second.downloaded == [] and len(second.present) == 7
    assert len(state.downloads()) == n_downloads  # nothing was requested again

    ima = tmp_path / "ibohbfb9q_ima.fits"
    ima.write_bytes(ima.read_bytes()[:1000])  # as an interrupted copy would be
    third = fetch(criteria, tmp_path, server=url, timeout=5)
    assert third.downloaded == [ima] and len(third.present) == 6
    assert ima.read_bytes() == state.file("ibohbfb9q_ima.fits")
    assert third.line() == f"{tmp_path}: 1 downloaded (5.8 kB), 6 skipped (present), 0 failed"


def test_manifest_records_what_came_from_where(mast, tmp_path) -> None:
    state, url = mast
    criteria = FetchCriteria(program=12242, visit="BF", products=("IMA", "ASN"))
    fetch(criteria, tmp_path, server=url, timeout=5)
    (tmp_path / "ibohbfb7q_ima.fits").unlink()
    fetch(criteria, tmp_path, server=url, timeout=5)
    fetch(criteria, tmp_path, server=url, timeout=5)  # nothing downloaded: no new run entry
    manifest = read_manifest(tmp_path)
    assert sorted(manifest["files"]) == [
        "ibohbf040_asn.fits", "ibohbfb7q_ima.fits", "ibohbfb9q_ima.fits",
    ]  # fmt: skip
    for name, entry in manifest["files"].items():
        data = state.file(name)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["dataURI"] == f"mast:HST/product/{name}"
    assert [run["downloaded"] for run in manifest["runs"]] == [3, 1]
    assert manifest["runs"][1]["present"] == 2
    assert manifest["runs"][0]["criteria"]["visit"] == "BF"
    assert manifest["runs"][0]["server"] == url
    assert manifest["runs"][0]["tool"] == f"survey {__version__} fetch"


def test_hostile_and_mismatched_names_are_refused(mast, tmp_path) -> None:
    state, url = mast
    state.add("2003", "ibohbfb9q", "../../x_ima.fits", "IMA")
    state.add("2003", "ibohbfb9q", "/tmp/ibohbfb9q_flt.fits", "FLT")
    state.add("2003", "ibohbfb9q", "ibohbfzzq_flt.fits", "IMA")  # kind and name disagree
    state.add("2003", "ibohbfb9q", "ibohbf\x1b[31mq_ima.fits", "IMA")
    out = tmp_path / "deep" / "out"
    result = invoke("--obs-id", "ibohbfb9q", "--products", "IMA,FLT", "--out", out,
                    "--server", url)  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert files_under(tmp_path / "deep") == {
        "out/ibohbfb9q_ima.fits", "out/ibohbfb9q_flt.fits", "out/fetch_manifest.json",
    }  # fmt: skip
    assert files_under(tmp_path) == {f"deep/{name}" for name in files_under(tmp_path / "deep")}
    refusals = [line for line in result.stderr.splitlines() if line.startswith("refused")]
    assert len(refusals) == 4
    assert "'../../x_ima.fits'" in refusals[0] and "not a WFC3 product file name" in refusals[0]
    assert "does not match its product type 'IMA'" in refusals[2]
    assert "\x1b" not in result.stderr
    assert result.stderr.strip().endswith("0 failed, 4 refused")


def test_a_short_or_missing_file_fails_alone(mast, tmp_path) -> None:
    state, url = mast
    data = state.file("ibohbfb9q_flt.fits")
    state.add("2003", "ibohbfb9q", "ibohbfb9q_asn.fits", "ASN", data=data, size=len(data) + 80)
    gone = state.add("2003", "ibohbfb9q", "ibohbfc1q_raw.fits", "RAW")
    gone["_missing"] = True
    state.add("2003", "ibohbfb9q", "ibohbfc2q_ima.fits", "IMA")["_cut"] = True
    state.add("2003", "ibohbfb9q", "ibohbfc3q_flt.fits", "FLT", data=b"<html>login</html>")
    summary = fetch(FetchCriteria(obs_id="ibohbfb9q"), tmp_path, server=url, timeout=5)
    assert summary.exit_code == 2
    assert dict(summary.failed) == {
        "ibohbfb9q_asn.fits": f"received {len(data)} bytes, MAST lists {len(data) + 80}",
        "ibohbfc1q_raw.fits": "MAST refused the request (HTTP 404 Not Found)",
        "ibohbfc2q_ima.fits": "transfer from MAST failed (ChunkedEncodingError)",
        "ibohbfc3q_flt.fits": "MAST sent something that is not a FITS file",
    }
    # the failures left nothing behind, not even a temporary file
    assert sorted(files_under(tmp_path)) == [
        "fetch_manifest.json", "ibohbfb9q_flt.fits", "ibohbfb9q_ima.fits", "ibohbfb9q_raw.fits",
    ]  # fmt: skip
    assert summary.line() == f"{tmp_path}: 3 downloaded (17.3 kB), 0 skipped (present), 4 failed"


def test_an_unwritable_folder_is_one_line(mast, tmp_path) -> None:
    _, url = mast
    out = tmp_path / "out"
    out.write_text("a file, not a folder")
    result = invoke("--obs-id", "ibohbfb9q", "--out", out, "--server", url)
    assert result.exit_code == 2 and "is a file" in result.stderr  # click checks the option
    with pytest.raises(FetchWriteError) as raised:  # the library checks the writes
        fetch(FetchCriteria(obs_id="ibohbfb9q"), out, server=url, timeout=5)
    assert str(raised.value) == f"{out}/ibohbfb9q_ima.fits: cannot write (File exists)"
    assert out.read_text() == "a file, not a folder"


def test_a_file_fetch_did_not_write_is_kept_unless_overwrite(mast, tmp_path) -> None:
    """A different file of a product's name in OUT is the user's (a partial download of ours
    never has the final name): reported and kept, exit 2; replaced only with --overwrite."""
    _, url = mast
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "ibohbfb9q_flt.fits"
    mine.write_bytes(b"SIMPLE  = my locally reprocessed FLT")
    args = ("--program", 12242, "--visit", "bf", "--products", "flt", "--out", out)
    result = invoke(*args, "--server", url)
    assert result.exit_code == 2
    assert mine.read_bytes() == b"SIMPLE  = my locally reprocessed FLT"
    assert f"kept {mine}: not written by survey fetch (36 bytes" in result.stderr
    assert result.stderr.strip().endswith("1 kept (not ours)")
    again = invoke(*args, "--server", url, "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert mine.read_bytes().startswith(b"SIMPLE  =                    T")


def test_plan_without_a_listed_size_fetches_again(tmp_path) -> None:
    """A file fetch wrote (in the manifest) whose size MAST does not list is fetched again."""
    from survey.fetch import Product

    (tmp_path / "ibohbfb9q_ima.fits").write_bytes(b"x" * 10)
    (tmp_path / "fetch_manifest.json").write_text('{"files": {"ibohbfb9q_ima.fits": {}}}')
    known = Product("ibohbfb9q", "mast:HST/product/a", "ibohbfb9q_ima.fits", "IMA", 10)
    unknown = Product("ibohbfb9q", "mast:HST/product/a", "ibohbfb9q_ima.fits", "IMA", None)
    assert plan_fetch([known], tmp_path).present == [tmp_path / "ibohbfb9q_ima.fits"]
    assert [d for _, d in plan_fetch([unknown], tmp_path).to_fetch] == [
        tmp_path / "ibohbfb9q_ima.fits"
    ]


def test_nothing_matching_is_said_and_not_an_error(mast, tmp_path) -> None:
    _, url = mast
    result = invoke("--program", 15000, "--out", tmp_path / "out", "--server", url)
    assert result.exit_code == 0
    assert result.stderr.strip() == (
        "nothing to fetch: MAST lists no IMA/FLT/RAW/ASN for WFC3/IR program 15000"
    )
    assert not (tmp_path / "out").exists()


# --- MAST unreachable, silent or broken ----------------------------------------------------


def run_bounded(args: list[object], limit: float = 30.0):
    """Run the CLI in a thread; a hang fails the test instead of blocking it."""
    box: dict = {}
    start = time.monotonic()
    thread = threading.Thread(target=lambda: box.update(result=invoke(*args)), daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"survey fetch still waiting after {limit} s"
    return box["result"], time.monotonic() - start


def test_silent_server_hits_the_deadline(tmp_path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections are accepted by the kernel and never answered
    port = listener.getsockname()[1]
    try:
        result, elapsed = run_bounded(["--program", 12242, "--out", tmp_path / "out",
                                       "--server", f"http://127.0.0.1:{port}",
                                       "--timeout", 0.5])  # fmt: skip
    finally:
        listener.close()
    assert result.exit_code == 4
    assert result.stderr == (
        f"Error: MAST unreachable (no answer from 127.0.0.1:{port} within 0.5 s)\n"
    )
    assert elapsed < 15  # astroquery alone waits ~100 s or forever
    assert not (tmp_path / "out").exists()


def test_silence_mid_download_leaves_no_partial_file(mast, tmp_path) -> None:
    state, url = mast
    stalled = next(r for r in state.products["2003"] if r["productFilename"].endswith("raw.fits"))
    stalled["_stall"] = True
    result, _ = run_bounded(["--obs-id", "ibohbfb9q", "--out", tmp_path, "--server", url,
                             "--timeout", 0.5])  # fmt: skip
    assert result.exit_code == 4
    assert result.stderr.splitlines()[-1].startswith("Error: MAST unreachable (no answer from")
    assert result.stderr.splitlines()[-1].endswith(
        "within 0.5 s) after 2 of 3 files; re-run to resume"
    )
    assert files_under(tmp_path) == {
        "ibohbfb9q_ima.fits", "ibohbfb9q_flt.fits", "fetch_manifest.json",
    }  # fmt: skip
    assert sorted(read_manifest(tmp_path)["files"]) == ["ibohbfb9q_flt.fits", "ibohbfb9q_ima.fits"]


def test_refused_connection_is_one_line(tmp_path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    result, _ = run_bounded(["--program", 12242, "--out", tmp_path / "out",
                             "--server", f"http://127.0.0.1:{port}"])  # fmt: skip
    assert result.exit_code == 4
    assert result.stderr == f"Error: MAST unreachable (connection to 127.0.0.1:{port} refused)\n"
    assert not (tmp_path / "out").exists()


def test_offline_is_one_line_and_immediate(tmp_path) -> None:
    # the default server, with name resolution failing as it does without a network
    result, elapsed = run_bounded(["--program", 12242, "--out", tmp_path / "out"])
    assert result.exit_code == 4
    assert result.stderr == "Error: MAST unreachable (cannot resolve mast.stsci.edu: offline?)\n"
    assert elapsed < 15
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, "<html>down for maintenance</html>",
         "Error: MAST refused the request (HTTP 503 Service Unavailable)"),
        (200, "<html>captive portal</html>", "Error: MAST gave an answer survey cannot read"),
        (200, json.dumps({"status": "ERROR", "msg": "Bad filter", "data": [], "fields": []}),
         "Error: MAST query failed (Bad filter)\n"),
    ],
)  # fmt: skip
def test_broken_answers_are_one_line(mast, tmp_path, status, body, message) -> None:
    state, url = mast
    state.fail_invoke = (status, body)
    result = invoke("--program", 12242, "--out", tmp_path / "out", "--server", url)
    assert result.exit_code == 4
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_only_the_stand_in_was_asked(mast, tmp_path) -> None:
    # astroquery makes no call of its own (import, first use) that the stand-in does not know
    state, url = mast
    MastClient(server=url, timeout=5)
    assert state.requests == []
    fetch(FetchCriteria(program=12242, products=("ASN",)), tmp_path, server=url, timeout=5)
    kinds = [kind for kind, _ in state.requests]
    assert kinds == ["columnsconfig", "invoke", "columnsconfig", "invoke", "download"]
    assert [r for k, r in state.requests if k == "columnsconfig"] == [
        "Mast.Caom.Cone", "Mast.Caom.Products",
    ]  # fmt: skip
