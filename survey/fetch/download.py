"""Where fetched files go and which need fetching: a flat ``OUT/<rootname>_<kind>.fits``.

MAST's ``productFilename`` is untrusted: it becomes a path only if it is exactly a WFC3 file
name (nine letters or digits, ``_ima|_flt|_raw|_asn``, ``.fits``) of the kind MAST says it is;
anything else is refused and reported. A file is "present" when it exists with the size MAST
lists (MAST's product list carries no checksum); each download streams into a temporary name
in OUT (:func:`survey.atomic.atomic_output`) and is renamed only once its size is checked, so
an interrupted run never leaves a partial file under the final name and the next run fetches
it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_output
from ..errors import SurveyError
from .criteria import FetchCriteria
from .manifest import read_manifest, write_manifest
from .mast import DEFAULT_TIMEOUT, MastClient, MastError, MastUnreachableError, Product, Received

__all__ = [
    "FetchPlan",
    "FetchSummary",
    "FetchWriteError",
    "fetch",
    "plan_fetch",
    "run_fetch",
    "safe_filename",
]


class FetchWriteError(SurveyError):
    """A downloaded file cannot be written into OUT (not a folder, no space, no permission)."""


_FILENAME = re.compile(r"[a-z0-9]{9}_(ima|flt|raw|asn)\.fits")
_FITS_START = b"SIMPLE  ="


def safe_filename(product: Product) -> str:
    """The local file name for ``product``, or ValueError saying why it is refused."""
    name = product.filename.lower()
    match = _FILENAME.fullmatch(name)
    if match is None:
        raise ValueError("not a WFC3 product file name")
    if match.group(1).upper() != product.kind:
        raise ValueError(f"name does not match its product type {product.kind!r}")
    return name


@dataclass
class FetchPlan:
    """The products split into what to download, what is present and what is refused."""

    out_dir: Path
    to_fetch: list[tuple[Product, Path]] = field(default_factory=list)
    present: list[Path] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (MAST's name, reason)
    kept: list[tuple[Path, str]] = field(default_factory=list)  # someone else's file, why

    @property
    def bytes_to_fetch(self) -> int:
        return sum(product.size or 0 for product, _ in self.to_fetch)


def plan_fetch(
    products: list[Product], out_dir: str | Path, *, overwrite: bool = False
) -> FetchPlan:
    """Decide per product: refuse its name, skip it as present, keep a different file of that
    name that fetch did not write (unless ``overwrite``), or fetch it."""
    plan = FetchPlan(Path(out_dir))
    ours = set(read_manifest(plan.out_dir)["files"]) if plan.out_dir.is_dir() else set()
    for product in products:
        try:
            dest = plan.out_dir / safe_filename(product)
        except ValueError as exc:
            plan.refused.append((_printable(product.filename), str(exc)))
            continue
        if _is_complete(dest, product.size):
            plan.present.append(dest)
        elif dest.exists() and dest.name not in ours and not overwrite:
            # never a partial download of ours (those have temporary names): the user's file
            found = f"{dest.stat().st_size} bytes" if dest.is_file() else "not a file"
            why = f"not written by survey fetch ({found}, MAST lists {product.size} bytes)"
            plan.kept.append((dest, f"{why}; move it away or use --overwrite"))
        else:
            plan.to_fetch.append((product, dest))
    return plan


def _is_complete(path: Path, size: int | None) -> bool:
    # Without a listed size a file cannot be checked, so it is fetched again.
    return size is not None and path.is_file() and path.stat().st_size == size


@dataclass
class FetchSummary:
    """What a fetch did; ``exit_code`` is 2 if any file failed or was refused."""

    out_dir: Path
    downloaded: list[Path] = field(default_factory=list)
    present: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    received: dict[Path, tuple[Product, Received]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(got.nbytes for _, got in self.received.values())

    @property
    def exit_code(self) -> int:
        return 2 if self.failed or self.refused or self.kept else 0

    def line(self) -> str:
        text = (
            f"{self.out_dir}: {len(self.downloaded)} downloaded ({_human(self.nbytes)}), "
            f"{len(self.present)} skipped (present), {len(self.failed)} failed"
        )
        text += f", {len(self.refused)} refused" if self.refused else ""
        return text + (f", {len(self.kept)} kept (not ours)" if self.kept else "")


def run_fetch(
    client: MastClient,
    plan: FetchPlan,
    *,
    summary: FetchSummary | None = None,
    progress: Callable[[int], None] = lambda nbytes: None,
    report: Callable[[str], None] = lambda line: None,
) -> FetchSummary:
    """Download every planned file; one failing file is recorded and the others go on.

    ``summary``, if given, is filled in as files arrive, so that a caller still has it (to
    write the manifest) when the run is interrupted or stopped.

    If MAST becomes unreachable the run stops (every further file would wait for the
    deadline) with :class:`MastUnreachableError`, and if OUT cannot be written with
    :class:`FetchWriteError`; files already complete stay.
    """
    if summary is None:
        summary = FetchSummary(plan.out_dir)
    summary.present.extend(plan.present)
    summary.refused.extend(plan.refused)
    summary.kept.extend(plan.kept)
    for name, reason in plan.refused:
        report(f"refused {name!r} from MAST: {reason}")
    for dest, reason in plan.kept:
        report(f"kept {dest}: {reason}")
    for done, (product, dest) in enumerate(plan.to_fetch):
        try:
            got = _fetch_one(client, product, dest, progress)
        except MastUnreachableError as exc:
            left = f" after {done} of {len(plan.to_fetch)} files; re-run to resume" if done else ""
            raise MastUnreachableError(f"{exc}{left}") from None
        except OSError as exc:  # the folder, not MAST: every further file would fail too
            raise FetchWriteError(f"{dest}: cannot write ({exc.strerror or exc})") from None
        except (MastError, ValueError) as exc:
            summary.failed.append((dest.name, str(exc)))
            report(f"failed {dest.name}: {exc}")
            continue
        summary.downloaded.append(dest)
        summary.received[dest] = (product, got)
        report(f"downloaded {dest} ({_human(got.nbytes)})")
    return summary


def _fetch_one(client: MastClient, product: Product, dest: Path, progress) -> Received:
    """Stream one product to a temporary name, check it, rename it to ``dest``."""
    with atomic_output(dest, overwrite=True) as tmp:
        got = client.download(product, tmp, progress)
        if product.size is not None and got.nbytes != product.size:
            raise ValueError(f"received {got.nbytes} bytes, MAST lists {product.size}")
        with open(tmp, "rb") as head:
            if head.read(len(_FITS_START)) != _FITS_START:
                raise ValueError("MAST sent something that is not a FITS file")
    return got


def fetch(
    criteria: FetchCriteria,
    out_dir: str | Path,
    *,
    server: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    overwrite: bool = False,
    progress: Callable[[int], None] = lambda nbytes: None,
    report: Callable[[str], None] = lambda line: None,
) -> FetchSummary:
    """Query MAST for ``criteria``, download the products into ``out_dir`` (flat) and record
    what was downloaded in its manifest. A different file of a product's name that fetch did
    not write is kept (and reported) unless ``overwrite``."""
    client = MastClient(server=server, timeout=timeout)
    plan = plan_fetch(client.find_products(criteria), out_dir, overwrite=overwrite)
    summary = FetchSummary(plan.out_dir)
    try:
        return run_fetch(client, plan, summary=summary, progress=progress, report=report)
    finally:  # also when stopped: the files that did arrive are recorded
        write_manifest(summary, criteria, client.server)


def _printable(text: str, limit: int = 80) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
