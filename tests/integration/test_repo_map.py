"""The planner's repository map: files with their top-level symbols (``ast`` for Python,
Universal Ctags for the rest), ranked for the goal, cut to the policy's token budget. Real
git repositories; the end-to-end case asserts on what the scripted planner received."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from shipyard.agent import repo_map
from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.llm import Script, ScriptedChatModel
from shipyard.llm.pricing import estimate_tokens
from shipyard.policy.config import Policy, load_policy
from shipyard.sandbox.launcher import Launcher, make_launcher
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, git, plan_reply

FILES = {
    "billing/__init__.py": "",
    "billing/invoice.py": (
        "from billing.money import Money\n\nRATE = 3\n\n"
        "class Invoice:\n    def total(self):\n        return 1\n\n    def lines(self):\n"
        "        return []\n\ndef render(invoice):\n    return ''\n"
    ),
    "billing/money.py": "class Money:\n    pass\n",
    "shop/cart.py": "from billing.money import Money\n\ndef checkout():\n    pass\n",
    "shop/broken.py": "def oops(:\n",
    "web/app.js": "function renderCart(items) {\n  return items.length;\n}\n",
    "LICENSE": "MIT\n",
    "tests/test_ok.py": PASSING_TEST,
}


def _map(
    repo: Path, goal: str, policy: Policy | None = None, launcher: Launcher | None = None
) -> str:
    head = git(repo, "rev-parse", "HEAD")
    return repo_map.build(repo, head, goal, policy or Policy(), launcher)


def test_the_map_lists_symbols_and_ranks_the_goal_first(make_repo: MakeRepo) -> None:
    repo = make_repo(FILES)
    lines = _map(repo, "Invoice total is wrong when an invoice has no lines").splitlines()
    assert lines[0] == "billing/invoice.py: RATE; class Invoice(total, lines); def render"
    by_path = {line.split(":")[0]: line for line in lines}
    assert by_path["shop/cart.py"] == "shop/cart.py: def checkout"
    assert by_path["shop/broken.py"] == "shop/broken.py"  # does not parse: the name only
    assert by_path["LICENSE"] == "LICENSE"  # no parser for it: the name only
    # money.py is imported by two files, so it ranks above files nothing imports.
    assert lines.index(by_path["billing/money.py"]) < lines.index(by_path["shop/cart.py"])


@pytest.mark.skipif(shutil.which("ctags") is None, reason="Universal Ctags is not installed")
def test_other_languages_get_their_symbols_from_ctags_in_the_sandbox(make_repo: MakeRepo) -> None:
    # The repository's own ctags option file would hide the JavaScript; it is not read.
    # Nor is a file named like an option taken for one.
    repo = make_repo({**FILES, ".ctags.d/hide.ctags": "--exclude=*.js\n", "-R": "x\n"})
    launcher = make_launcher()
    assert "web/app.js: function renderCart" in _map(repo, "cart", None, launcher).splitlines()
    assert "web/app.js" in _map(repo, "cart").splitlines()  # no launcher: names only


def test_the_map_is_cut_to_its_budget_and_skips_forbidden_files(make_repo: MakeRepo) -> None:
    many = {f"pkg/module_{n:03}.py": f"def function_{n}():\n    pass\n" for n in range(300)}
    repo = make_repo({**FILES, **many, "secrets/keys.py": "TOKEN = 1\n"})
    policy = load_policy(
        repo, {"agent": {"repo_map": {"max_tokens": 300}}, "paths": {"forbidden": ["secrets/**"]}}
    )
    text = _map(repo, "fix the invoice", policy)
    assert estimate_tokens(text) <= 300 + 20  # the budget, and the closing line
    assert text.splitlines()[0].startswith("billing/invoice.py: ")
    assert text.splitlines()[-1].endswith("more file(s) not shown (map budget)")
    assert "secrets" not in _map(repo, "keys token", policy)


async def test_the_planner_gets_the_map_or_the_listing_when_it_is_off(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(FILES)
    script = write_script({"planner": [plan_reply(("s1", "fix"))]})
    received: list[str] = []
    for enabled in (True, False):
        planner = ScriptedChatModel(script=Script.load(script), role="planner")
        scripted = dataclasses.replace(settings, model_script=script)
        policy = {"agent": {"repo_map": {"enabled": enabled}}}
        async with Runner.open(scripted, models={"planner": planner}) as runner:
            stop = await runner.start(
                RunInput(goal="fix Invoice.total", repo=str(repo), policy=policy)
            )
        assert stop.status == "awaiting_approval"
        received.append(str(planner.calls[0][1][1].content))
    mapped, listed = received
    assert "billing/invoice.py: RATE; class Invoice(total, lines); def render" in mapped
    assert "class Invoice" not in listed and "billing/invoice.py" in listed
