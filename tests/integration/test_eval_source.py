"""Task sources (``evals.source``): a git URL mirrored into the cache, and a PyPI sdist
turned into a git repository whose commit is the same on every machine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from shipyard.evals.errors import HarnessError
from shipyard.evals.source import materialise
from tests.integration.eval_support import make_calc_repo
from tests.support import git


def test_a_git_url_is_mirrored_once_and_then_served_from_the_cache(tmp_path: Path) -> None:
    origin, base = make_calc_repo(tmp_path / "origin")
    git(origin, "tag", "v1")
    url, cache = f"file://{origin}", tmp_path / "cache"

    first = materialise(url, "v1", tmp_path / "one", cache=cache, relative_to=tmp_path)
    shutil.rmtree(origin)  # from now on only the cache has it
    second = materialise(url, base[:10], tmp_path / "two", cache=cache, relative_to=tmp_path)

    assert first == second == base
    assert (tmp_path / "two" / "calc.py").is_file()
    assert git(tmp_path / "two", "status", "--porcelain") == ""
    with pytest.raises(HarnessError, match="base_commit 'nope' does not exist"):
        materialise(url, "nope", tmp_path / "three", cache=cache, relative_to=tmp_path)


def test_an_unreachable_url_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=re.escape("fetch file:///nonexistent/repo.git")):
        materialise("file:///nonexistent/repo.git", "HEAD", tmp_path / "x",
                    cache=tmp_path / "c", relative_to=tmp_path)  # fmt: skip
    assert not (tmp_path / "x").exists()
    assert list((tmp_path / "c").iterdir()) == []  # nothing half-made is left in the cache


@pytest.mark.slow
def test_a_pypi_sdist_becomes_the_same_commit_in_any_cache(tmp_path: Path) -> None:
    spec = "pypi:six==1.16.0"
    try:
        one = materialise(spec, "HEAD", tmp_path / "one", cache=tmp_path / "c1",
                          relative_to=tmp_path)  # fmt: skip
    except HarnessError as err:
        if "cannot fetch the sdist" in str(err):
            print(f"skipped: PyPI is not reachable from here ({err})")
            pytest.skip(f"PyPI is not reachable: {err}")
        raise
    two = materialise(spec, one, tmp_path / "two", cache=tmp_path / "c2", relative_to=tmp_path)

    assert one == two
    assert (tmp_path / "one" / "six.py").is_file() and (tmp_path / "one" / "setup.py").is_file()
    author = git(tmp_path / "one", "log", "-1", "--format=%an <%ae> %ad %cn", "--date=iso")
    assert author == "Shipyard Eval <eval@shipyard.invalid> 2000-01-01 00:00:00 +0000 Shipyard Eval"
    with pytest.raises(HarnessError, match=re.escape("cannot fetch the sdist of six==0.0.0.0")):
        materialise("pypi:six==0.0.0.0", "HEAD", tmp_path / "x", cache=tmp_path / "c1",
                    relative_to=tmp_path)  # fmt: skip
