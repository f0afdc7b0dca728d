"""The console's state-changing forms (POST), each going the API's own way.

A decision is a resume through ``runs.create.create_run`` — the path ``POST
/threads/{id}/runs`` takes — carrying an ``ApprovalDecision`` for the interrupt and content
hash the page showed: when the run waits elsewhere now, or the content changed, the page
says so and shows the new request; nothing is applied. Starting a run validates the input
and runs ``preflight`` (the CLI's checks, the repository's policy file included) first, so
a bad goal, path, ref, plan or policy is a form error rather than a failed run. Cancel is
the API's cancel of the thread's active run; Resume continues a paused or interrupted run;
Fork runs again from a checkpoint of the timeline. Each run is created for a client that
follows it (``now``: an idle worker of this process starts it at once, as for the API's
``wait`` and ``stream``). Every form must carry the CSRF token
(``session.csrf_ok``): a forged or replayed post gets a 403 page and changes nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from shipyard.contracts import ApprovalDecision, Decision, RunInput
from shipyard.errors import NotWaitingError, ShipyardError, StaleApprovalError
from shipyard.lifecycle.cancel import SERVER_HOLDER
from shipyard.lifecycle.preflight import preflight
from shipyard.server.console.pages import NOTICES, Seen, local_target, not_found, start_form
from shipyard.server.console.render import fragment, page
from shipyard.server.console.run_view import (
    GRAPH_ID,
    Pending,
    RunView,
    adopt,
    load_run,
    pending_of,
)
from shipyard.server.console.session import (
    CSRF_FIELD,
    Viewer,
    clear_session,
    csrf_ok,
    csrf_token,
    keys_required,
    session_cookie,
    set_session,
    sign_in,
    sign_out,
)
from shipyard.server.deps import state_of
from shipyard.server.runs.create import create_run
from shipyard.server.runs.records import ACTIVE
from shipyard.server.runs.request import RunCreate
from shipyard.store import RunStore


class ForgedForm(Exception):
    """A post without this console's CSRF token, or from another origin."""


async def checked_csrf(request: Request) -> None:
    """Router dependency: refuse (``ForgedForm``) a post that is not this console's own,
    before any other field is looked at."""
    form = await request.form()
    if not csrf_ok(request, str(form.get(CSRF_FIELD, ""))):
        raise ForgedForm


async def forged(request: Request, _exc: Exception) -> Response:
    """The 403 page for a forged or replayed post: nothing was changed."""
    text = (
        "This form was not sent from this console, or it is out of date. Reload the page "
        "and try again. Nothing was changed."
    )
    return page(request, "message.html", 403, heading="Refused", text=text)


router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(checked_csrf)])


def _back(run_id: str, notice: str = "") -> RedirectResponse:
    query = f"?notice={notice}" if notice in NOTICES else ""
    return RedirectResponse(f"/ui/runs/{run_id}{query}", status_code=303)


@router.post("/runs/{run_id}/decide", response_model=None)
async def decide(
    request: Request,
    run_id: str,
    viewer: Seen,
    interrupt_id: Annotated[str, Form()],
    content_hash: Annotated[str, Form()],
    decision: Annotated[Decision, Form()],
    comment: Annotated[str, Form()] = "",
    remember: Annotated[str, Form()] = "",
) -> Response:
    """Approve, revise or reject exactly the request the page showed. Posted by htmx
    (``HX-Request``), success is a 204 (the page's live update shows what follows)."""
    state = state_of(request)
    found, pending = await pending_of(state, viewer, run_id)
    if not found:
        return not_found(request, viewer, "run")
    problem = _mismatch(pending, interrupt_id, content_hash)
    if problem is None and decision == "revise" and not comment.strip():
        problem = "Revise needs a comment saying what to change."
    if problem is not None:
        return await _refused(request, viewer, run_id, problem)
    assert pending is not None
    if (driver := await _cli_driver(request, run_id)) is not None:
        return await _refused(request, viewer, run_id, f"Not applied: {driver} drives this run.")
    await adopt(state, viewer, run_id)
    remembered = pending.request.payload.get("deferred_commands", []) if remember else []
    answer = ApprovalDecision(
        decision=decision,
        by=viewer.owner,
        comment=comment.strip(),
        content_hash=content_hash,
        remember=[str(c) for c in remembered],
    )
    body = RunCreate(assistant_id=GRAPH_ID, command={"resume": {interrupt_id: answer.model_dump()}})
    try:
        await create_run(state, viewer.owner, body, run_id, now=True)
    except (StaleApprovalError, NotWaitingError) as err:
        return await _refused(request, viewer, run_id, f"Not applied: {err}")
    if request.headers.get("hx-request"):
        return Response(status_code=204)
    return _back(run_id)


