"""Provenance: what made an output file, recorded in the file itself."""

from __future__ import annotations

from collections.abc import Mapping

from astropy.io import fits

from . import __version__

__all__ = ["stamp_header"]


def _fmt(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def stamp_header(
    header: fits.Header, step: str, params: Mapping[str, object] | None = None
) -> None:
    """Record ``survey <version> <step>`` and its parameters as HISTORY lines and keywords.

    ``SURVEYV`` holds the tool version and ``SURVSTEP`` the step; every parameter gets its own
    HISTORY line, so long values are never truncated into a keyword.
    """
    header["SURVEYV"] = (__version__, "survey version that wrote this file")
    header["SURVSTEP"] = (step, "survey step that wrote this file")
    header.add_history(f"survey {__version__} {step}")
    for key, value in (params or {}).items():
        header.add_history(f"  {key} = {_fmt(value)}")
