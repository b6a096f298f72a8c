"""Who may write (minimal stand-in; issue 14's `qa.security` replaces this at merge).

`require_token` is a FastAPI dependency for routes that change state (upload, delete): it
lets a request through when `QA_API_TOKEN` is not set and otherwise wants
`Authorization: Bearer <token>`, answering 401.
"""

from __future__ import annotations

import hmac
import os

from fastapi import HTTPException, Request


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the configured Bearer token."""
    token = os.environ.get("QA_API_TOKEN", "")
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise HTTPException(401, "this request needs 'Authorization: Bearer <QA_API_TOKEN>'",
                            headers={"WWW-Authenticate": "Bearer"})
