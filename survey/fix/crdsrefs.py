"""Best reference files from CRDS for the calwf3 engine (domain reference §6 step 1, §7.9, §8).

What ``crds bestrefs --update-bestrefs --sync-references=1`` does for the recipe, through the
``crds`` Python API: the best references for an exposure's header are chosen by the CRDS rules
(``getrecommendations``), the missing ones are synced into the local cache
(``api.dump_references``), and the caller writes ``iref$<name>`` into a *temporary copy* of
the exposure (the user's file is never touched) with ``iref`` pointing at the cache.

Environment (read by CRDS itself; see the README's "CRDS and calwf3"):

- ``CRDS_PATH``: the cache; ``~/crds_cache`` when unset (CRDS's own default is the STScI-only
  ``/grp/crds/cache``).
- ``CRDS_SERVER_URL``: ``https://hst-crds.stsci.edu`` when unset.
- ``CRDS_MODE``: ``local`` computes best references from the cached rules, so with a synced
  cache no network is needed; ``auto`` (CRDS's default) does the same unless the server asks
  for remote mode.
- ``CRDS_CONTEXT``: the rules (e.g. ``hst_1234.pmap``); the server's latest, or the cache's
  last known one offline.
- ``CRDS_CLIENT_TIMEOUT_SECONDS``: 30 s here unless set (CRDS's default is 3600 s, which makes
  an offline machine hang for an hour before failing).

CRDS reports failures as ``SystemExit`` (its "fatal" errors), as its own ``CrdsError`` family
or as assertion errors; every call is wrapped and any of them becomes one
:class:`CrdsReferenceError` line naming the exposure. CRDS's own log is captured, not printed.
Reference names come from files and servers, so they are validated before they become paths.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .exposure import FixError

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_TIMEOUT_S",
    "IMA_REFTYPES",
    "CrdsReferenceError",
    "References",
    "best_references",
    "crds_configured",
    "raw_reftypes",
]

DEFAULT_SERVER = "https://hst-crds.stsci.edu"
DEFAULT_TIMEOUT_S = 30
#: The only tables a re-entrant run on an IMA opens (§7.9).
IMA_REFTYPES = ("ccdtab", "oscntab", "crrejtab")
#: reftype → the calibration switches that need it (empty: always needed). CRREJTAB is always
#: fetched because the recipe's second run (on the flattened IMA) performs CRCORR.
_REFTYPE_SWITCHES: dict[str, tuple[str, ...]] = {
    "ccdtab": (),
    "oscntab": (),
    "crrejtab": (),
    "bpixtab": ("DQICORR",),
    "darkfile": ("DARKCORR", "ZSIGCORR"),
    "nlinfile": ("NLINCORR", "ZSIGCORR"),
    "pfltfile": ("FLATCORR",),
    "dfltfile": ("FLATCORR",),
    "lfltfile": ("FLATCORR",),
    "imphttab": ("PHOTCORR",),
}
_NAME = re.compile(r"^[a-z0-9_]{1,64}\.(fits|r[0-9][hd])$")
_ENV_KEYS = ("CRDS_PATH", "CRDS_SERVER_URL", "CRDS_MODE", "CRDS_CONTEXT")
#: Importing crds writes its defaults into os.environ, so these values mean "not set".
_CRDS_DEFAULTS = {"CRDS_CLIENT_TIMEOUT_SECONDS": "3600", "CRDS_MODE": "auto"}


class CrdsReferenceError(FixError):
    """CRDS could not give (or sync) the reference files an exposure needs."""


@dataclass(frozen=True)
class References:
    """Best references of one exposure: keyword → local path (``None`` for N/A)."""

    context: str
    paths: dict[str, Path | None]

    def keywords(self) -> dict[str, str]:
        """Header values as calwf3 reads them: ``iref$<name>`` or ``N/A``."""
        return {key: f"iref${p.name}" if p else "N/A" for key, p in self.paths.items()}

    def directories(self) -> set[Path]:
        return {p.parent for p in self.paths.values() if p is not None}


def crds_configured() -> bool:
    """True if the user configured CRDS: CRDS_PATH, CRDS_SERVER_URL or CRDS_CONTEXT set, or
    CRDS_MODE other than CRDS's default ``auto`` (which importing crds writes itself)."""
    return any(os.environ.get(key) not in (None, "", _CRDS_DEFAULTS.get(key)) for key in _ENV_KEYS)


def raw_reftypes(header: Mapping[str, object]) -> tuple[str, ...]:
    """The reftypes a calwf3 run from the RAW needs, from its calibration switches."""
    wanted = []
    for reftype, switches in _REFTYPE_SWITCHES.items():
        if not switches or any(_switch(header, s) == "PERFORM" for s in switches):
            wanted.append(reftype)
    return tuple(wanted)


