"""Who may write: a FastAPI dependency for the routes that change state (upload, delete).

In: `Settings.api_token` (from QA_API_TOKEN). Out: `token_accepted`, the one check of a
write's token, used by every edge that writes: true when no token is set (a server on
loopback, the default), else only for the token itself, compared in constant time. Over
HTTP, `require_token` wants `Authorization: Bearer <token>` and answers 401 with a JSON
detail; the web chat (`qa.ui`) takes it from its *Access token* field. The server refuses
to listen beyond loopback without a token (`check_exposure`), so "no token" means "only
this machine can reach it".
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request

from qa.config import LOOPBACK_HOSTS, Settings, load_settings
from qa.errors import BadSetting


def _settings(request: Request) -> Settings:
    """The app's settings (its pipeline's), else the environment's."""
    pipeline = getattr(request.app.state, "pipeline", None)
    settings = getattr(pipeline, "settings", None)
    return settings if isinstance(settings, Settings) else load_settings()


def token_accepted(settings: Settings, given: object) -> bool:
    """May a write go ahead with the token `given` (None: none was sent)? Yes when no token
    is set; otherwise only when `given` is the token (surrounding spaces aside)."""
    token = settings.api_token
    if not token:
        return True
    return isinstance(given, str) and hmac.compare_digest(given.strip().encode(),
                                                          token.encode())


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the configured Bearer token."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if not token_accepted(_settings(request), given if scheme.lower() == "bearer" else None):
        raise HTTPException(401, "this request needs 'Authorization: Bearer <QA_API_TOKEN>'",
                            headers={"WWW-Authenticate": "Bearer"})


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_TOKEN_CHARS = 16  # beyond loopback: a token short enough to guess protects nothing


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token (uploads and deletes would be open),
    or with one short enough to guess: nothing slows down a client trying tokens."""
    if is_loopback(host):
        return
    if not settings.api_token:
        raise BadSetting(
            f"refusing to listen on {host!r} (beyond this machine) without QA_API_TOKEN; "
            "set a token or use --host 127.0.0.1")
    if len(settings.api_token.strip()) < MIN_TOKEN_CHARS:
        raise BadSetting(
            f"refusing to listen on {host!r} with a QA_API_TOKEN of under {MIN_TOKEN_CHARS} "
            "characters (easy to guess); use a longer one, e.g. the output of "
            "'python -c \"import secrets; print(secrets.token_urlsafe())\"'")
