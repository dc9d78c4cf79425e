"""The installed package holds every subpackage and the SQL files."""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "survey").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "survey.sql" in listed


def test_sql_folder_ships_as_survey_sql() -> None:
    files = importlib.resources.files("survey.sql")
    assert (files / "README.md").is_file()
    shipped = {p.name for p in files.iterdir()}
    assert {p.name for p in (ROOT / "sql").glob("*.sql")} <= shipped