def _switch(header: Mapping[str, object], key: str) -> str:
    value = header.get(key)
    return value.strip().upper() if isinstance(value, str) else ""


def best_references(
    header: Mapping[str, object], reftypes: tuple[str, ...], *, rootname: str
) -> References:
    """The best references of ``header`` for ``reftypes``, synced into the CRDS cache."""
    parameters = {k: v for k, v in dict(header).items() if isinstance(v, str | int | float)}
    with _crds_session() as log:
        import crds

        context = _call(log, rootname, "choosing the rules", crds.get_context_name, "hst")
        names = _call(log, rootname, "best references", crds.getrecommendations, parameters,
                      reftypes=list(reftypes), context=context, observatory="hst")  # fmt: skip
        paths = {key: _local_path(crds, key, names[key.lower()], rootname) for key in
                 (r.upper() for r in reftypes)}  # fmt: skip
        _sync_missing(log, context, paths, rootname)
    return References(str(context), paths)


def _local_path(crds, keyword: str, name: object, rootname: str) -> Path | None:
    """Where the cache holds ``name`` (validated); ``None`` for a reftype that does not apply."""
    text = str(name)
    if text.upper().startswith("NOT FOUND"):
        if "n/a" in text.lower():
            return None
        reason = _one_line(text[len("NOT FOUND") :])
        raise CrdsReferenceError(f"CRDS: no best reference for {keyword} of {rootname}: {reason}")
    if not _NAME.match(text):
        shown = _one_line(text)[:40]
        raise CrdsReferenceError(f"CRDS: {keyword} of {rootname}: not a reference name {shown!r}")
    return Path(crds.locate_file(text, "hst"))


def _sync_missing(log, context: str, paths: dict[str, Path | None], rootname: str) -> None:
    from crds.client import api

    missing = {key: p for key, p in paths.items() if p is not None and not p.is_file()}
    if not missing:
        return
    detail = ""
    try:
        api.dump_references(context, baserefs=[p.name for p in missing.values()])
    except (SystemExit, Exception) as exc:  # CRDS exits or raises anything
        detail = _last_error(log) or f" ({_one_line(str(exc))[:200]})"
    still = [f"{key} ({p.name})" for key, p in missing.items() if not p.is_file()]
    if still:
        server = os.environ.get("CRDS_SERVER_URL", DEFAULT_SERVER)
        raise CrdsReferenceError(
            f"CRDS: no cached reference for {', '.join(still)} of {rootname} and the server "
            f"{server} did not provide it{detail}; set CRDS_PATH to a synced cache or "
            "CRDS_SERVER_URL"
        )


def _call(log: _ErrorLog, rootname: str, what: str, func, *args, **keys):
    try:
        return func(*args, **keys)
    except (SystemExit, Exception) as exc:  # CRDS exits or raises anything
        detail = _last_error(log) or f" ({type(exc).__name__}: {_one_line(str(exc))[:160]})"
        raise CrdsReferenceError(
            f"CRDS: {what} for {rootname} failed{detail}; set CRDS_PATH to a synced cache "
            "(CRDS_MODE=local works offline) or CRDS_SERVER_URL"
        ) from None


def _last_error(log: _ErrorLog) -> str:
    if not log.errors:
        return ""
    text = _one_line(log.errors[-1]).removeprefix("(FATAL)").strip()
    return f" ({text[:200]})"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _ErrorLog(logging.Handler):
    """Collects CRDS's error messages (to quote the last one in ours)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(record.getMessage())


@contextmanager
def _crds_session() -> Iterator[_ErrorLog]:
    """Defaults for the CRDS environment, fresh CRDS caches, CRDS's log captured; restored
    afterwards."""
    defaults = {
        "CRDS_PATH": str(Path.home() / "crds_cache"),
        "CRDS_CLIENT_TIMEOUT_SECONDS": str(DEFAULT_TIMEOUT_S),
    }
    saved = {key: os.environ.get(key) for key in defaults}
    for key, value in defaults.items():
        if os.environ.get(key) in (None, "", _CRDS_DEFAULTS.get(key)):
            os.environ[key] = value
    from crds.core import log as crds_log

    console = crds_log.THE_LOGGER.console
    if console is not None:
        crds_log.THE_LOGGER.logger.removeHandler(console)
    handler = _ErrorLog()
    crds_log.THE_LOGGER.logger.addHandler(handler)
    try:
        from crds.client import api
        from crds.core import config, utils

        api.set_crds_server(os.environ.get("CRDS_SERVER_URL") or DEFAULT_SERVER)
        utils.clear_function_caches()  # CRDS memoises server info and modes per process
        config.CRDS_REF_SUBDIR_MODE = None
        yield handler
    finally:
        crds_log.THE_LOGGER.logger.removeHandler(handler)
        if console is not None:
            crds_log.THE_LOGGER.logger.addHandler(console)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
