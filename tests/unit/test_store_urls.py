"""Database URL handling: both URL forms accepted, passwords never shown, bad URLs explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import DatabaseUnavailableError
from shipyard.settings import Settings
from shipyard.store import (
    mask_password,
    psycopg_conninfo,
    resolve_database_url,
    sqlalchemy_url,
    with_database,
)

PLAIN = "postgresql://me:pa%40ss@db.example:6543/ship?sslmode=require"
ALCHEMY = "postgresql+psycopg://me:pa%40ss@db.example:6543/ship?sslmode=require"


@pytest.mark.parametrize("url", [PLAIN, ALCHEMY, PLAIN.replace("postgresql", "postgres", 1)])
def test_both_forms_convert_both_ways(url: str) -> None:
    assert sqlalchemy_url(url) == ALCHEMY
    assert psycopg_conninfo(url) == PLAIN


def test_socket_urls_keep_their_host_parameter() -> None:
    url = "postgresql://postgres@/shipyard?host=%2Ftmp%2Fpg%20data&port=5432"
    assert psycopg_conninfo(sqlalchemy_url(url)) == url
    assert with_database(url, "other") == url.replace("/shipyard?", "/other?")


def test_mask_password_hides_only_the_password() -> None:
    assert mask_password(PLAIN) == "postgresql://me:***@db.example:6543/ship?sslmode=require"
    assert mask_password("not a url") == "<unparseable database URL>"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://me:secret@host/db", "unsupported database URL scheme 'mysql'"),
        ("nonsense", "not a database URL"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(DatabaseUnavailableError, match=message) as caught:
        sqlalchemy_url(url)
    assert "secret" not in str(caught.value)


def test_configured_url_wins_over_embedded(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=PLAIN)
    assert resolve_database_url(settings) == PLAIN
    assert not (tmp_path / "pgdata").exists()


def test_conninfo_is_one_text_whatever_the_order_of_the_query() -> None:
    # The write-behind rows find their checkpointer by comparing these texts.
    a = "postgresql://postgres@/shipyard?host=%2Ftmp%2Fs&port=5432&passfile=%2Fh%2Fp"
    b = "postgresql+psycopg://postgres@/shipyard?passfile=%2Fh%2Fp&port=5432&host=%2Ftmp%2Fs"
    assert psycopg_conninfo(a) == psycopg_conninfo(b)
    assert psycopg_conninfo(a).endswith("?host=%2Ftmp%2Fs&passfile=%2Fh%2Fp&port=5432")
