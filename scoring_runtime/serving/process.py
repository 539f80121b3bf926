"""Process-wide tuning a server does once the model is loaded: the garbage collector, and the C heap.

The C heap while serving: freed memory is kept for the next requests, and given back once the worker is idle.

glibc hands the free top of its heap back to the OS once it exceeds a trim threshold, and serves blocks above an
mmap threshold from mappings of their own, unmapped when freed. Both follow the blocks freed (with 1 MB bodies, the
heap is trimmed once its free top passes about 2 MiB), so a worker holding dozens of large bodies at once keeps
giving memory back and faulting it in again: with 64 clients sending 1 MB each, 30 to 90 page faults per request.
Once init() has run, each worker serves every block up to 32 MiB from its heap and keeps up to SCORING_HEAP_KEEP_MB
of freed memory; after IDLE_S seconds without a request it gives the free memory back (malloc_trim), once per quiet
spell. On the 1 MB echo at c=64 (benchmarks/heap_policy.py, medians of 3 rounds), the default of 64 MiB took the CPU
per request from 810 to 639 us against glibc's own policy, for 118 MiB of memory after the burst instead of 85, and
59 MiB once idle instead of 85 (glibc keeps what it has); 128 and 256 saved no more and held more.

Elsewhere than glibc (musl, macOS) nothing changes.
"""

from __future__ import annotations

import gc
import logging

from scoring_runtime.glibc import LIBC, M_MMAP_THRESHOLD, malloc_trim, set_trim_threshold

logger = logging.getLogger("azmlinfsrv")

# Long enough that the pauses of a client sending in bursts are not taken for quiet: memory given back is faulted
# in again by the next burst, while holding it a little longer costs nothing the peak did not already take.
IDLE_S = 30.0
# The largest mmap threshold glibc accepts on 64-bit systems.
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def keep_freed_memory(keep_mb: int) -> bool:
    """Keep up to `keep_mb` MiB of freed memory in the heap; 0 leaves the C library's policy. True if applied."""
    if LIBC is None or keep_mb <= 0:
        return False
    # Setting one threshold stops glibc from moving either, so both are set.
    applied: bool = LIBC.mallopt(M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    return applied and set_trim_threshold(keep_mb * 1024 * 1024)


def give_back_freed_memory() -> None:
    malloc_trim()


class IdleTrim:
    """Gives the heap's free memory back once no request has ended for `idle_s`, once per quiet spell.

    `tick` is called about once a second with the count of requests answered so far. The first spell counts from
    start-up, so what init() freed is given back too.
    """

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self.idle_s = idle_s
        self._answered = 0
        self._since: float | None = None
        self._trimmed = False

    def tick(self, answered: int, now: float) -> bool:
        """True when this tick gave memory back."""
        if self._since is None or answered != self._answered:
            self._answered, self._since, self._trimmed = answered, now, False
            return False
        if self._trimmed or now - self._since < self.idle_s:
            return False
        self._trimmed = True
        give_back_freed_memory()
        return True


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the request path once the model is loaded.

    Everything alive after init() (modules, the model) lives as long as the process. Frozen, it is no longer scanned
    by every full collection, which under load took tens of milliseconds each time and made the slowest 1% of
    requests several times slower than the median. Young collections are made rarer too: requests leave little
    cyclic garbage.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
