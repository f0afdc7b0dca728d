"""What a check's span says (docs/architecture.md §10): the evidence as attributes, the
verdict as the span's status.

Attributes carry only what the evidence already holds in redacted form — the command's argv
(redacted once more here), exit code, failure counts, duration, cache provenance and the
isolation level — never output, failure details or file contents. A failing check sets
status ERROR with its (redacted, shortened) summary; a passing one sets OK.
"""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode

from shipyard.contracts import Evidence
from shipyard.redact import redact
from shipyard.tracing import describe


def attributes(evidence: Evidence) -> dict[str, str | bool | int | float | list[str]]:
    """The span attributes of ``evidence`` (no ``exit_code`` when the check never started)."""
    found: dict[str, str | bool | int | float | list[str]] = {
        "shipyard.check.name": evidence.check,
        "shipyard.check.command": [redact(a) for a in evidence.command],
        "shipyard.check.passed": evidence.passed,
        "shipyard.check.failures": len(evidence.failures),
        "shipyard.check.failure_count": evidence.failure_count,
        "shipyard.check.duration_s": evidence.duration_s,
        "shipyard.check.cached": evidence.cached,
    }
    if evidence.exit_code is not None:
        found["shipyard.check.exit_code"] = evidence.exit_code
    if evidence.cached_from:
        found["shipyard.check.cached_from"] = evidence.cached_from
    if evidence.isolation is not None:
        found["shipyard.check.isolation"] = evidence.isolation.level
    return found


def record(span: Span, evidence: Evidence) -> None:
    """Describe ``evidence`` on ``span``: its attributes, then OK or ERROR."""
    span.set_attributes(attributes(evidence))
    if evidence.passed:
        span.set_status(Status(StatusCode.OK))
    else:
        span.set_status(Status(StatusCode.ERROR, describe(evidence.summary)))


__all__ = ["attributes", "record"]
