"""Access control for the HTTP edge: an optional bearer token (`QA_API_TOKEN`).

Minimal stand-in so the /v1 and /mcp routes can depend on it; the reliability work (issue 14)
owns the full version (settings, refusing to listen beyond loopback without a token).
"""

from __future__ import annotations

import hmac
import os

from fastapi import HTTPException, Request


def require_token(request: Request) -> None:
    """A FastAPI dependency: when `QA_API_TOKEN` is set, require `Authorization: Bearer <it>`."""
    token = os.environ.get("QA_API_TOKEN") or ""
    if not token:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.encode()):
        raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer "
                                 "$QA_API_TOKEN)", headers={"WWW-Authenticate": "Bearer"})
