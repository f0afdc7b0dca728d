"""An environment setup that asks for the network (``[environment] network = true``): the
plan gate asks a person even under ``plan = "never"``, says what approving grants, and on
approval the setup runs once, with outbound network, on the base commit's files — reaching
a server on this machine's outside address but never one on its loopback. The repository's
own policy asks; only a person grants. Runner, scripted model, real bwrap, slirp4netns, git
and Postgres."""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.contracts import RunInput
from shipyard.errors import SandboxError
from shipyard.lifecycle.runner import Runner
from shipyard.sandbox.isolation.usernet import slirp4netns
from shipyard.sandbox.launcher import make_launcher
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import HelloServer, call, finish, outbound_address, plan_reply

pytestmark = pytest.mark.slow  # whole runs: left out of `./dev quick`

FETCH = (
    "import pathlib, socket, sys\n"
    "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
    "pathlib.Path('.deps').mkdir(exist_ok=True)\n"
    "pathlib.Path('.deps/ok').write_text(s.recv(16).decode())\n"
)
DEPS_TEST = (
    "import pathlib\n\ndef test_deps():\n"
    "    assert pathlib.Path('.deps/ok').read_text() == 'hello'\n"
)


@pytest.fixture
def hello_server() -> Iterator[HelloServer]:
    """A TCP server on this machine's outside address answering ``hello``."""
    address = outbound_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    if slirp4netns() is None:
        pytest.skip("slirp4netns is not installed (scripts/setup.sh installs it as root)")
    try:
        make_launcher(min_level="bubblewrap")
    except SandboxError as err:
        pytest.skip(f"no bubblewrap level here: {err}")
    with HelloServer(address) as server:
        yield server


def _config(run_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": run_id}}


def _policy(host: str, port: int) -> str:
    setup = json.dumps([sys.executable, "-c", FETCH, host, str(port)])
    return (
        '[approvals]\nplan = "never"\n\n[budgets]\nattempts_per_step = 1\n\n'
        f"[environment]\nsetup = {setup}\nnetwork = true\n"
    )


def _repo(make_repo: MakeRepo, host: str, port: int) -> Path:
    return make_repo(
        {
            ".shipyard.toml": _policy(host, port),
            ".gitignore": ".deps/\n",
            "tests/test_deps.py": DEPS_TEST,
        }
    )


def _script(write_script: WriteScript) -> Path:
    return write_script(
        {
            "planner": [plan_reply(("s1", "add a"))],
            "developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]},
        }
    )


async def test_a_person_grants_the_setup_the_network_and_it_runs_once_on_the_base(
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    hello_server: HelloServer,
) -> None:
    repo = _repo(make_repo, hello_server.host, hello_server.port)
    scripted = dataclasses.replace(settings, model_script=_script(write_script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="add a", repo=str(repo)))
        # plan = "never", yet a person is asked: the repository's policy cannot grant it.
        assert stop.status == "awaiting_approval"
        request = stop.request
        assert request is not None and request.kind == "plan"
        assert request.risk == "high"
        assert "asks for the network" in request.summary
        assert request.payload["environment"]["network"] == "outbound"
        assert hello_server.accepted == 0  # nothing ran before the decision
        done = await runner.decide(
            stop.run_id, "approve", by="alice", expected_hash=request.content_hash
        )
        assert done.status == "completed", done
        assert hello_server.accepted == 1  # once: validate found it done for these lockfiles
        state = (await runner.graph.aget_state(_config(stop.run_id))).values
    assert state["networked_setup"] == "done"
    plan_approval = next(a for a in state["approvals"] if a.kind == "plan")
    assert plan_approval.by == "alice" and not plan_approval.automatic


async def test_the_setup_never_reaches_this_machines_loopback(
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    hello_server: HelloServer,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as loopback:
        repo = _repo(make_repo, "127.0.0.1", loopback.getsockname()[1])
        scripted = dataclasses.replace(settings, model_script=_script(write_script))
        async with Runner.open(scripted) as runner:
            stop = await runner.start(RunInput(goal="add a", repo=str(repo)))
            assert stop.request is not None
            done = await runner.decide(
                stop.run_id, "approve", by="alice", expected_hash=stop.request.content_hash
            )
            state = (await runner.graph.aget_state(_config(stop.run_id))).values
    assert done.status != "completed"
    assert "failed" in state["networked_setup"]
    verdict = state["verdict"]
    assert verdict is not None and not verdict.passed
    setup = next(e for e in verdict.evidence if e.check == "environment setup")
    assert "the setup had the network only once" in setup.summary
    assert hello_server.accepted == 0
