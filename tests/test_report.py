"""`survey report` on a scanned, flagged and fixed simulated program: chart specs, the pages'
safety (no network sources, escaped header text), the numbers they show against the catalog,
the before/after products `survey fix` stores, and a real headless browser."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import altair as alt
import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from survey.cli import SurveyGroup
from survey.fix.command import fix
from survey.flag.command import flag
from survey.report import ReportResult, build, charts, write_report
from survey.report.command import report
from survey.report.data import ROBUST_SIGMA, WINDOW_STD, exposure_frame, noise_frame, ramp_frame
from survey.report.images import STRETCH_MAX, STRETCH_MIN, encode_png, stretch
from survey.report.page import script_json
from survey.scan import scan_paths
from survey.simulate import IBOHBFB9Q_HE, ProgramConfig, TimeProfile, plan_program, simulate_program

CLI = SurveyGroup(name="survey", commands={"flag": flag, "fix": fix, "report": report})
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def invoke(*args: object):
    return CliRunner().invoke(CLI, [*map(str, args)])


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of an 8-bit greyscale, filter-0 PNG (what encode_png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 0)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8)
    rows = raw.reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:]


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """Two visits of two 266² exposures: He I (ibohbfb9q-like) and limb light in F105W, two
    linear F140W; scanned, flagged, fixed. TARGNAME of the first is hostile markup.
    Returns (root, catalog, {category: rootname})."""
    root = tmp_path_factory.mktemp("report_program")
    config = ProgramConfig(n_visits=2, exposures_per_visit=2, size=266, seed=11, he_fraction=0,
                           scattered_fraction=0, filters=("F105W", "F140W"),
                           grism_direct=False)  # fmt: skip
    specs = plan_program(config)
    limb = TimeProfile("rising", amplitude=2.0, t0=300.0, width=600.0)
    specs[0] = dataclasses.replace(specs[0], he=IBOHBFB9Q_HE, zodi=0.47)
    specs[1] = dataclasses.replace(specs[1], scatter=limb, scatter_edge=480.0,
                                   scatter_softness=40.0)  # fmt: skip
    simulate_program(root / "prog", config, specs=specs)
    catalog = root / "survey.duckdb"
    scanned = scan_paths([root / "prog"], catalog=catalog, jobs=1)
    assert scanned.scanned == 4 and not scanned.failures, scanned.failures
    with duckdb.connect(str(catalog)) as con:  # as if a FITS header carried it
        con.execute("update exposures set targname = $t where rootname = $r",
                    {"t": HOSTILE, "r": specs[0].rootname}).fetchall()  # fmt: skip
    assert invoke("flag", "--catalog", catalog).exit_code == 0
    result = invoke("fix", "--flagged", "--catalog", catalog, "--out", root / "fixed")
    assert result.exit_code == 0, result.output
    names = dict(zip(("he", "limb", "linear1", "linear2"), (s.rootname for s in specs),
                     strict=True))  # fmt: skip
    return root, catalog, names


@pytest.fixture(scope="module")
def written(program):
    root, catalog, _ = program
    result = invoke("report", "--catalog", catalog, "--out", root / "reports")
    assert result.exit_code == 0, result.output
    return result


def pages(program) -> dict[str, str]:
    root = program[0]
    return {p.name: p.read_text(encoding="utf-8") for p in (root / "reports").glob("*.html")}


def table(catalog: Path, query: str) -> pl.DataFrame:
    with duckdb.connect(str(catalog), read_only=True) as con:
        return con.sql(query).pl()


# -- what survey fix stores for the report ---------------------------------------------------
def test_fix_stores_histograms_and_cutouts(program):
    _, catalog, names = program
    query = (
        "select i.*, x.before_sigma, x.after_sigma, x.before_median, x.after_median, "
        "x.after_npix from fix_images i join fixes x using (rootname)"
    )
    images = table(catalog, query)
    assert sorted(images["rootname"]) == sorted([names["he"], names["limb"]])
    he = images.filter(pl.col("rootname") == names["he"]).row(0, named=True)
    assert len(he["before_hist"]) == len(he["after_hist"]) == 80
    # bins span ±5σ of both skies: nearly every sky pixel of the corrected FLT is counted
    assert 0.99 * he["after_npix"] <= sum(he["after_hist"]) <= he["after_npix"]
    centres = he["hist_lo"] + (np.arange(80) + 0.5) * (he["hist_hi"] - he["hist_lo"]) / 80

    def percentiles(counts, *qs):
        cdf = np.cumsum(counts) / np.sum(counts)
        return [float(np.interp(q, cdf, centres)) for q in qs]

    step = (he["hist_hi"] - he["hist_lo"]) / 80
    # the histograms show what the catalog's statistics say: the archive FLT's sky biased
    # high by the failed fit, the corrected one at the mean rate, widths ≈ the robust σ
    for when in ("before", "after"):
        p16, p50, p84 = percentiles(he[f"{when}_hist"], 0.16, 0.5, 0.84)
        assert p50 == pytest.approx(he[f"{when}_median"], abs=step)
        assert (p84 - p16) / 2 == pytest.approx(he[f"{when}_sigma"], rel=0.2)
    assert he["before_median"] - he["after_median"] > 0.1
    before, after = decode_png(he["before_png"]), decode_png(he["after_png"])
    assert before.shape == after.shape == (he["cutout_size"],) * 2 == (192, 192)
    assert he["stretch_sigma"] == pytest.approx(he["after_sigma"])

    # one stretch for both: the grain of each image scales with its own sky σ
    def grain(image):
        return np.median(np.abs(np.diff(image.astype(float), axis=1)))

    ratio = grain(before) / grain(after)
    assert ratio == pytest.approx(he["before_sigma"] / he["after_sigma"], rel=0.25)


def test_png_and_stretch_by_hand():
    image = np.array([[0, 128, 255], [7, 8, 9]], dtype=np.uint8)
    assert (decode_png(encode_png(image)) == image).all()
    values = np.array([[1.0, 1.0 + STRETCH_MAX * 0.1], [1.0 + STRETCH_MIN * 0.1, np.nan]])
    shown = stretch(values, sky=1.0, sigma=0.1)[::-1]  # rows flipped back: north up
    assert shown[0, 1] == 255 and shown[1, 0] == 0 and shown[1, 1] == 0
    lo, hi = np.arcsinh(STRETCH_MIN / 3), np.arcsinh(STRETCH_MAX / 3)
    assert shown[0, 0] == round(-lo / (hi - lo) * 255)


# -- frames and chart specs ------------------------------------------------------------------
def test_ramp_frame_by_hand():
    reads = pl.DataFrame({
        "rootname": ["flt00000q"] * 3 + ["pop00000q"] * 3, "sampnum": [1, 2, 3] * 2,
        "samptime": [1.0, 2.0, 3.0] * 2, "t_start": [0.0, 1.0, 2.0] * 2,
        "sky_median": [9.0] * 6, "rate_sky": [9.0] * 6, "lr_diff": [0.0] * 6, "used": [True] * 6,
    })  # fmt: skip
    fixes = pl.DataFrame({
        "rootname": ["flt00000q", "pop00000q"], "method": ["flatten", "pop-reads"],
        "read_times": [[0.0, 1.0, 2.0, 3.0]] * 2, "read_sky": [[None, 1.0, 1.5, 2.0]] * 2,
        "read_offsets": [[0.0, 1.0, 0.5, 0.0], [0.0] * 4],
        "read_popped": [[False] * 4, [False, False, True, False]],
    })  # fmt: skip
    exposures = pl.DataFrame(
        {
            "rootname": ["flt00000q", "pop00000q"],
            "visit": ["flt000"] * 2,
            "filter": ["F105W"] * 2,
            "verdict": ["uniform-tvb"] * 2,
        }
    )
    frame = ramp_frame(reads, fixes, exposures)

    def series(root, quantity, stage):
        rows = frame.filter(rootname=root, quantity=quantity, stage=stage).sort("t")
        return rows["rate"].to_list()

    # counts C = m·t = 1, 3, 6: instantaneous 1, 2, 3 before; flattened: 2·t, rate 2
    assert series("flt00000q", "instantaneous", "before") == [1.0, 2.0, 3.0]
    assert series("flt00000q", "cumulative", "before") == [1.0, 1.5, 2.0]
    assert series("flt00000q", "instantaneous", "after") == [2.0, 2.0, 2.0]
    assert series("flt00000q", "cumulative", "after") == [2.0, 2.0, 2.0]
    # interval 2 popped: kept intervals 1 (rate 1) and 3 (rate 3)
    assert series("pop00000q", "instantaneous", "after") == [1.0, 3.0]
    assert series("pop00000q", "cumulative", "after") == [1.0, 2.0]


def small_exposures(n: int = 4, *, flt_sky_std: bool = False) -> pl.DataFrame:
    raw = pl.DataFrame({
        "rootname": [f"ibg20{i // 2}a{i}q" for i in range(n)],
        "targname": ["T"] * n, "filter": ["F105W", "F140W"] * (n // 2),
        "verdict": ["uniform-tvb", "linear"] * (n // 2), "reason": ["r"] * n,
        "expstart": [57900.0 + i / 50 for i in range(n)],
        "expend": [57900.0 + i / 50 + 0.018 for i in range(n)],
        "score": [1.5 - i * 0.1 for i in range(n)], "excess": [1.6] * n, "ratio": [3.0] * n,
        "chi2_dof": [500.0, 1.0] * (n // 2), "lr_max": [0.01] * n,
        "fix_status": ["fixed", None] * (n // 2), "fix_method": ["flatten", None] * (n // 2),
        "before_sigma": [0.04, None] * (n // 2), "after_sigma": [0.031, None] * (n // 2),
        "before_std": [0.17, None] * (n // 2), "after_std": [0.046, None] * (n // 2),
        "before_median": [1.6, None] * (n // 2), "after_median": [1.5, None] * (n // 2),
        "flt_sky_sigma": [0.12, 0.03] * (n // 2), "flt_sky_median": [1.6, 0.9] * (n // 2),
    })  # fmt: skip
    if flt_sky_std:  # the scan's window std (a later catalog)
        raw = raw.with_columns(flt_sky_std=pl.Series([0.15, 0.038] * (n // 2)))
    return exposure_frame(raw, {"ibg200": "visit-ibg200.html", "ibg201": "visit-ibg201.html"})


def test_exposure_frame_times_are_utc():
    frame = small_exposures()
    first = frame.row(0, named=True)
    assert first["start_utc"] == "2017-05-27T00:00:00.000Z"  # MJD 57754 = 2017-01-01, +146 d
    assert first["visit"] == "ibg200" and first["href"] == "visit-ibg200.html"


def test_overview_spec_holds_every_exposure():
    frame = small_exposures()
    spec = charts.overview_chart(frame).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert sorted(v["rootname"] for v in values) == sorted(frame["rootname"])
    text = json.dumps(spec)
    for field in ("start_utc", "visit", "verdict", "filter", "href", "reason", "excess", "ratio"):
        assert f'"field": "{field}"' in text
    params = {p["name"] for p in spec["params"]}
    assert {charts.FILTER_PARAM, charts.VISIT_PARAM} <= params
    assert (
        list(charts.VERDICT_COLOURS)
        == spec["vconcat"][0]["layer"][1]["encoding"]["color"]["scale"]["domain"]
    )


def test_ranking_spec_draws_the_thresholds():
    frame = small_exposures()
    thresholds = {"min_excess": 0.1, "min_chi2": 10.0, "lr_threshold": 0.1}
    spec = charts.ranking_chart(frame, thresholds).to_dict()
    rule_values = sorted(
        value[0][field]
        for value in (d for d in spec["datasets"].values() if len(d) == 1)
        for field in ("excess", "chi2_plot", "lr_max")
        if field in value[0]
    )
    assert rule_values == [0.1, 0.1, 10.0]
    ranked = max(spec["datasets"].values(), key=len)
    assert [r["rank"] for r in sorted(ranked, key=lambda r: -r["score"])] == [1, 2, 3, 4]


def test_ranking_draws_excess_against_min_excess():
    """uniform-tvb tests excess ≥ min_excess (sql/100_ranking.sql), so the panel with the
    min_excess line plots the excess: an exposure flagged with excess 0.12 ≥ 0.1 but score
    max(0, 0.12 − 3·0.03) = 0.03 < 0.1 sits above the line, not below it. Ranks stay by score."""
    frame = small_exposures().with_columns(
        excess=pl.Series([0.12, 0.02, 0.5, 0.03]), score=pl.Series([0.03, 0.0, 0.4, 0.01])
    )
    spec = charts.ranking_chart(frame, {"min_excess": 0.1}).to_dict()
    top = spec["vconcat"][0]["layer"]
    assert top[0]["encoding"]["y"]["field"] == "excess"
    assert "excess" in top[0]["encoding"]["y"]["title"]
    rules = [d[0] for d in spec["datasets"].values() if len(d) == 1]
    assert rules == [{"excess": 0.1, "label": "min excess 0.1"}]
    assert "score" in top[0]["encoding"]["x"]["title"]
    assert any(t.get("field") == "score" for t in top[0]["encoding"]["tooltip"])
    ranked = max(spec["datasets"].values(), key=len)
    by_rank = {r["rank"]: (r["score"], r["excess"]) for r in ranked}
    assert by_rank == {1: (0.4, 0.5), 2: (0.03, 0.12), 3: (0.01, 0.03), 4: (0.0, 0.02)}


def test_thin_keeps_evenly_spaced_rows_by_hand():
    """10 linear rows thinned to 4: rows i with 4·i mod 10 < 4, i.e. 0, 3, 5, 8 (one at the
    start of each stretch of 2.5); every other row kept."""
    frame = pl.DataFrame({"i": range(13), "verdict": ["linear"] * 10 + ["uniform-tvb"] * 3})
    shown, n = charts.thin(frame, pl.col("verdict") == "linear", 4)
    assert n == 10 and shown["i"].to_list() == [0, 3, 5, 8, 10, 11, 12]
    assert charts.thin(frame, pl.col("verdict") == "linear", 10)[0].equals(frame)
    sampled, note = charts.sample_linear(frame, 4)
    assert sampled.equals(shown)
    assert "all 3 exposures not linear" in note and "4 of 10 linear" in note
    assert charts.sample_linear(frame, 10) == (frame, "")


def test_noise_frame_pairs_before_and_after():
    """σ is the notebook's window std; the robust σ rides along. The linear reference is the
    scan's robust σ (exposures.flt_sky_sigma) until the catalog has exposures.flt_sky_std."""
    noise = noise_frame(small_exposures())
    fixed = noise.filter(pl.col("stage") != "linear exposures")
    assert sorted(fixed["sigma"]) == [0.046, 0.046, 0.17, 0.17]
    assert sorted(fixed["robust_sigma"]) == [0.031, 0.031, 0.04, 0.04]
    assert set(fixed["statistic"]) == {WINDOW_STD}
    linear = noise.filter(stage="linear exposures")
    assert linear["sigma"].to_list() == [0.03, 0.03]
    assert set(linear["statistic"]) == {ROBUST_SIGMA}
    spec = json.dumps(charts.noise_chart(noise).to_dict())
    assert '"field": "sigma"' in spec and '"field": "stage"' in spec
    assert '"field": "robust_sigma"' in spec and "std within median" in spec


