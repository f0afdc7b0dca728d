"""deliver: push the run branch and open its pull request (docs/delivery.md).

Runs after ``finalize`` for a ``completed`` run whose policy says ``[deliver] push = true``,
or when a person asks (``shipyard deliver RUN``; the API's ``command`` with ``goto:
"deliver"``). It pushes only once a person approved exactly this change
(``delivery.consent``), through journaled effects (``delivery.shipment``), and records the
outcome — delivered, failed with the reason, or refused — in the state, the report, the
provenance manifest, the ``runs`` row and the event log. A failure never changes the run's
status: it stays ``completed`` and delivering again retries.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from shipyard import notify
from shipyard.context import Context
from shipyard.contracts import Delivery, RunReport, content_hash
from shipyard.delivery.body import body_of, title_of
from shipyard.delivery.consent import REFUSAL, consent_of
from shipyard.delivery.errors import DeliveryError
from shipyard.delivery.forge import PullRequestDraft
from shipyard.delivery.shipment import Parcel, Shipment, draft_of
from shipyard.effects import EffectLog
from shipyard.nodes.inputs import context_of, event, journal_key, policy_of, thread_id
from shipyard.policy.config import Policy
from shipyard.redact import redact, redact_obj
from shipyard.report import render_markdown
from shipyard.state import RunState
from shipyard.store.artifacts import SCHEME
from shipyard.tools import git

PUBLIC_URL = "SHIPYARD_PUBLIC_URL"
"""The server's public URL; when set, the pull request links the run's console page."""


def deliver(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Deliver the run's branch; see the module docstring."""
    ctx = context_of(runtime)
    policy = policy_of(state)
    run_id = state["run_id"]
    report = state.get("report")
    if state.get("status") != "completed" or report is None:  # an API goto on another run
        why = f"only a completed run is delivered; this one is {state.get('status', 'new')}"
        delivery = _unsent(policy, state, "refused", why, None)
        _record_row(ctx, run_id, delivery)
        return {"delivery": delivery}
    manifest = json.loads(ctx.artifacts.read(f"{SCHEME}{run_id}/provenance.json"))
    manifest_hash = content_hash({k: v for k, v in manifest.items() if k != "delivery"})
    diff_hash = diff_hash_of(Path(state["repo"]), state["base_commit"], state["head_commit"])
    by = consent_of(state, policy, diff_hash)
    if by is None:
        delivery = _unsent(policy, state, "refused", REFUSAL, manifest_hash)
    else:
        try:
            delivery = _ship(ctx, state, policy, report, diff_hash, manifest_hash, by)
        except DeliveryError as err:
            delivery = _unsent(policy, state, "failed", redact(str(err)), manifest_hash)
    report = report.model_copy(update={"delivery": delivery})
    _record(ctx, run_id, report, manifest, delivery)
    return {"delivery": delivery, "report": report}


def diff_hash_of(repo: Path, base: str, head: str) -> str:
    """The content hash of the change from ``base`` to ``head``: the same bytes, and so the
    same hash, as the changes approval was asked about (``tools.git.diff`` of that tree)."""
    argv = ["git", "-C", str(repo), "diff-tree", "-r", "--no-renames", "-p", "--binary", base, head]
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    return content_hash(out.decode(errors="replace").encode())


def _ship(
    ctx: Context,
    state: RunState,
    policy: Policy,
    report: RunReport,
    diff_hash: str,
    manifest_hash: str,
    by: str,
) -> Delivery:
    run_id = state["run_id"]
    parcel = Parcel(
        repo=Path(state["repo"]),
        branch=state["branch"],
        commit=state["head_commit"],
        diff_hash=diff_hash,
        run_branch=git.run_branch(run_id),
    )
    shipment = Shipment(policy.deliver, parcel)
    effects = EffectLog(ctx.journal, thread_id(), journal_key(state, "deliver"))
    pushed = shipment.push(effects)
    pull = None
    if policy.deliver.pull_request != "none":

        def draft(base: str) -> PullRequestDraft:
            link = console_url(run_id)
            body = body_of(report, manifest_hash=manifest_hash, console_url=link, approved_by=by)
            return draft_of(policy.deliver, parcel.branch, base, body, title_of(report))

        pull = shipment.pull_request(effects, draft)
    return shipment.record(pushed=pushed, pull=pull, manifest_hash=manifest_hash, by=by)


def _unsent(
    policy: Policy, state: RunState, status: str, reason: str, manifest_hash: str | None
) -> Delivery:
    return Delivery.model_validate(
        {
            "status": status,
            "remote": policy.deliver.remote,
            "branch": state.get("branch", ""),
            "commit": state.get("head_commit"),
            "pull_request": policy.deliver.pull_request,
            "manifest_hash": manifest_hash,
            "reason": reason,
        }
    )


def console_url(run_id: str) -> str | None:
    """The run's console page when the server's public URL is configured."""
    public = os.environ.get(PUBLIC_URL, "").strip().rstrip("/")
    return f"{public}/ui/runs/{run_id}" if public else None


def _record(
    ctx: Context, run_id: str, report: RunReport, manifest: dict[str, Any], delivery: Delivery
) -> None:
    """The outcome in the report, the manifest, the runs row and the event log."""
    report = report.model_validate(redact_obj(report.model_dump(mode="json")))
    ctx.artifacts.put(run_id, "report.json", report.model_dump_json(indent=2))
    ctx.artifacts.put(run_id, "report.md", redact(render_markdown(report)))
    shipped = delivery.model_dump(mode="json", exclude={"reason"} if not delivery.reason else None)
    ctx.artifacts.put(
        run_id, "provenance.json", json.dumps({**manifest, "delivery": shipped}, indent=2)
    )
    _record_row(ctx, run_id, delivery)
    if delivery.pull_request_url:
        notify.emit(
            ctx.runs.engine,
            "delivery.opened",
            {
                "run_id": run_id,
                "url": delivery.pull_request_url,
                "forge": delivery.forge,
                "repository": delivery.repository,
                "branch": delivery.branch,
                "draft": delivery.pull_request == "draft",
            },
            key=f"delivery.opened:{run_id}:{delivery.pull_request_url}",
            owner=ctx.owner,
        )


def _record_row(ctx: Context, run_id: str, delivery: Delivery) -> None:
    """The outcome on the ``runs`` row and in the event log."""
    ctx.runs.update_run(
        run_id,
        delivery_status=delivery.status,
        delivery_error=delivery.reason or None,
        pull_request_url=delivery.pull_request_url,
    )
    event(ctx, run_id, "delivery", delivery.model_dump(mode="json"))
