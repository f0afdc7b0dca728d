"""Delivery survives SIGKILL: the real ``shipyard`` command approves a run, and the fake
servers kill it right after the push reached the remote, or right after the forge opened
the pull request; ``shipyard resume`` then finishes the delivery with exactly one push and
one pull request. Also ``shipyard deliver`` on the command line, and the token kept out of
everything the processes printed and logged."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.integration.conftest import MakeRepo, WriteScript
from tests.integration.forges import bare_repo, fake_forge, git_http_server
from tests.support import PASSING_TEST, call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # whole runs through the graph

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
TOKEN = "tok-crash-5b1f0c2d9e8a7f6e"


def _env(settings: Settings, script: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "OPENAI_"))}
    env.update(
        SHIPYARD_HOME=str(settings.home),
        DATABASE_URL=settings.database_url or "",
        SHIPYARD_MODEL_SCRIPT=str(script),
        GITHUB_TOKEN=TOKEN,
        COLUMNS="200",
    )
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHIPYARD, *args], env=env, capture_output=True, text=True, timeout=180,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


class Killer:
    """Kills the process group of the process it was given, once (from a server thread)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.killed = False

    def __call__(self) -> None:
        if self.proc is not None and not self.killed:
            self.killed = True
            os.killpg(self.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def _spawn(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [SHIPYARD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)


def _policy(api_url: str) -> str:
    return (
        '[approvals]\nplan = "never"\n\n[deliver]\npush = true\npull_request = "draft"\n'
        f'forge = "github"\napi_url = "{api_url}"\nrepository = "acme/widgets"\n'
    )


@pytest.mark.parametrize("kill_after", ["push", "pull_request"])
def test_sigkill_during_delivery_then_resume_pushes_once_and_opens_one_pull_request(
    kill_after: str,
    tmp_path: Path,
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
) -> None:
    (tmp_path / "served").mkdir()
    killer = Killer()
    with (
        fake_forge("github", TOKEN) as forge,
        git_http_server(tmp_path / "served", "x-access-token", TOKEN) as served,
    ):
        repo = make_repo(
            {"tests/test_ok.py": PASSING_TEST, ".shipyard.toml": _policy(forge.api_url)}
        )
        bare = bare_repo(tmp_path / "served", "widgets", repo)
        git(repo, "remote", "add", "origin", served.repo_url("widgets"))
        script = write_script(
            {
                "planner": [plan_reply(("s1", "add a note"))],
                "developer": {
                    "s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]
                },
            }
        )
        env = _env(settings, script)
        started = _cli(env, "run", "--repo", str(repo), "add a note")
        assert started.returncode == 0, started.stderr
        engine = make_engine(settings.database_url or "")
        [run] = RunStore(engine).list_runs()
        assert run.status == "awaiting_approval"
        if kill_after == "push":
            served.on_push = killer
        else:
            forge.on_create = killer
        with _spawn(env, "approve", run.id) as proc:
            killer.proc = proc
            proc.wait(timeout=180)
        assert killer.killed and proc.returncode == -signal.SIGKILL
        assert served.pushes == 1
        assert forge.creates == (1 if kill_after == "pull_request" else 0)

        resumed = _cli(env, "resume", run.id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        after = RunStore(engine).get_run(run.id)
        engine.dispose()
        assert served.pushes == 1 and forge.creates == 1 and len(forge.pulls) == 1
        assert after.status == "completed" and after.delivery_status == "delivered"
        assert after.pull_request_url == forge.pulls[0]["html_url"]
        assert f"pull request {forge.pulls[0]['html_url']}" in resumed.stdout  # the end shows it
        head = git(repo, "rev-parse", f"shipyard/{run.id}")
        assert git(bare, "rev-parse", f"refs/heads/shipyard/{run.id}") == head
        for output in (started, resumed):
            assert TOKEN not in output.stdout + output.stderr
        for path in settings.home.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path


def test_shipyard_deliver_delivers_a_completed_run_later(
    tmp_path: Path, settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    (tmp_path / "served").mkdir()
    bare_root = tmp_path / "served"
    with fake_forge("github", TOKEN) as forge:
        policy = _policy(forge.api_url).replace("push = true", "push = false")
        policy = policy.replace(
            '[approvals]\nplan = "never"\n',
            '[approvals]\nplan = "never"\nchanges = "protected-only"\n',
        )
        repo = make_repo({"tests/test_ok.py": PASSING_TEST, ".shipyard.toml": policy})
        bare = bare_repo(bare_root, "widgets", repo)
        git(repo, "remote", "add", "origin", str(bare))  # a plain path remote
        script = write_script(
            {
                "planner": [plan_reply(("s1", "add a note"))],
                "developer": {
                    "s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]
                },
            }
        )
        env = _env(settings, script)
        done = _cli(env, "run", "--repo", str(repo), "add a note")
        assert done.returncode == 0, done.stdout + done.stderr
        engine = make_engine(settings.database_url or "")
        [run] = RunStore(engine).list_runs()
        assert run.status == "completed" and run.delivery_status is None
        assert forge.pulls == [] and "shipyard/" not in git(bare, "branch", "--list")

        delivered = _cli(env, "deliver", run.id)
        missing = _cli(env, "deliver", "nosuchrun")
        after = RunStore(engine).get_run(run.id)
        engine.dispose()
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    assert f"pull request (opened): {forge.pulls[0]['html_url']}" in delivered.stdout
    assert after.delivery_status == "delivered" and after.status == "completed"
    assert git(bare, "rev-parse", f"shipyard/{run.id}") == git(
        repo, "rev-parse", f"shipyard/{run.id}"
    )
    assert json.loads(json.dumps(forge.pulls[0]))["draft"] is True
    assert missing.returncode == 2 and "nosuchrun" in missing.stderr + missing.stdout
