"""Garbage-collector settings of the long-running server and worker processes.

Every run allocates and frees thousands of short-lived containers (LangGraph's tasks and
channel values, futures, the HTTP stack's request objects). With CPython's default
thresholds (700, 10, 10) a ``shipyard serve`` process at 8 clients spent about 5% of its
time in collections, two thirds of it scanning what startup left behind: imported modules,
compiled graphs, pools (``benchmarks/README.md``, "Server GC tuning"). Once every resource
is open, ``tuned_gc`` collects once, moves everything that survived to the permanent
generation (``gc.freeze``: no collection scans it again) and raises the thresholds; both are
undone when the app's lifespan ends. Reference cycles are still collected, less often.

``SHIPYARD_GC_THRESHOLD``: ``"N"`` or ``"N,N,N"`` (``gc.set_threshold``'s three values, the
first at least 1), or ``"off"`` to leave the collector as CPython set it.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from shipyard.errors import UserInputError

log = logging.getLogger(__name__)

THRESHOLD_ENV = "SHIPYARD_GC_THRESHOLD"
DEFAULT_THRESHOLD = (50_000, 20, 20)

Threshold = tuple[int, int, int]


def threshold_from(environ: Mapping[str, str]) -> Threshold | None:
    """The thresholds ``SHIPYARD_GC_THRESHOLD`` asks for (``None``: ``off``); a bad value
    raises ``UserInputError`` naming the variable."""
    text = environ.get(THRESHOLD_ENV, "").strip()
    if not text:
        return DEFAULT_THRESHOLD
    if text.lower() == "off":
        return None
    parts = [p.strip() for p in text.split(",")]
    values = [int(p) if p.isdigit() else -1 for p in parts]
    if len(values) not in (1, 3) or min(values) < 0 or values[0] < 1:
        raise UserInputError(
            f"{THRESHOLD_ENV} must be 'off', one whole number of at least 1, or three "
            f"comma-separated whole numbers (the first at least 1), not {text!r}"
        )
    first, *rest = values
    second, third = rest or DEFAULT_THRESHOLD[1:]
    return first, second, third


class _Tuning:
    """The process's one tuning: the first app to open applies it, the last to close undoes
    it (tests run several apps in one process, their lifespans overlapping)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.before: Threshold = gc.get_threshold()

    def enter(self, threshold: Threshold) -> None:
        with self.lock:
            self.holders += 1
            if self.holders == 1:
                self.before = gc.get_threshold()
                gc.collect()
                gc.freeze()
                gc.set_threshold(*threshold)
                log.info(
                    "garbage collector: %d objects frozen, thresholds %s",
                    gc.get_freeze_count(),
                    ",".join(map(str, threshold)),
                )

    def leave(self) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0:
                gc.set_threshold(*self.before)
                gc.unfreeze()


_TUNING = _Tuning()


@contextmanager
def tuned_gc(environ: Mapping[str, str]) -> Iterator[None]:
    """Freeze what exists now and raise the thresholds until the block ends."""
    threshold = threshold_from(environ)
    if threshold is None:
        yield
        return
    _TUNING.enter(threshold)
    try:
        yield
    finally:
        _TUNING.leave()


__all__ = ["DEFAULT_THRESHOLD", "THRESHOLD_ENV", "threshold_from", "tuned_gc"]
