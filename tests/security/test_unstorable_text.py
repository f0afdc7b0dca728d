"""A hostile repository prints text Postgres cannot store (NUL) from its checks.

Category: ``unstorable_*`` — a check's output with NUL bytes flows into evidence, the
refine feedback (an inline checkpoint value), the journal and the events. The run still
ends as a run should (``needs_human_review`` once its attempts are spent, with the
failing evidence), never as a crashed checkpoint write; every row holds U+FFFD where the
NUL was.

Runs ``Runner`` with the scripted model, as the product does.
"""

from __future__ import annotations

import dataclasses

import psycopg

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo
from tests.integration.conftest import MakeRepo, WriteScript, make_repo, write_script
from tests.support import call, finish, plan_reply

__all__ = ["make_repo", "write_script"]  # fixtures re-exported for this module

CHECK = "import sys\nsys.stdout.write('broken\\x00output\\n')\nsys.exit(1)\n"
POLICY = """[approvals]
plan = "never"
[budgets]
attempts_per_step = 2
[checks]
detect = false
run = [{name = "nul", command = ["python3", "check.py"]}]
"""


async def test_unstorable_check_output_is_stored_replaced_and_the_run_ends_normally(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"check.py": CHECK, ".shipyard.toml": POLICY})
    attempts = {
        "s1/1": [call("write_file", path="a.txt", content="1\n"), finish()],
        "s1/2": [call("write_file", path="a.txt", content="2\n"), finish()],
    }
    script = {"planner": [plan_reply(("s1", "x"))], "developer": attempts}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo)))
        values = (
            await runner.graph.aget_state({"configurable": {"thread_id": stop.run_id}})
        ).values
        run = runner.context.runs.get_run(stop.run_id)

    assert stop.status == "needs_human_review", stop
    assert run.status == "needs_human_review"
    evidence = values["verdict"].evidence
    assert [e.check for e in evidence] == ["nul"] and not evidence[0].passed
    assert "broken\ufffdoutput" in values["feedback"] or "broken\ufffdoutput" in str(evidence)
    with psycopg.connect(psycopg_conninfo(settings.database_url or "")) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s AND checkpoint::text LIKE %s",
            [stop.run_id, "%broken\ufffdoutput%"],
        ).fetchone()
    assert stored is not None and stored[0] >= 1  # the feedback, inline in a checkpoint
