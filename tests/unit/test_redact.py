"""Secret redaction: every known format is masked with a hint, look-alikes are not."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from pydantic import BaseModel

from shipyard.redact import redact, redact_obj

OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANTHROPIC = "sk-ant-api03-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
GITHUB = "ghp_" + "0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"export OPENAI_API_KEY={OPENAI}", "export OPENAI_API_KEY=[REDACTED:openai-key]"),
        ("key: sk-" + "a1" * 20, "key: [REDACTED:openai-key]"),
        (f"using {ANTHROPIC} now", "using [REDACTED:anthropic-key] now"),
        ("id AKIAIOSFODNN7EXAMPLE", "id [REDACTED:aws-access-key]"),
        ("ASIAY34FZKBOKMUTVV7A,", "[REDACTED:aws-access-key],"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [REDACTED:secret]",
        ),
        (f"token {GITHUB}", "token [REDACTED:github-token]"),
        ("gho_" + "x" * 36, "[REDACTED:github-token]"),
        ("github_pat_11ABCDEFG0123456789_" + "abc" * 10, "[REDACTED:github-token]"),
        ("slack xoxb-123456789012-abcdefghijkl", "slack [REDACTED:slack-token]"),
        ("g AIzaSyA1234567890abcdefghijklmnopqrstuv", "g [REDACTED:google-api-key]"),
        (
            "a\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"
            "-----END OPENSSH PRIVATE KEY-----\nz",
            "a\n[REDACTED:private-key]\nz",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMIIEv (cut by the output cap", "[REDACTED:private-key]"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "Authorization: Bearer [REDACTED:jwt]",
        ),
        (
            "DATABASE_URL=postgresql://shipyard:s3cret-pw@db:5432/x",
            "DATABASE_URL=postgresql://shipyard:[REDACTED:password]@db:5432/x",
        ),
        ("PASSWORD=correcthorse", "PASSWORD=[REDACTED:secret]"),
        ("API_KEY: abc123", "API_KEY: [REDACTED:secret]"),
        ("GITHUB_TOKEN='t0ken-value'", "GITHUB_TOKEN='[REDACTED:secret]'"),
        ('{"password": "hunter22"}', '{"password": "[REDACTED:secret]"}'),
        ("client_secret = 'abcdef123456'", "client_secret = '[REDACTED:secret]'"),
        ("mysql --password=hunter22 -u root", "mysql --password=[REDACTED:secret] -u root"),
    ],
)
def test_known_secret_formats_are_masked_with_a_hint(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "sha256 " + hashlib.sha256(b"x").hexdigest(),
        "image@sha256:" + hashlib.sha256(b"y").hexdigest(),
        "run " + str(uuid.uuid4()),
        "the key to the token economy is a secret password policy",
        "api_key = os.environ['OPENAI_API_KEY']",
        "token = get_token()",
        "password: str = Field(...)",
        "max_tokens=100 input_tokens: 5",
        "PASSWORD=${DB_PASSWORD}",
        "http://example.com:8080/path and ssh://git@github.com:22/x",
        "task-skeleton-builder-with-a-long-name-here",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    once = redact(f"OPENAI_API_KEY={OPENAI} password='hunter22'")
    assert redact(once) == once


class _Report(BaseModel):
    summary: str
    api_key: str
    tokens: int


def test_redact_obj_walks_dicts_lists_tuples_and_models() -> None:
    data = {
        "stdout": [f"using {OPENAI}", ("tuple", GITHUB)],
        "password": "plain",  # any value under a credential-named key
        "max_tokens": 100,
        "key": "artifacts/run-1/log.txt",
        "report": _Report(summary=f"leaked {ANTHROPIC}", api_key="anything", tokens=3),
    }
    assert redact_obj(data) == {
        "stdout": ["using [REDACTED:openai-key]", ("tuple", "[REDACTED:github-token]")],
        "password": "[REDACTED:password]",
        "max_tokens": 100,
        "key": "artifacts/run-1/log.txt",
        "report": {
            "summary": "leaked [REDACTED:anthropic-key]",
            "api_key": "[REDACTED:api_key]",
            "tokens": 3,
        },
    }
    assert data["password"] == "plain"  # the input is not modified


def test_a_megabyte_of_log_with_one_key_keeps_everything_else() -> None:
    sha = "3f786850e387550fdab836ed7e6dc881de23001b"
    line = f"2024-01-01 INFO test_token_refresh passed sha={sha} key: ok\n"
    log = line * (1_000_000 // len(line))
    text = log + f"OPENAI_API_KEY={OPENAI}\n" + log
    out = redact(text)
    assert out == log + "OPENAI_API_KEY=[REDACTED:openai-key]\n" + log
