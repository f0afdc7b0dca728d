"""What endpoints receive (``shipyard.notify``): signatures, Slack text, retry delays, and
the webhook body the official server sends for a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.notify import slack
from shipyard.notify.events import headline
from shipyard.notify.outgoing import UndeliverableError
from shipyard.notify.sender import backoff_s
from shipyard.notify.signing import signature, verify
from shipyard.server.runs.webhooks import webhook_payload


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    # Known answer, from: printf '1700000000.{}' | openssl dgst -sha256 -hmac k
    known = "c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
    assert signature("k", 1700000000, b"{}") == "sha256=" + known
    assert verify("k", b"{}", "1700000000", "sha256=" + known, now=1700000100)
    assert not verify("k", b"{}", "1700000000", "sha256=" + known, now=1700000400)  # too old
    assert not verify("k", b"{}", "17x", "sha256=" + known, now=1700000000)
    assert not verify("k", b"{}", None, None, now=0)


def test_slack_text_escapes_markup_and_links_the_run() -> None:
    message = slack.message(
        "k1", "run.failed", {"run_id": "r", "error": "a<b>&c"}, "https://s/ui/runs/r"
    )
    assert message == {
        "text": "Run r failed (a&lt;b&gt;&amp;c) <https://s/ui/runs/r|Open in Shipyard>",
        "shipyard_event_id": "k1",
    }


def test_headlines_say_what_happened() -> None:
    assert headline("delivery.opened", {"run_id": "r", "url": "https://f/pr/1"}) == (
        "Run r opened a pull request: https://f/pr/1"
    )
    assert headline("run.completed", {"run_id": "r", "goal": "add a note"}) == (
        "Run r completed: add a note"
    )
    assert headline("run.needs_human_review", {"run_id": "r"}) == "Run r needs human review"


def test_retry_delays_double_up_to_five_minutes() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 4, 9, 20)] == [1, 2, 4, 8, 256, 300]


RUN = {
    "run_id": "r1",
    "thread_id": "t1",
    "owner": "local",
    "assistant_id": "a1",
    "status": "error",
    "kwargs": {"webhook": "https://h.example/x", "input": {}},
    "metadata": {"m": 1},
    "multitask_strategy": "enqueue",
    "lease_owner": None,
    "lease_expires_at": None,
    "attempts": 1,
    "cancel_action": None,
    "start_checkpoint_id": None,
    "error": "ValueError: bad input",
    "created_at": "2026-01-02T03:04:05.123456+00:00",
    "updated_at": "2026-01-02T03:04:06+00:00",
    "not_before": "2026-01-02T03:04:05+00:00",
}


def test_the_webhook_body_is_the_ended_run_as_the_official_server_sends_it() -> None:
    sent = datetime(2026, 1, 2, 3, 4, 7, tzinfo=UTC)
    run = {**RUN, "started_at": "2026-01-02T03:04:05.500000+00:00"}
    row = {"run": run, "values": {"x": 1}, "ended_at": "2026-01-02T03:04:06+00:00"}
    assert webhook_payload(row, sent) == {
        "run_id": "r1",
        "thread_id": "t1",
        "assistant_id": "a1",
        "created_at": "2026-01-02T03:04:05.123456+00:00",
        "updated_at": "2026-01-02T03:04:06+00:00",
        "status": "error",
        "metadata": {"m": 1},
        "kwargs": {"webhook": "https://h.example/x", "input": {}},
        "multitask_strategy": "enqueue",
        "langsmith_session_name": None,
        "run_started_at": "2026-01-02T03:04:05.500000+00:00",
        "run_ended_at": "2026-01-02T03:04:06+00:00",
        "webhook_sent_at": "2026-01-02T03:04:07+00:00",
        "values": {"x": 1},
        "error": {"error": "ValueError", "message": "bad input"},
    }


def test_a_row_that_is_not_a_run_is_undeliverable() -> None:
    with pytest.raises(UndeliverableError, match="does not describe a run"):
        webhook_payload({"run": {"run_id": "r1"}}, datetime.now(UTC))
