"""Who a console request acts as, and the CSRF check of its forms.

Same owners as the API (``stores/keys.py``): on loopback with no keys every request is the
local owner and there is no sign-in. With keys, signing in with an API key sets a session
cookie (HTTP-only, ``SameSite=Strict``, ``Secure`` unless the page was served over plain
HTTP from loopback) holding ``<key id>.<expiry>.<mac>``: an HMAC keyed with that key's
stored hash, so no session table is needed, every server process can check it, and
revoking the key ends its sessions at once. A session lasts ``SESSION_S``; logging out
clears the cookie.

Every state-changing form carries a token that must equal the ``CSRF_COOKIE`` cookie (also
``SameSite=Strict``), and a request whose ``Origin`` is not this server is refused: a form
posted from another site has neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from shipyard.server.deps import state_of
from shipyard.server.stores.keys import LOCAL_OWNER, hash_secret, is_loopback
from shipyard.server.stores.tables import ApiKeyRow

SESSION_COOKIE = "shipyard_console"
CSRF_COOKIE = "shipyard_csrf"
CSRF_FIELD = "csrf"
SESSION_S = 12 * 3600
"""How long a console session lasts after signing in."""


class SignInRequired(Exception):
    """The console needs a signed-in session for this request."""


@dataclass(frozen=True)
class Viewer:
    """The owner a console request acts as; ``signed_in``: through a session (logout
    shown), not the loopback owner."""

    owner: str
    signed_in: bool


def keys_required(request: Request) -> bool:
    """Whether this server wants API keys (then the console wants a session)."""
    auth = state_of(request).auth
    return auth.require_keys or auth.any_active()


def viewer_of(request: Request) -> Viewer:
    """The request's viewer; ``SignInRequired`` when keys are on and no valid session is
    presented. Call it from the thread pool (it may read the database)."""
    if not keys_required(request):
        return Viewer(LOCAL_OWNER, signed_in=False)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    owner = _owner_of(state_of(request).engine, cookie, time.time())
    if owner is None:
        raise SignInRequired
    return Viewer(owner, signed_in=True)


def sign_in(engine: Engine, secret: str, now: float) -> str | None:
    """A session cookie value for the API key ``secret``; ``None`` for a wrong or revoked
    key."""
    with Session(engine) as session:
        row = session.scalar(
            select(ApiKeyRow).where(
                ApiKeyRow.hash == hash_secret(secret.strip()), ApiKeyRow.revoked_at.is_(None)
            )
        )
    if row is None:
        return None
    expires = int(now) + SESSION_S
    return f"{row.id}.{expires}.{_mac(row.hash, row.id, expires)}"


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


def _owner_of(engine: Engine, cookie: str, now: float) -> str | None:
    key_id, _, rest = cookie.partition(".")
    expiry, _, mac = rest.partition(".")
    if not key_id or not expiry.isdigit() or int(expiry) < now:
        return None
    with Session(engine) as session:
        row = session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(row.hash, key_id, int(expiry)).encode()):
        return None
    return row.owner


def _mac(key_hash: str, key_id: str, expires: int) -> str:
    message = f"shipyard-console-session:{key_id}:{expires}".encode()
    return hmac.new(key_hash.encode(), message, hashlib.sha256).hexdigest()


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or not is_loopback(request.url.hostname or "")


__all__ = [
    "CSRF_FIELD",
    "SESSION_S",
    "SignInRequired",
    "Viewer",
    "clear_session",
    "csrf_ok",
    "csrf_token",
    "keys_required",
    "set_session",
    "sign_in",
    "viewer_of",
    "with_csrf",
]
