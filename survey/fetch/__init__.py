"""``survey fetch``: WFC3/IR calwf3 products from MAST into a flat folder.

:class:`FetchCriteria` holds the validated options, :class:`MastClient` talks to MAST through
astroquery with a deadline, :func:`plan_fetch` and :func:`run_fetch` decide and download;
:func:`fetch` does all three and :func:`write_manifest` records the files' provenance.
"""

from .criteria import PRODUCTS, FetchCriteria, FetchCriteriaError
from .download import FetchPlan, FetchSummary, FetchWriteError, fetch, plan_fetch, run_fetch
from .manifest import MANIFEST_NAME, read_manifest, write_manifest
from .mast import DEFAULT_TIMEOUT, MastClient, MastError, MastUnreachableError, Product, Received

__all__ = [
    "DEFAULT_TIMEOUT",
    "MANIFEST_NAME",
    "PRODUCTS",
    "FetchCriteria",
    "FetchCriteriaError",
    "FetchPlan",
    "FetchSummary",
    "FetchWriteError",
    "MastClient",
    "MastError",
    "MastUnreachableError",
    "Product",
    "Received",
    "fetch",
    "plan_fetch",
    "read_manifest",
    "run_fetch",
    "write_manifest",
]