def test_noise_frame_takes_the_scans_window_std_when_there():
    noise = noise_frame(small_exposures(flt_sky_std=True))
    linear = noise.filter(stage="linear exposures")
    assert linear["sigma"].to_list() == [0.038, 0.038]
    assert linear["robust_sigma"].to_list() == [0.03, 0.03]
    assert set(linear["statistic"]) == {WINDOW_STD}
    fixed = noise.filter(stage="survey fix")
    assert fixed["sigma"].to_list() == [0.046, 0.046]


def test_row_limit_is_deliberate():
    frame = pl.DataFrame({"x": np.arange(6000.0), "y": np.zeros(6000)})
    chart = alt.Chart(frame).mark_point().encode(x="x:Q", y="y:Q")
    with charts.row_limit():
        assert len(next(iter(chart.to_dict()["datasets"].values()))) == 6000
    with charts.row_limit(5999), pytest.raises(alt.MaxRowsError):
        chart.to_dict()


def test_script_json_cannot_close_the_script():
    text = script_json({"t": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": "</script><b>&"}


# -- the written report ----------------------------------------------------------------------
def test_pages_and_cli_output(program, written):
    root, catalog, names = program
    assert written.output.strip().splitlines()[-1] == str(root / "reports" / "index.html")
    found = pages(program)
    visits = sorted({names[k][:6] for k in names})
    assert sorted(found) == sorted(["index.html", *(f"visit-{v}.html" for v in visits)])
    result = write_report(catalog, root / "api", overwrite=False)
    assert isinstance(result, ReportResult)
    assert result.index == root / "api" / "index.html" and result.pages[0] == result.index
    assert (result.n_exposures, result.n_visits, result.n_fixed) == (4, 2, 2)
    for path in result.pages:  # each page inlines its JavaScript once (~0.9 MB), no more
        assert 0.8e6 < path.stat().st_size < 2.5e6


def test_no_network_sources(program, written):
    for name, text in pages(program).items():
        # every script is inline: no src attribute on any script element
        assert not re.search(r"<script\b[^>]*\bsrc\s*=", text, flags=re.I), name
        assert re.search(r"vegaEmbed\(", text), name
        markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S | re.I)
        for tag in re.findall(r"<[a-z]+\b[^>]*>", markup, flags=re.I):
            for url in re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", tag):
                assert url.startswith("data:image/png;base64,") or re.fullmatch(
                    r"(?:index|visit-[a-z0-9]{6})\.html", url
                ), (name, tag[:120])
        assert not re.search(r"https?://", markup), name
        assert not re.search(r"@import|url\(", markup), name


def test_header_text_cannot_inject_markup(program, written):
    for name, text in pages(program).items():
        assert HOSTILE not in text, name
        assert "<img src=x" not in text and "<script>alert" not in text, name
        # the page's own four script elements and nothing else
        assert len(re.findall(r"<script\b", text)) == 4, name
    visit = pages(program)[f"visit-{program[2]['he'][:6]}.html"]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in visit


def test_numbers_shown_are_the_catalogs(program, written):
    _, catalog, names = program
    columns = ("before_mean", "before_median", "before_std", "before_sigma", "after_mean",
               "after_median", "after_std", "after_sigma")  # fmt: skip
    fixes = table(catalog, f"select rootname, method, {', '.join(columns)} from fixes")
    index = pages(program)["index.html"]
    for row in fixes.iter_rows(named=True):  # the seed-style table, in this order
        cells = "".join(f'<td class="num">{row[c]:.4f}</td>' for c in columns)
        assert f"<td>{row['rootname']}</td>" in index and cells in index
    he = fixes.filter(rootname=names["he"]).row(0, named=True)
    assert he["method"] == "flatten" and he["before_std"] > 2 * he["after_std"]
    gain = f"{he['before_std'] / he['after_std']:.2f}"
    robust_gain = f"{he['before_sigma'] / he['after_sigma']:.2f}"
    assert f'<td class="num">{gain}</td><td class="num">{robust_gain}</td>' in index
    assert "std within median ± 0.5" in index


def test_visit_pages_carry_ramps_histograms_and_images(program, written):
    _, _, names = program
    found = pages(program)
    flagged = found[f"visit-{names['he'][:6]}.html"]
    for chart_id in ("ramps", "scattered", "histograms"):
        assert f'<div id="{chart_id}"></div>' in flagged
    assert flagged.count('<img src="data:image/png;base64,') == 4  # 2 exposures × before/after
    linear = found[f"visit-{names['linear1'][:6]}.html"]
    assert '<div id="ramps"></div>' in linear and "data:image/png" not in linear


def test_existing_pages_are_kept_without_overwrite(program, written):
    root, catalog, _ = program
    index = root / "reports" / "index.html"
    before = index.read_bytes()
    result = invoke("report", "--catalog", catalog, "--out", root / "reports")
    assert result.exit_code == 3 and "Error: " in result.output and "--overwrite" in result.output
    assert index.read_bytes() == before
    assert invoke("report", "--catalog", catalog, "--out", root / "reports",
                  "--overwrite").exit_code == 0  # fmt: skip


NAN_CELLS = (  # (table, column, value): every float column the report reads may hold NaN
    ("reads", "inst_left_mean", "nan"),  # → the read's left − right: the reviewer's case
    ("reads", "sky_median", "inf"),
    ("flags", "lr_max", "nan"),
    ("flags", "excess", "-inf"),
    ("exposures", "flt_sky_sigma", "nan"),
    ("fixes", "before_std", "nan"),
    ("fixes", "after_std", "nan"),
    ("fix_images", "hist_lo", "nan"),
)


def test_nan_in_the_catalog_is_shown_as_missing(program, tmp_path):
    """NaN reaches a catalog legitimately (an empty region's sky, an undefined σ): the report
    is written, with NaN/inf as missing values (JSON has no NaN: the page would not load)."""
    _, catalog, names = program
    copy = tmp_path / "nan.duckdb"
    shutil.copy(catalog, copy)
    with duckdb.connect(str(copy)) as con:
        for table_name, column, value in NAN_CELLS:
            con.execute(f"update {table_name} set {column} = '{value}'::double "
                        "where rootname = $r", {"r": names["he"]}).fetchall()  # fmt: skip
        con.execute("update reads set inst_left_mean = 'nan'::double where sampnum = 3")
    result = invoke("report", "--catalog", copy, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    specs = {}
    for page in sorted((tmp_path / "r").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        found = re.search(r"const surveySpecs = (\{.*?\});</script>", text, flags=re.S).group(1)
        specs[page.name] = json.loads(found, parse_constant=pytest.fail)  # NaN, Infinity: fail
    visit = specs[f"visit-{names['he'][:6]}.html"]
    lr = [r for d in visit["scattered"]["datasets"].values() for r in d if "rootname" in r]
    assert all(isinstance(r["lr_diff"], float) for r in lr)
    # every read of the He I exposure has a NaN left box: no left − right; the others keep theirs
    assert {r["rootname"] for r in lr} == {names["limb"]}
    hist = [r for d in visit["histograms"]["datasets"].values() for r in d if "fraction" in r]
    assert names["he"] not in {r["rootname"] for r in hist}  # its histogram range is NaN


def test_a_failing_page_writes_no_page(program, tmp_path, monkeypatch):
    """A page that fails to render (here: a visit page) leaves no index behind, so a re-run
    without --overwrite works."""
    _, catalog, _ = program
    render = build.render_page

    def render_but_visits(page):
        if page.title.startswith("Visit"):
            raise ValueError("Out of range float values are not JSON compliant")
        return render(page)

    monkeypatch.setattr(build, "render_page", render_but_visits)
    with pytest.raises(ValueError, match="JSON"):
        write_report(catalog, tmp_path / "r")
    assert not list((tmp_path / "r").iterdir())  # no page, no temporary file
    monkeypatch.undo()
    assert write_report(catalog, tmp_path / "r").index.is_file()


def test_a_chart_over_the_row_limit_is_one_line(program, tmp_path, monkeypatch):
    _, catalog, _ = program
    monkeypatch.setattr(charts, "MAX_ROWS", 3)
    result = invoke("report", "--catalog", catalog, "--out", tmp_path / "r")
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: index.html: the overview chart: more than 3 rows")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def test_an_archive_scale_catalog_gets_a_drawable_index(tmp_path):
    """10⁵ exposures (98 % linear, > MAX_ROWS): the index draws every exposure not linear and
    LINEAR_SAMPLE linear ones, evenly spaced, and says so; ranks count every exposure.
    Rootnames of no valid visit, so that only the index is written (the visit pages are
    bounded by the visit)."""
    from survey.flag.synthetic import STEP200_TIMES, write_synthetic_catalog
    from survey.flag.triage import FlagParameters, flag_catalog

    n, rng = 100_000, np.random.default_rng(5)
    rates = 0.5 + rng.normal(0, 0.005, (n, len(STEP200_TIMES)))
    he = rng.random(n) < 0.02
    rates[he] += rng.uniform(0.2, 2.0, (he.sum(), 1)) * np.clip((STEP200_TIMES - 400) / 600, 0, 1)
    catalog = tmp_path / "archive.duckdb"
    write_synthetic_catalog(catalog, rates, rootnames=[f"X{i:08d}" for i in range(n)])
    flag_catalog(catalog, FlagParameters())
    verdicts = table(catalog, "select rootname, verdict from flags")
    linear = verdicts.filter(verdict="linear")["rootname"].sort()
    others = set(verdicts.filter(pl.col("verdict") != "linear")["rootname"])
    assert linear.len() > charts.MAX_ROWS and others

    result = write_report(catalog, tmp_path / "r")
    assert [p.name for p in result.pages] == ["index.html"]
    text = result.index.read_text(encoding="utf-8")
    specs = json.loads(re.search(r"const surveySpecs = (\{.*?\});</script>", text,
                                 flags=re.S).group(1))  # fmt: skip
    overview = max(specs["overview"]["datasets"].values(), key=len)
    drawn = {r["rootname"] for r in overview}
    assert others <= drawn and len(drawn - others) == charts.LINEAR_SAMPLE
    # evenly spaced in time (rootname order here): the m-th of L is linear[⌈m·n/L⌉]
    limit, n_linear = charts.LINEAR_SAMPLE, linear.len()
    expected = {linear[-(-m * n_linear // limit)] for m in range(limit)}
    assert drawn - others == expected
    note = f"all {len(others):,} exposures not linear"
    assert note in json.dumps(specs["overview"]["title"], ensure_ascii=False)
    assert f"{limit:,} of {n_linear:,} linear" in json.dumps(specs["ranking"]["title"])
    ranked = max(specs["ranking"]["datasets"].values(), key=len)
    ranks = [r["rank"] for r in ranked]
    assert len(ranks) == len(set(ranks)) == len(others) + limit and max(ranks) > 0.99 * n


def test_missing_catalog_is_one_line(tmp_path):
    result = invoke("report", "--catalog", tmp_path / "none.duckdb", "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "no catalog" in result.output


def test_a_catalog_without_fix_images_still_reports(program, tmp_path):
    _, catalog, _ = program
    copy = tmp_path / "old.duckdb"
    shutil.copy(catalog, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("drop table fix_images").fetchall()
    result = write_report(copy, tmp_path / "r")
    visit_pages = [p for p in result.pages if p.name != "index.html"]
    assert all("data:image/png" not in p.read_text() for p in visit_pages)


def test_a_catalog_fixed_before_the_notebook_statistics_still_reports(program, tmp_path):
    """`fixes` without before/after mean and std (read-only: the report cannot add them): σ
    falls back to the robust σ, and the page says so."""
    _, catalog, _ = program
    copy = tmp_path / "old.duckdb"
    shutil.copy(catalog, copy)
    with duckdb.connect(str(copy)) as con:
        for column in ("before_mean", "before_std", "after_mean", "after_std"):
            con.execute(f"alter table fixes drop column {column}").fetchall()
        robust = con.execute("select before_sigma from fixes order by rootname").fetchall()
    result = write_report(copy, tmp_path / "r")
    index = result.index.read_text(encoding="utf-8")
    assert "σ: robust where the window std is missing" in index
    for (sigma,) in robust:
        assert f'<td class="num">{sigma:.4f}</td>' in index


# -- a real browser, offline -----------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but no Chromium: .ci/run installs the Debian package `chromium`")
    pytest.skip("no Chromium on PATH (Debian: apt-get install chromium); runs in CI")
    return None


def _chromium_run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync",
        f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=20000", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_every_chart_renders_in_a_browser_offline(program, written, tmp_path):
    browser = _chromium()
    for name, text in pages(program).items():
        n_charts = len(json.loads(re.search(r"const surveySpecs = (\{.*?\});</script>", text,
                                            flags=re.S).group(1)))  # fmt: skip
        path = program[0] / "reports" / name
        run = _chromium_run(browser, tmp_path / f"profile-{name}", "--dump-dom", path.as_uri())
        dom = run.stdout
        root_tag = re.search(r"<html\b[^>]*>", dom).group(0)  # where the page records its state
        assert f'data-rendered="{n_charts}"' in root_tag, (name, root_tag, run.stderr[-2000:])
        assert "data-js-errors" not in root_tag, (name, root_tag)
        console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
        assert not [line for line in console if re.search(r"error|uncaught", line, re.I)], console
        for chart_id in re.findall(r'<div id="([a-z]+)"', text):
            block = dom.split(f'id="{chart_id}"', 1)[1].split("</section>", 1)[0]
            assert "<svg" in block and 'class="mark-' in block, (name, chart_id)
            assert re.search(r'class="mark-(?:symbol|line|rect|rule)', block), (name, chart_id)


def test_filter_choice_reaches_charts_and_tables(program, written, tmp_path):
    browser = _chromium()
    index = program[0] / "reports" / "index.html"
    doms = {}
    for choice in ("", "#filter=F140W"):
        run = _chromium_run(browser, tmp_path / f"p{len(doms)}", "--dump-dom",
                            index.as_uri() + choice)  # fmt: skip
        assert 'data-rendered="3"' in re.search(r"<html\b[^>]*>", run.stdout).group(0)
        doms[choice] = run.stdout

    def overview_marks(dom: str) -> int:
        block = dom.split('id="overview"', 1)[1].split("</section>", 1)[0]
        return len(re.findall(r'<path[^>]*aria-roledescription="point"', block))

    # 4 exposures, 2 in F140W; each exposure is a point in both panels of the overview
    assert overview_marks(doms[""]) == 8 and overview_marks(doms["#filter=F140W"]) == 4
    hidden = re.findall(r'<tr data-filter="([A-Z0-9]+)"[^>]*\bhidden', doms["#filter=F140W"])
    assert hidden == ["F105W", "F105W"]  # the two fixed F105W exposures of the noise table
    assert not re.search(r"<tr[^>]*\bhidden", doms[""])
