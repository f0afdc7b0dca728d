"""finalize: write the patch, the report and the provenance manifest (docs/architecture.md §1).

Every run ends here, whatever its status: a completed run gets its patch; every run gets
its report. The commits were made step by step in validate, so nothing is left to commit.
"""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from shipyard.context import Context
from shipyard.contracts import RunStatus
from shipyard.nodes.inputs import context_of, policy_of, workspace_of
from shipyard.redact import redact, redact_obj
from shipyard.report import build_report, provenance, render_markdown
from shipyard.state import RunState
from shipyard.tools import git


def finalize(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Mark a run that got here still running as ``completed`` and write what it produced."""
    ctx = context_of(runtime)
    status: RunStatus = state.get("status", "failed")
    if status == "running":
        status = "completed"
    run_id = state.get("run_id", "")
    has_workspace = "workspace" in state and "base_commit" in state
    ws = workspace_of(state) if has_workspace else None
    diff_stat = git.diff_stat(ws, state["base_commit"]) if ws else ""
    report = build_report(state, status, diff_stat)
    if ws is not None and status == "completed":
        ref = ctx.artifacts.put(run_id, "changes.patch", "")
        git.export_patch(ws, state["base_commit"], ctx.artifacts.path(ref))
        ctx.artifacts.put(run_id, "changes.patch", ctx.artifacts.read(ref))  # masks secrets
        report.patch_path = str(ctx.artifacts.path(ref))
    report_ref = ctx.artifacts.put(run_id, "report.json", "")
    report.report_path = str(ctx.artifacts.path(report_ref))
    report = report.model_validate(redact_obj(report.model_dump(mode="json")))
    ctx.artifacts.put(run_id, "report.json", report.model_dump_json(indent=2))
    ctx.artifacts.put(run_id, "report.md", redact(render_markdown(report)))
    manifest = provenance(report, policy_of(state).content_hash, state.get("instructions"))
    ctx.artifacts.put(run_id, "provenance.json", json.dumps(manifest, indent=2))
    if ctx.standalone and run_id:  # no driver records how the run ended: say it here
        fields = {k: state[k] for k in ("branch", "base_commit", "head_commit") if state.get(k)}
        ctx.runs.update_run(
            run_id, status=status, error=state.get("reason") or None,
            report_path=report.report_path, usage=report.usage, **fields,
        )  # fmt: skip
    return {"status": status, "report": report}
