"""The source mask keeps smooth sky structure: Earth-limb light must stay measurable."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from survey.scan import scan_paths
from survey.simulate import TimeProfile, exposure_spec, simulate_exposure
from survey.wfc3ir.fitsio import write_ima


@pytest.fixture(scope="module")
def limb_catalog(tmp_path_factory) -> Path:
    """One F140W exposure whose left side is up to 1.3 e-/s brighter early on (decaying)."""
    folder = tmp_path_factory.mktemp("limb")
    limb = TimeProfile("decaying", amplitude=1.3, t0=0.0, width=600.0)
    sim = simulate_exposure(exposure_spec(size=266, filter="F140W", seed=21, scatter=limb))
    write_ima(sim.ramp, folder / f"{sim.truth.spec.rootname}_ima.fits")
    catalog = folder / "limb.duckdb"
    scan_paths([folder], catalog=catalog, jobs=1)
    return catalog


def test_scattered_light_is_not_masked_as_a_source(limb_catalog: Path) -> None:
    with duckdb.connect(str(limb_catalog), read_only=True) as con:
        (fraction,) = con.execute("select mask_fraction from exposures").fetchone()
        lr = con.execute(
            "select max(lr_diff), count(lr_diff) from read_metrics where used"
        ).fetchone()
    assert lr[1] > 5 and lr[0] > 0.5  # left - right measured in most reads, and large
    # the bright side is not masked wholesale (what is masked here is mostly the last read's
    # cosmic rays of this CRCORR=OMIT input, each grown by the mask's 3 px)
    assert fraction < 0.75
