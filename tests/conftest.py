"""Shared fixtures. Real archive files are referenced in place, never copied."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real WFC3/IR archive files (``../shared/data/real``)."""
    if not (REAL_DATA / "ibxy01z8q_ima.fits").exists():
        pytest.skip(f"real archive files not found in {REAL_DATA}")
    return REAL_DATA
