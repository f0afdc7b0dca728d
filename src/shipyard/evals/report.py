"""What an eval writes at the end: ``preds.json``, ``report.json`` and ``report.md``.

``preds.json`` is SWE-bench's prediction format — a list of ``{instance_id,
model_name_or_path, model_patch}`` — so the official harness or ``sb-cli`` can score the
same run elsewhere; every task that got as far as a run has an entry. ``report.json`` holds
the lists (resolved, unresolved, error, malformed lines), the totals and every task's
result; ``report.md`` is the same for a person.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipyard.contracts import Usage
from shipyard.evals.result import TaskResult, write_atomically
from shipyard.evals.task import BadLine

APPROVALS_NOTE = (
    "approvals: auto — plans approved by policy (approvals.plan = never); every request "
    "that still stopped a run was approved by the harness as shipyard-eval"
)


def model_name(results: Sequence[TaskResult], oracle: bool) -> str:
    """``shipyard`` and the developer model that served the runs."""
    labels = sorted({r.models.get("developer", "") for r in results} - {""})
    label = "oracle" if oracle else (",".join(labels) or "unknown")
    return f"shipyard ({label})"


def predictions(results: Sequence[TaskResult], name: str) -> list[dict[str, str]]:
    """SWE-bench predictions of the tasks that had a run."""
    return [
        {"instance_id": r.instance_id, "model_name_or_path": name, "model_patch": r.model_patch}
        for r in results
        if r.run_id is not None
    ]


def summary(
    results: Sequence[TaskResult], bad: Sequence[BadLine], *, tasks_file: Path, oracle: bool
) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    usage = sum((r.usage for r in results), Usage())
    by = {s: [r.instance_id for r in results if r.status == s]
          for s in ("resolved", "unresolved", "error")}  # fmt: skip
    scored = len(by["resolved"]) + len(by["unresolved"])
    totals = {
        "tasks": len(results),
        "resolved": len(by["resolved"]),
        "unresolved": len(by["unresolved"]),
        "error": len(by["error"]),
        "malformed_lines": len(bad),
        "resolved_rate": round(len(by["resolved"]) / scored, 4) if scored else None,
        "seconds": round(sum(r.seconds for r in results), 2),
        "model_calls": usage.model_calls,
        "tool_calls": usage.tool_calls,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": round(usage.cost_usd, 6),
        "attempts": sum(r.attempts for r in results),
        "validator_false_passes": sum(r.validator == "false_pass" for r in results),
        "validator_false_failures": sum(r.validator == "false_failure" for r in results),
    }
    return {
        "tasks_file": str(tasks_file),
        "model": model_name(results, oracle),
        "oracle": oracle,
        "approvals": APPROVALS_NOTE,
        "totals": totals,
        **by,
        "malformed": [
            {"line": b.line, "instance_id": b.instance_id, "error": b.error} for b in bad
        ],
        "results": [r.model_dump(mode="json", exclude={"model_patch"}) for r in results],
    }


def markdown(data: dict[str, Any]) -> str:
    """``report.md``: totals, then one row per task and one per malformed line."""
    t = data["totals"]
    rate = "-" if t["resolved_rate"] is None else f"{t['resolved_rate']:.1%}"
    lines = [
        f"# Evaluation: {data['model']}",
        "",
        f"tasks file: `{data['tasks_file']}` · {data['approvals']}",
        "",
        f"**{t['resolved']} resolved**, {t['unresolved']} unresolved, {t['error']} errors, "
        f"{t['malformed_lines']} malformed lines — resolved rate {rate} of scored tasks",
        "",
        f"cost ${t['cost_usd']:.4f} · {t['model_calls']} model calls · "
        f"{t['input_tokens']}+{t['output_tokens']} tokens · {t['seconds']:.1f} s in total",
        "",
        f"Shipyard's validator vs the hidden tests: {t['validator_false_passes']} false passes "
        f"(it said completed, the hidden tests fail), {t['validator_false_failures']} false "
        "failures (it did not complete, the hidden tests pass)",
        "",
        "| task | status | Shipyard | validator | s | calls | tokens | $ | attempts | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        u = r["usage"]
        note = (r.get("error") or r.get("run_reason") or "").replace("|", "\\|").splitlines()
        lines.append(
            f"| {r['instance_id']} | {r['status']} | {r['run_status'] or '-'} | "
            f"{r['validator'] or '-'} | {r['seconds']:.1f} | {u['model_calls']} | "
            f"{u['input_tokens'] + u['output_tokens']} | {u['cost_usd']:.4f} | "
            f"{r['attempts']} | {(note or [''])[0][:120]} |"
        )
    for b in data["malformed"]:
        lines.append(f"| line {b['line']} | malformed | - | - | - | - | - | - | - | {b['error']} |")
    return "\n".join(lines) + "\n"


def write_reports(
    out: Path, results: Sequence[TaskResult], bad: Sequence[BadLine], *, tasks_file: Path,
    oracle: bool,
) -> dict[str, Any]:  # fmt: skip
    """Write the three files into ``out``; returns the report's data."""
    data = summary(results, bad, tasks_file=tasks_file, oracle=oracle)
    preds = predictions(results, data["model"])
    write_atomically(out / "preds.json", json.dumps(preds, indent=2))
    write_atomically(out / "report.json", json.dumps(data, indent=2))
    write_atomically(out / "report.md", markdown(data))
    return data


__all__ = ["APPROVALS_NOTE", "markdown", "predictions", "summary", "write_reports"]
