"""Secret redaction: every known format is masked with a hint, look-alikes are not."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from pydantic import BaseModel
from rich.table import Table

from shipyard.cli.console import RedactingConsole
from shipyard.redact import redact, redact_obj
from shipyard.secret_values import is_secret_name, load_secrets, redact_values

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
        "run 1b4e28ba-2fa1-41d2-883f-0016d3cca427",  # a uuid4
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


# By value: the secret values of the environment, whatever surrounds them.

AWS_VALUE = "wJalrXUt" + "nFEMI/K7MD+ENG/bPx RfiCYzz9"
CUSTOM_VALUE = "corp-cred-" + "7f3a9c"


@pytest.fixture
def environment() -> Iterator[None]:
    """Mask the values of a fixed environment; re-read the real one afterwards."""
    load_secrets(
        {
            "AWS_SECRET_ACCESS_KEY": AWS_VALUE,
            "MY_CORP_CRED": CUSTOM_VALUE,
            "SHIPYARD_SECRET_NAMES": "my_corp_cred, OTHER",
            "DATABASE_URL": "postgresql://app:pg-pass-9z8y@db:5432/x",
            "GITHUB_TOKEN": "short",
            "HOME": "/home/someone-with-a-long-name",
            "SOME_SESSION_ID": "not-a-secret-by-name",
        }
    )
    yield
    load_secrets()


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"expected {AWS_VALUE}!", "expected [REDACTED:AWS_SECRET_ACCESS_KEY]!"),
        (f"x{AWS_VALUE}y", "x[REDACTED:AWS_SECRET_ACCESS_KEY]y"),
        (f"assert '{CUSTOM_VALUE}' == ''", "assert '[REDACTED:MY_CORP_CRED]' == ''"),
        ("pw pg-pass-9z8y here", "pw [REDACTED:DATABASE_URL] here"),
        (f"GET /?k={quote(AWS_VALUE, safe='')}", "GET /?k=[REDACTED:AWS_SECRET_ACCESS_KEY]"),
        (f"q={quote_plus(AWS_VALUE)}", "q=[REDACTED:AWS_SECRET_ACCESS_KEY]"),
        (json.dumps({"v": AWS_VALUE}), '{"v": "[REDACTED:AWS_SECRET_ACCESS_KEY]"}'),
    ],
)
def test_secret_values_of_the_environment_are_masked_by_name(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.usefixtures("environment")
def test_base64_of_a_secret_value_is_masked_where_it_starts_aligned() -> None:
    encoded = base64.b64encode((AWS_VALUE + "\n").encode()).decode()
    out = redact(f"blob {encoded}")
    assert out.startswith("blob [REDACTED:AWS_SECRET_ACCESS_KEY]") and encoded not in out


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(
    "text",
    [
        "short",  # GITHUB_TOKEN's value: under the minimum length
        "/home/someone-with-a-long-name",  # HOME is no secret
        "not-a-secret-by-name",
        "my_corp_cred, OTHER",  # the list of names is not itself masked
    ],
)
def test_values_of_other_or_short_variables_are_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.usefixtures("environment")
def test_value_masking_reaches_nested_data_and_is_idempotent() -> None:
    data = {"log": [f"got {AWS_VALUE}"], "tuple": (CUSTOM_VALUE,)}
    assert redact_obj(data) == {
        "log": ["got [REDACTED:AWS_SECRET_ACCESS_KEY]"],
        "tuple": ("[REDACTED:MY_CORP_CRED]",),
    }
    once = redact(f"{AWS_VALUE} {CUSTOM_VALUE}")
    assert redact(once) == once


def test_a_longer_value_wins_over_one_it_contains() -> None:
    load_secrets({"A_TOKEN": "abcdefgh", "B_TOKEN": "abcdefgh-and-more"})
    try:
        assert redact("abcdefgh-and-more abcdefgh") == "[REDACTED:B_TOKEN] [REDACTED:A_TOKEN]"
    finally:
        load_secrets()


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OPENAI_API_KEY", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("GH_TOKEN", True),
        ("DB_PASSWORD", True),
        ("PGPASSWORD", True),
        ("CLIENT_SECRET_V2", True),
        ("TOKEN", True),
        ("SHIPYARD_SECRET_NAMES", False),
        ("KEYBOARD_LAYOUT", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("PATH", False),
    ],
)
def test_which_names_are_secret(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_a_megabyte_of_log_with_values_to_mask_stays_fast() -> None:
    load_secrets({f"V{i}_TOKEN": f"value-{i:02d}-" + "q" * 20 for i in range(20)})
    try:
        text = "2024-01-01 INFO test passed sha=3f786850e387550fdab836ed7e6 ok\n" * 16_000
        started = time.perf_counter()
        assert redact_values(text + "value-07-" + "q" * 20) == text + "[REDACTED:V7_TOKEN]"
        assert time.perf_counter() - started < 1.0
    finally:
        load_secrets()


@pytest.mark.usefixtures("environment")
def test_the_console_masks_values_before_wrapping_them(capsys: pytest.CaptureFixture[str]) -> None:
    console = RedactingConsole(highlight=False, width=20)
    console.print(f"token {AWS_VALUE} and {CUSTOM_VALUE}")
    console.rule(AWS_VALUE)
    table = Table("value")
    table.add_row(CUSTOM_VALUE)
    console.print(table)
    out = capsys.readouterr().out
    for part in (AWS_VALUE[:12], AWS_VALUE[-10:], CUSTOM_VALUE):
        assert part not in out.replace("\n", "")
    assert "[REDACTED:AWS_SECRET_ACCESS_KEY]" in out.replace("\n", "")
