"""Every configuration example in the documentation loads: each ```toml block of README.md
and docs/**/*.md is written as ``.shipyard.toml`` into a fresh directory and loaded through
``policy.load_policy``, as a run would load it.

A ```toml block is a ``.shipyard.toml`` example unless its info string names another
``*.toml`` file (```toml pyproject.toml); those are not policies and are skipped.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from shipyard.policy.config import POLICY_FILE, Policy, load_policy

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*toml\b([^\n]*)\n(.*?)^\1\s*$", re.M | re.S)


def toml_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, info string, body)`` of each fenced toml block of a markdown ``text``."""
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2).strip(), m.group(3))
        for m in _FENCE.finditer(text)
    ]


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def _examples() -> list[tuple[str, str]]:
    found = []
    for doc in _documents():
        for line, info, body in toml_blocks(doc.read_text()):
            names = [word for word in info.split() if word.endswith(".toml")]
            if names and names != [POLICY_FILE]:
                continue
            found.append((f"{doc.relative_to(ROOT)}:{line}", body))
    return found


EXAMPLES = _examples()


def test_the_readme_has_a_policy_example() -> None:
    assert any(where.startswith("README.md:") for where, _ in EXAMPLES)


@pytest.mark.parametrize(("where", "body"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_policy_example_loads(where: str, body: str, tmp_path: Path) -> None:
    (tmp_path / POLICY_FILE).write_text(body)
    policy = load_policy(tmp_path)
    assert isinstance(policy, Policy)
    assert policy.source == str(tmp_path / POLICY_FILE)
    # What the example sets is what the policy holds (no key lands somewhere else).
    _assert_set(tomllib.loads(body), policy.model_dump(mode="python"), where)


def _assert_set(example: dict[str, object], dumped: dict[str, object], where: str) -> None:
    for key, value in example.items():
        assert key in dumped, f"{where}: {key} is not a policy field"
        if isinstance(value, dict):
            inner = dumped[key]
            assert isinstance(inner, dict), f"{where}: {key} is not a table"
            _assert_set(value, inner, f"{where}: {key}")
        elif not isinstance(value, list):  # lists may be normalised (a check's argv)
            assert dumped[key] == value, f"{where}: {key} = {value!r} became {dumped[key]!r}"


def test_block_finder_reads_fences_and_info_strings() -> None:
    text = "intro\n```toml\na = 1\n```\n\n```toml pyproject.toml\n[x]\n```\n```sh\nno\n```\n"
    assert toml_blocks(text) == [(2, "", "a = 1\n"), (6, "pyproject.toml", "[x]\n")]
