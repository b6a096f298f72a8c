"""Who may write: a FastAPI dependency for the routes that change state (upload, delete).

In: `Settings.api_token` (from QA_API_TOKEN). Out: `require_token`, which lets a request
through when no token is set (a server on loopback, the default) and otherwise wants
`Authorization: Bearer <token>`, answering 401 with a JSON detail. The server refuses to
listen beyond loopback without a token (`check_exposure`), so "no token" means "only this
machine can reach it".
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


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the configured Bearer token."""
    token = _settings(request).api_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
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


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token: uploads and deletes would be open."""
    if not is_loopback(host) and not settings.api_token:
        raise BadSetting(
            f"refusing to listen on {host!r} (beyond this machine) without QA_API_TOKEN; "
            "set a token or use --host 127.0.0.1")
