"""Fixtures for tests that drive whole runs: target repositories and model scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.integration.fake_openai import FakeOpenAI, openai_server
from tests.support import git

MakeRepo = Callable[[Mapping[str, str]], Path]
WriteScript = Callable[[dict[str, Any]], Path]


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """Create a git repository with ``files`` committed on ``main``."""
    counter = iter(range(1000))

    def make(files: Mapping[str, str]) -> Path:
        repo = tmp_path / f"repo{next(counter)}"
        for name, text in files.items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        git(repo.parent, "init", "-q", "-b", "main", str(repo))
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "initial")
        return repo

    return make


@pytest.fixture
def write_script(tmp_path: Path) -> WriteScript:
    """Write a scripted-model script (see ``shipyard.llm.scripted``) and return its path."""
    counter = iter(range(1000))

    def write(script: dict[str, Any]) -> Path:
        path = tmp_path / f"script{next(counter)}.json"
        path.write_text(json.dumps({"label": "test", **script}))
        return path

    return write


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible server on a free port (``fake_openai``)."""
    yield from openai_server()
