"""MAST through astroquery, with a deadline and one-line errors.

astroquery sends its requests without a socket timeout (against a server that accepts and
never answers, the first call hung ~100 s even with ``conf.timeout`` set), so every request of
the session goes through an adapter that supplies one: connecting and each read give up after
``timeout`` seconds of silence. Whatever goes wrong on the way (DNS, refused, silence, an HTTP
error, an answer that is not MAST's JSON) becomes a :class:`MastError` with a short reason.

Only this module imports astroquery, and only when a client is made.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..errors import SurveyError
from .criteria import FetchCriteria

__all__ = [
    "DEFAULT_TIMEOUT",
    "MastClient",
    "MastError",
    "MastUnreachableError",
    "Product",
    "Received",
]

#: Seconds of silence after which a MAST request is given up.
DEFAULT_TIMEOUT = 30.0


class MastError(SurveyError):
    """MAST cannot be reached or gave an unusable answer."""

    exit_code = 4


class MastUnreachableError(MastError):
    """No connection to MAST, or it fell silent: nothing more can be fetched now."""


@dataclass(frozen=True)
class Product:
    """One file of MAST's product list. Every field is MAST's, hence untrusted."""

    obs_id: str
    uri: str
    filename: str
    kind: str  # productSubGroupDescription: IMA, FLT, RAW, ASN
    size: int | None  # bytes, when MAST lists it


@dataclass(frozen=True)
class Received:
    """What a download wrote: bytes and their SHA-256 (hex)."""

    nbytes: int
    sha256: str


class MastClient:
    """An ``Observations`` instance of its own, pointed at ``server``, with a deadline.

    ``server`` defaults to astroquery's ``conf.server`` (https://mast.stsci.edu). The instance
    gets its own empty column-config cache: astroquery keeps it on the class, shared by every
    instance and server.
    """

    def __init__(self, *, server: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        from astroquery.mast import ObservationsClass, conf

        self.server = _check_server(server or conf.server)
        self.timeout = float(timeout)
        self.observations = ObservationsClass()
        adapter = _deadline_adapter(self.timeout)
        self.session = self.observations._session
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        portal = self.observations._portal_api_connection
        portal.MAST_REQUEST_URL = f"{self.server}/api/v0/invoke"
        portal.COLUMNS_CONFIG_URL = f"{self.server}/portal/Mashup/Mashup.asmx/columnsconfig"
        portal.MAST_DOWNLOAD_URL = f"{self.server}/api/v0.1/Download/file"
        portal._column_configs = {}

    def find_products(self, criteria: FetchCriteria) -> list[Product]:
        """Query the observations, list their products, keep the calwf3 ones asked for."""
        with self._mast_errors():
            table = self.observations.query_criteria(**criteria.mast_criteria())
            obsids = [str(row["obsid"]) for row in table if criteria.matches(str(row["obs_id"]))]
            if not obsids:
                return []
            products = self.observations.get_product_list(obsids)
            chosen = self.observations.filter_products(
                products,
                mrp_only=False,
                productSubGroupDescription=list(criteria.products),
                project="CALWF3",
            )
            return _unique([_product(row) for row in chosen])

    def download(self, product: Product, dest: Path, progress: Callable[[int], None]) -> Received:
        """Stream ``product`` into ``dest`` (a temporary name); return its size and SHA-256.

        The URL is the one astroquery's ``download_file`` builds; the transfer is streamed here
        so that memory stays flat and the progress bar moves within a file.
        """
        portal = self.observations._portal_api_connection
        url = f"{portal.MAST_DOWNLOAD_URL}?uri={quote(product.uri, safe=':/')}"
        digest, written = hashlib.sha256(), 0
        with self._mast_errors(), self.session.get(url, stream=True) as response:
            response.raise_for_status()
            with open(dest, "wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    progress(len(chunk))
        return Received(written, digest.hexdigest())

    @contextlib.contextmanager
    def _mast_errors(self) -> Iterator[None]:
        import requests
        from astroquery.exceptions import InvalidQueryError, NoResultsWarning, RemoteServiceError

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoResultsWarning)  # an empty answer is no problem
            try:
                yield
            except requests.HTTPError as exc:
                raise MastError(f"MAST refused the request ({_http_reason(exc)})") from None
            except (requests.ConnectionError, requests.Timeout, TimeoutError) as exc:
                raise MastUnreachableError(f"MAST unreachable ({self._reason(exc)})") from None
            except (RemoteServiceError, InvalidQueryError) as exc:
                raise MastError(f"MAST query failed ({_short(exc)})") from None
            except (ValueError, KeyError) as exc:  # not JSON, or JSON without MAST's fields
                raise MastError(f"MAST gave an answer survey cannot read ({_short(exc)})") from None
            except requests.RequestException as exc:  # e.g. a transfer cut short
                raise MastError(f"transfer from MAST failed ({type(exc).__name__})") from None

    def _reason(self, exc: Exception) -> str:
        import requests

        host = urlsplit(self.server).netloc
        text = str(exc)
        if isinstance(exc, requests.Timeout | TimeoutError) or "timed out" in text.lower():
            return f"no answer from {host} within {self.timeout:g} s"
        if "NameResolution" in text or "getaddrinfo" in text or "resolve" in text.lower():
            return f"cannot resolve {host.split(':')[0]}: offline?"
        for what in ("refused", "reset", "aborted"):
            if what in text.lower():
                return f"connection to {host} {what}"
        return f"{type(exc).__name__} talking to {host}"


def _check_server(server: str) -> str:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise MastError(f"MAST server {server!r} is not an http(s) URL")
    return server.rstrip("/")


def _deadline_adapter(timeout: float):
    """A requests adapter that applies ``timeout`` to every request sent without one."""
    from requests.adapters import HTTPAdapter

    class DeadlineAdapter(HTTPAdapter):
        def send(self, request, timeout=None, **kwargs):  # type: ignore[override]
            return super().send(request, timeout=timeout or default, **kwargs)

    default = timeout
    return DeadlineAdapter()


def _product(row) -> Product:
    import numpy as np

    size = row["size"]
    masked = size is None or np.ma.is_masked(size)
    return Product(
        obs_id=str(row["obs_id"]),
        uri=str(row["dataURI"]),
        filename=str(row["productFilename"]),
        kind=str(row["productSubGroupDescription"]).upper(),
        size=None if masked or int(size) < 0 else int(size),
    )


def _unique(products: list[Product]) -> list[Product]:
    """One entry per file: an association and its exposures list the same products."""
    seen: dict[str, Product] = {}
    for product in products:
        seen.setdefault(product.filename.lower(), product)
    return list(seen.values())


def _http_reason(exc) -> str:
    response = exc.response
    if response is None:
        return _short(exc)
    return f"HTTP {response.status_code} {_short(response.reason or '')}".strip()


def _short(value: object, limit: int = 120) -> str:
    """``value`` on one line of printable characters (it may come from the server)."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
