"""The one ``jsonb`` encoder against a real Postgres: text Shipyard writes itself (command
output, graph values) that Postgres cannot store is stored with U+FFFD instead of failing the
write — through plain psycopg, the server's encoder and the SQLAlchemy engine alike."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB

from shipyard.server.http.encoding import jsonb as server_jsonb
from shipyard.store import make_engine, psycopg_conninfo
from shipyard.store.jsonb import dumps, find_unstorable, jsonb

DIRTY = {"out": "a\x00b", "k\x00": ["\ud800", 1, None, 2.5], "ok": "é"}
CLEAN = {"out": "a\ufffdb", "k\ufffd": ["\ufffd", 1, None, 2.5], "ok": "é"}


class Output(BaseModel):
    """A graph value as the server writes it."""

    text: str


def _roundtrip(db_url: str, param: Any) -> Any:
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        return conn.execute("SELECT %s::jsonb", [param]).fetchone()[0]  # type: ignore[index]


def test_psycopg_parameters_store_unstorable_text_replaced(db_url: str) -> None:
    assert _roundtrip(db_url, jsonb(DIRTY)) == CLEAN
    graph_value = {"v": Output(text="x\x00")}
    assert _roundtrip(db_url, server_jsonb(graph_value)) == {"v": {"text": "x\ufffd"}}
    with pytest.raises(psycopg.errors.UntranslatableCharacter):  # what the encoder prevents
        _roundtrip(db_url, psycopg.types.json.Jsonb({"out": "a\x00b"}))


def test_sqlalchemy_engine_uses_the_same_encoder(db_url: str) -> None:
    engine = make_engine(db_url)
    query = sa.text("SELECT CAST(:v AS jsonb)").bindparams(sa.bindparam("v", type_=JSONB))
    try:
        with engine.connect() as conn:
            assert conn.execute(query, {"v": DIRTY}).scalar() == CLEAN
    finally:
        engine.dispose()


def test_validator_names_the_first_unstorable_string() -> None:
    assert find_unstorable({"a": [1, {"b": "x\x00"}]}) == (
        ("a", 1, "b"),
        "text cannot contain NUL (\\u0000) characters",
    )
    assert find_unstorable({"k\x00": 1}) == (("k\x00",), find_unstorable("\x00")[1])  # type: ignore[index]
    assert find_unstorable(["fine", "\udfff"]) == (
        (1,),
        "text cannot contain unpaired surrogates (\\ud800-\\udfff)",
    )
    assert find_unstorable(CLEAN) is None
    assert dumps({"a": "\\u0000"}) == '{"a":"\\\\u0000"}'  # an escaped backslash is kept
