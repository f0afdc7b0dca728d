"""The forge adapters against fake forges over real HTTP: finding and opening pull
requests on each forge shape, and each kind of refusal as its typed error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from shipyard.delivery import (
    ForgeAuthenticationError,
    ForgePermissionError,
    ForgeRateLimitError,
    ForgeRequestError,
    ForgeUnreachableError,
    PullRequestDraft,
)
from shipyard.delivery.forge import Forge
from shipyard.delivery.shipment import make_forge
from shipyard.delivery.target import ForgeTarget
from shipyard.delivery.tokens import Token
from tests.integration.forges import FakeForge, fake_forge

TOKEN = "tok-forge-9c8b7a6d5e4f"
SHAPES = ["github", "gitea", "gitlab"]


@pytest.fixture(params=SHAPES)
def served(request: pytest.FixtureRequest) -> Iterator[FakeForge]:
    with fake_forge(request.param, TOKEN) as forge:
        yield forge


def _forge(served: FakeForge, token: str = TOKEN) -> Forge:
    target = ForgeTarget(served.shape, served.api_url, served.repository)  # type: ignore[arg-type]
    return make_forge(target, Token("SHIPYARD_FORGE_TOKEN", token))


def _draft(head: str = "shipyard/r1") -> PullRequestDraft:
    return PullRequestDraft("Add a note", "body", head, "main", draft=True, labels=["shipyard"])


def test_open_then_find_by_head_branch(served: FakeForge) -> None:
    forge = _forge(served)
    assert forge.find_open("shipyard/r1") is None
    opened = forge.open(_draft())
    assert forge.find_open("shipyard/r1") == opened
    assert forge.find_open("shipyard/other") is None
    assert served.creates == 1 and opened.number == 1 and opened.head == "shipyard/r1"


def test_opening_a_pull_request_that_exists_returns_it(served: FakeForge) -> None:
    existing = served.add_open("shipyard/r1")
    pull = _forge(served).open(_draft())
    assert pull.number == existing["number"] and len(served.pulls) == 1


def test_a_refused_token_is_an_authentication_error_naming_the_variable(
    served: FakeForge,
) -> None:
    with pytest.raises(ForgeAuthenticationError, match="token in SHIPYARD_FORGE_TOKEN"):
        _forge(served, "wrong-token-123456").find_open("shipyard/r1")


def test_403_is_a_permission_error(served: FakeForge) -> None:
    served.answers.append((403, {}, {"message": "Resource not accessible by integration"}))
    with pytest.raises(ForgePermissionError, match=r"may not do this.*not accessible"):
        _forge(served).find_open("shipyard/r1")


def test_an_unexpected_422_is_a_request_error_with_the_forges_words(served: FakeForge) -> None:
    served.answers.append((422, {}, {"message": "No commits between main and shipyard/r1"}))
    with pytest.raises(ForgeRequestError, match=r"422.*No commits between"):
        _forge(served).open(_draft())
    assert served.pulls == []


def test_a_rate_limit_is_waited_out_until_its_reset_then_retried(served: FakeForge) -> None:
    served.answers.append((429, {"Retry-After": "1"}, {"message": "slow down"}))
    reset = str(int(time.time()) + 1)
    served.answers.append((403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, {}))
    pull = _forge(served).open(_draft())
    # Two limited answers, then the requests it takes on this forge (labels: a second one).
    assert pull.number == 1 and len(served.pulls) == 1
    assert len(served.requests) == 2 + {"github": 2, "gitea": 2, "gitlab": 1}[served.shape]


def test_a_rate_limit_resetting_later_than_the_bound_fails_naming_the_reset(
    served: FakeForge,
) -> None:
    served.answers.append((429, {"RateLimit-Reset": str(int(time.time()) + 3600)}, {}))
    with pytest.raises(ForgeRateLimitError, match=r"rate limit spent.*resets at"):
        _forge(served).open(_draft())
    assert served.pulls == [] and len(served.requests) == 1


def test_a_forge_that_cannot_be_reached_is_unreachable() -> None:
    target = ForgeTarget("github", "http://127.0.0.1:9", "acme/widgets")
    with pytest.raises(
        ForgeUnreachableError, match=r"cannot reach the forge at http://127.0.0.1:9"
    ):
        make_forge(target, Token("GITHUB_TOKEN", TOKEN)).find_open("shipyard/r1")


def test_a_failing_forge_is_retried_then_unreachable(served: FakeForge) -> None:
    served.answers += [(502, {}, {"message": "bad gateway"})] * 3
    with pytest.raises(ForgeUnreachableError, match=r"502.*failing"):
        _forge(served).find_open("shipyard/r1")
    assert len(served.requests) == 3


def _labelled(*labels: str) -> PullRequestDraft:
    return PullRequestDraft("Add a note", "body", "shipyard/r1", "main", True, list(labels))


def test_gitea_finds_a_label_past_the_first_page_and_creates_a_missing_one() -> None:
    with fake_forge("gitea", TOKEN) as served:
        served.labels = {f"area-{i}": 100 + i for i in range(60)}  # 2 pages of 50
        _forge(served).open(_labelled("area-55", "shipyard-new"))
    created = [r for r in served.requests if r.method == "POST" and r.path.endswith("/labels")]
    [made] = [json.loads(r.body) for r in created]
    assert made["name"] == "shipyard-new" and made["color"]
    assert served.pulls[0]["labels"] == [155, served.labels["shipyard-new"]]


@pytest.mark.parametrize("status", [403, 404])
def test_gitea_refusing_to_create_a_label_is_a_permission_error(status: int) -> None:
    with fake_forge("gitea", TOKEN) as served:
        served.label_refusal = status
        with pytest.raises(ForgePermissionError, match=r"create the label 'new-one'.*\[deliver\]"):
            _forge(served).open(_labelled("shipyard", "new-one"))
    assert served.pulls == []


def test_gitlab_sends_label_names_as_one_comma_list_for_it_to_create() -> None:
    with fake_forge("gitlab", TOKEN) as served:
        _forge(served).open(_labelled("shipyard", "new-one"))
    [posted] = [json.loads(r.body) for r in served.requests if r.method == "POST"]
    assert posted["labels"] == "shipyard,new-one" and len(served.requests) == 1
