"""Who a console request acts as, and the CSRF check of its forms.

Same owners as the API (``stores/keys.py``): on loopback with no keys every request is the
local owner and there is no sign-in. With keys, signing in with an API key starts a
session: a random token in a cookie (HTTP-only, ``SameSite=Strict``, ``Secure`` unless the
page was served over plain HTTP from loopback) and, server-side, a ``console_sessions``
row keyed by the token's SHA-256 naming the key and the expiry, so every server process
can check it. A session lasts ``SESSION_S``; logging out deletes its row and revoking its
key ends it (the lookup joins the key), so a copied cookie is useless at once. Whether a
viewer also sees the runs ``shipyard run`` started is ``config.ConsoleConfig``'s call.

Every state-changing form carries a token that must equal the ``CSRF_COOKIE`` cookie (also
``SameSite=Strict``), and a request whose ``Origin`` is not this server is refused: a form
posted from another site has neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response
from sqlalchemy import DateTime, Engine, ForeignKey, String, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.server.console.config import config_of
from shipyard.server.deps import state_of
from shipyard.server.stores.keys import LOCAL_OWNER, hash_secret, is_loopback
from shipyard.server.stores.tables import ApiKeyRow
from shipyard.store.tables import Base

SESSION_COOKIE = "shipyard_console"
CSRF_COOKIE = "shipyard_csrf"
CSRF_FIELD = "csrf"
SESSION_S = 12 * 3600
"""How long a console session lasts after signing in."""


class ConsoleSessionRow(Base):
    """A signed-in browser: the SHA-256 of its cookie's token, its key and its expiry."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignInRequired(Exception):
    """The console needs a signed-in session for this request."""


@dataclass(frozen=True)
class Viewer:
    """The owner a console request acts as; ``signed_in``: through a session (logout
    shown), not the loopback owner; ``cli_runs``: the owner of CLI-started runs."""

    owner: str
    signed_in: bool
    cli_runs: bool = False


def keys_required(request: Request) -> bool:
    """Whether this server wants API keys (then the console wants a session)."""
    auth = state_of(request).auth
    return auth.require_keys or auth.any_active()


def viewer_of(request: Request) -> Viewer:
    """The request's viewer; ``SignInRequired`` when keys are on and no valid session is
    presented. Call it from the thread pool (it may read the database)."""
    config = config_of(request)
    if not keys_required(request):
        return Viewer(LOCAL_OWNER, signed_in=False, cli_runs=True)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    owner = _owner_of(state_of(request).engine, cookie) if cookie else None
    if owner is None:
        raise SignInRequired
    return Viewer(owner, signed_in=True, cli_runs=config.cli_owner_for(True) == owner)


_START = text("""
    INSERT INTO console_sessions (id, key_id, expires_at)
    VALUES (:id, :key_id, to_timestamp(:expires))""")
_SWEEP = text("DELETE FROM console_sessions WHERE expires_at < now()")
_OWNER = text("""
    SELECT k.owner FROM console_sessions s JOIN api_keys k ON k.id = s.key_id
    WHERE s.id = :id AND s.expires_at > now() AND k.revoked_at IS NULL""")
_END = text("DELETE FROM console_sessions WHERE id = :id")


def sign_in(engine: Engine, secret: str, now: float) -> str | None:
    """Start a session for the API key ``secret``: its cookie value (a new random token);
    ``None`` for a wrong or revoked key. Expired sessions are swept on the way."""
    with Session(engine) as session:
        row = session.scalar(
            select(ApiKeyRow).where(
                ApiKeyRow.hash == hash_secret(secret.strip()), ApiKeyRow.revoked_at.is_(None)
            )
        )
    if row is None:
        return None
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(_SWEEP)
        conn.execute(_START, {"id": _digest(token), "key_id": row.id, "expires": now + SESSION_S})
    return token


def sign_out(engine: Engine, cookie: str) -> None:
    """End the session ``cookie`` names (nothing when it names none)."""
    if cookie:
        with engine.begin() as conn:
            conn.execute(_END, {"id": _digest(cookie)})


def session_cookie(request: Request) -> str:
    """The session cookie ``request`` carries (empty when none)."""
    return request.cookies.get(SESSION_COOKIE, "")


def set_session(request: Request, response: Response, value: str) -> None:
    """Set the session cookie on ``response``."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_S,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session(request: Request, response: Response) -> None:
    """Log out: the session cookie is removed."""
    response.delete_cookie(
        SESSION_COOKIE, path="/ui", httponly=True, samesite="strict", secure=_secure(request)
    )


def csrf_token(request: Request) -> str:
    """The CSRF token forms on this page carry (the cookie's, or a new one ``with_csrf``
    sets)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def with_csrf(request: Request, response: Response) -> Response:
    """``response`` setting the CSRF cookie when this request made a new token."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


def csrf_ok(request: Request, sent: str) -> bool:
    """Whether a form post is this console's own: the token matches the cookie and the
    ``Origin`` (when the browser sends one) is this server."""
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request):
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def _owner_of(engine: Engine, cookie: str) -> str | None:
    """The owner of the live session ``cookie`` names (its key not revoked), else ``None``."""
    with engine.connect() as conn:
        owner = conn.execute(_OWNER, {"id": _digest(cookie)}).scalar_one_or_none()
    return str(owner) if owner is not None else None


def _digest(token: str) -> str:
    """The session row's key: the token is never stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or not is_loopback(request.url.hostname or "")


__all__ = [
    "CSRF_FIELD",
    "SESSION_S",
    "ConsoleSessionRow",
    "SignInRequired",
    "Viewer",
    "clear_session",
    "csrf_ok",
    "csrf_token",
    "keys_required",
    "session_cookie",
    "set_session",
    "sign_in",
    "sign_out",
    "viewer_of",
    "with_csrf",
]