def _mismatch(pending: Pending | None, interrupt_id: str, content_hash: str) -> str | None:
    """Why a decision from the page cannot be applied to what the run waits for now."""
    if pending is None:
        return "Not applied: this run no longer waits for a decision."
    if pending.interrupt_id != interrupt_id or pending.request.content_hash != content_hash:
        return (
            "Not applied: the request changed since the page was shown "
            f"(you decided on {content_hash}; it is now {pending.request.content_hash}). "
            "Here is the current request."
        )
    return None


async def _refused(request: Request, viewer: Viewer, run_id: str, notice: str) -> Response:
    """The run as it is now, saying why nothing was applied: the page (409), or for htmx
    the page's live region, swapped in place (its live connection stays open)."""
    view = await load_run(state_of(request), viewer, run_id)
    if view is None:
        return not_found(request, viewer, "run")
    if not request.headers.get("hx-request"):
        return _shown(request, viewer, view, notice)
    html = fragment("_run_body.html", view=view, csrf=csrf_token(request), notice=notice)
    # htmx swaps only successful responses; the headers say where this one goes.
    headers = {"hx-retarget": "#live", "hx-reswap": "innerHTML"}
    return HTMLResponse(html, headers=headers)


def _shown(request: Request, viewer: Viewer, view: RunView, notice: str) -> HTMLResponse:
    return page(request, "run.html", 409, viewer=viewer, view=view, notice=notice)


@router.post("/runs/{run_id}/cancel", response_model=None)
async def cancel(request: Request, run_id: str, viewer: Seen) -> Response:
    """Cancel the run's active API run (the worker stops it; its report says so), or ask
    the CLI process driving it to stop (as ``shipyard cancel`` does)."""
    state = state_of(request)
    if await load_run(state, viewer, run_id) is None:
        return not_found(request, viewer, "run")
    active = [r for r in await state.runtime.queue.active(run_id) if r.status in ACTIVE]
    if not active and await _cli_driver(request, run_id) is not None:
        leases = RunStore(state.engine).leases
        await run_in_threadpool(leases.request_cancel, run_id, f"{viewer.owner} (console)")
        return _back(run_id)
    if not active:
        return _back(run_id, "not-running")
    for run in active:
        await state.runtime.queue.cancel(run, "interrupt")
    return _back(run_id)


@router.post("/runs/{run_id}/resume", response_model=None)
async def resume(request: Request, run_id: str, viewer: Seen) -> Response:
    """Continue a paused or interrupted run from its last checkpoint."""
    body = RunCreate(assistant_id=GRAPH_ID)
    return await _continue(request, run_id, viewer, body, fork=False)


@router.post("/runs/{run_id}/fork", response_model=None)
async def fork(
    request: Request,
    run_id: str,
    viewer: Seen,
    checkpoint_id: Annotated[str, Form()],
) -> Response:
    """Run again from a checkpoint on the timeline (a new timeline of the same run)."""
    body = RunCreate(assistant_id=GRAPH_ID, checkpoint_id=checkpoint_id)
    return await _continue(request, run_id, viewer, body, fork=True)


