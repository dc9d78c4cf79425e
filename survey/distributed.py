"""Where per-item work runs: this process, a local process pool, or a Dask cluster.

``survey scan`` and ``survey fix`` hand a picklable one-argument function and their items to
:func:`run_each`, which yields ``(item, result)`` pairs back in the caller's process, so the
caller stays the catalog's single writer whatever runs the work:

- ``Executor(jobs=1)``: in this process, one item after the other;
- ``Executor(jobs=N)``: a ``spawn`` process pool (no DuckDB or thread state is forked);
- ``Executor(jobs=N, dask="local")``: a ``distributed.LocalCluster`` of N single-threaded
  worker processes, started for the run and shut down after it (also on errors and Ctrl-C);
- ``Executor(dask="tcp://host:port")``: the workers of a running Dask scheduler.

Dask is imported only in the last two cases (``survey --help`` stays instant). At most a
window of items is in flight at once (a few per worker thread), so 10⁵ files do not become
10⁵ futures and results do not pile up in worker memory. A task that fails in a way the
function did not catch (a worker killed, say) becomes ``on_error(item, exception)`` and the
run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SurveyError

__all__ = ["ClusterError", "Executor", "check_dask_address", "dask_client", "run_each"]

#: seconds to wait for a Dask scheduler before giving up with a one-line error
CONNECT_TIMEOUT = 10.0
#: items in flight per worker thread of a Dask cluster, and how often (s) to count the threads
_PER_THREAD = 4
_RECHECK = 2.0
_ADDRESS = re.compile(
    r"^(?P<scheme>tcp|tls)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r":(?P<port>\d{1,5})$"
)


class ClusterError(SurveyError):
    """A Dask address that is malformed or a scheduler that cannot be reached."""

    def __init__(self, address: str, problem: str):
        shown = re.sub(r"[^\x20-\x7e]", "?", address)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{shown}: {problem}")


def check_dask_address(text: str) -> str:
    """``local``, or a scheduler address ``tcp://host:port`` / ``tls://host:port`` (a bare
    ``host:port`` means tcp); :class:`ClusterError` for anything else, before connecting."""
    address = text.strip()
    if address == "local":
        return address
    if "://" not in address:
        address = f"tcp://{address}"
    found = _ADDRESS.match(address)
    if found is None or not 0 < int(found["port"]) < 65536:
        raise ClusterError(
            text, "not a Dask scheduler address (expected 'local' or tcp://host:port)"
        )
    return address


@dataclass(frozen=True)
class Executor:
    """Where :func:`run_each` runs the work: ``jobs`` processes, or a Dask cluster."""

    jobs: int = 1
    dask: str | None = None  #: ``local`` (a LocalCluster of ``jobs`` workers) or an address

    def __post_init__(self) -> None:
        if self.dask is not None:
            object.__setattr__(self, "dask", check_dask_address(self.dask))


def run_each(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    executor: Executor,
    *,
    on_error: Callable[[Any, BaseException], Any],
    initializer: Callable[[], None] | None = None,
    ordered: bool = False,
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(item, fn(item))`` for every item: in the order of ``items`` if ``ordered``,
    else as they complete. ``initializer`` runs once in each worker process first."""
    if executor.dask is not None:
        if items:
            yield from _on_dask(fn, items, executor, on_error, initializer, ordered)
    elif executor.jobs <= 1 or len(items) <= 1:
        for item in items:
            yield item, fn(item)
    else:
        yield from _on_pool(fn, items, executor.jobs, on_error, initializer, ordered)


def _outcome(future, item, on_error) -> Any:
    try:
        return future.result()
    except Exception as exc:  # the task died outside fn's own error handling
        return on_error(item, exc)


def _on_pool(fn, items, jobs, on_error, initializer, ordered) -> Iterator[tuple[Any, Any]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(items))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer) as pool:
        try:
            futures = {pool.submit(fn, item): item for item in items}
            for future in futures if ordered else as_completed(futures):
                yield futures[future], _outcome(future, futures[future], on_error)
        except BaseException:  # Ctrl-C, or the caller stopped: drop what has not started
            pool.shutdown(wait=False, cancel_futures=True)
            raise


# -- Dask ----------------------------------------------------------------------------------

_initialized: set = set()


def _call(fn: Callable[[Any], Any], initializer: Callable[[], None] | None, item: Any) -> Any:
    """One task on a Dask worker: the per-process initializer first (once), then ``fn``."""
    if initializer is not None and initializer not in _initialized:
        initializer()
        _initialized.add(initializer)
    return fn(item)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The scheduler and nannies of a LocalCluster log to ``name`` in this process: keep its
    INFO lines (start, stop, each worker) off the user's terminal unless ``-vv`` asked."""
    logger = logging.getLogger(name)
    level = logger.level
    if logging.getLogger("survey").getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def dask_client(address: str, jobs: int) -> Iterator[Any]:
    """A ``distributed.Client``: on a LocalCluster of ``jobs`` single-threaded processes
    started here (no dashboard, logs at WARNING, scratch space in a temporary directory) for
    ``local``, else connected to ``address``. Everything started here is closed on exit,
    client before cluster before scratch space."""
    import dask
    from distributed import Client, LocalCluster

    if address == "local":
        import tempfile

        with (
            _quiet("distributed"),
            tempfile.TemporaryDirectory(prefix="survey-dask-") as scratch,
            dask.config.set({"temporary-directory": scratch}),  # the scheduler's too
            LocalCluster(
                n_workers=max(1, jobs),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # no dashboard, and its HTTP endpoints on a free port: a busy 8787 would warn
                dashboard_address=":0",
                scheduler_kwargs={"dashboard": False},
                silence_logs=logging.WARNING,
                local_directory=scratch,  # the workers' scratch space, removed after
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ClusterError(address, f"cannot reach the Dask scheduler ({reason})") from None
    with client:
        yield client


class _Window:
    """How many tasks to keep in flight: a few per worker thread, looked up again every few
    seconds, so a cluster that is still growing (batch jobs starting) gets used as it grows."""

    def __init__(self, client):
        self._client = client
        self._size = 2
        self._checked = -float("inf")

    def room(self, in_flight: int) -> int:
        now = time.monotonic()
        if now - self._checked > _RECHECK:
            threads = sum(self._client.nthreads().values())
            self._size, self._checked = max(2, _PER_THREAD * threads), now
        return max(0, self._size - in_flight)


def _on_dask(fn, items, executor, on_error, initializer, ordered) -> Iterator[tuple[Any, Any]]:
    from distributed import as_completed

    with dask_client(executor.dask, executor.jobs) as client:
        pending, window = iter(items), _Window(client)
        in_flight: dict = {}  # future key → (future, item), in submission order
        done = None if ordered else as_completed()

        def refill() -> None:
            for item in _take(pending, window.room(len(in_flight))):
                future = client.submit(_call, fn, initializer, item, pure=False)
                in_flight[future.key] = (future, item)
                if not ordered:
                    done.add(future)

        refill()
        while in_flight:
            if ordered:  # the oldest one, whenever it finishes
                future, item = in_flight.pop(next(iter(in_flight)))
            else:
                future = next(done)
                item = in_flight.pop(future.key)[1]
            yield item, _outcome(future, item, on_error)
            refill()


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    """The next ``n`` items at most (``range`` first: zip must not consume one more item)."""
    return [item for _, item in zip(range(n), iterator, strict=False)]
