"""Is a core free? Helper threads speed a scan up only when one is.

``survey scan --jobs 1`` can prefetch the next read, share each read's pixel passes and
measure the FLT in helper threads (:func:`survey.scan.measure.measure_exposure` with
``threads=2``). With a core to spare that cuts the wall time; on a machine whose cores are all
busy (other jobs, other users) the threads only take turns on the same cores and cost ~10 %
more CPU in hand-offs and cache traffic. :class:`CoreMonitor` tells the two apart from the
machine's CPU counters (``/proc/stat``: the idle share of all cores since the last look, at
least ``window`` seconds ago). The results never depend on it, only the speed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

__all__ = ["CoreMonitor", "read_proc_stat", "spare_core"]

Sample = tuple[float, float]  # (idle, total) CPU time of all cores, in clock ticks


def read_proc_stat(path: str = "/proc/stat") -> Sample | None:
    """(idle + iowait, total) ticks of all cores, or None where there is no /proc/stat."""
    try:
        with open(path) as stream:
            fields = stream.readline().split()
    except OSError:
        return None
    if len(fields) < 5 or fields[0] != "cpu":
        return None
    ticks = [float(v) for v in fields[1:9]]  # user … steal (guest time is inside user)
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)
    return idle, sum(ticks)


class CoreMonitor:
    """Whether about one core has been idle lately (thread-safe).

    ``min_idle`` is the idle capacity, in cores, that counts as a free core: a scan with helper
    threads on an otherwise idle 2-core machine leaves ~0.5 core idle between hand-offs, one
    running alone ~1; another busy process leaves ~0. Until a first window has passed (and
    where the counters cannot be read) a core is taken to be free.
    """

    def __init__(
        self,
        read: Callable[[], Sample | None] = read_proc_stat,
        *,
        cores: int | None = None,
        window: float = 0.25,
        min_idle: float = 0.35,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._read = read
        self._cores = cores or os.cpu_count() or 1
        self._window = window
        self._min_idle = min_idle
        self._clock = clock
        self._last: tuple[float, Sample] | None = None
        self._free = True
        self._lock = threading.Lock()

    def free(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < self._window:
                return self._free
            sample = self._read()
            if sample is None:
                return True
            if self._last is not None:
                idle0, total0 = self._last[1]
                if sample[1] > total0:
                    idle_cores = (sample[0] - idle0) / (sample[1] - total0) * self._cores
                    self._free = idle_cores >= self._min_idle
            self._last = (now, sample)
            return self._free


_MONITOR = CoreMonitor()


def spare_core() -> bool:
    """Whether helper threads should be used now (see :class:`CoreMonitor`)."""
    return _MONITOR.free()
