"""What to fetch: the user's options, validated before anything touches the network.

Every value here ends up in a MAST query or, through MAST's answer, in a file name, so each is
checked against a strict pattern first and a bad one is named in the error. The checks are
plain functions so that the CLI can report them as option errors and the library as
:class:`FetchCriteriaError`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..errors import SurveyError

__all__ = [
    "IR_FILTERS",
    "PRODUCTS",
    "FetchCriteria",
    "FetchCriteriaError",
    "parse_filters",
    "parse_obs_id",
    "parse_products",
    "parse_program",
    "parse_visit",
]

#: calwf3 products ``survey fetch`` knows, as MAST's ``productSubGroupDescription`` spells them.
PRODUCTS = ("IMA", "FLT", "RAW", "ASN")

#: WFC3/IR spectral elements (IHB table 7.1), as MAST's ``filters`` column spells them.
IR_FILTERS = frozenset(
    ("F098M", "F105W", "F110W", "F125W", "F126N", "F127M", "F128N", "F130N", "F132N", "F139M",
     "F140W", "F153M", "F160W", "F164N", "F167N", "G102", "G141", "BLANK")
)  # fmt: skip

_VISIT = re.compile(r"[A-Za-z0-9]{2}")
# Letters, digits and the two wildcards; a WFC3 obs_id has 9 characters.
_OBS_ID = re.compile(r"[A-Za-z0-9*?]{1,9}")
#: Without --program an obs_id must name its program: ``i`` + the 3-character program code
#: before any wildcard (``IBOH*``), so that ``*`` or ``I*`` cannot ask for the whole archive.
_OBS_ID_PREFIX = re.compile(r"[A-Za-z0-9]{4}")


class FetchCriteriaError(SurveyError, ValueError):
    """An option of ``survey fetch`` is malformed (nothing was sent to MAST)."""

    exit_code = 2


def parse_program(value: int | str) -> int:
    """An HST proposal ID: a positive integer of at most 5 digits."""
    text = str(value).strip()
    if not text.isdecimal() or not 0 < int(text) < 100_000:
        raise FetchCriteriaError(f"program {value!r} is not an HST proposal ID (1-99999)")
    return int(text)


def parse_visit(value: str) -> str:
    """A two-character visit ID (characters 5-6 of a rootname: ibohbfb9q → BF)."""
    if not _VISIT.fullmatch(value):
        raise FetchCriteriaError(f"visit {value!r} is not two letters or digits (e.g. BF)")
    return value.upper()


def parse_obs_id(value: str) -> str:
    """An obs_id or a pattern of one: letters, digits, ``*`` and ``?`` only (e.g. IBOHBF*).

    Kept as typed: it is sent to MAST as given, and compared here without regard to case.
    """
    if not _OBS_ID.fullmatch(value):
        raise FetchCriteriaError(
            f"obs-id {value!r} may hold only letters, digits, * and ? (at most 9 characters)"
        )
    return value


def parse_filters(values: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """WFC3/IR filter names, comma-separated or as a sequence, upper-cased, deduplicated."""
    names = _split(values)
    for name in names:
        if name not in IR_FILTERS:
            raise FetchCriteriaError(
                f"filter {name!r} is not a WFC3/IR filter ({', '.join(sorted(IR_FILTERS))})"
            )
    return names


def parse_products(values: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Product kinds out of :data:`PRODUCTS`, comma-separated or as a sequence."""
    names = _split(values)
    if not names:
        raise FetchCriteriaError(f"name at least one product ({','.join(PRODUCTS)})")
    for name in names:
        if name not in PRODUCTS:
            raise FetchCriteriaError(f"product {name!r} is not one of {','.join(PRODUCTS)}")
    return names


def _split(values: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    items = [values] if isinstance(values, str) else list(values)
    names = [part.strip().upper() for item in items for part in item.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


@dataclass(frozen=True)
class FetchCriteria:
    """Which WFC3/IR observations and which of their calwf3 products to fetch.

    At least a program or an obs-id pattern is required: an archive-wide download of every
    WFC3/IR exposure is never what a user means.
    """

    program: int | None = None
    visit: str | None = None
    obs_id: str | None = None
    filters: tuple[str, ...] = ()
    products: tuple[str, ...] = PRODUCTS

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        if self.program is not None:
            set_(self, "program", parse_program(self.program))
        if self.visit is not None:
            set_(self, "visit", parse_visit(self.visit))
        if self.obs_id is not None:
            set_(self, "obs_id", parse_obs_id(self.obs_id))
        set_(self, "filters", parse_filters(self.filters))
        set_(self, "products", parse_products(self.products))
        if self.program is None and self.obs_id is None:
            raise FetchCriteriaError("name a --program or an --obs-id (not the whole archive)")
        if self.program is None and not _OBS_ID_PREFIX.match(self.obs_id or ""):
            raise FetchCriteriaError(
                f"obs-id {self.obs_id!r} without --program must start with 4 letters or digits"
                " (i + the program code, e.g. IBOH*), not the whole archive"
            )

    def mast_criteria(self) -> dict[str, object]:
        """Keyword arguments of ``Observations.query_criteria`` for these options.

        The visit has no MAST column and ``?`` is not a MAST wildcard, so the query asks for a
        superset (``?`` sent as ``*``) and :meth:`matches` narrows the answer exactly.
        """
        criteria: dict[str, object] = {"obs_collection": "HST", "instrument_name": "WFC3/IR"}
        if self.program is not None:
            criteria["proposal_id"] = str(self.program)
        if self.filters:
            criteria["filters"] = list(self.filters)
        if self.obs_id is not None:
            criteria["obs_id"] = self.obs_id.replace("?", "*")
        return criteria

    def matches(self, obs_id: str) -> bool:
        """Whether an observation MAST returned fits the visit and the obs-id pattern."""
        obs_id = obs_id.upper()
        if self.visit is not None and obs_id[4:6] != self.visit:
            return False
        return self.obs_id is None or fnmatch.fnmatchcase(obs_id, self.obs_id.upper())

    def describe(self) -> str:
        """The options in words, for messages: ``program 12242, visit BF, F105W``."""
        parts = [f"program {self.program}" if self.program is not None else None,
                 f"visit {self.visit}" if self.visit else None,
                 f"obs-id {self.obs_id}" if self.obs_id else None,
                 "/".join(self.filters) or None]  # fmt: skip
        return ", ".join(p for p in parts if p)
