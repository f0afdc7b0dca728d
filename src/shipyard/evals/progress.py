"""The progress line an eval prints on stderr: done, resolved, running and cost so far."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from shipyard.evals.result import TaskResult


class Printer(Protocol):
    """Where progress lines go (a console)."""

    def print(self, text: str, /) -> None: ...


@dataclass
class Progress:
    """Counts of an eval in flight; each change prints one line."""

    total: int
    out: Printer
    done: int = 0
    resolved: int = 0
    errors: int = 0
    running: int = 0
    cost_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def resumed(self, results: list[TaskResult]) -> None:
        """Count results an earlier invocation already finished."""
        for result in results:
            self._count(result)
        if results:
            self._say(f"{len(results)} task(s) already finished: not run again")

    def started(self, instance_id: str) -> None:
        with self._lock:
            self.running += 1
        self._say(f"start {instance_id}")

    def finished(self, result: TaskResult) -> None:
        with self._lock:
            self.running -= 1
            self._count(result)
        self._say(f"{result.status} {result.instance_id}")

    def _count(self, result: TaskResult) -> None:
        self.done += 1
        self.resolved += result.status == "resolved"
        self.errors += result.status == "error"
        self.cost_usd += result.usage.cost_usd

    def line(self) -> str:
        return (
            f"{self.done}/{self.total} done · {self.resolved} resolved · {self.errors} errors"
            f" · {self.running} running · ${self.cost_usd:.4f}"
        )

    def _say(self, what: str) -> None:
        self.out.print(f"eval: [{self.line()}] {what}")


__all__ = ["Progress"]