async def _continue(
    request: Request, run_id: str, viewer: Viewer, body: RunCreate, *, fork: bool
) -> Response:
    """Start ``body`` on the run; a resume of a run that waits for a decision is refused
    (decide instead), a fork leaves the pending request behind; so is one that a live CLI
    process drives. Posted by htmx (Resume), success is a 204 and a refusal the page's
    live region, as for a decision."""
    view = await load_run(state_of(request), viewer, run_id)
    if view is None:
        return not_found(request, viewer, "run")
    if view.waiting and not fork:
        notice = "The run waits for a decision: decide below."
        return await _refused(request, viewer, run_id, notice)
    if (driver := await _cli_driver(request, run_id)) is not None:
        return await _refused(request, viewer, run_id, f"Not started: {driver} drives this run.")
    await adopt(state_of(request), viewer, run_id)
    try:
        await create_run(state_of(request), viewer.owner, body, run_id, now=True)
    except (HTTPException, ShipyardError) as err:
        detail = err.detail if isinstance(err, HTTPException) else str(err)
        return await _refused(request, viewer, run_id, f"Not started: {detail}")
    if request.headers.get("hx-request"):
        return Response(status_code=204)
    return _back(run_id)


async def _cli_driver(request: Request, run_id: str) -> str | None:
    """The live CLI process driving the run (``host:pid:nonce``), if one does: then the
    console must not start another run on it."""
    leases = RunStore(state_of(request).engine).leases
    holder = await run_in_threadpool(leases.holder, run_id)
    return None if holder in (None, SERVER_HOLDER) else f"the CLI process {holder}"


@router.post("/runs", response_model=None)
async def start(
    request: Request,
    viewer: Seen,
    goal: Annotated[str, Form()] = "",
    repo: Annotated[str, Form()] = "",
    repo_choice: Annotated[str, Form()] = "",
    base_ref: Annotated[str, Form()] = "",
    plan: UploadFile | None = None,
) -> Response:
    """Start a run: the API's run creation, after the CLI's input checks. The repository
    is the typed path, else the configured one chosen (either way preflight checks it)."""
    form = {"goal": goal, "repo": repo, "repo_choice": repo_choice, "base_ref": base_ref}
    raw = await plan.read() if plan is not None and plan.filename else b""
    try:
        run_input = _run_input(goal, repo.strip() or repo_choice, base_ref, raw)
        await run_in_threadpool(preflight, run_input, policy=True)
    except ShipyardError as err:
        return await start_form(request, viewer, form, [str(err)])
    except ValidationError as err:
        return await start_form(request, viewer, form, _messages(err))
    thread_id = str(uuid.uuid4())
    # The row first (the worker's ledger finds it), so the run page exists at once.
    store = RunStore(state_of(request).engine)
    await run_in_threadpool(store.create_run, run_input.goal, run_input.repo, run_id=thread_id)
    body = RunCreate(
        assistant_id=GRAPH_ID,
        input=run_input.model_dump(mode="json", exclude_none=True),
        if_not_exists="create",
    )
    await create_run(state_of(request), viewer.owner, body, thread_id, now=True)
    return _back(thread_id)


def _run_input(goal: str, repo: str, base_ref: str, plan: bytes) -> RunInput:
    fields: dict[str, Any] = {"goal": goal.strip(), "repo": repo.strip()}
    if base_ref.strip():
        fields["base_ref"] = base_ref.strip()
    if plan:
        try:
            fields["plan"] = json.loads(plan)
        except ValueError as err:
            raise PlanInputError(f"the plan file is not valid JSON: {err}") from None
    return RunInput.model_validate(fields)


class PlanInputError(ShipyardError):
    """An uploaded plan file that is not JSON."""


def _messages(err: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in err.errors()]


@router.post("/login", response_model=None)
async def login(
    request: Request,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    """Sign in with an API key; a wrong or revoked key is the form again with the error."""
    if not await run_in_threadpool(keys_required, request):
        return RedirectResponse("/ui/", status_code=303)
    value = await run_in_threadpool(sign_in, state_of(request).engine, key, time.time())
    target = local_target(next)
    if value is None:
        error = "That key is not valid (wrong, or revoked)."
        return page(request, "login.html", 401, next=target, error=error)
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, value)
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    """End the session: its record is deleted (a copy of the cookie is useless from now
    on), the cookie is cleared and the sign-in form shown."""
    await run_in_threadpool(sign_out, state_of(request).engine, session_cookie(request))
    response = RedirectResponse("/ui/login", status_code=303)
    clear_session(request, response)
    return response


__all__ = ["ForgedForm", "forged", "router"]
