"""`survey flag` on full-frame exposures: a million sky pixels make every read "precise", and
the short reads of a STEP sequence then expose the digitisation of the ramp.

Between two non-zeroth reads the change in counts is a whole number of DN (×gain, ÷ a flat
near 1), so in the 2.9-s reads of a STEP200 the per-pixel instantaneous rate r_k sits on a comb
of ≈ 2.35/2.93 ≈ 0.8 e⁻/s spacing. The median of a million such values is one of the comb's
teeth — off by up to half a step — while the mean is not (read noise of ≈ 8 DN dithers the
comb). A clean exposure must stay ``linear`` and show no left − right excess.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from survey.flag import FlagParameters, flag_catalog
from survey.scan import scan_paths
from survey.simulate import ProgramConfig, simulate_program


@pytest.fixture(scope="module")
def clean_full_frames(tmp_path_factory) -> Path:
    """Two clean full-frame STEP200 exposures (F140W, F105W), scanned into a catalog."""
    root = tmp_path_factory.mktemp("flag_fullframe")
    config = ProgramConfig(
        n_visits=2, exposures_per_visit=1, size=1024, seed=3, filters=("F140W", "F105W"),
        he_fraction=0, scattered_fraction=0,
    )  # fmt: skip
    summary = simulate_program(root / "prog", config)
    assert set(summary.truth["category"]) == {"linear"}
    catalog = root / "survey.duckdb"
    scan_paths([root / "prog"], catalog=catalog, jobs=1)
    flag_catalog(catalog, FlagParameters())
    return catalog


def _query(catalog: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(catalog), read_only=True) as con:
        return con.sql(sql).fetchall()


@pytest.mark.slow
def test_short_reads_show_the_digitisation_comb(clean_full_frames) -> None:
    """The premise: in reads 2–4 the per-pixel median is off by far more than its error (and
    so are the box medians, which is why left − right is taken from the box means)."""
    rows = _query(
        clean_full_frames,
        "select rootname, inst_median, inst_mean, inst_sigma / sqrt(inst_nclip) from reads "
        "where sampnum between 2 and 4",
    )
    offsets = [abs(median - mean) / err for _, median, mean, err in rows]
    assert max(offsets) > 5


@pytest.mark.slow
def test_clean_full_frames_are_linear(clean_full_frames) -> None:
    rows = _query(clean_full_frames, "select rootname, verdict, reason from flags")
    assert [verdict for _, verdict, _ in rows] == ["linear", "linear"], rows


@pytest.mark.slow
def test_read_rates_are_flat_within_their_errors(clean_full_frames) -> None:
    """Every used read agrees with the exposure's mean rate (χ² of a constant rate ≈ 1), and
    left − right (box means) is noise: within 4σ in every read, below the 0.1 e⁻/s limit."""
    rows = _query(
        clean_full_frames,
        "select rootname, chi2_dof, excess, lr_max from exposure_metrics order by rootname",
    )
    for _, chi2_dof, excess, lr_max in rows:
        assert chi2_dof < 5
        assert excess < 0.1
        assert lr_max < 0.1
    pulls = _query(clean_full_frames, "select abs(lr_diff) / lr_err from read_metrics")
    assert max(pull for (pull,) in pulls) < 4
